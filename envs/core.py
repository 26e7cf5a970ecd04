"""The text-environment base: Gymnasium's ``Env`` with text in and text out.

Every steprl environment is a :class:`gymnasium.Env` whose observations and
actions are strings. The contract (``ARCHITECTURE.md`` → Environment):

* ``obs, info = env.reset(seed=s, options=None)``
* ``obs, reward, terminated, truncated, info = env.step(action_text)``
* ``info`` always carries :data:`RESET_INFO_KEYS` after ``reset`` and
  :data:`STEP_INFO_KEYS` after ``step``; ``success`` is set when the episode ends.
* A bad action never raises: the env answers with an "invalid action"
  observation, ``valid_action=False``, and the episode goes on.
* Each env owns disjoint ``train`` / ``valid`` / ``test`` sets of *task seeds*.
  ``options={"task": i}`` picks the i-th task of the split; without it the task
  is drawn from ``seed``. ``info["task_id"]`` names the task instance: equal ids
  mean the same task (the group key of GRPO / GiGPO).

Subclass :class:`TextEnv` and implement :meth:`TextEnv._load_task`,
:meth:`TextEnv._reset_task` and :meth:`TextEnv._step_action`; the base class
does task selection, splits, info bookkeeping and the never-raise rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.spaces import Text

__all__ = [
    "TextSpace",
    "TextEnv",
    "SPLITS",
    "RESET_INFO_KEYS",
    "STEP_INFO_KEYS",
    "INVALID_ACTION_OBS",
]

SPLITS = ("train", "valid", "test")
RESET_INFO_KEYS = ("task", "task_id", "admissible_actions", "anchor")
STEP_INFO_KEYS = RESET_INFO_KEYS + ("valid_action",)
INVALID_ACTION_OBS = "That is not a valid action."


class InvalidAction(Exception):
    """Raised by :meth:`TextEnv._normalize_action` for input that names no command.

    ``TextEnv.step`` turns it into ``invalid_action(message)`` (the message defaults
    to :data:`INVALID_ACTION_OBS`); it never reaches the caller.
    """

    def __init__(self, message: str = INVALID_ACTION_OBS):
        super().__init__(message)
        self.message = message


class TextSpace(Text):
    """A ``Text`` space that admits any string up to ``max_length`` characters.

    Gymnasium's ``Text`` defaults to an alphanumeric charset, so
    ``Text(100).contains("Hello, world!")`` is False; agent text has
    punctuation, spaces and unicode. Sampling still draws from the
    alphanumeric charset plus space, which is enough for fuzzing.
    """

    def __init__(self, max_length: int = 1_000_000, *, seed: int | None = None):
        super().__init__(
            max_length,
            min_length=0,
            charset="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ",
            seed=seed,
        )

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"


class TextEnv(gymnasium.Env):
    """Base class of steprl's text environments.

    Subclasses set :attr:`split_ranges` (disjoint seed ranges per split) and
    implement three methods:

    * ``_load_task(task_seed)``: prepare the task (e.g. load a cached game).
    * ``_reset_task(rng) -> (obs, info)``: start an episode of the loaded task;
      ``info`` must give ``task``, ``admissible_actions`` and ``anchor``.
    * ``_step_action(action) -> (obs, reward, terminated, truncated, info)``
      for a well-formed string; set ``info["valid_action"]``. Return
      ``self.invalid_action(...)`` for actions the game does not understand.

    Optional: ``_normalize_action(action)`` decides what "well-formed" means (by
    default one printable line, whitespace collapsed; tool envs keep whitespace),
    and ``invalid_action`` what an invalid action costs (tool envs count a turn).

    Args:
        split: which task seeds to draw from: ``"train"``, ``"valid"`` or ``"test"``.
        num_tasks: use only the first ``num_tasks`` seeds of the split.
    """

    metadata = {"render_modes": ["ansi"]}
    #: Disjoint task-seed ranges per split. Subclasses may override.
    split_ranges: Mapping[str, range] = {
        "train": range(0, 100_000),
        "valid": range(100_000, 110_000),
        "test": range(110_000, 120_000),
    }
    #: Longest action string the env looks at; longer input is invalid.
    max_action_length = 4096

    def __init__(self, split: str = "train", num_tasks: int | None = None, render_mode: str | None = None):
        if split not in self.split_ranges:
            raise ValueError(f"split={split!r} is not one of {sorted(self.split_ranges)}")
        seeds = self.split_ranges[split]
        if num_tasks is not None:
            if num_tasks < 1:
                raise ValueError(f"num_tasks={num_tasks} must be >= 1 (split {split!r} has {len(seeds)} tasks)")
            seeds = seeds[: min(num_tasks, len(seeds))]
        if len(seeds) == 0:
            raise ValueError(f"split {split!r} has no tasks")
        self.split = split
        self.task_seeds: Sequence[int] = seeds
        self.render_mode = render_mode
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self.task_seed: int | None = None
        self._loaded_seed: int | None = None
        self._last_obs = ""
        self._last_info: dict[str, Any] = {}

    # -- subclass hooks -------------------------------------------------------
    def _load_task(self, task_seed: int) -> None:
        raise NotImplementedError

    def _reset_task(self, rng: np.random.Generator) -> tuple[str, dict]:
        raise NotImplementedError

    def _step_action(self, action: str) -> tuple[str, float, bool, bool, dict]:
        raise NotImplementedError

    # -- public API -----------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        """How many tasks this env's split holds."""
        return len(self.task_seeds)

    def prepare(self, workers: int | None = None, progress: bool = True) -> None:
        """Build every task of the split ahead of time (e.g. generate games in parallel).

        Optional: the default does nothing and tasks are built on first reset.
        """

    def task_id_for(self, task_seed: int) -> str:
        """The group key of a task: same string ⇔ same task instance."""
        name = self.spec.id if self.spec is not None else type(self).__name__
        return f"{name}:{task_seed}"

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        if "task" in options:
            index = int(options.pop("task"))
            if not 0 <= index < self.num_tasks:
                raise ValueError(f"options['task']={index} out of range: split {self.split!r} has {self.num_tasks} tasks")
        else:
            index = int(self.np_random.integers(self.num_tasks))
        task_seed = int(self.task_seeds[index])
        if task_seed != self._loaded_seed:
            self._load_task(task_seed)
            self._loaded_seed = task_seed
        self.task_seed = task_seed
        obs, info = self._reset_task(self.np_random)
        info.setdefault("task_id", self.task_id_for(task_seed))
        info.setdefault("task_seed", task_seed)
        info.setdefault("split", self.split)
        self._last_obs, self._last_info = obs, info
        return obs, info

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict]:
        if self.task_seed is None:
            raise RuntimeError("call reset() before step()")
        try:
            action = self._normalize_action(action)
        except InvalidAction as exc:
            return self.invalid_action(exc.message)
        obs, reward, terminated, truncated, info = self._step_action(action)
        info.setdefault("task_id", self._last_info.get("task_id"))
        info.setdefault("task", self._last_info.get("task"))
        info.setdefault("valid_action", True)
        if terminated or truncated:
            info.setdefault("success", False)
        self._last_obs, self._last_info = obs, info
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _normalize_action(self, action: Any) -> str:
        """The command ``_step_action`` receives for ``action``; raise :class:`InvalidAction` if there is none.

        Default: a non-empty str of at most :attr:`max_action_length` characters,
        runs of whitespace collapsed to one space (commands are one line), with no
        control characters left.
        """
        if not isinstance(action, str) or not action.strip() or len(action) > self.max_action_length:
            raise InvalidAction()
        action = " ".join(action.split())  # collapse newlines/tabs: commands are one line
        if not action.isprintable():
            raise InvalidAction()  # control characters never name a command
        return action

    def invalid_action(self, message: str = INVALID_ACTION_OBS) -> tuple[str, float, bool, bool, dict]:
        """The answer to an action the env cannot execute: state unchanged, reward 0.

        The observation is ``message`` followed by the current state's text, so
        the agent still sees where it is; ``anchor`` stays the current state.
        """
        info = dict(self._last_info)
        info["valid_action"] = False
        info.pop("success", None)
        obs = message if not self._last_info.get("anchor") else f"{message}\n{self._last_info['anchor']}"
        return obs, 0.0, False, False, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._last_obs
        return None
