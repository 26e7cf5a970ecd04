"""The engine interface: token ids in, sampled token ids and their log-probs out.

Every engine (``HFEngine``, ``VLLMEngine``, a remote one later) implements
:class:`Engine`. Prompts go in as token ids, never as text, and completions
come back as the exact token ids the sampler drew, so nothing on the training
path is ever decoded and re-encoded.

Log-probs are the model's own, ``log_softmax(logits)`` at temperature 1 before
top-p/top-k, for the sampled token: the quantity the trainer recomputes.

Each completion also carries its mean token entropy (EMPG's step uncertainty,
docs/credit.md § EMPG): the entropy of the sampling distribution
``softmax(logits / temperature)`` over the whole vocabulary (before top-k/top-p
truncation), averaged over the response tokens, computed from the logits the
sampler already has. Greedy decoding (temperature 0) records the temperature-1
entropy. ``HFEngine`` computes it exactly; ``VLLMEngine`` from the top-k log-probs
vLLM returns (an approximation, see its ``entropy_top_k``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import inspect

import torch

__all__ = ["Completion", "Sampling", "Engine", "default_device", "resolve_dtype", "forward_takes"]

FinishReason = Literal["stop", "length"]


@dataclass
class Completion:
    """One sampled response.

    Attributes:
        token_ids: the response tokens exactly as sampled, the stop token
            (EOS / ``<|im_end|>``) included when generation stopped on it.
        logprobs: ``log p(token)`` under the model (temperature 1), one per token.
        text: ``token_ids`` decoded without special tokens, for parsing and display.
        finish_reason: ``"stop"`` (a stop token was sampled) or ``"length"``
            (``max_new_tokens`` reached first).
        entropy: mean over the response tokens of the sampling distribution's entropy
            (nats, after temperature; module docstring); None when the engine did not
            record it.
    """

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: FinishReason
    entropy: float | None = None


@dataclass(frozen=True)
class Sampling:
    """How to sample. ``temperature=0`` is greedy decoding.

    Attributes:
        temperature: softmax temperature; 0 picks the argmax token.
        top_p: nucleus sampling mass in (0, 1]; 1 disables it.
        top_k: keep the k most likely tokens; 0 disables it.
        max_new_tokens: most tokens per response, the stop token included.
        seed: makes a call reproducible (same prompts, same seed, same engine
            → same completions); ``None`` draws fresh randomness.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k} must be >= 0 (0 disables it)")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens} must be >= 1")


@runtime_checkable
class Engine(Protocol):
    """What a rollout needs from a generation backend.

    Attributes:
        tokenizer: the model's Hugging Face tokenizer (chat template, decoding).
    """

    tokenizer: object

    def generate(
        self, prompt_token_ids: Sequence[Sequence[int]], n: int = 1, sampling: Sampling | None = None
    ) -> list[list[Completion]]:
        """Sample ``n`` completions per prompt; ``out[i][j]`` is prompt i's j-th sample."""
        ...

    def update_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load new policy weights (full or partial state dict, HF parameter names)."""
        ...


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str | torch.dtype, device: torch.device | str) -> torch.dtype:
    """``"auto"`` → bf16 on a CUDA device that supports it, fp32 otherwise."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        device = torch.device(device)
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} is not one of 'auto', {', '.join(map(repr, _DTYPES))}")
    return _DTYPES[dtype]


def forward_takes(model: torch.nn.Module, argument: str) -> bool:
    """Whether a causal LM's forward (the base model's, under a peft wrapper) takes ``argument``.

    Used for ``logits_to_keep`` (logits for the last positions only) and ``position_ids``.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return argument in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - a forward without a signature
        return False


def stop_token_ids(tokenizer, generation_config=None) -> list[int]:
    """Token ids that end a response: the EOS id(s) and ``<|im_end|>`` when the vocab has it."""
    ids: list[int] = []
    candidates = [getattr(generation_config, "eos_token_id", None), tokenizer.eos_token_id]
    for cand in candidates:
        for tok in cand if isinstance(cand, (list, tuple)) else [cand]:
            if tok is not None and tok not in ids:
                ids.append(int(tok))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    if im_end is not None and im_end not in ids:
        ids.append(int(im_end))
    if not ids:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no EOS token and no <|im_end|>: cannot stop")
    return ids
