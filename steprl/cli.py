"""The ``steprl`` console script.

Each subcommand is a module in ``steprl/commands/`` with ``add_parser(subparsers)``
and ``run(args) -> int``. Errors a user can fix print one line and exit 2: a
:class:`UserError`, a bad config (``ConfigError``), an unknown env id, a missing
or corrupt file, and any ``ValueError``/``KeyError``/``FileNotFoundError``/
``FileExistsError`` that steprl's own code raises on purpose (a ``raise``
statement in steprl's source, with a message). Anything else is unexpected and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import linecache
import sys
import traceback
from pathlib import Path

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
    "bench": "bench",
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
    try:
        return int(args.func(args) or 0)
    except (UserError, KeyError, ValueError, FileNotFoundError, FileExistsError) as exc:
        if not is_user_error(exc):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"steprl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _source_roots() -> tuple[str, ...]:
    """The folders of steprl's own source (found without importing the packages: importing agent loads torch)."""
    roots = [str(Path(__file__).parent)]
    for name in ("envs", "agent", "credit", "trainer", "evaluation"):
        spec = importlib.util.find_spec(f"steprl.{name}")
        roots += list(spec.submodule_search_locations or []) if spec is not None else []
    return tuple(roots)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a message for the user (print one line) rather than a bug (keep the traceback).

    Yes for :class:`UserError` and the config loader's ``ConfigError``; for the other
    caught types, yes when the innermost frame is a ``raise`` statement in steprl's
    own source and the exception carries a message. A ``KeyError`` from a dict
    lookup, or a ``ValueError`` from numpy or torch, is a bug and keeps its traceback.
    """
    from steprl.loader import ConfigError

    if isinstance(exc, (UserError, ConfigError)):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or not exc.args or not isinstance(exc.args[0], str):
        return False
    last = frames[-1]
    line = linecache.getline(last.filename, last.lineno).strip() if last.lineno else ""
    return last.filename.startswith(_source_roots()) and line.startswith("raise")


if __name__ == "__main__":
    sys.exit(main())
