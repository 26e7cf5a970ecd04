"""The rollout acceptance bar on a real TextWorld env: 4 tasks × K=4 with a tiny model."""

import functools

import pytest

from steprl import envs
from steprl.agent.engines import HFEngine, Sampling
from steprl.agent.models import build_tiny_model
from steprl.agent.prompts import PromptBuilder
from steprl.agent.rollout import TrajectoryBatch, rollout
from tests.agent.conftest import RecordingEngine

ENV_ID = "textworld/coin_collector-v0"


@pytest.fixture(scope="module")
def textworld_engine(tmp_path_factory):
    """A tiny model whose tokenizer was trained on coin-collector text (games from the shared cache)."""
    folder = build_tiny_model(ENV_ID, tmp_path_factory.mktemp("tw-tiny"), hidden=128, layers=2, vocab=1024, num_tasks=4)
    return HFEngine.from_pretrained(str(folder), dtype="float32", device="cpu")


def test_textworld_group_rollout(textworld_engine, tmp_path):
    engine = RecordingEngine(textworld_engine)
    builder = PromptBuilder(engine.tokenizer, history_k=2, max_prompt_tokens=1024)
    env_fn = functools.partial(envs.make, ENV_ID, split="train", num_tasks=4)
    with envs.TextVectorEnv([env_fn] * 16) as venv:
        batch = rollout(venv, engine, builder, tasks=[0, 1, 2, 3], k=4, max_turns=4,
                        sampling=Sampling(max_new_tokens=8), seed=0, progress=False)

    episodes = batch.episodes()
    assert len(episodes) == 16
    assert sorted(ep[0].traj_id for ep in episodes) == list(range(16))
    for ep in episodes:
        assert [r.step for r in ep] == list(range(len(ep)))
        assert ep[-1].done and not any(r.done for r in ep[:-1])
        assert len({(r.group_id, r.task_id, r.success) for r in ep}) == 1
        assert all(r.anchor and r.anchor.startswith("-= ") for r in ep)  # a TextWorld room
        assert all(r.expert_action for r in ep)
    for group in range(4):
        members = [ep for ep in episodes if ep[0].group_id == group]
        assert len(members) == 4 and {ep[0].task_id for ep in members} == {f"{ENV_ID}:{group}"}
        # same task, same start: every member's first step saw the same state
        assert len({ep[0].anchor for ep in members}) == 1 and len({tuple(ep[0].prompt_ids) for ep in members}) == 1
    # token exactness against what the engine saw and returned
    produced = [(p, c[0].token_ids) for prompts, completions in engine.calls for p, c in zip(prompts, completions)]
    assert sorted((r.prompt_ids, r.response_ids) for r in batch.rows) == sorted(produced)
    # one engine call per turn, all running episodes together
    assert [len(prompts) for prompts, _ in engine.calls][0] == 16 and len(engine.calls) == 4

    path = batch.save_jsonl(tmp_path / "tw.jsonl")
    loaded = TrajectoryBatch.load_jsonl(path)
    assert loaded.rows == batch.rows and loaded.save_jsonl(tmp_path / "again.jsonl").read_bytes() == path.read_bytes()
    metrics = batch.metrics()
    assert metrics["rollout/episodes"] == 16 and metrics["rollout/env_errors"] == 0
