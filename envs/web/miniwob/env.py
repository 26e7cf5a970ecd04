"""``MiniWoBEnv``: one MiniWoB++ task as a steprl text env.

* Observation: the page as text lines (:mod:`envs.web.miniwob.render`);
  ``info["task"]`` is MiniWoB's utterance ("Click on the "Ok" button.").
* Actions: ``click[ref]``, ``type[ref, text]``, ``select[ref, option]``
  (:mod:`envs.web.miniwob.actions`). Malformed actions, unknown refs and
  wrong element kinds are rejected before the browser is touched.
* ``admissible_actions``: ``click[ref]`` for every element with a ref. Typing
  and selecting are not enumerable, so they are never listed.
* ``anchor``: the page text itself (no positions, no hashes), so equal DOM
  states give equal anchors.
* Reward: 1.0 when the episode ends with MiniWoB's raw reward ≥ 1 (full
  success), else 0.0. For MiniWoB's ±1 tasks that is "raw reward > 0";
  click-checkboxes pays partial credit and counts only when every box is right.
  ``info["raw_reward"]`` keeps MiniWoB's raw reward.
* Tasks: task seed ``s`` is MiniWoB's ``Math.seedrandom(s)``: the same seed
  gives the same utterance and page. ``split_ranges`` keeps train/valid/test
  seeds disjoint (the utterances themselves come from small pools and repeat
  across splits, as in MiniWoB).
* Browser: one headless Chromium per env, started at the first ``reset`` and
  closed by ``close()``. MiniWoB's 10 s wall-clock limit is off by default
  (``time_limit_ms``); the registered step limit applies instead. If the
  browser dies during an episode, the step ends the episode truncated with
  ``info["env_error"]`` and the next ``reset`` starts a new browser.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steprl.envs.core import TextEnv
from steprl.envs.web.miniwob.actions import ACTION_HELP, parse_action
from steprl.envs.web.miniwob.experts import expert_action
from steprl.envs.web.miniwob.render import Element, parse_page, render_page

__all__ = ["MiniWoBEnv"]


class MiniWoBEnv(TextEnv):
    """A MiniWoB++ task driven by text actions.

    Args:
        task: MiniWoB task name (an HTML page of the ``miniwob`` package), e.g. ``"click-button"``.
        split, num_tasks: as :class:`envs.TextEnv`; each task is one MiniWoB seed.
        time_limit_ms: MiniWoB's own wall-clock limit per episode; ``None`` (default) disables it.
    """

    def __init__(self, task: str = "click-button", split: str = "train", num_tasks: int | None = None,
                 time_limit_ms: int | None = None, render_mode: str | None = None):
        super().__init__(split=split, num_tasks=num_tasks, render_mode=render_mode)
        self.task = task
        self.time_limit_ms = time_limit_ms
        self._browser = None
        self._page: list[Element] = []
        self._refs: dict[int, Element] = {}
        self._history: list[str] = []
        self._utterance = ""
        self._done = False

    # -- browser ----------------------------------------------------------------
    def _launch(self):
        from steprl.envs.web.miniwob.browser import MiniWoBBrowser  # selenium + miniwob: only when used

        self._browser = MiniWoBBrowser(self.task, time_limit_ms=self.time_limit_ms)
        return self._browser

    def _drop_browser(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None

    # -- TextEnv hooks ----------------------------------------------------------
    def _load_task(self, task_seed: int) -> None:
        pass  # a task is its seed; the page is generated at reset

    def _reset_task(self, rng: np.random.Generator) -> tuple[str, dict]:
        browser = self._browser or self._launch()
        try:
            snap = browser.begin(self.task_seed)
        except Exception:  # noqa: BLE001 - a dead browser: start a new one, once
            self._drop_browser()
            snap = self._launch().begin(self.task_seed)
        self._history, self._done = [], False
        self._utterance = snap["utterance"]
        return self._observe(snap)

    def _observe(self, snap: dict[str, Any]) -> tuple[str, dict]:
        self._page = parse_page(snap["dom"], snap.get("extras"))
        self._refs = {e.ref: e for e in self._page if e.ref is not None}
        obs = render_page(self._page)
        admissible = [f"click[{e.ref}]" for e in self._page if e.ref is not None]
        info: dict[str, Any] = {"task": self._utterance, "admissible_actions": admissible, "anchor": obs,
                                "miniwob_task": self.task}
        expert = expert_action(self.task, self._utterance, self._page, self._history)
        info["expert_action"] = expert if expert is not None else (admissible[0] if admissible else "click[1]")
        return obs, info

    def _step_action(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._done or self._browser is None:
            return self.invalid_action("The episode is over: reset the env.")
        parsed = parse_action(action)
        if parsed is None:
            return self.invalid_action(f"Not a valid action: {action[:80]!r}. {ACTION_HELP}")
        element = self._refs.get(parsed.ref)
        if element is None:
            return self.invalid_action(f"There is no element [ref={parsed.ref}] on the page.")
        if parsed.kind == "type" and not element.typable:
            return self.invalid_action(f"Element [ref={parsed.ref}] ({element.tag}) is not a text field.")
        if parsed.kind == "select" and (element.tag != "select" or parsed.text not in element.options):
            return self.invalid_action(f"Element [ref={parsed.ref}] has no option {parsed.text!r}.")

        browser = self._browser
        try:
            if parsed.kind == "click":
                browser.click(parsed.ref)
            elif parsed.kind == "type":
                browser.type(parsed.ref, parsed.text)
            else:
                browser.select(parsed.ref, parsed.text)
            snap = browser.snapshot()
        except Exception as exc:  # noqa: BLE001 - the never-raise rule; tell a dead browser from a refused action
            if browser.alive():
                return self.invalid_action(f"The browser could not do {action[:80]!r}: {type(exc).__name__}.")
            return self._browser_died(exc)

        self._history.append(str(parsed))
        if not snap["done"]:
            obs, info = self._observe(snap)
            info["raw_reward"] = 0.0
            return obs, 0.0, False, False, info
        # MiniWoB ended the episode (and renumbered the page's refs): report the outcome, not the page.
        self._done = True
        raw_reward = float(snap["raw_reward"])
        success = raw_reward >= 1.0
        obs = f"The episode is over: {'success' if success else 'failure'} (MiniWoB reward {raw_reward:g})."
        info = {"task": self._utterance, "admissible_actions": [], "anchor": obs, "miniwob_task": self.task,
                "raw_reward": raw_reward, "success": success, "reason": snap.get("reason")}
        return obs, 1.0 if success else 0.0, True, False, info

    def _browser_died(self, exc: Exception) -> tuple[str, float, bool, bool, dict]:
        """End the episode truncated; the next reset launches a new browser."""
        self._drop_browser()
        self._done = True
        info = dict(self._last_info)
        info.update(valid_action=True, success=False, raw_reward=0.0,
                    env_error=f"browser died: {type(exc).__name__}: {str(exc)[:200]}")
        obs = "The browser stopped responding; the episode is over."
        return obs, 0.0, False, True, info

    def close(self) -> None:
        self._drop_browser()
        super().close()

    def __del__(self):
        try:
            self._drop_browser()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
