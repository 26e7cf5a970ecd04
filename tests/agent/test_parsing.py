"""parse_response: the two formats, malformed input, and the never-raise rule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.parsing import parse_response


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
