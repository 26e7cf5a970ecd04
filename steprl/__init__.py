"""steprl: train LLM agents with step-level RL in multi-turn environments.

The library lives in five subpackages, one per stage (their folders sit at the
top of the repository and install under this name):

- ``steprl.envs``: Gymnasium text environments, registry, vector envs;
- ``steprl.agent``: prompts, parsing, generation engines, group rollouts;
- ``steprl.credit``: step-level advantage estimators over flat step rows;
- ``steprl.trainer``: the RL recipe, policy loss, SFT, checkpoints;
- ``steprl.evaluation``: held-out success, reports, plots, the viewer.

``steprl.cli`` and ``steprl.commands`` are the ``steprl`` console script;
``steprl.config`` composes the stages' configs into one run config.

>>> from steprl import envs
>>> env = envs.make("textworld/coin_collector-v0", split="test")
"""

__version__ = "0.1.0"
