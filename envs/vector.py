"""Vector env: step many text envs in one call, in-process or in worker processes.

Text observations do not stack into arrays, and multi-turn rollouts need
envs to drop out one by one as their episodes end, so this is not
Gymnasium's ``VectorEnv``: ``step`` takes one action per env, or ``None`` to
leave that env alone this turn, and nothing auto-resets. An entry may also be a
:class:`Reset` request: that env is reset in the same round trip in which the
others step (an env whose episode just ended starts its next one while the other
workers keep stepping, instead of a reset round on its own).

Besides lockstep ``step``, :meth:`~TextVectorEnv.send` / :meth:`~TextVectorEnv.recv`
step without waiting for the slowest worker: ``send`` hands actions to the envs'
workers and returns at once, ``recv`` returns the results of whichever workers are
done. A caller that acts on each env's own result (a scripted or expert agent, not
one batched model call) keeps every worker busy this way; in lockstep each round
waits for the worker whose envs happened to draw the slow steps and resets.

An env that raises ends its episode, not the run: its step returns
``truncated=True`` with ``info["env_error"]`` set and ``success=False``; the env
is rebuilt before its next reset. A worker process that dies is restarted the
same way, and all of its envs' episodes end as truncated.

:func:`make_vector_env` picks the executor: ``local`` (this process),
``process`` (worker processes, this module) or ``ray`` (Ray actors,
:mod:`envs.ray_vector`); all three share this API and these fault rules.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import wait as wait_for_connections
from typing import Any, NamedTuple

import gymnasium
import numpy as np

__all__ = ["TextVectorEnv", "Reset", "StepResult", "make_vector_env", "EXECUTORS"]

EnvFn = Callable[[], gymnasium.Env]
StepResult = tuple[str, float, bool, bool, dict]


class Reset(NamedTuple):
    """A reset request in place of an action in ``step``: that env is reset with ``seed`` and ``options``.

    Its entry in ``step``'s results is ``(obs, 0.0, False, False, info)`` of the new
    episode, with ``info["reset"] = True``. A reset that raises gives a crash result
    (``truncated=True``, ``info["env_error"]``), as a step that raises does.
    """

    seed: int | None = None
    options: dict | None = None


def _crash_result(exc: BaseException | str) -> StepResult:
    message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    info = {"env_error": message, "valid_action": False, "success": False, "anchor": "", "admissible_actions": None}
    return "", 0.0, False, True, info


class _EnvSlot:
    """One env plus the rule 'an exception ends the episode and rebuilds the env'."""

    def __init__(self, env_fn: EnvFn):
        self.env_fn = env_fn
        self.env: gymnasium.Env | None = None

    def reset(self, seed: int | None, options: dict | None) -> tuple[str, dict]:
        if self.env is None:
            self.env = self.env_fn()
        return self.env.reset(seed=seed, options=options)

    def step(self, action: str | Reset) -> StepResult:
        try:
            if isinstance(action, Reset):
                obs, info = self.reset(action.seed, action.options)
                return obs, 0.0, False, False, {**info, "reset": True}
            return self.env.step(action)
        except Exception as exc:  # the env crashed: end this episode, keep the run
            try:
                if self.env is not None:
                    self.env.close()
            except Exception:
                pass
            self.env = None
            result = _crash_result(exc)
            result[4]["env_traceback"] = traceback.format_exc(limit=5)
            return result

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        if self.env is None:
            self.env = self.env_fn()
        return getattr(self.env.unwrapped, name)(*args, **kwargs)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def _worker(conn, env_fns: list[EnvFn]) -> None:
    slots = [_EnvSlot(fn) for fn in env_fns]
    try:
        while True:
            cmd, payload = conn.recv()
            if cmd == "reset":
                out = []
                for i, seed, options in payload:
                    try:
                        out.append((True, slots[i].reset(seed, options)))
                    except Exception as exc:
                        out.append((False, f"{type(exc).__name__}: {exc}"))
                conn.send(out)
            elif cmd == "step":
                conn.send([slots[i].step(action) for i, action in payload])
            elif cmd == "call":
                name, args, kwargs = payload
                conn.send([slot.call(name, args, kwargs) for slot in slots])
            elif cmd == "close":
                for slot in slots:
                    slot.close()
                conn.send(None)
                return
    except (EOFError, KeyboardInterrupt):
        return


class _Worker:
    def __init__(self, ctx, env_fns: list[EnvFn]):
        self.ctx, self.env_fns = ctx, env_fns
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.process = self.ctx.Process(target=_worker, args=(child, self.env_fns), daemon=True)
        self.process.start()
        child.close()

    def request(self, cmd: str, payload: Any) -> Any:
        """Send a command; ``None`` if the worker died (it is restarted)."""
        try:
            self.conn.send((cmd, payload))
            return self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            self.restart()
            return None

    def restart(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self._start()

    def close(self) -> None:
        try:
            self.conn.send(("close", None))
            while self.conn.poll(10):  # replies to requests still in flight come first
                if self.conn.recv() is None:
                    break
        except Exception:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()


class _VectorAPI:
    """``reset``/``step`` of every vector env, on top of the executor's ``_dispatch``.

    Subclasses set ``num_envs`` and implement ``_dispatch(cmd, {index: args})``
    returning ``{index: result}`` (``(ok, (obs, info) | error)`` for ``reset``, a
    step 5-tuple for ``step``), plus ``call`` and ``close``.
    """

    num_envs: int

    def __init__(self) -> None:
        self._in_flight: set[int] = set()  # envs sent an action recv() has not returned
        self._queued: dict[int, str | Reset] = {}  # sent actions the default _recv runs

    def _dispatch(self, cmd: str, items: dict[int, tuple]) -> dict[int, Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- asynchronous stepping --------------------------------------------------
    @property
    def in_flight(self) -> frozenset[int]:
        """Indices of the envs sent an action that :meth:`recv` has not returned yet."""
        return frozenset(self._in_flight)

    def _check_idle(self, what: str) -> None:
        if self._in_flight:
            raise RuntimeError(f"{what}() while envs {sorted(self._in_flight)} are in flight: recv() their results first")

    def send(self, actions: Mapping[int, str | Reset]) -> None:
        """Hand an action (or a :class:`Reset`) to each env in ``actions`` ({index: action}) and return at once.

        The envs run in their workers while the caller goes on; :meth:`recv`
        collects the results. An env may have one action in flight at a time;
        ``step``, ``reset`` and ``call`` refuse to run while any env is in flight.
        Executors without their own asynchronous path (in-process, Ray) run the
        sent actions when :meth:`recv` is called, all in one round.
        """
        actions = dict(actions)
        for i, action in actions.items():
            if not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_envs:
                raise ValueError(f"send got env index {i!r}; indices run from 0 to {self.num_envs - 1}")
            if action is None:
                raise ValueError(f"send got None for env {i}: leave an env out of the mapping to skip it")
        busy = sorted(self._in_flight.intersection(actions))
        if busy:
            raise RuntimeError(f"envs {busy} already have an action in flight: recv() it first")
        if actions:
            self._send(actions)
            self._in_flight.update(actions)

    def recv(self) -> dict[int, StepResult]:
        """Wait until some envs in flight are done; returns ``{index: (obs, reward, terminated, truncated, info)}``.

        Returns every result that is ready, at least one. Results follow ``step``'s
        rules: a :class:`Reset` gives its new episode's first observation and info
        (``info["reset"] = True``), a crash gives ``truncated=True`` with
        ``info["env_error"]``. Raises ``RuntimeError`` when nothing is in flight.
        """
        if not self._in_flight:
            raise RuntimeError("recv() with no env in flight: send() actions first")
        results = self._recv()
        self._in_flight.difference_update(results)
        return results

    def _send(self, actions: dict[int, str | Reset]) -> None:
        """Executor hook: start ``actions``; by default they are queued and run by ``_recv``."""
        self._queued.update(actions)

    def _recv(self) -> dict[int, StepResult]:
        """Executor hook: results of some sent actions; by default every queued action, in one round."""
        queued, self._queued = self._queued, {}
        return self._dispatch("step", {i: (a,) for i, a in queued.items()})

    def reset(
        self,
        seeds: Sequence[int | None] | None = None,
        options: Sequence[dict | None] | None = None,
        indices: Sequence[int] | None = None,
    ) -> tuple[list[str], list[dict]]:
        """Reset the envs at ``indices`` (all by default); returns their (obs, info) lists.

        Raises ``RuntimeError`` naming the env if one fails to reset.
        """
        self._check_idle("reset")
        indices = list(range(self.num_envs)) if indices is None else list(indices)
        seeds = [None] * len(indices) if seeds is None else list(seeds)
        options = [None] * len(indices) if options is None else list(options)
        if not len(seeds) == len(options) == len(indices):
            raise ValueError(f"reset got {len(indices)} indices, {len(seeds)} seeds and {len(options)} options")
        results = self._dispatch("reset", {i: (s, o) for i, s, o in zip(indices, seeds, options)})
        obs, infos = [], []
        for i in indices:
            ok, value = results[i]
            if not ok:
                raise RuntimeError(f"env {i} failed to reset: {value}")
            obs.append(value[0])
            infos.append(value[1])
        return obs, infos

    def reset_each(
        self,
        seeds: Sequence[int | None] | None = None,
        options: Sequence[dict | None] | None = None,
        indices: Sequence[int] | None = None,
        retries: int = 1,
    ) -> tuple[list[str | None], list[dict]]:
        """Like :meth:`reset`, but an env that fails to reset does not raise.

        A failing env is rebuilt and its reset retried up to ``retries`` times; if it
        still fails, its observation is ``None`` and its info is a crash info
        (``info["env_error"]`` holds the message). Rollouts start their episodes this
        way, so a crashing reset ends one episode, not the run.
        """
        if retries < 0:
            raise ValueError(f"retries={retries} must be >= 0")
        self._check_idle("reset_each")
        indices = list(range(self.num_envs)) if indices is None else list(indices)
        seeds = [None] * len(indices) if seeds is None else list(seeds)
        options = [None] * len(indices) if options is None else list(options)
        if not len(seeds) == len(options) == len(indices):
            raise ValueError(f"reset_each got {len(indices)} indices, {len(seeds)} seeds and {len(options)} options")
        obs: dict[int, str | None] = {}
        infos: dict[int, dict] = {}
        todo = {i: Reset(s, o) for i, s, o in zip(indices, seeds, options)}
        for _ in range(retries + 1):  # a Reset in step's action slot returns a crash result instead of raising
            step_obs, _, _, _, step_infos = self.step([todo.get(i) for i in range(self.num_envs)])
            for i in todo:
                obs[i] = None if step_infos[i].get("env_error") else step_obs[i]
                infos[i] = {k: v for k, v in step_infos[i].items() if k != "reset"}
            todo = {i: request for i, request in todo.items() if obs[i] is None}
            if not todo:
                break
        return [obs[i] for i in indices], [infos[i] for i in indices]

    def step(self, actions: Sequence[str | Reset | None]):
        """Step every env whose action is not ``None``; reset those whose entry is a :class:`Reset`.

        Returns ``(obs, rewards, terminated, truncated, infos)``; entries of
        skipped envs are ``None`` / 0 / False / False / ``None``; entries of reset
        envs are their new episode's first observation and info (reward 0).
        """
        if len(actions) != self.num_envs:
            raise ValueError(f"step got {len(actions)} actions for {self.num_envs} envs")
        self._check_idle("step")
        results = self._dispatch("step", {i: (a,) for i, a in enumerate(actions) if a is not None})
        obs: list[str | None] = [None] * self.num_envs
        infos: list[dict | None] = [None] * self.num_envs
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for i, (o, r, term, trunc, info) in results.items():
            obs[i], rewards[i], terminated[i], truncated[i], infos[i] = o, r, term, trunc, info
        return obs, rewards, terminated, truncated, infos

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TextVectorEnv(_VectorAPI):
    """Many text envs behind one call.

    Args:
        env_fns: one zero-argument constructor per env (picklable when
            ``num_workers > 0``, e.g. ``envs.make_fn("textworld/simple-v0", split="test")``).
        num_workers: 0 runs every env in this process; N > 0 spreads them over
            N worker processes (contiguous chunks).
        context: multiprocessing start method for workers.

    Example:
        >>> venv = TextVectorEnv([envs.make_fn("textworld/simple-v0")] * 4, num_workers=2)
        >>> obs, infos = venv.reset(seeds=[0, 1, 2, 3], options=[{"task": i} for i in range(4)])
        >>> obs, rewards, terminated, truncated, infos = venv.step(["look", None, "go east", "inventory"])
        >>> venv.send({0: "look", 3: "go west"})  # no lockstep: act on each env's result as it comes
        >>> ready = venv.recv()  # {index: (obs, reward, terminated, truncated, info)} of the workers done so far
    """

    def __init__(self, env_fns: Sequence[EnvFn], num_workers: int = 0, context: str = "spawn"):
        super().__init__()
        if not env_fns:
            raise ValueError("TextVectorEnv needs at least one env_fn")
        if num_workers < 0:
            raise ValueError(f"num_workers={num_workers} must be >= 0")
        self.num_envs = len(env_fns)
        self.num_workers = min(num_workers, self.num_envs)
        if self.num_workers == 0:
            self._slots = [_EnvSlot(fn) for fn in env_fns]
            self._workers: list[_Worker] = []
        else:
            chunks = np.array_split(np.arange(self.num_envs), self.num_workers)
            ctx = mp.get_context(context)
            self._workers = [_Worker(ctx, [env_fns[i] for i in chunk]) for chunk in chunks]
            self._where = [(w, j) for w, chunk in enumerate(chunks) for j in range(len(chunk))]
            # per worker, the env indices of each step request sent and not yet received, oldest first
            self._sent: list[deque[list[int]]] = [deque() for _ in self._workers]

    # -- routing --------------------------------------------------------------
    def _dispatch(self, cmd: str, items: dict[int, tuple]) -> dict[int, Any]:
        """Run ``cmd`` on the envs in ``items`` (index → args); results by index."""
        if not self._workers:
            method = _EnvSlot.reset if cmd == "reset" else _EnvSlot.step
            out = {}
            for i, args in items.items():
                if cmd == "reset":
                    try:
                        out[i] = (True, method(self._slots[i], *args))
                    except Exception as exc:
                        out[i] = (False, f"{type(exc).__name__}: {exc}")
                else:
                    out[i] = method(self._slots[i], *args)
            return out
        out = {}
        for w, indices in self._post(cmd, items).items():  # every worker already works; collect in worker order
            worker = self._workers[w]
            try:
                results = worker.conn.recv()
            except (EOFError, ConnectionResetError, OSError):
                worker.restart()
                dead = f"env worker process {w} died"
                results = [(False, dead) if cmd == "reset" else _crash_result(dead) for _ in indices]
            out.update(zip(indices, results))
        return out

    def _post(self, cmd: str, items: dict[int, tuple]) -> dict[int, list[int]]:
        """Send each worker one ``cmd`` request with its share of ``items`` (index → args); the indices per worker."""
        per_worker: dict[int, list[tuple[int, tuple]]] = {}
        for i, args in items.items():
            w, j = self._where[i]
            per_worker.setdefault(w, []).append((i, (j, *args)))
        for w, batch in per_worker.items():
            try:
                self._workers[w].conn.send((cmd, [args for _, args in batch]))
            except (BrokenPipeError, OSError):
                pass  # the worker died: receiving from it finds it closed and ends these envs' episodes
        return {w: [i for i, _ in batch] for w, batch in per_worker.items()}

    def _send(self, actions: dict[int, str | Reset]) -> None:
        """One step request per worker holding some of ``actions``; nothing waits for the replies."""
        if not self._workers:
            super()._send(actions)
            return
        for w, indices in self._post("step", {i: (action,) for i, action in actions.items()}).items():
            self._sent[w].append(indices)

    def _recv(self) -> dict[int, StepResult]:
        """The replies of every worker that has one ready (waits for the first)."""
        if not self._workers:
            return super()._recv()
        waiting = {self._workers[w].conn: w for w, sent in enumerate(self._sent) if sent}
        out: dict[int, StepResult] = {}
        for conn in wait_for_connections(list(waiting)):
            w = waiting[conn]
            try:
                results = conn.recv()
                indices = self._sent[w].popleft()
            except (EOFError, ConnectionResetError, OSError):  # every request in flight on it is lost
                self._workers[w].restart()
                indices = [i for batch in self._sent[w] for i in batch]
                self._sent[w].clear()
                results = [_crash_result(f"env worker process {w} died") for _ in indices]
            out.update(zip(indices, results))
        return out

    # -- API (reset and step: _VectorAPI) -------------------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call a method of every unwrapped env; results in env order."""
        self._check_idle("call")
        if not self._workers:
            return [slot.call(name, args, kwargs) for slot in self._slots]
        out: list[Any] = []
        for worker in self._workers:
            out.extend(worker.request("call", (name, args, kwargs)) or [None] * len(worker.env_fns))
        return out

    def close(self) -> None:
        """Close every env and stop the workers (results still in flight are dropped)."""
        for slot in getattr(self, "_slots", []):
            slot.close()
        for worker in self._workers:
            worker.close()
        self._in_flight.clear()
        self._queued.clear()
        for sent in getattr(self, "_sent", []):
            sent.clear()



EXECUTORS = ("local", "process", "ray")


def make_vector_env(
    env_fns: Sequence[EnvFn],
    executor: str | None = None,
    num_workers: int = 0,
    *,
    ray_address: str | None = None,
    ray_actor_options: dict | None = None,
    ray_timeout: float | None = None,
):
    """A vector env over ``env_fns`` run by the chosen executor; all share :class:`TextVectorEnv`'s API.

    Args:
        env_fns: one picklable zero-argument constructor per env.
        executor: ``"local"`` (every env in this process), ``"process"``
            (``num_workers`` worker processes on this machine), ``"ray"``
            (``num_workers`` Ray actors, each holding a contiguous chunk of
            envs, see :class:`envs.ray_vector.RayVectorEnv`), or ``None``:
            ``"process"`` when ``num_workers > 0`` else ``"local"``.
        num_workers: worker processes or Ray actors (ignored by ``"local"``).
        ray_address: Ray cluster to join (``"auto"``, ``"ray://host:10001"``);
            ``None`` starts a local Ray instance unless one is running.
        ray_actor_options: options of each env actor (``num_cpus``, ``resources``, …).
        ray_timeout: seconds a step may take before its actor is treated as dead.

    Example:
        >>> venv = make_vector_env([envs.make_fn("textworld/simple-v0")] * 8, executor="ray", num_workers=2)
    """
    if executor is None:
        executor = "process" if num_workers > 0 else "local"
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is not one of {', '.join(map(repr, EXECUTORS))}")
    if executor == "local":
        return TextVectorEnv(env_fns, num_workers=0)
    if num_workers < 1:
        raise ValueError(f"executor={executor!r} needs num_workers >= 1, got {num_workers}")
    if executor == "process":
        return TextVectorEnv(env_fns, num_workers=num_workers)
    from steprl.envs.ray_vector import RayVectorEnv  # lazy: Ray is an optional extra

    return RayVectorEnv(env_fns, num_actors=num_workers, address=ray_address, actor_options=ray_actor_options,
                        timeout=ray_timeout)
