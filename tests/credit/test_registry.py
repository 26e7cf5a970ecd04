"""register / available / estimate: the contract other packages rely on."""

import numpy as np
import pytest

from steprl import credit
from steprl.credit import registry
from steprl.credit.config import CreditConfig

BATCH = credit.StepBatch(["g", "g", "g"], ["a", "a", "b"], [0, 1, 0], [1.0, 2.0, 0.5], ["x", "y", "x"])


def test_builtin_estimators_are_available():
    assert credit.available() == ["gae", "gagpo", "gigpo", "graphgpo", "grpo", "hgpo", "loop", "pgpo", "proxmo", "rloo", "spa"]


def test_unknown_estimator_lists_the_available_ones():
    with pytest.raises(ValueError,
                       match="unknown credit estimator 'ppo'; available: gae, gagpo, gigpo, graphgpo, grpo, hgpo, loop, pgpo, proxmo, rloo, spa"):
        credit.estimate("ppo", BATCH)


def test_unknown_parameter_is_named():
    with pytest.raises(TypeError, match=r"estimator 'grpo' got unknown parameter 'gama'; it accepts: eps, normalize"):
        credit.estimate("grpo", BATCH, gama=0.9)
    with pytest.raises(TypeError,
                       match="estimator 'rloo' got unknown parameter 'normalize'; it accepts: no parameters"):
        credit.estimate("rloo", BATCH, normalize="mean")


def test_check_params_validates_before_any_work():
    credit.check_params("gigpo", {"gamma": 0.9, "similarity": True})  # no error
    with pytest.raises(TypeError, match="estimator 'spa' got unknown parameter 'lam'; it accepts: alpha, beta, gamma"):
        credit.check_params("spa", {"lam": 0.9})
    with pytest.raises(ValueError, match="unknown credit estimator 'GiGPO'"):
        credit.check_params("GiGPO", {})


def test_estimate_needs_a_step_batch():
    with pytest.raises(TypeError, match=r"needs a credit\.StepBatch, got dict"):
        credit.estimate("grpo", {"reward": [1.0]})


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_ESTIMATORS", dict(registry._ESTIMATORS))
    monkeypatch.setattr(registry, "_PARAMETERS", dict(registry._PARAMETERS))
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))


def test_register_a_new_estimator(scratch_registry):
    @credit.register("discounted_return")
    def advantages(batch, *, gamma=0.9):
        return credit.step_returns(batch, gamma)

    assert "discounted_return" in credit.available()
    # a: r = 1, 2 → R_0 = 1 + 0.5·2 = 2, R_1 = 2; b: 0.5
    np.testing.assert_allclose(credit.estimate("discounted_return", BATCH, gamma=0.5), [2.0, 2.0, 0.5])
    with pytest.raises(TypeError, match="got unknown parameter 'lam'; it accepts: gamma"):
        credit.estimate("discounted_return", BATCH, lam=0.5)


def test_register_rejects_duplicates_and_bad_signatures(scratch_registry):
    with pytest.raises(ValueError, match="credit estimator 'grpo' is already registered"):
        credit.register("grpo")(lambda batch: batch.reward)
    with pytest.raises(TypeError, match="the first parameter must be the StepBatch"):
        credit.register("no_batch")(lambda *, gamma=1.0: None)


def test_estimate_checks_what_an_estimator_returns(scratch_registry):
    credit.register("too_short")(lambda batch: np.zeros(len(batch) - 1))
    credit.register("nan")(lambda batch: np.full(len(batch), np.nan))
    with pytest.raises(ValueError, match=r"estimator 'too_short' returned shape \(2,\); expected \(3,\)"):
        credit.estimate("too_short", BATCH)
    with pytest.raises(FloatingPointError, match="estimator 'nan' returned nan at row 0"):
        credit.estimate("nan", BATCH)


def test_credit_config_checks_params_and_says_when_text_anchors_are_needed():
    from steprl.credit.config import CreditConfig

    assert CreditConfig(estimator="gigpo", params={"similarity": True}).text_anchors is True
    assert CreditConfig(estimator="gigpo").text_anchors is False
    assert CreditConfig(estimator="loop").effective_drop_threshold == 0.01
    assert CreditConfig(estimator="grpo").effective_drop_threshold is None
    with pytest.raises(ValueError, match="gamm"):
        CreditConfig(estimator="gigpo", params={"gamm": 0.9})


def test_builtin_specs_say_what_each_estimator_needs_and_does():
    assert credit.spec("spa").head == "progress" and credit.spec("spa").needs == {"progress"}
    assert credit.spec("gae").head == "value" and credit.spec("gae").needs == {"value"}
    assert credit.spec("loop").drop_threshold == 0.01 and credit.spec("rloo").drop_threshold is None
    gigpo = credit.spec("gigpo")
    assert gigpo.diagnostics is not None and gigpo.head is None
    assert gigpo.uses_text_anchors({"similarity": True}) and not gigpo.uses_text_anchors({})
    for name in ("grpo", "rloo", "loop", "spa", "gae"):
        assert credit.spec(name).diagnostics is None and not credit.spec(name).uses_text_anchors({}), name


def test_register_checks_its_spec(scratch_registry):
    with pytest.raises(ValueError, match="head='critic' is not one of progress, value"):
        credit.register("x", head="critic")
    with pytest.raises(ValueError, match="needs=\\['reward_model'\\] names unknown fields"):
        credit.register("x", needs=["reward_model"])
    with pytest.raises(ValueError, match="drop_threshold=-1 must be >= 0"):
        credit.register("x", drop_threshold=-1)
    credit.register("with_head", head="value", drop_threshold=0.2)(lambda batch: batch.value)
    assert credit.spec("with_head").needs == {"value"}
    credit.register("needs_value_no_head", needs=["value"])(lambda batch: batch.value)
    with pytest.raises(ValueError, match="needs the step rows' value, which only a head fills"):
        CreditConfig(estimator="needs_value_no_head")
    assert CreditConfig(estimator="with_head").effective_drop_threshold == 0.2
    assert CreditConfig(estimator="with_head", drop_threshold=0.0).effective_drop_threshold == 0.0
    credit.unregister("with_head")
    with pytest.raises(ValueError, match="unknown credit estimator 'with_head'"):
        credit.spec("with_head")
