"""``steprl plot RUN_DIR [--out DIR]``: PNG training curves from a run's metrics.jsonl.

Writes success.png (one point per evaluation), reward.png, turns.png,
losses.png and credit.png, plus curves.json with the plotted data, into
``RUN_DIR/plots`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="PNG training curves of a run (success, reward, turns, losses, credit)")
    p.add_argument("run_dir", help="a run directory (holds metrics.jsonl)")
    p.add_argument("--out", help="output folder (default RUN_DIR/plots)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl.evaluation.plots import plot_run

    paths = plot_run(args.run_dir, args.out)
    for path in paths:
        print(path)
    return 0
