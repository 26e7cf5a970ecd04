import gymnasium
import pytest

from steprl import envs
from tests.envs import toy  # noqa: F401  (registers toy envs)


def test_text_space_admits_any_text():
    space = envs.TextSpace()
    assert gymnasium.spaces.Text(100).contains("Hello, world!") is False  # why TextSpace exists
    for text in ["Hello, world!", "", "ünïcödé ☃", "a\nb", "x" * 10_000]:
        assert space.contains(text)
    assert not space.contains(42)


def test_make_applies_time_limit_and_success_on_truncation():
    env = envs.make("toy/Corridor-v0", max_episode_steps=3)
    obs, info = env.reset(seed=0, options={"task": 3})  # length 5: cannot finish in 3 steps
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step("east")
    assert (terminated, truncated, info["success"]) == (False, True, False)


def test_gymnasium_make_builds_registered_env():
    env = gymnasium.make("toy/Corridor-v0")
    obs, info = env.reset(seed=1, options={"task": 0})
    assert obs == "You are in room 0 of 2."
    assert info["task_id"] == "toy/Corridor-v0:0"


def test_spec_reports_the_time_limit_after_both_makes():
    limit = envs.spec("toy/Corridor-v0").max_episode_steps
    assert limit is not None
    for env, want in [(envs.make("toy/Corridor-v0"), limit), (gymnasium.make("toy/Corridor-v0"), limit),
                      (envs.make("toy/Corridor-v0", max_episode_steps=3), 3)]:
        assert env.spec.id == "toy/Corridor-v0" and env.spec.max_episode_steps == want
        env.reset(seed=0, options={"task": 3})  # length 5
        steps = 0
        while True:
            steps += 1
            *_, terminated, truncated, info = env.step("west")  # invalid in room 0: never finishes
            if terminated or truncated:
                break
        assert steps == want and truncated and info["success"] is False
    assert envs.make("toy/Corridor-v0", max_episode_steps=0).spec.max_episode_steps is None
    again = gymnasium.make(envs.make("toy/Corridor-v0", max_episode_steps=4).spec)  # re-made from its spec
    assert again.spec.max_episode_steps == 4


def test_one_registry_gymnasiums():
    """steprl's registry is a view of Gymnasium's: what is removed there is gone here too."""
    envs.register("toy/Scratch-v0", toy.CorridorEnv, description="scratch", max_episode_steps=5)
    assert "toy/Scratch-v0" in gymnasium.registry and envs.spec("toy/Scratch-v0").description == "scratch"
    del gymnasium.registry["toy/Scratch-v0"]
    assert "toy/Scratch-v0" not in envs.registry()
    with pytest.raises(KeyError, match="unknown env id 'toy/Scratch-v0'"):
        envs.make("toy/Scratch-v0")


def test_unknown_id_names_close_match():
    with pytest.raises(KeyError, match="Did you mean toy/Corridor-v0"):
        envs.make("toy/Coridor-v0")


def test_bad_split_and_task_fail_clearly():
    with pytest.raises(ValueError, match="split='dev'"):
        envs.make("toy/Corridor-v0", split="dev")
    env = envs.make("toy/Corridor-v0", num_tasks=3)
    with pytest.raises(ValueError, match="out of range: split 'train' has 3 tasks"):
        env.reset(options={"task": 3})


def test_splits_are_disjoint_and_task_ids_differ():
    ids = {}
    for split in envs.SPLITS:
        env = envs.make("toy/Corridor-v0", split=split, num_tasks=5)
        ids[split] = {env.reset(options={"task": i})[1]["task_id"] for i in range(5)}
        assert len(ids[split]) == 5
    assert not (ids["train"] & ids["valid"]) and not (ids["train"] & ids["test"]) and not (ids["valid"] & ids["test"])


def test_invalid_action_keeps_state_and_episode():
    env = envs.make("toy/Corridor-v0")
    obs, info = env.reset(seed=0, options={"task": 0})
    obs2, reward, terminated, truncated, info2 = env.step("fly")
    assert info2["valid_action"] is False and reward == 0.0 and not terminated and not truncated
    assert info2["anchor"] == info["anchor"] and obs2.startswith(envs.INVALID_ACTION_OBS)
    obs3, reward, terminated, truncated, info3 = env.step("east")
    assert obs3 == "You are in room 1 of 2." and info3["valid_action"] is True


def test_check_env_catches_a_broken_env():
    class RaisesOnBadAction(toy.CorridorEnv):
        def _step_action(self, action):
            if action not in ("east", "west"):
                raise ValueError("bad")
            return super()._step_action(action)

    with pytest.raises(envs.EnvContractError, match="raised ValueError"):
        envs.check_env(RaisesOnBadAction())

    class MissingAnchor(toy.CorridorEnv):
        def _obs(self):
            obs, info = super()._obs()
            del info["anchor"]
            return obs, info

    with pytest.raises(envs.EnvContractError, match="lacks required keys \\['anchor'\\]"):
        envs.check_env(MissingAnchor())

    class Nondeterministic(toy.CorridorEnv):
        calls = 0

        def _reset_task(self, rng):
            type(self).calls += 1
            self.pos = 0
            return f"room 0 (visit {self.calls})", {"task": "t", "admissible_actions": ["east"], "anchor": "a"}

    with pytest.raises(envs.EnvContractError, match="different observations"):
        envs.check_env(Nondeterministic())
