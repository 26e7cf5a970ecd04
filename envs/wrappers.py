"""Wrappers for text envs. Each is a few lines, as in Gymnasium."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import gymnasium

__all__ = ["TimeLimit", "ActionHistory", "IndexedActions", "indexed_action_text"]


class TimeLimit(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """End the episode as truncated after ``max_episode_steps`` steps.

    Unlike Gymnasium's, it also sets ``info["success"] = False`` on truncation,
    so every ended episode carries ``success``. As Gymnasium's does, it reports its
    limit in ``env.spec.max_episode_steps``.
    """

    def __init__(self, env: gymnasium.Env, max_episode_steps: int):
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps={max_episode_steps} must be >= 1")
        gymnasium.utils.RecordConstructorArgs.__init__(self, max_episode_steps=max_episode_steps)
        gymnasium.Wrapper.__init__(self, env)
        self.max_episode_steps = max_episode_steps
        self._elapsed = 0

    @property
    def spec(self):
        env_spec = super().spec
        if env_spec is not None and env_spec.max_episode_steps != self.max_episode_steps:
            env_spec = dataclasses.replace(env_spec, max_episode_steps=self.max_episode_steps)
            self._cached_spec = env_spec
        return env_spec

    def reset(self, **kwargs: Any):
        self._elapsed = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._elapsed += 1
        if self._elapsed >= self.max_episode_steps and not terminated:
            truncated = True
        if terminated or truncated:
            info.setdefault("success", False)
        return obs, reward, terminated, truncated, info


class ActionHistory(gymnasium.Wrapper):
    """Keep the episode's (observation, action) pairs in ``info["history"]``."""

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._history: list[tuple[str, str]] = []
        self._last_obs = obs
        info["history"] = []
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._history.append((self._last_obs, action))
        self._last_obs = obs
        info["history"] = list(self._history)
        return obs, reward, terminated, truncated, info


_NUMBER = re.compile(r"\s*(\d+)(?::|\s|$)")


def indexed_action_text(action: str, admissible: list[str] | None) -> str:
    """The action a numbered reply stands for, given :class:`IndexedActions`' labeled list (``"N: action"``);
    any other reply is returned as it is."""
    if admissible and isinstance(action, str):
        match = _NUMBER.match(action)
        if match and 1 <= int(match.group(1)) <= len(admissible):
            label = admissible[int(match.group(1)) - 1]
            prefix = f"{int(match.group(1))}: "
            if label.startswith(prefix):  # only IndexedActions' labels: "3 apples" in a plain list stays as it is
                return label[len(prefix):]
    return action


class IndexedActions(gymnasium.Wrapper):
    """Number the admissible actions and accept ``"N"`` for the N-th one; other text passes through.

    For small models that cannot copy long identifiers (a shop's product ids, ALFWorld's
    ``go to countertop 2``): ``info["admissible_actions"]`` becomes ``["1: click[Back to Search]",
    "2: click[B0FAM35Z75]", …]``, a reply whose first word is a number in range runs that action,
    and any other reply (a free-text ``search[...]``) reaches the env unchanged. The expert's action
    (``info["expert_action"]``) is given as its number when it is admissible, so SFT teaches numbers.
    ``info["action_text"]`` is the action the env ran, for histories. Made by
    ``envs.make(..., indexed_actions=True)``, or ``env.kwargs: {indexed_actions: true}`` in a run config.
    """

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self._actions: list[str] = []

    def _label(self, info: dict) -> dict:
        actions = info.get("admissible_actions")
        self._actions = list(actions) if actions else []
        if actions:
            info["admissible_actions"] = [f"{i}: {a}" for i, a in enumerate(self._actions, 1)]
            expert = info.get("expert_action")
            if expert is not None and expert in self._actions:
                info["expert_action"] = str(self._actions.index(expert) + 1)
        return info

    def action_text(self, action: str) -> str:
        """The env action a reply stands for: the N-th admissible action for ``"N"`` (or ``"N: …"``), else the reply."""
        if isinstance(action, str):
            match = _NUMBER.match(action)
            if match and 1 <= int(match.group(1)) <= len(self._actions):
                return self._actions[int(match.group(1)) - 1]
        return action

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return obs, self._label(info)

    def step(self, action: Any):
        text = self.action_text(action)
        obs, reward, terminated, truncated, info = self.env.step(text)
        info["action_text"] = text
        return obs, reward, terminated, truncated, self._label(info)
