"""``web/webshop-browser-v0``: the shop in the system Chromium, driven by Playwright.

Same tasks, actions, reward, expert and anchors as ``web/webshop-text-v0``;
only the pages come from a real browser talking to a real server:

* The shop is served by uvicorn (:func:`envs.web.webshop.app.get_server`) on a
  free ``127.0.0.1`` port, started on the first reset and shared per process.
* Chromium (``shutil.which("chromium")``, headless) is launched on the first
  reset and shared per process and thread; each env has its own browser
  context and page.
* ``search[q]`` fills the search box and submits the form; ``click[x]`` clicks
  the clickable element whose text is ``x``. Actions are validated against the
  page logic first, so malformed or impossible actions never touch the browser.
* The observation is the live DOM (``page.content()``) turned into text by the
  same :func:`~envs.web.webshop.html_text.html_to_text` as text mode; the state
  (and so the anchor and the reward) is parsed from the page's URL.
* Requests to anything but the shop server are aborted and recorded in
  :attr:`WebShopBrowserEnv.blocked_requests` (and logged as warnings).
* If the browser fails mid-episode (crashed, killed, timed out) the step returns
  ``truncated=True``, ``success=False`` and ``info["env_error"]``; the next
  ``reset`` relaunches Chromium.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import threading
from urllib.parse import urlsplit

from steprl.envs.web.webshop.app import get_server
from steprl.envs.web.webshop.html_text import html_to_text
from steprl.envs.web.webshop.pages import SEARCH_PAGE, PageState
from steprl.envs.web.webshop.text_env import WebShopTextEnv

__all__ = ["WebShopBrowserEnv", "CHROMIUM_ARGS", "chromium_pids"]

log = logging.getLogger(__name__)

#: Flags for the system Chromium (see MACHINE_NOTES.md).
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")


class BrowserFailure(RuntimeError):
    """The browser could not perform an action (crashed, closed, timed out)."""


class _BrowserHost:
    """One Playwright driver + one Chromium for the current thread; relaunched when dead.

    Envs that use it are counted (:meth:`acquire` / :meth:`release`); when the last
    one closes, Chromium and the Playwright driver stop, so the thread is free for
    other Playwright code (its sync API refuses to start while a driver runs).
    """

    def __init__(self):
        self._playwright = None
        self.browser = None
        self.users: set[int] = set()

    def acquire(self, user: object) -> None:
        self.users.add(id(user))

    def release(self, user: object) -> None:
        self.users.discard(id(user))
        if not self.users:
            self.stop()

    def alive(self) -> bool:
        return self.browser is not None and self.browser.is_connected()

    def ensure(self):
        """The running browser, launching (or relaunching) Chromium if needed."""
        if self.alive():
            return self.browser
        self.close_browser()
        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        if executable is None:
            raise RuntimeError("web/webshop-browser-v0 needs the system Chromium: apt-get install -y chromium")
        if self._playwright is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
        try:
            self.browser = self._playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        except Exception:  # the driver itself may be gone: restart it once
            self.stop()
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self.browser = self._playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        return self.browser

    def close_browser(self) -> None:
        if self.browser is not None:
            try:
                self.browser.close()
            except Exception:  # noqa: BLE001 - already dead
                pass
        self.browser = None

    def stop(self) -> None:
        self.close_browser()
        if self._playwright is not None:
            try:
                self._playwright.stop()
            except Exception:  # noqa: BLE001
                pass
        self._playwright = None


_HOSTS: dict[int, _BrowserHost] = {}


def _host() -> _BrowserHost:
    key = threading.get_ident()
    if key not in _HOSTS:
        _HOSTS[key] = _BrowserHost()
    return _HOSTS[key]


@atexit.register
def _stop_hosts() -> None:
    host = _HOSTS.pop(threading.get_ident(), None)
    if host is not None:
        host.stop()


def chromium_pids() -> list[int]:
    """PIDs of the Chromium *browser* processes this process launched (descendants; not their renderers)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        parents[int(entry)] = int(stat[stat.rfind(")") + 2:].split()[1])
        names[int(entry)] = cmd

    def is_chromium(pid: int) -> bool:
        return "chrom" in os.path.basename(names.get(pid, ""))

    def descends(pid: int) -> bool:
        seen = 0
        while pid in parents and seen < 64:
            pid, seen = parents[pid], seen + 1
            if pid == os.getpid():
                return True
        return False

    return sorted(p for p in names if is_chromium(p) and not is_chromium(parents.get(p, 0)) and descends(p))


class WebShopBrowserEnv(WebShopTextEnv):
    """The shop in Chromium (see the module docstring). Arguments as :class:`WebShopTextEnv`, plus:

    Args:
        timeout_ms: Playwright timeout of one navigation or DOM action.
    """

    mode = "browser"

    def __init__(self, split: str = "train", num_tasks: int | None = None, render_mode: str | None = None,
                 num_products: int = 1200, catalog_seed: int = 0, timeout_ms: float = 15_000):
        super().__init__(split=split, num_tasks=num_tasks, render_mode=render_mode, num_products=num_products,
                         catalog_seed=catalog_seed)
        self._key = (num_products, catalog_seed)
        self.timeout_ms = timeout_ms
        self._server = None
        self._context = None
        self._browser = None
        self.page = None
        #: URLs of requests the page tried to make outside the shop server (aborted).
        self.blocked_requests: list[str] = []

    # -- browser plumbing -------------------------------------------------------------
    def _route(self, route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname == "127.0.0.1" and parts.port == self._server.port:
            route.continue_()
            return
        self.blocked_requests.append(url)
        log.warning("web/webshop-browser-v0: blocked a request outside the shop: %s", url)
        route.abort("blockedbyclient")

    def _ensure_page(self):
        if self._server is None:
            self._server = get_server(*self._key)
        host = _host()
        host.acquire(self)
        browser = host.ensure()
        if self.page is None or self._browser is not browser or self.page.is_closed():
            self._close_context()
            self._browser = browser
            self._context = browser.new_context(java_script_enabled=True)
            self._context.set_default_timeout(self.timeout_ms)
            self._context.route("**/*", self._route)
            self.page = self._context.new_page()
        return self.page

    def _close_context(self) -> None:
        if self._context is not None:
            try:
                self._context.close()
            except Exception:  # noqa: BLE001 - the browser may be gone
                pass
        self._context, self.page = None, None

    def _read(self) -> tuple[PageState, str]:
        page = self.page
        state = self.shop.state_from_url(page.url)
        if state is None:
            raise BrowserFailure(f"the browser is on a page the shop does not know: {page.url}")
        return state, html_to_text(page.content())

    # -- the one override: how a page is opened ---------------------------------------
    def _open(self, state: PageState, action: tuple[str, str] | None) -> tuple[PageState, str]:
        if action is None:  # fresh start: (re)launch if needed, then load the search page
            for attempt in (0, 1):
                try:
                    page = self._ensure_page()
                    if urlsplit(page.url).path != "/":  # already on a fresh search page: just read it
                        page.goto(self._server.url + SEARCH_PAGE.url(), wait_until="domcontentloaded")
                    return self._read()
                except Exception as exc:  # noqa: BLE001 - relaunch once, then give up loudly
                    log.warning("web/webshop-browser-v0: reset failed (%s); relaunching Chromium", exc)
                    self._close_context()
                    _host().close_browser()
                    if attempt:
                        raise RuntimeError(f"web/webshop-browser-v0: could not open the shop in Chromium: {exc}. "
                                           "Is the system Chromium installed (apt-get install -y chromium)?") from exc
        page = self.page
        if page is None:
            raise BrowserFailure("no browser page (the browser failed earlier)")
        verb, arg = action
        with page.expect_navigation(wait_until="domcontentloaded"):
            if verb == "search":
                page.fill("#search_input", arg)
                page.click("#search_button")
            else:  # the element's text as the page shows it (the action may differ in case/spacing)
                shown = {" ".join(e.lower().split()): e for e in self.shop.clickables(self.state)}
                element = shown[" ".join(arg.lower().split())]
                pattern = re.compile(r"^\s*" + re.escape(element) + r"\s*$")
                page.locator(".clickable", has_text=pattern).first.click()
        return self._read()

    def _step_action(self, action: str):
        try:
            return super()._step_action(action)
        except Exception as exc:  # noqa: BLE001 - a browser failure ends the episode, never raises
            log.warning("web/webshop-browser-v0: browser failure, truncating the episode: %s", exc)
            self._close_context()
            info = dict(self._last_info)
            info.update(valid_action=True, success=False, env_error=f"{type(exc).__name__}: {exc}")
            obs = f"The browser failed: {type(exc).__name__}. The episode is over.\n\n{self._page_text}"
            return obs, 0.0, False, True, info

    def close(self) -> None:
        """Close this env's browser context; the shared Chromium stops when no env of this thread uses it."""
        self._close_context()
        host = _HOSTS.get(threading.get_ident())
        if host is not None:
            host.release(self)
        super().close()
