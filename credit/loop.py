"""LOOP (Chen et al. 2025, AppWorld; docs/algorithms.md § LOOP).

Advantage: exactly RLOO (`credit/rloo.py`), no std normalization (the paper reports
that adding it cost 9 points of task goal completion).

Rollouts with |A| < 0.01 carry no signal and are dropped from the update. Dropping
is not the same as a zero advantage (a dropped row leaves the loss's token-mean
denominator too), so the estimator returns the advantages and the trainer drops rows
with the mask:

    adv = credit.estimate("loop", batch)
    keep = credit.keep_mask(adv)          # |A| ≥ 0.01; same value on every row of a trajectory
    rows_to_train = np.flatnonzero(keep)
"""

from __future__ import annotations

import numbers

import numpy as np

from . import rloo
from .batch import StepBatch
from .registry import register

DROP_THRESHOLD = 0.01  # |A| below this carries no signal (the paper's value)


@register("loop", drop_threshold=DROP_THRESHOLD, details=rloo.details)
def advantages(batch: StepBatch) -> np.ndarray:
    """LOOP advantage of each step row: the RLOO advantage of its trajectory."""
    return rloo.advantages(batch)


def keep_mask(advantages, threshold: float = DROP_THRESHOLD) -> np.ndarray:
    """Bool per row: True where |A| ≥ threshold (LOOP trains on these rows, drops the rest)."""
    if not isinstance(threshold, numbers.Real) or threshold < 0:
        raise ValueError(f"threshold={threshold!r} must be a number ≥ 0")
    return np.abs(np.asarray(advantages, dtype=np.float64)) >= threshold
