"""TextWorld family: contract, fuzzing, determinism, and the expert/random bars."""

import pytest

from steprl import envs
from steprl.envs.textworld import FAMILIES, clean_feedback, game_path
from steprl.evaluation import ExpertPolicy, RandomPolicy, run_policy

TEXTWORLD_IDS = sorted(FAMILIES)


def _registered_ids():
    """Every registered env but the test fixtures (toy/), with the markers its family needs."""
    marks = {"web/webshop-browser": [pytest.mark.browser, pytest.mark.slow], "web/miniwob": [pytest.mark.browser, pytest.mark.slow],
             "alfworld/": [pytest.mark.slow]}
    out = []
    for env_id in envs.registry():
        if env_id.startswith("toy/"):
            continue
        out.append(pytest.param(env_id, marks=[m for prefix, ms in marks.items() if env_id.startswith(prefix) for m in ms]))
    return out


@pytest.mark.parametrize("env_id", _registered_ids())
def test_check_env_on_every_registered_env(env_id):
    """The contract, with 300 malformed actions (empty, 10 kB, unicode, control chars)."""
    env = envs.make(env_id, split="test", num_tasks=2)
    try:
        envs.check_env(env, num_bad_actions=300)
    finally:
        env.close()


def test_clean_feedback_strips_banner_and_status_line():
    raw = ("\n\n   ________  $$$$$$\n |  \\$$\nWelcome to TextWorld! Here is your task. Go north.\n\n"
           "-= Bedchamber =-\nYou arrive in a bedchamber.\n\n\n\nThere is an exit to the north.\n\n"
           ">                          -= Bedchamber =-0/1")
    assert clean_feedback(raw) == "-= Bedchamber =-\nYou arrive in a bedchamber.\n\nThere is an exit to the north."
    assert clean_feedback("\nYou can't go that way.\n\n\n>     -= Bedchamber =-0/2") == "You can't go that way."


@pytest.mark.parametrize("env_id", TEXTWORLD_IDS)
def test_same_seed_same_observations(env_id):
    def play(env):
        obs, info = env.reset(seed=7, options={"task": 1})
        seen = [obs, info["task"]]
        for t in range(8):
            actions = info["admissible_actions"]
            obs, reward, terminated, truncated, info = env.step(actions[(3 * t) % len(actions)])
            seen += [obs, reward, info["anchor"]]
            if terminated or truncated:
                break
        return seen

    assert play(envs.make(env_id, split="valid", num_tasks=2)) == play(envs.make(env_id, split="valid", num_tasks=2))


def test_info_keys_and_anchor_name_the_room():
    env = envs.make("textworld/coin_collector-v0", split="test", num_tasks=1)
    obs, info = env.reset(seed=0, options={"task": 0})
    assert "Welcome to TextWorld" not in obs and "$$" not in obs and obs.startswith("-= ")
    assert info["expert_action"] in info["admissible_actions"]
    obs, reward, terminated, truncated, info = env.step("inventory")
    assert obs == "You are carrying nothing." and info["valid_action"] is True
    assert info["anchor"].startswith("-= ") and info["anchor"].endswith("You are carrying nothing.")
    obs, reward, terminated, truncated, info = env.step("go nowhere")  # not admissible
    assert info["valid_action"] is False and reward == 0.0


def test_games_are_cached_on_disk():
    env = envs.make("textworld/treasure_hunter-v0", split="test", num_tasks=1)
    env.reset(options={"task": 0})
    base = env.unwrapped
    path = game_path(base.challenge, base.task_settings(base.task_seeds[0]), base.task_seeds[0])
    assert path.exists()
    mtime = path.stat().st_mtime_ns
    envs.make("textworld/treasure_hunter-v0", split="test", num_tasks=1).reset(options={"task": 0})
    assert path.stat().st_mtime_ns == mtime  # loaded, not regenerated


@pytest.mark.slow
@pytest.mark.parametrize("env_id", TEXTWORLD_IDS)
def test_expert_wins_and_random_wins_less(env_id):
    """Acceptance bar: expert ≥ 95% of 50 test games; a random agent measurably less."""
    expert = run_policy(env_id, ExpertPolicy(), split="test", num_tasks=50, progress=False)
    random = run_policy(env_id, RandomPolicy(seed=0), split="test", num_tasks=50, progress=False)
    print(f"\n{env_id}\n{expert.line()}\n{random.line()}")
    assert expert.episodes == random.episodes == 50
    assert expert.success_rate >= 0.95
    assert random.success_rate <= expert.success_rate - 0.10
