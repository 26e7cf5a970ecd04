"""Rollout workers (engine replicas as Ray actors): merged batches, weight sync checked by log-probs, a dead replica."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from steprl import envs
from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0)

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def trainer_logprobs(policy, rows) -> list[list[float]]:
    import torch

    from steprl.trainer.batching import make_micro_batches

    out: list = [None] * len(rows)
    with torch.no_grad():
        for micro in make_micro_batches(rows, 4096, pad_id=policy.pad_id):
            logprobs, _ = policy.token_logprobs(micro, with_entropy=False)
            for b, i in enumerate(micro.row_index.tolist()):
                out[i] = logprobs[b, : len(rows[i].response_ids)].tolist()
    return out


def max_gap(replica: list[list[float]], trainer: list[list[float]]) -> float:
    return max(float(np.abs(np.subtract(a, b)).max()) for a, b in zip(replica, trainer))


def test_replicas_roll_out_shares_sync_weights_and_survive_a_kill(ray_local, corridor_model):
    import torch

    from steprl.agent.config import AgentConfig
    from steprl.agent.workers import RolloutWorkers
    from steprl.trainer.config import TrainerConfig
    from steprl.trainer.policy import PolicyTrainer, load_policy

    torch.set_num_threads(1)
    agent = AgentConfig(model=str(corridor_model), engine="hf", dtype="float32", device="cpu", history_k=0,
                        max_new_tokens=4, max_prompt_tokens=256)
    fns = [envs.make_fn("toy/Corridor-v0")] * 4
    workers = RolloutWorkers(agent, fns, num_workers=2, actor_options={"num_cpus": 1}, timeout=300)
    try:
        tasks = [0, 1, 2, 3, 1]
        batch = workers.rollout(tasks, k=2, max_turns=3, seed=0)
        episodes = batch.episodes()
        # 5 groups × K=2, split 3 + 2 over the replicas, renumbered as one rollout
        assert [ep[0].traj_id for ep in episodes] == list(range(10))
        assert [ep[0].group_id for ep in episodes] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        assert workers.last_faults == {"rollout/worker_restarts": 0, "rollout/lost_episodes": 0}
        assert batch.rows == workers.rollout(tasks, k=2, max_turns=3, seed=0).rows  # deterministic

        config = TrainerConfig(lr=3e-3, minibatch_size=64, device="cpu", dtype="float32")
        policy = load_policy(str(corridor_model), config)
        rows = batch.rows
        prompts, responses = [r.prompt_ids for r in rows], [r.response_ids for r in rows]
        # the samplers' log-probs are the trainer's before any update
        assert max_gap([r.logprobs for r in rows], trainer_logprobs(policy, rows)) < 1e-4

        advantages = np.linspace(-1, 1, len(rows))
        PolicyTrainer(policy, config).update(rows, advantages)
        wanted = trainer_logprobs(policy, rows)
        stale = workers.logprobs(prompts, responses)
        assert min(max_gap(replica, wanted) for replica in stale) > 1e-2  # the update changed the policy

        workers.update_weights(policy.state_dict_for_engine())
        synced = workers.logprobs(prompts, responses)
        gaps = [max_gap(replica, wanted) for replica in synced]
        print("replica vs trainer max |Δ log p| after sync:", gaps)
        assert len(gaps) == 2 and max(gaps) < 1e-5

        # kill replica 1 mid-rollout: its share (2 groups × K=2) is lost and counted, replica 0's comes back
        pid = workers.pids()[1]
        os.kill(pid, signal.SIGKILL)
        batch = workers.rollout(tasks, k=2, max_turns=3, seed=1)
        assert workers.last_faults == {"rollout/worker_restarts": 1, "rollout/lost_episodes": 4}
        assert sorted({r.group_id for r in batch.rows}) == [0, 1, 2]
        assert workers.pids()[1] != pid
        # the re-created replica got the latest weights
        gaps = [max_gap(replica, wanted) for replica in workers.logprobs(prompts, responses)]
        assert max(gaps) < 1e-5
    finally:
        workers.close()
