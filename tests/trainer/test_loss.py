"""The losses against values computed by hand (docs/algorithms.md § The policy loss the trainer shares)."""

import math

import pytest
import torch

from tests.trainer import single_thread  # noqa: F401  (autouse fixture)
from steprl.trainer.loss import aggregate, entropy_from_logits, kl_k3, policy_loss, value_loss


def assert_values(tensor, expected, atol=1e-12):
    """Compare a tensor with hand-written numbers."""
    torch.testing.assert_close(tensor.detach().double(), torch.tensor(expected, dtype=torch.float64), atol=atol, rtol=0)


def one_row(ratios, advantages):
    """A single row whose token log-probs give the ratios (old log-probs 0), with per-token advantages."""
    logprobs = torch.tensor([[math.log(r) for r in ratios]], dtype=torch.float64, requires_grad=True)
    old = torch.zeros_like(logprobs)
    adv = torch.tensor([advantages], dtype=torch.float64)
    mask = torch.ones_like(old, dtype=torch.bool)
    return logprobs, old, adv, mask


@pytest.mark.parametrize(
    "ratio, advantage, expected_loss, expected_grad",
    [
        # ρ above 1+ε_high with A > 0: clipped at 1.2 → −1.2·2; no gradient
        (1.5, 2.0, -2.4, 0.0),
        # ρ below 1−ε_low with A < 0: clipped at 0.8 → −0.8·(−1); no gradient
        (0.5, -1.0, 0.8, 0.0),
        # inside the range: −ρA, gradient d(−ρA)/d logπ = −ρA
        (1.1, 1.0, -1.1, -1.1),
        (0.9, -2.0, 1.8, 1.8),
        # ρ below 1−ε with A > 0: the unclipped term is the pessimistic one → −0.5·1, gradient −0.5
        (0.5, 1.0, -0.5, -0.5),
        # ρ above 1+ε with A < 0: unclipped again → 1.5, gradient 1.5
        (1.5, -1.0, 1.5, 1.5),
    ],
)
def test_ratio_clipping_per_token(ratio, advantage, expected_loss, expected_grad):
    logprobs, old, adv, mask = one_row([ratio], [advantage])
    loss, stats = policy_loss(logprobs, old, adv, mask, clip_low=0.2, clip_high=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(expected_loss, abs=1e-12)
    assert logprobs.grad.item() == pytest.approx(expected_grad, abs=1e-12)
    assert stats["clip_frac"] == (1.0 if expected_grad == 0.0 else 0.0)


def test_asymmetric_clip_uses_clip_high_above_and_clip_low_below():
    # ρ = 1.5, A = 1 → clipped at 1 + 0.28; ρ = 0.5, A = −1 → clipped at 1 − 0.1
    logprobs, old, adv, mask = one_row([1.5, 0.5], [1.0, -1.0])
    loss, stats = policy_loss(logprobs, old, adv, mask, clip_low=0.1, clip_high=0.28)
    assert loss.item() == pytest.approx((-1.28 + 0.9) / 2, abs=1e-12)
    assert stats["clip_frac"] == 1.0


def test_dual_clip_bounds_negative_advantage_loss_by_c_abs_a():
    # A = −1, ρ = 5: plain PPO loss max(5, 1.2) = 5; dual clip c = 3 caps it at 3·|A| = 3 (no gradient)
    # A = −1, ρ = 2: max(2, 1.2) = 2 < 3: unchanged, gradient 2
    # A = +1, ρ = 5: clipped to −1.2 as usual; dual clip does not apply to A > 0
    logprobs, old, adv, mask = one_row([5.0, 2.0, 5.0], [-1.0, -1.0, 1.0])
    plain, _ = policy_loss(logprobs, old, adv, mask)
    assert plain.item() == pytest.approx((5.0 + 2.0 - 1.2) / 3, abs=1e-12)
    loss, stats = policy_loss(logprobs, old, adv, mask, dual_clip=3.0)
    loss.backward()
    assert loss.item() == pytest.approx((3.0 + 2.0 - 1.2) / 3, abs=1e-12)
    assert_values(logprobs.grad, [[0.0, 2.0 / 3, 0.0]])
    assert stats["dual_clip_frac"] == pytest.approx(1 / 3)

    # larger |A| scales the cap: A = −2, ρ = 10 → 3·2 = 6
    logprobs, old, adv, mask = one_row([10.0], [-2.0])
    assert policy_loss(logprobs, old, adv, mask, dual_clip=3.0)[0].item() == pytest.approx(6.0, abs=1e-12)


def two_rows_of_different_lengths():
    """Row 0: 1 token, A = 2. Row 1: 3 tokens, per-token A = (−1, 0, 2). ρ = 1 everywhere → token loss = −A."""
    logprobs = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    old = torch.zeros(2, 3, dtype=torch.float64)
    adv = torch.tensor([[2.0, 0.0, 0.0], [-1.0, 0.0, 2.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    return logprobs, old, adv, mask


def test_token_mean_aggregation():
    # token losses: row 0 (−2), row 1 (1, 0, −2): mean over 4 tokens = −3/4
    logprobs, old, adv, mask = two_rows_of_different_lengths()
    loss, _ = policy_loss(logprobs, old, adv, mask, aggregation="token-mean")
    assert loss.item() == pytest.approx(-0.75, abs=1e-12)
    loss.backward()  # each token weighs 1/4
    assert_values(logprobs.grad, [[-0.5, 0, 0], [0.25, 0, -0.5]])


def test_seq_mean_token_mean_aggregation():
    # row means: −2 and (1 + 0 − 2)/3 = −1/3; LOOP: sum of row means / 2 rows = −7/6
    logprobs, old, adv, mask = two_rows_of_different_lengths()
    loss, _ = policy_loss(logprobs, old, adv, mask, aggregation="seq-mean-token-mean")
    assert loss.item() == pytest.approx(-7 / 6, abs=1e-12)
    loss.backward()  # row 0's token weighs 1/2, row 1's tokens 1/6 each
    assert_values(logprobs.grad, [[-1.0, 0, 0], [1 / 6, 0, -1 / 3]])


def test_per_row_advantages_broadcast_to_tokens():
    logprobs = torch.zeros(2, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    loss, _ = policy_loss(logprobs, logprobs, torch.tensor([2.0, -1.0], dtype=torch.float64), mask)
    assert loss.item() == pytest.approx((-2 + 3) / 4, abs=1e-12)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean"])
def test_normalizer_makes_split_losses_add_up(aggregation):
    logprobs, old, adv, mask = two_rows_of_different_lengths()
    whole, _ = policy_loss(logprobs, old, adv, mask, aggregation=aggregation)
    normalizer = 4.0 if aggregation == "token-mean" else 2.0
    parts = [policy_loss(logprobs[i : i + 1], old[i : i + 1], adv[i : i + 1], mask[i : i + 1],
                         aggregation=aggregation, normalizer=normalizer)[0] for i in range(2)]
    assert (parts[0] + parts[1]).item() == pytest.approx(whole.item(), abs=1e-12)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean"])
def test_masked_prompt_tokens_contribute_nothing(aggregation):
    # 3 prompt positions then 2 response positions per row; the prompt positions are masked
    base = torch.tensor([[0.1, -0.3, 0.2, -0.5, -1.0], [0.0, 0.4, -0.2, -0.7, -0.1]], dtype=torch.float64)
    old = torch.tensor([[0.0, 0.0, 0.0, -0.6, -0.9], [0.0, 0.0, 0.0, -0.5, -0.4]], dtype=torch.float64)
    adv = torch.tensor([1.5, -0.5], dtype=torch.float64)
    mask = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 1, 1]], dtype=torch.bool)

    def loss_and_grad(logprobs):
        logprobs = logprobs.clone().requires_grad_(True)
        loss, _ = policy_loss(logprobs, old, adv, mask, dual_clip=3.0, aggregation=aggregation)
        loss.backward()
        return loss.item(), logprobs.grad[:, 3:].clone(), logprobs.grad[:, :3].clone()

    loss_a, grad_a, prompt_grad = loss_and_grad(base)
    changed = base.clone()
    changed[:, :3] = torch.tensor([[50.0, -80.0, float("nan")], [float("inf"), -float("inf"), 7.0]])
    loss_b, grad_b, _ = loss_and_grad(changed)
    assert loss_a == loss_b
    assert torch.equal(grad_a, grad_b)
    assert torch.count_nonzero(prompt_grad) == 0
    # and the response tokens do matter
    moved = base.clone()
    moved[0, 4] += 0.05
    assert loss_and_grad(moved)[0] != loss_a


def test_kl_k3_value():
    # log π = log 0.5, log π_ref = log 0.25: k3 = 0.5 − log 0.5 − 1 = log 2 − 0.5
    logprobs = torch.tensor([[math.log(0.5), math.log(0.3), 9.0]])
    ref = torch.tensor([[math.log(0.25), math.log(0.3), -9.0]])
    mask = torch.tensor([[1, 1, 0]])
    kl = kl_k3(logprobs, ref, mask)
    assert_values(kl, [[math.log(2) - 0.5, 0.0, 0.0]], atol=1e-7)
    # mean over the 2 loss tokens
    assert aggregate(kl, mask).item() == pytest.approx((math.log(2) - 0.5) / 2, abs=1e-7)
    # the other direction: log π = log 0.25, log π_ref = log 0.5 → 2 − log 2 − 1
    assert kl_k3(ref[:, :1], logprobs[:, :1], mask[:, :1]).item() == pytest.approx(1 - math.log(2), abs=1e-7)


def test_entropy_from_logits():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, math.log(3.0), -1e4, -1e4]])
    # uniform over 4: log 4; (1/4, 3/4): −(¼ log ¼ + ¾ log ¾)
    expected = [math.log(4), -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))]
    assert_values(entropy_from_logits(logits), expected, atol=1e-6)
    # bf16 logits are computed in fp32
    assert entropy_from_logits(logits.bfloat16()).dtype == torch.float32


def test_value_loss_clipped_and_unclipped():
    values = torch.tensor([1.0, 2.0])
    old = torch.tensor([0.5, 2.5])
    returns = torch.tensor([2.0, 2.0])
    # row 0: (1 − 2)² = 1 vs clipped V = 0.5 + 0.2 = 0.7 → 1.69; row 1: 0 vs V = 2.3 → 0.09
    loss, stats = value_loss(values, old, returns, clip=0.2)
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.09) / 2, abs=1e-6)
    assert stats["value_clip_frac"] == 1.0
    assert stats["value_mse"] == pytest.approx(0.5, abs=1e-6)
    loss, _ = value_loss(values, old, returns, clip=None)
    assert loss.item() == pytest.approx(0.25, abs=1e-6)


def test_bad_aggregation_names_the_choices():
    logprobs, old, adv, mask = one_row([1.0], [1.0])
    with pytest.raises(ValueError, match="aggregation='sum'.*token-mean.*seq-mean-token-mean"):
        policy_loss(logprobs, old, adv, mask, aggregation="sum")
    with pytest.raises(ValueError, match="dual_clip=0.5"):
        policy_loss(logprobs, old, adv, mask, dual_clip=0.5)
