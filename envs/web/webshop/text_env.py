"""``web/webshop-text-v0``: the WebShop-like shop in process, rendered to text.

No server and no browser: the page logic of :mod:`envs.web.webshop.pages`
renders each page's HTML and :func:`~envs.web.webshop.html_text.html_to_text`
turns it into WebShop's "simple" text observation (clickable elements in
brackets). :class:`WebShopTextEnv` is also the base of the browser mode, which
overrides only how a page is opened (:meth:`WebShopTextEnv._open`).

Actions: ``search[query]`` (on the search page) and ``click[element]`` (an
element in brackets on the current page; case-insensitive). Anything else —
malformed text, an element not on the page, a search away from the search
page — is an invalid action: ``valid_action=False``, the observation is the
same page under an error note, the anchor is unchanged, the episode goes on.

``info`` keys: ``task`` (the instruction), ``task_id``, ``admissible_actions``
(on the search page one ``search[<product type>]`` per product type of the
shop — the shop's departments, the same list for every task; elsewhere
``click[...]`` for every clickable element), ``anchor`` (see
:mod:`~envs.web.webshop.pages`), ``expert_action``, ``page`` (the page kind),
``url``; at ``Buy Now``: ``reward_detail`` and ``success`` (reward == 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steprl.envs.core import INVALID_ACTION_OBS, TextEnv
from steprl.envs.web.webshop.catalog import PRODUCT_TYPES, make_goal
from steprl.envs.web.webshop.expert import best_product, expert_action
from steprl.envs.web.webshop.pages import SEARCH_PAGE, PageState, get_shop, parse_action
from steprl.envs.web.webshop.reward import compute_reward

__all__ = ["WebShopTextEnv", "SEARCH_SUGGESTIONS"]

#: ``admissible_actions`` on the search page: one query per product type (task-independent).
SEARCH_SUGGESTIONS = tuple(f"search[{t.name}]" for t in PRODUCT_TYPES)


class WebShopTextEnv(TextEnv):
    """The shop as a text env (see the module docstring).

    Args:
        split: ``"train"`` (10,000 task seeds), ``"valid"`` (1,000) or ``"test"`` (1,000).
        num_tasks: use only the first ``num_tasks`` seeds of the split.
        num_products: catalog size (default 1,200 products, 16 types).
        catalog_seed: which generated catalog (tasks are drawn from it).
    """

    split_ranges = {"train": range(0, 10_000), "valid": range(10_000, 11_000), "test": range(11_000, 12_000)}
    mode = "text"

    def __init__(self, split: str = "train", num_tasks: int | None = None, render_mode: str | None = None,
                 num_products: int = 1200, catalog_seed: int = 0):
        super().__init__(split=split, num_tasks=num_tasks, render_mode=render_mode)
        self.shop = get_shop(num_products, catalog_seed)
        self.goal = None
        self.state: PageState = SEARCH_PAGE
        self._target: str | None = None
        self._page_text = ""

    # -- how a page is opened: overridden by the browser mode -------------------------
    def _open(self, state: PageState, action: tuple[str, str] | None) -> tuple[PageState, str]:
        """Go to ``state`` (by ``action`` from the current page; None = fresh start); return (state, page text)."""
        return state, self.shop.page_text(state)

    # -- TextEnv hooks ------------------------------------------------------------------
    def _load_task(self, task_seed: int) -> None:
        self.goal = make_goal(self.shop.catalog, task_seed)
        self._target = best_product(self.shop, self.goal)

    def _reset_task(self, rng: np.random.Generator) -> tuple[str, dict]:
        self.state, self._page_text = self._open(SEARCH_PAGE, None)
        return self._page_text, self._info()

    def _step_action(self, action: str) -> tuple[str, float, bool, bool, dict]:
        parsed = parse_action(action)
        if parsed is None:
            return self.invalid_action("Use search[query] or click[element].")
        target = self.shop.transition(self.state, *parsed)
        if isinstance(target, str):
            return self.invalid_action(target)
        self.state, self._page_text = self._open(target, parsed)
        info = self._info()
        if self.state.kind != "done":
            return self._page_text, 0.0, False, False, info
        product = self.shop.catalog.by_asin[self.state.asin]
        detail = compute_reward(self.goal, product, dict(self.state.options))
        info["reward_detail"] = detail.as_dict()
        info["success"] = detail.reward >= 1.0 - 1e-9
        return self._page_text, detail.reward, True, False, info

    def _info(self) -> dict[str, Any]:
        state = self.state
        if state.kind == "search":
            admissible = list(SEARCH_SUGGESTIONS)
        else:
            admissible = [f"click[{e}]" for e in self.shop.clickables(state)]
        return {
            "task": self.goal.instruction,
            "admissible_actions": admissible,
            "anchor": state.anchor(),
            "expert_action": expert_action(self.shop, self.goal, state, self._target),
            "page": state.kind,
            "url": state.url(),
        }

    def invalid_action(self, message: str = INVALID_ACTION_OBS) -> tuple[str, float, bool, bool, dict]:
        """Same page under an error note; state, anchor and admissible actions unchanged; reward 0."""
        info = dict(self._last_info)
        info["valid_action"] = False
        info.pop("success", None)
        info.pop("reward_detail", None)
        note = message if message == INVALID_ACTION_OBS else f"{INVALID_ACTION_OBS} {message}"
        return f"{note}\n\n{self._page_text}", 0.0, False, False, info
