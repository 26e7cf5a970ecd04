"""SPA (Wang et al. 2025, "SPA-RL: Reinforcing LLM Agents via Stepwise Progress Attribution").

docs/algorithms.md § SPA. The progress estimator (step 1, trained by the trainer) has
already split the final reward into per-step contributions ĉ_t, given as
`StepBatch(progress=...)`. Here:

2. Grounding signal g_t = 1 if the action was executed (`valid`), else 0.
3. Stepwise reward (the env reward is not used; ĉ_t already carries it):
       r̃_t = α · ĉ_t + β · g_t            (reference code: α = 1, β = 0.5)
4. Policy optimization on r̃_t with per-step discounted returns and a group baseline:
       R̃_t = Σ_{k≥t} γ^{k−t} r̃_k
       A_t = R̃_t − b_{g,t},   b_{g,t} = mean of R̃_t over the trajectories of group g
                                        that have a step t (same step index)
   No std division. A step index that only one trajectory of the group reaches (and
   every step when K = 1) has nothing to compare with: A_t = 0, as for GiGPO's
   singleton step groups.

Why the same step index and not all rows of the group: R̃_t shrinks along a
trajectory (less progress is left), so one group-wide mean would hand early steps
positive and late steps negative advantages even when all K rollouts are identical.
Per step index, identical rollouts get exactly 0.

For the other option of docs/algorithms.md, PPO with GAE on r̃_t, build the stepwise
rewards and run `gae` on them:
    credit.estimate("gae", batch.replace(reward=credit.spa.stepwise_reward(batch), value=v))
"""

from __future__ import annotations

import numpy as np

from .batch import (
    StepBatch,
    check_finite,
    check_unit_interval,
    discounted_suffix_sum,
    factorize_pairs,
    normalize_in_groups,
)
from .registry import register


@register("spa", head="progress")
def advantages(batch: StepBatch, *, alpha: float = 1.0, beta: float = 0.5, gamma: float = 1.0) -> np.ndarray:
    """SPA advantage of each step row: its stepwise return minus the group's mean at that step index.

    Args:
        alpha: weight α of the progress contribution ĉ_t.
        beta: weight β of the grounding signal g_t.
        gamma: discount γ of the stepwise returns.
    """
    check_unit_interval("gamma", gamma)
    stepwise = stepwise_reward(batch, alpha=alpha, beta=beta)
    step_return = discounted_suffix_sum(batch, batch.canonical(stepwise), gamma)  # R̃_t, canonical order
    cell, n_cells = factorize_pairs(batch.group_code, batch.n_groups, batch.step)  # (group, step index)
    advantage = normalize_in_groups(step_return, batch.canonical(cell), n_cells, "mean", singleton_rule="zero")
    return batch.to_rows(advantage)


def stepwise_reward(batch: StepBatch, *, alpha: float = 1.0, beta: float = 0.5) -> np.ndarray:
    """r̃_t = α · ĉ_t + β · g_t per row (row order), g_t = 1 for valid actions, else 0."""
    check_finite("alpha", alpha)
    check_finite("beta", beta)
    if batch.progress is None:
        raise ValueError("spa needs the progress estimator's per-step contributions: "
                         "build the batch with StepBatch(..., progress=...)")
    return alpha * batch.progress + beta * batch.valid.astype(np.float64)
