"""SPA's progress estimator in its reference form (trainer/progress.py) on a tiny Qwen2 model (raw token ids)."""

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from tests.trainer import Row, make_rows, single_thread, tiny_model  # noqa: F401  (single_thread: autouse fixture)
from steprl.trainer.config import HeadConfig, TrainerConfig
from steprl.trainer.heads import ProgressEstimator, make_heads
from steprl.trainer.policy import Policy
from steprl.trainer.progress import LogWarmup, ReferenceProgressEstimator

END = 2  # the "end of turn" token of these hand-made responses


def reference_estimator(**settings):
    policy = Policy.from_model(tiny_model(), TrainerConfig())
    config = HeadConfig(mode="reference", reference={"warmup_steps": 0, **settings})
    estimator = ReferenceProgressEstimator(policy, config, token_budget=512, seed=3)
    estimator.build()
    return policy, estimator


def trajectories(n_traj=6, steps=4, seed=2):
    """Rows of ``n_traj`` trajectories; every other one is rewarded 1 at its last step."""
    rows = make_rows([(6, 3)] * (n_traj * steps), seed=seed)
    for i, row in enumerate(rows):
        row.traj_id, row.step = f"t{i // steps}", i % steps
        row.reward = float((i // steps) % 2) if row.step == steps - 1 else 0.0
    return rows


def test_estimator_reads_the_lm_head_logits_at_each_turns_last_token():
    """A 2-turn trajectory by hand: one pass over the whole conversation, as the reference reads it, and
    the linear head on the logits at the end of each assistant turn, equal our per-step-row ĉ_t."""
    policy, estimator = reference_estimator()
    g = torch.Generator().manual_seed(5)
    prompt0 = torch.randint(3, 300, (7,), generator=g).tolist()
    response0 = [*torch.randint(3, 300, (2,), generator=g).tolist(), END]
    observation1 = torch.randint(3, 300, (4,), generator=g).tolist()
    response1 = [*torch.randint(3, 300, (3,), generator=g).tolist(), END]
    prompt1 = prompt0 + response0 + observation1  # the second prompt holds the whole history
    rows = [Row(prompt0, response0, traj_id=0, step=0), Row(prompt1, response1, traj_id=0, step=1)]

    conversation = torch.tensor([prompt1 + response1])
    with torch.no_grad():
        logits = estimator.model.model(input_ids=conversation).logits[0]  # [L, vocab]: the LM head's output
        turn_ends = [len(prompt0) + len(response0) - 1, conversation.shape[1] - 1]
        assert conversation[0, turn_ends].tolist() == [END, END]
        by_hand = (logits[turn_ends] @ estimator.linear.weight[0] + estimator.linear.bias).numpy()
    np.testing.assert_allclose(estimator.predict(rows), by_hand, rtol=1e-5, atol=1e-5)
    # the same read one row at a time (no padding) and in another order
    np.testing.assert_allclose(estimator.predict(rows[::-1])[::-1], by_hand, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose([estimator.predict([row])[0] for row in rows], by_hand, rtol=1e-5, atol=1e-5)
    # a vocabulary-sized linear head on a separate copy of the policy
    assert estimator.linear.in_features == 300 and estimator.model.model is not policy.model
    assert all(not a.data_ptr() == b.data_ptr() for a, b in zip(estimator.model.model.parameters(),
                                                                 policy.model.parameters()))


def test_the_minibatch_gradient_is_that_of_the_summed_squared_error():
    _, estimator = reference_estimator()
    rows = trajectories(n_traj=3)
    local = np.repeat(np.arange(3), 4)
    targets = torch.tensor([0.0, 1.0, 0.0])
    params = estimator.parameters()
    for p in params:
        p.grad = None
    loss = estimator.backward_minibatch(rows, local, targets)
    surrogate = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    from steprl.trainer.batching import collate

    c_hat = estimator._contributions(collate(rows))  # one micro-batch, full graph
    sums = torch.zeros(3).index_add_(0, torch.as_tensor(local), c_hat)
    direct = ((sums - targets) ** 2).mean()
    direct.backward()
    assert loss == pytest.approx(float(direct.detach()), rel=1e-5)
    for a, p in zip(surrogate, params):
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6)


def test_fit_lowers_the_loss_on_a_fixed_set_and_trains_every_weight():
    policy, estimator = reference_estimator(lr=1e-3, epochs=40, batch_size=6)
    before_policy = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    before = {n: p.detach().clone() for n, p in estimator.model.model.named_parameters()}
    rows = trajectories()
    metrics = estimator.fit(rows)
    assert metrics["progress/fit_steps"] == 40 and metrics["progress/fit_trajectories"] == 6
    assert metrics["progress/target_var"] == pytest.approx(0.25)
    assert metrics["progress/fit_mse"] < 0.01 * metrics["progress/fit_mse_before"], metrics  # measured 8e-4 vs 0.56
    assert metrics["progress/fit_loss_last"] < metrics["progress/fit_loss_first"]
    sums = estimator.predict(rows).reshape(6, 4).sum(axis=1)
    np.testing.assert_allclose(sums, [0, 1, 0, 1, 0, 1], atol=0.15)
    # the whole copy trained (not only the linear head); the policy did not move
    after = dict(estimator.model.model.named_parameters())
    assert all(not torch.equal(before[n], after[n]) for n in before if "norm" not in n)
    assert all(torch.equal(before_policy[n], p) for n, p in policy.model.named_parameters())


def test_frozen_estimator_saves_reloads_and_detects_tampering(tmp_path):
    policy, estimator = reference_estimator(lr=1e-3, epochs=2, batch_size=3)
    rows = trajectories()
    estimator.fit(rows)
    estimator.freeze()
    assert not any(p.requires_grad for p in estimator.parameters())
    with pytest.raises(RuntimeError, match="frozen"):
        estimator.fit(rows)
    directory = estimator.save(tmp_path / "progress_estimator", metrics={"progress/fit_mse": 0.1})
    assert {"model", "linear.safetensors", "meta.json"} <= {p.name for p in directory.iterdir()}
    state = estimator.state_dict()
    assert state["dir"] == "progress_estimator" and "linear.safetensors" in state["files"]

    again = ReferenceProgressEstimator(policy, estimator.config, token_budget=512, seed=99)  # another seed: no matter
    again.load_state_dict(state)
    again.load(directory)
    assert again.frozen
    np.testing.assert_array_equal(again.predict(rows), estimator.predict(rows))

    stale = ReferenceProgressEstimator(policy, estimator.config)
    stale.load_state_dict({"files": {**state["files"], "linear.safetensors": {"bytes": 1, "sha256": "0"}}})
    with pytest.raises(ValueError, match="linear.safetensors"):
        stale.load(directory)  # a checkpoint that recorded another estimator
    (directory / "linear.safetensors").write_bytes(b"changed")
    with pytest.raises(ValueError, match="changed since it was fitted"):
        ReferenceProgressEstimator(policy, estimator.config).load(directory)


def test_zero_init_starts_every_contribution_at_zero():
    _, default = reference_estimator()
    _, zero = reference_estimator(init="zero")
    rows = trajectories(n_traj=2)
    assert np.all(zero.predict(rows) == 0.0) and np.all(default.predict(rows) != 0.0)
    assert zero.linear.weight.requires_grad  # zero, not frozen


def test_log_warmup_is_deepspeeds_warmup_lr():
    warmup = LogWarmup(500)
    assert warmup(0) == 0.0 and warmup(499) == pytest.approx(math.log(500) / math.log(500))
    assert warmup(10) == pytest.approx(math.log(11) / math.log(500)) and warmup(500) == warmup(10**6) == 1.0
    assert LogWarmup(0)(0) == LogWarmup(1)(0) == 1.0


def test_make_heads_picks_the_mode_and_names_the_components():
    from steprl.credit.config import CreditConfig

    policy = Policy.from_model(tiny_model(), TrainerConfig())
    reference = TrainerConfig(progress_head={"mode": "reference"})
    spa = make_heads(CreditConfig(estimator="spa"), policy, reference)
    assert list(spa) == ["head"] and isinstance(spa["head"], ReferenceProgressEstimator)
    gae = make_heads(CreditConfig(estimator="gae", reward="spa"), policy, reference)
    assert list(gae) == ["head", "progress_head"] and gae["head"].name == "value"
    assert isinstance(gae["progress_head"], ReferenceProgressEstimator)
    grpo = make_heads(CreditConfig(estimator="grpo", reward="spa"), policy, TrainerConfig())
    assert list(grpo) == ["progress_head"] and isinstance(grpo["progress_head"], ProgressEstimator)  # online
    assert make_heads(CreditConfig(estimator="grpo"), policy, reference) == {}


def test_config_errors_name_the_field():
    assert HeadConfig().mode == "online"  # existing configs keep today's head
    settings = HeadConfig(mode="reference").reference
    assert (settings.lr, settings.weight_decay, settings.warmup_steps, settings.epochs, settings.max_grad_norm,
            settings.rollouts_per_task, settings.temperature, settings.init) == (3e-6, 0.01, 500, 1, 1.0, 5, 1.0,
                                                                                "default")
    cases = [({"mode": "reference", "lr": 1e-4}, "set reference.lr instead"),
             ({"mode": "reference", "solver": "ridge"}, "solver='ridge' is a setting of the online progress head"),
             ({"reference": {"epochs": 3}}, "mode='online'"),
             ({"mode": "reference", "reference": {"lrr": 1}}, "reference.lrr"),
             ({"mode": "reference", "reference": {"rollouts_per_task": 0}}, "rollouts_per_task"),
             ({"mode": "offline"}, "mode")]
    for fields, message in cases:
        with pytest.raises(ValidationError, match=message):
            TrainerConfig(progress_head=fields)
    with pytest.raises(ValidationError, match="value head is online"):
        TrainerConfig(value_head={"mode": "reference"})


def test_the_shipped_config_is_the_reference_form_in_the_quickstart_setting():
    from steprl.config import load_run_config

    cfg = load_run_config("configs/textworld/spa_reference.yaml")
    quickstart = load_run_config("configs/quickstart.yaml")
    assert cfg.trainer.progress_head.mode == "reference" and cfg.credit.heads == ("value", "progress")
    assert (cfg.credit.estimator, cfg.credit.reward) == ("gae", "spa")  # PPO with a critic, as the reference
    # β = 0, sums shifted to the outcome, and a KL anchor: what holds online (the spa_ref_kl row of the bench suite)
    assert cfg.credit.reward_params == {"alpha": 1.0, "beta": 0.0, "grounding": "reference", "sum_to_outcome": True}
    assert cfg.credit.params == {"gamma": 0.99, "lam": 0.95}
    for section in ("env", "sft", "eval", "tiny_model"):
        assert getattr(cfg, section) == getattr(quickstart, section), section
    assert cfg.agent.model_copy(update={"model": quickstart.agent.model}) == quickstart.agent  # its own run dir
    assert cfg.run.model_copy(update={"dir": quickstart.run.dir}) == quickstart.run
    assert cfg.trainer.kl_coef == 0.1
    assert cfg.trainer.model_copy(update={"progress_head": quickstart.trainer.progress_head,
                                          "kl_coef": quickstart.trainer.kl_coef}) == quickstart.trainer
    # the other two ways to train on the same rewards are one override away
    from steprl.config import load_run_config as load

    spa = load("configs/textworld/spa_reference.yaml", ["credit.estimator=spa", "credit.reward=env",
                                                       "credit.reward_params={}",
                                                       "credit.params={gamma: 0.99, grounding: reference}"])
    grpo = load("configs/textworld/spa_reference.yaml", ["credit.estimator=grpo", "credit.params={}"])
    assert spa.credit.heads == grpo.credit.heads == ("progress",)
