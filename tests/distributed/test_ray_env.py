"""Ray executor for envs: same API and trajectories as the local vector env; a killed actor costs only its episodes."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from steprl import envs
from steprl.envs.vector import make_vector_env
from steprl.agent.engines.base import Completion
from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0)

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_factory_picks_the_executor_and_validates():
    local = make_vector_env([envs.make_fn("toy/Corridor-v0")] * 2)
    assert isinstance(local, envs.TextVectorEnv) and local.num_workers == 0
    local.close()
    with pytest.raises(ValueError, match="executor='threads' is not one of"):
        make_vector_env([envs.make_fn("toy/Corridor-v0")], executor="threads")
    with pytest.raises(ValueError, match="executor='ray' needs num_workers >= 1, got 0"):
        make_vector_env([envs.make_fn("toy/Corridor-v0")], executor="ray", num_workers=0)


def test_ray_vector_env_matches_local(ray_local):
    fns = [envs.make_fn("toy/Corridor-v0")] * 4
    script = [["east", None, "fly", "east"], ["east", "east", None, None], ["west", "east", "east", "east"],
              [envs.Reset(3, {"task": 1}), "east", None, envs.Reset(0, {"task": 0})]]
    outputs = []
    for executor, workers in (("local", 0), ("ray", 2)):
        with make_vector_env(fns, executor=executor, num_workers=workers) as venv:
            record = [venv.reset(seeds=[0, 1, 2, 3], options=[{"task": i} for i in range(4)])]
            for actions in script:
                obs, rewards, terminated, truncated, infos = venv.step(actions)
                record.append((obs, rewards.tolist(), terminated.tolist(), truncated.tolist(), infos))
            outputs.append(record)
    assert outputs[0] == outputs[1]
    assert outputs[1][2][1] == [1.0, 0.0, 0.0, 0.0]  # env 0 (corridor of 2) won on its 2nd step
    with make_vector_env(fns, executor="ray", num_workers=2) as venv:  # send/recv: same results, one round per recv
        venv.reset(seeds=[0, 1, 2, 3], options=[{"task": i} for i in range(4)])
        for actions, expected in zip(script, outputs[0][1:]):
            venv.send({i: a for i, a in enumerate(actions) if a is not None})
            got = venv.recv()
            assert not venv.in_flight and sorted(got) == [i for i, a in enumerate(actions) if a is not None]
            assert all(got[i][0] == expected[0][i] and got[i][4] == expected[4][i] for i in got)
    assert outputs[1][4][0][0] == "You are in room 0 of 3." and outputs[1][4][4][3]["reset"] is True


def test_quickstart_rollout_same_trajectories_as_local(ray_local, tmp_path):
    """The quickstart env and agent settings: a Ray rollout (2 env actors) equals the local one, row for row."""
    import torch

    from steprl.agent.engines.hf import HFEngine
    from steprl.agent.models import build_tiny_model
    from steprl.agent.prompts import PromptBuilder
    from steprl.agent.rollout import rollout
    from steprl.config import load_run_config

    torch.set_num_threads(1)
    cfg = load_run_config("configs/quickstart.yaml", ["env.train_tasks=4", "env.max_turns=4"])
    model_dir = build_tiny_model(cfg.env.id, tmp_path / "model", hidden=64, layers=1, vocab=400, num_tasks=2)
    engine = HFEngine.from_pretrained(str(model_dir), dtype="float32", device="cpu")
    builder = PromptBuilder.from_config(engine.tokenizer, cfg.agent)
    fns = cfg.env.make_fns("train", cfg.env.train_tasks, 4)
    batches = {}
    for executor, workers in (("local", 0), ("ray", 2)):
        with make_vector_env(fns, executor=executor, num_workers=workers) as venv:
            batches[executor] = rollout(venv, engine, builder, [0, 3, 1], k=2, max_turns=cfg.env.max_turns,
                                        sampling=cfg.agent.sampling(), seed=5, progress=False)
    local, ray_batch = batches["local"], batches["ray"]
    assert len(local.episodes()) == 6 and len(local.rows) >= 6
    assert ray_batch.rows == local.rows  # token ids, log-probs, actions, rewards, anchors: all equal


class EastEngine:
    """Always answers ``east``; on its ``kill_at``-th call it SIGKILLs one env actor first."""

    def __init__(self, tokenizer, kill=None, kill_at: int = 2):
        self.tokenizer, self.kill, self.kill_at, self.calls = tokenizer, kill, kill_at, 0
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.ids = tokenizer("east", add_special_tokens=False)["input_ids"] + [im_end]

    def generate(self, prompt_token_ids, n=1, sampling=None):
        if self.calls == self.kill_at and self.kill is not None:
            self.kill()
        self.calls += 1
        return [[Completion(list(self.ids), [-0.1] * len(self.ids), "east", "stop")] * n for _ in prompt_token_ids]

    def update_weights(self, state_dict):
        pass


def test_killed_env_actor_truncates_its_episodes_and_the_rollout_completes(ray_local, corridor_model):
    from steprl.agent.models import load_tokenizer
    from steprl.agent.prompts import PromptBuilder
    from steprl.agent.rollout import rollout
    from steprl.envs.ray_vector import RayVectorEnv

    tokenizer = load_tokenizer(str(corridor_model))
    builder = PromptBuilder(tokenizer, history_k=0, max_prompt_tokens=256)
    # 4 envs on 2 actors (envs 0-1 on actor 0); 6 episodes of corridors of 5 rooms: 5 steps each to win
    with RayVectorEnv([envs.make_fn("toy/Corridor-v0")] * 4, num_actors=2, timeout=60) as venv:
        pid = venv.actor_pids()[0]
        engine = EastEngine(tokenizer, kill=lambda: os.kill(pid, signal.SIGKILL), kill_at=2)
        batch = rollout(venv, engine, builder, [3] * 6, k=1, max_turns=8, seed=0, progress=False)
        assert venv.actor_restarts == 1
        assert venv.actor_pids()[0] != pid
    episodes = batch.episodes()
    assert len(episodes) == 6  # the iteration completed
    killed = [ep for ep in episodes if ep[-1].env_error]
    # episodes 0 and 1 ran on actor 0's envs: cut after their 3rd step, truncated, counted
    assert [ep[0].traj_id for ep in killed] == [0, 1]
    assert all(len(ep) == 3 and ep[-1].truncated and not ep[-1].success for ep in killed)
    assert all("env actor 0 died" in ep[-1].env_error for ep in killed)
    others = [ep for ep in episodes if not ep[-1].env_error]
    assert [len(ep) for ep in others] == [5, 5, 5, 5] and all(ep[-1].success for ep in others)
    metrics = batch.metrics()
    assert metrics["rollout/env_errors"] == 2 and metrics["rollout/episodes"] == 6
    assert metrics["rollout/truncated"] == pytest.approx(2 / 6)
    assert metrics["env/success_rate"] == pytest.approx(4 / 6)
    np.testing.assert_array_equal(sorted({r.traj_id for r in batch.rows}), range(6))
