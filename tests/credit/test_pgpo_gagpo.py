"""PGPO and GAGPO (no public code: docs/algorithms.md's description) by hand and against loops."""

from __future__ import annotations

import numpy as np
import pytest

from steprl import credit
from steprl.credit.reference import gagpo_loop, pgpo_loop

# one group: a: s_a -> s_b, reward 1 at the end (success); b: s_a -> s_c, no reward
HAND = [(0, 0, 0, 0.0, "a", True, True), (0, 0, 1, 1.0, "b", True, True),
        (0, 1, 0, 0.0, "a", True, False), (0, 1, 1, 0.0, "c", True, False)]


def make_batch(rows):
    g, t, s, r, a, v, ok = (list(c) for c in zip(*rows))
    return credit.StepBatch(g, t, s, r, a, valid=v, success=ok)


def test_gagpo_by_hand():
    # γ = λ = 1: R = 1 1 0 0; V(a) = ½, V(b) = 1, V(c) = 0; δ = ½, 0, −½, 0; GAE λ=1 the same; group mean 0
    adv = credit.estimate("gagpo", make_batch(HAND), gamma=1.0, lam=1.0, normalize="mean")
    np.testing.assert_allclose(adv, [0.5, 0.0, -0.5, 0.0], atol=1e-15)


def test_pgpo_by_hand():
    # A^S: group (a) R 1 vs 0 -> ±½; Φ(a) = ½, Φ(b) = 1, Φ(c) = 0; δ = ½, 1 − 1, −½, 0 − 0
    # A^φ in step group (a): ±½; p = ½ -> (1 − p)² = ¼: A = ±(½ + ⅛)
    adv = credit.estimate("pgpo", make_batch(HAND), gamma=1.0, normalize="mean")
    np.testing.assert_allclose(adv, [0.625, 0.0, -0.625, 0.0], atol=1e-15)
    all_won = [row[:6] + (True,) for row in HAND]  # p = 1: no shaping left
    np.testing.assert_allclose(credit.estimate("pgpo", make_batch(all_won), gamma=1.0, normalize="mean"),
                               [0.5, 0.0, -0.5, 0.0], atol=1e-15)
    with pytest.raises(ValueError, match="pgpo needs each row's episode outcome"):
        credit.estimate("pgpo", credit.StepBatch([0], [0], [0], [1.0], ["a"]))


def test_pgpo_last_step_uses_the_final_reward_without_the_invalid_penalty():
    # b's last action is invalid: R_t (penalty 0.1) = −0.1 −0.1 … but δ on the last step is r_final − Φ(c) (Eq. 7)
    rows = [HAND[0], HAND[1], HAND[2], (0, 1, 1, 0.0, "c", False, False)]
    details = credit.details("pgpo", make_batch(rows), gamma=1.0, normalize="mean", invalid_penalty=0.1)
    np.testing.assert_allclose(details["phi"], [0.5 - 0.05, 1.0, 0.5 - 0.05, -0.1], atol=1e-15)
    np.testing.assert_allclose(details["delta"][3], 0.0 - (-0.1), atol=1e-15)  # r_final = 0, not −0.1
    np.testing.assert_allclose(details["delta"][1], 1.0 - 1.0, atol=1e-15)


def random_rows(rng):
    rows = []
    for group in range(int(rng.integers(1, 5))):
        for member in range(int(rng.integers(1, 6))):
            length = int(rng.integers(1, 8))
            won = bool(rng.random() > 0.5)
            for step in range(length):
                rows.append((group, group * 10 + member, step, float(won and step == length - 1),
                             f"s{rng.integers(4)}", bool(rng.random() > 0.15), won))
    return [rows[i] for i in rng.permutation(len(rows))]


@pytest.mark.parametrize("seed", range(12))
def test_vectorized_matches_loops(seed):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng)
    columns = [list(c) for c in zip(*rows)]
    normalize = str(rng.choice(["mean", "mean_std"]))
    gamma = float(rng.choice([0.9, 1.0]))
    np.testing.assert_allclose(credit.estimate("gagpo", make_batch(rows), gamma=gamma, lam=0.8, normalize=normalize),
                               gagpo_loop(*columns[:6], gamma=gamma, lam=0.8, normalize=normalize),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(credit.estimate("pgpo", make_batch(rows), gamma=gamma, normalize=normalize),
                               pgpo_loop(*columns, gamma=gamma, normalize=normalize), rtol=1e-9, atol=1e-9)
