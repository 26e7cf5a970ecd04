"""The RL recipe end to end on tiny settings: resume after SIGKILL, and env crashes mid-rollout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steprl.config import RunConfig
from steprl.loader import load_config

TINY = [
    "run.seed=3", "run.iterations=3", "run.tasks_per_iteration=2", "run.group_size=3", "run.save_every=1",
    "run.progress=false", "env.id=textworld/coin_collector-v0", "env.kwargs.level=[2,3]", "env.train_tasks=4",
    "env.max_turns=4", "eval.split=valid", "eval.tasks=3", "eval.every=10", "sft.steps=0",
    "trainer.micro_batch_tokens=8192", "trainer.minibatch_size=8", "trainer.lr=1e-3", "agent.max_new_tokens=4",
    "agent.history_k=1", "agent.max_prompt_tokens=384",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    from steprl.agent.models import build_tiny_model

    out = tmp_path_factory.mktemp("model") / "tiny"
    build_tiny_model("textworld/coin_collector-v0", out, hidden=64, layers=1, vocab=400, num_tasks=2)
    return str(out)


def metrics_at(run_dir: Path, iteration: int) -> dict:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    matching = [r for r in records if r["iteration"] == iteration]
    assert len(matching) == 1, f"{len(matching)} records for iteration {iteration}"
    return {k: v for k, v in matching[0].items() if not k.startswith("time/")}


def steprl_train(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "steprl", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tiny_model, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    common = ["configs/quickstart.yaml", "tiny_model=null", f"agent.model={tiny_model}", *TINY]
    proc = steprl_train(*common, f"run.dir={full}")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]

    proc = steprl_train(*common, f"run.dir={killed}")
    deadline = time.time() + 600
    while not (killed / "checkpoints" / "iter_000002" / "meta.json").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = steprl_train("--resume", str(killed))
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    assert "resumed" in out and "at iteration 2" in out

    want, got = metrics_at(full, 3), metrics_at(killed, 3)
    assert want.keys() == got.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), key


@pytest.mark.slow
def test_env_crash_mid_rollout_truncates_episode_and_run_goes_on(tmp_path):
    from steprl.agent.models import build_tiny_model
    from tests.envs import toy  # noqa: F401  (registers toy/Crashing-v0)
    from steprl.trainer.loop import RLRun

    model = build_tiny_model("toy/Corridor-v0", tmp_path / "model", hidden=64, layers=1, vocab=300, num_tasks=4)

    cfg = load_config("configs/quickstart.yaml", [
        f"run.dir={tmp_path / 'run'}", "run.iterations=2", "run.tasks_per_iteration=4", "run.group_size=2",
        "run.progress=false", "env.id=toy/Crashing-v0", "env.kwargs={crash_at: 3}", "env.train_tasks=4",
        "env.max_turns=6", "eval.split=valid", "eval.tasks=4", "eval.every=10", "sft.steps=0",
        "tiny_model=null", f"agent.model={model}",
        "trainer.micro_batch_tokens=8192", "agent.max_new_tokens=3", "agent.history_k=0",
    ], RunConfig)
    summary = RLRun(cfg).run()
    records = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    iterations = [r for r in records if r["iteration"] > 0]
    assert [r["iteration"] for r in iterations] == [1, 2]  # the run went on
    for r in iterations:
        # corridors of length 2 end before step 3; no policy finishes lengths 3-5 in 2 steps, so
        # every episode that reaches its 3rd valid step crashes and is counted
        assert r["rollout/episodes"] == 8
        assert r["rollout/env_errors"] >= 1
        assert r["rollout/truncated"] >= r["rollout/env_errors"] / 8
    assert summary["success_curve"][-1][0] == 2


def test_loop_run_holds_exactly_one_model_copy(tiny_model, tmp_path):
    import gc

    from transformers import PreTrainedModel

    from steprl.trainer.loop import RLRun

    cfg = load_config("configs/textworld/loop_rloo_baseline.yaml",
                      [f"run.dir={tmp_path / 'run'}", "tiny_model=null", f"agent.model={tiny_model}", *TINY,
                       "credit.estimator=loop"], RunConfig)
    def live_model_storages() -> set[int]:
        gc.collect()
        return {o.get_input_embeddings().weight.untyped_storage().data_ptr()
                for o in gc.get_objects() if isinstance(o, PreTrainedModel)}

    before = live_model_storages()  # e.g. the fixture's builder, not the run's
    run = RLRun(cfg)
    run.setup()
    try:
        # Count the storages of the run's embedding matrices: one model copy = one storage.
        storages = live_model_storages() - before
        assert run.trainer.reference is None and run.heads == {}
        assert run.engine.model is run.policy.model  # the HF engine generates with the trained module
        assert len(storages) == 1, f"{len(storages)} model copies alive"
    finally:
        run.close()


@pytest.mark.slow
def test_fresh_run_rebuilds_a_stale_tiny_model_left_in_its_directory(tmp_path):
    """A tiny model left by an earlier run (here: garbled) is rebuilt by a fresh run, not silently reused."""
    from steprl.config import load_run_config
    from steprl.trainer.loop import RLRun

    overrides = [*TINY, "run.iterations=0", "eval.tasks=2", f"run.dir={tmp_path / 'run'}", "run.overwrite=true",
                 "tiny_model.hidden=64", "tiny_model.layers=1", "tiny_model.vocab=400", "tiny_model.corpus_tasks=2"]
    RLRun(load_run_config("configs/quickstart.yaml", overrides)).run()
    base = tmp_path / "run" / "base_model"
    first = (base / "tokenizer.json").read_text()
    (base / "tokenizer.json").write_text('{"stale": true}')
    RLRun(load_run_config("configs/quickstart.yaml", overrides)).run()
    assert (base / "tokenizer.json").read_text() == first


@pytest.mark.slow
def test_resume_skips_a_truncated_newest_checkpoint(tiny_model, tmp_path):
    """A truncated newest checkpoint: --resume warns, continues from the previous one, and its next
    iteration equals that of a run resumed from the previous checkpoint directly."""
    import shutil

    base = tmp_path / "base"
    common = ["configs/quickstart.yaml", "tiny_model=null", f"agent.model={tiny_model}", *TINY, "run.iterations=2"]
    proc = steprl_train(*common, f"run.dir={base}")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    corrupt, direct = tmp_path / "corrupt", tmp_path / "direct"
    shutil.copytree(base, corrupt)
    shutil.copytree(base, direct)
    weights = next((corrupt / "checkpoints" / "iter_000002" / "model").glob("*.safetensors"))
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 3)
    shutil.rmtree(direct / "checkpoints" / "iter_000002")

    runs = {}
    for name, run_dir in (("corrupt", corrupt), ("direct", direct)):
        proc = steprl_train("--resume", str(run_dir), "run.iterations=3")
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        runs[name] = out
    assert "checkpoint" in runs["corrupt"] and "iter_000002" in runs["corrupt"] and "corrupt" in runs["corrupt"]
    assert "at iteration 1" in runs["corrupt"] and "at iteration 1" in runs["direct"]
    for it in (2, 3):
        want, got = metrics_at(direct, it), metrics_at(corrupt, it)
        assert want.keys() == got.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), (it, key)


@pytest.mark.slow
def test_resume_from_the_sft_checkpoint_does_not_train_sft_again(tiny_model, tmp_path):
    run_dir = tmp_path / "sft_then_rl"
    common = ["configs/quickstart.yaml", "tiny_model=null", f"agent.model={tiny_model}", *TINY, "sft.steps=3",
              "sft.episodes=4", f"run.dir={run_dir}"]
    proc = steprl_train(*common, "run.iterations=0")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert "SFT: " in out
    before = metrics_at(run_dir, 0)
    resumed = steprl_train("--resume", str(run_dir), "run.iterations=1")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    assert "at iteration 0" in out and "SFT: " not in out
    assert metrics_at(run_dir, 0) == before and "train/pg_loss" in metrics_at(run_dir, 1)


def test_a_failing_first_evaluation_keeps_the_sft_warm_start(tiny_model, tmp_path, monkeypatch):
    """The SFT checkpoint is written before the first evaluation: if that evaluation fails (e.g. a test
    task's prompt exceeds agent.max_prompt_tokens), --resume evaluates it without training SFT again."""
    from steprl.config import load_run_config
    from steprl.trainer.loop import RLRun

    overrides = ["tiny_model=null", f"agent.model={tiny_model}", *TINY, "sft.steps=3", "sft.episodes=4",
                 "run.iterations=0", f"run.dir={tmp_path / 'run'}"]

    def failing_evaluation(self, iteration):
        raise ValueError("max_prompt_tokens=8 is too small")

    monkeypatch.setattr(RLRun, "evaluate", failing_evaluation)
    with pytest.raises(ValueError, match="too small"):
        RLRun(load_run_config("configs/quickstart.yaml", overrides)).run()
    assert (tmp_path / "run" / "checkpoints" / "iter_000000" / "meta.json").exists()
    monkeypatch.undo()
    calls = []
    original_sft = RLRun.sft
    monkeypatch.setattr(RLRun, "sft", lambda self: calls.append(1) or original_sft(self))
    summary = RLRun(load_run_config("configs/quickstart.yaml", overrides), resume=True).run()
    assert calls == []  # the warm start came from the checkpoint
    assert [it for it, _ in summary["success_curve"]] == [0]
    record = metrics_at(tmp_path / "run", 0)
    assert 0.0 <= record["eval/success_rate"] <= 1.0 and record["sft/steps"] == 3  # SFT's figures kept too
    # a second resume finds the evaluation in the checkpoint and does not repeat it
    again = RLRun(load_run_config("configs/quickstart.yaml", overrides), resume=True).run()
    assert again["success_curve"] == summary["success_curve"] and calls == []


def test_dagger_rounds_label_the_policys_own_states_and_train_on_them(tiny_model, tmp_path):
    run_dir = tmp_path / "dagger"
    proc = steprl_train("configs/quickstart.yaml", "tiny_model=null", f"agent.model={tiny_model}", *TINY,
                        "sft.steps=3", "sft.episodes=4", "sft.dagger_rounds=2", "sft.dagger_episodes=3",
                        "sft.dagger_steps=2", "run.iterations=0", f"run.dir={run_dir}")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert "DAgger round 1/2" in out and "DAgger round 2/2" in out
    m = metrics_at(run_dir, 0)
    assert m["sft/steps"] == 3 + 2 * 2  # the first fit, then dagger_steps per round
    # every policy step in Coin Collector has an expert action: 3 episodes × 1..4 turns, per round
    assert 2 * 3 <= m["sft/dagger_examples"] <= 2 * 3 * 4
    assert 0.0 <= m["sft/dagger_success_first"] <= 1.0 and 0.0 <= m["sft/dagger_success_last"] <= 1.0


def test_sft_without_a_progress_bar_prints_a_line_every_tenth_of_its_steps(tiny_model, tmp_path, capsys):
    """steprl bench runs with run.progress=false into a log file: a long warm start says where it is."""
    from steprl.config import load_run_config
    from steprl.trainer.loop import RLRun

    overrides = ["tiny_model=null", f"agent.model={tiny_model}", *TINY, "sft.steps=20", "sft.episodes=4",
                 "run.iterations=0", f"run.dir={tmp_path / 'run'}"]
    RLRun(load_run_config("configs/quickstart.yaml", overrides)).run()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("SFT step ")]
    assert [line.split(":")[0] for line in lines] == [f"SFT step {n}/20" for n in range(2, 20, 2)]
