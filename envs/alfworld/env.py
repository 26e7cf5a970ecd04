"""ALFWorld (Shridhar et al., 2021) household tasks as steprl text envs.

The engine is ALFWorld's own: its PDDL domain and TextWorld grammar played by
TextWorld's ``PddlEnv`` behind ALFWorld's ``AlfredDemangler`` (names such as
``countertop 1``) and ``AlfredInfos`` wrappers, so observations and commands
are ALFWorld's (``go to countertop 1``, ``take apple 1 from countertop 1``,
``heat apple 1 with microwave 1``, ``use desklamp 1``, ...).

Tasks come from one of two places:

* generated (default): :mod:`envs.alfworld.tasks` writes PDDL problems from
  the room layouts that ship with ``alfworld``; ``train``/``valid`` use
  ALFRED's seen rooms, ``test`` its unseen rooms;
* released data: ``data_dir=PATH`` (a folder holding ``json_2.1.1``, or that
  folder itself; ``"$ALFWORLD_DATA"`` is expanded) plays ALFWorld's own
  ``game.tw-pddl`` files, with ALFWorld's splits: ``train`` → ``train``,
  ``valid`` → ``valid_seen``, ``test`` → ``valid_unseen``.

Observation: ALFWorld's feedback (the intro without its ``-= Welcome ... =-``
banner). ``info["task"]``: the instruction ("put a clean apple in fridge.").
Actions: any of ``info["admissible_actions"]``; anything else is an invalid
action, answered without calling the engine. Reward 1 when the goal is
reached (ALFWorld's score), which ends the episode; ``success`` = ``won``.
``expert_action``: the first step of ALFWorld's planner expert (Fast
Downward re-planning from the current state, ``AlfredExpert("planner")``),
computed only when ``expert=True`` / ``"planner"`` (the default; pass ``expert=False`` in
training runs that do not read it: the planner is most of a step's time).
``expert="explore"`` gives instead the action of :class:`envs.alfworld.explore.Explorer`,
an expert that knows only what the agent sees (it searches the room for the object;
pick & place only), for a model to imitate.
``anchor``: the observation, prefixed by where the agent stands, so equal
feedback in different places never shares an anchor.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steprl.envs.core import TextEnv
from steprl.envs.alfworld.tasks import TASK_TYPES, generate_task, prepare_tasks, task_dir

__all__ = ["AlfWorldEnv", "ALFWORLD_SPLITS", "find_games"]

#: steprl split → ALFWorld's folder of released tasks.
ALFWORLD_SPLITS = {"train": "train", "valid": "valid_seen", "test": "valid_unseen"}
_TASK_RE = re.compile(r"Your task is to: (.*)", re.S)
_BANNER_RE = re.compile(r"^\s*-= Welcome to TextWorld, ALFRED! =-\s*")
# Real-data task seeds: disjoint offsets per split (ALFWorld's splits are folders, not seed ranges).
_DATA_OFFSETS = {"train": 0, "valid": 10_000_000, "test": 20_000_000}


def find_games(data_dir: str | os.PathLike, split: str, task_types: Sequence[str] = TASK_TYPES) -> list[Path]:
    """ALFWorld's released games of one steprl split, in sorted order.

    Reads ``<data_dir>/json_2.1.1/<alfworld split>/<task_type>-.../trial_.../game.tw-pddl``
    (``data_dir`` may also be the ``json_2.1.1`` folder itself) and keeps, as
    ALFWorld's ``AlfredTWEnv.collect_game_files`` does, games of the wanted task
    types that are marked solvable and are not movable-receptacle or sliced tasks.
    """
    root = Path(os.path.expandvars(str(data_dir))).expanduser()
    if (root / "json_2.1.1").is_dir():
        root = root / "json_2.1.1"
    folder = root / ALFWORLD_SPLITS[split]
    if not folder.is_dir():
        raise FileNotFoundError(f"no ALFWorld split folder {folder} (expected <data_dir>/json_2.1.1/"
                                f"{{train,valid_seen,valid_unseen}}); is data_dir={str(data_dir)!r} right?")
    games = []
    for traj_path in sorted(folder.glob("*/*/traj_data.json")):
        trial = traj_path.parent
        if "movable" in str(trial) or "Sliced" in str(trial) or not (trial / "game.tw-pddl").exists():
            continue
        if json.loads(traj_path.read_text()).get("task_type") not in task_types:
            continue
        if not json.loads((trial / "game.tw-pddl").read_text()).get("solvable"):
            continue
        games.append(trial / "game.tw-pddl")
    return games


class AlfWorldEnv(TextEnv):
    """ALFWorld tasks as a text env (see the module docstring).

    Args:
        task_types: ALFWorld task types to draw from (a task seed picks one, round robin).
        split: ``"train"``, ``"valid"`` or ``"test"``.
        num_tasks: use only the first ``num_tasks`` tasks of the split.
        data_dir: folder of ALFWorld's released data; ``None`` plays generated tasks.
        expert: ``info["expert_action"]`` from ALFWorld's planner (``True`` / ``"planner"``), from
            :class:`~envs.alfworld.explore.Explorer` (``"explore"``: searches, sees only what the agent
            sees; pick & place only), or not at all (``False``).
        fast: play on :class:`envs.alfworld.fast.FastPddlEnv` (TextWorld's ``PddlEnv`` with its PDDL
            translation, grammar parses and command texts cached; same observations, commands and rewards);
            ``False`` plays on TextWorld's ``PddlEnv`` itself.
    """

    def __init__(self, task_types: Sequence[str] = TASK_TYPES, split: str = "train", num_tasks: int | None = None,
                 render_mode: str | None = None, data_dir: str | os.PathLike | None = None, expert: bool | str = True,
                 fast: bool = True):
        task_types = (task_types,) if isinstance(task_types, str) else tuple(task_types)
        unknown = [t for t in task_types if t not in TASK_TYPES]
        if unknown or not task_types:
            raise ValueError(f"task_types={list(task_types)} must be a non-empty subset of {list(TASK_TYPES)}")
        self.task_types = task_types
        self.data_dir = data_dir
        if expert not in (True, False, "planner", "explore"):
            raise ValueError(f"expert={expert!r} must be True/'planner', 'explore' or False")
        self.expert_kind = "planner" if expert is True else (expert or None)
        self.expert = self.expert_kind == "planner"  # the planner's policy_commands are requested
        if self.expert_kind == "explore":
            from steprl.envs.alfworld.explore import EXPLORABLE_TASK_TYPES
            if not set(task_types) <= set(EXPLORABLE_TASK_TYPES):
                raise ValueError(f"expert='explore' supports task types {list(EXPLORABLE_TASK_TYPES)}, "
                                 f"not {[t for t in task_types if t not in EXPLORABLE_TASK_TYPES]}")
        self._explorer = None
        self._targets = ("", "")
        self.fast = bool(fast)
        self._games: list[Path] = []
        if data_dir is not None:
            if split not in _DATA_OFFSETS:
                raise ValueError(f"split={split!r} is not one of {sorted(_DATA_OFFSETS)}")
            self._games = find_games(data_dir, split, task_types)
            if not self._games:
                raise ValueError(f"no solvable ALFWorld games of types {list(task_types)} in "
                                 f"{ALFWORLD_SPLITS[split]} under {data_dir}")
            self.split_ranges = {s: range(o, o + (len(self._games) if s == split else 0)) for s, o in _DATA_OFFSETS.items()}
        super().__init__(split=split, num_tasks=num_tasks, render_mode=render_mode)
        self._tw_env = None
        self._state = None
        self._task_type = ""
        self._instruction = ""
        self._place = "the middle of the room"

    # -- tasks ------------------------------------------------------------------
    def task_type_of(self, task_seed: int) -> str:
        """The ALFWorld task type of a generated task seed."""
        return self.task_types[task_seed % len(self.task_types)]

    def _rooms(self) -> str:
        return "unseen" if self.split == "test" else "seen"

    def game_file(self, task_seed: int) -> Path:
        """The ``game.tw-pddl`` of a task seed (generated and cached on first use)."""
        if self._games:
            return self._games[task_seed - _DATA_OFFSETS[self.split]]
        return generate_task(self.task_type_of(task_seed), task_seed, self._rooms()) / "game.tw-pddl"

    def prepare(self, workers: int | None = None, progress: bool = True) -> None:
        """Generate (or find cached) every task of the split, over ``workers`` processes."""
        if not self._games:
            prepare_tasks([(self.task_type_of(s), s, self._rooms()) for s in self.task_seeds],
                          workers=workers, progress=progress)

    def _load_task(self, task_seed: int) -> None:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

        path = self.game_file(task_seed)
        traj = path.parent / "traj_data.json"
        traj_data = json.loads(traj.read_text()) if traj.exists() else {}
        self._task_type = traj_data.get("task_type") or self.task_type_of(task_seed)
        params = traj_data.get("pddl_params") or {}
        self._targets = (str(params.get("object_target", "")), str(params.get("parent_target", "")))
        if self._tw_env is None:  # one planner library per env, reused across tasks
            infos = textworld.EnvInfos(admissible_commands=True, won=True, policy_commands=self.expert,
                                       extras=["gamefile"])
            if self.fast:
                from steprl.envs.alfworld.fast import FastPddlEnv as PddlEnv
            else:
                from textworld.envs import PddlEnv
            self._tw_env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
        self._tw_env.load(str(path))

    # -- episode ------------------------------------------------------------------
    def _info(self, state: Any, obs: str) -> dict[str, Any]:
        policy = list(state.get("policy_commands") or []) if self.expert else []
        if self._explorer is not None:
            policy = [self._explorer.action(state["admissible_commands"] or [])]
        return {
            "task": self._instruction,
            "admissible_actions": list(state["admissible_commands"] or []),
            "anchor": f"[at {self._place}] {obs}",
            "expert_action": policy[0] if policy else None,
            "task_type": self._task_type,
            "won": bool(state["won"]),
        }

    def _reset_task(self, rng: np.random.Generator) -> tuple[str, dict]:
        state = self._tw_env.reset()
        self._state = state
        self._place = "the middle of the room"
        text = str(state.feedback)
        match = _TASK_RE.search(text)
        self._instruction = match.group(1).strip() if match else "Solve the task."
        if self.expert_kind == "explore":
            from steprl.envs.alfworld.explore import Explorer
            self._explorer = Explorer(self._task_type, *self._targets)
        obs = _BANNER_RE.sub("", text).strip()
        return obs, self._info(state, obs)

    def _step_action(self, action: str) -> tuple[str, float, bool, bool, dict]:
        admissible = self._state["admissible_commands"] or []
        if action not in admissible:
            action = action.strip().lower()
            if action not in admissible:
                return self.invalid_action()  # no engine call
        state, _, done = self._tw_env.step(action)
        self._state = state
        if action.startswith("go to "):
            self._place = action[len("go to "):]
        obs = str(state.feedback).strip()
        if self._explorer is not None:
            self._explorer.observe(action, True, obs)
        info = self._info(state, obs)
        info["valid_action"] = True
        won = bool(state["won"])
        if done or won:
            info["success"] = won
        return obs, 1.0 if won else 0.0, bool(done or won), False, info

    def close(self) -> None:
        if self._tw_env is not None:
            self._tw_env.close()
            self._tw_env = None
