"""Closing the last browser-mode env stops the shared Chromium and Playwright driver of the thread.

In a module of its own: the other browser tests keep a module-scoped env open.
"""

import shutil
import time

import pytest

from steprl import envs

pytest.importorskip("playwright")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the system Chromium")]

from steprl.envs.web.webshop.browser_env import chromium_pids  # noqa: E402


def test_closing_the_last_env_stops_chromium_and_frees_the_thread_for_playwright():
    """Playwright's sync API refuses to start while another driver runs in the thread; closing our envs must end ours."""
    first = envs.make("web/webshop-browser-v0", split="test", num_tasks=1)
    second = envs.make("web/webshop-browser-v0", split="test", num_tasks=1)
    first.reset(options={"task": 0})
    second.reset(options={"task": 0})
    first.close()
    assert len(chromium_pids()) >= 1  # the other env still uses the shared Chromium
    second.close()
    deadline = time.time() + 10
    while chromium_pids() and time.time() < deadline:
        time.sleep(0.1)
    assert chromium_pids() == []
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()  # raised "Sync API inside the asyncio loop" before the fix
    driver.stop()
