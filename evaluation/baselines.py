"""Reference agents — the floor and the ceiling of every report.

* :class:`RandomPolicy`: a uniformly random admissible action each step.
* :class:`ExpertPolicy`: the env's ``info["expert_action"]`` each step.

:func:`run_policy` plays one episode per task of a split and returns the
success rate with its standard error. It plays through the same episode loop,
turn limit and seeds as the reference rows of ``steprl eval``
(:func:`agent.scripted.play_scripted`), so ``steprl baselines`` and ``steprl eval``
give the same random and expert rows for the same env, split, seed and episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from steprl.agent.scripted import ExpertPolicy, RandomPolicy

__all__ = ["RandomPolicy", "ExpertPolicy", "run_policy", "PolicyResult"]


@dataclass
class PolicyResult:
    """Outcome of :func:`run_policy`."""

    policy: str
    env_id: str
    split: str
    episodes: int
    successes: int
    mean_return: float
    mean_turns: float
    per_episode: list[bool] = field(default_factory=list, repr=False)

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.episodes, 1)

    @property
    def stderr(self) -> float:
        p = self.success_rate
        return math.sqrt(p * (1 - p) / max(self.episodes, 1))

    def line(self) -> str:
        return (f"{self.policy:>8}  success {100 * self.success_rate:5.1f}% ± {100 * self.stderr:4.1f}  "
                f"({self.successes}/{self.episodes})  return {self.mean_return:.2f}  turns {self.mean_turns:.1f}")


def run_policy(env_id: str, policy, *, split: str = "test", num_tasks: int = 50, seed: int = 0,
               max_turns: int | None = None, progress: bool = True, **env_kwargs) -> PolicyResult:
    """Play one episode of each of the first ``num_tasks`` tasks of ``split`` with ``policy``.

    ``policy(obs, info) -> action | None``; a :class:`RandomPolicy` draws from its own
    stream per task, derived from ``seed`` (see :mod:`agent.scripted`). ``max_turns``
    defaults to the env's registered time limit (else 50), as in ``steprl eval``.
    Games are prepared (generated in parallel) before play starts.
    """
    from tqdm.auto import tqdm

    from steprl import envs
    from steprl.agent.scripted import play_scripted, policy_factory

    if "max_episode_steps" in env_kwargs:  # the env's own name for the turn limit
        max_turns = env_kwargs.pop("max_episode_steps")
    if max_turns is None:
        max_turns = envs.spec(env_id).max_episode_steps or 50
    env = envs.make(env_id, split=split, num_tasks=num_tasks, max_episode_steps=max_turns, **env_kwargs)
    env.unwrapped.prepare(progress=progress)
    tasks = list(range(env.unwrapped.num_tasks))
    name = getattr(policy, "name", "policy")
    with tqdm(total=len(tasks), desc=f"{name} on {env_id}", unit="ep", disable=not progress) as bar, \
            envs.TextVectorEnv([lambda: env], num_workers=0) as vector_env:
        played = play_scripted(vector_env, policy_factory(policy, seed), tasks, seed=seed, max_turns=max_turns,
                               bar=bar)
    wins = [e.success for e in played]
    return PolicyResult(name, env_id, split, len(wins), int(sum(wins)), float(np.mean([e.reward for e in played])),
                        float(np.mean([e.turns for e in played])), wins)
