"""One headless Chromium running one MiniWoB++ task, through ``miniwob``'s Selenium instance.

Imported lazily by :class:`envs.web.miniwob.env.MiniWoBEnv` (it imports
selenium and miniwob). Chromium and chromedriver come from
``MINIWOB_CHROME_BINARY`` / ``MINIWOB_CHROMEDRIVER`` when set, else from
``PATH`` (Debian: ``chromium`` and ``chromedriver``); both variables are then
set for miniwob, which reads them.

Every read of the page is one JavaScript round trip (:data:`SNAPSHOT_JS`):
utterance, DOM tree, the attributes the DOM tree lacks, and the episode's
done flag and rewards.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

from miniwob.selenium_instance import SeleniumInstance
from selenium.webdriver.common.action_chains import ActionChains

__all__ = ["MiniWoBBrowser", "chrome_paths", "BrowserUnavailable"]

#: setTimeout's largest delay (~24.8 days): MiniWoB's own 10 s episode clock, effectively off.
NO_TIME_LIMIT_MS = 2**31 - 1

SNAPSHOT_JS = """
if (WOB_DONE_GLOBAL) {  // the episode is over: no DOM read (it would hand out refs for the next episode)
  return {utterance: core.getUtterance(), dom: null, extras: {}, done: true,
          reward: WOB_REWARD_GLOBAL, raw_reward: WOB_RAW_REWARD_GLOBAL, reason: WOB_REWARD_REASON};
}
var dom = core.getDOMInfo();
var extras = {};
Object.keys(core.previousDOMInfo).forEach(function (ref) {
  var el = core.previousDOMInfo[ref], e = {};
  var title = el.getAttribute && (el.getAttribute('title') || el.getAttribute('aria-label'));
  if (title) e.title = title;
  if (el instanceof HTMLSelectElement) {
    e.options = Array.from(el.options).map(function (o) { return o.text; });
    e.selected = el.selectedIndex >= 0 ? el.options[el.selectedIndex].text : '';
  }
  if (Object.keys(e).length) extras[ref] = e;
});
return {utterance: core.getUtterance(), dom: dom, extras: extras, done: WOB_DONE_GLOBAL,
        reward: WOB_REWARD_GLOBAL, raw_reward: WOB_RAW_REWARD_GLOBAL, reason: WOB_REWARD_REASON};
"""

_FORGET_REFS_JS = """
document.querySelectorAll('[data-wob_ref]').forEach(function (el) {
  delete el.dataset.wob_ref; delete el.dataset.wob_eps;
});
core.resetRefCode();
"""

_CLEAR_JS = """
var el = core.previousDOMInfo[arguments[0]];
if (el && 'value' in el) { el.value = ''; }
"""

_SELECT_JS = """
var el = core.previousDOMInfo[arguments[0]];
for (var i = 0; i < el.options.length; i++) {
  if (el.options[i].text === arguments[1]) {
    el.selectedIndex = i;
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
    return true;
  }
}
return false;
"""


class BrowserUnavailable(RuntimeError):
    """Chromium or chromedriver cannot be found or started."""


def chrome_paths() -> tuple[str, str]:
    """``(chromium, chromedriver)`` from the MINIWOB_* variables or ``PATH``; sets the variables."""
    binary = os.environ.get("MINIWOB_CHROME_BINARY") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = os.environ.get("MINIWOB_CHROMEDRIVER") or shutil.which("chromedriver")
    if not binary or not driver:
        raise BrowserUnavailable(
            f"MiniWoB++ needs Chromium and chromedriver (found chromium={binary!r}, chromedriver={driver!r}). "
            "Install them (Debian: apt-get install chromium chromium-driver) or set "
            "MINIWOB_CHROME_BINARY and MINIWOB_CHROMEDRIVER.")
    os.environ["MINIWOB_CHROME_BINARY"], os.environ["MINIWOB_CHROMEDRIVER"] = binary, driver
    return binary, driver


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``); empty elsewhere."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


class MiniWoBBrowser:
    """A headless Chromium on one MiniWoB++ task page.

    Args:
        task: MiniWoB task name, e.g. ``"click-button"``.
        time_limit_ms: MiniWoB's wall-clock limit per episode; ``None`` turns it
            off (text agents think for seconds per step; steprl's step limit applies).
        command_timeout: seconds before a hung browser command fails.
    """

    def __init__(self, task: str, time_limit_ms: int | None = None, command_timeout: float = 30.0):
        chrome_paths()
        self.task = task
        self.time_limit_ms = NO_TIME_LIMIT_MS if time_limit_ms is None else int(time_limit_ms)
        self.instance = SeleniumInstance(index=0, subdomain=task, headless=True)
        try:
            self.instance.start()  # launches chromedriver + chromium and loads the task page
        except Exception as exc:
            self.close()
            raise BrowserUnavailable(f"could not start Chromium for MiniWoB task {task!r}: {exc}") from exc
        self.driver = self.instance.driver
        try:
            self.driver.command_executor.client_config.timeout = command_timeout
        except AttributeError:  # older selenium: keep its default
            pass
        self.driver_pid = self.driver.service.process.pid
        self.browser_pids = _child_pids(self.driver_pid)

    def begin(self, seed: int) -> dict[str, Any]:
        """Start a new episode of the task with MiniWoB seed ``seed``; the first snapshot."""
        self.driver.execute_script(f"core.EPISODE_MAX_TIME = {self.time_limit_ms};")
        self.instance.force_stop()
        # Focus outlives an episode on the task's static elements: drop it so the seed alone sets the page.
        self.driver.execute_script("if (document.activeElement) { document.activeElement.blur(); }")
        self.instance.begin_task(seed=seed)
        # Refs number from 1 in document order every episode: forget last episode's refs, which MiniWoB
        # keeps on elements that outlive an episode (body, wrappers) when it ended by itself.
        self.driver.execute_script(_FORGET_REFS_JS)
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """Utterance, DOM tree, extras, done flag and rewards in one round trip."""
        return self.driver.execute_script(SNAPSHOT_JS)

    def click(self, ref: int) -> None:
        result = self.driver.execute_script(f"return core.elementClick({int(ref)});")
        if result is not True:
            raise ValueError(f"clicking element {ref} failed: {result}")

    def type(self, ref: int, text: str) -> None:
        """Click (focus) the element, clear it, then send the keystrokes."""
        self.click(ref)
        self.driver.execute_script(_CLEAR_JS, int(ref))
        chain = ActionChains(self.driver, duration=0)
        for key in text:
            chain.w3c_actions.key_action.key_down(key)
            chain.w3c_actions.key_action.key_up(key)
        chain.perform()

    def select(self, ref: int, option: str) -> bool:
        """Choose the option whose text is ``option``; False when there is none."""
        self.click(ref)
        return bool(self.driver.execute_script(_SELECT_JS, int(ref), option))

    def alive(self) -> bool:
        """Whether the browser still answers."""
        try:
            return self.driver.execute_script("return 1;") == 1
        except Exception:  # noqa: BLE001 - any failure means gone
            return False

    def close(self) -> None:
        """Quit the browser; kill what is left of it (a crashed chromedriver leaves Chromium behind)."""
        driver = getattr(self.instance, "driver", None)
        try:
            if driver is not None:
                driver.quit()
        except Exception:  # noqa: BLE001 - a dead driver cannot quit
            pass
        for pid in [getattr(self, "driver_pid", None), *getattr(self, "browser_pids", [])]:
            if pid is not None and _is_chrome(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass  # already gone
        process = getattr(getattr(driver, "service", None), "process", None)
        if process is not None:
            try:
                process.wait(timeout=5)  # reap chromedriver: no zombie left behind
            except Exception:  # noqa: BLE001
                pass
        self.instance.died = True


def _is_chrome(pid: int) -> bool:
    """Whether ``pid`` is still one of our Chromium/chromedriver processes (never kill a reused pid)."""
    try:
        return b"chrom" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
