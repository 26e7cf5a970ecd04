"""Behaviour cloning: response-token loss only, and it learns a fixed tiny dataset."""

import pytest
import torch

from tests.trainer import make_rows, tiny_model, single_thread  # noqa: F401  (single_thread: autouse fixture)
from steprl.trainer.batching import collate
from steprl.trainer.config import TrainerConfig
from steprl.trainer.policy import Policy
from steprl.trainer.sft import SFTTrainer, sft_backward


def setup(lr=3e-3, micro_batch_tokens=64):
    config = TrainerConfig(lr=lr, micro_batch_tokens=micro_batch_tokens)
    policy = Policy.from_model(tiny_model(), config)
    return policy, SFTTrainer(policy, config)


def dataset():
    return make_rows([(6 + i % 4, 3) for i in range(8)], seed=5)


def token_nll(policy, rows):
    """Per-token NLL of the whole sequences, and which targets are prompt tokens."""
    micro = collate(rows)
    with torch.no_grad():
        policy.model.eval()
        logits = policy.model(input_ids=micro.input_ids, attention_mask=micro.attention_mask,
                              position_ids=micro.position_ids).logits
    nll = -torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, micro.input_ids[:, 1:, None]).squeeze(-1)
    real = micro.attention_mask.bool()
    real = real[:, 1:] & real[:, :-1]  # a target token preceded by a real one (prompts are left-padded)
    response = micro.response_mask[:, 1:]
    return nll, real & ~response, response


def test_loss_is_the_response_token_nll_only():
    policy, sft = setup()
    rows = dataset()
    nll, prompt_targets, response_targets = token_nll(policy, rows)
    manual = float(nll[response_targets].mean())
    assert sft.loss(rows) == pytest.approx(manual, abs=1e-6)
    all_tokens = float(nll[prompt_targets | response_targets].mean())
    assert abs(all_tokens - manual) > 1e-3  # the two differ on this data, so the check above means something


def test_sft_learns_the_responses_and_not_the_prompts():
    policy, sft = setup()
    rows = dataset()
    nll, prompt_targets, _ = token_nll(policy, rows)
    prompt_before = float(nll[prompt_targets].mean())
    initial = sft.loss(rows)
    assert initial == pytest.approx(5.72, abs=0.05)  # ≈ log(300): an untrained model
    losses = [sft.step(rows) for _ in range(40)]
    final = sft.loss(rows)
    assert losses[0] == pytest.approx(initial, abs=1e-6)
    assert final < 0.3 * initial, (initial, final)  # measured 0.08
    nll, prompt_targets, _ = token_nll(policy, rows)
    # prompt tokens carry no loss: their likelihood is not trained (it got worse here: 5.7 → 7.4)
    assert float(nll[prompt_targets].mean()) >= prompt_before


def test_sft_gradient_does_not_depend_on_micro_batching():
    rows = dataset()
    grads = []
    for budget in (1000, 26):
        policy, _ = setup(micro_batch_tokens=budget)
        loss = sft_backward(policy, rows, budget)
        grads.append((loss, [p.grad.clone() for p in policy.trainable_parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = grads
    assert loss_a == pytest.approx(loss_b, abs=1e-6)
    assert max(float((a - b).abs().max()) for a, b in zip(grads_a, grads_b)) <= 1e-6


def test_epoch_shuffles_deterministically_and_reports_step_losses():
    rows = dataset()
    runs = []
    for _ in range(2):
        _, sft = setup()
        runs.append(sft.epoch(rows, batch_size=3) + sft.epoch(rows, batch_size=3))
    assert len(runs[0]) == 6  # ceil(8 / 3) per epoch
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="batch_size=0"):
        setup()[1].epoch(rows, batch_size=0)


def test_a_non_finite_step_is_skipped_and_a_run_of_them_stops_with_a_clear_error():
    rows = dataset()
    policy, sft = setup()
    before = [p.detach().clone() for p in policy.trainable_parameters()]
    first = next(iter(policy.trainable_parameters()))
    hook = first.register_hook(lambda grad: grad * float("nan"))  # one parameter's gradient turns NaN
    loss = sft.step(rows[:4])
    assert loss == loss and sft.skipped_steps == 1 and sft.steps == 1  # a finite loss, its step skipped
    assert all(torch.equal(b, p) for b, p in zip(before, policy.trainable_parameters()))
    assert not sft.optimizer.state  # no optimizer state either
    hook.remove()
    sft.step(rows[:4])  # the next good batch steps, and the run of skips restarts
    assert sft.skipped_steps == 1 and any(not torch.equal(b, p) for b, p in zip(before, policy.trainable_parameters()))
    hook = first.register_hook(lambda grad: grad * float("inf"))
    for _ in range(SFTTrainer.MAX_SKIPPED_IN_A_ROW - 1):
        sft.step(rows[:4])
    with pytest.raises(FloatingPointError, match="10 steps in a row.*weights are finite.*sft.lr"):
        sft.step(rows[:4])
    assert sft.skipped_steps == 1 + SFTTrainer.MAX_SKIPPED_IN_A_ROW
    hook.remove()
