"""parse_response: the two formats, malformed input, and the never-raise rule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steprl.agent.parsing import ParsedResponse, parse_response


@pytest.mark.parametrize(
    "text, action, think",
    [
        ("<think>coin is east</think><action>go east</action>", "go east", "coin is east"),
        ("  <think>\nmulti\nline\n</think>\n<action> take coin </action>\n", "take coin", "multi\nline"),
        ("<think></think><action>look</action>", "look", ""),
    ],
)
def test_think_action_well_formed(text, action, think):
    parsed = parse_response(text, "think_action")
    assert (parsed.action, parsed.format_ok, parsed.think) == (action, True, think)


@pytest.mark.parametrize(
    "text, action",
    [
        ("", ""),
        ("go east", ""),  # no tags at all
        ("<action>go east</action>", "go east"),  # no think
        ("<think>x</think>", ""),  # no action
        ("<think>x</think><action></action>", ""),  # empty action
        ("<think>x</think><action>   </action>", ""),
        ("<think>x</think><action>go east", ""),  # unclosed
        ("<think>x</think><action>go east</action> and then more", "go east"),  # trailing text
        ("preamble <think>x</think><action>go east</action>", "go east"),  # leading text
        ("<think>x</think><action>go <action>east</action>", "go <action>east"),  # nested tag
        ("<think>x</think><action>a</action><action>b</action>", "b"),  # two actions
        ("<think>a <think> b</think><action>look</action>", "look"),  # nested think
        ("<think>x</think><action>go\x07east</action>", "go\x07east"),  # control character
    ],
)
def test_think_action_malformed(text, action):
    parsed = parse_response(text, "think_action")
    assert parsed.format_ok is False
    assert parsed.action == action


@pytest.mark.parametrize(
    "text, action, ok",
    [
        ("go east", "go east", True),
        ("  take coin \n", "take coin", True),
        ("", "", False),
        ("   \n\n", "", False),
        ("go east\nand more", "go east", False),
        ("<action>go east</action>", "<action>go east</action>", False),
        ("go\x00 east", "go\x00 east", False),
    ],
)
def test_plain(text, action, ok):
    parsed = parse_response(text, "plain")
    assert (parsed.action, parsed.format_ok) == (action, ok)


def test_unfinished_response_is_never_format_ok():
    assert parse_response("go east", "plain", finished=False).format_ok is False
    parsed = parse_response("<think>x</think><action>go east</action>", "think_action", finished=False)
    assert (parsed.action, parsed.format_ok) == ("go east", False)


@pytest.mark.parametrize("bad", [None, 3, b"go east", ["go east"]])
def test_non_string_input(bad):
    assert parse_response(bad, "plain") == parse_response("", "plain")


def test_unknown_format_does_not_raise():
    assert parse_response("go east", "json").format_ok is False


PIECES = list("<>/thinkaco \n") + ["<think>", "</think>", "<action>", "</action>"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES)).map("".join), st.sampled_from(["plain", "think_action"]))
def test_never_raises_and_ok_means_an_action(text, fmt):
    parsed = parse_response(text, fmt)
    assert isinstance(parsed.action, str)
    if parsed.format_ok:
        assert parsed.action.strip() and "<action>" not in parsed.action


def test_tool_calls_format_keeps_the_whole_reply_and_checks_each_block():
    call = '<tool_call>{"name": "contacts_search", "arguments": {"query": "Ann"}}</tool_call>'
    two = call + "\n" + '<tool_call>{"name": "wallet_balance", "arguments": {}}</tool_call>'
    assert parse_response(call, "tool_calls") == ParsedResponse(call, True)
    assert parse_response("  " + two + "\n", "tool_calls") == ParsedResponse(two, True)
    code = '<tool_call>{"name": "run_python", "arguments": {"code": "for i in range(3):\\n    print(i)"}}</tool_call>'
    assert parse_response(code, "tool_calls").format_ok  # newlines inside a call are fine
    bad = ["", "call contacts_search", '<tool_call>{"name": "x", "arguments": {}</tool_call>',  # bad JSON
           '<tool_call>{"arguments": {}}</tool_call>', '<tool_call>["x"]</tool_call>',  # no name / not an object
           '<tool_call>{"name": "x", "arguments": [1]}</tool_call>', "Sure! " + call,  # text outside the block
           '<tool_call>{"name": "x", "arguments": {}}']  # unclosed
    for text in bad:
        parsed = parse_response(text, "tool_calls")
        assert parsed.format_ok is False and parsed.action == text.strip(), text
    assert parse_response(call, "tool_calls", finished=False).format_ok is False
