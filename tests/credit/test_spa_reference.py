"""SPA's stepwise reward in its reference form: the grounding signal, and ``credit.reward: spa`` for any estimator."""

import numpy as np
import pytest
from pydantic import ValidationError

from steprl import credit
from steprl.credit.config import CreditConfig

# a: 3 steps, valid T F F (its last action failed: the reference still grounds it); b: 2 steps, valid F T
ROWS = [("g", "a", 0, 0.1, True, 0.0), ("g", "a", 1, 0.2, False, 0.0), ("g", "a", 2, 0.3, False, 1.0),
        ("g", "b", 1, 0.4, True, 0.0), ("g", "b", 0, -0.5, False, 0.0)]


def batch():
    group_id, traj_id, step, progress, valid, reward = (list(c) for c in zip(*ROWS))
    return credit.StepBatch(group_id, traj_id, step, reward, ["s"] * len(ROWS), valid=valid, progress=progress)


def test_reference_grounding_counts_the_last_step_always():
    b = batch()
    np.testing.assert_array_equal(credit.spa.grounding_signal(b), [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(credit.spa.grounding_signal(b, "reference"), [1, 0, 1, 1, 0])
    # r̃_t = ĉ_t + 0.5·g_t (reference: α = 1, β = 0.5)
    np.testing.assert_allclose(credit.spa.stepwise_reward(b, grounding="reference"),
                               [0.1 + 0.5, 0.2, 0.3 + 0.5, 0.4 + 0.5, -0.5], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="grounding='last'"):
        credit.spa.stepwise_reward(b, grounding="last")
    # the spa estimator takes it as a parameter; its details show the reward it used
    details = credit.details("spa", b, grounding="reference")
    np.testing.assert_allclose(details["stepwise_reward"], credit.spa.stepwise_reward(b, grounding="reference"))
    assert not np.allclose(credit.estimate("spa", b, grounding="reference"), credit.estimate("spa", b))


def test_sum_to_outcome_shifts_each_trajectorys_contributions_to_its_reward():
    b = batch()
    # a: ĉ = 0.1, 0.2, 0.3 (sum 0.6), R = 1 → each + 0.4/3; b: ĉ = 0.4 (step 1), −0.5 (step 0), R = 0 → each + 0.1/2
    shifted = credit.spa.stepwise_reward(b, beta=0.0, sum_to_outcome=True)
    np.testing.assert_allclose(shifted, [0.1 + 0.4 / 3, 0.2 + 0.4 / 3, 0.3 + 0.4 / 3, 0.4 + 0.05, -0.5 + 0.05],
                               rtol=0, atol=1e-15)
    sums = np.bincount(b.traj_code, weights=shifted)
    np.testing.assert_allclose(sums, np.bincount(b.traj_code, weights=np.asarray(b.reward, float)), atol=1e-15)
    # an estimator that overrates every step by the same amount gives exactly the same rewards
    inflated = credit.StepBatch(b.group_id, b.traj_id, b.step, b.reward, ["s"] * len(ROWS), valid=b.valid,
                                progress=np.asarray(b.progress) + 7.0)
    np.testing.assert_allclose(credit.spa.stepwise_reward(inflated, beta=0.0, sum_to_outcome=True), shifted,
                               atol=1e-12)
    # grounding still adds on top, α scales the shifted contributions; the default leaves ĉ as it is
    np.testing.assert_allclose(credit.spa.stepwise_reward(b, alpha=2.0, beta=0.5, sum_to_outcome=True),
                               2 * shifted + 0.5 * credit.spa.grounding_signal(b), atol=1e-15)
    assert not np.allclose(credit.spa.stepwise_reward(b, beta=0.0), shifted)
    CreditConfig(estimator="gae", reward="spa", reward_params={"sum_to_outcome": True, "beta": 0.0})


@pytest.mark.parametrize("estimator, params", [("grpo", {}), ("gae", {"gamma": 0.99, "lam": 0.95}),
                                               ("gigpo", {"gamma": 0.95})])
def test_reward_spa_feeds_the_stepwise_reward_to_any_estimator(estimator, params):
    config = CreditConfig(estimator=estimator, params=params, reward="spa", reward_params={"grounding": "reference"})
    assert "progress" in config.heads
    b = batch()
    if estimator == "gae":
        b = b.replace(value=np.linspace(0, 1, len(ROWS)))
    shaped, metrics = config.shape_rewards(b)
    np.testing.assert_allclose(shaped.reward, b.progress + 0.5 * credit.spa.grounding_signal(b, "reference"))
    assert metrics["credit/stepwise_return_mean"] == pytest.approx(shaped.reward.sum() / 2)
    assert metrics["credit/env_return_mean"] == pytest.approx(0.5)
    np.testing.assert_array_equal(credit.estimate(estimator, shaped, **params),
                                  credit.estimate(estimator, b.replace(reward=shaped.reward), **params))
    assert CreditConfig(estimator=estimator, params=params).shape_rewards(b)[0] is b  # reward: env


def test_reward_config_is_checked_before_work_starts():
    assert CreditConfig().reward == "env" and CreditConfig().heads == ()
    assert CreditConfig(estimator="spa").heads == ("progress",)
    assert CreditConfig(estimator="gae", reward="spa").heads == ("value", "progress")
    cases = [(dict(estimator="spa", reward="spa"), "leave credit.reward=env"),
             (dict(estimator="grpo", reward="spa", reward_params={"gama": 1}),
              "unknown parameter 'gama'.*alpha, beta, grounding"),
             (dict(estimator="grpo", reward="spa", reward_params={"grounding": "x"}), "grounding='x'"),
             (dict(estimator="grpo", reward_params={"beta": 0.1}), "credit.reward is 'env'"),
             (dict(estimator="grpo", reward="dense"), "reward")]
    for fields, message in cases:
        with pytest.raises(ValidationError, match=message):
            CreditConfig(**fields)
