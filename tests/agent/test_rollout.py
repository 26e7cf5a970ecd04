"""rollout and TrajectoryBatch on toy envs: grouping, token exactness, lockstep, malformed output, crashes."""

import math

import numpy as np
import pytest

from steprl import credit
from steprl.agent.config import AgentConfig
from steprl.agent.engines import Sampling
from steprl.agent.prompts import PromptBuilder
from steprl.agent.rollout import StepRow, TrajectoryBatch, anchor_key, rollout
from tests.agent.conftest import RecordingEngine, ScriptedEngine, make_vector_env, teacher_forced_logprobs


def expert_script(tokenizer):
    """Answer the env's expert action, read back from the prompt's admissible actions."""

    def script(call, row, prompt_ids):
        text = tokenizer.decode(prompt_ids)
        return "take coin" if "There is a coin here." in text.split("Current observation:")[-1] else "go east"

    return script


def test_group_rollout_on_hf_engine(hf_engine, tmp_path):
    """4 tasks × K=4 with the tiny model: grouping, lockstep, exact tokens and log-probs, JSONL."""
    engine = RecordingEngine(hf_engine)
    builder = PromptBuilder(hf_engine.tokenizer, history_k=2, max_prompt_tokens=512)
    with make_vector_env(num_envs=16) as venv:
        batch = rollout(venv, engine, builder, tasks=[0, 1, 2, 3], k=4, max_turns=3,
                        sampling=Sampling(max_new_tokens=6), seed=0, progress=False)
    episodes = batch.episodes()
    assert len(episodes) == 16 and len(batch) == 16 * 3  # random tiny model: nobody wins in 3 turns
    for ep in episodes:
        assert [r.step for r in ep] == [0, 1, 2]
        assert len({(r.traj_id, r.group_id, r.task_id) for r in ep}) == 1
        assert [r.done for r in ep] == [False, False, True] and ep[-1].truncated
        assert all(r.anchor for r in ep)
    for group in range(4):  # the K episodes of a task share group and task id; tasks differ
        members = [ep for ep in episodes if ep[0].group_id == group]
        assert sorted(ep[0].traj_id for ep in members) == [4 * group + j for j in range(4)]
        assert {ep[0].task_id for ep in members} == {f"agenttest/Hall-v0:{group}"}
    # lockstep: one engine call per turn, each holding every running episode
    assert [len(prompts) for prompts, _ in engine.calls] == [16, 16, 16]
    # token exactness: each row is one (prompt, completion) pair the engine consumed and produced
    produced = {(tuple(p), tuple(c[0].token_ids), tuple(c[0].logprobs))
                for prompts, completions in engine.calls for p, c in zip(prompts, completions)}
    assert {(tuple(r.prompt_ids), tuple(r.response_ids), tuple(r.logprobs)) for r in batch.rows} == produced
    for row in batch.rows[:6]:  # and the sampler's log-probs are the model's
        reference = teacher_forced_logprobs(hf_engine.model, row.prompt_ids, row.response_ids)
        assert max(abs(a - b) for a, b in zip(row.logprobs, reference)) <= 1e-5
    path = batch.save_jsonl(tmp_path / "rollout.jsonl")
    assert len(path.read_text().splitlines()) == 16  # one episode per line
    assert TrajectoryBatch.load_jsonl(path).rows == batch.rows


def test_rows_never_re_tokenize(tokenizer):
    """A response in a non-canonical tokenization must be stored as generated, not as re-encoded."""
    byte_ids = [tokenizer.convert_tokens_to_ids(ch) for ch in "go"]
    byte_ids += tokenizer("  east", add_special_tokens=False)["input_ids"]
    assert byte_ids[:2] != tokenizer("go", add_special_tokens=False)["input_ids"]  # "go" is normally one token
    engine = ScriptedEngine(tokenizer, lambda call, row, prompt: list(byte_ids))
    builder = PromptBuilder(tokenizer, max_prompt_tokens=512)
    with make_vector_env(num_envs=2) as venv:
        batch = rollout(venv, engine, builder, tasks=[0], k=2, max_turns=2, progress=False)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert all(r.response_ids == byte_ids + [im_end] for r in batch.rows)
    assert batch.rows[0].action == "go  east" and batch.rows[0].valid_action  # the env collapses the double space


def test_expert_policy_wins_and_metrics_are_exact(tokenizer):
    engine = ScriptedEngine(tokenizer, expert_script(tokenizer))
    with make_vector_env(num_envs=4) as venv:
        batch = rollout(venv, engine, PromptBuilder(tokenizer, max_prompt_tokens=512), tasks=[0, 1, 2], k=2,
                        max_turns=10, progress=False)
    lengths = {0: 3, 1: 4, 2: 5}  # hall length 2 + seed % 3 steps east, then take coin
    assert [len(ep) for ep in batch.episodes()] == [lengths[g] for g in (0, 0, 1, 1, 2, 2)]
    assert batch.success_rate() == 1.0
    for ep in batch.episodes():
        assert ep[-1].done and not ep[-1].truncated and ep[-1].reward == 1.0
        assert all(r.success and r.valid_action and r.format_ok for r in ep)
        assert [r.action for r in ep] == [r.expert_action for r in ep]
    m = batch.metrics()
    assert m["rollout/episodes"] == 6 and m["rollout/steps"] == 24
    assert m["rollout/turns"] == 4.0 and m["env/return"] == 1.0 and m["env/success_rate"] == 1.0
    assert m["rollout/format_ok"] == 1.0 and m["rollout/invalid"] == 0.0 and m["rollout/env_errors"] == 0
    assert 0 <= m["time/env_share"] <= 1 and 0 <= m["time/engine_share"] <= 1


@pytest.mark.parametrize("fmt", ["plain", "think_action"])
def test_malformed_and_empty_completions_do_not_end_the_episode(tokenizer, fmt):
    answers = ["", "   ", "go east\ngo west", "<action>go east", "\x00\x01 garbage", "go east"]
    if fmt == "think_action":
        answers[-1] = "<think>ok</think><action>go east</action>"
    engine = ScriptedEngine(tokenizer, lambda call, row, prompt: answers[call % len(answers)])
    builder = PromptBuilder(tokenizer, response_format=fmt, max_prompt_tokens=512)
    with make_vector_env(num_envs=1) as venv:
        batch = rollout(venv, engine, builder, tasks=[2], k=1, max_turns=6, progress=False)
    rows = batch.rows
    assert len(rows) == 6 and [r.step for r in rows] == list(range(6))
    assert [r.format_ok for r in rows] == [False] * 5 + [True]
    assert not any(r.done for r in rows[:5]) and rows[-1].done and rows[-1].truncated
    assert rows[0].action == "" and rows[0].reward == 0.0
    # plain takes the first line of a multi-line answer; think_action needs both tags
    expected_valid = [False, False, fmt == "plain", False, False, True]
    assert [r.valid_action for r in rows] == expected_valid
    assert batch.metrics()["rollout/format_ok"] == pytest.approx(1 / 6)


def test_env_crash_truncates_only_that_episode(tokenizer):
    engine = ScriptedEngine(tokenizer, lambda call, row, prompt: "go east")
    with make_vector_env("agenttest/CrashingHall-v0", num_envs=4) as venv:
        batch = rollout(venv, engine, PromptBuilder(tokenizer, max_prompt_tokens=512), tasks=[0, 1], k=2,
                        max_turns=8, progress=False)
    episodes = batch.episodes()
    assert len(episodes) == 4
    crashed = [ep for ep in episodes if ep[0].group_id == 1]
    for ep in crashed:  # task 1 raises on its second step
        assert len(ep) == 2 and "simulated env crash" in ep[-1].env_error
        assert ep[-1].done and ep[-1].truncated and not ep[-1].success
    for ep in episodes[:2]:
        assert all(r.env_error is None for r in ep)
    assert batch.metrics()["rollout/env_errors"] == 2


def test_failed_reset_ends_that_episode_as_a_failure_not_the_run(tokenizer, tmp_path):
    from tests.agent.conftest import BadResetHallEnv

    BadResetHallEnv.flaky = {2}
    engine = ScriptedEngine(tokenizer, expert_script(tokenizer))
    with make_vector_env("agenttest/BadResetHall-v0", num_envs=3) as venv:  # fewer envs than episodes: refills
        batch = rollout(venv, engine, PromptBuilder(tokenizer, max_prompt_tokens=512), tasks=[0, 1, 2], k=2,
                        max_turns=8, progress=False)
    # task 1 never starts: its two episodes are failed starts; task 2's flaky reset is retried and plays
    assert [(f.traj_id, f.group_id, f.task) for f in batch.failed_starts] == [(2, 1, 1), (3, 1, 1)]
    assert all("simulated broken task" in f.env_error for f in batch.failed_starts)
    assert [ep[0].traj_id for ep in batch.episodes()] == [0, 1, 4, 5]
    assert all(ep[-1].success for ep in batch.episodes())
    m = batch.metrics()
    assert m["rollout/episodes"] == 6 and m["rollout/reset_errors"] == 2
    assert batch.success_rate() == pytest.approx(4 / 6) and m["env/success_rate"] == pytest.approx(4 / 6)
    assert credit.StepBatch.from_rows(batch.rows).n_trajectories == 4  # nothing to train on in a failed start
    back = TrajectoryBatch.load_jsonl(batch.save_jsonl(tmp_path / "episodes.jsonl"))
    assert back.rows == batch.rows and back.failed_starts == batch.failed_starts
    only_failed = TrajectoryBatch(failed_starts=batch.failed_starts)
    assert only_failed.success_rate() == 0.0 and only_failed.metrics()["rollout/reset_errors"] == 2


def test_fewer_envs_than_episodes_refills_and_matches(tokenizer):
    script = expert_script(tokenizer)
    builder = PromptBuilder(tokenizer, max_prompt_tokens=512)
    results = []
    for num_envs in (12, 5):
        engine = RecordingEngine(ScriptedEngine(tokenizer, script))
        with make_vector_env(num_envs=num_envs) as venv:
            batch = rollout(venv, engine, builder, tasks=[0, 1, 2], k=4, max_turns=10, progress=False)
        assert max(len(prompts) for prompts, _ in engine.calls) <= num_envs
        results.append(batch)
    assert results[0].rows == results[1].rows and len(results[0].episodes()) == 12


def test_history_cut_is_counted(tokenizer):
    engine = ScriptedEngine(tokenizer, lambda call, row, prompt: "look")
    roomy = PromptBuilder(tokenizer, history_k=4, max_prompt_tokens=4096)
    with make_vector_env(num_envs=1) as venv:
        full = rollout(venv, engine, roomy, tasks=[0], k=1, max_turns=6, progress=False)
    # a budget that fits the prompt with 2 history pairs but not 3
    budget = len(full.rows[2].prompt_ids)
    tight = PromptBuilder(tokenizer, history_k=4, max_prompt_tokens=budget)
    with make_vector_env(num_envs=1) as venv:
        batch = rollout(venv, ScriptedEngine(tokenizer, lambda *a: "look"), tight, tasks=[0], k=1, max_turns=6,
                        progress=False)
    assert [r.history_cut for r in batch.rows] == [0, 0, 0, 1, 2, 2]
    assert batch.metrics()["rollout/history_cut"] == 5 and full.metrics()["rollout/history_cut"] == 0
    assert all(len(r.prompt_ids) <= budget for r in batch.rows)


def test_agent_config_as_prompt_builder_and_seeds(hf_engine):
    config = AgentConfig(model="unused", max_new_tokens=4, history_k=1, max_prompt_tokens=512)
    runs = []
    for seed in (0, 0, 1):
        with make_vector_env(num_envs=4) as venv:
            runs.append(rollout(venv, hf_engine, config, tasks=[0, 1], k=2, max_turns=2, seed=seed, progress=False))
    assert runs[0].rows == runs[1].rows  # same seed, same rollout
    assert [r.response_ids for r in runs[0].rows] != [r.response_ids for r in runs[2].rows]
    assert all(len(r.response_ids) <= 4 for r in runs[0].rows)


def test_rows_to_credit_step_batch(tokenizer):
    engine = ScriptedEngine(tokenizer, lambda call, row, prompt: "go east" if row % 2 else "dance")
    with make_vector_env(num_envs=4) as venv:
        batch = rollout(venv, engine, PromptBuilder(tokenizer, max_prompt_tokens=512), tasks=[0, 1], k=2,
                        max_turns=3, progress=False)
    steps = credit.StepBatch.from_rows(batch.rows)
    assert isinstance(steps, credit.StepBatch) and len(steps) == len(batch)
    assert steps.n_groups == 2 and steps.n_trajectories == 4
    assert steps.valid.tolist() == [r.format_ok and r.valid_action for r in batch.rows]
    # anchors travel as stable int state hashes: equal texts <=> equal keys
    keys = steps.anchor.tolist()
    assert keys == [anchor_key(r.anchor) for r in batch.rows]
    assert len(set(keys)) == len({r.anchor for r in batch.rows})
    assert anchor_key("-= Hall =-") == anchor_key("-= Hall =-") != anchor_key("-= Hall =- ")
    assert list(credit.StepBatch.from_rows(batch.rows, text_anchors=True).anchor) == [r.anchor for r in batch.rows]
    np.testing.assert_allclose(credit.estimate("gigpo", steps), credit.estimate("gigpo", credit.StepBatch.from_rows(batch.rows, True)))
    # each row's next state is the next row's state (hashed once in the rollout); the last row's is the final one
    for episode in batch.episodes():
        assert [r.next_anchor_key for r in episode[:-1]] == [r.anchor_key for r in episode[1:]]
        assert episode[-1].next_anchor_key >= 0
    assert list(steps.next_anchor) == [r.next_anchor_key for r in batch.rows]


def test_batch_helpers_on_hand_made_rows(tmp_path):
    def row(traj, step, reward, success, **kw):
        base = dict(traj_id=traj, group_id=traj // 2, task_id=f"t{traj // 2}", step=step, prompt_ids=[1, 2],
                    response_ids=[3], logprobs=[-0.1], response_text="a", action="a", format_ok=True,
                    valid_action=True, reward=reward, anchor="s", done=False, truncated=False, success=success,
                    observation="o", history_cut=0, expert_action=None, env_error=None)
        return StepRow(**{**base, **kw})

    rows = [row(1, 1, 1.0, True, done=True), row(0, 0, 0.0, False), row(1, 0, 0.0, True),
            row(0, 1, 0.5, False, done=True, truncated=True, env_error="boom", logprobs=[-1e-300])]
    batch = TrajectoryBatch(rows)
    assert [[(r.traj_id, r.step) for r in ep] for ep in batch.episodes()] == [[(0, 0), (0, 1)], [(1, 0), (1, 1)]]
    m = batch.metrics()
    assert m["env/success_rate"] == 0.5 and m["env/return"] == 0.75 and m["rollout/env_errors"] == 1
    assert m["rollout/truncated"] == 0.5 and m["rollout/turns"] == 2.0
    batch.save_jsonl(tmp_path / "b.jsonl")
    loaded = TrajectoryBatch.load_jsonl(tmp_path / "b.jsonl")
    assert loaded.rows == sorted(rows, key=lambda r: (r.traj_id, r.step))
    assert math.isnan(TrajectoryBatch().success_rate())


def test_bad_rollout_arguments(hf_engine):
    with make_vector_env(num_envs=1) as venv:
        with pytest.raises(ValueError, match="k=0"):
            rollout(venv, hf_engine, AgentConfig(model="m"), tasks=[0], k=0)
        with pytest.raises(ValueError, match="no tasks"):
            rollout(venv, hf_engine, AgentConfig(model="m"), tasks=[])
