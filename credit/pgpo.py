"""PGPO (arXiv 2609.02236): GiGPO's step level plus a potential-based shaping term, without the episode level.

docs/algorithms.md § Step-level methods after GiGPO. No public code: this follows the paper
(equation numbers below are the paper's). Per group of K trajectories of one task:

1. GiGPO's step returns R_t (Eq. 1; the paper calls this discount η, our ``gamma``) and step
   advantage A^S (Eq. 3; GiGPO's Eq. 5-7, ``credit.gigpo``), with its invalid-action penalty.
2. The potential Φ(s) = the mean R_t over every visit to anchor s in the group (Eq. 6).
3. δ_t = γΦ(s_{t+1}) − Φ(s_t) (Eq. 7) with the paper's default potential discount γ = 1, fixed
   here; on a trajectory's last step the final reward r_t stands in for Φ(next) (the paper's
   γ·r_final: the env's reward, without GiGPO's invalid-action penalty).
4. A^φ = δ normalized within the row's step group (same anchor; a group of one row: 0) (Eq. 8).
5. A = A^S + w·A^φ (Eq. 11), w = β(1 − p)^α (Eq. 10), p the group's success rate (Eq. 9)
   (α = 2, β = 1). No A^E: the paper reports that adding it hurt (Table 2).

Sources: the paper's full text (arXiv 2609.02236; a stored copy, version not stated, v1 the
listed one): §3.1-3.2 (Eq. 1-3), §4.2-4.5 (Eq. 6-11), Algorithm 1, App. B.3 (η = 0.95, γ = 1).
"""

from __future__ import annotations

import numpy as np

from .batch import StepBatch, check_finite, factorize, factorize_pairs, normalize_in_groups
from .gagpo import anchor_means
from .gigpo import advantage_levels, penalized_reward
from .registry import register


def details(batch: StepBatch, *, gamma: float = 0.95, alpha: float = 2.0, beta: float = 1.0,
            normalize: str = "mean_std", eps: float = 1e-6, invalid_penalty: float = 0.1) -> dict[str, np.ndarray]:
    """PGPO's per-step quantities (``credit.details("pgpo", ...)``), row order; A = A_S + shaping_weight·A_phi.

        R_t             GiGPO's discounted step return (after the invalid-action penalty)
        A_S             GiGPO's step advantage
        phi             the potential Φ(s_t): the group's mean R_t from this anchor
        delta           Φ(s_{t+1}) − Φ(s_t) (the final reward in place of Φ(s_{t+1}) on the last step)
        A_phi           delta normalized in the step group (0 when alone)
        p               the group's success rate
        shaping_weight  β(1 − p)^α
    """
    if len(batch) == 0:
        return {key: np.zeros(0) for key in ("R_t", "A_S", "phi", "delta", "A_phi", "p", "shaping_weight")}
    parts = _parts(batch, gamma, alpha, beta, normalize, eps, invalid_penalty)
    return {key: parts[key] for key in ("R_t", "A_S", "phi", "delta", "A_phi", "p", "shaping_weight")}


@register("pgpo", needs=("success",), details=details)
def advantages(batch: StepBatch, *, gamma: float = 0.95, alpha: float = 2.0, beta: float = 1.0,
               normalize: str = "mean_std", eps: float = 1e-6, invalid_penalty: float = 0.1) -> np.ndarray:
    """PGPO advantage of each step row (module docstring, steps 1-5).

    Args:
        gamma: γ of GiGPO's step returns (the potential's shaping itself uses γ = 1).
        alpha, beta: the weight β(1 − p)^α of the shaping term.
        normalize: "mean_std" or "mean", for A^S and A^φ.
        eps: ε of the std divisions.
        invalid_penalty: λ off r_t of invalid actions.
    """
    if len(batch) == 0:
        check_finite("alpha", alpha)
        check_finite("beta", beta)
        return np.zeros(0)
    parts = _parts(batch, gamma, alpha, beta, normalize, eps, invalid_penalty)
    return parts["A_S"] + parts["shaping_weight"] * parts["A_phi"]


def _parts(batch: StepBatch, gamma: float, alpha: float, beta: float, normalize: str, eps: float,
           invalid_penalty: float) -> dict[str, np.ndarray]:
    """Steps 1-4 and the weight of step 5, row order (a non-empty batch)."""
    check_finite("alpha", alpha)
    check_finite("beta", beta)
    if batch.success is None:
        raise ValueError("pgpo needs each row's episode outcome (StepBatch(..., success=...); from_rows gives it)")
    _, step_advantage = advantage_levels(batch, gamma=gamma, normalize=normalize, eps=eps,
                                         invalid_penalty=invalid_penalty)
    reward = penalized_reward(batch, invalid_penalty)
    from .batch import discounted_suffix_sum

    step_return = batch.to_rows(discounted_suffix_sum(batch, batch.canonical(reward), gamma))
    potential = anchor_means(batch, step_return)
    # Φ of the next row of the same trajectory (canonical layout), the final reward on the last step
    canonical_potential = batch.canonical(potential)
    step = batch.step
    rank = batch.traj_rank[batch.traj_code]
    last = step == batch.traj_length[batch.traj_code] - 1
    next_position = np.where(last, 0, batch.step_offset[np.minimum(step + 1, batch.step_offset.size - 1)] + rank)
    delta = np.where(last, np.asarray(batch.reward, dtype=np.float64), canonical_potential[next_position]) - potential
    anchor_code, _ = factorize(batch.anchor, "anchor")
    cell, n_cells = factorize_pairs(batch.group_code, batch.n_groups, anchor_code)
    shaping = normalize_in_groups(delta, cell, n_cells, normalize, eps, singleton_rule="zero")
    trajectory_success = np.zeros(batch.n_trajectories)
    trajectory_success[batch.traj_code] = batch.success
    p = np.bincount(batch.traj_group, weights=trajectory_success, minlength=batch.n_groups) / batch.group_size
    success_rate = p[batch.group_code]
    return {"R_t": step_return, "A_S": step_advantage, "phi": potential, "delta": delta, "A_phi": shaping,
            "p": success_rate, "shaping_weight": beta * (1.0 - success_rate) ** alpha}
