"""Fixtures for the agent tests: a tiny model built in ~1 s, toy envs, fake engines.

The toy envs and scripted engines exist to pin down the agent's own
behaviour (token bookkeeping, parsing, grouping); the rollout acceptance test
also runs on a real TextWorld env (test_rollout_textworld.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest

from steprl import envs
from steprl.agent.engines.base import Completion


# -- toy envs --------------------------------------------------------------------
class HallEnv(envs.TextEnv):
    """Walk east through ``2 + seed % 3`` rooms and ``take coin`` in the last one."""

    def _load_task(self, task_seed: int) -> None:
        self.length = 2 + task_seed % 3

    def _state(self) -> tuple[str, dict]:
        text = f"You are in hall {self.pos}." + (" There is a coin here." if self.pos == self.length else "")
        actions = ["go east"] if self.pos < self.length else ["take coin"]
        actions += (["go west"] if self.pos else []) + ["look"]
        expert = "go east" if self.pos < self.length else "take coin"
        return text, {"task": f"Find the coin in hall {self.length}.", "admissible_actions": actions, "anchor": text,
                      "expert_action": expert}

    def _reset_task(self, rng: np.random.Generator):
        self.pos = 0
        return self._state()

    def _step_action(self, action: str):
        if action == "look":
            return self._state()[0], 0.0, False, False, self._state()[1]
        if action == "go east" and self.pos < self.length:
            self.pos += 1
        elif action == "go west" and self.pos > 0:
            self.pos -= 1
        elif action == "take coin" and self.pos == self.length:
            obs, info = self._state()
            info["success"] = True
            return "You take the coin. You win!", 1.0, True, False, info
        else:
            return self.invalid_action()
        obs, info = self._state()
        return obs, 0.0, False, False, info


class CrashingHallEnv(HallEnv):
    """A hall whose task 1 raises on its second step."""

    def _reset_task(self, rng):
        self.steps = 0
        return super()._reset_task(rng)

    def _step_action(self, action: str):
        self.steps += 1
        if self.task_seed == 1 and self.steps == 2:
            raise RuntimeError("simulated env crash")
        return super()._step_action(action)


class BadResetHallEnv(HallEnv):
    """A hall whose task 1 never resets, and whose task 2 fails its first reset in this process."""

    flaky: set[int] = {2}

    def _reset_task(self, rng):
        if self.task_seed == 1:
            raise RuntimeError("simulated broken task")
        if self.task_seed in BadResetHallEnv.flaky:
            BadResetHallEnv.flaky.discard(self.task_seed)
            raise RuntimeError("simulated flaky reset")
        return super()._reset_task(rng)


envs.register("agenttest/Hall-v0", HallEnv, description="agent-test hall", max_episode_steps=30)
envs.register("agenttest/CrashingHall-v0", CrashingHallEnv, description="crashing hall", max_episode_steps=30)
envs.register("agenttest/BadResetHall-v0", BadResetHallEnv, description="hall with failing resets",
              max_episode_steps=30)


def make_vector_env(env_id: str = "agenttest/Hall-v0", num_envs: int = 16, **kwargs) -> envs.TextVectorEnv:
    return envs.TextVectorEnv([functools.partial(envs.make, env_id, **kwargs)] * num_envs)


CORPUS = [
    "You are in hall 0.", "You are in hall 3. There is a coin here.", "Find the coin in hall 4.", "go east",
    "go west", "take coin", "look", "You take the coin. You win!", "That is not a valid action.",
    "<think>the coin is east</think><action>go east</action>",
] * 20


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A from-scratch Qwen2 model (hidden 128, head_dim 64, 2 layers) with a ChatML tokenizer."""
    from steprl.agent.models import build_tiny_model

    return build_tiny_model(CORPUS, tmp_path_factory.mktemp("tiny"), hidden=128, layers=2, vocab=512, seed=0)


@pytest.fixture(scope="session")
def hf_engine(tiny_model_dir):
    """HFEngine on the tiny model, fp32 on CPU (shared: tests must not change its weights)."""
    from steprl.agent.engines.hf import HFEngine

    return HFEngine.from_pretrained(str(tiny_model_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tokenizer(hf_engine):
    return hf_engine.tokenizer


# -- fake engines ------------------------------------------------------------------
class ScriptedEngine:
    """Answers with text chosen by ``script(call_index, row_index, prompt_ids)``; encodes it + ``<|im_end|>``.

    ``token_ids`` may also be returned by the script directly (a list of ints) to
    produce tokenizations the tokenizer itself would never make.
    """

    def __init__(self, tokenizer, script: Callable[[int, int, list[int]], str | list[int]]):
        self.tokenizer = tokenizer
        self.script = script
        self.calls = 0
        self.im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate(self, prompt_token_ids, n=1, sampling=None):
        out = []
        for row, prompt in enumerate(prompt_token_ids):
            answer = self.script(self.calls, row, list(prompt))
            ids = answer if isinstance(answer, list) else self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            ids = list(ids) + [self.im_end]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            out.append([Completion(ids, [-0.5] * len(ids), text, "stop") for _ in range(n)])
        self.calls += 1
        return out

    def update_weights(self, state_dict):
        pass


class RecordingEngine:
    """Wraps an engine and records every call's prompts and completions."""

    def __init__(self, engine):
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.calls: list[tuple[list[list[int]], list[list[Completion]]]] = []

    def generate(self, prompt_token_ids, n=1, sampling=None):
        prompts = [list(p) for p in prompt_token_ids]
        completions = self.engine.generate(prompt_token_ids, n=n, sampling=sampling)
        self.calls.append((prompts, completions))
        return completions

    def update_weights(self, state_dict):
        self.engine.update_weights(state_dict)


def teacher_forced_logprobs(model, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
    """log p(response token | prefix) from one unpadded forward pass (the trainer's view)."""
    import torch

    ids = torch.tensor([prompt_ids + response_ids], device=next(model.parameters()).device)
    with torch.no_grad():
        logits = model(ids).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)[len(prompt_ids) - 1 : -1]
    return logprobs.gather(-1, torch.tensor(response_ids, device=ids.device)[:, None])[:, 0].tolist()


def vllm_engine_in(model_dir, cache_dir, **kwargs):
    """A generator for module fixtures: a fp32 VLLMEngine with its compile cache in ``cache_dir``
    (``VLLM_CACHE_ROOT`` set while it lives, restored after it closes)."""
    import os

    from steprl.agent.engines.vllm import VLLMEngine

    old = os.environ.get("VLLM_CACHE_ROOT")
    os.environ["VLLM_CACHE_ROOT"] = str(cache_dir)
    engine = VLLMEngine(str(model_dir), dtype="float32", max_model_len=1024, seed=0, **kwargs)
    try:
        yield engine
    finally:
        engine.close()
        if old is None:
            os.environ.pop("VLLM_CACHE_ROOT", None)
        else:
            os.environ["VLLM_CACHE_ROOT"] = old
