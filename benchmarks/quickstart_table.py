"""The quickstart's acceptance table: SFT start, SFT + RL, and SFT to its plateau, over seeds.

For each seed:
  1. ``steprl train configs/quickstart.yaml run.seed=S`` — SFT warm start, evaluation
     (the "SFT start"), then GiGPO; judged on the mean of its last 3 evaluations;
  2. the same tiny model trained by SFT alone for ``--plateau-steps`` steps (no RL),
     evaluated on the same test tasks — what imitation reaches by itself.

Every evaluation is greedy on the same 200 test-split tasks (one episode each).

    python benchmarks/quickstart_table.py [--seeds 0 1 2] [--plateau-steps 300] [--out runs/bench_quickstart]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def run(overrides: list[str]) -> dict:
    from steprl.config import load_run_config
    from trainer.loop import RLRun

    return RLRun(load_run_config(None, overrides)).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--plateau-steps", type=int, default=300)
    parser.add_argument("--out", default="runs/bench_quickstart")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args()

    rows = []
    for seed in args.seeds:
        base = [f"run.seed={seed}", "run.progress=false", *args.overrides]
        rl_dir = f"{args.out}/seed{seed}_rl"
        t0 = time.perf_counter()
        rl = run(base + [f"run.dir={rl_dir}"])
        rl_wall = time.perf_counter() - t0
        plateau = run(base + [f"run.dir={args.out}/seed{seed}_sft_plateau", "tiny_model=null",
                              f"agent.model={rl_dir}/base_model", f"sft.steps={args.plateau_steps}", "run.iterations=0"])
        rows.append({"seed": seed, "sft_start": rl["success_start"], "rl_last3": rl["success_last3"],
                     "sft_plateau": plateau["success_start"], "rl_wall_min": rl_wall / 60,
                     "curve": rl["success_curve"]})
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


if __name__ == "__main__":
    main()
