"""An ALFWorld expert that sees only what the agent sees: search the room, then place.

ALFWorld's planner expert (``expert="planner"``) knows where every object is and
walks straight to it; a model imitating it cannot, because nothing in its prompt
says where the object lies. :class:`Explorer` (``expert="explore"``) acts on the
agent's own information: the instruction, the current observation, the
admissible commands and its own past actions. For pick & place
(``pick_and_place_simple``; other task types raise):

1. holding nothing: ``take <object> N from <here>`` when it is admissible; else
   ``open <here>`` when it is admissible (a closed receptacle not looked into);
   else ``go to`` the first receptacle in the admissible list (sorted) not
   visited yet.
2. holding the object: ``move <object> N to <target> M`` when admissible; else
   ``open <here>`` at a closed target; else ``go to`` the first target
   receptacle in the admissible list not tried yet.

It needs ``history_k`` to cover the episode's ``go to`` actions for a model to
follow it (the visited places are in the action history only); episodes run
longer than the planner's (the search), so raise ``max_turns`` with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["Explorer", "EXPLORABLE_TASK_TYPES"]

#: Task types :class:`Explorer` can act in.
EXPLORABLE_TASK_TYPES = ("pick_and_place_simple",)


class Explorer:
    """The search-then-place expert of one episode (see the module docstring).

    Args:
        task_type: the ALFWorld task type (one of :data:`EXPLORABLE_TASK_TYPES`).
        object_type: the object to move, as the game names it (``"mug"``).
        target_type: the receptacle type to put it in or on (``"countertop"``).
    """

    def __init__(self, task_type: str, object_type: str, target_type: str):
        if task_type not in EXPLORABLE_TASK_TYPES:
            raise ValueError(f"expert='explore' supports task types {list(EXPLORABLE_TASK_TYPES)}, "
                             f"not {task_type!r}; use expert='planner'")
        self.object_type = object_type.lower()
        self.target_type = target_type.lower()
        self._take = re.compile(rf"^take {re.escape(self.object_type)} \d+ from ")
        self._put = re.compile(rf"^(move|put) {re.escape(self.object_type)} \d+ (to|in|on|in/on) "
                               rf"{re.escape(self.target_type)} \d+$")
        self.place = ""
        self.holding = False
        self.visited: set[str] = set()
        self.tried_targets: set[str] = set()

    def observe(self, action: str, valid: bool, observation: str) -> None:
        """Update from one executed step (the action the env ran and what it said)."""
        if not valid:
            return
        if action.startswith("go to "):
            self.place = action[len("go to "):]
            (self.tried_targets if self.holding else self.visited).add(self.place)
        elif self._take.match(action) and observation.startswith("You pick up"):
            self.holding = True
        elif self._put.match(action) and observation.startswith("You "):
            self.holding = False

    def action(self, admissible: Sequence[str]) -> str | None:
        """The next command (one of ``admissible``), or None when it has none left."""
        admissible = list(admissible)
        here_open = f"open {self.place}" if self.place else None
        if not self.holding:
            for a in admissible:
                if self._take.match(a):
                    return a
            if here_open in admissible:
                return here_open
            for a in admissible:
                if a.startswith("go to ") and a[len("go to "):] not in self.visited:
                    return a
            return None
        for a in admissible:
            if self._put.match(a):
                return a
        if self.place.startswith(self.target_type + " ") and here_open in admissible:
            return here_open
        for a in admissible:
            if a.startswith(f"go to {self.target_type} ") and a[len("go to "):] not in self.tried_targets:
                return a
        return None
