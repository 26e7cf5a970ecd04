"""Expert demonstrations for the SFT warm start: the env's ``expert_action`` as response tokens.

Each step's prompt is built by the same :class:`agent.prompts.PromptBuilder`
the RL rollouts use, so SFT trains on exactly the prompts the policy will see.
The response is the expert action in the configured response format, encoded
once, followed by the chat template's end-of-turn token.
"""

from __future__ import annotations

from dataclasses import dataclass

from steprl.envs.wrappers import indexed_action_text

__all__ = ["ExpertStep", "collect_expert_steps", "expert_example", "format_action"]


@dataclass
class ExpertStep:
    """One behaviour-cloning example (the trainer's batching reads these two fields)."""

    prompt_ids: list[int]
    response_ids: list[int]


def format_action(action: str, response_format: str) -> str:
    """The response text an ideal policy gives for ``action``."""
    if response_format == "think_action":
        return f"<think></think><action>{action}</action>"
    return action


def end_of_turn_id(tokenizer) -> int:
    """The token that ends an assistant turn (ChatML's ``<|im_end|>``, else EOS)."""
    token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id is not None:
        return token_id
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has neither <|im_end|> nor an EOS token to end a response")
    return int(tokenizer.eos_token_id)


def expert_example(prompt_ids, action: str, tokenizer, response_format: str, stop: int) -> ExpertStep:
    """One SFT example: ``prompt_ids`` → ``action`` in ``response_format``, encoded once, then ``stop``."""
    response = tokenizer.encode(format_action(action, response_format), add_special_tokens=False)
    return ExpertStep(list(prompt_ids), list(response) + [stop])


class _RecordingExpert:
    """The expert policy that also records each step as an SFT example (prompt as the rollout builds it)."""

    def __init__(self, prompt_builder, tokenizer, stop: int):
        self.builder, self.tokenizer, self.stop = prompt_builder, tokenizer, stop
        self.history: list[tuple[str, str]] = []
        self.steps: list[ExpertStep] = []

    def __call__(self, obs: str, info: dict) -> str | None:
        action = info.get("expert_action")
        if not action:
            return None
        prompt = self.builder.build(info["task"], obs, self.history, info.get("admissible_actions"),
                                    tools=info.get("tools"))
        self.steps.append(expert_example(prompt.token_ids, action, self.tokenizer, self.builder.response_format,
                                         self.stop))
        self.history.append((obs, indexed_action_text(action, info.get("admissible_actions"))))
        return action


def collect_expert_steps(env, prompt_builder, tokenizer, episodes: int, *, max_turns: int, seed: int = 0,
                         successful_only: bool = True) -> tuple[list[ExpertStep], dict[str, float]]:
    """Play ``episodes`` expert episodes (task i mod num_tasks) and return their steps, in episode order.

    Episodes go through the scripted-agent loop (:func:`agent.scripted.play_scripted`): the
    rollout's seeds, turn limit and error rules. Returns ``(steps, stats)``;
    ``stats`` has the expert's success rate, the number of steps and
    ``sft/env_errors``. With ``successful_only`` an episode the expert failed adds
    nothing. An env error ends that episode as a failure (a failed reset is retried
    once); if every episode hits one, a ``RuntimeError`` carries the last message.
    """
    from steprl.agent.scripted import play_scripted
    from steprl.envs.vector import TextVectorEnv

    stop = end_of_turn_id(tokenizer)
    tasks = [episode % env.unwrapped.num_tasks for episode in range(episodes)]
    with TextVectorEnv([lambda: env], num_workers=0) as vector_env:
        played = play_scripted(vector_env, lambda task: _RecordingExpert(prompt_builder, tokenizer, stop), tasks,
                               seed=seed, max_turns=max_turns)
    errored = [e for e in played if e.error is not None and not e.success]
    if played and len(errored) == len(played):
        raise RuntimeError(f"every expert episode hit an env error; the last: {errored[-1].error}")
    steps = [step for e in played if e.success or not successful_only for step in (e.policy.steps if e.policy else [])]
    wins = sum(e.success for e in played)
    return steps, {"sft/expert_success_rate": wins / max(episodes, 1), "sft/examples": float(len(steps)),
                   "sft/env_errors": float(sum(e.env_errors for e in played))}
