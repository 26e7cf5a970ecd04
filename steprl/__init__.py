"""steprl: train LLM agents with step-level RL in multi-turn environments.

This package is the application shell (the ``steprl`` console script and the
config loader); the library lives in the top-level packages ``envs``,
``agent``, ``credit``, ``trainer`` and ``evaluation``.
"""

__version__ = "0.1.0"
