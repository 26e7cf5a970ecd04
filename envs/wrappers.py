"""Wrappers for text envs. Each is a few lines, as in Gymnasium."""

from __future__ import annotations

import dataclasses

from typing import Any

import gymnasium

__all__ = ["TimeLimit", "ActionHistory"]


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
