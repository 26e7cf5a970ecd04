"""`credit.diagnose`: what a researcher looks at every iteration, as flat loggable numbers.

Keys (all under `credit/`; ints are counts, floats are shares in [0, 1] or statistics
over step rows, population std):

batch shape
    rows, trajectories, groups, traj_length_mean, traj_length_max
    invalid_share           share of rows with valid=False
    zero_std_group_share    share of groups with ≥ 2 trajectories whose episode returns
                            (after the invalid penalty) are all equal: no episode-level signal
GiGPO anchor-state grouping (Eq. 6)
    step_groups             number of step groups
    step_group_size_mean, step_group_size_max
    step_group_size_hist_1, _2, _3_4, _5_8, _9_16, _17_plus
                            share of step groups whose size falls in the bucket
    nonsingleton_share      share of rows in step groups of size ≥ 2 (rows with A^S ≠ 0 possible)
GiGPO advantage levels (Eq. 3, 7)
    adv_episode_mean, adv_episode_std     A^E over rows
    adv_step_mean, adv_step_std           A^S over rows
    adv_step_share          mean over rows of |ω A^S| / (|A^E| + |ω A^S|) (0 where both are 0)
final advantages (`advantages` if given, else GiGPO's A = A^E + ω A^S)
    adv_mean, adv_std, adv_abs_mean
    zero_adv_share          share of rows with |A| ≤ 1e-9
    small_adv_share         share of rows with |A| < 0.01 (the rows LOOP would drop)
"""

from __future__ import annotations

import numpy as np

from . import gigpo
from .batch import StepBatch, episode_returns, normalize_in_groups
from .loop import DROP_THRESHOLD

SIZE_BUCKETS = ((1, 1, "1"), (2, 2, "2"), (3, 4, "3_4"), (5, 8, "5_8"), (9, 16, "9_16"), (17, None, "17_plus"))
ZERO_TOLERANCE = 1e-9


def diagnose(batch: StepBatch, advantages=None, **gigpo_params) -> dict[str, float | int]:
    """Flat dict of credit diagnostics (keys in the module docstring).

    `gigpo_params` are `gigpo`'s parameters (gamma, step_weight, normalize, eps,
    invalid_penalty, similarity, similarity_threshold); they decide the step groups
    and the A^E / A^S statistics. `advantages` (one per row) are the ones the trainer
    will use, from any estimator.
    """
    step_weight = gigpo_params.pop("step_weight", 1.0)
    episode_advantage, step_advantage = gigpo.advantage_levels(batch, **gigpo_params)
    if advantages is None:
        advantages = episode_advantage + step_weight * step_advantage
    advantages = np.asarray(advantages, dtype=np.float64)
    if advantages.shape != (len(batch),):
        raise ValueError(f"advantages has shape {advantages.shape}; expected ({len(batch)},), one per step row")

    step_group, n_step_groups = gigpo.step_groups(
        batch, similarity=gigpo_params.get("similarity", False),
        similarity_threshold=gigpo_params.get("similarity_threshold", 0.95))
    step_group_size = np.bincount(step_group, minlength=n_step_groups)
    weighted_step = np.abs(step_weight * step_advantage)
    magnitude = np.abs(episode_advantage) + weighted_step

    metrics: dict[str, float | int] = {
        "credit/rows": len(batch),
        "credit/trajectories": batch.n_trajectories,
        "credit/groups": batch.n_groups,
        "credit/traj_length_mean": _mean(batch.traj_length),
        "credit/traj_length_max": int(batch.traj_length.max(initial=0)),
        "credit/invalid_share": _mean(~batch.valid),
        "credit/zero_std_group_share": _zero_std_group_share(batch, gigpo_params.get("invalid_penalty", 0.1)),
        "credit/step_groups": n_step_groups,
        "credit/step_group_size_mean": _mean(step_group_size),
        "credit/step_group_size_max": int(step_group_size.max(initial=0)),
    }
    for low, high, label in SIZE_BUCKETS:
        in_bucket = (step_group_size >= low) & (True if high is None else step_group_size <= high)
        metrics[f"credit/step_group_size_hist_{label}"] = _mean(in_bucket)
    metrics.update({
        "credit/nonsingleton_share": _mean(step_group_size[step_group] > 1),
        "credit/adv_episode_mean": _mean(episode_advantage),
        "credit/adv_episode_std": _std(episode_advantage),
        "credit/adv_step_mean": _mean(step_advantage),
        "credit/adv_step_std": _std(step_advantage),
        "credit/adv_step_share": _mean(np.divide(weighted_step, magnitude, out=np.zeros_like(magnitude),
                                                 where=magnitude > 0)),
        "credit/adv_mean": _mean(advantages),
        "credit/adv_std": _std(advantages),
        "credit/adv_abs_mean": _mean(np.abs(advantages)),
        "credit/zero_adv_share": _mean(np.abs(advantages) <= ZERO_TOLERANCE),
        "credit/small_adv_share": _mean(np.abs(advantages) < DROP_THRESHOLD),
    })
    return metrics


def _zero_std_group_share(batch: StepBatch, invalid_penalty: float) -> float:
    """Share of multi-trajectory groups whose episode returns are all equal."""
    if batch.n_groups == 0:
        return 0.0
    episode_return = episode_returns(batch, gigpo.penalized_reward(batch, invalid_penalty))
    centred = normalize_in_groups(episode_return, batch.traj_group, batch.n_groups, "mean", singleton_rule="zero")
    spread = np.bincount(batch.traj_group, weights=np.abs(centred), minlength=batch.n_groups)
    multi = batch.group_size > 1
    return _mean(spread[multi] == 0) if np.any(multi) else 0.0


def _mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else 0.0


def _std(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.std()) if values.size else 0.0
