"""The policy being trained, and the PPO-style update that trains it.

* :class:`Policy` wraps a Hugging Face causal LM (optionally with peft LoRA):
  teacher-forced log-probs of response tokens, backbone hidden states for the
  scalar heads, merged weights for the inference engine, save/load.
* :class:`PolicyTrainer` runs one policy update on a batch of step rows and
  their advantages (docs/algorithms.md § The policy loss the trainer shares):

      old log-probs   (recomputed under no_grad, or the sampler's)
      ref log-probs   (only when kl_coef > 0)
      for epoch in ppo_epochs:
          for minibatch in shuffled rows:
              for micro-batch in token-budget micro-batches:
                  loss = policy_loss + kl_coef·KL_k3 − entropy_coef·H   (normalized by the *minibatch*)
                  loss.backward()
              clip grad norm; AdamW step; warm-up schedule step

Precision: CUDA + bf16 when present, CPU + fp32 otherwise. Full fine-tuning
keeps fp32 master weights and runs the forward pass under bf16 autocast; LoRA
keeps the frozen base weights in the compute dtype and the adapters in fp32.

Reference model (KL): with ``kl_coef == 0`` none is built, and exactly one copy
of the LLM exists (LOOP). With LoRA the reference is the same model with its
adapters switched off (no copy either); with full fine-tuning it is a frozen
copy of the initial weights.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from steprl.agent.engines.base import forward_takes, resolve_dtype
from steprl.trainer.batching import MicroBatch, make_micro_batches, pad_right, row_token_ids
from steprl.trainer.config import TrainerConfig
from steprl.trainer.loss import aggregate, entropy_from_logits, kl_k3, policy_loss

__all__ = ["Policy", "load_policy", "resolve_device", "make_optimizer", "PolicyTrainer", "PreparedBatch"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when present, else CPU; ``"cuda"`` without a GPU fails with a clear message."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device={device!r} is not one of 'auto', 'cpu', 'cuda'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA device; use device='auto' or 'cpu'")
    return torch.device(device)


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch (CPU and CUDA) inside the block, then restore the global RNG state (LoRA init without side effects)."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# =============================================================================
# Policy
# =============================================================================
class Policy:
    """A causal LM as a policy over response tokens.

    Build one with :func:`load_policy` (from a folder) or :meth:`from_model`
    (from a model in memory). Attributes: ``model`` (the ``nn.Module``, a
    ``PeftModel`` under LoRA), ``device``, ``dtype`` (compute dtype),
    ``is_lora``.
    """

    def __init__(self, model: torch.nn.Module, *, device: torch.device, dtype: torch.dtype):
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self.is_lora = _is_peft(model)
        self.keeps_logits = forward_takes(model, "logits_to_keep")
        self.takes_positions = forward_takes(model, "position_ids")

    @classmethod
    def from_model(cls, model: torch.nn.Module, config: TrainerConfig) -> Policy:
        """Prepare a HF causal LM for training per ``config``: device, dtype, LoRA, gradient checkpointing.

        The module is modified in place (moved, cast, adapters injected); keep
        no other use of it.
        """
        device = resolve_device(config.device)
        dtype = resolve_dtype(config.dtype, device)
        if config.lora.enabled:
            from peft import LoraConfig, get_peft_model

            model.to(dtype=dtype)  # frozen base in the compute dtype
            lora = LoraConfig(
                r=config.lora.r,
                lora_alpha=config.lora.alpha,
                lora_dropout=config.lora.dropout,
                target_modules=config.lora.target_modules,
                task_type="CAUSAL_LM",
            )
            with _seeded(config.seed):
                model = get_peft_model(model, lora, autocast_adapter_dtype=True)  # adapters in fp32
        else:
            model.to(dtype=torch.float32)  # fp32 master weights; the forward pass autocasts to `dtype`
        model.to(device)
        if getattr(model.config, "use_cache", None) is not None:
            model.config.use_cache = False
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.eval()
        return cls(model, device=device, dtype=dtype)

    # -- forward passes ---------------------------------------------------------
    def autocast(self):
        """bf16/fp16 autocast when the compute dtype is not fp32, else a no-op context."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _set_mode(self) -> None:
        # Dropout (if the model has any) only in gradient passes; keep it 0 so that ratios start at exactly 1.
        self.model.train(torch.is_grad_enabled())

    def token_logprobs(
        self, micro: MicroBatch, *, with_entropy: bool = True, entropy_grad: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced log-probs of each response token (docs/algorithms.md § The policy loss the trainer shares).

        One forward pass over ``prompt + response``; the logits at position
        ``p − 1`` score the token at ``p``, read only at response positions, in fp32.
        Every response starts at the micro-batch's column ``P``, so the LM head runs
        on the last ``R + 1`` columns only (the model's ``logits_to_keep``, when its
        forward takes it): prompt logits are never computed. With a large vocabulary
        they would be most of the activation memory.

        Args:
            micro: a :class:`~trainer.batching.MicroBatch`.
            with_entropy: also return the entropy of the full next-token distribution.
            entropy_grad: let gradients flow through the entropy (only needed for an entropy bonus).

        Returns:
            ``(logprobs, entropy)``, each ``[B, R]`` fp32 aligned with
            ``micro.response_ids`` (0 where ``micro.loss_mask`` is False);
            ``entropy`` is None without ``with_entropy``.
        """
        micro = micro.to(self.device)
        self._set_mode()
        keep = micro.response_ids.shape[1] + 1  # columns P − 1 … P + R − 1
        with self.autocast():
            logits = self.model(**self._inputs(micro), use_cache=False,
                                **({"logits_to_keep": keep} if self.keeps_logits else {})).logits
        picked = logits[:, -keep:-1][micro.loss_mask].float()  # [response tokens, vocab], rows in order
        targets = micro.response_ids[micro.loss_mask]
        token_logprob = picked.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(picked, dim=-1)
        logprobs = torch.zeros(micro.loss_mask.shape, dtype=torch.float32, device=self.device)
        logprobs = logprobs.masked_scatter(micro.loss_mask, token_logprob)
        if not with_entropy:
            return logprobs, None
        token_entropy = entropy_from_logits(picked if entropy_grad else picked.detach())
        entropy = torch.zeros_like(logprobs).masked_scatter(micro.loss_mask, token_entropy)
        return logprobs, entropy

    def last_hidden_states(self, micro: MicroBatch) -> torch.Tensor:
        """``[B, L, H]`` final hidden states of the backbone (after its final norm), for the scalar heads."""
        micro = micro.to(self.device)
        self._set_mode()
        with self.autocast():
            decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
            if decoder is not None and decoder is not self.model:
                return decoder(**self._inputs(micro, decoder)).last_hidden_state
            return self.model(**self._inputs(micro), output_hidden_states=True).hidden_states[-1]

    def _inputs(self, micro: MicroBatch, module: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Forward inputs; ``position_ids`` when ``module`` takes them (left padding must not shift positions)."""
        inputs = {"input_ids": micro.input_ids, "attention_mask": micro.attention_mask}
        takes = self.takes_positions if module is None else forward_takes(module, "position_ids")
        if takes:
            inputs["position_ids"] = micro.position_ids
        return inputs

    @property
    def hidden_size(self) -> int:
        config = self.model.config
        return int(getattr(config, "hidden_size", None) or config.get_text_config().hidden_size)

    @property
    def pad_id(self) -> int:
        """Padding token for batches (any id works: padding is masked out)."""
        pad = getattr(self.model.config, "pad_token_id", None)
        return int(pad) if isinstance(pad, int) else 0

    # -- weights ------------------------------------------------------------------
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters the optimizer updates (the LoRA adapters, or all weights)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def state_dict_for_engine(self) -> dict[str, torch.Tensor]:
        """Full weights under the base model's HF parameter names, for ``engine.update_weights``.

        Under LoRA: base weight + ``B·A·alpha/r`` of each adapted layer, computed
        out of place (the adapters stay as they are and keep training). Without
        LoRA: the parameters themselves, detached and sharing storage (the
        engine copies them; do not hold on to them across an update).
        """
        if not self.is_lora:
            return {name: tensor.detach() for name, tensor in self.model.state_dict().items()}
        from steprl.agent.models import merged_lora_state

        return merged_lora_state(self.model)

    def save(self, directory: str | Path) -> None:
        """Write the trained weights: the LoRA adapter (peft format) or a full HF model folder."""
        from transformers.utils import logging as hf_logging

        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.model.save_pretrained(str(directory))
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()

    def load_weights(self, directory: str | Path) -> None:
        """Load weights written by :meth:`save` into this policy, exactly (same shapes and names)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no *.safetensors weights in {directory}")
        state: dict[str, torch.Tensor] = {}
        for file in files:
            state.update(load_file(str(file), device=str(self.device)))
        if self.is_lora:
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(self.model, state)
            if result.unexpected_keys:
                raise ValueError(f"{directory}: adapter weights {result.unexpected_keys[:5]} do not fit this model")
            return
        result = self.model.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{directory}: weights {result.unexpected_keys[:5]} do not exist in this model")
        params = self.model.state_dict()
        loaded = {params[name].data_ptr() for name in state if name in params}
        untied = [name for name in result.missing_keys if params[name].data_ptr() not in loaded]
        if untied:
            raise ValueError(f"{directory}: weights {untied[:5]} are missing")

    def export_pretrained(self, directory: str | Path) -> None:
        """Write a plain HF model folder with merged weights (LoRA folded in), loadable by any engine."""
        from transformers.utils import logging as hf_logging

        base = self.model.get_base_model() if self.is_lora else self.model
        state = {name: tensor.contiguous() for name, tensor in self.state_dict_for_engine().items()}
        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            base.save_pretrained(str(directory), state_dict=state)
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()

    def frozen_copy(self) -> Policy:
        """A frozen copy of this policy in the compute dtype (the full fine-tuning reference model)."""
        model = copy.deepcopy(self.model).to(self.dtype).requires_grad_(False).eval()
        return Policy(model, device=self.device, dtype=self.dtype)


def _is_peft(model: torch.nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


class _AdapterOffReference:
    """The LoRA reference policy: the same model with its adapters switched off (no second copy)."""

    def __init__(self, policy: Policy):
        self.policy = policy

    def token_logprobs(self, micro: MicroBatch, **kwargs):
        with self.policy.model.disable_adapter():
            return self.policy.token_logprobs(micro, **kwargs)


def load_policy(model_path: str | Path, config: TrainerConfig, *, trust_remote_code: bool = False) -> Policy:
    """Load a causal LM folder (or hub id) as a trainable :class:`Policy` per ``config`` (LoRA, device, dtype).

    Example:
        >>> policy = load_policy("runs/tiny", TrainerConfig(lora={"enabled": True}))
    """
    from transformers import AutoModelForCausalLM

    path = str(model_path)
    if not Path(path).exists() and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise FileNotFoundError(f"model folder {path!r} does not exist")
    device = resolve_device(config.device)
    load_dtype = resolve_dtype(config.dtype, device) if config.lora.enabled else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=load_dtype, trust_remote_code=trust_remote_code)
    return Policy.from_model(model, config)


# =============================================================================
# PolicyTrainer
# =============================================================================
@dataclass
class PreparedBatch:
    """What one update trains on: the kept rows and their per-row/per-token tensors (on the policy's device).

    Attributes:
        rows: the kept step rows (indices below refer to this list).
        advantages: ``[n]`` one advantage per row.
        old_logprobs: ``[n, R]`` log π_old of each response token (response-aligned).
        ref_logprobs: ``[n, R]`` reference log-probs, or None without KL.
        response_lengths: ``[n]`` numpy ints.
    """

    rows: list
    advantages: torch.Tensor
    old_logprobs: torch.Tensor
    ref_logprobs: torch.Tensor | None
    response_lengths: np.ndarray


class _WarmupThenConstant:
    """LR multiplier: linear warm-up over ``warmup_steps`` optimizer steps, then 1 (a picklable callable)."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        return 1.0 if self.warmup_steps == 0 else min(1.0, (step + 1) / self.warmup_steps)


def make_optimizer(params, config: TrainerConfig):
    """AdamW (``lr``, ``betas``, ``weight_decay``) and its schedule: linear warm-up over ``warmup_steps``, then constant."""
    params = list(params)
    if not params:
        raise ValueError("the policy has no trainable parameters (all requires_grad=False)")
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _WarmupThenConstant(config.warmup_steps))
    return optimizer, scheduler


class PolicyTrainer:
    """PPO-style updates of a :class:`Policy` on step rows (docs/algorithms.md § The policy loss the trainer shares).

    Args:
        policy: the policy to train (its parameters are updated in place).
        config: loss, optimizer and batching settings.

    Attributes:
        reference: None when ``config.kl_coef == 0`` (no reference model is
            built); otherwise something with ``token_logprobs``.
        optimizer: AdamW over ``policy.trainable_parameters()``.
        scheduler: linear warm-up, then constant.
        updates: number of :meth:`update` calls so far (seeds the shuffling; checkpointed).

    Example:
        >>> trainer = PolicyTrainer(load_policy("runs/tiny", config), config)
        >>> metrics = trainer.update(batch.rows, advantages, keep_mask=credit.keep_mask(advantages))
    """

    def __init__(self, policy: Policy, config: TrainerConfig):
        self.policy = policy
        self.config = config
        if config.kl_coef == 0:
            self.reference = None
        elif policy.is_lora:
            self.reference = _AdapterOffReference(policy)
        else:
            self.reference = policy.frozen_copy()
        self.optimizer, self.scheduler = make_optimizer(policy.trainable_parameters(), config)
        self.updates = 0

    # -- the update ---------------------------------------------------------------
    def update(self, rows: Sequence, advantages, keep_mask=None) -> dict[str, float]:
        """One policy update: ``ppo_epochs`` × shuffled minibatches × micro-batches.

        Args:
            rows: step rows (``prompt_ids``, ``response_ids`` and, unless
                ``recompute_old_logprobs``, the sampler's ``logprobs``).
            advantages: one float per row (``credit.estimate``), broadcast to the row's response tokens.
            keep_mask: optional bool per row; False rows leave the update entirely
                (LOOP drops |A| < 0.01; a dropped row is not a zero-advantage row:
                it leaves the token-mean denominator too).

        Rows are reshuffled every epoch (seeded by ``config.seed`` and the update
        count, so a resumed run shuffles identically); the last minibatch of an
        epoch may be smaller and is normalized by its own token / row count.

        Returns:
            Metrics: ``train/pg_loss`` (mean over optimizer steps of the minibatch
            policy loss), ``train/loss`` (with KL and entropy terms), ``train/clip_frac``,
            ``train/approx_kl`` (k3 of π_old→π_θ), ``train/entropy``, ``train/kl`` (with a
            reference), ``train/grad_norm`` (mean, before clipping), ``train/lr``,
            ``train/tokens`` (response tokens of the kept rows), ``train/rows``,
            ``train/optimizer_steps``.
        """
        prepared = self.prepare(rows, advantages, keep_mask)
        n = len(prepared.rows)
        self.updates += 1
        if n == 0:
            return {"train/rows": 0.0, "train/tokens": 0.0, "train/optimizer_steps": 0.0, "train/lr": self.lr}
        rng = np.random.default_rng([self.config.seed, self.updates])
        totals: dict[str, float] = {}
        steps = 0
        for _epoch in range(self.config.ppo_epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.config.minibatch_size):
                indices = order[start : start + self.config.minibatch_size]
                self.optimizer.zero_grad(set_to_none=True)
                stats = self.backward_minibatch(prepared, indices)
                lr = self.lr
                grad_norm = self._clip_gradients()
                self.optimizer.step()
                self.scheduler.step()
                steps += 1
                stats.update(grad_norm=grad_norm, lr=lr)
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value
        self.optimizer.zero_grad(set_to_none=True)
        tokens_seen = max(totals.pop("tokens"), 1.0)
        metrics = {
            "train/pg_loss": totals["pg_loss"] / steps,
            "train/loss": totals["loss"] / steps,
            "train/clip_frac": totals["clip_frac_sum"] / tokens_seen,
            "train/approx_kl": totals["approx_kl_sum"] / tokens_seen,
            "train/entropy": totals["entropy_sum"] / tokens_seen,
            "train/grad_norm": totals["grad_norm"] / steps,
            "train/lr": totals["lr"] / steps,
            "train/tokens": float(prepared.response_lengths.sum()),
            "train/rows": float(n),
            "train/optimizer_steps": float(steps),
        }
        if self.config.dual_clip is not None:
            metrics["train/dual_clip_frac"] = totals["dual_clip_frac_sum"] / tokens_seen
        if self.reference is not None:
            metrics["train/kl"] = totals["kl_sum"] / tokens_seen
        return metrics

    def prepare(self, rows: Sequence, advantages, keep_mask=None) -> PreparedBatch:
        """Select the kept rows and compute what the epochs reuse: advantages, old and reference log-probs."""
        rows = list(rows)
        advantages = np.asarray(advantages, dtype=np.float64)
        if advantages.shape != (len(rows),):
            raise ValueError(f"advantages has shape {advantages.shape}; expected ({len(rows)},), one per step row")
        if not np.all(np.isfinite(advantages)):
            bad = int(np.flatnonzero(~np.isfinite(advantages))[0])
            raise ValueError(f"advantages[{bad}] = {advantages[bad]} is not finite")
        keep = np.ones(len(rows), dtype=bool) if keep_mask is None else np.asarray(keep_mask, dtype=bool)
        if keep.shape != (len(rows),):
            raise ValueError(f"keep_mask has shape {keep.shape}; expected ({len(rows)},), one bool per step row")
        kept = np.flatnonzero(keep)
        rows = [rows[i] for i in kept]
        response_lengths = np.fromiter((len(row_token_ids(r)[1]) for r in rows), dtype=np.int64, count=len(rows))
        if self.config.recompute_old_logprobs:
            old = self.logprobs_table(self.policy, rows)
        else:
            old = self._sampler_logprobs(rows, response_lengths)
        ref = self.logprobs_table(self.reference, rows) if self.reference is not None else None
        adv = torch.as_tensor(advantages[kept], dtype=torch.float32, device=self.policy.device)
        return PreparedBatch(rows, adv, old, ref, response_lengths)

    def backward_minibatch(
        self, prepared: PreparedBatch, indices: Sequence[int] | np.ndarray, micro_batch_tokens: int | None = None
    ) -> dict[str, float]:
        """Accumulate the gradient of one minibatch's loss over token-budget micro-batches.

        Every micro-batch is normalized by the *minibatch's* token count
        (token-mean) or row count (seq-mean-token-mean), so the gradient does
        not depend on how the minibatch is split. Does not zero gradients or step.

        Returns:
            Sums for the metrics: ``pg_loss``, ``loss`` (minibatch values), and
            token-weighted sums ``clip_frac_sum``, ``approx_kl_sum``, ``entropy_sum``, ``kl_sum``,
            plus ``tokens``.
        """
        config = self.config
        indices = np.asarray(indices, dtype=np.int64)
        lengths = prepared.response_lengths[indices]
        if config.aggregation == "token-mean":
            normalizer = float(lengths.sum())
        else:
            normalizer = float((lengths > 0).sum())
        budget = micro_batch_tokens or config.micro_batch_tokens
        sums = dict.fromkeys(
            ("pg_loss", "loss", "clip_frac_sum", "dual_clip_frac_sum", "approx_kl_sum", "entropy_sum", "kl_sum",
             "tokens"), 0.0
        )
        for micro in make_micro_batches(prepared.rows, budget, indices, pad_id=self.policy.pad_id):
            micro = micro.to(self.policy.device)
            logprobs, entropy = self.policy.token_logprobs(micro, entropy_grad=config.entropy_coef > 0)
            width = logprobs.shape[1]
            rows = micro.row_index
            mask = micro.loss_mask
            pg_loss, stats = policy_loss(
                logprobs,
                prepared.old_logprobs[rows, :width],
                prepared.advantages[rows],
                mask,
                clip_low=config.clip_low,
                clip_high=config.clip_high,
                dual_clip=config.dual_clip,
                aggregation=config.aggregation,
                normalizer=normalizer,
            )
            loss = pg_loss
            if prepared.ref_logprobs is not None:
                kl = kl_k3(logprobs, prepared.ref_logprobs[rows, :width], mask)
                loss = loss + config.kl_coef * aggregate(kl, mask, config.aggregation, normalizer)
                sums["kl_sum"] += float(kl.detach().sum())
            if config.entropy_coef > 0:
                loss = loss - config.entropy_coef * aggregate(entropy, mask, config.aggregation, normalizer)
            loss.backward()
            tokens = stats["tokens"]
            sums["pg_loss"] += float(pg_loss.detach())
            sums["loss"] += float(loss.detach())
            sums["clip_frac_sum"] += stats["clip_frac"] * tokens
            sums["dual_clip_frac_sum"] += stats["dual_clip_frac"] * tokens
            sums["approx_kl_sum"] += stats["approx_kl"] * tokens
            sums["entropy_sum"] += float(entropy.detach().sum())
            sums["tokens"] += tokens
        return sums

    @torch.no_grad()
    def logprobs_table(self, model, rows: Sequence) -> torch.Tensor:
        """``[len(rows), longest response]`` log-probs of every response token under ``model`` (no grad)."""
        width = max((len(row_token_ids(r)[1]) for r in rows), default=0)
        table = torch.zeros(len(rows), width, dtype=torch.float32, device=self.policy.device)
        for micro in make_micro_batches(rows, self.config.micro_batch_tokens, pad_id=self.policy.pad_id):
            logprobs, _ = model.token_logprobs(micro, with_entropy=False)
            table[micro.row_index.to(table.device), : logprobs.shape[1]] = logprobs
        return table

    def _sampler_logprobs(self, rows: list, response_lengths: np.ndarray) -> torch.Tensor:
        sampled = []
        for i, row in enumerate(rows):
            logprobs = getattr(row, "logprobs", None)
            if logprobs is None and isinstance(row, dict):
                logprobs = row.get("logprobs")
            if logprobs is None or len(logprobs) != response_lengths[i]:
                got = "none" if logprobs is None else f"{len(logprobs)}"
                raise ValueError(
                    f"row {i}: recompute_old_logprobs=False needs the sampler's log-probs, one per response token "
                    f"({response_lengths[i]}), got {got}"
                )
            sampled.append(logprobs)
        return pad_right(sampled, pad_value=0.0, dtype=torch.float32).to(self.policy.device)

    def _clip_gradients(self) -> float:
        params = [p for p in self.policy.trainable_parameters() if p.grad is not None]
        if not params:
            return 0.0
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm is not None else float("inf")
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    @property
    def lr(self) -> float:
        """The learning rate of the next optimizer step."""
        return float(self.optimizer.param_groups[0]["lr"])

    # -- checkpointing ------------------------------------------------------------
    def state_dict(self) -> dict:
        """Optimizer, scheduler and update counter (the model is saved by the checkpoint separately)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.updates = int(state["updates"])
