"""PromptBuilder with a tool env: schemas go to the chat template's ``tools=``, or into the system message."""

import copy

from steprl import envs
from steprl.agent.prompts import TOOL_INSTRUCTION, PromptBuilder, template_supports_tools, tool_system_text

#: a ChatML template that renders tools, as Qwen2.5's does (shortened)
TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n<tools>{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}\n</tools>"
    "<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tool_info():
    env = envs.make("tools/python-v0", split="test", num_tasks=1)
    return env.reset(seed=0, options={"task": 0})


def test_fallback_lists_tools_in_the_system_message(tokenizer):
    obs, info = tool_info()
    assert not template_supports_tools(tokenizer)  # the tiny model's plain ChatML template
    prompt = PromptBuilder(tokenizer, max_prompt_tokens=100_000).build(info["task"], obs, (), None, tools=info["tools"])
    system = prompt.text.split("<|im_end|>")[0]
    assert tool_system_text(info["tools"]) in system and system.count('"name": "run_python"') == 1
    assert system.count('{"type": "function"') == 2  # run_python and submit_answer
    assert prompt.text.rstrip().endswith(TOOL_INSTRUCTION + "<|im_end|>\n<|im_start|>assistant")
    assert prompt.token_ids == tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    # without tools, nothing about them
    plain = PromptBuilder(tokenizer, max_prompt_tokens=100_000).build(info["task"], obs)
    assert "<tools>" not in plain.text and TOOL_INSTRUCTION not in plain.text


def test_tools_go_to_a_template_that_renders_them(tokenizer):
    obs, info = tool_info()
    tool_tokenizer = copy.deepcopy(tokenizer)
    tool_tokenizer.chat_template = TOOL_TEMPLATE
    assert template_supports_tools(tool_tokenizer)
    prompt = PromptBuilder(tool_tokenizer, max_prompt_tokens=100_000).build(info["task"], obs, tools=info["tools"])
    assert prompt.text.startswith('<|im_start|>system\n<tools>{"type": "function", "function": {"name": "run_python"')
    assert prompt.text.count("run_python") >= 1 and "# Tools" not in prompt.text  # rendered by the template only
    assert prompt.text.count("<tools>") == 1
    assert prompt.token_ids == tool_tokenizer(prompt.text, add_special_tokens=False)["input_ids"]


def test_budget_counts_the_tools(tokenizer):
    obs, info = tool_info()
    history = [(f"<tool_response>{i}</tool_response>", f"<tool_call>{i}</tool_call>") for i in range(4)]
    full = PromptBuilder(tokenizer, history_k=4, max_prompt_tokens=100_000)
    lengths = [len(full.build("t", obs, history[cut:], tools=info["tools"]).token_ids) for cut in range(5)]
    without = len(full.build("t", obs, history).token_ids)
    assert lengths[0] > without  # the tool listing costs tokens
    prompt = PromptBuilder(tokenizer, history_k=4, max_prompt_tokens=lengths[2]).build("t", obs, history, tools=info["tools"])
    assert prompt.history_cut == 2 and len(prompt.token_ids) == lengths[2]


def test_compact_and_none_tool_listings(tokenizer):
    env = envs.make("tools/apps-v0", split="test", num_tasks=1)
    obs, info = env.reset(seed=0, options={"task": 0})
    tool_tokenizer = copy.deepcopy(tokenizer)
    tool_tokenizer.chat_template = TOOL_TEMPLATE  # compact and none bypass even a template that renders tools
    lengths = {}
    for mode in ("full", "compact", "none"):
        prompt = PromptBuilder(tool_tokenizer, max_prompt_tokens=100_000, tool_schemas=mode).build(
            info["task"], obs, tools=info["tools"])
        lengths[mode] = len(prompt.token_ids)
        assert prompt.text.rstrip().endswith(TOOL_INSTRUCTION + "<|im_end|>\n<|im_start|>assistant")
        if mode == "compact":
            assert "<tools>" not in prompt.text and '{"type": "function"' not in prompt.text
            lines = [line for line in prompt.text.splitlines() if line.startswith("calendar_reschedule_event(")]
            assert lines == ["calendar_reschedule_event(event_id, date, start_time): "
                             + next(t["function"]["description"] for t in info["tools"]
                                    if t["function"]["name"] == "calendar_reschedule_event").split("\n")[0]]
        if mode == "none":
            assert "calendar_reschedule_event" not in prompt.text
    assert lengths["none"] < lengths["compact"] < lengths["full"] / 3


def test_bad_tool_schemas_fails_naming_it(tokenizer):
    import pytest

    with pytest.raises(ValueError, match="tool_schemas='short'"):
        PromptBuilder(tokenizer, tool_schemas="short")
