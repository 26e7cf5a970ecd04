"""``steprl bench SUITE.yaml [--jobs N] [--threads T] [--seeds S ...] [--methods M ...] [--dry-run]``: a suite's Table 1.

Runs the suite's SFT start, SFT plateau and methods per seed (``steprl.bench``), each in its
own subprocess, reusing finished runs and resuming interrupted ones, then writes
``benchmarks/results/<suite>.md`` and ``.json``. How to write and read a suite: docs/bench.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark suite: every method from the same SFT start, one table")
    p.add_argument("suite", help="suite YAML, e.g. benchmarks/suites/coin_collector.yaml")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs side by side, each in its own process with one torch thread when > 1 (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (default: 1 when --jobs > 1, else torch's choice); "
                        "use 1 to leave the other core free")
    p.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: the suite's)")
    p.add_argument("--methods", nargs="+", metavar="ROW",
                   help="only these rows: method names, sft_start, sft_plateau (a method's SFT start comes along)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (runs, their state and configs); run nothing")
    p.add_argument("--table-only", action="store_true",
                   help="write the tables from the runs finished so far (and the archived ones); run nothing")
    p.add_argument("--out", default="runs/bench", help="run tree root: OUT/<suite>/seed<S>/<row>/ (default runs/bench)")
    p.add_argument("--results", default="benchmarks/results", help="where the tables go (default benchmarks/results)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl import bench
    from steprl.cli import UserError

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: give 1 or more")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: give 1 or more")
    suite = bench.load_suite(args.suite)
    runs = bench.plan_suite(suite, args.out, jobs=args.jobs, threads=args.threads)
    bench.attach_archive(runs, bench.load_archive(args.results, suite.name))
    selected = select(runs, suite, args.seeds, args.methods)
    if args.dry_run:
        print(bench.describe_plan(suite, selected))
        return 0
    if args.table_only:
        outcome = {}
    else:
        print(f"steprl bench {args.suite}: {len(selected)} of {len(runs)} runs, {args.jobs} at a time "
              f"→ {Path(args.out) / suite.name}")
        outcome = bench.run_suite(suite, selected, jobs=args.jobs, threads=args.threads,
                                  say=lambda line: print(line, flush=True))
    table = bench.build_table(suite, runs, suite_path=args.suite)
    json_path, md_path = bench.write_table(table, args.results)
    print("\n" + bench.table_markdown(table))
    print(f"tables: {md_path}, {json_path}")
    return 1 if any(o in ("failed", "skipped") for o in outcome.values()) else 0


def select(runs, suite, seeds, rows):
    """The runs of the chosen seeds and rows, with the runs they need."""
    from steprl.cli import UserError

    unknown_seeds = sorted(set(seeds or []) - set(suite.seeds))
    if unknown_seeds:
        raise UserError(f"--seeds {unknown_seeds}: not seeds of the suite ({suite.seeds})")
    unknown_rows = sorted(set(rows or []) - set(suite.rows))
    if unknown_rows:
        raise UserError(f"--methods {unknown_rows}: not rows of the suite ({suite.rows})")
    wanted = {r.id for r in runs if (seeds is None or r.seed in seeds) and (rows is None or r.row in rows)}
    by_id = {r.id: r for r in runs}
    for run_id in list(wanted):
        wanted.update(by_id[run_id].needs)
    return [r for r in runs if r.id in wanted]
