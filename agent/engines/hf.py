"""HFEngine: batched sampling with a plain transformers model.

A small decode loop instead of ``model.generate`` so that every piece that
matters for RL is visible: left padding with explicit position ids, the
sampler (temperature, top-k, top-p, seeded ``torch.Generator``), the
log-prob of each sampled token under the model at temperature 1, and the
entropy of the distribution each token was drawn from (``Completion.entropy``,
the mean over the response: an exact ``softmax(logits / T)`` entropy over the
whole vocabulary, from the logits the sampler already holds; no extra forward pass).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from steprl.agent.engines.base import Completion, Sampling, forward_takes, stop_token_ids

__all__ = ["HFEngine"]


class HFEngine:
    """Generate with a transformers causal LM, in this process.

    Args:
        model: a causal LM (``AutoModelForCausalLM``); it may be the very
            module the trainer optimizes, then ``update_weights`` is a no-op.
        tokenizer: its tokenizer.
        max_batch_size: most sequences (prompts × n) per forward pass.
        prefill_unique: prefill each distinct prompt of a batch once and copy its KV cache to
            the rows that repeat it (a group's K episodes share their first prompt). False
            prefills every row, as a baseline for ``benchmarks/rollout_throughput.py``.

    Example:
        >>> engine = HFEngine.from_pretrained("runs/tiny")
        >>> ids = engine.tokenizer("look", add_special_tokens=False).input_ids
        >>> engine.generate([ids], n=2, sampling=Sampling(seed=0))[0][1].token_ids
    """

    def __init__(self, model: torch.nn.Module, tokenizer, max_batch_size: int = 256, prefill_unique: bool = True):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size} must be >= 1")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.prefill_unique = prefill_unique
        self.stop_ids = stop_token_ids(tokenizer, getattr(model, "generation_config", None))
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.stop_ids[0]
        # only the last position is sampled: skip the [batch, prompt_len, vocab] logits where the model allows it
        self._last_logits_only = {"logits_to_keep": 1} if forward_takes(model, "logits_to_keep") else {}

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        *,
        dtype: str = "auto",
        device: str | torch.device | None = None,
        max_batch_size: int = 256,
        trust_remote_code: bool = False,
    ) -> "HFEngine":
        """Load a model folder or hub id (see :func:`agent.models.load_model`)."""
        from steprl.agent.models import load_model

        model, tokenizer = load_model(path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, max_batch_size=max_batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- generation -----------------------------------------------------------
    def generate(
        self, prompt_token_ids: Sequence[Sequence[int]], n: int = 1, sampling: Sampling | None = None
    ) -> list[list[Completion]]:
        """Sample ``n`` completions for each prompt; ``out[i][j]`` is prompt i's j-th sample.

        Sequences are batched ``max_batch_size`` at a time. With
        ``sampling.seed`` set, the same call returns the same completions.
        """
        sampling = sampling or Sampling()
        if n < 1:
            raise ValueError(f"n={n} must be >= 1")
        prompts = [list(map(int, p)) for p in prompt_token_ids]
        for i, p in enumerate(prompts):
            if not p:
                raise ValueError(f"prompt {i} is empty: every prompt needs at least one token")
        generator = torch.Generator(device=self.device)
        generator.manual_seed(sampling.seed if sampling.seed is not None else int(torch.randint(2**62, ()).item()))
        flat = [p for p in prompts for _ in range(n)]  # prompt i's samples are rows i*n .. i*n+n-1
        order = sorted(range(len(flat)), key=lambda row: len(flat[row]))  # similar lengths share a batch: less padding
        results: list[Completion | None] = [None] * len(flat)
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(order), self.max_batch_size):
                rows = order[start : start + self.max_batch_size]
                for row, completion in zip(rows, self._generate_batch([flat[r] for r in rows], sampling, generator)):
                    results[row] = completion
        finally:
            self.model.train(was_training)
        return [results[i * n : (i + 1) * n] for i in range(len(prompts))]

    @torch.inference_mode()
    def _generate_batch(
        self, prompts: list[list[int]], sampling: Sampling, generator: torch.Generator
    ) -> list[Completion]:
        device, batch = self.device, len(prompts)
        past, logits, attention_mask, position_ids = self._prefill(prompts)
        stop = torch.tensor(self.stop_ids, device=device)

        out_tokens = torch.empty((batch, 0), dtype=torch.long, device=device)
        out_logprobs = torch.empty((batch, 0), dtype=torch.float32, device=device)
        entropy_sum = torch.zeros(batch, dtype=torch.float32, device=device)  # over each row's response tokens
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        lengths = torch.zeros(batch, dtype=torch.long, device=device)
        for step in range(sampling.max_new_tokens):
            token = _sample(logits, sampling, generator)
            log_probs = torch.log_softmax(logits, dim=-1)
            logprob = log_probs.gather(-1, token[:, None])[:, 0]
            entropy_sum += _entropy(logits, log_probs, sampling.temperature).masked_fill(finished, 0.0)
            token = torch.where(finished, self.pad_id, token)
            out_tokens = torch.cat([out_tokens, token[:, None]], dim=1)
            out_logprobs = torch.cat([out_logprobs, logprob[:, None]], dim=1)
            lengths += (~finished).long()
            finished |= torch.isin(token, stop)
            if bool(finished.all()) or step == sampling.max_new_tokens - 1:
                break
            attention_mask = torch.cat([attention_mask, torch.ones((batch, 1), dtype=torch.long, device=device)], dim=1)
            position_ids = position_ids[:, -1:] + 1
            past, logits = self._forward(token[:, None], attention_mask, position_ids, past)

        tokens, logprobs, entropy_sum, lengths = (out_tokens.tolist(), out_logprobs.tolist(), entropy_sum.tolist(),
                                                  lengths.tolist())
        completions = []
        for row in range(batch):
            ids = tokens[row][: lengths[row]]
            stopped = bool(ids) and ids[-1] in self.stop_ids
            completions.append(
                Completion(
                    token_ids=ids,
                    logprobs=logprobs[row][: lengths[row]],
                    text=self.tokenizer.decode(ids, skip_special_tokens=True),
                    finish_reason="stop" if stopped else "length",
                    entropy=max(entropy_sum[row] / max(lengths[row], 1), 0.0),
                )
            )
        return completions

    def _forward(self, input_ids, attention_mask, position_ids, past):
        """One cached forward pass: ``(past_key_values, fp32 logits of the last position)``."""
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            past_key_values=past, use_cache=True, **self._last_logits_only)
        return output.past_key_values, output.logits[:, -1, :].float()

    def _prefill(self, prompts: list[list[int]]):
        """``(past_key_values, last logits, attention_mask, position_ids)``, one row per prompt.

        Identical prompts (a group's K episodes at their first turn, or after the same
        actions) are prefilled once; their KV cache and logits are then copied to every
        row that asked. A cache that cannot be copied across rows falls back to every row.
        """
        first_row: dict[tuple[int, ...], int] = {}
        source = [first_row.setdefault(tuple(p), len(first_row)) for p in prompts]
        if self.prefill_unique and len(first_row) < len(prompts):
            input_ids, attention_mask, position_ids = self._left_padded([list(p) for p in first_row])
            past, logits = self._forward(input_ids, attention_mask, position_ids, None)
            if hasattr(past, "batch_select_indices"):
                expand = torch.tensor(source, device=self.device)
                past.batch_select_indices(expand)
                return past, logits[expand], attention_mask[expand], position_ids[expand]
        input_ids, attention_mask, position_ids = self._left_padded(prompts)
        past, logits = self._forward(input_ids, attention_mask, position_ids, None)
        return past, logits, attention_mask, position_ids

    def _left_padded(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``input_ids``, ``attention_mask``, ``position_ids`` on the device; every prompt ends at the last column."""
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            input_ids[row, width - len(p) :] = torch.tensor(p)
            attention_mask[row, width - len(p) :] = 1
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        return input_ids, attention_mask, (attention_mask.cumsum(-1) - 1).clamp(min=0)

    # -- weights --------------------------------------------------------------
    @torch.no_grad()
    def update_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Copy ``state_dict`` (HF names, full or partial) into the model in place.

        Raises ``KeyError`` naming unknown parameters and ``ValueError`` on a
        shape mismatch; nothing is copied unless every entry fits. For tied
        weights (``lm_head`` = ``embed_tokens``) the first name given wins, as
        in vLLM's loader.
        """
        own = self.model.state_dict(keep_vars=True)  # every name, tied aliases included
        unknown = [name for name in state_dict if name not in own]
        if unknown:
            raise KeyError(
                f"update_weights: {len(unknown)} unknown parameter(s), e.g. {unknown[:3]}; "
                f"expected names like {list(own)[:3]}"
            )
        for name, tensor in state_dict.items():
            if tuple(tensor.shape) != tuple(own[name].shape):
                raise ValueError(
                    f"update_weights: {name} has shape {tuple(tensor.shape)}, the model's is {tuple(own[name].shape)}"
                )
        written: set[int] = set()
        for name, tensor in state_dict.items():
            target = own[name]
            if target.data_ptr() in written:
                continue  # a tied alias of a tensor already loaded
            written.add(target.data_ptr())
            if tensor.data_ptr() != target.data_ptr():
                target.data.copy_(tensor)


def _entropy(logits: torch.Tensor, log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Entropy (nats) of ``softmax(logits / temperature)`` per row, over the whole vocabulary.

    ``log_probs`` are the temperature-1 log-probs already computed; they serve as they are at
    temperature 1, and at temperature 0 (greedy: the point mass has no entropy, so the model's
    own temperature-1 distribution is recorded instead).
    """
    if temperature not in (0, 1):
        log_probs = torch.log_softmax(logits / temperature, dim=-1)
    return -(log_probs.exp() * log_probs).nansum(dim=-1)  # nansum: a -inf logit adds 0·(−inf) → 0


def _sample(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> torch.Tensor:
    """Draw one token per row from ``logits`` [batch, vocab] (float32)."""
    if sampling.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / sampling.temperature
    if sampling.top_k > 0 and sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # keep a token while the mass before it is < top_p
        sorted_logits = sorted_logits.masked_fill(mass_before >= sampling.top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
