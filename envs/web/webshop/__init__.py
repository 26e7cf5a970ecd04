"""A WebShop-like shop (after Yao et al., 2022): ``web/webshop-text-v0`` and ``web/webshop-browser-v0``.

Both ids share one catalog (1,200 generated products, 16 types), one task set
(10,000 train / 1,000 valid / 1,000 test instructions), one page logic, one
reward and one expert; the text mode renders pages in process, the browser
mode serves them from a FastAPI app on 127.0.0.1 and drives the system
Chromium through Playwright. Importing this package starts nothing and imports
neither FastAPI nor Playwright. See ``docs/web.md``.
"""

from steprl.envs.registration import register

__all__ = ["MAX_EPISODE_STEPS"]

#: Time limit of both ids (WebShop episodes take ~5–8 expert steps).
MAX_EPISODE_STEPS = 15

register(
    "web/webshop-text-v0",
    "steprl.envs.web.webshop.text_env:WebShopTextEnv",
    description="WebShop-like shopping: search, pick a product, choose options, buy (in-process text pages).",
    max_episode_steps=MAX_EPISODE_STEPS,
)
register(
    "web/webshop-browser-v0",
    "steprl.envs.web.webshop.browser_env:WebShopBrowserEnv",
    description="WebShop-like shopping in the system Chromium via Playwright, against a local FastAPI shop.",
    max_episode_steps=MAX_EPISODE_STEPS,
)
