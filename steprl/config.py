"""The shell's config entry: ``load_run_config(path, overrides)`` -> :class:`RunConfig`.

    steprl train configs/quickstart.yaml trainer.lr=3e-4 credit.estimator=grpo

``RunConfig`` itself is the recipe's and lives beside it (``steprl.trainer.run_config``);
it is re-exported here. Unknown keys and bad values fail at load time, naming the field.
"""

from __future__ import annotations

from pathlib import Path

from steprl.loader import ConfigError, load_config
from steprl.trainer.run_config import EvalConfig, RunConfig, RunSection, SFTConfig, TinyModelConfig

__all__ = ["RunConfig", "RunSection", "TinyModelConfig", "SFTConfig", "EvalConfig", "load_run_config", "DEFAULT_CONFIG",
           "ConfigError"]

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"


def load_run_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Load a run config (``None`` → ``configs/quickstart.yaml``) with ``a.b=c`` overrides."""
    if path is None:
        path = DEFAULT_CONFIG
    return load_config(path, overrides, RunConfig)
