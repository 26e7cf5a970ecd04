"""steprl agent: the LLM policy in multi-turn text environments.

    from steprl.agent import AgentConfig, PromptBuilder, make_engine, rollout

    config = AgentConfig(model="models/tiny", engine="hf", history_k=4)
    engine = make_engine(config)
    batch = rollout(vector_env, engine, config, tasks=[0, 1, 2, 3], k=4, max_turns=20)
    batch.save_jsonl("rollouts.jsonl")

Pieces: :mod:`agent.prompts` (prompt + token budget), :mod:`agent.parsing`
(response → action, ``format_ok``), :mod:`agent.engines` (``HFEngine``,
``VLLMEngine``), :mod:`agent.rollout` (group rollouts → ``TrajectoryBatch``),
:mod:`agent.models` (load, ``build_tiny_model``, ``import_smollm2``).
See docs/agent.md.
"""

from steprl.agent.config import AgentConfig
from steprl.agent.engines import Completion, Engine, HFEngine, Sampling, VLLMEngine, make_engine
from steprl.agent.parsing import ParsedResponse, parse_response
from steprl.agent.prompts import Prompt, PromptBuilder
from steprl.agent.rollout import FailedStart, StepRow, TrajectoryBatch, rollout

__all__ = [
    "AgentConfig",
    "Completion",
    "Engine",
    "HFEngine",
    "VLLMEngine",
    "Sampling",
    "make_engine",
    "ParsedResponse",
    "parse_response",
    "Prompt",
    "PromptBuilder",
    "FailedStart",
    "StepRow",
    "TrajectoryBatch",
    "rollout",
]
