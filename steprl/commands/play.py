"""``steprl play ENV_ID``: play an env in the terminal (admissible actions and rewards shown)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="play an environment in the terminal")
    p.add_argument("env_id", help="e.g. textworld/coin_collector-v0 (see `steprl envs`)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (picks the task)")
    p.add_argument("--split", default="train", choices=["train", "valid", "test"])
    p.add_argument("--task", type=int, default=None, help="task index within the split (default: drawn from the seed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl import envs

    env = envs.make(args.env_id, split=args.split)
    options = None if args.task is None else {"task": args.task}
    obs, info = env.reset(seed=args.seed, options=options)
    print(f"TASK: {info['task']}\n")
    total, turn = 0.0, 0
    while True:
        print(obs)
        if info.get("admissible_actions"):
            print("\n  actions: " + " | ".join(info["admissible_actions"]))
        print("  (type an action, 'expert' for the expert's, or 'quit')")
        try:
            line = input("> ")
        except EOFError:
            print()
            return 0
        if line.strip() == "quit":
            return 0
        if line.strip() == "expert" and info.get("expert_action"):
            line = info["expert_action"]
            print(f"  expert: {line}")
        obs, reward, terminated, truncated, info = env.step(line)
        turn += 1
        total += reward
        flag = "" if info.get("valid_action", True) else "  (invalid action)"
        print(f"\n[turn {turn}] reward {reward:+g}  total {total:g}{flag}\n")
        if terminated or truncated:
            print(obs)
            outcome = "SUCCESS" if info.get("success") else ("TRUNCATED" if truncated else "FAILED")
            print(f"\nepisode over after {turn} turns: {outcome}, return {total:g}")
            sys.stdout.flush()
            return 0
