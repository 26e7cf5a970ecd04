"""Generation engines behind one interface (:class:`Engine`).

``HFEngine`` (transformers, in-process) and ``VLLMEngine`` (vLLM, optional
extra). :func:`make_engine` builds the one an :class:`~agent.config.AgentConfig` names.
"""

from steprl.agent.engines.base import Completion, Engine, Sampling, default_device, resolve_dtype
from steprl.agent.engines.hf import HFEngine
from steprl.agent.engines.vllm import VLLMEngine, vllm_available

__all__ = [
    "Completion", "Engine", "Sampling", "HFEngine", "VLLMEngine", "make_engine", "vllm_available",
    "default_device", "resolve_dtype",
]


def make_engine(config, *, path=None, module=None, tokenizer=None, seed: int = 0) -> Engine:
    """The engine ``config.engine`` names, with every engine setting of ``config``.

    The one place engines are built: rollout workers, the trainer and evaluation
    all call it, so a setting honoured in one is honoured in all.

    Args:
        config: an :class:`agent.config.AgentConfig`.
        path: the model folder to load (default ``config.model``).
        module: for ``engine: hf``, a loaded model to generate with directly (the
            trainer's policy module: one model copy); ``tokenizer`` comes with it.
        seed: the sampler seed of engines that take one (vLLM).
    """
    path = str(path if path is not None else config.model)
    if config.engine == "hf":
        if module is not None:
            if tokenizer is None:
                raise ValueError("make_engine(module=...) needs the module's tokenizer too")
            return HFEngine(module, tokenizer, max_batch_size=config.max_batch_size)
        device = None if config.device == "auto" else config.device
        return HFEngine.from_pretrained(
            path,
            dtype=config.dtype,
            device=device,
            max_batch_size=config.max_batch_size,
            trust_remote_code=config.trust_remote_code,
        )
    if config.engine == "vllm":
        return VLLMEngine(
            path,
            dtype=config.dtype,
            gpu_memory_utilization=config.vllm_gpu_memory_utilization,
            kv_cache_gib=config.vllm_kv_cache_gib,
            max_model_len=config.vllm_max_model_len or config.max_prompt_tokens + config.max_new_tokens,
            enable_prefix_caching=config.vllm_enable_prefix_caching,
            entropy_top_k=config.vllm_entropy_top_k,
            trust_remote_code=config.trust_remote_code,
            seed=seed,
        )
    raise ValueError(f"engine={config.engine!r} is not one of 'hf', 'vllm'")
