"""``steprl baselines [--env ENV_ID]``: the expert and a random agent on held-out tasks.

Prints their success rates: the ceiling and the floor a trained agent sits between.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baselines", help="success rates of the expert and a random agent on test tasks")
    p.add_argument("--env", default="textworld/coin_collector-v0")
    p.add_argument("--episodes", type=int, default=50)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl.evaluation import ExpertPolicy, RandomPolicy, run_policy

    print(f"steprl baselines: reference agents on {args.env}, {args.episodes} test games")
    results = [run_policy(args.env, p, split="test", num_tasks=args.episodes) for p in (ExpertPolicy(), RandomPolicy(0))]
    for r in results:
        print(r.line())
    return 0
