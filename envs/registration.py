"""Environment registry: ``envs.register`` / ``envs.make`` / ``envs.registry``.

Ids are ``family/Name-vN``. There is one registry, Gymnasium's own: ``register``
puts the env into ``gymnasium.registry`` (its entry point carries steprl's
:class:`EnvSpec`: description, default kwargs, time limit, source), so
``gymnasium.make("textworld/cooking-v0")`` and ``envs.make`` build the same env,
and ``envs.registry()`` is a view of Gymnasium's. Both set
``env.spec.max_episode_steps`` to the time limit applied.
Third-party packages add envs through the entry-point group ``steprl.envs``:
each entry point names a callable (or module) that calls :func:`register` when
loaded. Plugins load once, lazily, the first time the registry is read.
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

import gymnasium

__all__ = ["EnvSpec", "EnvFactory", "register", "make", "make_fn", "registry", "spec", "load_plugins", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "steprl.envs"
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+-v\d+$")


@dataclass(frozen=True)
class EnvSpec:
    """What :func:`make` needs to build one env."""

    id: str
    entry_point: str | Callable[..., gymnasium.Env]
    description: str = ""
    max_episode_steps: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "steprl"

    def load(self) -> Callable[..., gymnasium.Env]:
        if callable(self.entry_point):
            return self.entry_point
        module, _, attr = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), attr)


_plugins_loaded = False


class _Builder:
    """The entry point steprl registers in Gymnasium: builds the env through :func:`make`, carries its EnvSpec."""

    def __init__(self, env_spec: EnvSpec):
        self.spec = env_spec

    def __call__(self, **kwargs: Any) -> gymnasium.Env:
        return make(self.spec.id, **kwargs)

    def __repr__(self) -> str:
        return f"steprl.envs.make({self.spec.id!r})"


def _steprl_specs() -> dict[str, EnvSpec]:
    """steprl's envs in Gymnasium's registry, by id."""
    return {env_id: gym_spec.entry_point.spec for env_id, gym_spec in gymnasium.registry.items()
            if isinstance(gym_spec.entry_point, _Builder)}


def register(
    id: str,
    entry_point: str | Callable[..., gymnasium.Env],
    *,
    description: str = "",
    max_episode_steps: int | None = None,
    kwargs: dict[str, Any] | None = None,
    source: str = "steprl",
) -> EnvSpec:
    """Register an env under ``id`` (``family/Name-vN``), here and in Gymnasium.

    Args:
        id: versioned id, e.g. ``"textworld/cooking-v0"``.
        entry_point: the env class or ``"module:attr"``.
        description: one line shown by ``steprl envs``.
        max_episode_steps: wrap the env in :class:`envs.wrappers.TimeLimit`.
        kwargs: default constructor arguments; ``make(**kw)`` overrides them.
    """
    if not _ID_RE.match(id):
        raise ValueError(f"env id {id!r} must look like 'family/Name-v0'")
    env_spec = EnvSpec(id, entry_point, description, max_episode_steps, dict(kwargs or {}), source)
    if id in gymnasium.registry:
        del gymnasium.registry[id]
    # The time limit is steprl's TimeLimit (it sets info["success"] on truncation), applied by make();
    # Gymnasium's spec leaves max_episode_steps unset so gymnasium.make does not wrap a second one.
    gymnasium.register(id=id, entry_point=_Builder(env_spec), disable_env_checker=True, order_enforce=False)
    return env_spec


def load_plugins() -> None:
    """Import every ``steprl.envs`` entry point once (third-party envs)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            before = set(_steprl_specs())
            obj = ep.load()
            if callable(obj):
                obj()
            for new_id, s in _steprl_specs().items():
                if new_id not in before:
                    gymnasium.registry[new_id].entry_point.spec = EnvSpec(
                        s.id, s.entry_point, s.description, s.max_episode_steps, s.kwargs, source=ep.value)
        except Exception as exc:  # a broken plugin must not break steprl
            warnings.warn(f"steprl: could not load env plugin {ep.name!r} ({ep.value}): {exc}", stacklevel=2)


def registry() -> dict[str, EnvSpec]:
    """All registered envs by id, plugins included."""
    load_plugins()
    return dict(sorted(_steprl_specs().items()))


def spec(env_id: str) -> EnvSpec:
    """The :class:`EnvSpec` of ``env_id``; a clear error naming near matches otherwise."""
    specs = registry()
    if env_id not in specs:
        import difflib

        near = difflib.get_close_matches(env_id, specs, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else " Run `steprl envs` to list them."
        raise KeyError(f"unknown env id {env_id!r}.{hint}")
    return specs[env_id]


def make(env_id: str, *, max_episode_steps: int | None = None, indexed_actions: bool = False,
         **kwargs: Any) -> gymnasium.Env:
    """Build a registered env: ``envs.make("textworld/cooking-v0", split="test")``.

    ``kwargs`` override the registered defaults; ``max_episode_steps`` overrides
    the registered time limit (0 disables it); ``indexed_actions`` numbers the
    admissible actions (:class:`envs.wrappers.IndexedActions`).
    """
    from steprl.envs.wrappers import IndexedActions, TimeLimit

    env_spec = spec(env_id)
    env = env_spec.load()(**{**env_spec.kwargs, **kwargs})
    spec_kwargs = kwargs if max_episode_steps is None else {**kwargs, "max_episode_steps": max_episode_steps}
    env.unwrapped.spec = gymnasium.envs.registration.EnvSpec(  # gymnasium.make(env.spec) re-makes this env
        id=env_id, entry_point=gymnasium.registry[env_id].entry_point, kwargs=spec_kwargs, disable_env_checker=True,
        order_enforce=False)
    limit = env_spec.max_episode_steps if max_episode_steps is None else max_episode_steps
    if limit:
        env = TimeLimit(env, limit)
    if indexed_actions:
        env = IndexedActions(env)
    return env


@dataclass(frozen=True)
class EnvFactory:
    """A picklable zero-argument env constructor, for :class:`envs.TextVectorEnv` workers.

    It imports the module that defines the env before calling :func:`make`, so
    envs registered at import time (plugins, test modules, user scripts that
    register from a module) exist in a fresh worker process too.
    """

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    module: str | None = None

    def __call__(self) -> gymnasium.Env:
        if self.module:
            importlib.import_module(self.module)
        return make(self.env_id, **self.kwargs)


def make_fn(env_id: str, **kwargs: Any) -> EnvFactory:
    """``make_fn("textworld/simple-v0", split="test")`` → a picklable constructor of that env."""
    entry = spec(env_id).entry_point
    module = entry.split(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", None)
    return EnvFactory(env_id, dict(kwargs), None if module == "__main__" else module)
