"""Build the prompt of one agent step and tokenize it once.

A prompt is a chat: a system message and one user message holding the task,
the last ``history_k`` (observation, action) pairs, the current observation and,
when the env lists them, the admissible actions. The model's chat template
renders it (``add_generation_prompt=True``) and the tokenizer encodes it: those
token ids are what the engine sees and what the trainer trains on.

Over the token budget, the oldest history pairs go first and the count is
returned as :attr:`Prompt.history_cut`; if the prompt still does not fit, the
middle of the current observation is cut (:attr:`Prompt.obs_cut` characters).
Nothing is cut silently.

Tool envs (``tools/*``) give their tools' JSON schemas as ``info["tools"]``;
passed as ``tools=``, they go to ``apply_chat_template(..., tools=...)`` when
the tokenizer's chat template renders tools (Qwen2.5, Hermes, Llama 3.1, …),
and otherwise are listed in the system message in the Hermes format
(:func:`tool_system_text`). Either way the model answers with
``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Prompt", "PromptBuilder", "DEFAULT_SYSTEM_PROMPTS", "FORMAT_INSTRUCTIONS", "TOOL_INSTRUCTION",
           "template_supports_tools", "tool_system_text", "compact_tool_text", "TOOL_SCHEMAS"]

DEFAULT_SYSTEM_PROMPTS = {
    "plain": "You are an agent in a text environment. Each turn, reply with exactly one action and nothing else.",
    "think_action": (
        "You are an agent in a text environment. Each turn, think step by step inside <think> </think>, "
        "then give exactly one action inside <action> </action>."
    ),
    "tool_calls": (
        "You are an agent that completes a person's request by calling tools. Each turn, reply with one or more "
        "tool calls and nothing else."
    ),
}
FORMAT_INSTRUCTIONS = {
    "plain": "Reply with your next action.",
    "think_action": "Reply as <think>your reasoning</think><action>your next action</action>.",
    "tool_calls": "Reply with one or more tool calls.",
}
OBS_CUT_MARKER = " [...] "
TOOL_SCHEMAS = ("full", "compact", "none")
TOOL_INSTRUCTION = "Reply with one or more tool calls."


def template_supports_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders a ``tools`` list (it mentions the ``tools`` variable)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: transformers picks "tool_use" when tools are given
        template = template.get("tool_use") or template.get("default")
    return isinstance(template, str) and "tools" in template


def tool_system_text(tools: Sequence[dict]) -> str:
    """The tools listed for a chat template that cannot render them (the Hermes / Qwen2.5 wording)."""
    listing = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n"
            f"<tools>\n{listing}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')


def compact_tool_text(tools: Sequence[dict]) -> str:
    """The tools one line each, ``name(arg, optional_arg?): description``: a tenth of the JSON schemas' tokens."""
    lines = []
    for tool in tools:
        fn = tool.get("function", tool)
        params = fn.get("parameters") or {}
        required = set(params.get("required") or ())
        args = ", ".join(name if name in required else f"{name}?" for name in (params.get("properties") or {}))
        description = (fn.get("description") or "").strip().split("\n")[0]
        lines.append(f"{fn.get('name', '?')}({args})" + (f": {description}" if description else ""))
    return ("Tools (call as <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>):\n" + "\n".join(lines))


@dataclass
class Prompt:
    """One tokenized prompt.

    Attributes:
        token_ids: the chat-templated prompt, ending with the assistant header.
        text: the same prompt as text (for display; never re-encoded).
        history_cut: (observation, action) pairs of the ``history_k`` window
            dropped to fit ``max_prompt_tokens``.
        obs_cut: characters cut from the middle of the current observation
            after all history was dropped (0 almost always).
        actions_cut: admissible actions left off the end of the list because
            the task and the list alone exceed the budget (an ALFWorld room
            with hundreds of objects); the list ends with ``… K more``.
    """

    token_ids: list[int]
    text: str
    history_cut: int = 0
    obs_cut: int = 0
    actions_cut: int = 0


class PromptBuilder:
    """Render agent steps with a tokenizer's chat template under a token budget.

    Args:
        tokenizer: a Hugging Face tokenizer with a ``chat_template``.
        history_k: past (observation, action) pairs to show; 0 shows none.
        response_format: ``"plain"``, ``"think_action"`` or ``"tool_calls"`` (picks the default
            system prompt and the reply instruction).
        max_prompt_tokens: token budget of the whole prompt.
        system_prompt: overrides the default system message.
        show_admissible_actions: list the env's admissible actions.
        history_observations: show past observations with past actions (False: the actions only).
        tool_schemas: how a tool env's tools are listed: ``"full"`` (JSON schemas, through the chat
            template when it renders tools), ``"compact"`` (:func:`compact_tool_text`, one line each)
            or ``"none"`` (not listed: the model learns them from demonstrations).

    Example:
        >>> builder = PromptBuilder(tokenizer, history_k=2)
        >>> prompt = builder.build("Find the coin.", "You are in a kitchen.", history=[("...", "go east")])
        >>> prompt.token_ids[:5], prompt.history_cut
    """

    def __init__(
        self,
        tokenizer,
        *,
        history_k: int = 4,
        response_format: str = "plain",
        max_prompt_tokens: int = 1024,
        system_prompt: str | None = None,
        show_admissible_actions: bool = True,
        history_observations: bool = True,
        tool_schemas: str = "full",
    ):
        if history_k < 0:
            raise ValueError(f"history_k={history_k} must be >= 0")
        if response_format not in DEFAULT_SYSTEM_PROMPTS:
            raise ValueError(f"response_format={response_format!r} is not one of {sorted(DEFAULT_SYSTEM_PROMPTS)}")
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)!r} has no chat_template; "
                "use an instruct model or build one with `steprl model tiny`"
            )
        self.tokenizer = tokenizer
        self.history_k = history_k
        self.response_format = response_format
        self.max_prompt_tokens = max_prompt_tokens
        self.system_prompt = system_prompt if system_prompt is not None else DEFAULT_SYSTEM_PROMPTS[response_format]
        self.show_admissible_actions = show_admissible_actions
        self.history_observations = history_observations
        if tool_schemas not in TOOL_SCHEMAS:
            raise ValueError(f"tool_schemas={tool_schemas!r} is not one of {TOOL_SCHEMAS}")
        self.tool_schemas = tool_schemas

    @classmethod
    def from_config(cls, tokenizer, config) -> "PromptBuilder":
        """Build from an :class:`agent.config.AgentConfig`."""
        return cls(
            tokenizer,
            history_k=config.history_k,
            response_format=config.response_format,
            max_prompt_tokens=config.max_prompt_tokens,
            system_prompt=config.system_prompt,
            show_admissible_actions=config.show_admissible_actions,
            history_observations=config.history_observations,
            tool_schemas=config.tool_schemas,
        )

    # -- rendering ------------------------------------------------------------
    def user_message(
        self,
        task: str,
        observation: str,
        history: Sequence[tuple[str, str]] = (),
        admissible_actions: Sequence[str] | None = None,
        tools: Sequence[dict] | None = None,
    ) -> str:
        """The user turn's text for exactly this history (no windowing, no budget)."""
        parts = [f"Task: {task.strip()}"]
        if history and not self.history_observations:
            parts.append(f"Your last {len(history)} actions, oldest first: "
                         + ", ".join(past_action.strip() for _, past_action in history))
        elif history:
            lines = [f"Your last {len(history)} steps, oldest first:"]
            for past_obs, past_action in history:
                lines.append(f"Observation: {past_obs.strip()}")
                lines.append(f"Action: {past_action.strip()}")
            parts.append("\n".join(lines))
        parts.append(f"Current observation:\n{observation.strip()}")
        if self.show_admissible_actions and admissible_actions:
            parts.append("Admissible actions: " + ", ".join(a.strip() for a in admissible_actions))
        parts.append(TOOL_INSTRUCTION if tools else FORMAT_INSTRUCTIONS[self.response_format])
        return "\n\n".join(parts)

    def messages(self, task, observation, history=(), admissible_actions=None, tools=None) -> list[dict[str, str]]:
        """The chat (system + user) for exactly this history.

        With ``tools`` and a chat template that cannot render them, the system
        message also lists them (:func:`tool_system_text`).
        """
        system = self.system_prompt
        listing = None
        if tools and self.tool_schemas == "compact":
            listing = compact_tool_text(tools)
        elif tools and self.tool_schemas == "full" and not template_supports_tools(self.tokenizer):
            listing = tool_system_text(tools)
        if listing:
            system = f"{system}\n\n{listing}" if system else listing
        chat = [{"role": "system", "content": system}] if system else []
        chat.append({"role": "user", "content": self.user_message(task, observation, history, admissible_actions, tools)})
        return chat

    def render(self, task, observation, history=(), admissible_actions=None, tools=None) -> tuple[str, list[int]]:
        """Chat-template the prompt and encode it once: ``(text, token_ids)``."""
        extra = ({"tools": list(tools)} if tools and self.tool_schemas == "full" and template_supports_tools(self.tokenizer)
                 else {})
        text = self.tokenizer.apply_chat_template(
            self.messages(task, observation, history, admissible_actions, tools), tokenize=False,
            add_generation_prompt=True, **extra
        )
        return text, self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # -- the budget -----------------------------------------------------------
    def build(
        self,
        task: str,
        observation: str,
        history: Sequence[tuple[str, str]] = (),
        admissible_actions: Sequence[str] | None = None,
        tools: Sequence[dict] | None = None,
    ) -> Prompt:
        """The prompt of one step within ``max_prompt_tokens``.

        Args:
            task: the episode's instruction (``info["task"]``).
            observation: what the agent sees now.
            history: all past (observation, action) pairs of the episode, oldest
                first; the last ``history_k`` are shown.
            admissible_actions: the env's list, or ``None``.
            tools: the env's tool schemas (``info["tools"]``), or ``None``.

        Raises:
            ValueError: the prompt does not fit even with no history and an
                empty observation (the budget is too small for the task text).
        """
        window = list(history)[-self.history_k :] if self.history_k else []

        def fits(cut: int) -> tuple[str, list[int]] | None:
            text, ids = self.render(task, observation, window[cut:], admissible_actions, tools)
            return (text, ids) if len(ids) <= self.max_prompt_tokens else None

        full = fits(0)
        if full is not None:
            return Prompt(full[1], full[0])
        # binary search for the fewest oldest pairs to drop (prompt length shrinks as cut grows)
        low, high = 1, len(window)
        best = None
        while low <= high:
            mid = (low + high) // 2
            got = fits(mid)
            if got is not None:
                best, high = (mid, got), mid - 1
            else:
                low = mid + 1
        if best is not None:
            cut, (text, ids) = best
            return Prompt(ids, text, history_cut=cut)
        return self._cut_observation(task, observation, admissible_actions, history_cut=len(window), tools=tools)

    def _cut_observation(self, task, observation, admissible_actions, history_cut: int, tools=None) -> Prompt:
        """No history fits: keep the head and tail of the observation, cut the middle."""
        observation = observation.strip()

        def shortened(keep: int) -> str:
            if keep >= len(observation):
                return observation
            head = keep // 2
            return observation[:head] + OBS_CUT_MARKER + observation[len(observation) - (keep - head) :]

        text, ids = self.render(task, shortened(0), (), admissible_actions, tools)
        actions_cut = 0
        if len(ids) > self.max_prompt_tokens and self.show_admissible_actions and admissible_actions:
            admissible_actions, actions_cut = self._cut_actions(task, observation, list(admissible_actions), tools)
            text, ids = self.render(task, observation, (), admissible_actions, tools)
            if len(ids) <= self.max_prompt_tokens:  # the whole observation fits beside the shortened list
                return Prompt(ids, text, history_cut=history_cut, actions_cut=actions_cut)
            text, ids = self.render(task, shortened(0), (), admissible_actions, tools)
        if len(ids) > self.max_prompt_tokens:
            raise ValueError(
                f"max_prompt_tokens={self.max_prompt_tokens} is too small: the prompt without history or observation "
                f"already has {len(ids)} tokens (system prompt, task, tools"
                f"{'' if actions_cut else ', admissible actions'}). Raise max_prompt_tokens."
            )
        keep, (text, ids) = _largest_fitting(
            0, len(observation) - 1, lambda n: self.render(task, shortened(n), (), admissible_actions, tools),
            self.max_prompt_tokens) or (0, (text, ids))  # most characters that still fit
        return Prompt(ids, text, history_cut=history_cut, obs_cut=len(observation) - keep, actions_cut=actions_cut)

    def _cut_actions(self, task, observation, actions: list[str], tools) -> tuple[list[str], int]:
        """The longest head of ``actions`` (plus a ``… K more`` item) whose prompt fits with the full
        observation, or with an empty one if none does; and K."""
        def listed(n: int) -> list[str]:
            return actions[:n] + [f"… {len(actions) - n} more"]

        for obs in (observation, ""):
            found = _largest_fitting(0, len(actions) - 1, lambda n: self.render(task, obs, (), listed(n), tools),
                                     self.max_prompt_tokens)
            if found is not None:
                return listed(found[0]), len(actions) - found[0]
        return [], len(actions)


def _largest_fitting(low: int, high: int, render, budget: int):
    """The largest n in [low, high] whose ``render(n)`` = (text, ids) has at most ``budget`` ids, with that
    rendering, as ``(n, (text, ids))``; None if none fits. Prompt length grows with n (binary search)."""
    best = None
    while low <= high:
        mid = (low + high) // 2
        rendered = render(mid)
        if len(rendered[1]) <= budget:
            best, low = (mid, rendered), mid + 1
        else:
            high = mid - 1
    return best
