"""The MiniWoB++ action language: ``click[ref]``, ``type[ref, text]``, ``select[ref, option]``.

Pure parsing, no browser: :func:`parse_action` turns one line of agent text
into a :class:`WebAction` or ``None`` when it is not well formed.

* ``click[5]``: click the element ``[ref=5]`` (focuses it too).
* ``type[7, Jerald]``: click element 7, clear it, then type ``Jerald`` key by key.
  Surrounding double quotes are dropped: ``type[7, "Jerald"]`` types ``Jerald``.
* ``select[4, Bobine]``: choose the option ``Bobine`` of the ``<select>`` element 4.

Verbs are case-insensitive, spaces around the brackets and the comma are
allowed, anything else (missing bracket, non-numeric ref, empty text, text
outside the Basic Multilingual Plane that the keyboard driver cannot send,
more than :data:`MAX_TEXT_LENGTH` characters) is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["WebAction", "parse_action", "ACTION_HELP", "MAX_TEXT_LENGTH"]

#: Longest text ``type`` / ``select`` accept (MiniWoB fields are short).
MAX_TEXT_LENGTH = 200
ACTION_HELP = "Actions: click[ref], type[ref, text], select[ref, option]."

_CLICK_RE = re.compile(r"^click\s*\[\s*(\d{1,6})\s*\]$", re.IGNORECASE)
_ARG_RE = re.compile(r"^(type|select)\s*\[\s*(\d{1,6})\s*,(.*)\]$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class WebAction:
    """One parsed action: ``kind`` is ``"click"``, ``"type"`` or ``"select"``."""

    kind: str
    ref: int
    text: str = ""

    def __str__(self) -> str:
        return f"click[{self.ref}]" if self.kind == "click" else f"{self.kind}[{self.ref}, {self.text}]"


def _clean_text(raw: str) -> str | None:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not text or len(text) > MAX_TEXT_LENGTH or not text.isprintable():
        return None
    if any(ord(c) > 0xFFFF for c in text):  # chromedriver sends BMP characters only
        return None
    return text


def parse_action(action: str) -> WebAction | None:
    """Parse one action string; ``None`` when it is not one of the three forms."""
    if not isinstance(action, str):
        return None
    action = action.strip()
    match = _CLICK_RE.match(action)
    if match:
        return WebAction("click", int(match.group(1)))
    match = _ARG_RE.match(action)
    if match:
        text = _clean_text(match.group(3))
        if text is None:
            return None
        return WebAction(match.group(1).lower(), int(match.group(2)), text)
    return None
