"""HTML → the text observation of WebShop's "simple" mode: clickable elements in brackets.

Both modes of the shop read pages through :func:`html_to_text`: text mode on the
HTML the shop renders in process, browser mode on the live DOM Chromium serves
(``page.content()``). Rules: elements whose ``class`` contains ``clickable``
become ``[their text]``; block elements (``div``, ``p``, ``li``, ``h1``… ``br``)
start a new line; ``head``, ``script``, ``style``, ``title`` are skipped;
whitespace is collapsed and empty lines dropped.
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["html_to_text"]

_BLOCK = {"div", "p", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "br", "form", "section", "body", "hr"}
_SKIP = {"head", "script", "style", "title", "noscript", "template"}
_VOID = {"br", "hr", "img", "input", "link", "meta"}


class _TextBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[list[str]] = [[]]
        self.skip = 0
        self.stack: list[tuple[str, bool]] = []  # (tag, is_clickable)
        self.button: list[str] | None = None  # text of the clickable being read

    def _newline(self) -> None:
        if self.lines[-1]:
            self.lines.append([])

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
            return
        if tag in _BLOCK:
            self._newline()
        if tag in _VOID:
            return
        clickable = "clickable" in (dict(attrs).get("class") or "").split()
        self.stack.append((tag, clickable))
        if clickable and self.button is None:
            self.button = []

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag in _VOID:
            return
        while self.stack:  # pop to the matching tag (tolerates unclosed inner tags)
            open_tag, clickable = self.stack.pop()
            if clickable and self.button is not None and not any(c for _, c in self.stack):
                text = " ".join(" ".join(self.button).split())
                self.lines[-1].append(f"[{text}]")
                self.button = None
            if open_tag == tag:
                break
        if tag in _BLOCK:
            self._newline()

    def handle_data(self, data):
        if self.skip:
            return
        words = data.split()
        if not words:
            return
        (self.button if self.button is not None else self.lines[-1]).append(" ".join(words))


def html_to_text(html: str) -> str:
    """The bracketed text of a page (see the module docstring for the rules)."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    return "\n".join(" ".join(line) for line in builder.lines if line)
