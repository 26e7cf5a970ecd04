"""Data-parallel policy updates over torch.distributed (gloo on CPU, NCCL on GPU).

    torchrun --nproc_per_node 2 -m steprl train configs/quickstart.yaml      # one machine, 2 ranks
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_endpoint HOST:29500 -m steprl train CONFIG

Every rank holds the same *global* batch of step rows (each rank rolls out its
share of the tasks, then :func:`gather_batch` gives every rank all of them)
and the same weights. :class:`DistributedPolicyTrainer` is a
:class:`~trainer.policy.PolicyTrainer` whose minibatches are split across
ranks: every rank draws the same shuffled minibatch, back-propagates only its
share of its rows, and the gradients are summed over ranks before clipping and
the optimizer step. The loss is normalized by the *global* minibatch's token
count (token-mean) or row count (seq-mean-token-mean), so the summed gradient
is the one a single process computes on the whole minibatch, and so are the
updated weights (to float rounding; tests/distributed checks ≤ 1e-6).

Why not ``DistributedDataParallel``: its hooks average gradients per
``backward`` call, while a minibatch here is several token-budget
micro-batches whose count differs across ranks; one explicit all-reduce per
optimizer step is simpler and exact.

Left out on purpose: FSDP / tensor parallelism. For a model that does not fit
one device, wrap ``policy.model`` in ``torch.distributed.fsdp.fully_shard``
before building the trainer (docs/distributed.md); it is not exercised here
(no GPUs on this machine).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steprl.trainer.policy import PolicyTrainer, PreparedBatch

__all__ = ["DistContext", "init_distributed", "DistributedPolicyTrainer", "split_tasks", "gather_batch", "shard"]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the process group.

    Attributes:
        rank: this process's rank (0 writes logs and checkpoints).
        world_size: number of training processes.
        backend: ``"gloo"`` or ``"nccl"``.
    """

    rank: int
    world_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def init_distributed(backend: str = "auto") -> DistContext | None:
    """Join the process group ``torchrun`` (or Ray) describes in ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``.

    Returns ``None`` for a single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``),
    so the local path stays as it is. ``backend="auto"`` picks NCCL when CUDA is
    present, else gloo. Under NCCL each rank uses the GPU ``LOCAL_RANK``.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), dist.get_backend())
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend={backend!r} is not one of 'auto', 'gloo', 'nccl'")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # generous: the other ranks wait in the next all-gather while rank 0 evaluates and checkpoints
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(hours=2))
    return DistContext(dist.get_rank(), dist.get_world_size(), backend)


def shard(lengths: np.ndarray, indices: Sequence[int] | np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of ``indices``: sorted by length (longest first, stable), then dealt round-robin.

    Dealing sorted rows balances the response tokens (and the padding) across ranks.
    """
    indices = np.asarray(indices, dtype=np.int64)
    order = indices[np.argsort(-lengths[indices], kind="stable")]
    return order[rank::world_size]


class DistributedPolicyTrainer(PolicyTrainer):
    """A :class:`~trainer.policy.PolicyTrainer` whose minibatches are shared out across the ranks of a process group.

    Call :meth:`update` on every rank with the same global rows and
    advantages; every rank ends with the same weights, equal to one process's
    update on those rows. The old (and reference) log-probs are computed
    shard-wise too and summed into one table.

    Args:
        policy: the policy (same initial weights on every rank).
        config: trainer settings (the same on every rank).
        group: the torch.distributed process group; ``None`` = the default one.
    """

    def __init__(self, policy, config, group=None):
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("DistributedPolicyTrainer needs torch.distributed initialized (init_distributed())")
        super().__init__(policy, config)
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    # -- gradients ---------------------------------------------------------------
    def backward_minibatch(
        self, prepared: PreparedBatch, indices: Sequence[int] | np.ndarray, micro_batch_tokens: int | None = None
    ) -> dict[str, float]:
        """This rank's share of one minibatch, normalized by the whole minibatch; gradients summed over ranks."""
        import torch.distributed as dist

        indices = np.asarray(indices, dtype=np.int64)
        lengths = prepared.response_lengths
        mine = shard(lengths, indices, self.rank, self.world_size)
        total = self._normalizer(lengths[indices])
        keys = ("pg_loss", "loss", "clip_frac_sum", "dual_clip_frac_sum", "approx_kl_sum", "entropy_sum", "kl_sum",
                "tokens")
        stats = dict.fromkeys(keys, 0.0)
        if len(mine):
            stats = super().backward_minibatch(prepared, mine, micro_batch_tokens)
            # The parent normalized by this shard's count; rescale to the global minibatch's.
            scale = max(self._normalizer(lengths[mine]), 1.0) / max(total, 1.0)
            if scale != 1.0:
                for param in self.policy.trainable_parameters():
                    if param.grad is not None:
                        param.grad.mul_(scale)
                stats["pg_loss"] *= scale
                stats["loss"] *= scale
        params = self.policy.trainable_parameters()
        has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=self.policy.device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        sums = torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=self.policy.device)
        dist.all_reduce(flat, group=self.group)
        dist.all_reduce(has_grad, group=self.group)
        dist.all_reduce(sums, group=self.group)
        offset = 0
        for param, flag in zip(params, has_grad.tolist()):
            size = param.numel()
            # a parameter no rank touched keeps grad None, as in one process (AdamW skips it)
            param.grad = flat[offset:offset + size].view_as(param).clone() if flag > 0 else None
            offset += size
        return dict(zip(keys, sums.tolist()))

    def _normalizer(self, lengths: np.ndarray) -> float:
        if self.config.aggregation == "token-mean":
            return float(lengths.sum())
        return float((lengths > 0).sum())

    # -- log-prob tables (old / reference), computed shard-wise ----------------------
    @torch.no_grad()
    def logprobs_table(self, model, rows: Sequence) -> torch.Tensor:
        """The full ``[rows, longest response]`` table on every rank; each rank computes its shard of the rows."""
        import torch.distributed as dist

        from steprl.trainer.batching import row_token_ids

        lengths = np.fromiter((len(row_token_ids(r)[1]) for r in rows), dtype=np.int64, count=len(rows))
        width = int(lengths.max()) if len(rows) else 0
        table = torch.zeros(len(rows), width, dtype=torch.float32, device=self.policy.device)
        mine = shard(lengths, np.arange(len(rows)), self.rank, self.world_size)
        if len(mine):
            part = super().logprobs_table(model, [rows[i] for i in mine])
            table[torch.as_tensor(mine, device=table.device), : part.shape[1]] = part
        dist.all_reduce(table, group=self.group)  # shards are disjoint: the sum is the union, exactly
        return table


# -- rollouts across ranks -------------------------------------------------------------
def split_tasks(tasks: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's contiguous share of the iteration's tasks (groups stay whole on one rank)."""
    return [int(t) for t in np.array_split(np.asarray(tasks, dtype=np.int64), world_size)[rank]]


def gather_batch(batch, num_groups: int, k: int, group=None):
    """Every rank's :class:`~agent.rollout.TrajectoryBatch`, merged in rank order on every rank.

    ``group_id`` and ``traj_id`` are renumbered as :func:`agent.workers.merge_batches`
    does: rank r's groups follow those of ranks < r (each rank passes its own
    ``num_groups``, the number of tasks it rolled out, and the group size ``k``).
    """
    import torch.distributed as dist

    from steprl.agent.rollout import TrajectoryBatch
    from steprl.agent.workers import merge_batches

    gathered: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, (batch.rows, batch.timings, batch.failed_starts, num_groups), group=group)
    return merge_batches([(TrajectoryBatch(rows, timings, failed_starts=failed), groups)
                          for rows, timings, failed, groups in gathered], k)
