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


def details(batch: StepBatch, *, normalize: str = "mean_std", eps: float = 1e-6) -> dict[str, np.ndarray]:
    """GRPO's per-step quantities (``credit.details("grpo", ...)``), row order; A = (R_tau − baseline) / (std + ε).

        R_tau     the trajectory's return R(τ)
        baseline  mean R(τ) of the group's trajectories (0 for a group of one)
        std       their unbiased std (1 for a group of one); ``normalize="mean_std"`` only
    """
    check_positive("eps", eps)
    episode_return = episode_returns(batch)
    out = {"R_tau": episode_return[batch.traj_code]}
    mean, std = group_mean_std(episode_return, batch.traj_group, batch.n_groups)
    out["baseline"] = mean[batch.group_code]
    if normalize == "mean_std":
        out["std"] = std[batch.group_code]
    return out


def group_mean_std(values: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the mean and unbiased std of ``values`` (one per entry); a group of one: mean 0, std 1."""
    count = np.bincount(group, minlength=n_groups)
    mean = np.bincount(group, weights=values, minlength=n_groups) / np.maximum(count, 1)
    squares = np.bincount(group, weights=(values - mean[group]) ** 2, minlength=n_groups)
    std = np.sqrt(squares / np.maximum(count - 1, 1))
    alone = count == 1
    return np.where(alone, 0.0, mean), np.where(alone, 1.0, std)


@register("grpo", details=details)
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
