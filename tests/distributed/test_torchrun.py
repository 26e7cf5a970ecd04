"""`torchrun --nproc_per_node 2 -m steprl train`: two gloo ranks train one run on the gathered global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train_loop import TINY

pytestmark = pytest.mark.slow


def test_two_rank_torchrun_trains_on_the_global_batch(tmp_path):
    from steprl.agent.models import build_tiny_model

    model = build_tiny_model("textworld/coin_collector-v0", tmp_path / "model", hidden=64, layers=1, vocab=400,
                             num_tasks=2)
    run_dir = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "steprl", "train", "configs/quickstart.yaml",
           "tiny_model=null", f"agent.model={model}", *TINY, "run.iterations=2", "run.tasks_per_iteration=3",
           "run.group_size=2", "run.torch_threads=1", "trainer.dist_backend=gloo", f"run.dir={run_dir}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    iterations = [r for r in records if r["iteration"] > 0]
    assert [r["iteration"] for r in iterations] == [1, 2]  # only rank 0 logs: one record per iteration
    for r in iterations:
        assert r["rollout/episodes"] == 3 * 2  # rank 0 played 2 tasks, rank 1 one; both trained on all 6 episodes
        assert r["train/rows"] == r["rollout/steps"]
    assert (run_dir / "checkpoints" / "iter_000002" / "meta.json").exists()
    assert proc.stdout.count("iter   1/2") == 1  # rank 1 prints nothing
