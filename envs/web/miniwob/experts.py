"""Scripted experts for the MiniWoB++ tasks steprl registers: utterance + page → next action.

Each expert reads the instruction (``info["task"]``), the current page
(:class:`~envs.web.miniwob.render.Element` list) and the episode's executed
actions, and returns the next action string, or ``None`` when it cannot tell
(the env then falls back to the first admissible action). Experts re-plan from
the page every step, so they also finish episodes another policy started.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from steprl.envs.web.miniwob.render import Element

__all__ = ["EXPERTS", "expert_action"]

Expert = Callable[[str, Sequence[Element], Sequence[str]], "str | None"]


def _quoted(utterance: str) -> list[str]:
    return re.findall(r'"([^"]*)"', utterance)


def _find(page: Sequence[Element], *, tag: str | None = None, text: str | None = None,
          typable: bool = False) -> Element | None:
    for e in page:
        if e.ref is None or (tag is not None and e.tag != tag) or (typable and not e.typable):
            continue
        if text is not None and e.text != text:
            continue
        return e
    return None


def _click(e: Element | None) -> str | None:
    return None if e is None else f"click[{e.ref}]"


def _submit(page: Sequence[Element], label: str = "Submit") -> str | None:
    return _click(next((e for e in page if e.tag == "button" and e.text.lower() == label.lower()), None))


def _fill_then_submit(page: Sequence[Element], fields: Sequence[tuple[Element | None, str]],
                      submit: str = "Submit") -> str | None:
    """Type each (field, text) whose value differs, in order; then press the button."""
    for field, text in fields:
        if field is None:
            return None
        if field.value != text:
            return f"type[{field.ref}, {text}]"
    return _submit(page, submit)


def click_button(utterance, page, history):
    label = _quoted(utterance)
    return _click(_find(page, tag="button", text=label[0])) if label else None


def click_button_sequence(utterance, page, history):
    one, two = _find(page, tag="button", text="ONE"), _find(page, tag="button", text="TWO")
    if one is None or two is None:
        return None
    return f"click[{two.ref}]" if f"click[{one.ref}]" in history else f"click[{one.ref}]"


def click_link(utterance, page, history):
    label = _quoted(utterance)
    return _click(next((e for e in page if e.tag in ("span", "a") and label and e.text == label[0]), None))


def click_dialog(utterance, page, history):
    return _click(next((e for e in page if e.tag == "button" and "close" in (e.title.lower(), e.text.lower())), None))


def click_dialog_2(utterance, page, history):
    label = _quoted(utterance)
    if not label:
        return None
    if label[0].lower() == "x":
        return click_dialog(utterance, page, history)
    return _click(_find(page, tag="button", text=label[0]))


def click_test(utterance, page, history):
    return _click(_find(page, tag="button"))


def click_test_2(utterance, page, history):
    match = re.search(r"Click button (\w+)", utterance)
    return _click(_find(page, tag="button", text=match.group(1))) if match else None


def click_tab(utterance, page, history):
    match = re.search(r"(Tab #\d+)", utterance)
    return _click(_find(page, tag="a", text=match.group(1))) if match else None


def click_option(utterance, page, history):
    match = re.match(r"Select (.*) and click Submit\.", utterance)
    target = _find(page, tag="input_radio", text=match.group(1)) if match else None
    if target is None:
        return None
    return _submit(page) if target.checked else _click(target)


def click_checkboxes(utterance, page, history):
    match = re.match(r"Select (.*) and click Submit\.", utterance)
    if not match:
        return None
    wanted = set() if match.group(1) == "nothing" else set(match.group(1).split(", "))
    for e in page:
        if e.tag == "input_checkbox" and e.checked != (e.text in wanted):
            return _click(e)
    return _submit(page)


#: click-widget's widget names → the tag of the element that is one.
_WIDGET_TAGS = {"button": "button", "checkbox": "input_checkbox", "radio": "input_radio",
                "text": "input_text", "textarea": "textarea"}


def click_widget(utterance, page, history):
    kind = _quoted(utterance)
    tag = _WIDGET_TAGS.get(kind[0]) if kind else None
    return _click(_find(page, tag=tag)) if tag else None


def enter_text(utterance, page, history):
    text = _quoted(utterance)
    return _fill_then_submit(page, [(_find(page, typable=True), text[0])]) if text else None


def enter_text_2(utterance, page, history):
    text = _quoted(utterance)
    if not text:
        return None
    wanted = text[0].upper() if "upper case" in utterance else text[0].lower()
    return _fill_then_submit(page, [(_find(page, typable=True), wanted)])


def enter_password(utterance, page, history):
    text = _quoted(utterance)
    fields = [e for e in page if e.tag == "input_password"]
    if not text or len(fields) != 2:
        return None
    return _fill_then_submit(page, [(fields[0], text[0]), (fields[1], text[0])])


def focus_text(utterance, page, history):
    return _click(_find(page, typable=True))


_ORDINALS = {"1st": 0, "2nd": 1, "3rd": 2}


def focus_text_2(utterance, page, history):
    match = re.search(r"the (\w+) input textbox", utterance)
    boxes = [e for e in page if e.typable]
    index = _ORDINALS.get(match.group(1)) if match else None
    return _click(boxes[index]) if index is not None and index < len(boxes) else None


def login_user(utterance, page, history):
    text = _quoted(utterance)
    user, password = _find(page, tag="input_text"), _find(page, tag="input_password")
    if len(text) != 2:
        return None
    return _fill_then_submit(page, [(user, text[0]), (password, text[1])], submit="Login")


def choose_list(utterance, page, history):
    match = re.match(r"Select (.*) from the list and click Submit\.", utterance)
    box = _find(page, tag="select")
    if not match or box is None:
        return None
    if box.value != match.group(1):
        return f"select[{box.ref}, {match.group(1)}]"
    return _submit(page)


#: MiniWoB task name → its expert.
EXPERTS: dict[str, Expert] = {
    "click-button": click_button,
    "click-button-sequence": click_button_sequence,
    "click-checkboxes": click_checkboxes,
    "click-dialog": click_dialog,
    "click-dialog-2": click_dialog_2,
    "click-link": click_link,
    "click-option": click_option,
    "click-tab": click_tab,
    "click-test": click_test,
    "click-test-2": click_test_2,
    "click-widget": click_widget,
    "choose-list": choose_list,
    "enter-password": enter_password,
    "enter-text": enter_text,
    "enter-text-2": enter_text_2,
    "enter-text-dynamic": enter_text,
    "focus-text": focus_text,
    "focus-text-2": focus_text_2,
    "login-user": login_user,
}


def expert_action(task: str, utterance: str, page: Sequence[Element], history: Sequence[str]) -> str | None:
    """The expert's next action for ``task``, or ``None`` when it has none."""
    expert = EXPERTS.get(task)
    return None if expert is None else expert(utterance, page, history)
