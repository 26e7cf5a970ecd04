"""The tool protocol: typed Python functions → JSON schemas; model text → validated calls.

A *tool* is a typed Python function with a Google-style docstring.
:func:`function_schema` derives its schema in the OpenAI / Hugging Face
``tools`` format, the one ``tokenizer.apply_chat_template(..., tools=...)``
takes (and equal to ``transformers.utils.get_json_schema`` on the same
function)::

    {"type": "function", "function": {"name": ..., "description": ...,
     "parameters": {"type": "object", "properties": {...}, "required": [...]}}}

The agent calls tools in the Hermes / Qwen format, several per response::

    <tool_call>
    {"name": "contacts_search", "arguments": {"query": "Ada"}}
    </tool_call>

:func:`parse_tool_calls` finds every ``<tool_call>…</tool_call>`` block (an
unclosed last block is read too); when there is none, a bare JSON object with
``name`` and ``arguments`` (or a list of them) is accepted as a fallback.
:func:`validate_arguments` checks the arguments against the schema. Nothing
here raises on model text: problems come back as :class:`ToolCall.error`.
Results go back as Hermes ``<tool_response>`` blocks (:func:`format_tool_responses`).
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

__all__ = [
    "Tool", "ToolCall", "ToolError", "function_schema", "parse_tool_calls", "validate_arguments",
    "format_tool_call", "format_tool_calls", "format_tool_responses", "random_tool_call",
]

_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object",
               tuple: "array", type(None): "null"}


class ToolError(Exception):
    """A tool refused a well-formed call (unknown id, not enough money, …); its message goes to the agent."""


# -- schemas ----------------------------------------------------------------------------
def _type_schema(hint: Any, where: str) -> dict[str, Any]:
    """JSON schema of one type hint, as transformers' chat-template utilities write it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _JSON_TYPES and hint not in (list, dict, tuple):
        return {"type": _JSON_TYPES[hint]}
    if hint is Any:
        return {}
    if origin is Union or origin is types.UnionType:
        subtypes = [_type_schema(t, where) for t in args if t is not type(None)]
        if len(subtypes) == 1:
            out = dict(subtypes[0])
        elif all(isinstance(s.get("type"), str) and len(s) == 1 for s in subtypes):
            out = {"type": sorted(s["type"] for s in subtypes)}
        else:
            out = {"anyOf": subtypes}
        if type(None) in args:
            out["nullable"] = True
        return out
    if origin is Literal:
        kinds = sorted({_JSON_TYPES[type(a)] for a in args})
        return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": list(args)}
    if hint is list or origin is list or hint is tuple:
        return {"type": "array", "items": _type_schema(args[0], where)} if args else {"type": "array"}
    if hint is dict or origin is dict:
        out: dict[str, Any] = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = _type_schema(args[1], where)
        return out
    raise TypeError(f"{where}: type {hint!r} has no JSON schema; use str, int, float, bool, list[...], dict, "
                    "Literal[...] or X | None")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {argument: description}) of a Google-style docstring."""
    doc = inspect.cleandoc(doc or "")
    blocks = re.split(r"\n\s*(?:Args|Arguments|Parameters|Returns|Raises|Example|Examples):\s*\n", doc)
    description = blocks[0].strip()
    args: dict[str, str] = {}
    match = re.search(r"\n\s*(?:Args|Arguments|Parameters):\s*\n(.*?)(?:\n\s*(?:Returns|Raises|Examples?):\s*\n|\Z)",
                      "\n" + doc, re.DOTALL)
    if match:
        current = None
        for line in match.group(1).splitlines():
            item = re.match(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
            if item and (current is None or len(line) - len(line.lstrip()) <= args.get("__indent__", 99)):
                current = item.group(1)
                args["__indent__"] = len(line) - len(line.lstrip())  # type: ignore[assignment]
                args[current] = item.group(2).strip()
            elif current is not None and line.strip():
                args[current] = f"{args[current]} {line.strip()}".strip()
        args.pop("__indent__", None)
    return description, args


def function_schema(fn: Callable[..., Any], name: str | None = None) -> dict[str, Any]:
    """The ``{"type": "function", "function": {...}}`` schema of a typed, documented function.

    Types map to JSON schema as in ``transformers.utils.get_json_schema``:
    ``str``/``int``/``float``/``bool`` → string/integer/number/boolean,
    ``list[X]`` → array of X, ``dict`` → object, ``Literal[...]`` → enum,
    ``X | None`` / ``Optional[X]`` → X with ``"nullable": true``. Parameters
    without a default are ``required``. Argument descriptions come from the
    docstring's ``Args:`` section; the description is the text before it.

    Raises:
        TypeError: a parameter has no annotation or an unsupported type.
    """
    name = name or fn.__name__
    hints = typing.get_type_hints(fn)
    description, arg_docs = _parse_docstring(fn.__doc__ or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name not in hints:
            raise TypeError(f"tool {name!r}: parameter {param.name!r} needs a type annotation")
        prop = _type_schema(hints[param.name], f"tool {name!r}, parameter {param.name!r}")
        if param.name in arg_docs:
            prop["description"] = arg_docs[param.name]
        properties[param.name] = prop
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


@dataclass
class Tool:
    """A callable tool and its schema. ``Tool.from_function(fn)`` derives the schema."""

    name: str
    fn: Callable[..., Any]
    schema: dict[str, Any]

    @classmethod
    def from_function(cls, fn: Callable[..., Any], name: str | None = None) -> "Tool":
        schema = function_schema(fn, name)
        return cls(schema["function"]["name"], fn, schema)

    @property
    def parameters(self) -> dict[str, Any]:
        return self.schema["function"]["parameters"]


# -- parsing ------------------------------------------------------------------------------
@dataclass
class ToolCall:
    """One call found in a response. ``error`` is set when it cannot be executed as written."""

    name: str | None
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def key(self) -> str:
        """Canonical text of the call (for comparing calls)."""
        return json.dumps([self.name, self.arguments], sort_keys=True, ensure_ascii=False)


def _call_from_object(obj: Any) -> ToolCall:
    if not isinstance(obj, dict):
        return ToolCall(None, {}, f"a tool call must be a JSON object with \"name\" and \"arguments\", got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return ToolCall(None, {}, 'the tool call has no "name" string')
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI style: arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return ToolCall(name, {}, f'the "arguments" string of {name!r} is not valid JSON: {exc.msg}')
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return ToolCall(name, {}, f'"arguments" of {name!r} must be a JSON object, got {type(arguments).__name__}')
    return ToolCall(name, arguments)


def _loads(text: str) -> Any:
    text = text.strip()
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Every tool call in a model response, in order; ``[]`` when there is none. Never raises.

    Reads ``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` blocks (the
    last may be unclosed, as when generation stops at the closing tag). Without
    any block, the whole response (optionally in a ```json fence) may be one
    JSON object with ``name`` and ``arguments``, or a list of them.
    """
    if not isinstance(text, str):
        return []
    blocks = _TOOL_CALL.findall(text)
    if blocks:
        calls = []
        for block in blocks:
            try:
                calls.append(_call_from_object(_loads(block)))
            except (json.JSONDecodeError, RecursionError) as exc:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                calls.append(ToolCall(None, {}, f"the tool call is not valid JSON ({msg}): {block.strip()[:120]!r}"))
        return calls
    try:
        obj = _loads(text)
    except (json.JSONDecodeError, RecursionError):
        return []
    objs = obj if isinstance(obj, list) else [obj]
    if not objs or not all(isinstance(o, dict) and "name" in o for o in objs):
        return []
    return [_call_from_object(o) for o in objs]


# -- validation ---------------------------------------------------------------------------
def _check_value(value: Any, schema: dict[str, Any], where: str) -> Any:
    """``value`` checked (and int→float, 3.0→3 coerced) against ``schema``; raises ValueError."""
    if value is None:
        if schema.get("nullable"):
            return None
        raise ValueError(f"{where} must not be null")
    if "enum" in schema:
        if value not in schema["enum"]:
            raise ValueError(f"{where} must be one of {schema['enum']}, got {value!r}")
        return value
    if "anyOf" in schema:
        for sub in schema["anyOf"]:
            try:
                return _check_value(value, sub, where)
            except ValueError:
                continue
        raise ValueError(f"{where} matches none of the allowed types, got {value!r}")
    kinds = schema.get("type")
    if kinds is None:
        return value
    errors = []
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind == "string" and isinstance(value, str):
            return value
        if kind == "boolean" and isinstance(value, bool):
            return value
        if kind == "integer" and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == "array" and isinstance(value, list):
            items = schema.get("items")
            return [_check_value(v, items, f"{where}[{i}]") for i, v in enumerate(value)] if items else value
        if kind == "object" and isinstance(value, dict):
            extra = schema.get("additionalProperties")
            return {k: _check_value(v, extra, f"{where}.{k}") for k, v in value.items()} if extra else value
        errors.append(kind)
    raise ValueError(f"{where} must be {' or '.join(errors)}, got {type(value).__name__} {json.dumps(value)[:60]}")


def validate_arguments(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments, type-checked against ``tool``'s schema.

    Raises:
        ValueError: unknown or missing arguments, or a value of the wrong type
            (the message names the argument and what was expected).
    """
    params = tool.parameters
    properties = params.get("properties", {})
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ValueError(f"{tool.name} has no argument {unknown[0]!r}; its arguments are {sorted(properties)}")
    missing = [a for a in params.get("required", []) if a not in arguments]
    if missing:
        raise ValueError(f"{tool.name} needs argument {missing[0]!r}")
    return {k: _check_value(v, properties[k], f"argument {k!r} of {tool.name}") for k, v in arguments.items()}


# -- formatting ----------------------------------------------------------------------------
def format_tool_call(name: str, arguments: dict[str, Any] | None = None) -> str:
    """One call as the Qwen / Hermes templates write it."""
    body = json.dumps({"name": name, "arguments": arguments or {}}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def format_tool_calls(calls: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """Several calls, one block each, as one response."""
    return "\n".join(format_tool_call(name, args) for name, args in calls)


def format_tool_responses(results: Sequence[tuple[str | None, Any]]) -> str:
    """``<tool_response>`` blocks, one per (tool name, result), in call order (Hermes format)."""
    blocks = []
    for name, content in results:
        body = json.dumps({"name": name, "content": content}, ensure_ascii=False, default=str)
        blocks.append(f"<tool_response>\n{body}\n</tool_response>")
    return "\n".join(blocks)


# -- a random caller (the floor of the tool envs' reports) ---------------------------------
_WORDS = ["alpha", "note", "wifi", "3", "2025-03-12", "hello", "family", "coffee", "10:00", "Ada", "print(1)", "42", ""]


def _random_value(schema: dict[str, Any], rng) -> Any:
    if "enum" in schema:
        return schema["enum"][int(rng.integers(len(schema["enum"])))]
    kind = schema.get("type", "string")
    kind = kind[int(rng.integers(len(kind)))] if isinstance(kind, list) else kind
    if kind == "integer":
        return int(rng.integers(0, 30))
    if kind == "number":
        return round(float(rng.uniform(0, 100)), 2)
    if kind == "boolean":
        return bool(rng.integers(2))
    if kind == "array":
        return [_random_value(schema.get("items", {}), rng) for _ in range(int(rng.integers(0, 3)))]
    if kind == "object":
        return {}
    return _WORDS[int(rng.integers(len(_WORDS)))]


def random_tool_call(tools: Sequence[dict[str, Any]], rng) -> str:
    """A random call of a random tool with random arguments of the right types (optional ones half the time)."""
    schema = tools[int(rng.integers(len(tools)))]["function"]
    params = schema["parameters"].get("properties", {})
    required = set(schema["parameters"].get("required", []))
    args = {k: _random_value(s, rng) for k, s in params.items() if k in required or rng.random() < 0.5}
    return format_tool_call(schema["name"], args)
