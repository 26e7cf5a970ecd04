"""Credit estimators head to head on the quickstart setting, at equal budget.

Superseded by ``steprl bench benchmarks/suites/coin_collector.yaml`` (docs/bench.md): one SFT start
per seed that every method loads, greedy and sampled evaluation, t-intervals over seeds.
Kept as it is so that the README's earlier tables can be reproduced.

Each method trains ``configs/quickstart.yaml`` (same tiny model recipe, same SFT
warm start, same number of iterations, tasks and episodes) with only the credit
assignment changed, over several seeds. Each run is a separate process so its
peak RSS is its own. Reports held-out test success (each run judged on the mean
of its last 3 evaluations; mean ± std over seeds), the gain over the SFT start,
wall time and peak RSS. ``grpo+kl`` adds a KL term to a reference model
(kl_coef 0.01), the one setting here that holds a second model copy. ``spa`` uses the
SPA reference code's grounding weight β = 0.5 per executed action. Agent RL code for
ALFWorld (GiGPO's verl-agent) pays 10 for a win; this env pays 1, and at β = 0.5 a
20-turn walk of valid moves out-earns a win. ``spa-beta0.05`` keeps the ratio β : win
reward = 0.5 : 10. ``spa-state`` also has the progress estimator read the state (last
prompt token) instead of the end-of-turn token, whose features hardly vary here
(docs/training.md). ``spa-ridge`` keeps the reference's end-of-turn token and β = 0.05
and fits the (linear) estimator exactly by ridge regression each iteration
(``trainer.progress_head.solver=ridge``) instead of with a few AdamW steps.
``spa-replay`` fits it on the last 4 iterations' trajectories as well
(``trainer.progress_head.replay=4``, their features recomputed under the current policy).

    python benchmarks/compare_credit.py [key=value ...] [--seeds 0 1 2] [--methods gigpo grpo rloo loop spa spa-beta0.05 spa-state spa-ridge spa-replay grpo+kl]

(key=value overrides, applied to every run, go before the options: ``--methods`` takes
every word after it.) Two invocations with disjoint ``--methods`` and the same ``--out``
can run side by side (e.g. with ``run.torch_threads=1`` each); a last invocation with
all methods then only reads their results and prints the whole table.

Runs go seed by seed (every method on seed 0 first). A finished run leaves
``bench.json`` (its wall time and peak RSS) beside its ``summary.json``; a later
invocation with the same ``--out`` reuses it instead of training again, so the
table can be built up over several sittings. Wall time is the run's own; on a
shared machine it is inflated by the load, which the table prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

METHODS = {
    "gigpo": ["credit.estimator=gigpo"],
    "grpo": ["credit.estimator=grpo", "credit.params={}"],
    "rloo": ["credit.estimator=rloo", "credit.params={}"],
    "loop": ["credit.estimator=loop", "credit.params={}", "trainer.aggregation=seq-mean-token-mean"],
    "spa": ["credit.estimator=spa", "credit.params={gamma: 0.95}"],
    "spa-beta0.05": ["credit.estimator=spa", "credit.params={gamma: 0.95, beta: 0.05}"],
    "spa-state": ["credit.estimator=spa", "credit.params={gamma: 0.95, beta: 0.05}",
                  "trainer.progress_head.read_at=last_prompt"],
    "spa-ridge": ["credit.estimator=spa", "credit.params={gamma: 0.95, beta: 0.05}",
                  "trainer.progress_head.solver=ridge"],
    "spa-replay": ["credit.estimator=spa", "credit.params={gamma: 0.95, beta: 0.05}",
                   "trainer.progress_head.solver=ridge", "trainer.progress_head.replay=4"],
    "grpo+kl": ["credit.estimator=grpo", "credit.params={}", "trainer.kl_coef=0.01"],
}


def train(overrides: list[str]) -> tuple[dict, float, float]:
    """Run one training process; returns (summary, wall seconds, peak RSS in MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "steprl", "train", "configs/quickstart.yaml", *overrides],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"training failed: {' '.join(overrides)}\n{proc.stderr.read()[-2000:]}")
    run_dir = next(o.split("=", 1)[1] for o in overrides if o.startswith("run.dir="))
    return json.loads((Path(run_dir) / "summary.json").read_text()), wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--out", default="runs/bench_credit")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run (before the options)")
    args = parser.parse_args()

    results: dict[str, list[tuple[dict, float, float]]] = {method: [] for method in args.methods}
    loads = []
    for seed in args.seeds:
        for method in args.methods:
            run_dir = Path(f"{args.out}/{method}_seed{seed}")
            overrides = [f"run.seed={seed}", f"run.dir={run_dir}", "run.progress=false", "run.overwrite=true",
                         *METHODS[method], *args.overrides]
            record = run_dir / "bench.json"
            if record.exists() and json.loads(record.read_text()).get("overrides") == overrides:
                saved = json.loads(record.read_text())
                result = (json.loads((run_dir / "summary.json").read_text()), saved["wall_s"], saved["peak_rss_mib"])
                loads.append(saved.get("load", float("nan")))
            else:
                loads.append(os.getloadavg()[0])
                result = train(overrides)
                record.write_text(json.dumps({"overrides": overrides, "wall_s": result[1],
                                              "peak_rss_mib": result[2], "load": loads[-1]}))
            results[method].append(result)
            summary, wall, rss = result
            print(json.dumps({"method": method, "seed": seed, "start": summary["success_start"],
                              "last3": summary["success_last3"], "wall_s": wall, "peak_rss_mib": rss}), flush=True)

    print(f"\n# credit estimators on the quickstart setting, seeds {args.seeds}; held-out test success, "
          f"200 greedy episodes per evaluation, each run = mean of its last 3 evaluations")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"load average when runs started: {np.nanmin(loads):.1f}-{np.nanmax(loads):.1f}")
    print("(± is the standard deviation over seeds, ddof=0)")
    print("| method | success after RL | per seed | gain over SFT start | wall (min) | peak RSS (MiB) |")
    print("|---|---:|---|---:|---:|---:|")
    for method, runs in results.items():
        last = np.array([s["success_last3"] for s, _, _ in runs])
        gain = last - np.array([s["success_start"] for s, _, _ in runs])
        per_seed = ", ".join(f"{100 * x:.1f}" for x in last)
        print(f"| {method} | {100 * last.mean():.1f} ± {100 * last.std():.1f}% | {per_seed} | {100 * gain.mean():+.1f} | "
              f"{np.mean([w for _, w, _ in runs]) / 60:.1f} | {np.max([r for _, _, r in runs]):.0f} |")


if __name__ == "__main__":
    main()
