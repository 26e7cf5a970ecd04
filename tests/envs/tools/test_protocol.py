"""Tool protocol: schemas from typed functions, parsing model text, argument validation."""

from typing import Literal, Optional

import pytest

from steprl.envs.tools.protocol import (
    Tool,
    format_tool_call,
    format_tool_responses,
    function_schema,
    parse_tool_calls,
    validate_arguments,
)


def book(city: str, nights: int, guests: int | None = None, note: Optional[str] = None, tags: list[str] = [],  # noqa: B006
         room: Literal["single", "double"] = "double", budget: float = 100.0, pets: bool = False) -> str:
    """Book a hotel room.

    Args:
        city: where to stay.
        nights: how many nights,
            at least one.
        guests: how many people.
        note: a note for the hotel.
        tags: labels.
        room: the room type.
        budget: most dollars per night.
        pets: bringing pets.
    """
    return "ok"


def test_schema_of_defaults_optional_list_literal():
    schema = function_schema(book)
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "book" and fn["description"] == "Book a hotel room."
    props = fn["parameters"]["properties"]
    assert fn["parameters"]["required"] == ["city", "nights"]  # only the ones without defaults
    assert props["city"] == {"type": "string", "description": "where to stay."}
    assert props["nights"] == {"type": "integer", "description": "how many nights, at least one."}
    assert props["guests"] == {"type": "integer", "nullable": True, "description": "how many people."}
    assert props["note"] == {"type": "string", "nullable": True, "description": "a note for the hotel."}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "description": "labels."}
    assert props["room"] == {"type": "string", "enum": ["single", "double"], "description": "the room type."}
    assert props["budget"]["type"] == "number" and props["pets"]["type"] == "boolean"


@pytest.mark.slow  # importing transformers takes seconds
def test_schema_equals_transformers_get_json_schema():
    transformers_utils = pytest.importorskip("transformers.utils")
    theirs = transformers_utils.get_json_schema(book)
    theirs["function"].pop("return", None)  # they also describe the return type; chat templates ignore it
    assert function_schema(book) == theirs


def test_schema_needs_annotations():
    def untyped(x):
        """No types."""

    with pytest.raises(TypeError, match="needs a type annotation"):
        function_schema(untyped)


def test_parse_several_calls_bare_json_and_fences():
    text = ('I will look.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
            '<tool_call>{"name": "b", "arguments": "{\\"y\\": [1, 2]}"}</tool_call>')
    calls = parse_tool_calls(text)
    assert [(c.name, c.arguments, c.error) for c in calls] == [("a", {"x": 1}, None), ("b", {"y": [1, 2]}, None)]
    assert [(c.name, c.arguments) for c in parse_tool_calls('{"name": "c", "arguments": {}}')] == [("c", {})]
    assert [c.name for c in parse_tool_calls('```json\n[{"name": "d"}, {"name": "e", "arguments": null}]\n```')] == ["d", "e"]
    # an unclosed last block (generation stopped at the closing tag) is still read
    assert parse_tool_calls('<tool_call>{"name": "f", "arguments": {"z": true}}')[0].arguments == {"z": True}
    assert parse_tool_calls("just words") == [] and parse_tool_calls("{}") == [] and parse_tool_calls('{"x": 1}') == []


def test_parse_errors_are_reported_not_raised():
    calls = parse_tool_calls('<tool_call>{"name": "a", "arguments": {"x": </tool_call><tool_call>[1]</tool_call>'
                             '<tool_call>{"arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": 3}</tool_call>')
    assert [c.error is not None for c in calls] == [True, True, True, True]
    assert "not valid JSON" in calls[0].error and "JSON object" in calls[1].error
    assert '"name"' in calls[2].error and "must be a JSON object" in calls[3].error
    assert parse_tool_calls("<tool_call>" + "[" * 100_000 + "</tool_call>")[0].error is not None


def test_validate_arguments():
    tool = Tool.from_function(book)
    assert validate_arguments(tool, {"city": "Oslo", "nights": 2.0, "budget": 80}) == {"city": "Oslo", "nights": 2, "budget": 80.0}
    assert validate_arguments(tool, {"city": "Oslo", "nights": 1, "guests": None, "tags": ["a"]})["guests"] is None
    for args, message in [({"city": "Oslo"}, "needs argument 'nights'"),
                          ({"city": "Oslo", "nights": 1, "floor": 3}, "has no argument 'floor'"),
                          ({"city": 3, "nights": 1}, "argument 'city' of book must be string"),
                          ({"city": "Oslo", "nights": "two"}, "must be integer"),
                          ({"city": "Oslo", "nights": True}, "must be integer"),
                          ({"city": "Oslo", "nights": 1.5}, "must be integer"),
                          ({"city": "Oslo", "nights": 1, "tags": ["a", 2]}, r"tags'.*\[1\] .*must be string"),
                          ({"city": "Oslo", "nights": 1, "room": "suite"}, "must be one of"),
                          ({"city": None, "nights": 1}, "must not be null")]:
        with pytest.raises(ValueError, match=message):
            validate_arguments(tool, args)


def test_formatting_round_trip():
    text = format_tool_call("book", {"city": "Zürich", "nights": 2})
    assert text == '<tool_call>\n{"name": "book", "arguments": {"city": "Zürich", "nights": 2}}\n</tool_call>'
    assert parse_tool_calls(text)[0].arguments == {"city": "Zürich", "nights": 2}
    assert format_tool_responses([("book", "ok"), ("x", {"a": 1})]) == (
        '<tool_response>\n{"name": "book", "content": "ok"}\n</tool_response>\n'
        '<tool_response>\n{"name": "x", "content": {"a": 1}}\n</tool_response>')
