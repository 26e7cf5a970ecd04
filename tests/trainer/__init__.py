"""Shared helpers for the trainer tests: a tiny Qwen2 model and step rows of raw token ids (no tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

VOCAB = 300


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One torch thread per test module (restored after): on 2 busy cores, two OpenMP threads running
    these tiny models contend and spin, measured ~10× slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0):
    """A 2-layer Qwen2ForCausalLM (hidden 64, head_dim 32), fp32, deterministic weights."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        intermediate_size=128,
        vocab_size=VOCAB,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    return model.float().eval()


@dataclass
class Row:
    """The fields of the agent's StepRow that the trainer reads."""

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float] = field(default_factory=list)
    traj_id: int = 0
    step: int = 0
    reward: float = 0.0


def make_rows(shapes, seed: int = 0) -> list[Row]:
    """Rows with random token ids; ``shapes`` is a list of (prompt length, response length)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i, (p, r) in enumerate(shapes):
        prompt = torch.randint(3, VOCAB, (p,), generator=g).tolist()
        response = torch.randint(3, VOCAB, (r,), generator=g).tolist()
        rows.append(Row(prompt, response, traj_id=i))
    return rows
