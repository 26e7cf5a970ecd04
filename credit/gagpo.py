"""GAGPO (arXiv 2605.13217): GAE over a critic-free state value, the group's mean return from each anchor.

docs/algorithms.md § Step-level methods after GiGPO. No public code: this follows the
description there. The paper's equation numbers and its γ/λ values could not be read: the
copies of its full text we could search (arXiv HTML, Hugging Face markdown, a cached copy)
reach only as far as the abstract, and the summaries we found quote no equation numbers.
Those summaries describe the same stages as the steps below: rollout grouping by identical
environment state, a grouped value proxy (the mean discounted return over the steps at
that state), TD residuals on it, a GAE-style backward recursion, and a normalization over
the rollout group; the step advantage is the only signal (its ablations: λ = 0, Monte
Carlo advantages, an added trajectory-reward term, batch-wide or no normalization all do
worse; an appendix sweep pushing its temporal parameter, presumably λ, to 1.0 drops
ALFWorld overall to 82.7). Per group of K trajectories of one task:

1. Step returns R_t = Σ_{k≥t} γ^{k−t} r_k (the invalid-action penalty off r_t first, as GiGPO).
2. V(s) = the mean R_t over every row of the group whose anchor is s (the grouped value proxy).
3. δ_t = r_t + γ·V(s_{t+1}) − V(s_t), with s_{t+1} the next row's anchor; 0 after the last step
   (the TD residual on the proxy).
4. Â_t = Σ_l (γλ)^l δ_{t+l} (``credit.gae`` on V; the GAE-style recursion).
5. Group normalization: Â over the group's rows, (Â − mean) / (std + ε) (or mean only).
No episode term. The paper's per-action ratio (length-normalized) is a loss setting, not
this estimator's. γ and λ default to GiGPO's γ and GAE's usual λ (0.95 each): the paper's
values are not known to us; its ablations point to a λ strictly between 0 and 1. Unchecked
against the paper: the value used after the last step, whether the invalid-action penalty
enters r_t, and whether its normalization divides by the std.
"""

from __future__ import annotations

import numpy as np

from . import gae
from .batch import StepBatch, check_positive, check_unit_interval, factorize, factorize_pairs, normalize_in_groups
from .gigpo import penalized_reward
from .registry import register


def anchor_means(batch: StepBatch, row_values) -> np.ndarray:
    """Per row, the mean of ``row_values`` over the rows of its group with the same anchor (row order)."""
    anchor_code, _ = factorize(batch.anchor, "anchor")
    cell, n_cells = factorize_pairs(batch.group_code, batch.n_groups, anchor_code)
    total = np.bincount(cell, weights=np.asarray(row_values, dtype=np.float64), minlength=n_cells)
    return (total / np.bincount(cell, minlength=n_cells))[cell]


def details(batch: StepBatch, *, gamma: float = 0.95, lam: float = 0.95, normalize: str = "mean_std",
            eps: float = 1e-6, invalid_penalty: float = 0.1) -> dict[str, np.ndarray]:
    """GAGPO's per-step quantities (``credit.details("gagpo", ...)``), row order; A = gae normalized over the group.

        R_t    discounted step return (after the invalid-action penalty)
        V      V(s_t): the group's mean R_t over the rows with this anchor
        delta  δ_t = r_t + γ·V(s_{t+1}) − V(s_t)
        gae    Â_t = Σ_l (γλ)^l δ_{t+l}, before the group normalization
    """
    if len(batch) == 0:
        return {key: np.zeros(0) for key in ("R_t", "V", "delta", "gae")}
    step_return, value, td_error, advantage = _parts(batch, gamma, lam, eps, invalid_penalty)
    return {"R_t": step_return, "V": value, "delta": td_error, "gae": advantage}


@register("gagpo", details=details)
def advantages(batch: StepBatch, *, gamma: float = 0.95, lam: float = 0.95, normalize: str = "mean_std",
               eps: float = 1e-6, invalid_penalty: float = 0.1) -> np.ndarray:
    """GAGPO advantage of each step row (module docstring, steps 1-5).

    Args:
        gamma: γ of the returns and of the TD errors.
        lam: GAE λ.
        normalize: "mean_std" or "mean" (the group normalization).
        eps: ε of the std division.
        invalid_penalty: λ_inv off r_t of invalid actions.
    """
    check_unit_interval("gamma", gamma)
    check_unit_interval("lam", lam)
    check_positive("eps", eps)
    if len(batch) == 0:
        return np.zeros(0)
    advantage = _parts(batch, gamma, lam, eps, invalid_penalty)[3]
    return normalize_in_groups(advantage, batch.group_code, batch.n_groups, normalize, eps)


def _parts(batch: StepBatch, gamma: float, lam: float, eps: float, invalid_penalty: float):
    """(R_t, V(s_t), δ_t, Â_t before normalization), row order (steps 1-4)."""
    check_unit_interval("gamma", gamma)
    check_unit_interval("lam", lam)
    check_positive("eps", eps)
    reward = penalized_reward(batch, invalid_penalty)
    step_return = batch.to_rows(np.asarray(_returns(batch, reward, gamma)))
    value = anchor_means(batch, step_return)
    _, td_error, advantage = gae._parts(batch.replace(reward=reward, value=value), gamma, lam, None)
    return step_return, value, td_error, advantage


def _returns(batch: StepBatch, reward, gamma: float) -> np.ndarray:
    from .batch import discounted_suffix_sum

    return discounted_suffix_sum(batch, batch.canonical(reward), gamma)
