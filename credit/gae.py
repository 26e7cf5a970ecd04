"""GAE: PPO's critic-based advantage (docs/algorithms.md § PPO with a critic; Schulman et al. 2016).

    δ_t = r_t + γ V(s_{t+1}) − V(s_t)
    Â_t = Σ_{l≥0} (γλ)^l δ_{t+l}          (to the end of the trajectory)

at step level: one value per step row (`StepBatch(value=...)`). After a trajectory's
last step, V(s_T) = 0 (terminated). For truncated trajectories pass `last_value`:
one float per row, row order, of which only each trajectory's last row is read, as
the bootstrap V(s_T) (write 0 there for terminated ones). The value-loss target is
`Â_t + V(s_t)`.
"""

from __future__ import annotations

import numpy as np

from .batch import StepBatch, check_unit_interval, discounted_suffix_sum
from .registry import register


def details(batch: StepBatch, *, gamma: float = 1.0, lam: float = 0.95, last_value=None) -> dict[str, np.ndarray]:
    """GAE's per-step quantities (``credit.details("gae", ...)``), row order; A = Σ_l (γλ)^l δ_{t+l}.

        V       the critic's V(s_t)
        V_next  V(s_{t+1}) (the bootstrap after the last step: 0, or ``last_value``)
        delta   the TD error δ_t = r_t + γ·V_next − V
        target  the value target Â_t + V(s_t)
    """
    next_value, td_error, advantage = _parts(batch, gamma, lam, last_value)
    return {"V": np.asarray(batch.value), "V_next": next_value, "delta": td_error, "target": advantage + batch.value}


@register("gae", head="value", details=details)
def advantages(batch: StepBatch, *, gamma: float = 1.0, lam: float = 0.95, last_value=None) -> np.ndarray:
    """GAE advantage of each step row.

    Args:
        gamma: discount γ.
        lam: GAE λ (1 → Monte Carlo return minus V, 0 → one-step TD error).
        last_value: optional bootstrap V(s_T) per row; read on each trajectory's last row only.
    """
    return _parts(batch, gamma, lam, last_value)[2]


def _parts(batch: StepBatch, gamma: float, lam: float, last_value):
    """(V(s_{t+1}), δ_t, Â_t), each one per row in row order."""
    check_unit_interval("gamma", gamma)
    check_unit_interval("lam", lam)
    if batch.value is None:
        raise ValueError("gae needs a critic value per step row: build the batch with StepBatch(..., value=...)")
    # V(s_{t+1}) per row: the value of the trajectory's next step, else the bootstrap (0 when terminated)
    has_next = batch.step < batch.traj_length[batch.traj_code] - 1
    next_position = np.where(has_next, batch.step_offset[batch.step + 1] + batch.traj_rank[batch.traj_code], 0)
    bootstrap = np.zeros(len(batch)) if last_value is None else _bootstrap(last_value, len(batch))
    next_value = np.where(has_next, batch.canonical(batch.value)[next_position], bootstrap)
    td_error = batch.reward + gamma * next_value - batch.value  # δ_t
    return next_value, td_error, batch.to_rows(discounted_suffix_sum(batch, batch.canonical(td_error), gamma * lam))


def _bootstrap(last_value, n: int) -> np.ndarray:
    last_value = np.asarray(last_value, dtype=np.float64)
    if last_value.shape != (n,):
        raise ValueError(f"last_value has shape {last_value.shape}; expected ({n},), one float per step row")
    if not np.all(np.isfinite(last_value)):
        raise ValueError("last_value has non-finite entries")
    return last_value
