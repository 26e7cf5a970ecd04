"""Two gloo processes on CPU update the weights exactly as one process does on the same global batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.distributed import dp_worker
from tests.trainer import single_thread  # noqa: F401  (autouse: one torch thread)


def test_shard_deals_rows_by_length_round_robin():
    from steprl.trainer.distributed import shard, split_tasks

    lengths = np.array([4, 3, 5, 2, 6, 1])
    assert shard(lengths, [0, 1, 2, 3, 4, 5], 0, 2).tolist() == [4, 0, 3]
    assert shard(lengths, [0, 1, 2, 3, 4, 5], 1, 2).tolist() == [2, 1, 5]
    assert split_tasks([7, 8, 9, 10, 11], 0, 2) == [7, 8, 9] and split_tasks([7, 8, 9, 10, 11], 1, 2) == [10, 11]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path):
    from steprl.trainer.policy import PolicyTrainer

    torch.multiprocessing.spawn(dp_worker.rank_main, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                                join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name in dp_worker.CONFIGS:  # token-mean over 2 epochs; seq-mean with entropy bonus and KL
        single = dp_worker.train(name, PolicyTrainer)
        for rank, result in enumerate(ranks):
            weights = result[name]
            assert weights.keys() == single.keys()
            diffs = {k: float((weights[k].double() - single[k].double()).abs().max()) for k in single}
            worst = max(diffs, key=diffs.get)
            print(f"{name} rank {rank}: max |Δw| = {diffs[worst]:.2e} ({worst})")
            assert diffs[worst] <= 1e-6, (name, rank, worst, diffs[worst])
        # the update moved the weights (the comparison has teeth)
        from tests.trainer import tiny_model

        init = tiny_model(seed=0).to(dp_worker.DTYPE).state_dict()
        moved = max(float((single[k] - init[k]).abs().max()) for k in init)
        assert moved > 3e-4


def test_merge_batches_renumbers_groups_and_keeps_gaps_of_lost_parts():
    from steprl.agent.rollout import FailedStart, StepRow, TrajectoryBatch
    from steprl.agent.workers import merge_batches

    def row(group, j, k=2):
        return StepRow(traj_id=group * k + j, group_id=group, task_id="t", step=0, prompt_ids=[1], response_ids=[2],
                       logprobs=[-1.0], response_text="x", action="x", format_ok=True, valid_action=True, reward=0.0,
                       anchor="a", done=True, truncated=False, success=False, observation="o", history_cut=0,
                       expert_action=None, env_error=None)

    first = TrajectoryBatch([row(0, 0), row(0, 1), row(1, 0), row(1, 1)], {"total": 2.0})
    lost = TrajectoryBatch([], {})
    last = TrajectoryBatch([row(0, 0)], {"total": 3.0}, failed_starts=[FailedStart(1, 0, 5, "boom")])
    merged = merge_batches([(first, 2), (lost, 1), (last, 1)], k=2)
    assert [(r.group_id, r.traj_id) for r in merged.rows] == [(0, 0), (0, 1), (1, 2), (1, 3), (3, 6)]
    assert merged.failed_starts == [FailedStart(7, 3, 5, "boom")]  # renumbered like the rows
    assert merged.timings == {"total": 3.0}  # parts run in parallel: the slowest sets the time
