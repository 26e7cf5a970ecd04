"""``tools/apps-v0``: an AppWorld-style phone of apps driven through API tool calls.

The setting of LOOP (Chen et al., 2025) on AppWorld (Trivedi et al., 2024),
small and in-process: a seeded world per task (contacts, calendar, messages,
wallet, notes, shop), 37 APIs as tools, a task from one of 14 templates, and
state-based checks after the episode. The episode ends when the agent calls
``supervisor_complete_task`` or after ``max_turns`` turns; the reward is then
the share of checks passed and ``success`` is all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from steprl.envs.tools.apps.api import Apps
from steprl.envs.tools.apps.checks import Outcome
from steprl.envs.tools.apps.tasks import TEMPLATES, Task, make_task
from steprl.envs.tools.apps.world import TODAY, World, copy_world, generate_world
from steprl.envs.tools.env import ToolEnv
from steprl.envs.tools.protocol import ToolCall

__all__ = ["AppsEnv"]


class AppsEnv(ToolEnv):
    """Apps world with API tools and state-based checks.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        num_tasks: use only the first ``num_tasks`` task seeds of the split.
        max_turns: turns before the episode is cut and graded as it stands.
        templates: restrict to these task templates (names of
            :data:`envs.tools.apps.tasks.TEMPLATES`); default all 14.
    """

    finishing_tools = ("supervisor_complete_task",)

    def __init__(self, split: str = "train", num_tasks: int | None = None, max_turns: int = 20,
                 templates: Sequence[str] | None = None, max_calls_per_turn: int = 10, render_mode: str | None = None):
        super().__init__(split=split, num_tasks=num_tasks, max_turns=max_turns,
                         max_calls_per_turn=max_calls_per_turn, render_mode=render_mode)
        names = list(templates) if templates is not None else list(TEMPLATES)
        unknown = [t for t in names if t not in TEMPLATES]
        if unknown or not names:
            raise ValueError(f"templates={names!r}: unknown {unknown}; choose from {sorted(TEMPLATES)}")
        self.template_names = names
        self.apps = Apps()
        self.tools = self.apps.tools()
        self.tool_schemas = [tool.schema for tool in self.tools.values()]
        self._cache: dict[int, tuple[World, Task]] = {}

    def task_for(self, task_seed: int) -> tuple[World, Task]:
        """The initial world and the task of a seed (deterministic; cached)."""
        if task_seed not in self._cache:
            rng = np.random.default_rng(task_seed)
            world = generate_world(rng)
            task = make_task(world, rng, self.template_names[task_seed % len(self.template_names)])
            self._cache[task_seed] = (world, task)
        return self._cache[task_seed]

    def _load_task(self, task_seed: int) -> None:
        self.initial_world, self.task = self.task_for(task_seed)
        self.task_text = self.task.instruction
        self.plan = self.task.plan

    def _begin(self, rng: np.random.Generator) -> str:
        self.apps.world = copy_world(self.initial_world)
        self.apps.answer, self.apps.completed = None, False
        self.apps.version += 1  # a new world: never reuse a cached state text (ids of freed worlds recur)
        user = self.apps.world["user"][1]
        return (f"Today is Wednesday {TODAY}. You are {user['name']} ({user['email']}, {user['phone']}). "
                "Solve the task by calling the app APIs; the docs_* tools describe them. When done, call "
                "supervisor_complete_task, with answer=... if the task asks a question.")

    def _finish(self, call: ToolCall) -> Any:
        return self.tools[call.name].fn(**call.arguments)

    def _anchor_state(self) -> str:
        key = (id(self.apps.world), self.apps.version)
        if getattr(self, "_state_key", None) != key:  # re-serialize only after a call that may write
            self._state_key, self._state_text = key, self.canonical(self.apps.world)
        return self._state_text

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        outcome = Outcome(self.initial_world, self.apps.world, self.apps.answer, self.apps.completed)
        results = {check.name: bool(check(outcome)) for check in self.task.checks}
        passed = sum(results.values())
        return passed / len(results), passed == len(results), {
            "checks": results, "template": self.task.template, "completed": self.apps.completed}

    @property
    def world(self) -> World:
        """The current world (mutated by the agent's calls)."""
        return self.apps.world
