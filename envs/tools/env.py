"""``ToolEnv``: a :class:`~envs.core.TextEnv` whose actions are tool calls.

The action is the model's whole response. Every ``<tool_call>`` in it is
parsed and checked against the tools' schemas *before* any runs: if one is
malformed (bad JSON, unknown tool, wrong or missing arguments, more than
``max_calls_per_turn``) none runs, the observation lists the errors, the step
is ``valid_action=False`` and the state (and ``anchor``) stays as it was. A
response without any call is invalid too. Otherwise the calls run in order and
the observation is their results as ``<tool_response>`` blocks. A tool that
refuses a well-formed call (raises :class:`~envs.tools.protocol.ToolError`,
e.g. an unknown contact id) answers ``{"error": …}``; that step is valid.

The episode ends when a *finishing* tool is called (``complete_task``,
``submit_answer``) or after ``max_turns`` steps (truncated); then the
subclass's :meth:`ToolEnv._evaluate` scores it. The turn limit lives in the
env, not in a ``TimeLimit`` wrapper, so a truncated episode is scored too.

Subclasses implement ``_load_task`` and ``_begin(rng) -> observation``, set
``self.tools`` (name → :class:`~envs.tools.protocol.Tool`), ``self.task_text``
and ``self.plan`` (the expert's turns, each a list of ``(name, arguments)``),
and implement ``_anchor_state`` and ``_evaluate``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from steprl.envs.core import InvalidAction, TextEnv
from steprl.envs.tools.protocol import (
    Tool,
    ToolCall,
    ToolError,
    format_tool_calls,
    format_tool_responses,
    parse_tool_calls,
    validate_arguments,
)

__all__ = ["ToolEnv", "NO_CALL_OBS"]

NO_CALL_OBS = ('No tool call found. Call a tool as <tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call>; '
               "the tools are listed in the system prompt.")


class ToolEnv(TextEnv):
    """Base of the tool-calling envs (``tools/apps-v0``, ``tools/python-v0``).

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        num_tasks: use only the first ``num_tasks`` task seeds of the split.
        max_turns: steps before the episode is cut (truncated) and scored.
        max_calls_per_turn: most tool calls one response may make.
    """

    #: responses are long (reasoning + several calls with code); longer ones are invalid.
    max_action_length = 32_000
    #: tools whose call ends the episode.
    finishing_tools: tuple[str, ...] = ()

    def __init__(self, split: str = "train", num_tasks: int | None = None, max_turns: int = 20,
                 max_calls_per_turn: int = 10, render_mode: str | None = None):
        super().__init__(split=split, num_tasks=num_tasks, render_mode=render_mode)
        if max_turns < 1:
            raise ValueError(f"max_turns={max_turns} must be >= 1")
        self.max_turns = max_turns
        self.max_calls_per_turn = max_calls_per_turn
        self.tools: dict[str, Tool] = {}
        self.tool_schemas: list[dict[str, Any]] = []
        self.task_text = ""
        self.plan: list[list[tuple[str, dict[str, Any]]]] = []

    # -- subclass hooks -------------------------------------------------------------------
    def _begin(self, rng: np.random.Generator) -> str:
        """Start the episode of the loaded task; return the first observation."""
        raise NotImplementedError

    def _anchor_state(self) -> str:
        """Canonical text of the state the agent can observe (hashed into ``anchor``)."""
        raise NotImplementedError

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        """Score the ended episode: ``(reward, success, extra info)``."""
        raise NotImplementedError

    def _finish(self, call: ToolCall) -> Any:
        """Run a finishing tool; return its result text. Default: call the tool."""
        return self.tools[call.name].fn(**call.arguments)

    # -- TextEnv hooks ----------------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> tuple[str, dict]:
        obs = self._begin(rng)
        self.turn = 0
        self.plan_position = 0
        self.done = False
        return obs, self._info(self._hash(obs))

    def _normalize_action(self, action: Any) -> str:
        """The response as is: unlike the base class, whitespace is kept (code and JSON need it)."""
        if not isinstance(action, str) or len(action) > self.max_action_length:
            raise InvalidAction(f"The response is not text of at most {self.max_action_length} characters.")
        if not action.strip():
            raise InvalidAction(NO_CALL_OBS)
        return action

    def invalid_action(self, message: str = NO_CALL_OBS) -> tuple[str, float, bool, bool, dict]:
        """A response that ran nothing: state and anchor unchanged; it still counts as a turn."""
        return self._invalid(message)

    def _step_action(self, action: str) -> tuple[str, float, bool, bool, dict]:
        try:
            return self._run_calls(action)
        except Exception as exc:  # noqa: BLE001 - never raise on agent text; the bug shows in the obs
            return self._invalid(f"Internal error while running the calls: {type(exc).__name__}: {exc}")

    def _run_calls(self, action: str) -> tuple[str, float, bool, bool, dict]:
        calls = parse_tool_calls(action)
        if not calls:
            return self._invalid(NO_CALL_OBS)
        if len(calls) > self.max_calls_per_turn:
            return self._invalid(f"Too many tool calls ({len(calls)}); make at most {self.max_calls_per_turn} per turn.")
        errors = []
        for i, call in enumerate(calls):
            if call.error is None and call.name not in self.tools:
                call.error = f"unknown tool {call.name!r}; the tools are {sorted(self.tools)}"
            if call.error is None:
                try:
                    call.arguments = validate_arguments(self.tools[call.name], call.arguments)
                except ValueError as exc:
                    call.error = str(exc)
            if call.error is not None:
                errors.append(f"call {i + 1}: {call.error}")
        finishing = [c for c in calls if c.name in self.finishing_tools]
        if finishing and (len(finishing) > 1 or calls[-1] is not finishing[0]) and not errors:
            errors.append(f"{finishing[0].name} must be the last call of its turn, and only one")
        if errors:
            return self._invalid("Invalid tool call, nothing was run:\n" + "\n".join(errors))

        self.turn += 1
        if self.plan_position < len(self.plan) and [c.key() for c in calls] == [
                ToolCall(n, a).key() for n, a in self.plan[self.plan_position]]:
            self.plan_position += 1
        results, terminated = [], False
        for call in calls:
            if call.name in self.finishing_tools:
                results.append((call.name, self._finish(call)))
                terminated = True
                continue
            try:
                results.append((call.name, self.tools[call.name].fn(**call.arguments)))
            except ToolError as exc:
                results.append((call.name, {"error": str(exc)}))
        obs = format_tool_responses(results)
        info = self._info(self._hash(obs))
        info["valid_action"] = True
        truncated = not terminated and self.turn >= self.max_turns
        return self._end(obs, info, terminated, truncated)

    # -- helpers ------------------------------------------------------------------------------
    def _end(self, obs: str, info: dict, terminated: bool, truncated: bool) -> tuple[str, float, bool, bool, dict]:
        reward = 0.0
        if terminated or truncated:
            self.done = True
            reward, success, extra = self._evaluate()
            info.update(extra)
            info["success"] = bool(success)
            info.pop("expert_action", None)
            if truncated:
                obs += f"\nOut of turns ({self.max_turns}); the episode is over."
        return obs, reward, terminated, truncated, info

    def _invalid(self, message: str) -> tuple[str, float, bool, bool, dict]:
        """A response that ran nothing: state and anchor unchanged, the step still counts as a turn."""
        info = dict(self._last_info)
        info["valid_action"] = False
        info.pop("success", None)
        self.turn += 1
        return self._end(message, info, False, self.turn >= self.max_turns)

    def _hash(self, observation: str) -> str:
        text = self._anchor_state() + "\n\x1e" + observation
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]

    def _info(self, anchor: str) -> dict[str, Any]:
        info: dict[str, Any] = {"task": self.task_text, "admissible_actions": None, "anchor": anchor,
                                "tools": self.tool_schemas, "turn": self.turn if hasattr(self, "turn") else 0}
        if self.plan_position < len(self.plan):
            info["expert_action"] = format_tool_calls(self.plan[self.plan_position])
        elif self.plan:
            info["expert_action"] = format_tool_calls(self.plan[-1])
        if self.task_seed is not None:
            info["task_id"] = self.task_id_for(self.task_seed)
        return info

    @staticmethod
    def canonical(obj: Any) -> str:
        """Canonical JSON of a state (sorted keys), for anchors."""
        return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
