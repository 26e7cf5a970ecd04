"""``steprl envs``: list registered environments with a one-line description."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list registered environments")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl import envs

    specs = envs.registry()
    width = max(len(i) for i in specs)
    for env_id, spec in specs.items():
        source = "" if spec.source == "steprl" else f"  [{spec.source}]"
        print(f"{env_id:<{width}}  {spec.description}{source}")
    return 0
