"""collect_expert_steps: an env that raises ends its expert episode, not the SFT data collection."""

from __future__ import annotations

import pytest

from steprl import envs
from tests.envs import toy
from steprl.trainer.expert import collect_expert_steps


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from steprl.agent.models import build_tiny_model

    corpus = ["You are in room 0 of 2.", "Reach room 3.", "east", "west"] * 20
    path = build_tiny_model(corpus, tmp_path_factory.mktemp("tiny"), hidden=32, layers=1, vocab=300)
    return AutoTokenizer.from_pretrained(str(path))


def test_an_env_crash_ends_only_that_expert_episode(tokenizer):
    from steprl.agent.prompts import PromptBuilder

    builder = PromptBuilder(tokenizer, max_prompt_tokens=256)
    env = envs.make("toy/FlakyReset-v0", num_tasks=4)
    toy.FlakyResetEnv.fail_once = set(env.unwrapped.task_seeds[1:2])  # task 1's reset raises once
    steps, stats = collect_expert_steps(env, builder, tokenizer, 4, max_turns=10)
    # the rollout's rule: a failed reset is retried once on the rebuilt env, so task 1 is played too
    assert stats["sft/env_errors"] == 1.0
    assert stats["sft/expert_success_rate"] == 1.0
    lengths = [2 + seed % 4 for seed in env.unwrapped.task_seeds]  # the corridor's rule: one step per room
    assert len(steps) == stats["sft/examples"] == sum(lengths)


def test_an_env_crash_mid_episode_drops_that_episode(tokenizer):
    from steprl.agent.prompts import PromptBuilder

    env = envs.make("toy/Crashing-v0", crash_at=3, num_tasks=4)  # lengths 2..5: the 3rd step of 3-5 raises
    steps, stats = collect_expert_steps(env, PromptBuilder(tokenizer, max_prompt_tokens=256), tokenizer, 4,
                                        max_turns=10)
    lengths = [2 + seed % 4 for seed in env.unwrapped.task_seeds]
    assert stats["sft/env_errors"] == sum(n >= 3 for n in lengths)
    assert stats["sft/expert_success_rate"] == pytest.approx(sum(n < 3 for n in lengths) / 4)
    assert len(steps) == sum(n for n in lengths if n < 3)


def test_an_env_that_always_raises_is_an_error(tokenizer):
    from steprl.agent.prompts import PromptBuilder

    env = envs.make("toy/Crashing-v0", crash_at=1, num_tasks=2)
    with pytest.raises(RuntimeError, match="simulated env crash"):
        collect_expert_steps(env, PromptBuilder(tokenizer, max_prompt_tokens=256), tokenizer, 2, max_turns=10)
