"""GRPO: episode-level group-relative advantage (docs/algorithms.md § GRPO).

    A(τ) = (R(τ) − mean_g R) / (std_g R + ε),   R(τ) = Σ_t r_t

over the K trajectories τ of a group g (statistics per trajectory, not per row);
every step row of τ gets A(τ). `normalize="mean"` drops the division (Dr.GRPO).
std is the unbiased sample std, as in verl. Singleton group (K = 1): mean 0, std 1,
so the raw return passes through (divided by 1 + ε). A group whose returns are all
equal gets exactly 0.
"""

from __future__ import annotations

import numpy as np

from .batch import StepBatch, check_positive, episode_returns, normalize_in_groups
from .registry import register


@register("grpo")
def advantages(batch: StepBatch, *, normalize: str = "mean_std", eps: float = 1e-6) -> np.ndarray:
    """GRPO advantage of each step row's trajectory.

    Args:
        normalize: "mean_std" (divide by the group std) or "mean" (centre only).
        eps: added to the std before dividing.
    """
    check_positive("eps", eps)
    episode_return = episode_returns(batch)  # R(τ), one per trajectory
    trajectory_advantage = normalize_in_groups(episode_return, batch.traj_group, batch.n_groups, normalize, eps)
    return trajectory_advantage[batch.traj_code]  # every row of τ gets A(τ)
