"""credit.diagnose on a batch whose statistics are worked out by hand."""

import math

import numpy as np
import pytest

from steprl import credit

# group g: a: s0 s1, r = 0 1; b: s0 s2 s1, r = 0 0 0 (b's step 1 invalid, λ = 0 below)
# group h: c, d: one step each, r = 1 and 1 (equal returns: no episode-level signal)
ROWS = [("g", "a", 0, 0.0, "s0", True), ("g", "a", 1, 1.0, "s1", True), ("g", "b", 0, 0.0, "s0", True),
        ("g", "b", 1, 0.0, "s2", False), ("g", "b", 2, 0.0, "s1", True), ("h", "c", 0, 1.0, "t", True),
        ("h", "d", 0, 1.0, "t", True)]


def make_batch():
    group_id, traj_id, step, reward, anchor, valid = (list(column) for column in zip(*ROWS))
    return credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid)


def test_diagnose_hand_computed():
    metrics = credit.diagnose(make_batch(), estimator="gigpo", gamma=1.0, normalize="mean", invalid_penalty=0.0)
    assert metrics["credit/rows"] == 7 and metrics["credit/trajectories"] == 4 and metrics["credit/groups"] == 2
    assert metrics["credit/traj_length_mean"] == pytest.approx(7 / 4) and metrics["credit/traj_length_max"] == 3
    assert metrics["credit/invalid_share"] == pytest.approx(1 / 7)
    assert metrics["credit/zero_std_group_share"] == pytest.approx(1 / 2)  # h has R = 1, 1
    # step groups: (g,s0) 2 rows, (g,s1) 2 rows, (g,s2) 1 row, (h,t) 2 rows
    assert metrics["credit/step_groups"] == 4
    assert metrics["credit/step_group_size_hist_1"] == pytest.approx(1 / 4)
    assert metrics["credit/step_group_size_hist_2"] == pytest.approx(3 / 4)
    assert metrics["credit/step_group_size_hist_3_4"] == 0.0 and metrics["credit/step_group_size_hist_17_plus"] == 0.0
    assert metrics["credit/step_group_size_mean"] == pytest.approx(7 / 4) and metrics["credit/step_group_size_max"] == 2
    assert metrics["credit/nonsingleton_share"] == pytest.approx(6 / 7)
    # mean mode: A^E = R − 0.4 over g's rows (1,1,0,0,0) → 0.6 0.6 −0.4 −0.4 −0.4; h: 0 0
    episode = np.array([0.6, 0.6, -0.4, -0.4, -0.4, 0.0, 0.0])
    assert metrics["credit/adv_episode_mean"] == pytest.approx(episode.mean())
    assert metrics["credit/adv_episode_std"] == pytest.approx(episode.std())
    # A^S: (g,s0) {1, 0} → ±0.5; (g,s1) {1, 0} → ±0.5; (g,s2) → 0; (h,t) {1, 1} → 0
    step = np.array([0.5, 0.5, -0.5, 0.0, -0.5, 0.0, 0.0])
    assert metrics["credit/adv_step_mean"] == pytest.approx(step.mean(), abs=1e-15)
    assert metrics["credit/adv_step_std"] == pytest.approx(step.std())
    combined = episode + step
    assert metrics["credit/adv_mean"] == pytest.approx(combined.mean(), abs=1e-15)
    assert metrics["credit/adv_abs_mean"] == pytest.approx(np.abs(combined).mean())
    share = np.divide(np.abs(step), np.abs(episode) + np.abs(step), out=np.zeros(7), where=combined != 0)
    assert metrics["credit/adv_step_share"] == pytest.approx(share.mean())
    assert metrics["credit/zero_adv_share"] == pytest.approx(2 / 7)  # the two rows of h
    assert all(isinstance(value, (int, float)) for value in metrics.values())


def test_diagnose_uses_the_given_advantages():
    advantages = [0.0, 0.005, 1.0, -1.0, 0.0, -0.02, 3.0]
    metrics = credit.diagnose(make_batch(), advantages)
    assert metrics["credit/zero_adv_share"] == pytest.approx(2 / 7)
    assert metrics["credit/small_adv_share"] == pytest.approx(3 / 7)  # |A| < 0.01: what LOOP drops
    assert metrics["credit/adv_mean"] == pytest.approx(np.mean(advantages))
    assert metrics["credit/adv_std"] == pytest.approx(np.std(advantages))
    with pytest.raises(ValueError, match=r"advantages has shape \(2,\); expected \(7,\)"):
        credit.diagnose(make_batch(), [0.0, 1.0])


def test_diagnose_rejects_unknown_gigpo_parameters():
    with pytest.raises(TypeError, match="gama"):
        credit.diagnose(make_batch(), estimator="gigpo", gama=0.9)


def test_diagnose_big_step_groups_land_in_the_right_bucket():
    n = 20  # one state visited by 20 trajectories of one group
    batch = credit.StepBatch(["g"] * n, list(range(n)), [0] * n, [float(i % 2) for i in range(n)], ["s"] * n)
    metrics = credit.diagnose(batch, estimator="gigpo")
    assert metrics["credit/step_group_size_hist_17_plus"] == 1.0 and metrics["credit/step_group_size_max"] == 20
    assert metrics["credit/nonsingleton_share"] == 1.0
    # R = 0/1 alternating, 10 each: A^E = ±0.5 / std(ddof=1) with std = √(20·0.25/19); A^S the same (γ irrelevant)
    expected = 0.5 / (math.sqrt(20 * 0.25 / 19) + 1e-6)
    assert metrics["credit/adv_episode_std"] == pytest.approx(expected)
    assert metrics["credit/adv_step_std"] == pytest.approx(expected)


def test_generic_diagnostics_carry_no_estimator_keys():
    advantages = [0.0, 0.005, 1.0, -1.0, 0.0, -0.02, 3.0]
    metrics = credit.diagnose(make_batch(), advantages)
    assert sorted(metrics) == sorted(f"credit/{k}" for k in (
        "rows", "trajectories", "groups", "traj_length_mean", "traj_length_max", "invalid_share",
        "zero_std_group_share", "adv_mean", "adv_std", "adv_abs_mean", "zero_adv_share", "small_adv_share"))
    # raw rewards: group g returns 1 and 0 (no penalty applied), h 1 and 1
    assert metrics["credit/zero_std_group_share"] == pytest.approx(1 / 2)
    grpo = credit.diagnose(make_batch(), estimator="grpo", normalize="mean")
    assert not any("step" in key or "episode" in key for key in grpo)
    with pytest.raises(TypeError, match="no estimator="):
        credit.diagnose(make_batch(), advantages, gamma=0.9)


def test_gigpo_zero_std_share_uses_its_penalized_returns():
    # with λ = 1, b's invalid step makes g's returns 1 vs −1 (still spread); h stays tied
    penalized = credit.diagnose(make_batch(), estimator="gigpo", invalid_penalty=1.0)
    assert penalized["credit/zero_std_group_share"] == pytest.approx(1 / 2)
    tied = credit.StepBatch(["g", "g"], ["a", "b"], [0, 0], [1.0, 0.0], ["s", "s"], valid=[True, True])
    assert credit.diagnose(tied, estimator="gigpo", invalid_penalty=1.0)["credit/zero_std_group_share"] == 0.0
    invalid = credit.StepBatch(["g", "g"], ["a", "b"], [0, 0], [1.0, 0.0], ["s", "s"], valid=[False, True])
    # a: 1 − 1 = 0 = b's return under GiGPO's penalty; the raw returns differ
    assert credit.diagnose(invalid, estimator="gigpo", invalid_penalty=1.0)["credit/zero_std_group_share"] == 1.0
    assert credit.diagnose(invalid, [0.0, 0.0])["credit/zero_std_group_share"] == 0.0
