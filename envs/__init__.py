"""steprl environments: Gymnasium's API with text in and text out.

>>> import envs
>>> env = envs.make("textworld/coin_collector-v0", split="test")
>>> obs, info = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step(info["admissible_actions"][0])

See ``ARCHITECTURE.md`` (Environment contract) and ``docs/custom-environments.md``.
"""

from steprl.envs.checker import EnvContractError, check_env
from steprl.envs.core import INVALID_ACTION_OBS, RESET_INFO_KEYS, SPLITS, STEP_INFO_KEYS, InvalidAction, TextEnv, TextSpace
from steprl.envs.registration import ENTRY_POINT_GROUP, EnvFactory, EnvSpec, load_plugins, make, make_fn, register, registry, spec
from steprl.envs.vector import Reset, TextVectorEnv, make_vector_env
from steprl.envs.wrappers import ActionHistory, TimeLimit

__all__ = [
    "TextEnv", "TextSpace", "SPLITS", "RESET_INFO_KEYS", "STEP_INFO_KEYS", "INVALID_ACTION_OBS", "InvalidAction",
    "make", "make_fn", "EnvFactory", "register", "registry", "spec", "EnvSpec", "load_plugins", "ENTRY_POINT_GROUP",
    "check_env", "EnvContractError", "TextVectorEnv", "Reset", "make_vector_env", "TimeLimit", "ActionHistory",
]

# Built-in families register themselves on import (cheap: games, browsers and
# optional dependencies load lazily, when an env is made).
import importlib as _importlib  # noqa: E402
import importlib.util as _importlib_util  # noqa: E402

import steprl.envs.textworld  # noqa: E402,F401

for _family in ("steprl.envs.web", "steprl.envs.tools", "steprl.envs.alfworld"):
    if _importlib_util.find_spec(_family) is not None:
        _importlib.import_module(_family)
