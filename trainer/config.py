"""``TrainerConfig``: how the policy (and its scalar heads) are optimized.

Composed into the run config under ``trainer:``. Unknown keys and bad values
fail at load time, naming the field and what it accepts. The loss settings are
those of docs/algorithms.md § "The policy loss the trainer shares"; the defaults are
plain PPO-clip with token-mean aggregation and no reference model.

Paper settings, for reference (docs/algorithms.md):

* LOOP: ``clip_low=clip_high=0.1, aggregation="seq-mean-token-mean", kl_coef=0,
  ppo_epochs=2, minibatch_size=32, lr=5e-5, recompute_old_logprobs=True``,
  LoRA r=16, α=32 on attention + MLP.
* GiGPO: ``clip_low=clip_high=0.2, aggregation="token-mean", kl_coef=0.01,
  entropy_coef=0.001, lr=1e-6, ppo_epochs=1``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["TrainerConfig", "LoraConfig", "HeadConfig", "ReferenceProgressConfig", "AGGREGATIONS"]

AGGREGATIONS = ("token-mean", "seq-mean-token-mean")


class LoraConfig(BaseModel):
    """LoRA adapters (peft) instead of full fine-tuning."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    enabled: bool = False
    """Train LoRA adapters on a frozen base model (False = full fine-tuning)."""
    r: int = Field(16, ge=1)
    """Adapter rank (LOOP: 16)."""
    alpha: float = Field(32.0, gt=0)
    """Adapter scaling numerator: the update is scaled by alpha / r (LOOP: 32)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapter input; keep 0 so that old and new log-probs agree exactly."""
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    """Module names to adapt (e.g. ["q_proj", "v_proj"]) or "all-linear" (attention + MLP, not lm_head)."""

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError('target_modules is empty; give module names like ["q_proj", "v_proj"] or "all-linear"')
        return value


class ReferenceProgressConfig(BaseModel):
    """SPA's progress estimator as the reference code trains it (``trainer.progress_head.mode: reference``;
    trainer/progress.py, docs/credit.md § SPA in its reference form).

    A separate copy of the SFT policy, all weights trained, with ``Linear(vocab → 1)`` on its LM-head logits
    at each turn's last token; fitted once before RL on exploration rollouts of the SFT policy with
    ``(Σ_t ĉ_t − R)²``, then frozen. The defaults are the reference's (``prm/train_our_progress_model.py``);
    a small model trained from scratch may need a larger ``lr``, more ``epochs`` and a shorter warm-up.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    rollouts_per_task: int = Field(5, ge=1)
    """Exploration rollouts of the SFT policy per train task (reference: 5 WebShop, 10 ALFWorld)."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of the exploration rollouts (reference: 1.0); top_p, top_k and
    max_new_tokens are the agent's."""
    lr: float = Field(3e-6, gt=0)
    """Peak learning rate (reference: 3e-6)."""
    weight_decay: float = Field(0.01, ge=0)
    """Decoupled weight decay (reference: 0.01, DeepSpeed's Adam in AdamW mode)."""
    warmup_steps: int = Field(500, ge=0)
    """Optimizer steps of warm-up, logarithmic as DeepSpeed's WarmupLR (lr·log(s+1)/log(W) at step s < W),
    then constant (reference: 500); 0 = none."""
    epochs: int = Field(1, ge=1)
    """Passes over the exploration trajectories (reference: 1)."""
    batch_size: int = Field(4, ge=1)
    """Trajectories per optimizer step; the loss is their mean (Σ_t ĉ_t − R)² (reference: 2 per GPU ×
    2 accumulation steps)."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Clip the gradient norm to this; None = no clipping (reference: 1.0)."""
    init: Literal["default", "zero"] = "default"
    """The linear head's initial weights: ``default`` = PyTorch's (the reference's; on a small model's large
    logits its first outputs are far from any outcome); ``zero`` = every ĉ_t starts at 0."""


class HeadConfig(BaseModel):
    """A scalar head on the policy backbone: GAE's value head or SPA's progress estimator (trainer/heads.py)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    hidden: int = Field(0, ge=0)
    """Width of the head's hidden layer; 0 = a linear head (the SPA reference code's choice)."""
    lr: float = Field(1e-3, gt=0)
    """AdamW learning rate of the head."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay of the head."""
    epochs: int = Field(4, ge=1)
    """Passes over the iteration's data per head update."""
    minibatch_size: int = Field(64, ge=1)
    """Rows (value head) or trajectories (progress estimator) per head optimizer step."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Clip the head's gradient norm to this; None = no clipping."""
    value_clip: float | None = Field(0.2, gt=0)
    """Value head only: PPO value clipping range around the old value; None = unclipped."""
    read_at: Literal["last_prompt", "last_response"] | None = None
    """Token whose hidden state the head reads; None = the head's own (value: last_prompt, V(s_t);
    progress: last_response, the end of the assistant turn as in the SPA reference code). With a
    frozen small backbone the end-of-turn token's state hardly varies between steps: AdamW
    cannot fit a head there in a few steps, the ridge solver can (docs/training.md)."""
    solver: Literal["adam", "ridge"] = "adam"
    """How the progress estimator fits: "adam" = `epochs` × minibatches of AdamW steps (the
    reference code's way); "ridge" = the exact least-squares fit of a linear head (hidden=0) to
    the iteration's trajectories, `(Σ_t ĉ_t − R)²` plus the `ridge` penalty, solved in closed form
    every update: no learning rate, cannot diverge. Progress estimator only."""
    ridge: float = Field(1e-5, gt=0)
    """Ridge solver: L2 penalty on the head's weights (not its bias), relative to the mean
    eigenvalue of the trajectory features' Gram matrix (so it does not depend on their scale)."""
    replay: int = Field(0, ge=0)
    """Ridge solver: also fit on the trajectories of this many earlier iterations (their
    features recomputed under the current policy, one extra no-grad pass over their rows).
    0 = the iteration's own trajectories only. Kept in checkpoints."""
    mode: Literal["online", "reference"] = "online"
    """Progress estimator only. ``online``: the head above on the policy's own backbone, fitted on every
    iteration's episodes. ``reference``: SPA's reference code — a separate, fully fine-tuned copy of the SFT
    policy with a linear head on its LM-head logits, fitted once before RL on exploration rollouts, then
    frozen and saved in the run directory (settings: ``reference``; trainer/progress.py)."""
    reference: ReferenceProgressConfig = Field(default_factory=ReferenceProgressConfig)
    """Settings of ``mode: reference`` (the reference code's by default)."""

    @model_validator(mode="after")
    def _mode_fields(self):
        online_only = ("hidden", "lr", "weight_decay", "epochs", "minibatch_size", "max_grad_norm", "read_at",
                       "solver", "ridge", "replay")
        defaults = HeadConfig.model_fields
        if self.mode == "reference":
            changed = [name for name in online_only if getattr(self, name) != defaults[name].default]
            if changed:
                name = changed[0]
                where = (f"; set reference.{name} instead" if name in ReferenceProgressConfig.model_fields else "")
                raise ValueError(f"{name}={getattr(self, name)!r} is a setting of the online progress head, unused "
                                 f"with mode='reference'{where}")
        elif self.reference != ReferenceProgressConfig():
            raise ValueError("reference settings are given but mode='online': set mode='reference' to fit SPA's "
                             "estimator as the reference code does, or drop them")
        return self

    @model_validator(mode="after")
    def _ridge_is_linear(self):
        if self.solver == "ridge" and self.hidden > 0:
            raise ValueError(f"solver='ridge' fits a linear head in closed form; set hidden=0 (got hidden={self.hidden}) "
                             "or use solver='adam'")
        if self.replay and self.solver != "ridge":
            raise ValueError(f"replay={self.replay} refits on earlier iterations' trajectories, which the ridge solver "
                             "does; set solver='ridge' or replay=0")
        return self


class TrainerConfig(BaseModel):
    """Policy optimization: loss, optimizer, batching, LoRA, precision, heads."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    # -- optimizer ---------------------------------------------------------------
    lr: float = Field(1e-5, gt=0)
    """AdamW peak learning rate (constant after warm-up; LOOP 5e-5, GiGPO 1e-6)."""
    warmup_steps: int = Field(0, ge=0)
    """Optimizer steps of linear warm-up from lr/warmup_steps to lr; 0 = none."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW decoupled weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW (beta1, beta2), each in [0, 1)."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Clip the global gradient norm to this before each optimizer step; None = no clipping."""

    # -- PPO schedule ------------------------------------------------------------
    ppo_epochs: int = Field(1, ge=1)
    """Passes over the iteration's step rows (LOOP 2, GiGPO 1)."""
    minibatch_size: int = Field(32, ge=1)
    """Step rows per optimizer step; rows are shuffled each epoch."""
    micro_batch_tokens: int = Field(4096, ge=1)
    """Padded-token budget (rows × (longest prompt + longest response)) per forward/backward; gradients
    accumulate over micro-batches. Logits are computed for the response columns only, so this bounds the
    backbone's activations, not the vocabulary-sized ones."""
    recompute_old_logprobs: bool = True
    """Recompute π_old with the trainer's model before the update (LOOP); False = use the sampler's log-probs."""

    # -- policy loss (docs/algorithms.md § The policy loss the trainer shares) ---------
    clip_low: float = Field(0.2, ge=0, lt=1)
    """ε_low: the ratio is clipped below at 1 − ε_low."""
    clip_high: float = Field(0.2, ge=0)
    """ε_high: the ratio is clipped above at 1 + ε_high."""
    dual_clip: float | None = None
    """Dual-clip constant c > 1: for A < 0 the token loss is capped at c·|A|; None = off (c = 3 is usual)."""
    aggregation: Literal["token-mean", "seq-mean-token-mean"] = "token-mean"
    """Loss aggregation: token-mean = mean over all response tokens of the minibatch (GiGPO/verl);
    seq-mean-token-mean = each row's own token mean, then the mean over rows (LOOP)."""
    entropy_coef: float = Field(0.0, ge=0)
    """Weight of the entropy bonus (GiGPO 0.001); 0 = off."""
    kl_coef: float = Field(0.0, ge=0)
    """Weight of the k3 KL to the reference policy (GiGPO 0.01); 0 = no reference model is built."""

    # -- model -------------------------------------------------------------------
    lora: LoraConfig = Field(default_factory=LoraConfig)
    """LoRA settings; lora.enabled=False trains all weights."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Compute dtype: "auto" = bf16 on CUDA (when supported), fp32 on CPU."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Training device: "auto" = CUDA when present, else CPU."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, ~30% more compute)."""
    seed: int = 0
    """Seeds LoRA initialization and the minibatch shuffling."""
    dist_backend: Literal["auto", "gloo", "nccl"] = "auto"
    """torch.distributed backend when launched on several processes (torchrun sets WORLD_SIZE > 1):
    "auto" = NCCL with CUDA, else gloo. Ignored by a single process."""

    # -- scalar heads (trainer/heads.py) -------------------------------------------
    value_head: HeadConfig = Field(default_factory=HeadConfig)
    """GAE's value head, read at the last prompt token of each step row."""
    progress_head: HeadConfig = Field(default_factory=HeadConfig)
    """SPA's progress estimator, read at the last response token of each step row."""

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value):
        for name, beta in zip(("beta1", "beta2"), value):
            if not 0 <= beta < 1:
                raise ValueError(f"betas={tuple(value)}: {name}={beta} must be in [0, 1)")
        return value

    @field_validator("dual_clip")
    @classmethod
    def _dual_clip_above_one(cls, value):
        if value is not None and not value > 1:
            raise ValueError(f"dual_clip={value} must be > 1 (3.0 is usual) or None to turn dual clipping off")
        return value

    @field_validator("value_head")
    @classmethod
    def _value_head_uses_adam(cls, value):
        if value.mode != "online":
            raise ValueError(f"mode={value.mode!r} is a mode of SPA's progress estimator; the value head is online")
        if value.solver != "adam":
            raise ValueError(f"solver={value.solver!r} fits SPA's progress estimator only; the value head trains "
                             "with solver='adam' (PPO's clipped value loss)")
        return value
