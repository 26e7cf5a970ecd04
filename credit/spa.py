"""SPA (Wang et al. 2025, "SPA-RL: Reinforcing LLM Agents via Stepwise Progress Attribution").

docs/algorithms.md § SPA. The progress estimator (step 1, trained by the trainer) has
already split the final reward into per-step contributions ĉ_t, given as
`StepBatch(progress=...)`. Here:

2. Grounding signal g_t = 1 if the action was executed (`valid`), else 0
   (``grounding="reference"``: as the reference code, the trajectory's last step always 1).
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


def details(batch: StepBatch, *, alpha: float = 1.0, beta: float = 0.5, gamma: float = 1.0,
            grounding: str = "valid") -> dict[str, np.ndarray]:
    """SPA's per-step quantities (``credit.details("spa", ...)``), row order; A = stepwise_return − baseline.

        c_hat            the progress estimator's contribution ĉ_t
        stepwise_reward  r̃_t = α·ĉ_t + β·g_t
        stepwise_return  R̃_t = Σ_{k≥t} γ^{k−t} r̃_k
        baseline         mean R̃_t of the group's trajectories that have a step t (the row's own R̃_t
                         when it is the only one: A = 0)
    """
    stepwise, step_return, advantage = _parts(batch, alpha, beta, gamma, grounding)
    step_return = batch.to_rows(step_return)
    advantage = batch.to_rows(advantage)
    return {"c_hat": np.asarray(batch.progress), "stepwise_reward": stepwise, "stepwise_return": step_return,
            "baseline": step_return - advantage}


@register("spa", head="progress", details=details)
def advantages(batch: StepBatch, *, alpha: float = 1.0, beta: float = 0.5, gamma: float = 1.0,
               grounding: str = "valid") -> np.ndarray:
    """SPA advantage of each step row: its stepwise return minus the group's mean at that step index.

    Args:
        alpha: weight α of the progress contribution ĉ_t.
        beta: weight β of the grounding signal g_t.
        gamma: discount γ of the stepwise returns.
        grounding: ``"valid"``: g_t = 1 for a valid action, else 0; ``"reference"``: the same, but every
            trajectory's last step gets g = 1, as the reference code (see :func:`grounding_signal`).
    """
    return batch.to_rows(_parts(batch, alpha, beta, gamma, grounding)[2])


def _parts(batch: StepBatch, alpha: float, beta: float, gamma: float, grounding: str = "valid"):
    """(r̃_t row order, R̃_t canonical order, A_t canonical order)."""
    check_unit_interval("gamma", gamma)
    stepwise = stepwise_reward(batch, alpha=alpha, beta=beta, grounding=grounding)
    step_return = discounted_suffix_sum(batch, batch.canonical(stepwise), gamma)  # R̃_t, canonical order
    cell, n_cells = factorize_pairs(batch.group_code, batch.n_groups, batch.step)  # (group, step index)
    advantage = normalize_in_groups(step_return, batch.canonical(cell), n_cells, "mean", singleton_rule="zero")
    return stepwise, step_return, advantage


GROUNDINGS = ("valid", "reference")


def stepwise_reward(batch: StepBatch, *, alpha: float = 1.0, beta: float = 0.5, grounding: str = "valid",
                    sum_to_outcome: bool = False) -> np.ndarray:
    """r̃_t = α · ĉ_t + β · g_t per row (row order), g_t from :func:`grounding_signal`.

    ``credit.reward: spa`` in a run config feeds these to any estimator (gae, grpo, ...) as its rewards.

    ``sum_to_outcome=True`` (not in the reference) first shifts each trajectory's contributions
    uniformly so that they sum to its actual outcome R = Σ_t r_t (the env's rewards):

        ĉ'_t = ĉ_t + (R − Σ_k ĉ_k) / T

    The estimator then only decides how the outcome is split across the steps (SPA's "progress
    attribution"; the return decomposition of RUDDER), and the policy cannot raise its return by
    steering to responses the frozen estimator overrates. The reference can leave it out because its
    PPO makes one offline pass over the estimator's own exploration data; trained online for many
    iterations the policy finds such responses (measured on Coin Collector: the mean ĉ_t per step rose
    from 0.08 to 0.45 while success fell from 70% to 2%; docs/credit.md § SPA in its reference form).
    """
    check_finite("alpha", alpha)
    check_finite("beta", beta)
    if batch.progress is None:
        raise ValueError("spa needs the progress estimator's per-step contributions: "
                         "build the batch with StepBatch(..., progress=...)")
    progress = np.asarray(batch.progress, dtype=np.float64)
    if sum_to_outcome:
        n = batch.n_trajectories
        gap = (np.bincount(batch.traj_code, weights=np.asarray(batch.reward, dtype=np.float64), minlength=n)
               - np.bincount(batch.traj_code, weights=progress, minlength=n))
        progress = progress + (gap / np.maximum(batch.traj_length, 1))[batch.traj_code]
    return alpha * progress + beta * grounding_signal(batch, grounding)


def grounding_signal(batch: StepBatch, grounding: str = "valid") -> np.ndarray:
    """g_t per row (row order, float64): 1 where the action was executed (``batch.valid``), else 0.

    ``grounding="reference"`` is the SPA reference code's (``prm/rl_data_org.py``): step t < T−1 gets
    1 when the next observation is not a failure message ("Nothing happens"; here: the row's ``valid``),
    and the trajectory's last step always gets 1, whatever its action did.
    """
    if grounding not in GROUNDINGS:
        raise ValueError(f"grounding={grounding!r} is not one of {', '.join(map(repr, GROUNDINGS))}")
    signal = batch.valid.astype(np.float64)
    if grounding == "reference":
        signal[batch.step == batch.traj_length[batch.traj_code] - 1] = 1.0
    return signal
