"""``steprl sft CONFIG [key.sub=value ...]``: behaviour cloning on expert steps only (no RL).

Runs the config's SFT warm start (``sft.steps`` steps on the train split's
expert trajectories), evaluates, and checkpoints, in ``run.dir``.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sft", help="supervised warm start on expert trajectories (no RL)")
    p.add_argument("config", nargs="?", help="YAML run config (default: configs/quickstart.yaml)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. sft.steps=200")
    p.set_defaults(func=run, resume=None)


def run(args: argparse.Namespace) -> int:
    from steprl.commands.train import load
    from steprl.trainer.loop import RLRun

    cfg = load(args)
    cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"iterations": 0})})
    if cfg.sft.steps == 0:
        from steprl.cli import UserError

        raise UserError("sft.steps is 0: nothing to do (set sft.steps=N)")
    print(f"steprl sft: {cfg.env.id}, {cfg.sft.steps} steps → {cfg.run.dir}")
    summary = RLRun(cfg).run()
    print(f"held-out success after SFT: {100 * summary['success_start']:.1f}% "
          f"({summary['eval_split']} split, {summary['eval_episodes']} episodes)")
    return 0
