"""ALFWorld family (Shridhar et al., 2021): generation, determinism, solvability, real-data path, bars."""

import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

alfworld = pytest.importorskip("alfworld", reason="ALFWorld is an extra: pip install 'steprl[alfworld]'")

from steprl import envs  # noqa: E402
from steprl.envs.alfworld import ENV_IDS  # noqa: E402
from steprl.envs.alfworld.tasks import TASK_TYPES, export_tasks, generate_task  # noqa: E402
from steprl.evaluation import ExpertPolicy, RandomPolicy, run_policy  # noqa: E402

PER_TYPE_IDS = [i for i in sorted(ENV_IDS) if i != "alfworld/mixed-v0"]


def _play(env, policy, task):
    obs, info = env.reset(seed=task, options={"task": task})
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs, info))
        if terminated or truncated:
            return info


def test_registration_imports_no_engine():
    code = ("import sys, envs; ids = [i for i in envs.registry() if i.startswith('alfworld/')]; "
            "assert len(ids) == 7, ids; "
            "assert not any(m == 'alfworld' or m.startswith(('alfworld.', 'textworld.envs.pddl', 'fast_downward')) "
            "for m in sys.modules), 'engine imported at registration'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.getcwd())


def test_same_seed_same_task_and_observations(tmp_path, monkeypatch):
    a = generate_task("pick_cool_then_place_in_recep", 3, "seen").joinpath("initial_state.pddl").read_text()
    monkeypatch.setenv("STEPRL_CACHE", str(tmp_path))  # a fresh cache: generated again, from scratch
    b = generate_task("pick_cool_then_place_in_recep", 3, "seen").joinpath("initial_state.pddl").read_text()
    assert a == b and "(:goal" in a and "CoolObject" not in a
    c = generate_task("pick_cool_then_place_in_recep", 4, "seen").joinpath("initial_state.pddl").read_text()
    assert c != a

    def play():
        env = envs.make("alfworld/pick_cool_then_place-v0", split="train", num_tasks=4, expert=False)
        obs, info = env.reset(seed=1, options={"task": 3})
        seen = [obs, info["task"], info["task_id"]]
        for t in range(6):
            actions = info["admissible_actions"]
            obs, reward, terminated, truncated, info = env.step(actions[(5 * t + 1) % len(actions)])
            seen += [obs, reward, info["anchor"]]
        return seen

    assert play() == play()


def test_alfworld_text_grammar_and_info():
    env = envs.make("alfworld/pick_heat_then_place-v0", split="test", num_tasks=1)
    obs, info = env.reset(seed=0, options={"task": 0})
    assert obs.startswith("You are in the middle of a room. Looking quickly around you, you see ")
    assert "Welcome to TextWorld" not in obs
    assert info["task"].startswith(("put a hot ", "heat some ")) and info["task"].endswith(".")
    assert info["task_type"] == "pick_heat_then_place_in_recep"
    assert info["expert_action"] in info["admissible_actions"]
    assert any(a.startswith("go to microwave ") for a in info["admissible_actions"])
    steps = 0
    while True:
        action = info["expert_action"]
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        if action.startswith("heat "):
            assert obs.startswith("You heat the ") and " using the microwave " in obs
        if terminated or truncated:
            break
    assert info["success"] is True and reward == 1.0 and steps <= 15


def test_malformed_action_is_rejected_without_an_engine_call():
    env = envs.make("alfworld/pick_and_place-v0", split="test", num_tasks=1, expert=False)
    obs, info = env.reset(seed=0, options={"task": 0})
    base = env.unwrapped

    def boom(*args, **kwargs):
        raise AssertionError("engine called for an inadmissible action")

    real_step, base._tw_env.step = base._tw_env.step, boom
    for bad in ["take the moon", "go to nowhere 9", "heat apple 1 with fridge 1" * 3]:
        obs2, reward, terminated, truncated, info2 = env.step(bad)
        assert info2["valid_action"] is False and reward == 0.0 and not terminated
        assert info2["anchor"] == info["anchor"]
    base._tw_env.step = real_step
    assert env.step(info["admissible_actions"][0])[4]["valid_action"] is True


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_generated_problems_are_solvable_by_the_planner(task_type):
    """Every generated problem carries the planner's plan; replaying it wins in the env."""
    env_id = next(i for i, (types, _) in ENV_IDS.items() if types == (task_type,))
    env = envs.make(env_id, split="valid", num_tasks=2, expert=False)
    for task in range(2):
        seed = env.unwrapped.task_seeds[task]
        game = json.loads(generate_task(task_type, seed, "seen").joinpath("game.tw-pddl").read_text())
        assert game["solvable"] is True and 2 <= len(game["walkthrough"]) <= 20
        obs, info = env.reset(options={"task": task})
        assert not info["won"]
        for command in game["walkthrough"]:
            assert command in info["admissible_actions"], (command, info["admissible_actions"])
            obs, reward, terminated, truncated, info = env.step(command)
        assert terminated and info["success"] is True


def test_real_data_layout_plays_with_alfworld_splits(tmp_path):
    """A tiny ``json_2.1.1`` tree in ALFWorld's released layout, played through ``data_dir``."""
    chosen = ("pick_and_place_simple", "pick_clean_then_place_in_recep")
    tasks = [("train", generate_task(chosen[0], 0, "seen"))]
    tasks += [("valid_seen", generate_task(t, 1, "seen")) for t in chosen]
    tasks += [("valid_unseen", generate_task(t, s, "unseen")) for t in chosen for s in (0, 1)]
    root = export_tasks(tmp_path / "alfworld_data", tasks)
    trials = sorted(p.relative_to(root).parts[:2] for p in root.rglob("game.tw-pddl"))
    assert len(trials) == 7 and {p[0] for p in trials} == {"train", "valid_seen", "valid_unseen"}
    assert all(p[1].startswith(chosen) and p[1].split("-")[-1].isdigit() for p in trials)

    sizes = {s: envs.make("alfworld/mixed-v0", split=s, data_dir=tmp_path / "alfworld_data").unwrapped.num_tasks
             for s in ("train", "valid", "test")}
    assert sizes == {"train": 1, "valid": 2, "test": 4}
    only_clean = envs.make("alfworld/pick_clean_then_place-v0", split="test", data_dir=root)
    assert only_clean.unwrapped.num_tasks == 2

    env = envs.make("alfworld/mixed-v0", split="test", data_dir=tmp_path / "alfworld_data")
    per_type = defaultdict(list)
    for task in range(env.unwrapped.num_tasks):
        info = _play(env, ExpertPolicy(), task)
        per_type[info["task_type"]].append(info["success"])
    assert {t: sum(v) / len(v) for t, v in per_type.items()} == {t: 1.0 for t in chosen}
    result = run_policy("alfworld/mixed-v0", ExpertPolicy(), split="test", num_tasks=4, progress=False,
                        data_dir=str(tmp_path / "alfworld_data"))
    assert result.success_rate == 1.0 and result.episodes == 4


@pytest.mark.slow
@pytest.mark.parametrize("env_id", PER_TYPE_IDS)
def test_expert_wins_and_random_wins_less(env_id):
    """The acceptance bar: planner expert ≥ 95% on 30 test tasks per type; random admissible actions far less.

    The random agent plays the first 10 of those tasks: its episodes run to the 50-step
    limit, so it costs five times the expert's steps per task.
    """
    n = int(os.environ.get("STEPRL_ALFWORLD_BAR_TASKS", "30"))
    expert = run_policy(env_id, ExpertPolicy(), split="test", num_tasks=n, progress=False)
    random = run_policy(env_id, RandomPolicy(seed=0), split="test", num_tasks=min(n, 10), progress=False,
                        expert=False)
    print(f"\n{env_id}\n{expert.line()}\n{random.line()}")
    assert expert.success_rate >= 0.95
    assert random.success_rate <= expert.success_rate - 0.3
