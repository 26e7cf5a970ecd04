"""``steprl baselines [--env ENV_ID]``: the expert and a random agent on held-out tasks.

Prints their success rates: the ceiling and the floor a trained agent sits between.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baselines", help="success rates of the expert and a random agent on test tasks")
    p.add_argument("--env", default="textworld/coin_collector-v0")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--seed", type=int, default=0, help="the seed of `steprl eval --seeds` whose rows to match")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl.evaluation import ExpertPolicy, RandomPolicy, run_policy

    print(f"steprl baselines: reference agents on {args.env}, {args.episodes} {args.split} tasks, seed {args.seed}")
    results = [run_policy(args.env, p, split=args.split, num_tasks=args.episodes, seed=args.seed)
               for p in (ExpertPolicy(), RandomPolicy())]
    for r in results:
        print(r.line())
    return 0
