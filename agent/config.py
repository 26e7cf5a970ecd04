"""``AgentConfig``: everything about the policy that is not training.

Which model, which engine, how to sample, how to build prompts. Composed into
the run config under ``agent:``; unknown keys and bad values fail at load time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from steprl.agent.engines.base import Sampling

__all__ = ["AgentConfig"]


class AgentConfig(BaseModel):
    """The LLM agent: model, engine, sampling and prompting."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    model: str
    """Model folder (e.g. written by `steprl model tiny`) or a hub id."""
    engine: Literal["hf", "vllm"] = "hf"
    """Generation backend: in-process transformers (`hf`) or vLLM (`vllm`, an optional extra)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype; `auto` = bf16 on CUDA, fp32 on CPU."""
    device: str = "auto"
    """Torch device of the HF engine; `auto` = CUDA when present, else CPU."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature; 0 = greedy. In training this shapes only which responses are sampled: the recorded
    log-probs and the trainer's are the model's own at temperature 1, so below 1 the rollouts come from a sharper
    distribution than the one the policy gradient weighs."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass; 1 = off."""
    top_k: int = Field(0, ge=0)
    """Sample only among the k most likely tokens; 0 = off."""
    max_new_tokens: int = Field(64, ge=1)
    """Most tokens per response, the stop token included."""
    history_k: int = Field(4, ge=0)
    """Past (observation, action) pairs shown in the prompt; 0 = none."""
    history_observations: bool = True
    """Show past observations with past actions; False lists only the last history_k actions (short prompts)."""
    response_format: Literal["plain", "think_action", "tool_calls"] = "plain"
    """`plain`: the response is the action; `think_action`: <think>…</think><action>…</action>."""
    max_prompt_tokens: int = Field(1024, ge=32)
    """Prompt token budget; over it the oldest history is cut first (and counted)."""
    system_prompt: str | None = None
    """System message; None = the built-in one for `response_format`."""
    show_admissible_actions: bool = True
    """List the env's admissible actions in the prompt when it gives them."""
    tool_schemas: Literal["full", "compact", "none"] = "full"
    """Tool envs: `full` JSON schemas (through the chat template when it renders tools), `compact` one line per
    tool (name, arguments, description: a tenth of the tokens), or `none` (learned from demonstrations)."""
    max_batch_size: int = Field(256, ge=1)
    """HF engine: most sequences (prompts × samples) per forward pass."""
    vllm_gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    """vLLM on CUDA: memory share for weights + KV cache; None = 0.5."""
    vllm_kv_cache_gib: float | None = Field(None, gt=0)
    """vLLM KV cache size in GiB; None = 1 on CPU, from vllm_gpu_memory_utilization on CUDA."""
    vllm_max_model_len: int | None = Field(None, ge=16)
    """vLLM context length; None = max_prompt_tokens + max_new_tokens."""
    vllm_enable_prefix_caching: bool = True
    """vLLM: reuse the KV cache of shared prompt prefixes (reset after every weight update)."""
    vllm_entropy_top_k: int = Field(20, ge=0)
    """vLLM: per-token entropy from the top-k log-probs (k above 20 raises vLLM's log-prob cap); 0 = no entropy."""
    trust_remote_code: bool = False
    """Allow model folders that ship their own modeling code."""

    def sampling(self, seed: int | None = None) -> Sampling:
        """The engine :class:`~agent.engines.base.Sampling` these settings describe."""
        return Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_new_tokens=self.max_new_tokens,
            seed=seed,
        )
