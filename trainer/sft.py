"""Supervised warm start: behaviour cloning on (prompt_ids, response_ids) pairs.

The loss is the token-mean negative log-likelihood of the *response* tokens
(the expert action as the agent would emit it); prompt tokens are context only
and carry no loss. Same micro-batching as the RL update: a batch's gradient
does not depend on how it is split into micro-batches.

    sft = SFTTrainer(policy, config)
    for batch in batches:                    # lists of rows / (prompt_ids, response_ids) pairs
        loss = sft.step(batch)
"""

from __future__ import annotations

import math

from collections.abc import Callable, Sequence

import numpy as np
import torch

from steprl.trainer.batching import make_micro_batches, row_token_ids
from steprl.trainer.config import TrainerConfig
from steprl.trainer.loss import aggregate
from steprl.trainer.policy import Policy, make_optimizer

__all__ = ["SFTTrainer", "sft_step", "sft_backward"]


def sft_backward(policy: Policy, examples: Sequence, micro_batch_tokens: int, *, backward: bool = True) -> float:
    """Accumulate the gradient of the batch's response-token NLL (token mean over the whole batch).

    Args:
        policy: the policy to train.
        examples: rows with ``prompt_ids`` and ``response_ids`` (or pairs).
        micro_batch_tokens: padded-token budget per forward/backward.
        backward: False computes the loss only (call it under ``torch.no_grad()``).

    Returns:
        The batch loss (mean NLL per response token).
    """
    tokens = float(sum(len(row_token_ids(row)[1]) for row in examples))
    if tokens == 0:
        raise ValueError("SFT batch has no response tokens: every example needs a non-empty response_ids")
    total = 0.0
    for micro in make_micro_batches(examples, micro_batch_tokens, pad_id=policy.pad_id):
        logprobs, _ = policy.token_logprobs(micro, with_entropy=False)
        loss = aggregate(-logprobs, micro.loss_mask.to(logprobs.device), "token-mean", normalizer=tokens)
        if backward:
            loss.backward()
        total += float(loss.detach())
    return total


def sft_step(
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    examples: Sequence,
    micro_batch_tokens: int,
    max_grad_norm: float | None = None,
) -> float:
    """One behaviour-cloning optimizer step on ``examples``; returns the batch loss before the step.

    A step whose loss or gradient is not finite (NaN or inf) is skipped: the weights and the
    optimizer state stay as they were (see :meth:`SFTTrainer.step`, which counts such steps)."""
    return _checked_step(policy, optimizer, examples, micro_batch_tokens, max_grad_norm)[0]


def _checked_step(policy: Policy, optimizer: torch.optim.Optimizer, examples: Sequence, micro_batch_tokens: int,
                  max_grad_norm: float | None) -> tuple[float, bool]:
    """(loss, whether the optimizer stepped): not when the loss or the gradient norm is non-finite."""
    optimizer.zero_grad(set_to_none=True)
    loss = sft_backward(policy, examples, micro_batch_tokens)
    params = [p for p in policy.trainable_parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm is not None else float("inf"))
    stepped = math.isfinite(loss) and bool(torch.isfinite(norm))
    if stepped:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss, stepped


class SFTTrainer:
    """Behaviour cloning with the trainer's optimizer settings (AdamW, warm-up, grad clipping, micro-batching).

    Uses ``lr``, ``warmup_steps``, ``weight_decay``, ``betas``, ``max_grad_norm``,
    ``micro_batch_tokens`` and ``seed`` of :class:`~trainer.config.TrainerConfig`.

    Example:
        >>> sft = SFTTrainer(load_policy("runs/tiny", config), config)
        >>> for epoch in range(3):
        ...     losses = sft.epoch(expert_rows, batch_size=32)
    """

    def __init__(self, policy: Policy, config: TrainerConfig):
        self.policy = policy
        self.config = config
        self.optimizer, self.scheduler = make_optimizer(policy.trainable_parameters(), config)
        self.steps = 0
        self.epochs = 0
        self.skipped_steps = 0
        self._skipped_in_a_row = 0

    #: this many skipped steps in a row (non-finite loss or gradient) stop the fit with an error
    MAX_SKIPPED_IN_A_ROW = 10

    def step(self, examples: Sequence) -> float:
        """One optimizer step on a batch; returns its loss (mean response-token NLL) before the step.

        A batch whose loss or gradient is not finite is skipped (weights and optimizer state
        unchanged; counted in ``skipped_steps``); :attr:`MAX_SKIPPED_IN_A_ROW` in a row raise
        ``FloatingPointError``: the weights or the settings, not one batch, are the problem.
        """
        loss, stepped = _checked_step(self.policy, self.optimizer, examples, self.config.micro_batch_tokens,
                                      self.config.max_grad_norm)
        self.steps += 1
        if stepped:
            self.scheduler.step()  # a skipped step does not advance the schedule
            self._skipped_in_a_row = 0
        else:
            self.skipped_steps += 1
            self._skipped_in_a_row += 1
            if self._skipped_in_a_row >= self.MAX_SKIPPED_IN_A_ROW:
                weights_ok = all(bool(torch.isfinite(p).all()) for p in self.policy.trainable_parameters())
                raise FloatingPointError(
                    f"SFT: the loss or gradient was not finite for {self._skipped_in_a_row} steps in a row (step "
                    f"{self.steps}, loss {loss}); the weights are {'finite' if weights_ok else 'NOT finite'}. "
                    f"Try a lower sft.lr (now {self.config.lr:g}) or trainer.dtype=float32 "
                    f"(now {self.config.dtype}).")
        return loss

    @torch.no_grad()
    def loss(self, examples: Sequence) -> float:
        """Mean response-token NLL of ``examples`` (no update)."""
        return sft_backward(self.policy, examples, self.config.micro_batch_tokens, backward=False)

    def fit(self, examples: Sequence, *, steps: int, batch_size: int, rng: np.random.Generator,
            on_step: Callable[[float], None] | None = None) -> list[float]:
        """``steps`` optimizer steps over shuffled passes of ``examples``; returns the step losses.

        Each pass takes a new permutation from ``rng`` and walks it in batches of
        ``batch_size`` (the last one may be smaller); ``on_step(loss)`` after each step.
        The SFT loop of steprl: ``steprl train``'s warm start and :meth:`epoch` use it.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        examples = list(examples)
        if not examples and steps > 0:
            raise ValueError("no examples to fit")
        losses: list[float] = []
        while len(losses) < steps:
            order = rng.permutation(len(examples))
            for start in range(0, len(order), batch_size):
                if len(losses) == steps:
                    break
                losses.append(self.step([examples[i] for i in order[start:start + batch_size]]))
                if on_step is not None:
                    on_step(losses[-1])
        return losses

    def epoch(self, examples: Sequence, batch_size: int) -> list[float]:
        """One shuffled pass (seeded by ``config.seed`` and the epoch count) in batches; returns the step losses."""
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        rng = np.random.default_rng([self.config.seed, self.epochs])
        self.epochs += 1
        return self.fit(examples, steps=math.ceil(len(examples) / batch_size), batch_size=batch_size, rng=rng)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "steps": self.steps,
            "epochs": self.epochs,
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps = int(state["steps"])
        self.epochs = int(state["epochs"])
