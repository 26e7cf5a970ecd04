"""Turn a model response into an env action, and say whether it followed the format.

Three formats (``AgentConfig.response_format``):

* ``"think_action"`` (GiGPO's): ``<think>reasoning</think><action>command</action>``
  and nothing else around it.
* ``"plain"``: the response is the command, one non-empty line.
* ``"tool_calls"`` (tool envs, Qwen/Hermes style): the whole response is the
  action, one or more ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  blocks; the env parses and runs them. ``format_ok`` when every block holds a JSON
  object with a string ``name`` and an object ``arguments``, and nothing but
  whitespace lies outside the blocks.

In the first two, the action must be printable text (no control characters).

:func:`parse_response` never raises. A malformed response still yields the
best action it can find (or ``""``, which the env answers as an invalid
action), with ``format_ok=False`` so the trainer can penalize it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["ParsedResponse", "parse_response", "RESPONSE_FORMATS"]

RESPONSE_FORMATS = ("think_action", "plain", "tool_calls")

_STRICT = re.compile(r"\s*<think>(?P<think>.*?)</think>\s*<action>(?P<action>.*?)</action>\s*", re.DOTALL)
_ACTION = re.compile(r"<action>(?P<action>.*?)</action>", re.DOTALL)
_TAG = re.compile(r"</?(think|action)>")
_TOOL_CALL = re.compile(r"<tool_call>(?P<body>.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class ParsedResponse:
    """What the parser found.

    Attributes:
        action: the command to send to the env (``""`` when none was found).
        format_ok: the response followed the format exactly and finished.
        think: the reasoning text (``think_action`` format), else ``None``.
    """

    action: str
    format_ok: bool
    think: str | None = None


def parse_response(text: str, response_format: str = "plain", finished: bool = True) -> ParsedResponse:
    """Parse ``text`` in ``response_format``; never raises.

    Args:
        text: the decoded response (special tokens already removed).
        response_format: ``"think_action"`` or ``"plain"``.
        finished: False when generation hit ``max_new_tokens`` before a stop
            token; such a response is never ``format_ok``.
    """
    try:
        if not isinstance(text, str):
            return ParsedResponse("", False)
        if response_format == "think_action":
            parsed = _parse_think_action(text)
        elif response_format == "plain":
            parsed = _parse_plain(text)
        elif response_format == "tool_calls":
            parsed = _parse_tool_calls(text)
        else:
            return ParsedResponse("", False)
        if not finished and parsed.format_ok:
            parsed = ParsedResponse(parsed.action, False, parsed.think)
        return parsed
    except Exception:  # the contract is "never raises": a parser bug must not end a run
        return ParsedResponse("", False)


def _parse_think_action(text: str) -> ParsedResponse:
    strict = _STRICT.fullmatch(text)
    if strict and not _TAG.search(strict["think"]) and not _TAG.search(strict["action"]):
        think, action = strict["think"].strip(), strict["action"].strip()
        return ParsedResponse(action, bool(action) and _is_command(action), think)
    found = _ACTION.findall(text)
    action = found[-1].strip() if found else ""
    return ParsedResponse(action, False, None)


def _parse_plain(text: str) -> ParsedResponse:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ParsedResponse("", False)
    action = lines[0]
    ok = len(lines) == 1 and not _TAG.search(action) and _is_command(action)
    return ParsedResponse(action, ok)


def _parse_tool_calls(text: str) -> ParsedResponse:
    action = text.strip()
    blocks = _TOOL_CALL.findall(action)
    ok = bool(blocks) and not _TOOL_CALL.sub("", action).strip()
    for body in blocks if ok else ():
        try:
            call = json.loads(body)
        except ValueError:
            return ParsedResponse(action, False)
        if not (isinstance(call, dict) and isinstance(call.get("name"), str)
                and isinstance(call.get("arguments", {}), dict)):
            return ParsedResponse(action, False)
    return ParsedResponse(action, ok)


def _is_command(action: str) -> bool:
    """Printable text (spaces and newlines allowed): control characters never form a command."""
    return " ".join(action.split()).isprintable()
