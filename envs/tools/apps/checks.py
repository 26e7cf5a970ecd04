"""State-based checks of ``tools/apps-v0``, as AppWorld grades tasks (Trivedi et al., 2024).

A task carries a list of checks; after the episode each looks at the world
before and after (and the answer given to ``supervisor_complete_task``).
The reward is the share of checks passed, LOOP's training reward (Chen et al.,
2025); ``success`` is all passed. Check types:

* :class:`AnswerCheck` — the answer equals the expected one (numbers with a
  tolerance, text case- and whitespace-insensitive).
* :class:`RecordCheck` — exactly ``count`` records of a table match the given
  fields (``count=0``: no such record).
* :class:`FieldCheck` — one record's field has the expected value.
* :class:`DeletedCheck` — a record that existed is gone.
* :class:`NoCollateralDamage` — every difference between the worlds before and
  after is covered by one of the task's :class:`Allow` rules; anything else
  (a stray message, a deleted contact, money sent twice) fails it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from steprl.envs.tools.apps.world import World

__all__ = ["Outcome", "Check", "AnswerCheck", "RecordCheck", "FieldCheck", "DeletedCheck", "Allow",
           "NoCollateralDamage", "values_equal", "world_diff"]


@dataclass
class Outcome:
    """What the checks look at: the worlds before and after, and the final answer."""

    initial: World
    final: World
    answer: str | None
    completed: bool


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "").lstrip("$").rstrip(".")
        if re.fullmatch(r"[-+]?\d+(\.\d+)?", text):
            return float(text)
    return None


def values_equal(got: Any, expected: Any) -> bool:
    """Lenient equality: numbers within 0.005, text up to case/whitespace/final period, lists as multisets."""
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            return False
        remaining = list(got)
        for item in expected:
            hit = next((i for i, g in enumerate(remaining) if values_equal(g, item)), None)
            if hit is None:
                return False
            remaining.pop(hit)
        return True
    if isinstance(expected, dict):
        return isinstance(got, dict) and set(got) == set(expected) and all(values_equal(got[k], v) for k, v in expected.items())
    number, other = _as_number(expected), _as_number(got)
    if number is not None and (not isinstance(expected, str) or other is not None):
        return other is not None and math.isclose(other, number, abs_tol=0.005)
    if isinstance(expected, str):
        return isinstance(got, str) and " ".join(got.casefold().split()).rstrip(".") == " ".join(
            expected.casefold().split()).rstrip(".")
    return got == expected


def _matches(record: dict[str, Any], match: dict[str, Any]) -> bool:
    return all(k in record and values_equal(record[k], v) for k, v in match.items())


class Check:
    """One graded condition. ``check(outcome) -> bool``; ``name`` says what it verifies."""

    name = "check"

    def __call__(self, outcome: Outcome) -> bool:
        raise NotImplementedError


@dataclass
class AnswerCheck(Check):
    """The answer passed to ``supervisor_complete_task`` equals ``expected``."""

    expected: str

    @property
    def name(self) -> str:
        return f"answer == {self.expected!r}"

    def __call__(self, outcome: Outcome) -> bool:
        return outcome.completed and outcome.answer is not None and values_equal(outcome.answer, self.expected)


@dataclass
class RecordCheck(Check):
    """Exactly ``count`` records of ``table`` (after the episode) match all ``match`` fields."""

    table: str
    match: dict[str, Any]
    count: int = 1

    @property
    def name(self) -> str:
        return f"{self.count} x {self.table} {self.match}"

    def __call__(self, outcome: Outcome) -> bool:
        return sum(_matches(r, self.match) for r in outcome.final.get(self.table, {}).values()) == self.count


@dataclass
class FieldCheck(Check):
    """``final[table][record_id][field] == expected``."""

    table: str
    record_id: int
    field: str
    expected: Any

    @property
    def name(self) -> str:
        return f"{self.table}[{self.record_id}].{self.field} == {self.expected!r}"

    def __call__(self, outcome: Outcome) -> bool:
        record = outcome.final.get(self.table, {}).get(self.record_id)
        return record is not None and self.field in record and values_equal(record[self.field], self.expected)


@dataclass
class DeletedCheck(Check):
    """``table[record_id]`` existed before and is gone after."""

    table: str
    record_id: int

    @property
    def name(self) -> str:
        return f"{self.table}[{self.record_id}] deleted"

    def __call__(self, outcome: Outcome) -> bool:
        return self.record_id in outcome.initial.get(self.table, {}) and self.record_id not in outcome.final.get(self.table, {})


@dataclass(frozen=True)
class Allow:
    """A change the task may make: ``op`` in ``add``/``change``/``delete`` on ``table``.

    ``ids`` limits which records; ``match`` (add) which new records; ``fields``
    (change) which fields may differ.
    """

    table: str
    op: str
    ids: tuple[int, ...] | None = None
    match: dict[str, Any] | None = None
    fields: tuple[str, ...] | None = None

    def covers(self, table: str, op: str, record_id: int, before: dict | None, after: dict | None) -> bool:
        if (table, op) != (self.table, self.op) or (self.ids is not None and record_id not in self.ids):
            return False
        if self.match is not None and not (after is not None and _matches(after, self.match)):
            return False
        if self.fields is not None and before is not None and after is not None:
            changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
            return changed <= set(self.fields)
        return True


def world_diff(initial: World, final: World) -> list[tuple[str, str, int, dict | None, dict | None]]:
    """Every record-level difference: ``(table, op, id, before, after)`` with op add/change/delete."""
    out = []
    for table in sorted(set(initial) | set(final)):
        before, after = initial.get(table, {}), final.get(table, {})
        for record_id in sorted(set(before) | set(after)):
            old, new = before.get(record_id), after.get(record_id)
            if old == new:
                continue
            op = "add" if old is None else "delete" if new is None else "change"
            out.append((table, op, record_id, old, new))
    return out


@dataclass
class NoCollateralDamage(Check):
    """Nothing changed that the task's :class:`Allow` rules do not cover."""

    allowed: list[Allow] = field(default_factory=list)
    name = "no collateral damage"

    def violations(self, outcome: Outcome) -> list[tuple[str, str, int]]:
        """The uncovered changes, as ``(table, op, id)``."""
        return [(t, op, rid) for t, op, rid, old, new in world_diff(outcome.initial, outcome.final)
                if not any(rule.covers(t, op, rid, old, new) for rule in self.allowed)]

    def __call__(self, outcome: Outcome) -> bool:
        return not self.violations(outcome)
