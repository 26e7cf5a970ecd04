"""HGPO (ICLR 2026, arXiv 2602.22817): step credit from a hierarchy of history-matched step groups.

docs/algorithms.md § Step-level methods after GiGPO. The official code is verl-agent's
``recipe/hgpo/core_hgpo.py`` (``hgpo_advantage_estimate``); this module follows it and
matches its per-row outputs (``credit/reference.py: hgpo_loop`` is that algorithm as plain
loops, and the tests compare). Its run script's defaults: ``history_length=2``,
``mode="mean_std_norm"``, ``length_weight_alpha=1.0``, ``base_group=False``, γ = 0.95,
invalid-action penalty 0.1 (the paper's setup, §5.1: success reward 10, invalid action
−0.1, γ = 0.95, α = 1, memory of 2 or 4 steps). Equation numbers below are the paper's
(§4.2, Eq. 3-7; Eq. 8 is the clipped policy objective, not this estimator). Steps, per
group of K trajectories of one task:

0. Invalid-action penalty: r_t ← r_t − λ for rows with valid=False (as ``credit.gigpo``;
   the paper's reward setup, not one of its equations).
1. Step returns R_t = Σ_{k≥t} γ^{k−t} r_k (§4.2, GiGPO's discounted return).
2. Levels k = 1 .. H+1 (H = ``history_length``, the paper's memory length): the rows of the
   group whose last k anchors (this step's and the k−1 before it, same trajectory) are
   identical form a level-k cluster (Eq. 3-5: the context operator C_k, the groups G_k^H and their
   nesting; the paper's level index is our k − 1). A row at step t has levels
   1 .. min(H+1, t+1). Level 1 is GiGPO's step group.
3. In each cluster of ≥ 2 rows: a_k = (R_t − mean) / (std + ε) (``mode="mean_std_norm"``,
   population std as the official code's ``std(unbiased=False)``) or R_t − mean
   (``"mean_norm"``). Clusters of one row give no value. (The per-level advantage A_k^H
   of §4.2, Eq. 6 by the numbering; the material we read did not show that number.)
4. The row's advantage is the weighted mean of its non-zero values, weights (k+1)^α
   (the aggregation of Eq. 7, with the code's weights; see below):
       A_t = Σ_{k: a_k≠0} w_k a_k / (Σ_{k: a_k≠0} w_k + ε),   w_k = (k+1)^α   (α = ``length_weight_alpha``)
   and 0 when no value is non-zero. With ``base_group=True`` the episode advantage enters as
   level 0 (weight 1^α = 1): GiGPO's A^E as the official code computes it, statistics over the
   group's step rows (unbiased std), a group of one row gets mean 0, std 1.

Where the paper's equations differ from the official code (we follow the code):
- Level weights (Eq. 7): the paper indexes levels by the number of earlier states matched,
  k' = 0..H, and weighs level k' by (k'+1)^α normalized over all H+1 levels. The code
  indexes by anchors matched, k = k'+1, and weighs (k+1)^α = (k'+2)^α: for α = 1, H = 2
  the levels weigh 2:3:4 in the code and 1:2:3 in Eq. 7.
- Which levels count (Eq. 7): the paper normalizes over all H+1 levels; the code only over
  the levels with a non-zero value (clusters of one row and exact zeros drop out), plus ε.
  The paper's implementation notes say zero-advantage groups are skipped, which is the code.
- Early steps: the context operator (Eq. 3-5) takes the k' states before s_t; the code
  gives a row at step t < k' no such level (no padding).
- ``base_group`` (the episode advantage as level 0) is not in Eq. 7; the paper reports
  that adding the trajectory-level advantage mostly hurt (its ablation).
- The paper's σ (as the summaries we read give it) does not say which std; the code's is
  the population std.

Deliberate differences from the official code, both about rounding, not the algorithm:
- A cluster whose returns are all equal gives exactly 0 (the mean is taken relative to a
  member); the official code's float32 mean can leave ~1e-8 there, which its division by
  (0 + ε) blows up to noise of order 0.01.
- Everything is float64; the official code works in float32.
The penalty is subtracted from r_t before R_t is computed (the docs/algorithms.md reading,
as for GiGPO; the verl-agent trainer subtracts it from the already discounted R_t).
"""

from __future__ import annotations

import numpy as np

from .batch import (
    StepBatch,
    check_finite,
    check_positive,
    check_unit_interval,
    discounted_suffix_sum,
    factorize,
    factorize_pairs,
    normalize_in_groups,
)
from .gigpo import episode_advantage_over_rows, penalized_reward
from .registry import register

MODES = {"mean_std_norm": "mean_std", "mean_norm": "mean"}


def diagnostics(batch: StepBatch, advantages, *, history_length: int = 2, **params) -> dict[str, float]:
    """HGPO's own diagnostics: ``credit/hgpo_level{k}_share``, the share of rows in a level-k cluster of ≥ 2 rows."""
    sizes = _level_cluster_sizes(batch, history_length)
    return {f"credit/hgpo_level{k}_share": float(np.mean(size >= 2)) if size.size else 0.0
            for k, size in enumerate(sizes, start=1)}


def details(batch: StepBatch, *, history_length: int = 2, gamma: float = 0.95, mode: str = "mean_std_norm",
            length_weight_alpha: float = 1.0, base_group: bool = False, epsilon: float = 1e-6,
            invalid_penalty: float = 0.1) -> dict[str, np.ndarray]:
    """HGPO's per-step quantities (``credit.details("hgpo", ...)``), row order.

        R_t             discounted step return (after the invalid-action penalty)
        level0          ``base_group=True`` only: the episode advantage (weight 1)
        level{k}        a_k, the row's value at level k = 1..H+1 (0 in a cluster of one row;
                        NaN where the row has no level k: step t < k−1)
        level{k}_size   rows in the row's level-k cluster (NaN where it has no level k)
        levels_counted  how many levels had a non-zero value; A is their (k+1)^α-weighted mean
    """
    parts: dict = {}
    _compute(batch, history_length, gamma, mode, length_weight_alpha, base_group, epsilon, invalid_penalty, parts)
    return parts


@register("hgpo", diagnostics=diagnostics, details=details)
def advantages(batch: StepBatch, *, history_length: int = 2, gamma: float = 0.95, mode: str = "mean_std_norm",
               length_weight_alpha: float = 1.0, base_group: bool = False, epsilon: float = 1e-6,
               invalid_penalty: float = 0.1) -> np.ndarray:
    """HGPO advantage of each step row (module docstring, steps 0-4).

    Args:
        history_length: H; levels k = 1..H+1 match the last k anchors (official name).
        gamma: discount γ of the step returns.
        mode: "mean_std_norm" or "mean_norm" (official names).
        length_weight_alpha: α of the level weights (k+1)^α, k = anchors matched (the code's
            weights; Eq. 7 of the paper has (k'+1)^α with k' = k − 1); 0 weighs levels alike.
        base_group: add the episode advantage as level 0.
        epsilon: ε of the std division and of the weight normalization.
        invalid_penalty: λ subtracted from the reward of rows with valid=False.
    """
    return _compute(batch, history_length, gamma, mode, length_weight_alpha, base_group, epsilon, invalid_penalty)


def _compute(batch: StepBatch, history_length: int, gamma: float, mode: str, length_weight_alpha: float,
             base_group: bool, epsilon: float, invalid_penalty: float, _parts: dict | None = None) -> np.ndarray:
    """The advantages; `_parts` (a dict) receives the per-step quantities of :func:`details` too."""
    if not isinstance(history_length, (int, np.integer)) or history_length < 0:
        raise ValueError(f"history_length={history_length!r} must be an int >= 0")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {sorted(MODES)}")
    check_unit_interval("gamma", gamma)
    check_positive("epsilon", epsilon)
    check_finite("length_weight_alpha", length_weight_alpha)
    check_finite("invalid_penalty", invalid_penalty)
    n = len(batch)
    if n == 0:
        if _parts is not None:
            _parts.update({"R_t": np.zeros(0), **({"level0": np.zeros(0)} if base_group else {}),
                           **{f"level{k}{suffix}": np.zeros(0) for k in range(1, history_length + 2)
                              for suffix in ("", "_size")}, "levels_counted": np.zeros(0, dtype=np.int64)})
        return np.zeros(0)
    normalize = MODES[mode]
    reward = batch.canonical(penalized_reward(batch, invalid_penalty))  # canonical order from here on
    step_return = discounted_suffix_sum(batch, reward, gamma)
    numerator, weights = np.zeros(n), np.zeros(n)
    if _parts is not None:
        _parts["R_t"] = batch.to_rows(step_return)
        counted = np.zeros(n, dtype=np.int64)

    if base_group:  # level 0: the episode advantage, statistics over the group's rows (one row: mean 0, std 1)
        value = episode_advantage_over_rows(batch, reward, normalize, epsilon)
        _accumulate(numerator, weights, np.arange(n), value, 1.0)
        if _parts is not None:
            _parts["level0"] = batch.to_rows(value)
            counted += value != 0

    reached = 0
    for k, rows, code, n_codes in _levels(batch, history_length):
        value = normalize_in_groups(step_return[rows], code, n_codes, normalize, epsilon, singleton_rule="zero",
                                    ddof=0)
        _accumulate(numerator, weights, rows, value, float(k + 1) ** length_weight_alpha)
        if _parts is not None:
            reached = k
            level, size = np.full(n, np.nan), np.full(n, np.nan)
            level[rows] = value
            size[rows] = np.bincount(code, minlength=n_codes)[code]
            _parts[f"level{k}"], _parts[f"level{k}_size"] = batch.to_rows(level), batch.to_rows(size)
            counted[rows] += value != 0
    advantage = np.divide(numerator, weights + epsilon, out=np.zeros(n), where=weights > 0)
    if _parts is not None:
        for k in range(reached + 1, history_length + 2):  # levels no row reaches
            _parts[f"level{k}"], _parts[f"level{k}_size"] = np.full(n, np.nan), np.full(n, np.nan)
        _parts["levels_counted"] = batch.to_rows(counted)
    return batch.to_rows(advantage)


def _accumulate(numerator: np.ndarray, weights: np.ndarray, rows: np.ndarray, value: np.ndarray, weight: float):
    """Add one level's non-zero values (the official aggregation skips zeros) with their weight."""
    nonzero = value != 0
    numerator[rows] += weight * value * nonzero
    weights[rows] += weight * nonzero


def _levels(batch: StepBatch, history_length: int):
    """Per level k = 1..H+1: (k, canonical rows that have level k, their cluster codes, number of codes).

    Level 1 codes (group, anchor at t); level k codes (level k−1 cluster, anchor at t−k+1), for
    rows at step t ≥ k−1. The previous step of the same trajectory sits at canonical position
    ``step_offset[t−1] + traj_rank[traj]``.
    """
    anchor_code, _ = factorize(batch.anchor, "anchor")
    anchor = batch.canonical(anchor_code)
    step = batch.canonical(batch.step)
    rank = batch.traj_rank[batch.canonical(batch.traj_code)]
    rows = np.arange(len(batch))
    code, n_codes = factorize_pairs(batch.canonical(batch.group_code), batch.n_groups, anchor)
    yield 1, rows, code, n_codes
    for k in range(2, history_length + 2):
        keep = step[rows] >= k - 1
        rows, code = rows[keep], code[keep]
        if rows.size == 0:
            return
        earlier = batch.step_offset[step[rows] - (k - 1)] + rank[rows]  # the step k−1 before, same trajectory
        code, n_codes = factorize_pairs(code, n_codes, anchor[earlier])
        yield k, rows, code, n_codes


def _level_cluster_sizes(batch: StepBatch, history_length: int) -> list[np.ndarray]:
    """Per level, the size of each row's cluster (rows that have the level)."""
    return [np.bincount(code, minlength=n_codes)[code] for _k, _rows, code, n_codes in _levels(batch, history_length)]
