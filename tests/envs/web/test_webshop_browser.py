"""WebShop-like shop, browser mode: a real uvicorn server and the system Chromium (no mocks).

Text and browser mode must agree step by step; outside requests are blocked and
logged; a killed Chromium truncates the episode and the next reset relaunches it.
"""

import logging
import os
import shutil
import signal
import time
import urllib.request

import numpy as np
import pytest

from steprl import envs

pytest.importorskip("playwright")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which("chromium") is None,
                                 reason="needs the system Chromium (apt-get install -y chromium)")]

from steprl.envs.web.webshop.browser_env import chromium_pids  # noqa: E402


@pytest.fixture(scope="module")
def browser_env():
    env = envs.make("web/webshop-browser-v0", split="test", num_tasks=50)
    yield env
    env.close()


def test_server_serves_the_same_html_as_text_mode(browser_env):
    browser_env.reset(options={"task": 0})
    base = browser_env.unwrapped
    shop = base.shop
    state = shop.state_from_url("/results?q=sulfate+free+shampoo&page=2")
    with urllib.request.urlopen(base._server.url + state.url()) as response:
        assert response.status == 200 and response.read().decode() == shop.render_html(state)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base._server.url + "/item/NOTANASIN")
    assert err.value.code == 404


def _plan(text_env, task: int, rng: np.random.Generator) -> list[str]:
    """An action sequence for ``task``: expert actions, with random admissible ones and a bad click mixed in."""
    obs, info = text_env.reset(options={"task": task})
    actions = []
    for t in range(15):
        if t == 1:
            action = "click[Nothing Here]"  # invalid: not on the page
        elif rng.random() < 0.3:
            action = info["admissible_actions"][int(rng.integers(len(info["admissible_actions"])))]
        else:
            action = info["expert_action"]
        actions.append(action)
        obs, r, term, trunc, info = text_env.step(action)
        if term or trunc:
            break
    return actions


def _play(env, task: int, actions: list[str]) -> list[tuple]:
    obs, info = env.reset(options={"task": task})
    trace = [(obs, info["anchor"], info["admissible_actions"], info["expert_action"])]
    for action in actions:
        obs, r, term, trunc, info = env.step(action)
        trace.append((obs, info["anchor"], info["admissible_actions"], r, term, trunc, info["valid_action"],
                       info.get("success")))
        if term or trunc:
            break
    return trace


@pytest.mark.slow
def test_text_and_browser_modes_agree_on_50_test_tasks(browser_env):
    text_env = envs.make("web/webshop-text-v0", split="test", num_tasks=50)
    rng = np.random.default_rng(0)
    rewards_text, rewards_browser, steps = [], [], 0
    for task in range(50):
        actions = _plan(text_env, task, rng)
        text_trace, browser_trace = _play(text_env, task, actions), _play(browser_env, task, actions)
        for i, (a, b) in enumerate(zip(text_trace, browser_trace)):
            assert a == b, f"task {task} step {i} ({actions[i - 1] if i else 'reset'}): text {a} != browser {b}"
        assert len(text_trace) == len(browser_trace)
        rewards_text.append(text_trace[-1][3])
        rewards_browser.append(browser_trace[-1][3])
        steps += len(actions)
    print(f"\n50 tasks, {steps} steps: mean reward text {np.mean(rewards_text):.3f}, "
          f"browser {np.mean(rewards_browser):.3f}")
    assert rewards_text == rewards_browser
    assert np.mean(rewards_text) > 0.5  # the plans mostly follow the expert: buys happen, rewards are non-trivial


def test_outside_requests_are_blocked_and_logged(browser_env, caplog):
    browser_env.reset(options={"task": 1})
    base = browser_env.unwrapped
    base.blocked_requests.clear()
    caplog.set_level(logging.WARNING, logger="steprl.envs.web.webshop.browser_env")
    result = base.page.evaluate(
        "() => fetch('http://example.com/steal?x=1').then(() => 'fetched', () => 'failed')")
    assert result == "failed"
    base.page.evaluate("""() => { const img = document.createElement('img');
        img.src = 'https://example.org/pixel.png'; document.body.appendChild(img); }""")
    deadline = time.monotonic() + 10
    while "https://example.org/pixel.png" not in base.blocked_requests and time.monotonic() < deadline:
        base.page.wait_for_timeout(50)
    assert base.blocked_requests == ["http://example.com/steal?x=1", "https://example.org/pixel.png"]
    assert sum("blocked a request outside the shop" in r.getMessage() for r in caplog.records) == 2
    # the shop itself still works
    obs, r, term, trunc, info = browser_env.step("search[shampoo]")
    assert info["valid_action"] and info["anchor"] == "/results?q=shampoo&page=1" and len(base.blocked_requests) == 2


def test_killed_chromium_truncates_and_the_next_reset_relaunches(browser_env):
    obs, info = browser_env.reset(options={"task": 2})
    obs, r, term, trunc, info = browser_env.step(info["expert_action"])
    assert info["page"] == "results"
    pids = chromium_pids()
    assert pids, "no Chromium process found under this test process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    obs, r, term, trunc, info = browser_env.step(info["expert_action"])
    assert trunc is True and term is False and r == 0.0
    assert info["success"] is False and info["env_error"]
    # the next reset relaunches Chromium and the episode plays out normally
    obs, info = browser_env.reset(options={"task": 2})
    new_pids = chromium_pids()
    assert new_pids and not set(new_pids) & set(pids)
    for _ in range(15):
        obs, r, term, trunc, info = browser_env.step(info["expert_action"])
        if term or trunc:
            break
    assert term and r == 1.0 and info["success"] is True and "env_error" not in info


def test_malformed_actions_do_not_touch_the_browser(browser_env):
    obs, info = browser_env.reset(options={"task": 3})
    page = browser_env.unwrapped.page
    url = page.url
    start = time.perf_counter()
    for bad in envs.checker.bad_actions(200) + ["click[Next >]", "search[]", "click[B0NOTTHERE]"]:
        obs2, r, term, trunc, info2 = browser_env.step(bad)
        assert info2["valid_action"] is False and info2["anchor"] == "/"
        if trunc:
            browser_env.reset(options={"task": 3})
    elapsed = time.perf_counter() - start
    assert page.url == url
    assert elapsed < 15  # ~13 resets at most; no DOM action per bad action


def test_two_envs_share_chromium_and_the_server_without_interfering(browser_env):
    other = envs.make("web/webshop-browser-v0", split="test", num_tasks=50)
    try:
        _, info_a = browser_env.reset(options={"task": 4})
        _, info_b = other.reset(options={"task": 5})
        assert browser_env.unwrapped._server is other.unwrapped._server
        assert browser_env.unwrapped.page is not other.unwrapped.page
        rewards = {}
        for _ in range(15):  # interleave the two expert episodes step by step
            for name, env, info in (("a", browser_env, info_a), ("b", other, info_b)):
                if name in rewards:
                    continue
                obs, r, term, trunc, info = env.step(info["expert_action"])
                if name == "a":
                    info_a = info
                else:
                    info_b = info
                if term or trunc:
                    rewards[name] = r
            if len(rewards) == 2:
                break
        assert rewards == {"a": 1.0, "b": 1.0}
    finally:
        other.close()

