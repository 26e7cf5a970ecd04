"""Scripted agents on the vector env: the reference agents and the expert demonstrations.

One episode loop serves every agent that is not a model: the random and expert
rows of ``steprl eval`` and ``steprl baselines``, and the expert episodes the SFT
warm start learns from. Its rules are the model rollout's (:func:`agent.rollout.rollout`):

* seeding: episode ``i`` of a call (the ``i``-th entry of ``tasks``) resets with
  ``episode_reset_seed(seed, i)``, the rollout's seed for group ``i``, so scripted agents
  and the model start from the same states; a policy that draws random numbers gets
  its own stream per task (:meth:`RandomPolicy.for_task`);
* an episode ends when the env ends it, at ``max_turns`` steps, on an env error
  (a failure), or when the policy has no action (``None``: a failure);
* a reset that fails is retried ``reset_retries`` times on the rebuilt env, then
  the episode is a failure with no turns.

A policy is ``policy(obs, info) -> action | None``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RandomPolicy", "ExpertPolicy", "ScriptedEpisode", "play_scripted", "policy_factory"]

Policy = Callable[[str, dict], "str | None"]


class RandomPolicy:
    """A uniformly random admissible action; no action (the episode ends) where the env lists none."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def for_task(self, seed: int, task: int) -> "RandomPolicy":
        """This policy for one task of a run seeded ``seed``: its own stream, ``derive_seed(seed, 2, task)``."""
        from steprl.agent.rollout import derive_seed

        return RandomPolicy(derive_seed(seed, 2, task))

    def __call__(self, obs: str, info: dict) -> str | None:
        actions = info.get("admissible_actions")
        if not actions:
            return None
        return actions[int(self.rng.integers(len(actions)))]


class ExpertPolicy:
    """The env's ``info["expert_action"]``; no action (the episode ends) where the expert has none."""

    name = "expert"

    def __call__(self, obs: str, info: dict) -> str | None:
        return info.get("expert_action") or None


def policy_factory(policy, seed: int) -> Callable[[int], Policy]:
    """``task -> policy`` for :func:`play_scripted`: a policy with ``for_task(seed, task)``
    (:class:`RandomPolicy`) gets its own per task, any other is shared by every episode."""
    if hasattr(policy, "for_task"):
        return lambda task: policy.for_task(seed, task)
    return lambda task: policy


@dataclass
class ScriptedEpisode:
    """What one scripted episode came to.

    Attributes:
        index: position of the episode's task in the ``tasks`` given to :func:`play_scripted`.
        task: task index in the split.
        success: the env ended the episode with ``info["success"]``.
        reward: summed reward.
        turns: steps taken.
        invalid: steps whose action the env rejected.
        truncated: the episode was cut (turn limit, env error, no action, failed reset)
            rather than ended by the env.
        env_errors: env errors met (failed resets included, also when a retry worked).
        error: the last env error's message, if any.
        policy: the policy object that played it (e.g. to read what it recorded).
    """

    index: int
    task: int
    success: bool
    reward: float
    turns: int
    invalid: int
    truncated: bool
    env_errors: int = 0
    error: str | None = None
    policy: Any = field(default=None, repr=False, compare=False)


@dataclass
class _Running:
    index: int
    task: int
    policy: Policy
    env_errors: int
    observation: str = ""
    info: dict = field(default_factory=dict)
    turns: int = 0
    reward: float = 0.0
    invalid: int = 0


def play_scripted(vector_env, make_policy: Callable[[int], Policy], tasks: Sequence[int], *, seed: int,
                  max_turns: int, bar=None, reset_retries: int = 1) -> list[ScriptedEpisode]:
    """One episode per entry of ``tasks`` with a scripted policy; episodes in the order of ``tasks``.

    ``make_policy(task) -> policy(obs, info) -> action | None`` is called at each
    episode's start. The rules are in the module docstring.

    A scripted policy needs no batched model call, so the envs are not held in
    lockstep: each gets its next action, or its next task, as soon as its own result
    is back (``vector_env.send`` / ``recv``), and no worker waits for another's slow
    step. Each episode depends only on its task, seed and policy, so the outcomes do
    not depend on which env played it or when.
    """
    from steprl.agent.rollout import episode_reset_seed
    from steprl.envs.vector import Reset

    pending = deque((index, int(task)) for index, task in enumerate(tasks))
    starting: dict[int, tuple[int, int, int, str | None]] = {}  # env -> (index, task, failed resets, last error)
    running: dict[int, _Running] = {}
    episodes: dict[int, ScriptedEpisode] = {}
    sends: dict[int, Any] = {}

    def finish(episode: ScriptedEpisode) -> None:
        episodes[episode.index] = episode
        if bar is not None:
            bar.update(1)

    def start(i: int, index: int, task: int, failed: int, error: str | None) -> None:
        starting[i] = (index, task, failed, error)
        sends[i] = Reset(episode_reset_seed(seed, index), {"task": task})

    def next_task(i: int) -> None:
        if pending:
            start(i, *pending.popleft(), 0, None)

    def act(i: int, ep: _Running) -> None:
        action = ep.policy(ep.observation, ep.info)
        if action is None:  # nothing to do here: the episode ends as a failure
            finish(ScriptedEpisode(ep.index, ep.task, False, ep.reward, ep.turns, ep.invalid, True, ep.env_errors,
                                   policy=ep.policy))
            del running[i]
            next_task(i)
        else:
            sends[i] = action

    for i in range(vector_env.num_envs):
        next_task(i)
    while sends or vector_env.in_flight:
        vector_env.send(sends)
        sends = {}
        for i, (obs, reward, terminated, truncated, info) in sorted(vector_env.recv().items()):
            info = info or {}
            error = info.get("env_error")
            if i in starting:  # the result of a reset
                index, task, failed, last_error = starting.pop(i)
                if error is None:
                    info = {key: value for key, value in info.items() if key != "reset"}
                    running[i] = _Running(index, task, make_policy(task), failed, obs, info)
                    act(i, running[i])
                elif failed < reset_retries:  # the env was rebuilt: try once more
                    start(i, index, task, failed + 1, error)
                else:  # the env could not start the episode: a failure with no turns
                    finish(ScriptedEpisode(index, task, False, 0.0, 0, 0, True, failed + 1, error))
                    next_task(i)
                continue
            ep = running[i]
            ep.turns += 1
            ep.reward += float(reward)
            ep.invalid += not info.get("valid_action", False)
            ended_by_env = bool(terminated or truncated)
            if ended_by_env or error is not None or ep.turns >= max_turns:
                finish(ScriptedEpisode(
                    ep.index, ep.task, success=ended_by_env and error is None and bool(info.get("success", False)),
                    reward=ep.reward, turns=ep.turns, invalid=ep.invalid, truncated=not bool(terminated),
                    env_errors=ep.env_errors + (error is not None), error=error, policy=ep.policy))
                del running[i]
                next_task(i)
            else:
                ep.observation, ep.info = obs, info
                act(i, ep)
    return [episodes[index] for index in sorted(episodes)]
