"""GRPO, RLOO and LOOP against advantages worked out by hand.

The batch (rows in deliberately scrambled order):
    group g1, K = 3:  a: r = [0, 1]      R = 1
                      b: r = [0, 0, 3]   R = 3
                      c: r = [2]         R = 2      mean 2, unbiased std 1
    group g2, K = 1:  d: r = [0.5, 0.25] R = 0.75   (singleton group)
    group g3, K = 2:  e: r = [1]         R = 1
                      f: r = [0, 1]      R = 1      (all returns equal: std 0)
"""

import numpy as np
import pytest

from steprl import credit

EPS = 1e-6
ROWS = [  # (group_id, traj_id, step, reward)
    ("g1", "b", 2, 3.0), ("g3", "f", 1, 1.0), ("g1", "a", 0, 0.0), ("g2", "d", 1, 0.25), ("g1", "c", 0, 2.0),
    ("g1", "b", 0, 0.0), ("g3", "e", 0, 1.0), ("g1", "a", 1, 1.0), ("g2", "d", 0, 0.5), ("g1", "b", 1, 0.0),
    ("g3", "f", 0, 0.0),
]


def make_batch(rows):
    group_id, traj_id, step, reward = (list(column) for column in zip(*rows))
    return credit.StepBatch(group_id, traj_id, step, reward, anchor=["s"] * len(rows))


def expected_rows(per_trajectory, rows=ROWS):
    return np.array([per_trajectory[row[1]] for row in rows])


def test_grpo_mean_std_hand_computed():
    adv = credit.estimate("grpo", make_batch(ROWS))
    # g1: (R − 2) / (1 + ε); g2 singleton: mean 0, std 1 → 0.75 / (1 + ε); g3: std 0 → exactly 0
    expected = {"a": -1 / (1 + EPS), "b": 1 / (1 + EPS), "c": 0.0, "d": 0.75 / (1 + EPS), "e": 0.0, "f": 0.0}
    np.testing.assert_allclose(adv, expected_rows(expected), rtol=1e-12, atol=1e-15)
    assert adv.dtype == np.float64


def test_grpo_mean_only_drops_the_division():
    adv = credit.estimate("grpo", make_batch(ROWS), normalize="mean")
    expected = {"a": -1.0, "b": 1.0, "c": 0.0, "d": 0.75, "e": 0.0, "f": 0.0}
    np.testing.assert_allclose(adv, expected_rows(expected), rtol=1e-12, atol=1e-15)


def test_grpo_all_equal_returns_give_exact_zero_not_nan():
    rows = [("g", t, 0, 0.1) for t in "abc"] + [("g", t, 1, 0.2) for t in "abc"]  # R = 0.1 + 0.2 each
    adv = credit.estimate("grpo", make_batch(rows))
    assert np.all(adv == 0.0)


def test_grpo_eps_parameter():
    adv = credit.estimate("grpo", make_batch(ROWS), eps=1.0)
    # g1 std 1 → (R − 2)/2;  g2 singleton → 0.75/2
    expected = {"a": -0.5, "b": 0.5, "c": 0.0, "d": 0.375, "e": 0.0, "f": 0.0}
    np.testing.assert_allclose(adv, expected_rows(expected), rtol=1e-12)


def test_grpo_statistics_are_per_trajectory_not_per_row():
    # a has 3 rows with R = 3, b has 1 row with R = 1: trajectory mean 2 (a row mean would be 2.5)
    rows = [("g", "a", 0, 1.0), ("g", "a", 1, 1.0), ("g", "a", 2, 1.0), ("g", "b", 0, 1.0)]
    adv = credit.estimate("grpo", make_batch(rows), normalize="mean")
    np.testing.assert_allclose(adv, [1.0, 1.0, 1.0, -1.0])


def test_rloo_hand_computed():
    adv = credit.estimate("rloo", make_batch(ROWS))
    # g1: a: 1 − (3 + 2)/2 = −1.5, b: 3 − (1 + 2)/2 = 1.5, c: 2 − (1 + 3)/2 = 0; g2 (K = 1): A = R; g3: 0
    expected = {"a": -1.5, "b": 1.5, "c": 0.0, "d": 0.75, "e": 0.0, "f": 0.0}
    np.testing.assert_allclose(adv, expected_rows(expected), rtol=1e-12, atol=1e-15)


def test_rloo_two_trajectories_gamma_free():
    rows = [("g", "a", 0, 5.0), ("g", "b", 0, 1.0), ("g", "b", 1, 1.0)]  # R = 5, 2
    adv = credit.estimate("rloo", make_batch(rows))
    np.testing.assert_allclose(adv, [3.0, -3.0, -3.0])  # 5 − 2, 2 − 5


def test_loop_advantage_is_rloo():
    batch = make_batch(ROWS)
    np.testing.assert_array_equal(credit.estimate("loop", batch), credit.estimate("rloo", batch))


def test_loop_keep_mask_drops_small_advantages():
    adv = credit.estimate("loop", make_batch(ROWS))
    keep = credit.keep_mask(adv)
    # c, e, f have A = 0 → dropped; a, b, d kept (|A| ≥ 0.01)
    np.testing.assert_array_equal(keep, expected_rows({"a": True, "b": True, "c": False, "d": True, "e": False,
                                                       "f": False}))
    np.testing.assert_array_equal(credit.keep_mask([0.0099, -0.01, 0.5, -0.0]), [False, True, True, False])
    np.testing.assert_array_equal(credit.keep_mask(adv, threshold=1.0), np.abs(adv) >= 1.0)
    assert credit.loop.keep_mask is credit.keep_mask
    with pytest.raises(ValueError, match="threshold=-1"):
        credit.keep_mask(adv, threshold=-1)


def test_shuffled_rows_give_the_same_advantage_per_row():
    batch = make_batch(ROWS)
    permutation = [5, 2, 9, 0, 10, 7, 1, 3, 8, 4, 6]
    shuffled = make_batch([ROWS[i] for i in permutation])
    for name in ("grpo", "rloo", "loop"):
        np.testing.assert_array_equal(credit.estimate(name, shuffled), credit.estimate(name, batch)[permutation])


def test_k_equals_one_everywhere():
    rows = [("g1", "a", 0, 2.0), ("g2", "b", 0, -1.0), ("g2", "b", 1, 0.5)]
    batch = make_batch(rows)
    np.testing.assert_allclose(credit.estimate("rloo", batch), [2.0, -0.5, -0.5])
    np.testing.assert_allclose(credit.estimate("grpo", batch), np.array([2.0, -0.5, -0.5]) / (1 + EPS))
    np.testing.assert_allclose(credit.estimate("grpo", batch, normalize="mean"), [2.0, -0.5, -0.5])
