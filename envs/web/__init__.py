"""Web environments: ``web/webshop-text-v0`` and ``web/webshop-browser-v0`` (a WebShop-like shop),
and ``web/miniwob-<task>-v0`` (MiniWoB++ through the system Chromium).

Each sub-family registers its ids on import without starting a server or a browser.
"""

import importlib as _importlib
import importlib.util as _importlib_util

for _module in ("steprl.envs.web.webshop", "steprl.envs.web.miniwob"):
    if _importlib_util.find_spec(_module) is not None:
        _importlib.import_module(_module)
