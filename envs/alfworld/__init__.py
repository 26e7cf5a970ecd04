"""ALFWorld household tasks (Shridhar et al., 2021) as steprl text envs.

One id per ALFWorld task type plus a mixed one::

    envs.make("alfworld/pick_heat_then_place-v0", split="test")
    envs.make("alfworld/mixed-v0", data_dir="$ALFWORLD_DATA")   # ALFWorld's released tasks

Registration imports neither ``alfworld`` nor TextWorld's PDDL engine; they
load when an env is made. Without the extra, ``steprl envs`` says how to
install it. See ``docs/alfworld.md``.
"""

import importlib.util

from steprl.envs.registration import register

__all__ = ["ENV_IDS", "TIME_LIMIT"]

#: Steps per episode, as in the GiGPO paper's ALFWorld setting.
TIME_LIMIT = 50

#: id → (ALFWorld task types, description)
ENV_IDS = {
    "alfworld/pick_and_place-v0": (("pick_and_place_simple",), "ALFWorld pick & place: put an object in a receptacle."),
    "alfworld/look_at_obj_in_light-v0": (("look_at_obj_in_light",), "ALFWorld examine in light: hold an object under a lamp."),
    "alfworld/pick_clean_then_place-v0": (("pick_clean_then_place_in_recep",), "ALFWorld clean & place: clean an object in the sink, then place it."),
    "alfworld/pick_heat_then_place-v0": (("pick_heat_then_place_in_recep",), "ALFWorld heat & place: heat an object in the microwave, then place it."),
    "alfworld/pick_cool_then_place-v0": (("pick_cool_then_place_in_recep",), "ALFWorld cool & place: cool an object in the fridge, then place it."),
    "alfworld/pick_two_obj_and_place-v0": (("pick_two_obj_and_place",), "ALFWorld pick two & place: put two objects of a type in a receptacle."),
    "alfworld/mixed-v0": (None, "ALFWorld, all six task types (round robin over task seeds)."),
}

_MISSING = "" if importlib.util.find_spec("alfworld") is not None else " (needs: pip install 'steprl[alfworld]')"

for _env_id, (_types, _description) in ENV_IDS.items():
    register(
        _env_id,
        "steprl.envs.alfworld.env:AlfWorldEnv",
        description=_description + _MISSING,
        max_episode_steps=TIME_LIMIT,
        kwargs={} if _types is None else {"task_types": _types},
    )
