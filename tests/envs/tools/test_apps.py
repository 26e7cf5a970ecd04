"""tools/apps-v0: APIs, every check type (collateral damage included), invalid calls, anchors, expert/random bars."""

import numpy as np
import pytest

from steprl import envs
from steprl.envs.tools import RandomToolPolicy, format_tool_call, format_tool_calls
from steprl.envs.tools.apps.api import Apps, api_names
from steprl.envs.tools.apps.checks import (
    Allow,
    AnswerCheck,
    DeletedCheck,
    FieldCheck,
    NoCollateralDamage,
    Outcome,
    RecordCheck,
    values_equal,
)
from steprl.envs.tools.apps.tasks import TEMPLATES
from steprl.envs.tools.apps.world import copy_world, generate_world
from steprl.evaluation.baselines import ExpertPolicy, run_policy


def make(template: str, num_tasks: int = 3, **kw):
    env = envs.make("tools/apps-v0", split="test", num_tasks=num_tasks, templates=[template], **kw)
    obs, info = env.reset(seed=0, options={"task": 0})
    return env, info


def play(env, *calls):
    """One turn making these calls; returns the step's 5-tuple."""
    return env.step(format_tool_calls(calls))


def test_apps_and_api_counts():
    names = api_names()
    apps = {n.split("_")[0] for n in names}
    assert len(names) == 37 and len(apps - {"docs", "supervisor"}) == 6
    assert {"docs_list_apps", "docs_list_apis", "docs_show_api_doc", "supervisor_complete_task"} <= set(names)
    assert len(TEMPLATES) == 14
    env, info = make("contact_phone")
    assert [t["function"]["name"] for t in info["tools"]] == names
    assert info["admissible_actions"] is None and info["task"].startswith("What is ")


def test_docs_lookup():
    env, info = make("contact_phone")
    obs, *_ , info = play(env, ("docs_list_apis", {"app": "wallet"}), ("docs_show_api_doc", {"api": "wallet_send_money"}))
    assert '"api": "wallet_send_money"' in obs and '"required": ["email", "amount"]' in obs
    assert info["valid_action"] is True


def test_answer_check_and_collateral_on_a_question_task():
    env, _ = make("contact_phone")
    contact = next(c for c in env.unwrapped.world["contacts"].values() if c["name"] in env.unwrapped.task_text)
    # right answer, nothing changed: 2/2
    obs, reward, terminated, truncated, info = play(env, ("supervisor_complete_task", {"answer": contact["phone"]}))
    assert terminated and reward == 1.0 and info["success"] is True
    # wrong answer after deleting a note: 0/2
    env.reset(seed=0, options={"task": 0})
    play(env, ("notes_delete", {"note_id": 1}))
    obs, reward, terminated, truncated, info = play(env, ("supervisor_complete_task", {"answer": "555-000-0000"}))
    assert reward == 0.0 and info["success"] is False
    assert info["checks"] == {f"answer == {contact['phone']!r}": False, "no collateral damage": False}


def test_share_of_checks_and_collateral_damage_on_pay_back():
    env, _ = make("pay_back")
    base = env.unwrapped
    contact = next(c for c in base.world["contacts"].values() if c["name"] in base.task_text)
    note = base.task_text.split('note "')[1].rstrip('".')
    asked = float(next(m["text"] for m in base.world["messages"].values() if "pay me back" in m["text"])
                  .split("$")[1].split()[0])
    balance = base.world["account"][1]["balance"]
    # right amount, wrong note: record check fails, balance and collateral pass -> 2/3
    play(env, ("wallet_send_money", {"email": contact["email"], "amount": asked, "note": "stuff"}))
    obs, reward, terminated, truncated, info = play(env, ("supervisor_complete_task", {}))
    assert reward == pytest.approx(2 / 3) and not info["success"]
    assert base.world["account"][1]["balance"] == pytest.approx(balance - asked)
    # all right, plus a stray text message: collateral damage fails -> 2/3, not a success
    env.reset(seed=0, options={"task": 0})
    play(env, ("wallet_send_money", {"email": contact["email"], "amount": asked, "note": note}),
         ("messages_send", {"phone_number": contact["phone"], "text": "sent!"}))
    obs, reward, terminated, truncated, info = play(env, ("supervisor_complete_task", {}))
    assert reward == pytest.approx(2 / 3) and info["success"] is False and info["checks"]["no collateral damage"] is False
    # paid twice: record count (exactly 1) and balance fail, collateral passes (transactions to them allowed) -> 1/3
    env.reset(seed=0, options={"task": 0})
    call = ("wallet_send_money", {"email": contact["email"], "amount": asked, "note": note})
    play(env, call, call)
    obs, reward, terminated, truncated, info = play(env, ("supervisor_complete_task", {}))
    assert reward == pytest.approx(1 / 3)
    # exactly right -> 3/3
    env.reset(seed=0, options={"task": 0})
    play(env, call)
    assert play(env, ("supervisor_complete_task", {}))[1] == 1.0


def test_check_types_by_hand():
    world = generate_world(np.random.default_rng(5))
    after = copy_world(world)
    apps = Apps(after)
    apps.messages_send(after["contacts"][1]["phone"], "Hello there")
    apps.contacts_update(2, email="new@x.org")
    apps.calendar_cancel_event(3)
    outcome = Outcome(world, after, "12.5", True)
    # RecordCheck counts exact matches; text is compared case/space-insensitively
    assert RecordCheck("messages", {"text": "hello   THERE", "direction": "sent"})(outcome)
    assert not RecordCheck("messages", {"text": "Hello there"}, count=2)(outcome)
    assert RecordCheck("messages", {"text": "Goodbye"}, count=0)(outcome)
    # FieldCheck, DeletedCheck
    assert FieldCheck("contacts", 2, "email", "new@x.org")(outcome) and not FieldCheck("contacts", 2, "email", "a@b.c")(outcome)
    assert DeletedCheck("events", 3)(outcome) and not DeletedCheck("events", 4)(outcome)
    assert not FieldCheck("events", 3, "title", "x")(outcome)  # a deleted record fails field checks
    # AnswerCheck: numbers within 0.005, needs complete_task
    assert AnswerCheck("12.50")(outcome) and not AnswerCheck("12.6")(outcome)
    assert not AnswerCheck("12.50")(Outcome(world, after, "12.5", completed=False))
    # NoCollateralDamage: every change must be allowed
    rules = [Allow("messages", "add", match={"phone_number": after["contacts"][1]["phone"]}),
             Allow("contacts", "change", ids=(2,), fields=("email",)), Allow("events", "delete", ids=(3,))]
    assert NoCollateralDamage(rules)(outcome)
    assert NoCollateralDamage(rules[:2]).violations(outcome) == [("events", "delete", 3)]
    assert NoCollateralDamage([rules[0], Allow("contacts", "change", ids=(2,), fields=("phone",)), rules[2]]).violations(
        outcome) == [("contacts", "change", 2)]
    assert not NoCollateralDamage([Allow("messages", "add", match={"phone_number": "x"}), *rules[1:]])(outcome)
    assert NoCollateralDamage([])(Outcome(world, copy_world(world), None, True))
    assert values_equal(["b", "a"], ["a", "b"]) and not values_equal(["a"], ["a", "a"]) and values_equal(3, "3.00")


def test_invalid_calls_are_invalid_and_change_nothing():
    env, info = make("text_contact")
    anchor, world = info["anchor"], copy_world(env.unwrapped.world)
    bad = {
        "bad json": '<tool_call>{"name": "messages_send", "arguments": {"text": }</tool_call>',
        "unknown tool": format_tool_call("messages_send_all", {}),
        "wrong type": format_tool_call("messages_send", {"phone_number": 5551234, "text": "hi"}),
        "missing arg": format_tool_call("messages_send", {"text": "hi"}),
        "extra arg": format_tool_call("contacts_search", {"name": "x"}),
        "no call": "I would send the message now.",
        "one bad of two": format_tool_call("messages_send", {"phone_number": "555", "text": "hi"}) + format_tool_call("nope"),
        "finish not last": format_tool_call("supervisor_complete_task") + format_tool_call("contacts_search"),
    }
    expected = {"bad json": "not valid JSON", "unknown tool": "unknown tool 'messages_send_all'",
                "wrong type": "argument 'phone_number' of messages_send must be string", "missing arg": "needs argument",
                "extra arg": "has no argument 'name'", "no call": "No tool call found", "one bad of two": "call 2",
                "finish not last": "must be the last call"}
    for name, action in bad.items():
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["valid_action"] is False, name
        assert expected[name] in obs, (name, obs)
        assert (reward, terminated, info["anchor"]) == (0.0, False, anchor), name
    assert env.unwrapped.world == world  # nothing ran, not even the good call of "one bad of two"
    # a well-formed call the API refuses is valid and answers an error
    obs, reward, terminated, truncated, info = play(env, ("contacts_show", {"contact_id": 999}))
    assert info["valid_action"] is True and "There is no contact with id 999" in obs


def test_turn_limit_grades_the_episode():
    env, info = make("text_contact", max_turns=2)
    base = env.unwrapped
    contact = next(c for c in base.world["contacts"].values() if c["name"] in base.task_text)
    text = base.task_text.split('saying: "')[1].rstrip('"')
    play(env, ("messages_send", {"phone_number": contact["phone"], "text": text}))
    obs, reward, terminated, truncated, info = env.step("no call")
    assert truncated and not terminated and reward == 1.0 and info["success"] is True and "Out of turns" in obs


def test_anchor_is_the_state_plus_the_last_result():
    env, info0 = make("contact_phone")
    _, _, _, _, a = play(env, ("contacts_search", {"query": "a"}))
    _, _, _, _, b = play(env, ("contacts_search", {"query": "a"}))
    _, _, _, _, c = play(env, ("contacts_search", {"query": "b"}))
    _, _, _, _, d = play(env, ("notes_create", {"title": "t", "content": "c"}))
    _, _, _, _, e = play(env, ("contacts_search", {"query": "a"}))
    assert a["anchor"] == b["anchor"] != c["anchor"] != info0["anchor"]
    assert e["anchor"] != a["anchor"]  # same result text, but the world now has a note
    env2, _ = make("contact_phone")  # another rollout of the same task reaches the same anchor
    assert play(env2, ("contacts_search", {"query": "a"}))[4]["anchor"] == a["anchor"]
    for _ in range(3):  # a reset after writes is the initial state again (no stale cached state text)
        assert env.reset(seed=1, options={"task": 0})[1]["anchor"] == info0["anchor"]
        play(env, ("notes_create", {"title": "t", "content": "c"}))
    assert play(env, ("contacts_search", {"query": "a"}))[4]["anchor"] == e["anchor"]


def test_expert_plans_use_one_to_eight_calls_and_cross_apps():
    env = envs.make("tools/apps-v0", split="train", num_tasks=14 * 3).unwrapped
    calls, cross = {}, set()
    for seed in env.task_seeds:
        world, task = env.task_for(seed)
        n = sum(len(turn) for turn in task.plan)
        calls.setdefault(task.template, []).append(n)
        apps = {name.split("_")[0] for turn in task.plan for name, _ in turn} - {"supervisor"}
        if len(apps) > 1:
            cross.add(task.template)
    assert set(calls) == set(TEMPLATES)
    assert min(min(v) for v in calls.values()) >= 1 and max(max(v) for v in calls.values()) <= 8
    assert len(cross) >= 6


@pytest.mark.slow
def test_expert_solves_all_and_random_none_of_200_test_tasks():
    expert = run_policy("tools/apps-v0", ExpertPolicy(), split="test", num_tasks=200, progress=False)
    random = run_policy("tools/apps-v0", RandomToolPolicy(seed=0), split="test", num_tasks=200, progress=False)
    print(f"\ntools/apps-v0 test 200: {expert.line()}\n{random.line()}")
    assert expert.success_rate == 1.0 and expert.mean_return == 1.0
    assert random.success_rate <= 0.02
