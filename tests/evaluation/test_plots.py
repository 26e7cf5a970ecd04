"""plot_run / `steprl plot`: PNGs from metrics.jsonl, and the data behind them (curves.json).

The fast test plots a synthetic metrics.jsonl; the slow one trains a tiny run with trainer.loop.RLRun
(evaluating every iteration), plots it with the CLI and evaluates its latest checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from steprl.evaluation import plot_run
from steprl.evaluation.plots import read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_run(run_dir, iterations: int = 6, eval_every: int = 3):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for it in range(iterations + 1):
        record = {"iteration": it}
        if it > 0:
            record.update({"env/return": 0.1 * it, "env/success_rate": 0.1 * it, "rollout/turns": 10 - it,
                           "rollout/invalid": 0.5 / it, "rollout/format_ok": 0.9, "train/pg_loss": 0.01 * it,
                           "train/approx_kl": 0.001, "train/entropy": 2.0, "train/clip_frac": 0.1,
                           "train/grad_norm": 1.0, "credit/adv_std": 1.0, "credit/nonsingleton_share": 0.3,
                           "credit/zero_std_group_share": 0.2, "credit/step_group_size_mean": 2.5})
        if it % eval_every == 0:
            record.update({"eval/success_rate": 0.2 + 0.05 * it, "eval/stderr": 0.05, "eval/turns": 8.0})
        lines.append(json.dumps(record))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def test_plot_run_writes_pngs_and_one_success_point_per_evaluation(tmp_path):
    run = synthetic_run(tmp_path / "run")
    paths = plot_run(run)
    assert [p.name for p in paths] == ["success.png", "reward.png", "turns.png", "losses.png", "credit.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000
    curves = json.loads((run / "plots" / "curves.json").read_text())
    assert curves["success"]["eval/success_rate"] == {"x": [0, 3, 6], "y": pytest.approx([0.2, 0.35, 0.5])}
    assert curves["reward"]["env/return"]["x"] == [1, 2, 3, 4, 5, 6]
    assert curves["turns"]["rollout/unparseable"]["y"] == pytest.approx([0.1] * 6)  # 1 - format_ok
    assert "credit/nonsingleton_share" in curves["credit"]


def test_plot_run_skips_figures_without_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"iteration": 0, "eval/success_rate": 0.3}) + "\n")
    assert [p.name for p in plot_run(run, tmp_path / "out")] == ["success.png"]


def test_repeated_iterations_keep_the_last_record(tmp_path):
    run = synthetic_run(tmp_path / "run")
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"iteration": 6, "eval/success_rate": 0.9}) + "\n")
    assert read_metrics(run)[-1]["eval/success_rate"] == 0.9


def test_missing_or_broken_metrics_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no metrics.jsonl"):
        plot_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 0}\nnot json\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2 is not JSON"):
        plot_run(tmp_path)
    out = subprocess.run([sys.executable, "-m", "steprl", "plot", str(tmp_path / "nope")], capture_output=True,
                         text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "has no metrics.jsonl" in out.stderr


# -- a real finished run ----------------------------------------------------------------------
TINY = [
    "run.seed=3", "run.iterations=2", "run.tasks_per_iteration=2", "run.group_size=2", "run.save_every=1",
    "run.progress=false", "run.torch_threads=1", "env.id=textworld/coin_collector-v0", "env.kwargs.level=[2,3]",
    "env.train_tasks=4", "env.max_turns=4", "eval.split=valid", "eval.tasks=3", "eval.every=1", "sft.steps=0",
    "trainer.micro_batch_tokens=8192", "trainer.minibatch_size=8", "trainer.lr=1e-3", "agent.max_new_tokens=4",
    "agent.history_k=1", "agent.max_prompt_tokens=384",
]


@pytest.mark.slow
def test_finished_run_plots_one_point_per_evaluation_and_evaluates(tmp_path):
    from steprl.agent.models import build_tiny_model
    from steprl.evaluation import evaluate, weights_sha256
    from steprl.config import RunConfig
    from steprl.loader import load_config
    from steprl.trainer.loop import RLRun

    model = build_tiny_model("textworld/coin_collector-v0", tmp_path / "tiny", hidden=64, layers=1, vocab=400,
                             num_tasks=2)
    run_dir = tmp_path / "run"
    cfg = load_config("configs/quickstart.yaml", [f"run.dir={run_dir}", "tiny_model=null", f"agent.model={model}",
                                                  *TINY], RunConfig)
    summary = RLRun(cfg).run()
    evaluations = [it for it, _ in summary["success_curve"]]
    assert evaluations == [0, 1, 2]

    out = subprocess.run([sys.executable, "-m", "steprl", "plot", str(run_dir)], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    assert (run_dir / "plots" / "success.png").read_bytes()[:8] == PNG_MAGIC
    curves = json.loads((run_dir / "plots" / "curves.json").read_text())
    success = curves["success"]["eval/success_rate"]
    assert success["x"] == evaluations
    assert success["y"] == pytest.approx([rate for _, rate in summary["success_curve"]])

    # the run's latest checkpoint, evaluated with the run's own settings on the run's eval protocol
    trainer_seed = 3 + 10_000  # trainer.loop evaluates with run.seed + 10000
    report = evaluate(run_dir, split="valid", episodes=3, seeds=(trainer_seed,), progress=False)
    assert report.model.checkpoint == "iter_000002"
    assert report.model.sha256 == weights_sha256(run_dir / "checkpoints" / "iter_000002" / "model")
    assert report.protocol.env_kwargs["level"] == [2, 3] and report.protocol.max_turns == 4
    assert report.protocol.prompt["history_k"] == 1 and report.protocol.decoding == "greedy"
    # greedy, with the tasks, seed and batch of the trainer's last evaluation: the same success rate
    assert report.row("model").success_rate == pytest.approx(summary["success_curve"][-1][1])
