"""Reference agents — the floor and the ceiling of every report.

* :class:`RandomPolicy`: a uniformly random admissible action each step.
* :class:`ExpertPolicy`: the env's ``info["expert_action"]`` each step.

:func:`run_policy` plays one episode per task of a split and returns the
success rate with its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RandomPolicy", "ExpertPolicy", "run_policy", "PolicyResult"]


class RandomPolicy:
    """Uniformly random admissible action (``"look"`` when the env lists none)."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: str, info: dict) -> str:
        actions = info.get("admissible_actions") or ["look"]
        return actions[int(self.rng.integers(len(actions)))]


class ExpertPolicy:
    """The env's expert action; raises if the env has no expert."""

    name = "expert"

    def __call__(self, obs: str, info: dict) -> str:
        action = info.get("expert_action")
        if action is None:
            raise ValueError("this env gives no info['expert_action']; the expert row needs one")
        return action


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
               progress: bool = True, **env_kwargs) -> PolicyResult:
    """Play one episode of each of the first ``num_tasks`` tasks of ``split`` with ``policy``.

    ``policy(obs, info) -> action``. Games are prepared (generated in
    parallel) before play starts.
    """
    from steprl import envs
    from tqdm.auto import tqdm

    env = envs.make(env_id, split=split, num_tasks=num_tasks, **env_kwargs)
    env.unwrapped.prepare(progress=progress)
    wins, returns, turns = [], [], []
    for task in tqdm(range(env.unwrapped.num_tasks), desc=f"{getattr(policy, 'name', 'policy')} on {env_id}",
                     unit="ep", disable=not progress):
        obs, info = env.reset(seed=seed + task, options={"task": task})
        total, t = 0.0, 0
        while True:
            obs, reward, terminated, truncated, info = env.step(policy(obs, info))
            total += reward
            t += 1
            if terminated or truncated:
                break
        wins.append(bool(info.get("success")))
        returns.append(total)
        turns.append(t)
    env.close()
    return PolicyResult(getattr(policy, "name", "policy"), env_id, split, len(wins), int(sum(wins)),
                        float(np.mean(returns)), float(np.mean(turns)), wins)
