"""Completion.entropy: the HF engine's equals a full forward pass; vLLM's top-k approximation; rows carry it."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from steprl import credit
from steprl.agent.engines import HFEngine, Sampling
from steprl.agent.engines.vllm import _completion, topk_entropy
from steprl.agent.prompts import PromptBuilder
from steprl.agent.rollout import TrajectoryBatch, rollout
from tests.agent.conftest import make_vector_env

TEXTS = ["go east", "You are in hall 3. There is a coin here. Find the coin in hall 4.", "look"]


def forward_entropy(model, prompt_ids, response_ids, temperature: float) -> float:
    """Mean over the response of H(softmax(logits / T)), from one unpadded forward pass of prompt + response."""
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].double()
    log_probs = torch.log_softmax(logits / temperature, dim=-1)
    return float(-(log_probs.exp() * log_probs).sum(-1).mean())


@pytest.mark.parametrize("sampling", [
    Sampling(temperature=1.0, max_new_tokens=20, seed=0),
    Sampling(temperature=0.7, top_k=50, top_p=0.9, max_new_tokens=20, seed=1),  # entropy is before truncation
    Sampling(temperature=0.0, max_new_tokens=12),  # greedy records the temperature-1 entropy
], ids=["t1", "t0.7-topk-topp", "greedy"])
def test_hf_entropy_equals_a_full_forward_pass(tiny_model_dir, tokenizer, sampling):
    engine = HFEngine.from_pretrained(str(tiny_model_dir), dtype="float32", device="cpu", max_batch_size=4)
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    out = engine.generate(prompts, n=2, sampling=sampling)  # left padding, rows that stop early
    temperature = sampling.temperature or 1.0
    for prompt, completions in zip(prompts, out):
        for c in completions:
            assert c.entropy is not None and c.entropy >= 0
            assert c.entropy == pytest.approx(forward_entropy(engine.model, prompt, c.token_ids, temperature),
                                              abs=1e-5)


def test_recording_entropy_leaves_the_tokens_as_they_were(hf_engine, tokenizer, monkeypatch):
    """The entropy is computed beside the sampler: same seed, same tokens and log-probs with it replaced."""
    import steprl.agent.engines.hf as hf

    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    sampling = Sampling(temperature=0.8, max_new_tokens=16, seed=5)
    with_entropy = hf_engine.generate(prompts, n=2, sampling=sampling)
    monkeypatch.setattr(hf, "_entropy", lambda logits, log_probs, temperature: torch.zeros(logits.shape[0]))
    without = hf_engine.generate(prompts, n=2, sampling=sampling)
    assert [[(c.token_ids, c.logprobs) for c in o] for o in with_entropy] == \
        [[(c.token_ids, c.logprobs) for c in o] for o in without]
    assert all(c.entropy == 0.0 for o in without for c in o)


def _entropy(logits: np.ndarray) -> float:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return float(-(p * np.log(p)).sum())


def test_topk_entropy_is_the_truncated_renormalized_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 40)) * 2
    logprobs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # temperature-1 log-probs
    # all 40 tokens: the exact entropy at any temperature
    for temperature in (1.0, 0.6):
        exact = np.mean([_entropy(row / temperature) for row in logits])
        assert topk_entropy(logprobs.tolist(), temperature) == pytest.approx(exact, abs=1e-12)
    # the top 8: the temperature-T distribution restricted to them, renormalized (order does not matter)
    top = [sorted(row, reverse=True)[:8] for row in logprobs.tolist()]
    truncated = np.mean([_entropy(np.array(row) / 0.6) for row in top])
    assert topk_entropy([row[::-1] for row in top], 0.6) == pytest.approx(truncated, abs=1e-12)
    assert truncated < np.mean([_entropy(row / 0.6) for row in logits])  # it misses the tail
    assert topk_entropy([[-0.1, -2.5], []]) is None and topk_entropy([]) is None


def test_vllm_completion_reads_flat_and_dict_logprobs():
    """Both forms vLLM returns: FlatLogprobs (sampled token first, then the top k) and a dict per position."""
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 10))
    logprobs = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).tolist()
    tokens, k = [4, 0, 9], 3
    flat = SimpleNamespace(start_indices=[], end_indices=[], token_ids=[], logprobs=[])
    dicts = []
    for token, row in zip(tokens, logprobs):
        top = sorted(range(10), key=lambda i: -row[i])[:k]
        flat.start_indices.append(len(flat.logprobs))
        flat.token_ids += [token] + top
        flat.logprobs += [row[token]] + [row[i] for i in top]
        flat.end_indices.append(len(flat.logprobs))
        position = {token: SimpleNamespace(logprob=row[token], rank=1 + sorted(row, reverse=True).index(row[token]))}
        position.update({i: SimpleNamespace(logprob=row[i], rank=r + 1) for r, i in enumerate(top)})
        dicts.append(position)
    expected = topk_entropy([sorted(row, reverse=True)[:k] for row in logprobs], 0.5)
    tokenizer = SimpleNamespace(decode=lambda ids, skip_special_tokens: " ".join(map(str, ids)))
    for form in (flat, dicts):
        sample = SimpleNamespace(token_ids=tokens, logprobs=form, finish_reason="stop")
        c = _completion(sample, tokenizer, entropy_top_k=k, temperature=0.5)
        assert c.logprobs == [row[t] for t, row in zip(tokens, logprobs)] and c.text == "4 0 9"
        assert c.entropy == pytest.approx(expected, abs=1e-12)
        assert _completion(sample, tokenizer, entropy_top_k=0).entropy is None


def test_rows_carry_the_entropy_into_jsonl_and_credit(hf_engine, tmp_path):
    builder = PromptBuilder(hf_engine.tokenizer, history_k=1, max_prompt_tokens=256)
    with make_vector_env(num_envs=4) as venv:
        batch = rollout(venv, hf_engine, builder, tasks=[0, 1], k=2, max_turns=2,
                        sampling=Sampling(max_new_tokens=4), seed=0, progress=False)
    assert all(isinstance(r.entropy, float) and r.entropy >= 0 for r in batch.rows)
    loaded = TrajectoryBatch.load_jsonl(batch.save_jsonl(tmp_path / "episodes.jsonl"))
    assert [r.entropy for r in loaded.rows] == [r.entropy for r in batch.rows]
    step_batch = credit.StepBatch.from_rows(loaded.rows)
    np.testing.assert_array_equal(step_batch.entropy, [r.entropy for r in batch.rows])
    assert credit.empg(step_batch, credit.estimate("grpo", step_batch)).shape == (len(batch),)
