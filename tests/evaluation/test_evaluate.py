"""evaluate(): determinism, worker processes, reference rows, task types, run directories and LoRA checkpoints.

A toy env (a hall of 2-4 rooms, ``task_type`` short/long, an expert) keeps these fast; the
TextWorld acceptance bars are in test_textworld_bars.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from steprl import envs
from steprl.evaluation import Report, evaluate, weights_sha256


class TypedHallEnv(envs.TextEnv):
    """Walk east through ``2 + seed % 3`` rooms, then ``take coin``; task_type short (2 rooms) or long."""

    def _load_task(self, task_seed: int) -> None:
        self.length = 2 + task_seed % 3

    def _state(self) -> tuple[str, dict]:
        text = f"You are in hall {self.pos}." + (" There is a coin here." if self.pos == self.length else "")
        actions = (["go east"] if self.pos < self.length else ["take coin"]) + ["go west", "look"]
        expert = "go east" if self.pos < self.length else "take coin"
        return text, {"task": f"Find the coin in hall {self.length}.", "admissible_actions": actions,
                      "anchor": text, "expert_action": expert,
                      "task_type": "short" if self.length == 2 else "long"}

    def _reset_task(self, rng: np.random.Generator):
        self.pos = 0
        return self._state()

    def _step_action(self, action: str):
        if action == "look":
            return (*self._state()[:1], 0.0, False, False, self._state()[1])
        if action == "go east" and self.pos < self.length:
            self.pos += 1
        elif action == "go west" and self.pos > 0:
            self.pos -= 1
        elif action == "take coin" and self.pos == self.length:
            info = {**self._state()[1], "success": True}
            return "You take the coin. You win!", 1.0, True, False, info
        else:
            return self.invalid_action()
        obs, info = self._state()
        return obs, 0.0, False, False, info


envs.register("evaltest/Hall-v0", TypedHallEnv, description="evaluation-test hall", max_episode_steps=12)

CORPUS = [
    "You are in hall 0.", "You are in hall 3. There is a coin here.", "Find the coin in hall 4.", "go east",
    "go west", "take coin", "look", "You take the coin. You win!", "That is not a valid action.",
] * 20
SMALL = {"max_new_tokens": 4, "max_prompt_tokens": 256, "history_k": 1}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from steprl.agent.models import build_tiny_model

    return build_tiny_model(CORPUS, tmp_path_factory.mktemp("tiny") / "model", hidden=64, layers=1, vocab=300)


def without_date(report: Report) -> dict:
    data = report.to_dict()
    data.pop("date")
    return data


@pytest.mark.slow
def test_same_model_same_seeds_same_report_in_process_and_in_workers(tiny_model):
    kwargs = dict(episodes=6, seeds=(0, 1), k=2, temperature=1.0, max_turns=6, progress=False, agent=SMALL,
                  lockstep_envs=5)
    first = evaluate(tiny_model, "evaltest/Hall-v0", **kwargs)
    again = evaluate(tiny_model, "evaltest/Hall-v0", **kwargs)
    workers = evaluate(tiny_model, "evaltest/Hall-v0", num_workers=2, **kwargs)
    assert json.dumps(without_date(first)) == json.dumps(without_date(again))
    assert json.dumps(without_date(workers)) == json.dumps(without_date(first))
    # sampling really happened: the two samples of some task differ
    responses = {}
    for row in first.trajectories[0].rows:
        responses.setdefault((row.group_id, row.traj_id), []).append(tuple(row.response_ids))
    by_task = {}
    for (group, _), resp in responses.items():
        by_task.setdefault(group, []).append(tuple(resp))
    assert any(len(set(samples)) > 1 for samples in by_task.values())


def test_rows_metrics_and_protocol(tiny_model):
    report = evaluate(tiny_model, "evaltest/Hall-v0", episodes=6, seeds=(0, 1), k=2, temperature=1.0, max_turns=6,
                      progress=False, agent=SMALL)
    p = report.protocol
    assert (p.env_id, p.env_version, p.split) == ("evaltest/Hall-v0", "v0", "test")
    assert (p.episodes, p.seeds, p.k) == (6, [0, 1], 2)
    assert p.decoding == "sampled" and p.max_turns == 6 and p.prompt["history_k"] == 1
    assert report.model.sha256 == weights_sha256(tiny_model)
    assert [r.agent for r in report.rows] == ["model", "random", "expert"]

    model = report.row("model")
    assert model.episodes == 6 * 2 * 2
    rows = [r for batch in report.trajectories for r in batch.rows]
    assert model.unparseable_share == pytest.approx(np.mean([not r.format_ok for r in rows]))
    assert model.invalid_share == pytest.approx(np.mean([not r.valid_action for r in rows]))
    assert model.mean_turns == pytest.approx(len(rows) / model.episodes)
    assert set(model.pass_at_k) == {"1", "2"}
    assert model.pass_at_k["1"] == pytest.approx(model.success_rate)  # pass@1 is the mean success

    expert = report.row("expert")
    assert expert.success_rate == 1.0 and expert.episodes == 12
    # the hall needs length + 1 steps: tasks 0..5 have lengths 2,3,4,2,3,4
    assert expert.mean_turns == pytest.approx(np.mean([3, 4, 5, 3, 4, 5]))
    assert expert.invalid_share == 0 and expert.truncation_rate == 0

    # task types: seeds 110000.. → lengths (110000 % 3 = 2) … tasks whose hall has 2 rooms are "short"
    lengths = [2 + (110_000 + t) % 3 for t in range(6)]
    assert expert.by_task_type["short"]["episodes"] == 2 * sum(n == 2 for n in lengths)
    assert expert.by_task_type["long"]["episodes"] == 2 * sum(n != 2 for n in lengths)
    assert "Success by task type" in report.to_markdown()


def test_random_row_follows_the_seeds(tiny_model):
    kwargs = dict(episodes=8, max_turns=6, progress=False, agent=SMALL)
    a = evaluate(tiny_model, "evaltest/Hall-v0", seeds=(0,), **kwargs).row("random")
    b = evaluate(tiny_model, "evaltest/Hall-v0", seeds=(5,), **kwargs).row("random")
    assert a.outcomes != b.outcomes or a.mean_turns != b.mean_turns


def test_bad_arguments_name_the_value(tiny_model):
    with pytest.raises(ValueError, match="episodes=0"):
        evaluate(tiny_model, "evaltest/Hall-v0", episodes=0)
    with pytest.raises(KeyError, match="unknown env id 'evaltest/Hal-v0'"):
        evaluate(tiny_model, "evaltest/Hal-v0", episodes=2)
    with pytest.raises(ValueError, match="split='dev'"):
        evaluate(tiny_model, "evaltest/Hall-v0", split="dev", episodes=2, progress=False)
    with pytest.raises(ValueError, match="history_k"):
        evaluate(tiny_model, "evaltest/Hall-v0", episodes=2, progress=False, agent={"history_k": -1})
    with pytest.raises(ValueError, match="no env id"):
        evaluate(tiny_model, episodes=2)


def test_unloadable_model_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "qwen2", "hidden_size": "x"}')
    (bad / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="cannot load model") as info:
        evaluate(bad, "evaltest/Hall-v0", episodes=2, progress=False)
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate(tmp_path / "missing", "evaltest/Hall-v0", episodes=2)


# -- run directories ----------------------------------------------------------------------------
def write_run(run_dir, base, checkpoints: dict[int, object]):
    """A run directory as trainer.loop writes it: config.yaml + checkpoints/iter_*/{model,meta.json,state.pt}."""
    config = {"env": {"id": "evaltest/Hall-v0", "kwargs": {}, "max_turns": 7},
              "agent": {"model": str(base), "history_k": 2, "max_new_tokens": 5, "max_prompt_tokens": 256}}
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    for iteration, save in checkpoints.items():
        ckpt = run_dir / "checkpoints" / f"iter_{iteration:06d}"
        ckpt.mkdir(parents=True)
        save(ckpt / "model")
        (ckpt / "meta.json").write_text(json.dumps({"iteration": iteration}))
        (ckpt / "state.pt").write_bytes(b"")


def perturbed(base, scale: float, seed: int):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return model


def test_run_dir_uses_latest_checkpoint_its_tokenizer_and_its_settings(tiny_model, tmp_path):
    run = tmp_path / "run"
    write_run(run, tiny_model, {1: perturbed(tiny_model, 0.5, 1).save_pretrained,
                                3: perturbed(tiny_model, 0.5, 3).save_pretrained})
    report = evaluate(run, episodes=3, progress=False)
    latest = run / "checkpoints" / "iter_000003" / "model"
    assert report.model.checkpoint == "iter_000003" and report.model.source == "run checkpoint"
    assert report.model.sha256 == weights_sha256(latest) != weights_sha256(tiny_model)
    assert report.model.tokenizer == str(tiny_model)
    assert report.protocol.env_id == "evaltest/Hall-v0"  # from config.yaml
    assert report.protocol.max_turns == 7
    assert report.protocol.prompt["history_k"] == 2 and report.protocol.max_new_tokens == 5
    # the checkpoint's weights generated: its log-probs differ from the base model's
    base = evaluate(tiny_model, "evaltest/Hall-v0", episodes=3, max_turns=7, progress=False,
                    agent={"history_k": 2, "max_new_tokens": 5, "max_prompt_tokens": 256})
    assert base.trajectories[0].rows[0].prompt_ids == report.trajectories[0].rows[0].prompt_ids
    assert base.trajectories[0].rows[0].logprobs != report.trajectories[0].rows[0].logprobs
    # a checkpoint directory on its own resolves to the same weights
    assert evaluate(latest.parent, episodes=3, progress=False).model.sha256 == report.model.sha256


def test_lora_checkpoint_is_merged_onto_the_base_model(tiny_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                           init_lora_weights=False))
    run = tmp_path / "run"
    write_run(run, tiny_model, {2: lora.save_pretrained})
    merged_dir = tmp_path / "merged"
    lora.merge_and_unload().save_pretrained(merged_dir)
    AutoTokenizer.from_pretrained(str(tiny_model)).save_pretrained(merged_dir)

    from_run = evaluate(run, episodes=3, progress=False)
    from_merged = evaluate(merged_dir, "evaltest/Hall-v0", episodes=3, max_turns=7, progress=False,
                           agent={"history_k": 2, "max_new_tokens": 5, "max_prompt_tokens": 256})
    assert from_run.model.sha256 == weights_sha256(run / "checkpoints" / "iter_000002" / "model", tiny_model)
    run_rows, merged_rows = from_run.trajectories[0].rows, from_merged.trajectories[0].rows
    assert [r.response_ids for r in run_rows] == [r.response_ids for r in merged_rows]
    np.testing.assert_allclose(np.concatenate([r.logprobs for r in run_rows]),
                               np.concatenate([r.logprobs for r in merged_rows]), atol=1e-4)


def test_run_dir_without_checkpoints_says_so(tiny_model, tmp_path):
    run = tmp_path / "run"
    write_run(run, tiny_model, {})
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        evaluate(run, episodes=2)


class BrokenHallEnv(TypedHallEnv):
    """The typed hall, except that halls of 3 rooms fail to reset (a broken task)."""

    def _reset_task(self, rng: np.random.Generator):
        if self.length == 3:
            raise RuntimeError("simulated broken task")
        return super()._reset_task(rng)


envs.register("evaltest/BrokenHall-v0", BrokenHallEnv, description="hall with broken tasks", max_episode_steps=12)


def test_a_task_that_fails_to_reset_counts_as_a_failure_for_every_agent(tiny_model):
    probe = envs.make("evaltest/Hall-v0", split="test", num_tasks=6)
    lengths = [int(probe.reset(options={"task": t})[1]["task"].split()[-1].rstrip(".")) for t in range(6)]
    broken = sum(n == 3 for n in lengths)
    assert 0 < broken < 6
    report = evaluate(tiny_model, "evaltest/BrokenHall-v0", episodes=6, seeds=(0,), k=2, temperature=1.0,
                      max_turns=6, progress=False, agent=SMALL)
    model, expert = report.row("model"), report.row("expert")
    assert model.episodes == 12 and expert.episodes == 6  # the broken tasks' episodes are counted
    assert expert.success_rate == pytest.approx(1 - broken / 6)  # the expert wins every task that starts
    assert report.trajectories[0].metrics()["rollout/reset_errors"] == 2 * broken
    assert len(report.trajectories[0].failed_starts) == 2 * broken


@pytest.mark.parametrize("num_workers", [0, 2])
def test_scripted_agents_give_the_same_outcomes_in_task_order_however_the_envs_run(num_workers):
    from steprl.evaluation.baselines import RandomPolicy
    from steprl.agent.scripted import play_scripted

    tasks = [0, 1, 2, 3, 4, 5, 6]
    fns = [envs.make_fn("evaltest/Hall-v0", split="train")] * 3  # task t is seed t: hall length 2 + t % 3
    expert = lambda task: lambda obs, info: info["expert_action"]  # noqa: E731
    rand = lambda task: RandomPolicy(seed=100 + task)  # noqa: E731
    with envs.TextVectorEnv(fns, num_workers=0) as ref, envs.TextVectorEnv(fns, num_workers=num_workers) as venv:
        played = play_scripted(venv, expert, tasks, seed=0, max_turns=12)
        assert [o.task for o in played] == tasks
        assert [o.turns for o in played] == [3 + t % 3 for t in tasks]  # length + 1 ('take coin'), task order
        assert all(o.success and not o.truncated and o.reward == 1.0 for o in played)
        a = play_scripted(ref, rand, tasks, seed=3, max_turns=5)
        b = play_scripted(venv, rand, tasks, seed=3, max_turns=5)
        assert a == b and [o.task for o in b] == tasks
        assert 0 < sum(o.success for o in b) < len(tasks)  # the turn limit stops some random walks


def test_scripted_agents_retry_a_failing_reset_then_count_a_failure():
    from steprl.agent.scripted import play_scripted
    from tests.envs import toy

    expert = lambda task: lambda obs, info: info["expert_action"]  # noqa: E731
    with envs.TextVectorEnv([envs.make_fn("toy/FlakyReset-v0")] * 2, num_workers=0) as venv:
        toy.FlakyResetEnv.fail_once = {1}
        played = play_scripted(venv, expert, [0, 1, 2], seed=0, max_turns=10)
        assert [(o.task, o.success, o.turns) for o in played] == [(0, True, 2), (1, True, 3), (2, True, 4)]
        toy.FlakyResetEnv.fail_once = {1}
        played = play_scripted(venv, expert, [0, 1, 2], seed=0, max_turns=10, reset_retries=0)
        assert [(o.task, o.success, o.turns, o.truncated) for o in played] == [
            (0, True, 2, False), (1, False, 0, True), (2, True, 4, False)]


@pytest.mark.parametrize("seed", [0, 7])
def test_baselines_and_eval_give_the_same_reference_rows(tiny_model, seed):
    """One loop, one seeding rule: `steprl baselines` (run_policy) and `steprl eval`'s reference rows agree."""
    from steprl.evaluation import ExpertPolicy, RandomPolicy, run_policy

    report = evaluate(tiny_model, "evaltest/Hall-v0", episodes=9, seeds=(seed,), progress=False, agent=SMALL)
    for policy in (RandomPolicy(), ExpertPolicy()):
        result = run_policy("evaltest/Hall-v0", policy, split="test", num_tasks=9, seed=seed, progress=False)
        row = report.row(policy.name)
        assert result.per_episode == [bool(o[3]) for o in sorted(row.outcomes)], policy.name
        assert (result.successes, result.episodes) == (row.successes, row.episodes)
        assert result.mean_turns == pytest.approx(row.mean_turns) and result.mean_return == pytest.approx(
            row.mean_reward)
    random_row = report.row("random")
    assert 0 < random_row.successes < 9  # a real random walk under the hall's 12-step limit, not all-or-nothing
