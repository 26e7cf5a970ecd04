"""RLOO: leave-one-out baseline (docs/algorithms.md § RLOO; Kool et al. 2019, Ahmadian et al. 2024).

    A(τ_k) = R(τ_k) − 1/(K−1) Σ_{i≠k} R(τ_i) = K/(K−1) · (R(τ_k) − mean_g R)

over the K trajectories of a group, R(τ) = Σ_t r_t; every step row of τ gets A(τ).
No std normalization. K = 1: A = R. A group whose returns are all equal gets exactly 0.
"""

from __future__ import annotations

import numpy as np

from .batch import StepBatch, episode_returns, normalize_in_groups
from .registry import register


def details(batch: StepBatch) -> dict[str, np.ndarray]:
    """RLOO's (and LOOP's) per-step quantities, row order; A = R_tau − baseline.

        R_tau     the trajectory's return R(τ)
        baseline  mean R(τ) of the group's *other* trajectories (0 for a group of one)
    """
    episode_return = episode_returns(batch)
    k = batch.group_size[batch.traj_group]
    total = np.bincount(batch.traj_group, weights=episode_return, minlength=batch.n_groups)[batch.traj_group]
    baseline = np.where(k > 1, (total - episode_return) / np.maximum(k - 1, 1), 0.0)
    return {"R_tau": episode_return[batch.traj_code], "baseline": baseline[batch.traj_code]}


@register("rloo", details=details)
def advantages(batch: StepBatch) -> np.ndarray:
    """RLOO advantage of each step row's trajectory."""
    episode_return = episode_returns(batch)  # R(τ), one per trajectory
    centred = normalize_in_groups(episode_return, batch.traj_group, batch.n_groups, "mean")  # K = 1: R
    k = batch.group_size[batch.traj_group].astype(np.float64)  # K of each trajectory's group
    leave_one_out_scale = np.where(k > 1, k / np.maximum(k - 1, 1), 1.0)
    return (leave_one_out_scale * centred)[batch.traj_code]
