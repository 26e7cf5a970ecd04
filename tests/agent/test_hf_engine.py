"""HFEngine: log-probs equal teacher forcing, seeding, stopping, sampling knobs, weight updates."""

import pytest
import torch

from steprl.agent.engines import Engine, HFEngine, Sampling
from tests.agent.conftest import teacher_forced_logprobs

TEXTS = ["go east", "You are in hall 3. There is a coin here. Find the coin in hall 4.", "look", "take coin please"]


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]


def test_is_an_engine(hf_engine):
    assert isinstance(hf_engine, Engine)


def test_logprobs_equal_teacher_forcing(tiny_model_dir, prompts):
    # prompts of different lengths (left padding), n > 1, and more rows than max_batch_size (chunks)
    engine = HFEngine.from_pretrained(str(tiny_model_dir), dtype="float32", device="cpu", max_batch_size=5)
    out = engine.generate(prompts, n=3, sampling=Sampling(temperature=1.0, max_new_tokens=24, seed=0))
    assert [len(o) for o in out] == [3] * len(prompts)
    worst = 0.0
    for prompt, completions in zip(prompts, out):
        for c in completions:
            assert len(c.token_ids) == len(c.logprobs) > 0
            reference = teacher_forced_logprobs(engine.model, prompt, c.token_ids)
            worst = max(worst, max(abs(a - b) for a, b in zip(c.logprobs, reference)))
    assert worst <= 1e-5


def test_identical_prompts_are_prefilled_once(hf_engine, prompts):
    a, b = prompts[1], prompts[2]
    batch_rows = []
    handle = hf_engine.model.register_forward_pre_hook(
        lambda module, args, kwargs: batch_rows.append(kwargs["input_ids"].shape), with_kwargs=True)
    try:
        out = hf_engine.generate([a, a, b, a], sampling=Sampling(temperature=0, max_new_tokens=6))
        sampled = hf_engine.generate([a], n=4, sampling=Sampling(temperature=1.0, max_new_tokens=6, seed=3))
    finally:
        handle.remove()
    assert batch_rows[0] == (2, len(a))  # the prefill: 2 unique prompts, as wide as the longest
    assert all(shape == (4, 1) for shape in batch_rows[1:len(out[0][0].token_ids)])  # then one row per prompt
    for prompt, (completion,) in zip([a, a, b, a], out):
        (alone,) = hf_engine.generate([prompt], sampling=Sampling(temperature=0, max_new_tokens=6))[0]
        assert completion.token_ids == alone.token_ids
        assert completion.logprobs == pytest.approx(alone.logprobs, abs=1e-5)
    # the copies of one prompt are sampled independently
    assert len({tuple(c.token_ids) for c in sampled[0]}) > 1


def test_a_cache_that_cannot_be_copied_falls_back_to_prefilling_every_row(hf_engine, prompts, monkeypatch):
    from transformers.cache_utils import Cache

    a, b = prompts[1], prompts[2]
    sampling = Sampling(temperature=1.0, max_new_tokens=6, seed=4)
    copied = hf_engine.generate([a, a, b], sampling=sampling)
    monkeypatch.delattr(Cache, "batch_select_indices")
    batch_rows = []
    handle = hf_engine.model.register_forward_pre_hook(
        lambda module, args, kwargs: batch_rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    try:
        fallback = hf_engine.generate([a, a, b], sampling=sampling)
    finally:
        handle.remove()
    assert batch_rows[:2] == [2, 3]  # the unique prefill, then every row's
    for x, y in zip(copied, fallback):
        assert x[0].token_ids == y[0].token_ids
        assert x[0].logprobs == pytest.approx(y[0].logprobs, abs=1e-5)


def test_seeded_calls_repeat_and_seeds_differ(hf_engine, prompts):
    sampling = Sampling(max_new_tokens=12, seed=7)
    first = hf_engine.generate(prompts, n=2, sampling=sampling)
    assert hf_engine.generate(prompts, n=2, sampling=sampling) == first
    other = hf_engine.generate(prompts, n=2, sampling=Sampling(max_new_tokens=12, seed=8))
    assert [c.token_ids for o in other for c in o] != [c.token_ids for o in first for c in o]
    assert first[0][0].token_ids != first[0][1].token_ids  # the n samples of one prompt differ


def test_greedy_and_degenerate_sampling_follow_the_argmax(hf_engine, prompts):
    greedy = hf_engine.generate(prompts, sampling=Sampling(temperature=0, max_new_tokens=8))
    for prompt, (c,) in zip(prompts, greedy):
        ids = torch.tensor([prompt + c.token_ids])
        with torch.no_grad():
            logits = hf_engine.model(ids).logits[0, len(prompt) - 1 : -1]
        assert logits.argmax(-1).tolist() == c.token_ids
    top_k_1 = hf_engine.generate(prompts, sampling=Sampling(top_k=1, max_new_tokens=8, seed=1))
    tiny_top_p = hf_engine.generate(prompts, sampling=Sampling(top_p=1e-6, max_new_tokens=8, seed=2))
    assert [o[0].token_ids for o in top_k_1] == [o[0].token_ids for o in greedy]
    assert [o[0].token_ids for o in tiny_top_p] == [o[0].token_ids for o in greedy]


def test_max_new_tokens_gives_length(hf_engine, prompts):
    for (c,) in hf_engine.generate(prompts, sampling=Sampling(temperature=0, max_new_tokens=5)):
        stopped = c.token_ids[-1] in hf_engine.stop_ids
        assert c.finish_reason == ("stop" if stopped else "length")
        assert len(c.token_ids) == 5 or stopped


def test_stops_at_im_end_and_keeps_it(tiny_model_dir, prompts):
    engine = HFEngine.from_pretrained(str(tiny_model_dir), device="cpu")
    im_end = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in engine.stop_ids
    with torch.no_grad():  # make <|im_end|> the likeliest token after the first step
        engine.model.lm_head.weight[im_end] *= 0  # tied: also the input embedding
        engine.model.model.norm.weight.fill_(1.0)
    out = engine.generate(prompts, sampling=Sampling(temperature=0, max_new_tokens=16))
    # a prompt stops as soon as <|im_end|> is sampled: the token is kept, text has no special token
    stopped = [c for (c,) in out if c.finish_reason == "stop"]
    for c in stopped:
        assert c.token_ids[-1] in engine.stop_ids and "<|im_end|>" not in c.text
        assert all(t not in engine.stop_ids for t in c.token_ids[:-1])
    engine.stop_ids = [out[0][0].token_ids[0]]  # force: the first greedy token is now a stop token
    (c,), *_ = engine.generate(prompts, sampling=Sampling(temperature=0, max_new_tokens=16))
    assert c.token_ids == out[0][0].token_ids[:1] and c.finish_reason == "stop"


def test_update_weights_changes_logprobs_like_the_trainer(tiny_model_dir, prompts):
    engine = HFEngine.from_pretrained(str(tiny_model_dir), device="cpu")
    trainer_model, _ = __import__("steprl.agent.models", fromlist=["load_model"]).load_model(str(tiny_model_dir), device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in trainer_model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    before = engine.generate(prompts, sampling=Sampling(max_new_tokens=8, seed=3))
    engine.update_weights(trainer_model.state_dict())
    after = engine.generate(prompts, sampling=Sampling(max_new_tokens=8, seed=3))
    moved = 0.0
    for prompt, (b,), (a,) in zip(prompts, before, after):
        reference = teacher_forced_logprobs(trainer_model, prompt, a.token_ids)
        assert max(abs(x - y) for x, y in zip(a.logprobs, reference)) <= 1e-5
        old = teacher_forced_logprobs(trainer_model, prompt, b.token_ids)
        moved = max(moved, max(abs(x - y) for x, y in zip(b.logprobs, old)))
    assert moved > 1e-2  # the update really changed the policy


def test_update_weights_rejects_bad_state_dicts(hf_engine):
    with pytest.raises(KeyError, match="model.layers.9.mlp.up_proj.weight"):
        hf_engine.update_weights({"model.layers.9.mlp.up_proj.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="model.norm.weight has shape"):
        hf_engine.update_weights({"model.norm.weight": torch.zeros(3)})


def test_bad_arguments(hf_engine, prompts):
    with pytest.raises(ValueError, match="n=0"):
        hf_engine.generate(prompts, n=0)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        hf_engine.generate([prompts[0], []])
