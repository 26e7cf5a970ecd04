"""The ``steprl`` console script.

Each subcommand is a module in ``steprl/commands/`` with ``add_parser(subparsers)``
and ``run(args) -> int``. Errors a user can fix print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name → module in steprl.commands
COMMANDS = {
    "train": "train",
    "sft": "sft",
    "baselines": "baselines",
    "envs": "envs",
    "env": "env_new",
    "play": "play",
    "model": "model",
    "eval": "eval",
    "plot": "plot",
    "view": "view",
}


class UserError(Exception):
    """A mistake the user can fix: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from steprl import __version__

    parser = argparse.ArgumentParser(prog="steprl", description="Train LLM agents with step-level RL.")
    parser.add_argument("--version", action="version", version=f"steprl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(f"steprl.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"steprl.commands.{module}":
                continue  # command not part of this build
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from steprl import credit

    credit.tune_allocator()  # numpy temporaries reuse freed memory (see credit/allocator.py)
    try:
        return int(args.func(args) or 0)
    except (UserError, KeyError, ValueError, FileNotFoundError, FileExistsError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"steprl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
