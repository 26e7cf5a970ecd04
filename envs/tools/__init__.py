"""Tool-calling environments: ``tools/apps-v0`` (AppWorld-style apps) and ``tools/python-v0`` (a Python sandbox).

The agent's response holds ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
blocks (Hermes / Qwen format); ``info["tools"]`` gives the tools' JSON schemas
for ``tokenizer.apply_chat_template(..., tools=info["tools"])``. See
``docs/tools.md`` and :mod:`envs.tools.protocol`.
"""

from steprl.envs.registration import register
from steprl.envs.tools.env import ToolEnv
from steprl.envs.tools.protocol import (
    Tool,
    ToolCall,
    ToolError,
    format_tool_call,
    format_tool_calls,
    format_tool_responses,
    function_schema,
    parse_tool_calls,
    random_tool_call,
    validate_arguments,
)

__all__ = ["ToolEnv", "Tool", "ToolCall", "ToolError", "function_schema", "parse_tool_calls", "validate_arguments",
           "format_tool_call", "format_tool_calls", "format_tool_responses", "random_tool_call", "RandomToolPolicy"]


class RandomToolPolicy:
    """The floor of the tool envs: a random tool with random, well-typed arguments each turn."""

    name = "random-tool"

    def __init__(self, seed: int = 0):
        import numpy as np

        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: str, info: dict) -> str:
        return random_tool_call(info["tools"], self.rng)


register(
    "tools/apps-v0",
    "steprl.envs.tools.apps.env:AppsEnv",
    description="AppWorld-style apps (contacts, calendar, messages, wallet, notes, shop): 37 API tools, 14 task "
                "templates, state-based checks (LOOP's setting, small).",
    kwargs={"max_turns": 20},
)
register(
    "tools/python-v0",
    "steprl.envs.tools.python_env:PythonEnv",
    description="Generated problems (word problems, string/list puzzles, CSV questions) solved with a sandboxed "
                "Python tool; reward 1 for the right answer.",
    kwargs={"max_turns": 6},
)
