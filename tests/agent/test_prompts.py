"""PromptBuilder: content, history window, chat template, and the token budget."""

import pytest

from steprl.agent.config import AgentConfig
from steprl.agent.prompts import DEFAULT_SYSTEM_PROMPTS, PromptBuilder

HISTORY = [(f"You are in hall {i}.", f"go east {i}") for i in range(6)]


def test_prompt_content_and_template(tokenizer):
    builder = PromptBuilder(tokenizer, history_k=2)
    prompt = builder.build("Find the coin.", "You are in hall 6.", HISTORY, ["go east", "look"])
    text = prompt.text
    assert text.startswith("<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPTS["plain"] + "<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert "Task: Find the coin." in text and "Current observation:\nYou are in hall 6." in text
    assert "Admissible actions: go east, look" in text
    # only the last k=2 pairs, oldest first
    assert "go east 3" not in text and text.index("go east 4") < text.index("go east 5")
    assert "Your last 2 steps" in text
    # the ids are one encoding of the rendered text
    assert prompt.token_ids == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert prompt.history_cut == 0 and prompt.obs_cut == 0


def test_history_k_zero_and_no_admissible(tokenizer):
    builder = PromptBuilder(tokenizer, history_k=0, show_admissible_actions=False)
    text = builder.build("t", "obs", HISTORY, ["go east"]).text
    assert "Action:" not in text and "Admissible" not in text


def test_think_action_format_and_custom_system(tokenizer):
    builder = PromptBuilder(tokenizer, response_format="think_action", system_prompt="Be brief.")
    text = builder.build("t", "obs").text
    assert "<|im_start|>system\nBe brief.<|im_end|>" in text and "<action>your next action</action>" in text


def test_budget_cuts_oldest_history_first_and_counts(tokenizer):
    full = PromptBuilder(tokenizer, history_k=6, max_prompt_tokens=10_000)
    lengths = [len(full.build("t", "obs", HISTORY[cut:]).token_ids) for cut in range(7)]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
    for budget_cut in (1, 3, 6):  # a budget that admits exactly HISTORY[budget_cut:]
        builder = PromptBuilder(tokenizer, history_k=6, max_prompt_tokens=lengths[budget_cut])
        prompt = builder.build("t", "obs", HISTORY)
        assert prompt.history_cut == budget_cut
        assert len(prompt.token_ids) == lengths[budget_cut] <= builder.max_prompt_tokens
        assert f"go east {budget_cut - 1}" not in prompt.text
        if budget_cut < 6:
            assert f"go east {budget_cut}" in prompt.text


def test_pairs_outside_the_window_are_not_counted_as_cut(tokenizer):
    prompt = PromptBuilder(tokenizer, history_k=2, max_prompt_tokens=10_000).build("t", "obs", HISTORY)
    assert prompt.history_cut == 0


def test_observation_cut_when_no_history_fits(tokenizer):
    observation = "You are in hall 1. " * 200
    base = PromptBuilder(tokenizer, max_prompt_tokens=100_000)
    empty_len = len(base.build("t", "").token_ids)
    builder = PromptBuilder(tokenizer, history_k=3, max_prompt_tokens=empty_len + 40)
    prompt = builder.build("t", observation, HISTORY)
    assert prompt.history_cut == 3
    assert 0 < prompt.obs_cut < len(observation)
    assert len(prompt.token_ids) <= builder.max_prompt_tokens
    assert "[...]" in prompt.text


def test_budget_too_small_names_the_numbers(tokenizer):
    builder = PromptBuilder(tokenizer, max_prompt_tokens=32)
    with pytest.raises(ValueError, match="max_prompt_tokens=32 is too small"):
        builder.build("a long task " * 20, "obs")


def test_a_list_of_admissible_actions_too_long_for_the_budget_is_cut_at_its_end(tokenizer):
    """An ALFWorld room with hundreds of objects: the list's head fits with the whole observation and
    ends with "… K more"; the run goes on instead of stopping on a ValueError."""
    actions = [f"{i}: take mug {i} from countertop {i}" for i in range(1, 301)]
    base = PromptBuilder(tokenizer, max_prompt_tokens=100_000)
    no_list = len(base.build("t", "You are in the kitchen.", HISTORY).token_ids)
    builder = PromptBuilder(tokenizer, history_k=2, max_prompt_tokens=no_list + 200)
    prompt = builder.build("t", "You are in the kitchen.", HISTORY, actions)
    assert len(prompt.token_ids) <= builder.max_prompt_tokens
    shown = prompt.text.split("Admissible actions: ")[1].split("\n")[0].split(", ")
    assert shown[-1] == f"… {prompt.actions_cut} more" and 0 < prompt.actions_cut < len(actions)
    assert shown[:-1] == actions[: len(actions) - prompt.actions_cut]  # the head, in order
    assert "Current observation:\nYou are in the kitchen." in prompt.text and prompt.obs_cut == 0
    # one action more would not fit
    longer = actions[: len(shown)] + [f"… {prompt.actions_cut - 1} more"]
    assert len(base.build("t", "You are in the kitchen.", (), longer).token_ids) > builder.max_prompt_tokens
    # a list that fits is left whole
    assert builder.build("t", "You are in the kitchen.", (), actions[:3]).actions_cut == 0


def test_from_config(tokenizer):
    config = AgentConfig(model="m", history_k=1, response_format="think_action", max_prompt_tokens=77)
    builder = PromptBuilder.from_config(tokenizer, config)
    assert (builder.history_k, builder.response_format, builder.max_prompt_tokens) == (1, "think_action", 77)


def test_tokenizer_without_template_is_refused(tokenizer):
    class NoTemplate:
        chat_template = None
        name_or_path = "base-model"

    with pytest.raises(ValueError, match="'base-model' has no chat_template"):
        PromptBuilder(NoTemplate())
    with pytest.raises(ValueError, match="response_format='json'"):
        PromptBuilder(tokenizer, response_format="json")


def test_actions_only_history_is_shorter_and_lists_actions(tokenizer):
    from steprl.agent.prompts import PromptBuilder

    history = [("You are in a long kitchen with a table.", "go east"), ("You are in a hall.", "go north")]
    full = PromptBuilder(tokenizer, history_k=2).build("Find the coin.", "You are in a cellar.", history)
    short = PromptBuilder(tokenizer, history_k=2, history_observations=False).build(
        "Find the coin.", "You are in a cellar.", history)
    assert "Your last 2 actions, oldest first: go east, go north" in short.text
    assert "long kitchen" not in short.text and "long kitchen" in full.text
    assert len(short.token_ids) < len(full.token_ids)
