"""Policy, PolicyTrainer, batching, config and heads on a tiny Qwen2 model (raw token ids, no tokenizer)."""

import copy
import gc
import warnings

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from transformers import Qwen2ForCausalLM

from tests.trainer import make_rows, tiny_model, single_thread  # noqa: F401  (single_thread: autouse fixture)
from steprl.trainer.batching import collate, make_micro_batches, plan_micro_batches
from steprl.trainer.config import HeadConfig, TrainerConfig
from steprl.trainer.heads import ProgressEstimator, ValueHead
from steprl.trainer.policy import Policy, PolicyTrainer

SHAPES = [(6, 4), (9, 3), (4, 5), (7, 2), (3, 6), (8, 1)]


def policy_and_trainer(**overrides):
    config = TrainerConfig(**{"lr": 1e-3, "minibatch_size": 64, **overrides})
    policy = Policy.from_model(tiny_model(), config)
    return policy, PolicyTrainer(policy, config)


def sequence_logprobs(policy, rows):
    with torch.no_grad():
        logprobs, _ = policy.token_logprobs(collate(rows), with_entropy=False)
    return logprobs.sum(dim=1)


# -- config -----------------------------------------------------------------------
def test_config_errors_name_the_field_and_allowed_values():
    with pytest.raises(ValidationError) as err:
        TrainerConfig(aggregation="sum")
    assert "aggregation" in str(err.value) and "'token-mean' or 'seq-mean-token-mean'" in str(err.value)
    with pytest.raises(ValidationError, match="dual_clip=0.5 must be > 1"):
        TrainerConfig(dual_clip=0.5)
    with pytest.raises(ValidationError, match="beta2=1.0 must be in"):
        TrainerConfig(betas=(0.9, 1.0))
    with pytest.raises(ValidationError, match="device"):
        TrainerConfig(device="tpu")
    with pytest.raises(ValidationError, match="lora.rank"):
        TrainerConfig(lora={"rank": 8})  # unknown key: the field is `r`
    with pytest.raises(ValidationError, match="micro_batch_tokens"):
        TrainerConfig(micro_batch_tokens=0)
    assert TrainerConfig(dual_clip=3.0).dual_clip == 3.0


# -- batching -----------------------------------------------------------------------
def test_collate_left_pads_prompts_and_right_pads_responses():
    rows = [([5, 6, 7], [8, 9]), ([10], [11, 12, 13])]
    micro = collate(rows, pad_id=0)
    # every response starts at column P = 3 (the longest prompt)
    assert micro.input_ids.tolist() == [[5, 6, 7, 8, 9, 0], [0, 0, 10, 11, 12, 13]]
    assert micro.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
    assert micro.position_ids.tolist() == [[0, 1, 2, 3, 4, 4], [0, 0, 0, 1, 2, 3]]
    assert micro.response_mask.int().tolist() == [[0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 1]]
    assert micro.response_ids.tolist() == [[8, 9, 0], [11, 12, 13]]
    assert micro.loss_mask.int().tolist() == [[1, 1, 0], [1, 1, 1]]
    assert micro.prompt_width == 3
    assert micro.last_prompt_index.tolist() == [2, 2]
    assert micro.last_response_index.tolist() == [4, 5]
    assert collate([([4, 5], [])]).last_response_index.tolist() == [1]  # empty response: the last prompt token
    with pytest.raises(ValueError, match="row 0 has an empty prompt"):
        collate([([], [1])])


def test_micro_batches_respect_the_budget_and_are_deterministic():
    prompts, responses = [10, 3, 7, 7, 2, 10, 5], [0] * 7
    plan = plan_micro_batches(prompts, responses, token_budget=20)
    # longest first, stable: [0, 5] (2×10), [2, 3] (2×7), [6, 1, 4] (3×5)
    assert [g.tolist() for g in plan] == [[0, 5], [2, 3], [6, 1, 4]]
    assert all(len(g) * max(prompts[i] for i in g) <= 20 for g in plan)
    assert [g.tolist() for g in plan_micro_batches(prompts, responses, 20)] == [g.tolist() for g in plan]
    # a row longer than the budget forms its own micro-batch
    assert [g.tolist() for g in plan_micro_batches([30, 4], [0, 0], 20)] == [[0], [1]]
    # the cost is rows × (longest prompt + longest response): 2 × (6 + 4) = 20, though each row is 6 long
    assert [g.tolist() for g in plan_micro_batches([6, 2], [0, 4], 20)] == [[0, 1]]
    assert [g.tolist() for g in plan_micro_batches([6, 2], [0, 4], 19)] == [[0], [1]]
    rows = make_rows(SHAPES)
    assert all(m.num_padded_tokens <= 24 for m in make_micro_batches(rows, 24))


# -- teacher-forced log-probs -------------------------------------------------------------
def test_token_logprobs_equal_manual_log_softmax_gather():
    config = TrainerConfig()
    policy = Policy.from_model(tiny_model(), config)
    rows = make_rows(SHAPES)
    logprobs, entropy = policy.token_logprobs(collate(rows))
    model = policy.model
    for i, row in enumerate(rows):
        ids = torch.tensor([row.prompt_ids + row.response_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        p = len(row.prompt_ids)
        positions = torch.arange(p - 1, p - 1 + len(row.response_ids))
        manual = logp[positions, torch.tensor(row.response_ids)]
        manual_entropy = -(logp[positions].exp() * logp[positions]).sum(-1)
        n = len(row.response_ids)
        assert torch.allclose(logprobs[i, :n], manual, atol=1e-6, rtol=0), (i, logprobs[i, :n] - manual)
        assert torch.allclose(entropy[i, :n], manual_entropy, atol=1e-5, rtol=0)
        assert torch.all(logprobs[i, n:] == 0)


@pytest.mark.parametrize("lora", [False, True])
def test_lm_head_runs_on_the_response_columns_only_with_the_same_logprobs_and_gradient(lora):
    config = TrainerConfig(lora={"enabled": lora})
    policy = Policy.from_model(tiny_model(), config)
    assert policy.keeps_logits  # Qwen2's forward takes logits_to_keep
    rows = make_rows(SHAPES)
    micro = collate(rows)
    seen = []
    head = policy.model.get_output_embeddings()
    handle = head.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))

    def run(keeps_logits):
        policy.keeps_logits = keeps_logits
        policy.model.zero_grad(set_to_none=True)
        logprobs, entropy = policy.token_logprobs(micro, entropy_grad=True)
        (logprobs.sum() + entropy.sum()).backward()
        grads = [p.grad.clone() for p in policy.trainable_parameters()]
        return logprobs.detach(), entropy.detach(), grads

    windowed, full = run(True), run(False)
    handle.remove()
    longest_response = max(r for _, r in SHAPES)
    assert seen == [longest_response + 1, micro.input_ids.shape[1]]  # 7 columns instead of 9 + 6
    assert torch.allclose(windowed[0], full[0], atol=1e-6, rtol=0)
    assert torch.allclose(windowed[1], full[1], atol=1e-5, rtol=0)
    for a, b in zip(windowed[2], full[2]):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_an_empty_response_scores_nothing_and_leaves_the_other_rows_alone():
    policy = Policy.from_model(tiny_model(), TrainerConfig())
    rows = make_rows([(5, 3), (7, 0), (4, 2)], seed=2)
    with torch.no_grad():
        together, entropy = policy.token_logprobs(collate(rows))
        only_empty, _ = policy.token_logprobs(collate([rows[1]]))
        for i in (0, 2):
            alone, _ = policy.token_logprobs(collate([rows[i]]))
            n = len(rows[i].response_ids)
            assert torch.allclose(together[i, :n], alone[0], atol=1e-6, rtol=0)
    assert together.shape == (3, 3) and torch.all(together[1] == 0) and torch.all(entropy[1] == 0)
    assert only_empty.shape == (1, 0)


# -- micro-batching invariance ------------------------------------------------------------
@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean"])
def test_minibatch_gradient_is_the_same_in_1_or_3_micro_batches(aggregation):
    policy, trainer = policy_and_trainer(aggregation=aggregation, entropy_coef=0.01, kl_coef=0.05, dual_clip=3.0)
    rows = make_rows(SHAPES, seed=3)
    advantages = np.array([1.0, -0.5, 2.0, -1.5, 0.3, -0.2])
    prepared = trainer.prepare(rows, advantages)
    prepared.old_logprobs += 0.1 * torch.randn(prepared.old_logprobs.shape, generator=torch.Generator().manual_seed(0))
    indices = np.arange(len(rows))

    def gradients(budget):
        policy.model.zero_grad(set_to_none=True)
        sums = trainer.backward_minibatch(prepared, indices, micro_batch_tokens=budget)
        return sums["loss"], [p.grad.clone() for p in policy.trainable_parameters()]

    assert len(make_micro_batches(rows, 1000, indices)) == 1
    # rows × (longest prompt + longest response): 2 × (9 + 4), 2 × (7 + 5), 2 × (8 + 6) ≤ 30
    assert [m.num_rows for m in make_micro_batches(rows, 30, indices)] == [2, 2, 2]
    loss_1, grads_1 = gradients(1000)
    loss_3, grads_3 = gradients(30)
    assert loss_3 == pytest.approx(loss_1, abs=1e-6)
    worst = max(float((a - b).abs().max()) for a, b in zip(grads_1, grads_3))
    assert worst <= 1e-6, worst
    assert max(float(g.abs().max()) for g in grads_1) > 1e-3  # the gradients are not trivially zero


# -- one model copy with kl_coef = 0 -----------------------------------------------------------
def count_models():
    gc.collect()
    with warnings.catch_warnings():  # isinstance() on some lazy torch modules warns
        warnings.simplefilter("ignore")
        return sum(isinstance(obj, Qwen2ForCausalLM) for obj in gc.get_objects())


@pytest.mark.parametrize(
    "kl_coef, lora, copies",
    [(0.0, False, 1), (0.0, True, 1), (0.01, True, 1), (0.01, False, 2)],
)
def test_model_copies_held_by_the_trainer(kl_coef, lora, copies):
    before = count_models()
    policy, trainer = policy_and_trainer(kl_coef=kl_coef, lora={"enabled": lora, "r": 4})
    modules = [v for v in vars(trainer).values() if isinstance(v, torch.nn.Module)]
    assert modules == []  # the only model lives in trainer.policy (and in trainer.reference for full-FT KL)
    if kl_coef == 0:
        assert trainer.reference is None
    else:
        assert trainer.reference is not None
    metrics = trainer.update(make_rows(SHAPES[:3]), [1.0, -1.0, 0.5])
    assert ("train/kl" in metrics) == (kl_coef > 0)
    assert count_models() - before == copies  # models alive after building the trainer and one update


def test_lora_reference_is_the_base_model_with_adapters_off():
    policy, trainer = policy_and_trainer(kl_coef=0.01, lora={"enabled": True, "r": 4}, lr=1e-2)
    rows = make_rows(SHAPES[:3])
    base = sequence_logprobs(Policy.from_model(tiny_model(), TrainerConfig()), rows)
    trainer.update(rows, [1.0, -1.0, 0.5])
    moved = sequence_logprobs(policy, rows)
    reference = trainer.logprobs_table(trainer.reference, rows).sum(dim=1)
    assert float((moved - base).abs().max()) > 0.1  # the adapters have learned something
    assert torch.allclose(reference, base, atol=1e-5)  # the reference still is the base model


# -- the update ----------------------------------------------------------------------------
@pytest.mark.parametrize("lora", [False, True])
def test_positive_advantage_raises_the_rows_logprob(lora):
    policy, trainer = policy_and_trainer(lr=1e-3 if not lora else 1e-2, lora={"enabled": lora, "r": 4})
    rows = make_rows(SHAPES[:4], seed=1)
    before = sequence_logprobs(policy, rows)
    metrics = trainer.update(rows, [1.0, -1.0, 0.0, 0.0])
    change = sequence_logprobs(policy, rows) - before
    assert change[0] > 1.0, change  # measured +1.55 (full) / +1.87 (LoRA) nats
    assert change[1] < -1.0, change  # measured −1.35 / −1.43
    assert metrics["train/optimizer_steps"] == 1
    assert metrics["train/tokens"] == sum(r for _, r in SHAPES[:4])
    assert metrics["train/clip_frac"] == 0.0 and metrics["train/approx_kl"] == 0.0  # first step: ρ = 1 exactly
    for key in ("train/pg_loss", "train/entropy", "train/grad_norm", "train/lr"):
        assert np.isfinite(metrics[key])


def test_keep_mask_drops_rows_entirely():
    rows = make_rows(SHAPES[:4], seed=2)
    advantages = [1.0, 0.004, -1.0, 0.0]
    keep = np.abs(advantages) >= 0.01
    policy_a, trainer_a = policy_and_trainer(aggregation="seq-mean-token-mean")
    metrics = trainer_a.update(rows, advantages, keep_mask=keep)
    policy_b, trainer_b = policy_and_trainer(aggregation="seq-mean-token-mean")
    trainer_b.update([rows[0], rows[2]], [1.0, -1.0])
    assert metrics["train/rows"] == 2
    for a, b in zip(policy_a.model.parameters(), policy_b.model.parameters()):
        assert torch.equal(a, b)


def test_epochs_minibatches_and_warmup():
    policy, trainer = policy_and_trainer(ppo_epochs=2, minibatch_size=4, warmup_steps=4, lr=1e-3)
    metrics = trainer.update(make_rows(SHAPES), [1.0, -1.0, 0.5, -0.5, 0.2, 0.1])
    assert metrics["train/optimizer_steps"] == 4  # 2 epochs × ceil(6 / 4)
    assert metrics["train/lr"] == pytest.approx(1e-3 * (1 + 2 + 3 + 4) / 4 / 4)  # mean of warm-up lrs
    assert trainer.lr == pytest.approx(1e-3)
    assert metrics["train/clip_frac"] > 0 or metrics["train/approx_kl"] > 0  # later minibatches are off-policy


def test_sampler_logprobs_are_used_when_not_recomputing():
    policy, trainer = policy_and_trainer(recompute_old_logprobs=False)
    rows = make_rows(SHAPES[:2])
    with pytest.raises(ValueError, match="row 0: recompute_old_logprobs=False needs the sampler's log-probs"):
        trainer.prepare(rows, [1.0, 1.0])
    with torch.no_grad():
        exact = policy.token_logprobs(collate(rows))[0]
    for i, row in enumerate(rows):
        row.logprobs = (exact[i, : len(row.response_ids)] - 0.5).tolist()  # a stale sampler
    prepared = trainer.prepare(rows, [1.0, 1.0])
    assert torch.allclose(prepared.old_logprobs[0, :4], exact[0, :4] - 0.5)
    metrics = trainer.update(rows, [1.0, 1.0])
    assert metrics["train/clip_frac"] == 1.0  # ρ = e^0.5 > 1.2 on every token


def test_state_dict_for_engine_merges_lora_without_touching_the_adapter():
    policy, trainer = policy_and_trainer(lora={"enabled": True, "r": 4}, lr=1e-2)
    rows = make_rows(SHAPES[:3])
    trainer.update(rows, [1.0, -1.0, 0.5])
    adapters = {n: p.detach().clone() for n, p in policy.model.named_parameters() if "lora_" in n}
    merged = policy.state_dict_for_engine()
    plain = tiny_model(seed=1)
    assert set(merged) == set(plain.state_dict())
    plain.load_state_dict(merged)
    micro = collate(rows)
    with torch.no_grad():
        expected = policy.token_logprobs(micro)[0]
        policy.model.eval()
        got = Policy(plain, device=policy.device, dtype=torch.float32).token_logprobs(micro)[0]
    assert torch.allclose(got, expected, atol=1e-5)
    for name, param in policy.model.named_parameters():
        if "lora_" in name:
            assert torch.equal(param, adapters[name])
    assert torch.equal(sequence_logprobs(policy, rows), expected.sum(dim=1))  # the policy is unchanged


# -- heads ---------------------------------------------------------------------------------
def trajectories_rows(n_traj=6, steps=4):
    rows = make_rows([(6, 3)] * (n_traj * steps), seed=2)
    for i, row in enumerate(rows):
        row.traj_id, row.step = f"t{i // steps}", i % steps
        row.reward = float((i // steps) % 2) if row.step == steps - 1 else 0.0  # every other trajectory succeeds
    return rows


def test_progress_estimator_fits_final_return_with_the_per_trajectory_loss():
    policy = Policy.from_model(tiny_model(), TrainerConfig())
    rows = trajectories_rows()
    estimator = ProgressEstimator(policy, HeadConfig(lr=3e-3, epochs=100, minibatch_size=3))
    features = estimator.features(rows)
    metrics = estimator.update(rows, features=features)
    assert metrics["progress/mse_before"] == pytest.approx(0.5)  # zero-initialized head: mean of R² over 0/1
    assert metrics["progress/mse"] < 0.01, metrics  # measured 5e-4
    contributions = estimator.predict(rows, features=features).reshape(6, 4).sum(axis=1)
    assert np.allclose(contributions, [0, 1, 0, 1, 0, 1], atol=0.2)


def test_ridge_solver_sets_the_exact_minimizer_of_the_per_trajectory_loss():
    policy = Policy.from_model(tiny_model(), TrainerConfig())
    rows = trajectories_rows()  # 6 trajectories, fewer than the hidden size: an exact fit exists
    estimator = ProgressEstimator(policy, HeadConfig(solver="ridge", ridge=1e-3))
    features = estimator.features(rows)
    metrics = estimator.update(rows, features=features)
    assert metrics["progress/mse_before"] == pytest.approx(0.5)
    # the objective's gradient vanishes at the solution: Σ_τ (Σ_t ĉ_t − R_τ)² + λ‖w‖², λ = ridge·tr(SᵀS)/H
    x = features.double()
    codes = torch.as_tensor(np.repeat(np.arange(6), 4))
    target = torch.tensor([0.0, 1, 0, 1, 0, 1], dtype=torch.float64)
    sums = torch.zeros(6, x.shape[1], dtype=torch.float64).index_add_(0, codes, x)
    lam = 1e-3 * float((sums * sums).sum()) / x.shape[1]
    w = estimator.head.net[-1].weight.detach().double().reshape(-1).requires_grad_()
    b = estimator.head.net[-1].bias.detach().double().requires_grad_()
    objective = ((sums @ w + 4 * b - target) ** 2).sum() + lam * (w * w).sum()
    objective.backward()
    assert float(w.grad.abs().max()) < 1e-4 and abs(float(b.grad)) < 1e-4, (w.grad.abs().max(), b.grad)
    # a tiny penalty fits these 6 trajectories almost exactly, where AdamW needed 200 steps for 5e-4
    exact = ProgressEstimator(policy, HeadConfig(solver="ridge", ridge=1e-9))
    assert exact.update(rows, features=features)["progress/mse"] < 1e-4
    sums_pred = exact.predict(rows, features=features).reshape(6, 4).sum(axis=1)
    assert np.allclose(sums_pred, [0, 1, 0, 1, 0, 1], atol=0.02)


def test_ridge_replay_fits_on_the_last_iterations_and_survives_a_checkpoint():
    policy = Policy.from_model(tiny_model(), TrainerConfig())
    batches = []
    for k in range(3):  # three iterations: other trajectory ids, other outcomes
        rows = trajectories_rows()
        for row in rows:
            row.traj_id = f"it{k}-{row.traj_id}"
            row.reward = float(k == 1) - row.reward if row.step == 3 else 0.0
        batches.append(rows)
    config = HeadConfig(solver="ridge", ridge=1e-3, replay=1)
    estimator = ProgressEstimator(policy, config)
    assert estimator.update(batches[0])["progress/fit_trajectories"] == 6  # nothing to replay yet
    saved = copy.deepcopy(estimator.state_dict())
    assert estimator.update(batches[1])["progress/fit_trajectories"] == 12  # this batch + the last one
    both = ProgressEstimator(policy, HeadConfig(solver="ridge", ridge=1e-3))
    both.update(batches[1] + batches[0])  # one fit on both iterations' trajectories, same order
    assert torch.allclose(estimator.head.net[-1].weight, both.head.net[-1].weight, atol=1e-6)
    assert torch.allclose(estimator.head.net[-1].bias, both.head.net[-1].bias, atol=1e-6)
    assert estimator.update(batches[2])["progress/fit_trajectories"] == 12  # replay=1: iteration 0 has left
    # a head restored from the checkpoint after iteration 0 fits iteration 1 exactly as the original did
    restored = ProgressEstimator(policy, config)
    restored.load_state_dict(saved)
    restored.update(batches[1])
    assert torch.allclose(restored.head.net[-1].weight, both.head.net[-1].weight, atol=1e-6)


def test_ridge_solver_config_is_checked_before_work_starts():
    with pytest.raises(ValueError, match="hidden=0"):
        HeadConfig(solver="ridge", hidden=16)
    with pytest.raises(ValueError, match="progress estimator only"):
        TrainerConfig(value_head={"solver": "ridge"})
    with pytest.raises(ValueError, match="solver"):
        HeadConfig(solver="sgd")
    with pytest.raises(ValueError, match="replay=4"):
        HeadConfig(replay=4)  # replay needs the ridge solver


def test_value_head_regresses_returns_at_the_last_prompt_token():
    policy = Policy.from_model(tiny_model(), TrainerConfig())
    rows = trajectories_rows()
    returns = np.array([float(r.traj_id in ("t1", "t3", "t5")) for r in rows])
    head = ValueHead(policy, HeadConfig(lr=1e-2, epochs=50, minibatch_size=8, value_clip=None))
    old = head.predict(rows)
    assert np.all(old == 0)
    metrics = head.update(rows, returns, old)
    assert metrics["value/mse"] < 0.01, metrics
    # reading at the last prompt token: the response does not change the value
    swapped = [type(r)(r.prompt_ids, [7, 7, 7]) for r in rows]
    assert np.allclose(head.predict(swapped), head.predict(rows), atol=1e-6)


def test_head_reads_where_its_config_says():
    policy = Policy.from_model(tiny_model(), TrainerConfig())
    rows = trajectories_rows()
    swapped = [type(r)(r.prompt_ids, [7, 7, 7]) for r in rows]  # same prompts, other responses
    default = ProgressEstimator(policy, HeadConfig())
    state = ProgressEstimator(policy, HeadConfig(read_at="last_prompt"))
    assert default.read_at == "last_response" and state.read_at == "last_prompt"
    assert torch.equal(state.features(swapped), state.features(rows))  # reads the prompt only
    assert not torch.equal(default.features(swapped), default.features(rows))
    assert torch.equal(state.features(rows), ValueHead(policy, HeadConfig()).features(rows))
    with pytest.raises(ValueError, match="read_at"):
        HeadConfig(read_at="middle")


# -- precision and memory options ------------------------------------------------------------
def test_gradient_checkpointing_gives_the_same_gradient():
    rows = make_rows(SHAPES[:3])
    grads = []
    for checkpointing in (False, True):
        policy, trainer = policy_and_trainer(gradient_checkpointing=checkpointing)
        prepared = trainer.prepare(rows, [1.0, -1.0, 0.5])
        trainer.backward_minibatch(prepared, np.arange(3))
        grads.append([p.grad.clone() for p in policy.trainable_parameters()])
    assert max(float((a - b).abs().max()) for a, b in zip(*grads)) <= 1e-6


@pytest.mark.parametrize("lora", [False, True])
def test_bfloat16_compute_path_runs(lora):
    # the CUDA path's precision setup, exercised on CPU: fp32 master weights + bf16 autocast (full),
    # bf16 frozen base + fp32 adapters (LoRA); log-probs always come out in fp32
    policy, trainer = policy_and_trainer(dtype="bfloat16", lora={"enabled": lora, "r": 4})
    trainable = {p.dtype for p in policy.trainable_parameters()}
    assert trainable == {torch.float32}
    if lora:
        assert {p.dtype for p in policy.model.parameters() if not p.requires_grad} == {torch.bfloat16}
    rows = make_rows(SHAPES[:3])
    logprobs, _ = policy.token_logprobs(collate(rows))
    assert logprobs.dtype == torch.float32
    metrics = trainer.update(rows, [1.0, -1.0, 0.5])
    assert all(np.isfinite(v) for v in metrics.values())
    assert trainer.policy.state_dict_for_engine()["model.embed_tokens.weight"].shape == (300, 64)


def test_export_pretrained_writes_a_loadable_merged_model(tmp_path):
    policy, trainer = policy_and_trainer(lora={"enabled": True, "r": 4}, lr=1e-2)
    rows = make_rows(SHAPES[:3])
    trainer.update(rows, [1.0, -1.0, 0.5])
    policy.export_pretrained(tmp_path / "merged")
    loaded = Qwen2ForCausalLM.from_pretrained(tmp_path / "merged").eval()
    plain = Policy(loaded, device=policy.device, dtype=torch.float32)
    micro = collate(rows)
    with torch.no_grad():
        assert torch.allclose(plain.token_logprobs(micro)[0], policy.token_logprobs(micro)[0], atol=1e-5)
