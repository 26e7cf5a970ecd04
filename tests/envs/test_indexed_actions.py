"""envs.wrappers.IndexedActions: numbered admissible actions for small models."""

from steprl import envs
from steprl.envs.wrappers import indexed_action_text
from tests.envs import toy  # noqa: F401  (registers toy envs)


def test_numbers_label_the_admissible_actions_and_the_expert():
    env = envs.make("toy/Corridor-v0", indexed_actions=True)
    obs, info = env.reset(seed=0, options={"task": 1})  # length 3
    assert info["admissible_actions"] == ["1: east"]
    assert info["expert_action"] == "1"
    obs, reward, terminated, truncated, info = env.step("1")
    assert obs == "You are in room 1 of 3." and info["action_text"] == "east"
    assert info["admissible_actions"] == ["1: east", "2: west"]
    obs, *_ , info = env.step("2: west")  # a labeled entry runs too (the random baseline sends these)
    assert obs == "You are in room 0 of 3." and info["action_text"] == "west"


def test_free_text_passes_through_and_out_of_range_is_invalid():
    env = envs.make("toy/Corridor-v0", indexed_actions=True)
    env.reset(seed=0, options={"task": 1})
    obs, reward, terminated, truncated, info = env.step("east")  # text still works
    assert obs == "You are in room 1 of 3." and info["action_text"] == "east"
    obs, reward, terminated, truncated, info = env.step("7")  # no 7th action: the env sees "7", an invalid step
    assert info["action_text"] == "7" and info["valid_action"] is False and obs.endswith("You are in room 1 of 3.")


def test_expert_reaches_the_goal_through_numbers():
    env = envs.make("toy/Corridor-v0", indexed_actions=True)
    obs, info = env.reset(seed=0, options={"task": 2})
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        steps, done = steps + 1, terminated or truncated
    assert (steps, reward, info["success"]) == (4, 1.0, True)


def test_text_of_a_reply():
    labeled = ["1: go east", "2: take coin"]
    assert indexed_action_text("2", labeled) == "take coin"
    assert indexed_action_text(" 1", labeled) == "go east"
    assert indexed_action_text("3", labeled) == "3"
    assert indexed_action_text("take coin", labeled) == "take coin"
    assert indexed_action_text("3 apples", ["3 apples", "eat"]) == "3 apples"  # a plain list is never remapped
