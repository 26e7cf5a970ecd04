"""The body of one rank in the data-parallel test (importable, so ``torch.multiprocessing.spawn`` can run it)."""

from __future__ import annotations

import torch

# (prompt length, response length) of the global batch: uneven, so shards differ in tokens
SHAPES = [(6, 4), (9, 3), (4, 5), (7, 2), (3, 6), (8, 1), (5, 5), (2, 7), (6, 3), (4, 4), (7, 6)]
CONFIGS = {
    "token-mean": dict(lr=3e-4, minibatch_size=4, micro_batch_tokens=24, ppo_epochs=2, aggregation="token-mean"),
    "seq-mean": dict(lr=3e-4, minibatch_size=5, micro_batch_tokens=30, ppo_epochs=1,
                     aggregation="seq-mean-token-mean", entropy_coef=0.01, kl_coef=0.05),
}


def global_batch():
    from tests.trainer import make_rows

    rows = make_rows(SHAPES, seed=1)
    advantages = torch.linspace(-1.0, 1.0, len(rows), dtype=torch.float64).numpy()
    return rows, advantages


# float64 weights: in fp32, parameters whose true gradient is 0 (the attention k_proj bias: softmax ignores a
# shift shared by all keys) get rounding-noise gradients that Adam scales up to ~lr, and those differed by
# 5.6e-6 between 1 and 2 ranks (measured); in float64 that noise is far below Adam's eps.
DTYPE = torch.float64


def train(name: str, trainer_cls, **trainer_kwargs) -> dict[str, torch.Tensor]:
    """Two updates on the global batch; returns the final weights."""
    from tests.trainer import tiny_model
    from steprl.trainer.config import TrainerConfig
    from steprl.trainer.policy import Policy

    config = TrainerConfig(**CONFIGS[name])
    policy = Policy.from_model(tiny_model(seed=0), config)
    policy.model.to(DTYPE)
    trainer = trainer_cls(policy, config, **trainer_kwargs)
    rows, advantages = global_batch()
    metrics = [trainer.update(rows, advantages), trainer.update(rows[::-1], -advantages)]
    weights = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
    weights["__pg_loss__"] = torch.tensor([m["train/pg_loss"] for m in metrics], dtype=torch.float64)
    return weights


def rank_main(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """Join a gloo group, train every config with DistributedPolicyTrainer, save this rank's weights."""
    import torch.distributed as dist

    from steprl.trainer.distributed import DistributedPolicyTrainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        results = {name: train(name, DistributedPolicyTrainer) for name in CONFIGS}
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
