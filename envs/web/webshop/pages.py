"""The shop's pages as a state machine: one place for page logic, shared by both modes.

A page is a :class:`PageState` (search, results, item, item sub-page, done).
:class:`Shop` knows, for any state, its clickable elements, what each action
leads to, its HTML (served by the web app and rendered to text in text mode),
its URL and its **anchor** — the canonical key of the state used by GiGPO:

===========  ==========================================  ===========================================
page         anchor                                      clickable elements
===========  ==========================================  ===========================================
search       ``/``                                       none: act with ``search[query]``
results      ``/results?q=<query>&page=<n>``             Back to Search, < Prev, Next >, each ASIN
item         ``/item/<asin>?color=black&size=large``     Back to Search, < Prev, option values,
                                                         Description, Features, Reviews, Buy Now
sub-page     ``/item/<asin>/description?color=black``    Back to Search, < Prev
done         ``/done/<asin>?color=black``                none (the episode has ended)
===========  ==========================================  ===========================================

The query in an anchor is lower-cased and whitespace-collapsed; selected
options appear in the product's option-type order. URLs carry the same state
plus the navigation context (the query and results page the item was opened
from, for ``< Prev``); anchors leave that context out.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from steprl.envs.web.webshop.catalog import Catalog, Product, generate_catalog, normalize_query
from steprl.envs.web.webshop.html_text import html_to_text
from steprl.envs.web.webshop.search import SearchEngine

__all__ = ["PageState", "Shop", "get_shop", "parse_action", "RESULTS_PER_PAGE", "MAX_QUERY_CHARS", "SUB_PAGES",
           "SEARCH_PAGE"]

RESULTS_PER_PAGE = 10
MAX_QUERY_CHARS = 200
SUB_PAGES = ("description", "features", "reviews")
_ACTION_RE = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class PageState:
    """Where the shopper is. ``query``/``page`` are the results the item was opened from (navigation context)."""

    kind: str  #: "search" | "results" | "item" | "sub" | "done"
    query: str = ""
    page: int = 1
    asin: str = ""
    options: tuple[tuple[str, str], ...] = ()  #: selected (option type, value), in the product's order
    sub: str = ""  #: "description" | "features" | "reviews" on a sub-page

    def _options_qs(self, readable: bool) -> str:
        if not self.options:
            return ""
        if readable:
            return "?" + "&".join(f"{k}={v}" for k, v in self.options)
        return "?" + urlencode(self.options)

    def anchor(self) -> str:
        """The canonical state key, identical in text and browser mode."""
        if self.kind == "search":
            return "/"
        if self.kind == "results":
            return f"/results?q={self.query}&page={self.page}"
        if self.kind == "item":
            return f"/item/{self.asin}{self._options_qs(True)}"
        if self.kind == "sub":
            return f"/item/{self.asin}/{self.sub}{self._options_qs(True)}"
        return f"/done/{self.asin}{self._options_qs(True)}"

    def url(self) -> str:
        """The path + query string the web app serves this state at."""
        nav = [("q", self.query), ("page", str(self.page))] if self.query else []
        if self.kind == "search":
            return "/"
        if self.kind == "results":
            return "/results?" + urlencode(nav)
        path = {"item": f"/item/{self.asin}", "sub": f"/item/{self.asin}/{self.sub}", "done": f"/done/{self.asin}"}
        params = nav + list(self.options)
        return quote(path[self.kind]) + ("?" + urlencode(params) if params else "")


SEARCH_PAGE = PageState("search")


def parse_action(action: str) -> tuple[str, str] | None:
    """``"search[long hair]"`` → ``("search", "long hair")``, ``"click[Buy Now]"`` → ``("click", "Buy Now")``.

    None for anything else. The verb is case-insensitive; whitespace inside the brackets is collapsed.
    """
    match = _ACTION_RE.match(action)
    if match is None:
        return None
    return match.group(1).lower(), " ".join(match.group(2).split())


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class Shop:
    """Catalog + search engine + page logic. Stateless: every method maps a state to something."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.engine = SearchEngine(catalog)
        self._text_cache: dict[PageState, str] = {}

    # -- navigation ----------------------------------------------------------------
    def results(self, query: str) -> list[str]:
        """The ASINs a query returns (at most 50, best first)."""
        return self.engine.search(query)

    def page_results(self, state: PageState) -> tuple[list[str], int]:
        """The ASINs on a results page and the total number of results."""
        hits = self.results(state.query)
        start = (state.page - 1) * RESULTS_PER_PAGE
        return hits[start:start + RESULTS_PER_PAGE], len(hits)

    def clickables(self, state: PageState) -> list[str]:
        """The texts of the clickable elements of a page, in page order."""
        if state.kind == "results":
            on_page, total = self.page_results(state)
            out = ["Back to Search"]
            if state.page > 1:
                out.append("< Prev")
            if state.page * RESULTS_PER_PAGE < total:
                out.append("Next >")
            return out + on_page
        if state.kind == "item":
            product = self.catalog.by_asin[state.asin]
            values = [v for vs in product.options.values() for v in vs]
            return ["Back to Search", "< Prev", *values, "Description", "Features", "Reviews", "Buy Now"]
        if state.kind == "sub":
            return ["Back to Search", "< Prev"]
        return []

    def transition(self, state: PageState, verb: str, arg: str) -> PageState | str:
        """The state an action leads to, or an error message (str) saying why the action is not valid here."""
        if state.kind == "done":
            return "The order is placed; the episode is over."
        if verb == "search":
            if state.kind != "search":
                return "There is no search box on this page; click[Back to Search] first."
            query = normalize_query(arg)
            if not query:
                return "The search query is empty."
            if len(query) > MAX_QUERY_CHARS:
                return f"The search query is too long ({len(query)} characters; at most {MAX_QUERY_CHARS})."
            return PageState("results", query=query, page=1)
        target = _norm(arg)
        elements = {_norm(e): e for e in self.clickables(state)}
        if target not in elements:
            return f"There is no clickable element [{arg}] on this page."
        element = elements[target]
        if element == "Back to Search":
            return SEARCH_PAGE
        if state.kind == "results":
            if element == "< Prev":
                return replace(state, page=state.page - 1)
            if element == "Next >":
                return replace(state, page=state.page + 1)
            return PageState("item", query=state.query, page=state.page, asin=element)
        if state.kind == "sub":  # < Prev: back to the item, options kept
            return replace(state, kind="item", sub="")
        # item page
        if element == "< Prev":
            return PageState("results", query=state.query, page=state.page) if state.query else SEARCH_PAGE
        if element in ("Description", "Features", "Reviews"):
            return replace(state, kind="sub", sub=element.lower())
        if element == "Buy Now":
            return replace(state, kind="done")
        return self.select_option(state, element)

    def select_option(self, state: PageState, value: str) -> PageState:
        """The item page with ``value`` selected for its option type (replacing the previous choice)."""
        product = self.catalog.by_asin[state.asin]
        chosen = dict(state.options)
        for otype, values in product.options.items():
            if value in values:
                chosen[otype] = value
        ordered = tuple((ot, chosen[ot]) for ot in product.options if ot in chosen)
        return replace(state, options=ordered)

    # -- URLs ------------------------------------------------------------------------
    def state_from_url(self, url: str) -> PageState | None:
        """Parse a URL (or path + query) the app serves back into its state; None if it names no page."""
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        query = normalize_query(params.get("q", ""))
        try:
            page = int(params.get("page", "1"))
        except ValueError:
            return None
        segments = [s for s in parts.path.split("/") if s]
        if not segments:
            return SEARCH_PAGE
        if segments == ["results"]:
            if not query or len(query) > MAX_QUERY_CHARS:
                return None
            total = len(self.results(query))
            if page < 1 or (page - 1) * RESULTS_PER_PAGE >= max(total, 1):
                return None
            return PageState("results", query=query, page=page)
        if segments[0] not in ("item", "done") or len(segments) < 2 or segments[1] not in self.catalog.by_asin:
            return None
        product = self.catalog.by_asin[segments[1]]
        options = tuple((ot, params[ot]) for ot in product.options if params.get(ot) in product.options[ot])
        if segments[0] == "done" and len(segments) == 2:
            return PageState("done", query=query, page=page, asin=product.asin, options=options)
        if segments[0] == "item" and len(segments) == 2:
            return PageState("item", query=query, page=page, asin=product.asin, options=options)
        if segments[0] == "item" and len(segments) == 3 and segments[2] in SUB_PAGES:
            return PageState("sub", query=query, page=page, asin=product.asin, options=options, sub=segments[2])
        return None

    # -- HTML ------------------------------------------------------------------------
    def page_text(self, state: PageState) -> str:
        """The page's text observation, ``html_to_text(render_html(state))``, memoized (pages are pure functions of state)."""
        text = self._text_cache.get(state)
        if text is None:
            if len(self._text_cache) >= 20_000:
                self._text_cache.clear()
            text = self._text_cache[state] = html_to_text(self.render_html(state))
        return text

    def render_html(self, state: PageState) -> str:
        """The page's HTML (no scripts, no outside resources)."""
        body = getattr(self, f"_body_{state.kind}")(state)
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>WebShop</title>"
                "<link rel=\"icon\" href=\"data:,\"></head><body>" + body + "</body></html>")

    @staticmethod
    def _link(text: str, href: str, extra_class: str = "") -> str:
        cls = "clickable" + (f" {extra_class}" if extra_class else "")
        return f'<a class="{cls}" href="{html.escape(href)}">{html.escape(text)}</a>'

    def _nav(self, state: PageState, prev: PageState | None) -> str:
        links = [self._link("Back to Search", "/")]
        if prev is not None:
            links.append(self._link("< Prev", prev.url()))
        return '<div class="nav">' + " ".join(links) + "</div>"

    def _body_search(self, state: PageState) -> str:
        return ('<h1>WebShop</h1><div>Enter keywords to search for products.</div>'
                '<form id="search_form" action="/results" method="get">'
                '<input id="search_input" name="q" type="text" autocomplete="off">'
                '<input type="hidden" name="page" value="1">'
                '<button id="search_button" type="submit">Search</button></form>')

    def _body_results(self, state: PageState) -> str:
        on_page, total = self.page_results(state)
        links = [self._link("Back to Search", "/")]
        if state.page > 1:
            links.append(self._link("< Prev", replace(state, page=state.page - 1).url()))
        head = f'<div class="nav">{links[0]}</div><div>Page {state.page} (Total results: {total})</div>'
        pager = list(links[1:])
        if state.page * RESULTS_PER_PAGE < total:
            pager.append(self._link("Next >", replace(state, page=state.page + 1).url()))
        rows = []
        for asin in on_page:
            p = self.catalog.by_asin[asin]
            item = PageState("item", query=state.query, page=state.page, asin=asin)
            rows.append(f'<div class="result">{self._link(asin, item.url())} <span>{html.escape(p.title)}</span> '
                        f'<span>${p.price:.2f}</span></div>')
        return head + (f'<div class="pager">{" ".join(pager)}</div>' if pager else "") + "".join(rows)

    def _prev_of_item(self, state: PageState) -> PageState:
        return PageState("results", query=state.query, page=state.page) if state.query else SEARCH_PAGE

    def _body_item(self, state: PageState) -> str:
        p = self.catalog.by_asin[state.asin]
        chosen = dict(state.options)
        parts = [self._nav(state, self._prev_of_item(state))]
        for otype, values in p.options.items():
            buttons = []
            for v in values:
                target = self.select_option(state, v)
                buttons.append(self._link(v, target.url(), "selected" if chosen.get(otype) == v else ""))
            note = f"<span> (selected: {html.escape(chosen[otype])})</span>" if otype in chosen else ""
            parts.append(f'<div class="option">{html.escape(otype)}: {" ".join(buttons)}{note}</div>')
        parts.append(f"<h2>{html.escape(p.title)}</h2>")
        parts.append(f"<div>Price: ${p.price:.2f}</div><div>Rating: {p.rating:.1f}</div>")
        subs = [self._link(s.capitalize(), replace(state, kind="sub", sub=s).url()) for s in SUB_PAGES]
        parts.append('<div class="more">' + " ".join(subs) + "</div>")
        parts.append('<div class="buy">' + self._link("Buy Now", replace(state, kind="done").url()) + "</div>")
        return "".join(parts)

    def _body_sub(self, state: PageState) -> str:
        p = self.catalog.by_asin[state.asin]
        lines = {"description": [p.description], "features": list(p.features), "reviews": list(p.reviews)}[state.sub]
        return (self._nav(state, replace(state, kind="item", sub="")) + f"<h2>{state.sub.capitalize()}</h2>"
                + "".join(f"<div>{html.escape(line)}</div>" for line in lines))

    def _body_done(self, state: PageState) -> str:
        p = self.catalog.by_asin[state.asin]
        opts = ", ".join(f"{k}: {v}" for k, v in state.options) or "none"
        return ("<h1>Thank you for shopping with us!</h1>"
                f"<div>Your order: {p.asin} {html.escape(p.title)}</div>"
                f"<div>Options: {html.escape(opts)}</div><div>Price: ${p.price:.2f}</div>")

    def not_found_html(self) -> str:
        """The 404 page."""
        return ('<!DOCTYPE html><html><head><title>WebShop</title><link rel="icon" href="data:,"></head><body>'
                '<h1>Page not found</h1><div class="nav">' + self._link("Back to Search", "/") + "</div></body></html>")


@functools.lru_cache(maxsize=4)
def get_shop(num_products: int = 1200, catalog_seed: int = 0) -> Shop:
    """The process-wide shop of a catalog (built once: catalog ~0.2 s, index ~15 ms)."""
    return Shop(generate_catalog(num_products, catalog_seed))


def product_of(shop: Shop, state: PageState) -> Product | None:
    """The product a state is about (item, sub-page, done), else None."""
    return shop.catalog.by_asin.get(state.asin) if state.asin else None
