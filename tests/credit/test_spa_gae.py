"""SPA and GAE against advantages worked out by hand."""

import numpy as np
import pytest

from steprl import credit

# group g, K = 2:   a: ĉ = 0.2 0.8,      valid T T     → r̃ = ĉ + 0.5·g = 0.7 1.3
#                   b: ĉ = 0.1 0.0 0.3,  valid T F T   → r̃ = 0.6 0.0 0.8
# group h, K = 1:   c: ĉ = 1.0,          valid T       → r̃ = 1.5
SPA_ROWS = [  # (group_id, traj_id, step, progress, valid), scrambled
    ("g", "b", 2, 0.3, True), ("g", "a", 0, 0.2, True), ("h", "c", 0, 1.0, True), ("g", "b", 0, 0.1, True),
    ("g", "a", 1, 0.8, True), ("g", "b", 1, 0.0, False),
]
SPA_KEYS = [(row[1], row[2]) for row in SPA_ROWS]


def spa_batch(rows, reward=None):
    group_id, traj_id, step, progress, valid = (list(column) for column in zip(*rows))
    reward = [0.0] * len(rows) if reward is None else reward
    return credit.StepBatch(group_id, traj_id, step, reward, ["s"] * len(rows), valid=valid, progress=progress)


def per_row(expected, keys):
    return np.array([expected[key] for key in keys])


def test_spa_gamma_one_hand_computed():
    # R̃: a 2.0 1.3; b 1.4 0.8 0.8; c 1.5. Baseline per (group, step index):
    # (g, 0) = mean(2.0, 1.4) = 1.7; (g, 1) = mean(1.3, 0.8) = 1.05; (g, 2) and (h, 0) have one trajectory → A = 0
    expected = {("a", 0): 0.3, ("a", 1): 0.25, ("b", 0): -0.3, ("b", 1): -0.25, ("b", 2): 0.0, ("c", 0): 0.0}
    np.testing.assert_allclose(credit.estimate("spa", spa_batch(SPA_ROWS)), per_row(expected, SPA_KEYS),
                               rtol=1e-12, atol=1e-12)


def test_spa_discounted_hand_computed():
    # γ = 0.5 → R̃: a 0.7 + 0.65 = 1.35, 1.3; b 0.6 + 0.5·0.4 = 0.8, 0 + 0.5·0.8 = 0.4, 0.8
    # (g, 0) = mean(1.35, 0.8) = 1.075; (g, 1) = mean(1.3, 0.4) = 0.85
    expected = {("a", 0): 0.275, ("a", 1): 0.45, ("b", 0): -0.275, ("b", 1): -0.45, ("b", 2): 0.0, ("c", 0): 0.0}
    np.testing.assert_allclose(credit.estimate("spa", spa_batch(SPA_ROWS), gamma=0.5), per_row(expected, SPA_KEYS),
                               rtol=1e-12, atol=1e-12)


def test_spa_alpha_beta_and_env_reward_ignored():
    # α = 2, β = 0 → r̃ = 2ĉ: R̃ a 2.0 1.6; b 0.8 0.6 0.6; (g, 0) mean 1.4, (g, 1) mean 1.1
    batch = spa_batch(SPA_ROWS, reward=[9.0] * len(SPA_ROWS))  # env reward is not part of r̃
    expected = {("a", 0): 0.6, ("a", 1): 0.5, ("b", 0): -0.6, ("b", 1): -0.5, ("b", 2): 0.0, ("c", 0): 0.0}
    np.testing.assert_allclose(credit.estimate("spa", batch, alpha=2.0, beta=0.0), per_row(expected, SPA_KEYS),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(credit.spa.stepwise_reward(batch, alpha=2.0, beta=0.0),
                               2 * np.array([row[3] for row in SPA_ROWS]))


def test_spa_identical_rollouts_give_exact_zero():
    # a group-wide baseline would give step 0 (R̃ = 1.5) +0.375 and step 1 (R̃ = 0.75) −0.375 here
    rows = [("g", t, s, 0.25, True) for t in "abc" for s in range(2)]
    assert np.all(credit.estimate("spa", spa_batch(rows)) == 0.0)


def test_spa_k_equals_one_has_no_baseline_to_compare_with():
    rows = [("g", "a", 0, 0.5, True), ("g", "a", 1, 0.1, False), ("h", "b", 0, 1.0, True)]
    assert np.all(credit.estimate("spa", spa_batch(rows)) == 0.0)


def test_spa_shuffle_permutes():
    permutation = [4, 0, 5, 2, 1, 3]
    np.testing.assert_array_equal(credit.estimate("spa", spa_batch([SPA_ROWS[i] for i in permutation])),
                                  credit.estimate("spa", spa_batch(SPA_ROWS))[permutation])


def test_spa_needs_progress():
    batch = credit.StepBatch(["g"], ["a"], [0], [1.0], ["s"])
    with pytest.raises(ValueError, match=r"spa needs the progress estimator's per-step contributions"):
        credit.estimate("spa", batch)


def test_spa_then_gae_is_the_ppo_variant():
    batch = spa_batch(SPA_ROWS)
    stepwise = batch.replace(reward=credit.spa.stepwise_reward(batch), value=np.zeros(len(SPA_ROWS)))
    # V = 0, γ = λ = 1: GAE is the undiscounted stepwise return R̃_t
    np.testing.assert_allclose(credit.estimate("gae", stepwise, gamma=1.0, lam=1.0),
                               per_row({("a", 0): 2.0, ("a", 1): 1.3, ("b", 0): 1.4, ("b", 1): 0.8, ("b", 2): 0.8,
                                        ("c", 0): 1.5}, SPA_KEYS), rtol=1e-12)


# a: r = 0 1,    V = 0.5 0.8     b: r = 1 0 2,   V = 1 1 1     (γ = 0.9, λ = 0.5 → γλ = 0.45)
GAE_ROWS = [  # (traj_id, step, reward, value), scrambled
    ("b", 1, 0.0, 1.0), ("a", 1, 1.0, 0.8), ("b", 0, 1.0, 1.0), ("a", 0, 0.0, 0.5), ("b", 2, 2.0, 1.0),
]
GAE_KEYS = [(row[0], row[1]) for row in GAE_ROWS]


def gae_batch(rows):
    traj_id, step, reward, value = (list(column) for column in zip(*rows))
    return credit.StepBatch(["g"] * len(rows), traj_id, step, reward, ["s"] * len(rows), value=value)


def test_gae_hand_computed_terminated():
    # a: δ1 = 1 − 0.8 = 0.2, δ0 = 0 + 0.9·0.8 − 0.5 = 0.22 → A1 = 0.2, A0 = 0.22 + 0.45·0.2 = 0.31
    # b: δ2 = 2 − 1 = 1, δ1 = 0.9 − 1 = −0.1, δ0 = 1 + 0.9 − 1 = 0.9 → A2 = 1, A1 = 0.35, A0 = 0.9 + 0.45·0.35
    expected = {("a", 0): 0.31, ("a", 1): 0.2, ("b", 0): 1.0575, ("b", 1): 0.35, ("b", 2): 1.0}
    np.testing.assert_allclose(credit.estimate("gae", gae_batch(GAE_ROWS), gamma=0.9, lam=0.5),
                               per_row(expected, GAE_KEYS), rtol=1e-12)


def test_gae_bootstrap_for_truncated_trajectories():
    # b truncated with V(s_3) = 2: δ2 = 2 + 0.9·2 − 1 = 2.8 → A1 = −0.1 + 0.45·2.8 = 1.16, A0 = 0.9 + 0.45·1.16
    last_value = [2.0 if key == ("b", 2) else (7.0 if key[1] == 0 else 0.0) for key in GAE_KEYS]  # others ignored
    expected = {("a", 0): 0.31, ("a", 1): 0.2, ("b", 0): 1.422, ("b", 1): 1.16, ("b", 2): 2.8}
    np.testing.assert_allclose(credit.estimate("gae", gae_batch(GAE_ROWS), gamma=0.9, lam=0.5, last_value=last_value),
                               per_row(expected, GAE_KEYS), rtol=1e-12)


def test_gae_limits_lambda_one_and_zero():
    batch = gae_batch(GAE_ROWS)
    # γ = λ = 1: A_t = Σ_{k≥t} r_k − V_t
    np.testing.assert_allclose(credit.estimate("gae", batch, gamma=1.0, lam=1.0),
                               per_row({("a", 0): 0.5, ("a", 1): 0.2, ("b", 0): 2.0, ("b", 1): 1.0, ("b", 2): 1.0},
                                       GAE_KEYS), rtol=1e-12)
    # λ = 0: A_t = δ_t
    np.testing.assert_allclose(credit.estimate("gae", batch, gamma=0.9, lam=0.0),
                               per_row({("a", 0): 0.22, ("a", 1): 0.2, ("b", 0): 0.9, ("b", 1): -0.1, ("b", 2): 1.0},
                                       GAE_KEYS), rtol=1e-12, atol=1e-15)


def test_gae_matches_python_loop_on_long_trajectories():
    rng = np.random.default_rng(7)
    lengths = [200, 3, 1, 77]
    rows = [(f"t{t}", s, float(rng.normal()), float(rng.normal())) for t, length in enumerate(lengths)
            for s in range(length)]
    expected = {}
    for t, length in enumerate(lengths):
        advantage = 0.0
        for s in reversed(range(length)):
            _, _, reward, value = rows[sum(lengths[:t]) + s]
            next_value = rows[sum(lengths[:t]) + s + 1][3] if s + 1 < length else 0.0
            advantage = reward + 0.99 * next_value - value + 0.99 * 0.9 * advantage
            expected[(f"t{t}", s)] = advantage
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    np.testing.assert_allclose(credit.estimate("gae", gae_batch(shuffled), gamma=0.99, lam=0.9),
                               per_row(expected, [(row[0], row[1]) for row in shuffled]), rtol=1e-10, atol=1e-10)


def test_gae_errors():
    batch = credit.StepBatch(["g"], ["a"], [0], [1.0], ["s"])
    with pytest.raises(ValueError, match="gae needs a critic value per step row"):
        credit.estimate("gae", batch)
    with pytest.raises(ValueError, match=r"last_value has shape \(2,\); expected \(5,\)"):
        credit.estimate("gae", gae_batch(GAE_ROWS), last_value=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"lam=2 must be a number in \[0, 1\]"):
        credit.estimate("gae", gae_batch(GAE_ROWS), lam=2)
