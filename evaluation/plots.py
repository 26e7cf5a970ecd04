"""Training curves of a run: ``plot_run(RUN_DIR) -> [PNG paths]`` from its ``metrics.jsonl``.

    steprl plot runs/quickstart            # → runs/quickstart/plots/*.png + curves.json

One PNG per topic, each a grid of panels with the metrics present in the run:

* ``success.png``: ``eval/success_rate`` vs iteration, one point per
  evaluation, with a 95% normal band from ``eval/stderr``;
* ``reward.png``: the training rollouts' ``env/return`` and ``env/success_rate``;
* ``turns.png``: episode length (``rollout/turns``, ``eval/turns``) and
  action quality (invalid and unparseable shares);
* ``losses.png``: ``train/*`` (policy loss, KL, entropy, clip fraction, grad
  norm) and the heads' losses (``value/*``, ``progress/*``);
* ``credit.png``: ``credit/*`` diagnostics (advantage spread, zero-std groups,
  step-group sizes, share of rows in non-singleton step groups).

``curves.json`` beside the PNGs holds every plotted series as
``{figure: {series: {"x": [...], "y": [...]}}}``: the data behind each picture.

Matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["plot_run", "read_metrics", "FIGURES"]

#: figure → panels → (series key, label); a panel is drawn when at least one of its keys is in the run
FIGURES: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {
    "success": [("eval success rate", [("eval/success_rate", "eval")])],
    "reward": [
        ("train return", [("env/return", "rollouts")]),
        ("train success rate", [("env/success_rate", "rollouts")]),
    ],
    "turns": [
        ("turns per episode", [("rollout/turns", "rollouts"), ("eval/turns", "eval")]),
        ("action quality", [("rollout/invalid", "invalid (rollouts)"),
                            ("rollout/unparseable", "unparseable (rollouts)"),
                            ("eval/invalid", "invalid (eval)"), ("rollout/truncated", "truncated (rollouts)")]),
    ],
    "losses": [
        ("policy loss", [("train/pg_loss", "pg_loss"), ("train/loss", "loss")]),
        ("KL", [("train/approx_kl", "approx_kl"), ("train/kl", "kl (reference)")]),
        ("entropy", [("train/entropy", "entropy")]),
        ("clip fraction", [("train/clip_frac", "clip_frac"), ("train/dual_clip_frac", "dual_clip_frac")]),
        ("grad norm", [("train/grad_norm", "grad_norm")]),
        ("heads", [("value/loss", "value loss"), ("value/mse", "value mse"), ("progress/mse", "progress mse")]),
    ],
    "credit": [
        ("advantage spread", [("credit/adv_std", "std"), ("credit/adv_abs_mean", "mean |A|"),
                              ("credit/adv_step_std", "step-level std"),
                              ("credit/adv_episode_std", "episode-level std")]),
        ("step-level share of |A|", [("credit/adv_step_share", "step share")]),
        ("degenerate groups", [("credit/zero_std_group_share", "zero-std groups"),
                               ("credit/zero_adv_share", "zero advantages"), ("credit/dropped_share", "dropped rows")]),
        ("step groups", [("credit/nonsingleton_share", "rows in non-singleton step groups")]),
        ("step-group size", [("credit/step_group_size_mean", "mean"), ("credit/step_group_size_max", "max")]),
        ("trajectory length", [("credit/traj_length_mean", "mean")]),
    ],
}


SHARE_PANELS = ("action quality", "degenerate groups", "step groups")  # y axis 0..1


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``RUN_DIR/metrics.jsonl``, one per iteration (the last record wins if one repeats)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no metrics.jsonl: is it a run directory (`steprl train`)?")
    by_iteration: dict[int, dict[str, Any]] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{line_no} is not JSON ({exc.msg})") from None
        if "iteration" not in record:
            raise ValueError(f"{path}:{line_no} has no 'iteration'")
        by_iteration[int(record["iteration"])] = record
    if not by_iteration:
        raise ValueError(f"{path} holds no records yet: plot after the first iteration")
    return [by_iteration[i] for i in sorted(by_iteration)]


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for record in records:
        value = record.get(key)
        if key == "rollout/unparseable" and "rollout/format_ok" in record:
            value = 1.0 - record["rollout/format_ok"]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            xs.append(int(record["iteration"]))
            ys.append(float(value))
    return xs, ys


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the run's training curves as PNGs (and ``curves.json``) into ``out_dir`` (default ``RUN_DIR/plots``).

    Returns the PNG paths written; a figure with no metric present in the run is skipped.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``metrics.jsonl``.
        ValueError: the file is empty or malformed.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    data: dict[str, dict[str, dict[str, list]]] = {}
    for figure, panels in FIGURES.items():
        present = [(title, [(key, label, *_series(records, key)) for key, label in series])
                   for title, series in panels]
        present = [(title, [s for s in series if s[2]]) for title, series in present]
        present = [(title, series) for title, series in present if series]
        if not present:
            continue
        columns = min(3, len(present))
        rows = math.ceil(len(present) / columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
        for ax in axes.flat[len(present):]:
            ax.set_visible(False)
        data[figure] = {}
        for ax, (title, series) in zip(axes.flat, present):
            for key, label, xs, ys in series:
                single = figure == "success" or len(xs) <= 30
                ax.plot(xs, ys, marker="o" if single else None, markersize=4, label=label)
                data[figure][key] = {"x": xs, "y": ys}
                if key == "eval/success_rate":
                    _stderr_band(ax, records, xs, ys)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            if "success" in title or "share" in title or title in SHARE_PANELS:
                ax.set_ylim(-0.03, 1.03)
            if len(series) > 1 or figure == "success":
                ax.legend(fontsize=8)
            else:
                ax.set_ylabel(series[0][1], fontsize=9)
        fig.suptitle(f"{run_dir.name}: {figure}", fontsize=11)
        fig.tight_layout()
        path = out / f"{figure}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    (out / "curves.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return written


def _stderr_band(ax, records, xs: list[int], ys: list[float]) -> None:
    """Shade ±1.96 stderr around the eval success curve when the run logged ``eval/stderr``."""
    stderr = dict(zip(*_series(records, "eval/stderr")))
    if not stderr or len(stderr) != len(xs):
        return
    low = [max(0.0, y - 1.96 * stderr[x]) for x, y in zip(xs, ys)]
    high = [min(1.0, y + 1.96 * stderr[x]) for x, y in zip(xs, ys)]
    ax.fill_between(xs, low, high, alpha=0.2, label="95% (normal)")
