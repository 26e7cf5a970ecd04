"""MiniWoB++ adapter: action parsing and page rendering (no browser), then live Chromium tests.

The browser tests drive the real ``miniwob`` pages through the system Chromium
and chromedriver; they skip when those are missing.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steprl import envs
from steprl.envs.web.miniwob import MAX_EPISODE_STEPS, TASKS, env_id, parse_action, parse_page, render_page
from steprl.envs.web.miniwob.actions import WebAction
from steprl.envs.web.miniwob.experts import expert_action

# -- action parsing (no browser) -----------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("click[5]", WebAction("click", 5)),
    ("Click [ 12 ]", WebAction("click", 12)),
    ("type[7, Jerald]", WebAction("type", 7, "Jerald")),
    ('type[7, "two words"]', WebAction("type", 7, "two words")),
    ("type[7,a]b]", WebAction("type", 7, "a]b")),
    ("TYPE[3, ünïcödé ☃]", WebAction("type", 3, "ünïcödé ☃")),
    ("select[4, Bobine]", WebAction("select", 4, "Bobine")),
    ("  select[4 , New Zealand ]  ", WebAction("select", 4, "New Zealand")),
])
def test_parse_well_formed_actions(text, expected):
    assert parse_action(text) == expected


@pytest.mark.parametrize("text", [
    "", "click", "click[]", "click[x]", "click[-1]", "click[5", "click 5", "click[5] now", "press[5]",
    "type[7]", "type[7, ]", 'type[7, ""]', "type[, x]", "type[7, a\x00b]", "type[7, 🙂]",
    "type[7, " + "a" * 201 + "]", "select[4]", "click[1234567]", None, 42,
])
def test_parse_rejects_malformed_actions(text):
    assert parse_action(text) is None


def test_action_round_trips_through_str():
    for action in (WebAction("click", 3), WebAction("type", 5, "Hello, world"), WebAction("select", 2, "Kim")):
        assert parse_action(str(action)) == action


# -- rendering (no browser) ---------------------------------------------------------------------

def _node(tag, ref, children=(), **kw):
    return {"tag": tag, "ref": ref, "children": list(children), **kw}


DOM = _node("BODY", 1, [_node("DIV", 2, [_node("DIV", 3, [
    _node("LABEL", 4, [_node("INPUT_checkbox", 5, value=True), _node("t", -1, text="USa")]),
    _node("LABEL", 6, [_node("INPUT_checkbox", 7, value=False), _node("t", -2, text='say "hi"')]),
    _node("t", -3, text="Loose   text"),
    _node("SPAN", 8, text="link", classes="alink"),
    _node("INPUT_text", 9, value="abc", focused=True),
    _node("TEXTAREA", 10, text="notes", value="notes"),
    _node("SELECT", 11),
    _node("BUTTON", 12, [_node("SPAN", 13, text=""), _node("t", -4, text="Close")]),
    _node("DIV", 14, text=""),  # empty container: not shown
    _node("H3", 15, [_node("t", -5, text="Section"), _node("t", -6, text="#3")]),
])])])
EXTRAS = {"11": {"options": ["Ana", "Bobine"], "selected": "Ana"}, "12": {"title": "Close"}}


def test_render_page_lines():
    page = parse_page(DOM, EXTRAS)
    assert render_page(page).splitlines() == [
        '[ref=5] input_checkbox "USa" checked=true',
        '[ref=7] input_checkbox "say \\"hi\\"" checked=false',
        'text "Loose text"',
        '[ref=8] span "link"',
        '[ref=9] input_text value="abc" focused',
        '[ref=10] textarea value="notes"',
        '[ref=11] select selected="Ana" options=["Ana", "Bobine"]',
        '[ref=12] button "Close"',
        '[ref=15] h3 "Section #3"',
    ]
    assert [e.ref for e in page if e.clickable] == [5, 7, 8, 9, 10, 11, 12, 15]
    assert [e.ref for e in page if e.typable] == [9, 10]
    assert render_page(parse_page(None)) == "(the page is empty)"


def test_experts_on_hand_made_pages():
    page = parse_page(DOM, EXTRAS)
    assert expert_action("click-checkboxes", "Select USa, say \"hi\" and click Submit.", page, []) == "click[7]"
    assert expert_action("click-checkboxes", "Select nothing and click Submit.", page, []) == "click[5]"
    choose = "Select Bobine from the list and click Submit."
    assert expert_action("choose-list", choose, page, []) == "select[11, Bobine]"
    done = 'Enter "abc" into the text field and press Submit.'
    assert expert_action("enter-text", done, page, []) is None  # text already right, but no Submit button
    assert expert_action("enter-text", 'Enter "xyz" into the text field and press Submit.', page, []) == "type[9, xyz]"
    assert expert_action("click-dialog", 'Close the dialog box by clicking the "x".', page, []) == "click[12]"
    assert expert_action("no-such-task", "anything", page, []) is None


def test_importing_the_family_starts_no_browser_and_imports_no_selenium():
    code = ("import sys, envs, envs.web.miniwob as m; "
            "assert 'web/miniwob-click-button-v0' in envs.registry(); "
            "print(sorted(k for k in ('selenium', 'miniwob') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"


def test_every_task_is_registered_with_a_step_limit():
    specs = envs.registry()
    assert len(TASKS) >= 10
    for task in TASKS:
        spec = specs[env_id(task)]
        assert spec.max_episode_steps == MAX_EPISODE_STEPS and spec.kwargs == {"task": task}
        assert "chromedriver" in spec.description


# -- live browser ---------------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    not (shutil.which("chromium") or os.environ.get("MINIWOB_CHROME_BINARY"))
    or not (shutil.which("chromedriver") or os.environ.get("MINIWOB_CHROMEDRIVER")),
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)")
def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state != "Z"


def _play(env, policy, task_index):
    obs, info = env.reset(options={"task": task_index})
    for _ in range(MAX_EPISODE_STEPS):
        obs, reward, terminated, truncated, info = env.step(policy(info))
        if terminated or truncated:
            return reward, info
    raise AssertionError("the step limit did not end the episode")


@pytest.mark.browser
@needs_chromium
def test_observation_of_a_live_page():
    env = envs.make("web/miniwob-click-button-v0", split="test", num_tasks=3)
    try:
        obs, info = env.reset(seed=0, options={"task": 1})
        lines = obs.splitlines()
        label = info["task"].split('"')[1]
        assert info["task"].startswith("Click on the ") and info["task_id"] == "web/miniwob-click-button-v0:110001"
        assert sum(line.endswith(f'button "{label}"') for line in lines) >= 1  # duplicates all count
        assert all(line.startswith("[ref=") or line.startswith("text ") for line in lines)
        refs = [int(line[5:line.index("]")]) for line in lines if line.startswith("[ref=")]
        assert info["admissible_actions"] == [f"click[{r}]" for r in refs] and info["anchor"] == obs
        assert info["expert_action"] in info["admissible_actions"]
        assert f'[ref={info["expert_action"][6:-1]}] button "{label}"' in lines

        # Same seed ⇒ same page, in a fresh browser too; another seed ⇒ (here) another page.
        other = envs.make("web/miniwob-click-button-v0", split="test", num_tasks=3)
        try:
            obs2, info2 = other.reset(seed=5, options={"task": 1})
            assert (obs2, info2["task"]) == (obs, info["task"])
            obs3, _ = other.reset(options={"task": 2})
            assert obs3 != obs
        finally:
            other.close()

        # Wrong refs and kinds: refused before the browser, page unchanged, the episode goes on.
        button = int(info["expert_action"][6:-1])
        for bad, note in [("click[999]", "There is no element [ref=999]"),
                          (f"type[{button}, hi]", "is not a text field"),
                          (f"select[{button}, x]", "has no option"), ("press the button", "Not a valid action")]:
            obs_bad, reward, terminated, truncated, info_bad = env.step(bad)
            assert note in obs_bad.splitlines()[0] and obs_bad.endswith("\n" + obs)
            assert (reward, terminated, truncated, info_bad["valid_action"]) == (0.0, False, False, False)
            assert info_bad["anchor"] == obs
        obs, reward, terminated, truncated, info = env.step(f"click[{button}]")
        assert (reward, terminated, info["success"], info["raw_reward"]) == (1.0, True, True, 1.0)
    finally:
        env.close()


@pytest.mark.browser
@needs_chromium
def test_type_replaces_the_field_and_select_picks_the_option():
    env = envs.make("web/miniwob-enter-text-v0", split="test", num_tasks=1)
    try:
        obs, info = env.reset(options={"task": 0})
        field = next(line for line in obs.splitlines() if "input_text" in line)
        ref = int(field[5:field.index("]")])
        env.step(f"type[{ref}, wrong text]")
        obs, reward, terminated, truncated, info = env.step(f'type[{ref}, "a, b"]')
        assert f'[ref={ref}] input_text value="a, b" focused' in obs.splitlines()
        assert (reward, terminated, info["valid_action"]) == (0.0, False, True)
        # The expert sees the wrong value and retypes it, then submits.
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])  # retypes the right text
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])  # Submit
        assert (reward, terminated, info["success"]) == (1.0, True, True)
    finally:
        env.close()
    env = envs.make("web/miniwob-choose-list-v0", split="test", num_tasks=1)
    try:
        obs, info = env.reset(options={"task": 0})
        target = info["task"].split("Select ")[1].split(" from the list")[0]
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        assert f'selected="{target}"' in obs and not terminated
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        assert (reward, info["success"]) == (1.0, True)
    finally:
        env.close()


@pytest.mark.browser
@needs_chromium
def test_miniwob_wall_clock_limit_is_off_by_default_and_can_be_set():
    env = envs.make("web/miniwob-click-test-v0", split="test", num_tasks=1, time_limit_ms=400)
    try:
        obs, info = env.reset(options={"task": 0})
        time.sleep(0.8)
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        outcome = (reward, terminated, info["success"], info["raw_reward"], info["reason"])
        assert outcome == (0.0, True, False, -1.0, "timed out")
    finally:
        env.close()
    env = envs.make("web/miniwob-click-test-v0", split="test", num_tasks=1)
    try:
        obs, info = env.reset(options={"task": 0})
        time.sleep(0.8)
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        assert (reward, info["success"]) == (1.0, True)
    finally:
        env.close()


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("victim", ["chromium", "chromedriver"])
def test_a_killed_browser_truncates_the_episode_and_the_next_reset_relaunches(victim):
    env = envs.make("web/miniwob-login-user-v0", split="test", num_tasks=2)
    try:
        obs, info = env.reset(options={"task": 0})
        obs, *_ , info = env.step(info["expert_action"])  # first field typed
        old = env.unwrapped._browser
        pids = old.browser_pids if victim == "chromium" else [old.driver_pid]
        assert pids and all(_alive(p) for p in pids)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        assert (reward, terminated, truncated, info["success"]) == (0.0, False, True, False)
        assert info["env_error"].startswith("browser died") and "stopped responding" in obs
        assert not any(_alive(p) for p in [old.driver_pid, *old.browser_pids])  # nothing left behind

        reward, info = _play(env, lambda info: info["expert_action"], 1)
        assert (reward, info["success"]) == (1.0, True)
        assert env.unwrapped._browser is not old
    finally:
        env.close()


@pytest.mark.browser
@needs_chromium
def test_close_ends_the_browser_processes():
    env = envs.make("web/miniwob-click-test-v0", split="test", num_tasks=1)
    env.reset(options={"task": 0})
    browser_ = env.unwrapped._browser
    pids = [browser_.driver_pid, *browser_.browser_pids]
    assert len(pids) >= 2 and all(_alive(p) for p in pids)
    env.close()
    deadline = time.time() + 5
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_expert_solves_every_task_and_random_clicking_does_worse():
    """Acceptance bar: expert ≥ 90% on 10 test seeds per task; random admissible clicks clearly lower."""
    from steprl.evaluation import ExpertPolicy, RandomPolicy, run_policy

    episodes = 10
    rows = []
    for task in sorted(TASKS):
        expert = run_policy(env_id(task), ExpertPolicy(), split="test", num_tasks=episodes, progress=False)
        random = run_policy(env_id(task), RandomPolicy(seed=0), split="test", num_tasks=episodes, progress=False)
        rows.append((task, expert, random))
    print(f"\n{'task':<22} {'expert':>7} {'random':>7} {'expert turns':>13}")
    for task, expert, random in rows:
        print(f"{task:<22} {100 * expert.success_rate:6.0f}% {100 * random.success_rate:6.0f}% "
              f"{expert.mean_turns:13.1f}")
    expert_mean = sum(e.success_rate for _, e, _ in rows) / len(rows)
    random_mean = sum(r.success_rate for _, _, r in rows) / len(rows)
    print(f"{'mean':<22} {100 * expert_mean:6.1f}% {100 * random_mean:6.1f}%")
    for task, expert, random in rows:
        assert expert.episodes == random.episodes == episodes
        assert expert.success_rate >= 0.9, f"{task}: expert {expert.line()}"
        assert random.success_rate <= expert.success_rate, task
    assert random_mean <= expert_mean - 0.4
