"""TextWorld games as steprl text envs.

One class, :class:`TextWorldEnv`, serves every TextWorld challenge; the
registered ids (``textworld/coin_collector-v0`` …) fix the challenge and its
difficulty settings, and ``make(..., **settings)`` can change them.

Observation: TextWorld's feedback, cleaned (no ASCII banner, no trailing
``>`` status line); the objective is given once as ``info["task"]``.
Actions: any of ``info["admissible_actions"]``; anything else is an invalid
action (state unchanged, ``valid_action=False``). Reward: the change in
TextWorld's score. ``success``: TextWorld's ``won``. ``expert_action``: the
first of TextWorld's policy commands, re-planned after every step.
``anchor``: the observation; when it does not name the room (after
``inventory`` or a failed command) it is prefixed by the room's name, so two
different states never share an anchor because their feedback happens to match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from steprl.envs.core import TextEnv
from steprl.envs.textworld.games import generate_game

__all__ = ["TextWorldEnv", "clean_feedback"]

_ROOM_RE = re.compile(r"-= (.+?) =-")


def clean_feedback(text: str) -> str:
    """Strip TextWorld's intro banner/objective and the trailing ``>`` status line."""
    start = text.find("-= ")
    if "Welcome to TextWorld" in text or "$$$$" in text:  # the intro screen: keep from the first room header
        text = text[start:] if start >= 0 else ""
    end = text.find("*** The End ***")
    if end >= 0:  # drop the closing score screen and "Would you like to RESTART..."
        text = text[: end + len("*** The End ***")]
    cut = text.rfind("\n>")
    if cut >= 0:
        text = text[:cut]
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


class TextWorldEnv(TextEnv):
    """A TextWorld challenge as a text env.

    Args:
        challenge: ``"tw-coin_collector"``, ``"tw-treasure_hunter"``, ``"tw-simple"`` or ``"tw-cooking"``.
        settings: the challenge's settings. A list value (e.g. ``level=[2, 3, 4]``)
            is a set of difficulties; a task seed picks one of them.
        split: ``"train"``, ``"valid"`` or ``"test"`` (disjoint seed ranges).
        num_tasks: use only the first ``num_tasks`` seeds of the split.
    """

    def __init__(self, challenge: str, split: str = "train", num_tasks: int | None = None,
                 render_mode: str | None = None, **settings: Any):
        super().__init__(split=split, num_tasks=num_tasks, render_mode=render_mode)
        self.challenge = challenge
        self.settings = settings
        self._tw_env = None
        self._game_state = None
        self._score = 0

    # -- tasks ------------------------------------------------------------------
    def task_settings(self, task_seed: int) -> dict[str, Any]:
        """The concrete generator settings of one task seed."""
        out: dict[str, Any] = {}
        for key, value in self.settings.items():
            if isinstance(value, Sequence) and not isinstance(value, str):
                value = list(value)[task_seed % len(value)]
            out[key] = value
        if self.challenge == "tw-cooking":
            out.setdefault("split", self.split)
            out.setdefault("recipe_seed", task_seed)
        if self.challenge == "tw-simple":
            out.setdefault("test", self.split == "test")
        return out

    def game_file(self, task_seed: int) -> str:
        """Path of the (generated, cached) game of ``task_seed``."""
        return str(generate_game(self.challenge, self.task_settings(task_seed), task_seed))

    def prepare(self, workers: int | None = None, progress: bool = True) -> None:
        """Generate (or find cached) every game of the split, over ``workers`` processes."""
        from steprl.envs.textworld.games import prepare_games

        jobs = [(self.challenge, self.task_settings(s), s) for s in self.task_seeds]
        prepare_games(jobs, workers=workers, progress=progress)

    def _load_task(self, task_seed: int) -> None:
        import textworld

        if self._tw_env is not None:
            self._tw_env.close()
        infos = textworld.EnvInfos(admissible_commands=True, won=True, lost=True, score=True,
                                   max_score=True, objective=True, policy_commands=True)
        self._tw_env = textworld.start(self.game_file(task_seed), request_infos=infos)

    # -- episode ------------------------------------------------------------------
    def _info(self, state: Any, obs: str) -> dict[str, Any]:
        room = _ROOM_RE.search(str(state.feedback).rsplit("\n>", 1)[-1]) or _ROOM_RE.search(obs)
        anchor = obs if _ROOM_RE.search(obs) or room is None else f"-= {room.group(1)} =-\n{obs}"
        policy = list(state.policy_commands or [])
        return {
            "task": self._objective,
            "admissible_actions": sorted(state.admissible_commands or []),
            "anchor": anchor,
            "expert_action": policy[0] if policy else None,
            "score": int(state.score or 0),
            "max_score": int(state.max_score or 0),
        }

    def _reset_task(self, rng: np.random.Generator) -> tuple[str, dict]:
        state = self._tw_env.reset()
        self._objective = str(state.objective or "").strip() or "Win the game."
        self._score = int(state.score or 0)
        self._game_state = state
        obs = clean_feedback(str(state.feedback))
        return obs, self._info(state, obs)

    def _step_action(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if action not in (self._game_state.admissible_commands or []):
            lowered = action.strip().lower()
            if lowered not in (self._game_state.admissible_commands or []):
                return self.invalid_action()
            action = lowered
        state, _, done = self._tw_env.step(action)
        self._game_state = state
        score = int(state.score or 0)
        reward, self._score = score - self._score, score
        obs = clean_feedback(str(state.feedback))
        info = self._info(state, obs)
        info["valid_action"] = True
        info["won"] = bool(state.won)
        if done:
            info["success"] = bool(state.won)
        return obs, float(reward), bool(done), False, info

    def close(self) -> None:
        if self._tw_env is not None:
            self._tw_env.close()
            self._tw_env = None
