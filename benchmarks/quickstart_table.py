"""The quickstart's acceptance table: SFT start, SFT + RL, and SFT to its plateau, over seeds.

Superseded by ``steprl bench benchmarks/suites/coin_collector.yaml`` (docs/bench.md): one SFT start
per seed that every method loads, greedy and sampled evaluation, t-intervals over seeds.
Kept as it is so that the README's earlier tables can be reproduced.

For each seed:
  1. ``steprl train configs/quickstart.yaml run.seed=S`` — SFT warm start, evaluation
     (the "SFT start"), then GiGPO; judged on the mean of its last 3 evaluations;
  2. the same tiny model trained by SFT alone for ``--plateau-steps`` steps (no RL),
     evaluated on the same test tasks — what imitation reaches by itself;
  3. with ``--plateau-rl``: the same GiGPO iterations started from that plateau
     instead of the short warm start — whether RL adds what imitation does not.

Every evaluation is greedy on the same 200 test-split tasks (one episode each).
A run directory that already holds a ``summary.json`` is read, not trained again,
so the table can be built over several sittings (delete the directory to redo it).

    python benchmarks/quickstart_table.py [--seeds 0 1 2] [--plateau-steps 300] [--plateau-rl] [--out runs/bench_quickstart]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def run(overrides: list[str]) -> tuple[dict, float]:
    """(summary, wall seconds) of one run; a finished run directory is read instead (wall from its summary)."""
    from steprl.config import load_run_config
    from steprl.trainer.loop import RLRun

    run_dir = Path(next(o.split("=", 1)[1] for o in overrides if o.startswith("run.dir=")))
    if (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
        return summary, summary.get("wall_s", float("nan"))
    t0 = time.perf_counter()
    summary = RLRun(load_run_config(None, overrides)).run()
    return summary, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--plateau-steps", type=int, default=300)
    parser.add_argument("--plateau-rl", action="store_true", help="also run GiGPO from the SFT plateau")
    parser.add_argument("--out", default="runs/bench_quickstart")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args()

    rows = []
    for seed in args.seeds:
        base = [f"run.seed={seed}", "run.progress=false", *args.overrides]
        rl_dir = f"{args.out}/seed{seed}_rl"
        rl, rl_wall = run(base + [f"run.dir={rl_dir}"])
        from_base = ["tiny_model=null", f"agent.model={rl_dir}/base_model", f"sft.steps={args.plateau_steps}"]
        plateau, _ = run(base + [f"run.dir={args.out}/seed{seed}_sft_plateau", *from_base, "run.iterations=0"])
        row = {"seed": seed, "sft_start": rl["success_start"], "rl_last3": rl["success_last3"],
               "sft_plateau": plateau["success_start"], "rl_wall_min": rl_wall / 60, "curve": rl["success_curve"]}
        if args.plateau_rl:
            plateau_rl, _ = run(base + [f"run.dir={args.out}/seed{seed}_plateau_rl", *from_base])
            row.update(plateau_rl_start=plateau_rl["success_start"], plateau_rl_last3=plateau_rl["success_last3"],
                       plateau_rl_curve=plateau_rl["success_curve"])
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)

    print(f"\n# quickstart (configs/quickstart.yaml): held-out test success, 200 greedy episodes per evaluation")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"SFT plateau = {args.plateau_steps} SFT steps, no RL")
    print("| seed | SFT start | SFT + GiGPO (mean of last 3 evals) | gain | SFT plateau (no RL) | RL − plateau | wall (min) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {100 * r['sft_start']:.1f}% | {100 * r['rl_last3']:.1f}% | "
              f"{100 * (r['rl_last3'] - r['sft_start']):+.1f} | {100 * r['sft_plateau']:.1f}% | "
              f"{100 * (r['rl_last3'] - r['sft_plateau']):+.1f} | {r['rl_wall_min']:.1f} |")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("sft_start", "rl_last3", "sft_plateau", "rl_wall_min")}
    std = {k: float(np.std([r[k] for r in rows])) for k in ("sft_start", "rl_last3", "sft_plateau")}
    print(f"| mean ± std | {100 * mean['sft_start']:.1f} ± {100 * std['sft_start']:.1f}% | "
          f"{100 * mean['rl_last3']:.1f} ± {100 * std['rl_last3']:.1f}% | {100 * (mean['rl_last3'] - mean['sft_start']):+.1f} | "
          f"{100 * mean['sft_plateau']:.1f} ± {100 * std['sft_plateau']:.1f}% | "
          f"{100 * (mean['rl_last3'] - mean['sft_plateau']):+.1f} | {mean['rl_wall_min']:.1f} |")
    if args.plateau_rl:
        print(f"\n# GiGPO started from the SFT plateau ({args.plateau_steps} SFT steps), same RL iterations")
        print("| seed | SFT plateau (no RL) | plateau + GiGPO (mean of last 3 evals) | RL − plateau |")
        print("|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['seed']} | {100 * r['plateau_rl_start']:.1f}% | {100 * r['plateau_rl_last3']:.1f}% | "
                  f"{100 * (r['plateau_rl_last3'] - r['plateau_rl_start']):+.1f} |")
        start = float(np.mean([r["plateau_rl_start"] for r in rows]))
        last3 = float(np.mean([r["plateau_rl_last3"] for r in rows]))
        print(f"| mean | {100 * start:.1f}% | {100 * last3:.1f}% | {100 * (last3 - start):+.1f} |")


if __name__ == "__main__":
    main()
