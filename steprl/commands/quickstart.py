"""``steprl quickstart``: the README's main job.

Until the trainer lands this plays the expert and a random agent on held-out
TextWorld games and prints their success rates (the ceiling and the floor a
trained agent will sit between).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="the main job on the embedded default (see README)")
    p.add_argument("--env", default="textworld/coin_collector-v0")
    p.add_argument("--episodes", type=int, default=50)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from evaluation import ExpertPolicy, RandomPolicy, run_policy

    print(f"steprl quickstart: reference agents on {args.env}, {args.episodes} test games")
    results = [run_policy(args.env, p, split="test", num_tasks=args.episodes) for p in (ExpertPolicy(), RandomPolicy(0))]
    for r in results:
        print(r.line())
    return 0
