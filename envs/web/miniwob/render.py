"""MiniWoB++ DOM → text page. Pure functions over the dict ``core.getDOMInfo()`` returns.

A page is a list of :class:`Element` in document order, one line each::

    [ref=6] button "Ok"
    [ref=7] button title="Close"
    [ref=5] input_text value="" focused
    [ref=6] input_checkbox "USa" checked=false
    [ref=4] select selected="Bobine" options=["Bobine", "Ana"]
    text "Vulputate risus commodo"

Rules: MiniWoB already drops invisible (zero-size) elements. Containers
without text of their own (``body``, ``div``, ``p``, …) are skipped; an element
is shown when it has text or is a form control (``button``, ``a``,
``input_*``, ``textarea``, ``select``). A ``button`` or ``a`` without text of its own
takes the text inside it (icon spans included). Loose text nodes (MiniWoB's ``t``
pseudo-elements) become ``text "…"`` lines without a ref: they cannot be
clicked. The text beside a checkbox or radio inside a ``<label>`` becomes that
input's label. Strings are JSON-quoted so quotes and newlines never break a line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Element", "parse_page", "render_page", "FORM_TAGS", "TYPABLE_TAGS"]

#: Tags shown even without text.
FORM_TAGS = frozenset({"button", "a", "textarea", "select"})
#: Element tags ``type[ref, text]`` accepts (``input_<type>`` for text-like inputs, and textarea).
TYPABLE_TAGS = frozenset({"input_text", "input_password", "input_email", "input_search", "input_number",
                          "input_tel", "input_url", "input_date", "input_time", "textarea"})
_TOGGLE_TAGS = frozenset({"input_checkbox", "input_radio"})


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class Element:
    """One line of the page. ``ref`` is ``None`` for loose text (not clickable)."""

    ref: int | None
    tag: str
    text: str = ""
    value: str | None = None
    checked: bool | None = None
    focused: bool = False
    title: str = ""
    options: tuple[str, ...] = field(default=())
    dom_id: str = ""

    @property
    def clickable(self) -> bool:
        return self.ref is not None

    @property
    def typable(self) -> bool:
        return self.tag in TYPABLE_TAGS

    def line(self) -> str:
        if self.ref is None:
            return f"text {_quote(self.text)}"
        parts = [f"[ref={self.ref}]", self.tag]
        if self.text:
            parts.append(_quote(self.text))
        if self.title and not self.text:
            parts.append(f"title={_quote(self.title)}")
        if self.checked is not None:
            parts.append(f"checked={'true' if self.checked else 'false'}")
        elif self.tag == "select":
            parts.append(f"selected={_quote(self.value or '')}")
            parts.append("options=[" + ", ".join(_quote(o) for o in self.options) + "]")
        elif self.value is not None:
            parts.append(f"value={_quote(self.value)}")
        if self.focused:
            parts.append("focused")
        return " ".join(parts)


def _text_of(node: Mapping[str, Any]) -> str:
    return " ".join(str(node.get("text") or "").split())


def _all_text(node: Mapping[str, Any]) -> str:
    own = _text_of(node)
    inner = " ".join(t for t in (_all_text(c) for c in node.get("children") or []) if t)
    return " ".join(t for t in (own, inner) if t)


def _walk(node: Mapping[str, Any], extras: Mapping[str, Mapping[str, Any]], out: list[Element]) -> None:
    tag = str(node.get("tag", "")).lower()
    children = list(node.get("children") or [])
    text = _text_of(node)
    if children and all(str(c.get("tag", "")).lower() == "t" for c in children):
        # Text split around inline markup: the element's text is its pieces joined.
        text = " ".join(_text_of(c) for c in children)
        children = []
    if tag in ("button", "a") and not text and children:
        # A button is one target: its label is all the text inside it (icon spans included).
        text = " ".join(t for t in (_all_text(c) for c in children) if t)
        children = []
    ref = node.get("ref")
    extra = extras.get(str(ref), {}) if ref is not None else {}
    if tag == "t":
        if text:
            out.append(Element(None, "text", text))
        return
    is_input = tag.startswith("input_")
    toggles = [c for c in children if str(c.get("tag", "")).lower() in _TOGGLE_TAGS]
    if tag == "label" and len(toggles) == 1:
        # <label><input type=checkbox>name</label>: the loose text names the input.
        label = " ".join(_text_of(c) for c in children if str(c.get("tag", "")).lower() == "t")
        _walk({**toggles[0], "text": label}, extras, out)
        for c in children:
            if str(c.get("tag", "")).lower() not in ("t",) and c is not toggles[0]:
                _walk(c, extras, out)
        return
    if text or is_input or tag in FORM_TAGS:
        value = node.get("value")
        checked = None
        if tag in _TOGGLE_TAGS:
            checked, value = bool(value), None
        elif tag == "select":
            value = extra.get("selected")
        elif is_input or tag == "textarea":
            value = "" if value is None else str(value)
            if tag == "textarea":
                text = ""  # a textarea's text is its value
        else:
            value = None
        out.append(Element(
            ref=int(ref), tag=tag, text=text, value=value, checked=checked,
            focused=bool(node.get("focused")), title=str(extra.get("title") or ""),
            options=tuple(str(o) for o in extra.get("options") or ()), dom_id=str(node.get("id") or ""),
        ))
    for child in children:
        _walk(child, extras, out)


def parse_page(dom: Mapping[str, Any] | None, extras: Mapping[str, Mapping[str, Any]] | None = None) -> list[Element]:
    """The visible, meaningful elements of a ``getDOMInfo`` tree, in document order.

    ``extras`` maps a ref (as a string) to attributes ``getDOMInfo`` omits:
    ``title`` (or aria-label), and for ``<select>`` its ``options`` and ``selected`` text.
    """
    out: list[Element] = []
    if dom:
        _walk(dom, extras or {}, out)
    return out


def render_page(elements: Iterable[Element]) -> str:
    """One line per element; an empty page says so."""
    lines = [e.line() for e in elements]
    return "\n".join(lines) if lines else "(the page is empty)"
