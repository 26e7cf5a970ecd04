"""TextWorld game families: ``textworld/coin_collector-v0``, ``treasure_hunter``, ``simple``, ``cooking``.

Difficulty is set by keyword arguments of :func:`envs.make`, e.g.
``envs.make("textworld/coin_collector-v0", level=[10, 20])`` or
``envs.make("textworld/cooking-v0", recipe=2, take=1, go=6, open=True)``.
"""

from steprl.envs.registration import register
from steprl.envs.textworld.env import TextWorldEnv, clean_feedback
from steprl.envs.textworld.games import cache_root, game_path, generate_game, prepare_games

__all__ = ["TextWorldEnv", "clean_feedback", "cache_root", "game_path", "generate_game", "prepare_games", "FAMILIES"]

#: id → (challenge, default settings, time limit, description)
FAMILIES = {
    "textworld/coin_collector-v0": (
        "tw-coin_collector", {"level": [2, 3, 4, 5]}, 50,
        "Find and take a coin along a chain of rooms (TextWorld Coin Collector, levels 2-5).",
    ),
    "textworld/treasure_hunter-v0": (
        "tw-treasure_hunter", {"level": [1, 2, 3]}, 50,
        "Find a named object among distractors (TextWorld Treasure Hunter, levels 1-3).",
    ),
    "textworld/simple-v0": (
        "tw-simple", {"rewards": "dense", "goal": "detailed"}, 50,
        "Fixed six-room house: fetch an item and put it in place (TextWorld Simple, dense rewards).",
    ),
    "textworld/cooking-v0": (
        "tw-cooking", {"recipe": 1, "take": 1, "go": 1, "open": False, "cook": False, "cut": False, "drop": False}, 50,
        "Gather ingredients and prepare a meal (TextWorld Cooking, recipe 1, take 1, 1 room).",
    ),
}

for _env_id, (_challenge, _settings, _limit, _description) in FAMILIES.items():
    register(
        _env_id,
        TextWorldEnv,
        description=_description,
        max_episode_steps=_limit,
        kwargs={"challenge": _challenge, **_settings},
    )
