"""``EnvConfig``: which env a run uses and how its tasks are split and stepped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["EnvConfig"]


class EnvConfig(BaseModel):
    """The environment side of a run."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str = "textworld/coin_collector-v0"
    """Registered env id (``steprl envs`` lists them)."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra arguments of ``envs.make`` (difficulty settings, e.g. ``level: [2, 3]``)."""
    train_tasks: int = Field(96, ge=1)
    """How many tasks of the ``train`` split training draws from."""
    max_turns: int = Field(20, ge=1)
    """Turns per episode before it is truncated."""
    num_workers: int = Field(0, ge=0)
    """Env worker processes (0 = step envs in the trainer's process)."""

    @field_validator("id")
    @classmethod
    def _known_id(cls, value: str) -> str:
        import envs

        try:
            envs.spec(value)
        except KeyError as exc:  # pydantic reports ValueErrors with the field name
            raise ValueError(exc.args[0]) from None
        return value

    def make_fns(self, split: str, num_tasks: int, count: int) -> list:
        """``count`` picklable constructors of this env on ``split``."""
        import envs

        return [envs.make_fn(self.id, split=split, num_tasks=num_tasks, max_episode_steps=self.max_turns,
                             **self.kwargs) for _ in range(count)]
