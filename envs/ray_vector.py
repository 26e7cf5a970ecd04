"""RayVectorEnv: :class:`~envs.vector.TextVectorEnv`'s API with the envs held by Ray actors.

    venv = RayVectorEnv([envs.make_fn("textworld/coin_collector-v0")] * 64, num_actors=8)
    obs, infos = venv.reset(seeds=..., options=..., indices=...)
    obs, rewards, terminated, truncated, infos = venv.step(actions)   # None = leave that env alone

Each actor holds a contiguous chunk of the envs (as a worker process of
``TextVectorEnv`` does) and runs the same per-env rule: an env that raises
ends its episode as truncated with ``info["env_error"]`` and is rebuilt before
its next reset. An actor that dies (its process is killed, its node goes
away) ends the current episodes of all of its envs the same way
(``info["env_error"] = "env actor N died: ..."``); the actor is re-created at
once, so the next ``reset`` of those envs works and the run goes on.

Ray is imported only here, and this module only when ``executor: ray`` is
asked for, so steprl works without Ray installed.

Left out on purpose: asynchronous stepping (the agent steps all envs in
lockstep anyway) and Ray's own actor restarts (``max_restarts``): re-creating
the actor here keeps the "which episodes ended" bookkeeping in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from steprl.envs.vector import EnvFn, _crash_result, _EnvSlot, _VectorAPI

__all__ = ["RayVectorEnv", "init_ray", "close_actors"]


def close_actors(ray, actors, timeout: float) -> None:
    """Ask each actor to ``close()`` (up to ``timeout`` s), then kill it; dead actors are skipped quietly."""
    for actor in actors:
        try:
            ray.get(actor.close.remote(), timeout=timeout)
        except Exception:  # noqa: BLE001 - already dead or stuck: the kill below ends it
            pass
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001
            pass


def init_ray(address: str | None = None, **kwargs: Any):
    """Connect to Ray once: join ``address`` (``"auto"``, ``"ray://host:10001"``) or start a local instance.

    A no-op when Ray is already initialized (a test fixture or the user did it).
    Returns the ``ray`` module.
    """
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("executor 'ray' needs Ray: install steprl's `ray` extra (pip install -e '.[ray]')") from exc
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, **kwargs)
    return ray


class EnvActor:
    """The body of one env actor: a few env slots, commands by env position within the actor."""

    def __init__(self, env_fns: list[EnvFn]):
        self.slots = [_EnvSlot(fn) for fn in env_fns]

    def reset(self, payload: list[tuple[int, int | None, dict | None]]) -> list[tuple[bool, Any]]:
        out = []
        for j, seed, options in payload:
            try:
                out.append((True, self.slots[j].reset(seed, options)))
            except Exception as exc:
                out.append((False, f"{type(exc).__name__}: {exc}"))
        return out

    def step(self, payload: list[tuple[int, str]]) -> list:
        return [self.slots[j].step(action) for j, action in payload]

    def call(self, name: str, args: tuple, kwargs: dict) -> list:
        return [slot.call(name, args, kwargs) for slot in self.slots]

    def pid(self) -> int:
        import os

        return os.getpid()

    def close(self) -> None:
        for slot in self.slots:
            slot.close()


class RayVectorEnv(_VectorAPI):
    """Many text envs held by Ray actors, behind :class:`~envs.vector.TextVectorEnv`'s API.

    Args:
        env_fns: one picklable zero-argument constructor per env (``envs.make_fn(...)``).
        num_actors: actors to spread the envs over (contiguous chunks, as ``TextVectorEnv``'s workers).
        address: Ray cluster to join; ``None`` starts a local instance unless Ray is already initialized.
        actor_options: Ray options of each actor; default ``{"num_cpus": 1}``
            (one core each: env steps are single-threaded Python).
        timeout: seconds a step or reset may take before its actor is treated as dead
            (killed, re-created, its episodes truncated); ``None`` waits forever.

    Attributes:
        actor_restarts: actors re-created so far (dead or timed out).
    """

    def __init__(
        self,
        env_fns: Sequence[EnvFn],
        num_actors: int = 1,
        *,
        address: str | None = None,
        actor_options: dict | None = None,
        timeout: float | None = None,
    ):
        super().__init__()
        if not env_fns:
            raise ValueError("RayVectorEnv needs at least one env_fn")
        if num_actors < 1:
            raise ValueError(f"num_actors={num_actors} must be >= 1")
        self._ray = init_ray(address)
        self.num_envs = len(env_fns)
        self.num_workers = min(num_actors, self.num_envs)
        self.timeout = timeout
        self.actor_restarts = 0
        self._options = {"num_cpus": 1, **(actor_options or {})}
        self._remote_cls = self._ray.remote(EnvActor)
        chunks = np.array_split(np.arange(self.num_envs), self.num_workers)
        self._chunks = [[env_fns[i] for i in chunk] for chunk in chunks]
        self._where = [(w, j) for w, chunk in enumerate(chunks) for j in range(len(chunk))]
        self.actors = [self._start(w) for w in range(self.num_workers)]

    def _start(self, w: int):
        return self._remote_cls.options(**self._options).remote(self._chunks[w])

    def restart(self, w: int) -> None:
        """Kill actor ``w`` (if it still runs) and start a fresh one with the same env constructors."""
        try:
            self._ray.kill(self.actors[w], no_restart=True)
        except Exception:
            pass
        self.actors[w] = self._start(w)
        self.actor_restarts += 1

    # -- routing --------------------------------------------------------------
    def _dispatch(self, cmd: str, items: dict[int, tuple]) -> dict[int, Any]:
        """Run ``cmd`` on the envs in ``items`` (index → args) across the actors; results by index."""
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        per_actor: dict[int, list[tuple[int, tuple]]] = {}
        for i, args in items.items():
            w, j = self._where[i]
            per_actor.setdefault(w, []).append((i, (j, *args)))
        refs = {w: getattr(self.actors[w], cmd).remote([args for _, args in batch]) for w, batch in per_actor.items()}
        out = {}
        for w, batch in per_actor.items():  # every actor already works; collect in actor order
            try:
                results = self._ray.get(refs[w], timeout=self.timeout)
            except (RayActorError, RayTaskError, GetTimeoutError) as exc:
                self.restart(w)
                dead = f"env actor {w} died: {type(exc).__name__}"
                results = [(False, dead) if cmd == "reset" else _crash_result(dead) for _ in batch]
            for (i, _), result in zip(batch, results):
                out[i] = result
        return out

    # -- API: reset and step come from _VectorAPI --------------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call a method of every unwrapped env; results in env order (``None`` for a dead actor's envs)."""
        self._check_idle("call")
        from ray.exceptions import GetTimeoutError, RayActorError

        refs = [actor.call.remote(name, args, kwargs) for actor in self.actors]
        out: list[Any] = []
        for w, ref in enumerate(refs):
            try:
                out.extend(self._ray.get(ref, timeout=self.timeout))  # an error in the method itself propagates
            except (RayActorError, GetTimeoutError):
                self.restart(w)
                out.extend([None] * len(self._chunks[w]))
        return out

    def actor_pids(self) -> list[int]:
        """Process id of each actor (for fault-injection tests and debugging)."""
        return self._ray.get([actor.pid.remote() for actor in self.actors], timeout=self.timeout)

    def close(self) -> None:
        close_actors(self._ray, getattr(self, "actors", []), timeout=10)
        self.actors = []

