"""HGPO against hand-computed cases and the official algorithm written as loops (credit/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from steprl import credit
from steprl.credit.reference import hgpo_loop


def make_batch(rows):
    group_id, traj_id, step, reward, anchor, valid = (list(c) for c in zip(*rows))
    return credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid)


def columns(rows):
    return [list(c) for c in zip(*rows)]


# one group, three trajectories over anchors; only the last step is rewarded
#   a: s0 s1 s2   R = 1        b: s0 s1 s3   R = 0        c: s0 s4   R = 0
HAND = [("g", "a", 0, 0.0, "s0", True), ("g", "a", 1, 0.0, "s1", True), ("g", "a", 2, 1.0, "s2", True),
        ("g", "b", 0, 0.0, "s0", True), ("g", "b", 1, 0.0, "s1", True), ("g", "b", 2, 0.0, "s3", True),
        ("g", "c", 0, 0.0, "s0", True), ("g", "c", 1, 0.0, "s4", True)]


def test_hand_computed_levels_and_weights():
    # γ = 1, mean_norm, α = 1: R_t = 1 on every row of a, 0 elsewhere.
    # level 1: (s0) {a0 1, b0 0, c0 0} → a0 +2/3, b0 c0 −1/3; (s1) {a1 1, b1 0} → ±1/2; s2, s3, s4 alone
    # level 2: (s0 s1) {a1, b1} → ±1/2; level 3: (s0 s1 s2) a alone, (s0 s1 s3) b alone
    # a1: items (1, +1/2) w 2 and (2, +1/2) w 3 → (2·½ + 3·½) / (5 + ε)
    adv = credit.estimate("hgpo", make_batch(HAND), gamma=1.0, mode="mean_norm", history_length=2, invalid_penalty=0.0)
    eps = 1e-6
    expected = [2 / 3 * 2 / (2 + eps), 2.5 / (5 + eps), 0.0, -1 / 3 * 2 / (2 + eps), -2.5 / (5 + eps), 0.0,
                -1 / 3 * 2 / (2 + eps), 0.0]
    np.testing.assert_allclose(adv, expected, rtol=1e-12)
    # history_length = 0: level 1 only, GiGPO's step groups
    adv0 = credit.estimate("hgpo", make_batch(HAND), gamma=1.0, mode="mean_norm", history_length=0,
                           invalid_penalty=0.0)
    np.testing.assert_allclose(adv0, [2 / 3 * 2 / (2 + eps), 0.5 * 2 / (2 + eps), 0, -1 / 3 * 2 / (2 + eps),
                                      -0.5 * 2 / (2 + eps), 0, -1 / 3 * 2 / (2 + eps), 0], rtol=1e-12)


def test_singleton_groups_zero_spread_and_lone_rows_give_zero():
    lone = [("g", "a", 0, 0.0, "s0", True), ("g", "a", 1, 1.0, "s1", True)]  # K = 1, distinct anchors
    assert credit.estimate("hgpo", make_batch(lone)).tolist() == [0.0, 0.0]
    same = [(g, t, s, r, a, True) for t in ("a", "b", "c") for g, s, r, a in (("g", 0, 0.0, "x"), ("g", 1, 1.0, "y"))]
    assert credit.estimate("hgpo", make_batch(same)).tolist() == [0.0] * 6  # identical trajectories
    # with the base group, a K = 1 group of one row passes its return through (mean 0, std 1)
    one = [("g", "a", 0, 1.0, "s0", True)]
    assert credit.estimate("hgpo", make_batch(one), base_group=True).tolist() == pytest.approx([1 / (1 + 1e-6) ** 2], rel=1e-12)  # one item, weight 1: v / (1 + ε)


def test_invalid_action_penalty_lowers_the_return_before_discounting():
    rows = [("g", "a", 0, 0.0, "s0", False), ("g", "a", 1, 1.0, "s1", True),
            ("g", "b", 0, 0.0, "s0", True), ("g", "b", 1, 1.0, "s1", True)]
    adv = credit.estimate("hgpo", make_batch(rows), gamma=1.0, mode="mean_norm", invalid_penalty=0.5)
    # level 1 at s0: R = 0.5 vs 1 → ∓0.25 (w 2); s1: 1 vs 1 → 0; level 2 (s0 s1): 1 vs 1 → 0
    np.testing.assert_allclose(adv, [-0.25 * 2 / (2 + 1e-6), 0, 0.25 * 2 / (2 + 1e-6), 0], rtol=1e-12)


def test_parameters_are_checked():
    batch = make_batch(HAND)
    with pytest.raises(ValueError, match="mode='std'"):
        credit.estimate("hgpo", batch, mode="std")
    with pytest.raises(ValueError, match="history_length=-1"):
        credit.estimate("hgpo", batch, history_length=-1)
    with pytest.raises(TypeError, match="unknown parameter 'history'"):
        credit.estimate("hgpo", batch, history=2)


def random_rows(rng, text: bool):
    rows = []
    for group in range(int(rng.integers(1, 5))):
        for member in range(int(rng.integers(1, 6))):
            for step in range(int(rng.integers(1, 9))):
                state = int(rng.integers(3))
                rows.append((group, group * 10 + member, step, float(rng.choice([0.0, 1.0, -0.5, 2.0])),
                             f"state {state}" if text else state, bool(rng.random() > 0.15)))
    return [rows[i] for i in rng.permutation(len(rows))]


@pytest.mark.parametrize("seed", range(16))
def test_matches_the_official_algorithm_as_loops(seed):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, text=bool(seed % 2))
    params = {"history_length": int(rng.integers(0, 5)), "gamma": float(rng.choice([0.5, 0.95, 1.0])),
              "mode": str(rng.choice(["mean_norm", "mean_std_norm"])),
              "length_weight_alpha": float(rng.choice([0.0, 1.0, 2.0])), "base_group": bool(rng.random() > 0.5),
              "invalid_penalty": float(rng.choice([0.0, 0.1]))}
    np.testing.assert_allclose(credit.estimate("hgpo", make_batch(rows), **params), hgpo_loop(*columns(rows), **params),
                               rtol=1e-9, atol=1e-9)


def test_row_order_does_not_change_any_row():
    rng = np.random.default_rng(3)
    rows = random_rows(rng, text=False)
    order = rng.permutation(len(rows))
    a = credit.estimate("hgpo", make_batch(rows), base_group=True)
    b = credit.estimate("hgpo", make_batch([rows[i] for i in order]), base_group=True)
    assert np.array_equal(a[order], b)


def test_diagnostics_report_each_level():
    metrics = credit.diagnose(make_batch(HAND), np.zeros(8), estimator="hgpo", history_length=2)
    # level 1: a0 b0 c0 a1 b1 in clusters of ≥ 2 (5 of 8 rows); level 2: a1 b1 (2 of 8); level 3: none
    assert metrics["credit/hgpo_level1_share"] == pytest.approx(5 / 8)
    assert metrics["credit/hgpo_level2_share"] == pytest.approx(2 / 5)  # of the 5 rows at step ≥ 1
    assert metrics["credit/hgpo_level3_share"] == 0.0
