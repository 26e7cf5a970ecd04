"""The vectorized estimators against their readable references (credit/reference.py) on random batches."""

from __future__ import annotations

import numpy as np
import pytest

from steprl import credit
from steprl.credit import reference


def random_rows(seed: int):
    """Rows (group, traj, step, reward, anchor, valid, progress, value), shuffled; groups of 1-4 trajectories."""
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(int(rng.integers(1, 6))):
        for member in range(int(rng.integers(1, 5))):
            for step in range(int(rng.integers(1, 10))):
                rows.append((f"g{group}", f"g{group}/{member}", step, float(rng.choice([0.0, 1.0, -0.5, 2.0])),
                             f"s{rng.integers(4)}", bool(rng.random() > 0.2), float(rng.normal()),
                             float(rng.normal())))
    return [rows[i] for i in rng.permutation(len(rows))]


def batch_of(rows):
    g, t, s, r, a, v, p, val = (list(c) for c in zip(*rows))
    return credit.StepBatch(g, t, s, r, a, valid=v, progress=p, value=val), (g, t, s, r, a, v, p, val)


@pytest.mark.parametrize("seed", range(10))
def test_estimators_match_their_references(seed):
    batch, (g, t, s, r, a, v, p, val) = batch_of(random_rows(seed))
    for normalize in ("mean", "mean_std"):
        np.testing.assert_allclose(credit.estimate("grpo", batch, normalize=normalize),
                                   reference.grpo_loop(g, t, s, r, normalize=normalize), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(credit.estimate("rloo", batch), reference.rloo_loop(g, t, s, r), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(credit.estimate("loop", batch), reference.rloo_loop(g, t, s, r), rtol=1e-9, atol=1e-9)
    for gamma in (1.0, 0.9):
        np.testing.assert_allclose(credit.estimate("spa", batch, gamma=gamma, beta=0.3),
                                   reference.spa_loop(g, t, s, p, v, beta=0.3, gamma=gamma), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(credit.estimate("gae", batch, gamma=gamma, lam=0.8),
                                   reference.gae_loop(t, s, r, val, gamma=gamma, lam=0.8), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(credit.estimate("gigpo", batch, gamma=0.9),
                               reference.gigpo_loop(g, t, s, r, a, v, gamma=0.9), rtol=1e-9, atol=1e-9)


def test_references_by_hand():
    # one group: a returns 1 (two steps), b returns 0; a singleton group c returns 2
    g, t, s = ["x", "x", "x", "y"], ["a", "a", "b", "c"], [0, 1, 0, 0]
    r = [0.0, 1.0, 0.0, 2.0]
    assert reference.rloo_loop(g, t, s, r) == [1.0, 1.0, -1.0, 2.0]
    assert reference.grpo_loop(g, t, s, r, normalize="mean") == [0.5, 0.5, -0.5, 2.0]
    std = (0.5 ** 2 * 2) ** 0.5  # unbiased std of (1, 0)
    assert reference.grpo_loop(g, t, s, r) == pytest.approx([0.5 / (std + 1e-6)] * 2 + [-0.5 / (std + 1e-6),
                                                                                           2 / (1 + 1e-6)])
    # GAE, γ = λ = 1: return-to-go minus V
    assert reference.gae_loop(["a", "a"], [0, 1], [0.0, 1.0], [0.2, 0.5], gamma=1.0, lam=1.0) == pytest.approx(
        [0.8, 0.5])
