"""`credit.diagnose`: what a researcher looks at every iteration, as flat loggable numbers.

Generic keys, for every estimator (all under `credit/`; ints are counts, floats are
shares in [0, 1] or statistics over step rows, population std):

batch shape
    rows, trajectories, groups, traj_length_mean, traj_length_max
    invalid_share           share of rows with valid=False
    zero_std_group_share    share of groups with ≥ 2 trajectories whose episode returns
                            are all equal: no episode-level signal
advantages (the ones the trainer uses)
    adv_mean, adv_std, adv_abs_mean
    zero_adv_share          share of rows with |A| ≤ 1e-9
    small_adv_share         share of rows with |A| < 0.01 (the rows LOOP would drop)

An estimator adds its own keys through its spec's ``diagnostics`` (GiGPO: step groups
and its two advantage levels, see `credit.gigpo.diagnostics`); pass ``estimator=`` and
its parameters to get them.
"""

from __future__ import annotations

import numpy as np

from .batch import StepBatch, episode_returns, normalize_in_groups
from .registry import check_params, estimate, spec

ZERO_TOLERANCE = 1e-9
SMALL_ADVANTAGE = 0.01  # LOOP's drop threshold


def diagnose(batch: StepBatch, advantages=None, estimator: str | None = None, **params) -> dict[str, float | int]:
    """Flat dict of credit diagnostics (keys in the module docstring).

    Args:
        batch: the step rows.
        advantages: one per row, the ones the trainer will use; None computes them
            with ``estimator``.
        estimator: a registered estimator whose own diagnostics are added; ``params``
            are its parameters (as given to `credit.estimate`).
    """
    if estimator is not None:
        check_params(estimator, params)
    elif params:
        raise TypeError(f"diagnose got estimator parameters {sorted(params)} but no estimator=")
    if advantages is None:
        if estimator is None:
            raise TypeError("diagnose needs advantages, or an estimator= to compute them")
        advantages = estimate(estimator, batch, **params)
    advantages = np.asarray(advantages, dtype=np.float64)
    if advantages.shape != (len(batch),):
        raise ValueError(f"advantages has shape {advantages.shape}; expected ({len(batch)},), one per step row")
    metrics: dict[str, float | int] = {
        "credit/rows": len(batch),
        "credit/trajectories": batch.n_trajectories,
        "credit/groups": batch.n_groups,
        "credit/traj_length_mean": mean(batch.traj_length),
        "credit/traj_length_max": int(batch.traj_length.max(initial=0)),
        "credit/invalid_share": mean(~batch.valid),
        "credit/zero_std_group_share": zero_std_group_share(batch, batch.reward),
        "credit/adv_mean": mean(advantages),
        "credit/adv_std": std(advantages),
        "credit/adv_abs_mean": mean(np.abs(advantages)),
        "credit/zero_adv_share": mean(np.abs(advantages) <= ZERO_TOLERANCE),
        "credit/small_adv_share": mean(np.abs(advantages) < SMALL_ADVANTAGE),
    }
    own = spec(estimator).diagnostics if estimator is not None else None
    if own is not None:
        metrics.update(own(batch, advantages, **params))
    return metrics


def zero_std_group_share(batch: StepBatch, reward) -> float:
    """Share of multi-trajectory groups whose episode returns (Σ_t reward) are all equal."""
    if batch.n_groups == 0:
        return 0.0
    episode_return = episode_returns(batch, reward)
    centred = normalize_in_groups(episode_return, batch.traj_group, batch.n_groups, "mean", singleton_rule="zero")
    spread = np.bincount(batch.traj_group, weights=np.abs(centred), minlength=batch.n_groups)
    multi = batch.group_size > 1
    return mean(spread[multi] == 0) if np.any(multi) else 0.0


def mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else 0.0


def std(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.std()) if values.size else 0.0
