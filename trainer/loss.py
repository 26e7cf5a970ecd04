"""The losses, as pure torch functions (docs/algorithms.md § "The policy loss the trainer shares").

Shapes: per-token tensors are ``[rows, tokens]``; ``mask`` is 1 (or True) on
the response tokens that carry loss and 0 on prompt, observation and padding
positions. Values at masked positions never reach the loss or its gradient,
even when they are inf or NaN.

Aggregation (``aggregation=``):

* ``"token-mean"``: Σ over every loss token of the minibatch / number of loss
  tokens (GiGPO, verl). Long responses weigh more.
* ``"seq-mean-token-mean"``: each row's own token mean, summed over rows,
  divided by the number of rows (LOOP: "each trajectory's loss is its own
  token mean; the minibatch loss is the sum divided by the minibatch size").

``normalizer`` makes micro-batching exact: a minibatch split into micro-batches
passes the *minibatch's* token count (token-mean) or row count (seq-mean) to
every micro-batch, and the summed micro-batch losses equal the minibatch loss.
``None`` normalizes by this call's own count.
"""

from __future__ import annotations

import torch

from steprl.trainer.config import AGGREGATIONS

__all__ = ["aggregate", "policy_loss", "kl_k3", "entropy_from_logits", "value_loss", "loss_normalizer"]

_LOG_RATIO_LIMIT = 20.0  # exp(20) ≈ 5e8: keeps a stale or broken log-prob from overflowing to inf


def _check_aggregation(aggregation: str) -> None:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation={aggregation!r} is not one of {', '.join(map(repr, AGGREGATIONS))}")


def loss_normalizer(mask: torch.Tensor, aggregation: str) -> float:
    """The denominator :func:`aggregate` uses for this mask: loss tokens, or rows with at least one loss token."""
    _check_aggregation(aggregation)
    mask = mask.bool()
    if aggregation == "token-mean":
        return float(mask.sum())
    return float(mask.any(dim=-1).sum())


def aggregate(
    values: torch.Tensor, mask: torch.Tensor, aggregation: str = "token-mean", normalizer: float | None = None
) -> torch.Tensor:
    """Reduce per-token ``values`` ``[rows, tokens]`` to a scalar over the ``mask``ed tokens.

    Args:
        values: per-token losses.
        mask: 1/True where a token carries loss.
        aggregation: ``"token-mean"`` or ``"seq-mean-token-mean"`` (module docstring).
        normalizer: denominator to use instead of this call's own token / row
            count (micro-batching passes the whole minibatch's count).

    Returns:
        A 0-dim tensor; 0 when no token carries loss.
    """
    _check_aggregation(aggregation)
    mask = mask.bool()
    masked = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    denominator = loss_normalizer(mask, aggregation) if normalizer is None else float(normalizer)
    if aggregation == "token-mean":
        total = masked.sum()
    else:
        row_tokens = mask.sum(dim=-1).clamp(min=1)
        total = (masked.sum(dim=-1) / row_tokens).sum()
    return total / max(denominator, 1.0)


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    aggregation: str = "token-mean",
    normalizer: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip policy loss with optional dual clip (docs/algorithms.md § The policy loss the trainer shares).

    For each loss token i with advantage A:
    ``ρ_i = exp(log π_θ − log π_old)``,
    ``ℓ_i = −min(ρ_i A, clip(ρ_i, 1 − ε_low, 1 + ε_high) A)``; with dual clip
    ``c`` and A < 0, ``ℓ_i = min(ℓ_i, c·|A|)``. The ℓ_i are then aggregated.

    Args:
        logprobs: ``[rows, tokens]`` log π_θ of the taken tokens (with grad).
        old_logprobs: ``[rows, tokens]`` log π_old (no grad needed).
        advantages: ``[rows]`` (broadcast to every token of the row) or ``[rows, tokens]``.
        mask: ``[rows, tokens]``, 1 on loss (response) tokens.
        clip_low: ε_low.
        clip_high: ε_high.
        dual_clip: c > 1, or None.
        aggregation: ``"token-mean"`` or ``"seq-mean-token-mean"``.
        normalizer: see :func:`aggregate`.

    Returns:
        ``(loss, stats)``: ``stats`` are token means over the mask of this call:
        ``clip_frac`` (tokens where the clipped branch is taken), ``dual_clip_frac``,
        ``approx_kl`` (k3 estimate of KL(π_old‖π_θ)), ``ratio_mean``, and ``tokens``.
    """
    if dual_clip is not None and not dual_clip > 1:
        raise ValueError(f"dual_clip={dual_clip} must be > 1 or None")
    if advantages.dim() == logprobs.dim() - 1:
        advantages = advantages.unsqueeze(-1)
    advantages = advantages.to(logprobs.dtype).expand_as(logprobs)
    mask = mask.bool()
    zero = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)

    log_ratio = torch.where(mask, logprobs - old_logprobs, zero).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    ratio = torch.exp(log_ratio)
    advantages = torch.where(mask, advantages, zero)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    token_loss = torch.maximum(unclipped, clipped)
    dual_clipped = torch.zeros_like(mask)
    if dual_clip is not None:
        cap = -advantages * dual_clip  # = c·|A| where A < 0
        dual_clipped = (advantages < 0) & (token_loss > cap)
        token_loss = torch.where(advantages < 0, torch.minimum(token_loss, cap), token_loss)
    loss = aggregate(token_loss, mask, aggregation, normalizer)

    with torch.no_grad():
        tokens = max(float(mask.sum()), 1.0)

        def token_mean(x: torch.Tensor) -> float:
            return float(torch.where(mask, x.to(logprobs.dtype), zero).sum()) / tokens

        stats = {
            "clip_frac": token_mean(clipped > unclipped),
            "dual_clip_frac": token_mean(dual_clipped),
            "approx_kl": token_mean(ratio - 1.0 - log_ratio),
            "ratio_mean": token_mean(ratio),
            "tokens": float(mask.sum()),
        }
    return loss, stats


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π_θ ‖ π_ref) (Schulman's low-variance estimator; GiGPO's KL term).

    ``k3 = exp(log π_ref − log π_θ) − (log π_ref − log π_θ) − 1`` (≥ 0, unbiased
    for tokens sampled from π_θ). Returns ``[rows, tokens]``, 0 where ``mask`` is 0;
    reduce it with :func:`aggregate`.
    """
    mask = mask.bool()
    zero = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    log_ratio = torch.where(mask, ref_logprobs - logprobs, zero).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    return torch.where(mask, torch.exp(log_ratio) - log_ratio - 1.0, zero)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy ``−Σ_v p_v log p_v`` of the softmax over the last dim, computed in fp32. ``[..., V] → [...]``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float | None = 0.2
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped value loss (docs/algorithms.md § PPO with a critic).

    ``V_clip = V_old + clip(V − V_old, −clip, clip)``,
    ``loss = ½ · mean(max((V − R)², (V_clip − R)²))`` with ``R = Â + V_old``
    the GAE return. ``clip=None`` gives ``½ · mean((V − R)²)``.

    Args:
        values: ``[rows]`` current value predictions (with grad).
        old_values: ``[rows]`` predictions when the data was collected.
        returns: ``[rows]`` regression targets.

    Returns:
        ``(loss, stats)`` with ``value_clip_frac`` (rows where the clipped term is
        the larger one) and ``value_mse`` (unclipped mean squared error).
    """
    returns = returns.to(values.dtype)
    unclipped = (values - returns) ** 2
    if clip is None:
        per_row = unclipped
        clip_frac = 0.0
    else:
        old_values = old_values.to(values.dtype)
        clipped_values = old_values + (values - old_values).clamp(-clip, clip)
        clipped = (clipped_values - returns) ** 2
        per_row = torch.maximum(unclipped, clipped)
        clip_frac = float((clipped > unclipped).float().mean()) if values.numel() else 0.0
    loss = 0.5 * per_row.mean()
    return loss, {"value_clip_frac": clip_frac, "value_mse": float(unclipped.detach().mean())}
