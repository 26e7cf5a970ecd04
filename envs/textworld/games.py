"""Offline TextWorld game generation with an on-disk cache.

Games are made by TextWorld's own challenge generators (``tw-coin_collector``,
``tw-treasure_hunter``, ``tw-simple``, ``tw-cooking``) and cached by
(challenge, settings, seed) under ``$STEPRL_CACHE/textworld`` (default
``~/.cache/steprl/textworld``), so a second run loads instead of regenerating.
A cache entry is written to a temporary folder and renamed into place, so a
killed generation never leaves a half-written game behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from steprl.envs.cache import cache_dir, run_jobs
from pathlib import Path
from typing import Any

__all__ = ["cache_root", "game_path", "generate_game", "prepare_games", "CHALLENGES"]

CHALLENGES = ("tw-coin_collector", "tw-treasure_hunter", "tw-simple", "tw-cooking")


def cache_root() -> Path:
    """Where generated games live: ``$STEPRL_CACHE/textworld`` or ``~/.cache/steprl/textworld``."""
    return cache_dir("textworld")


def _settings_key(challenge: str, settings: Mapping[str, Any]) -> str:
    blob = json.dumps({"challenge": challenge, "settings": dict(settings)}, sort_keys=True)
    name = "-".join(f"{k}{v}" for k, v in sorted(settings.items()))[:60].replace("/", "_")
    return f"{challenge}/{name}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def game_path(challenge: str, settings: Mapping[str, Any], seed: int) -> Path:
    """The cached ``.z8`` file of one game (it may not exist yet)."""
    return cache_root() / _settings_key(challenge, settings) / f"seed{seed}" / "game.z8"


def generate_game(challenge: str, settings: Mapping[str, Any], seed: int) -> Path:
    """Return the path of the game, generating and caching it if needed."""
    path = game_path(challenge, settings, seed)
    if path.exists():
        return path
    if challenge not in CHALLENGES:
        raise ValueError(f"unknown TextWorld challenge {challenge!r}; choose one of {CHALLENGES}")
    import textworld
    import textworld.challenges
    from textworld.generator.game import GameOptions

    path.parent.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".seed{seed}-", dir=path.parent.parent))
    try:
        options = GameOptions()
        options.seeds = seed
        options.path = str(tmp / "game.z8")
        options.file_ext = ".z8"
        make = textworld.challenges.CHALLENGES[challenge][1]
        game = make(dict(settings), options)
        textworld.generator.compile_game(game, options)
        try:
            os.rename(tmp, path.parent)
        except OSError:  # another process generated it first
            if not path.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _generate_job(job: tuple[str, dict, int]) -> str:
    return str(generate_game(*job))


def prepare_games(jobs: Iterable[tuple[str, Mapping[str, Any], int]], workers: int | None = None,
                  progress: bool = True) -> list[Path]:
    """Generate many games (skipping cached ones) over ``workers`` processes, with a progress bar."""
    jobs = [(c, dict(s), int(seed)) for c, s, seed in jobs]
    todo = [j for j in jobs if not game_path(*j).exists()]
    run_jobs(_generate_job, todo, desc="generating TextWorld games", unit="game", workers=workers, progress=progress)
    return [game_path(*j) for j in jobs]
