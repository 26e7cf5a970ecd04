"""``EnvConfig``: which env a run uses and how its tasks are split and stepped."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["EnvConfig", "RayConfig"]


class RayConfig(BaseModel):
    """Where Ray actors run (env actors here; rollout workers use the same cluster)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    address: str | None = None
    """Ray cluster to join ("auto", "ray://head:10001"); None starts a local Ray instance."""
    actor_cpus: float = Field(1.0, gt=0)
    """CPUs reserved by each env actor (Ray schedules actors onto nodes by it)."""
    timeout: float | None = Field(None, gt=0)
    """Seconds a step may take before its actor is treated as dead (re-created, episodes truncated); None = no limit."""


class EnvConfig(BaseModel):
    """The environment side of a run."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str = "textworld/coin_collector-v0"
    """Registered env id (``steprl envs`` lists them)."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra arguments of ``envs.make`` (difficulty settings, e.g. ``level: [2, 3]``; ``indexed_actions: true``
    numbers the admissible actions for small models, envs.wrappers.IndexedActions)."""
    train_tasks: int = Field(96, ge=1)
    """How many tasks of the ``train`` split training draws from."""
    max_turns: int = Field(20, ge=1)
    """Turns per episode before it is truncated."""
    num_workers: int = Field(0, ge=0)
    """Env worker processes or Ray actors (0 = step envs in the trainer's process); with run.rollout_workers > 0,
    per rollout worker."""
    executor: Literal["local", "process", "ray"] | None = None
    """Who steps the envs: `local` (this process), `process` (num_workers worker processes), `ray`
    (num_workers Ray actors, each holding a chunk of the envs); None = `process` if num_workers > 0, else `local`."""
    ray: RayConfig = Field(default_factory=RayConfig)
    """Ray settings, used with executor `ray` (and by rollout workers)."""

    @field_validator("id")
    @classmethod
    def _known_id(cls, value: str) -> str:
        from steprl import envs

        try:
            envs.spec(value)
        except KeyError as exc:  # pydantic reports ValueErrors with the field name
            raise ValueError(exc.args[0]) from None
        return value

    @model_validator(mode="after")
    def _executor_needs_workers(self) -> "EnvConfig":
        if self.executor == "local" and self.num_workers > 0:
            raise ValueError(f"executor='local' steps envs in this process; set num_workers=0 (got {self.num_workers}) "
                             "or executor='process' / 'ray'")
        if self.executor in ("process", "ray") and self.num_workers < 1:
            raise ValueError(f"executor={self.executor!r} needs num_workers >= 1 (got {self.num_workers})")
        return self

    @property
    def resolved_executor(self) -> str:
        """``executor`` with None resolved: ``process`` when ``num_workers > 0``, else ``local``."""
        return self.executor or ("process" if self.num_workers > 0 else "local")

    def make_vector_env(self, split: str, num_tasks: int, count: int):
        """A vector env of ``count`` envs on ``split``, run by this config's executor."""
        from steprl.envs.vector import make_vector_env

        return make_vector_env(self.make_fns(split, num_tasks, count), self.resolved_executor, self.num_workers,
                               ray_address=self.ray.address, ray_actor_options={"num_cpus": self.ray.actor_cpus},
                               ray_timeout=self.ray.timeout)

    def make_fns(self, split: str, num_tasks: int, count: int) -> list:
        """``count`` picklable constructors of this env on ``split``."""
        from steprl import envs

        return [envs.make_fn(self.id, split=split, num_tasks=num_tasks, max_episode_steps=self.max_turns,
                             **self.kwargs) for _ in range(count)]
