"""MiniWoB++ tasks as text envs: ``web/miniwob-<task>-v0`` (e.g. ``web/miniwob-click-button-v0``).

Needs the ``web`` extra (``miniwob``, ``selenium``) plus the system Chromium and
chromedriver (see ``docs/miniwob.md``). Importing this package registers the
ids only: selenium and miniwob are imported, and Chromium started, at the
first ``reset``.
"""

from steprl.envs.registration import register
from steprl.envs.web.miniwob.actions import WebAction, parse_action
from steprl.envs.web.miniwob.experts import EXPERTS
from steprl.envs.web.miniwob.render import Element, parse_page, render_page

__all__ = ["TASKS", "MAX_EPISODE_STEPS", "WebAction", "parse_action", "Element", "parse_page", "render_page",
           "env_id"]

#: MiniWoB task → what the agent does there (one line for ``steprl envs``).
TASKS = {
    "click-button": "click the button with a given label",
    "click-button-sequence": "click button ONE, then button TWO",
    "click-checkboxes": "tick exactly the named checkboxes, then Submit",
    "click-dialog": "close a dialog with its x button",
    "click-dialog-2": "click the named button of a dialog (x, OK or Cancel)",
    "click-link": "click the link with a given text inside a paragraph",
    "click-option": "pick the named radio button, then Submit",
    "click-tab": "click the named tab",
    "click-test": "click the only button",
    "click-test-2": "click button ONE, not TWO",
    "click-widget": "click a widget of a given kind (button, checkbox, radio, text, textarea)",
    "choose-list": "choose the named option of a drop-down list, then Submit",
    "enter-password": "type a password into both fields, then Submit",
    "enter-text": "type the given text, then Submit",
    "enter-text-2": "type the given text in upper or lower case, then Submit",
    "enter-text-dynamic": "type the given random string, then Submit",
    "focus-text": "focus the text box",
    "focus-text-2": "focus the n-th of three text boxes",
    "login-user": "type a username and a password, then Login",
}
assert set(TASKS) == set(EXPERTS), "every registered MiniWoB task needs an expert"

#: Step limit of every MiniWoB env (the longest expert episode, click-checkboxes, takes ≤ 7).
MAX_EPISODE_STEPS = 10


def env_id(task: str) -> str:
    """``"click-button"`` → ``"web/miniwob-click-button-v0"``."""
    return f"web/miniwob-{task}-v0"


for _task, _what in TASKS.items():
    register(
        env_id(_task),
        "steprl.envs.web.miniwob.env:MiniWoBEnv",
        description=f"MiniWoB++ {_task}: {_what} (needs the web extra + Chromium + chromedriver).",
        max_episode_steps=MAX_EPISODE_STEPS,
        kwargs={"task": _task},
    )
