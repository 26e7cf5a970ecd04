"""``steprl train [CONFIG] [key.sub=value ...]`` and ``steprl train --resume RUN_DIR``.

With no CONFIG, runs ``configs/quickstart.yaml``. The config is validated
before any work starts; a bad one prints the field at fault and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an agent with RL (default: configs/quickstart.yaml)")
    p.add_argument("config", nargs="?", help="YAML run config (default: configs/quickstart.yaml)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. trainer.lr=1e-4")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.set_defaults(func=run)


def split_args(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """A first positional with '=' is an override, not a config path."""
    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).exists():
        overrides.insert(0, config)
        config = None
    return config, overrides


def load(args: argparse.Namespace):
    from steprl.config import load_run_config

    config, overrides = split_args(args)
    if args.resume:
        from steprl.trainer.checkpoint import RUN_CONFIG

        saved = Path(args.resume) / RUN_CONFIG
        if not saved.is_file():
            from steprl.cli import UserError

            raise UserError(f"--resume {args.resume}: no config.yaml there (is it a run directory?)")
        return load_run_config(saved, [f"run.dir={args.resume}", *overrides])
    return load_run_config(config, overrides)


def run(args: argparse.Namespace) -> int:
    from steprl import credit
    from steprl.trainer.loop import RLRun

    cfg = load(args)
    credit.tune_allocator()  # training's credit step reuses freed memory for numpy temporaries (credit/allocator.py)
    print(f"steprl train: {cfg.env.id} with {cfg.credit.estimator}, {cfg.run.iterations} iterations → {cfg.run.dir}")
    summary = RLRun(cfg, resume=bool(args.resume)).run()
    print_summary(summary)
    return 0


def print_summary(summary: dict) -> None:
    start, last = summary["success_start"], summary["success_last3"]
    print(f"\nheld-out success ({summary['eval_split']} split, {summary['eval_episodes']} episodes per evaluation):")
    if math.isnan(start):
        print("  start (after SFT warm start): not evaluated")
    else:
        print(f"  start (after SFT warm start): {100 * start:5.1f}%")
    if math.isnan(last):
        print("  after RL: no evaluation after iteration 0 (run.iterations=0, or eval.every larger than it)")
    elif math.isnan(start):
        print(f"  after RL (mean of last 3 evaluations): {100 * last:5.1f}%")
    else:
        print(f"  after RL (mean of last 3 evaluations): {100 * last:5.1f}%   ({100 * (last - start):+.1f} points)")
    print(f"  wall time {summary['wall_s'] / 60:.1f} min; run directory {summary['run_dir']}")
    print("  curve: " + json.dumps([[int(i), round(100 * s, 1)] for i, s in summary["success_curve"]]))
