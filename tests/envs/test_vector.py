import numpy as np
import pytest

from steprl import envs
from tests.envs import toy  # noqa: F401


@pytest.mark.parametrize("num_workers", [0, 2])
def test_vector_env_matches_single_envs(num_workers):
    fns = [envs.make_fn("toy/Corridor-v0")] * 4
    with envs.TextVectorEnv(fns, num_workers=num_workers) as venv:
        obs, infos = venv.reset(seeds=[0, 1, 2, 3], options=[{"task": i} for i in range(4)])
        assert obs == [f"You are in room 0 of {2 + i}." for i in range(4)]
        obs, rewards, terminated, truncated, infos = venv.step(["east", None, "fly", "east"])
        assert obs[0] == "You are in room 1 of 2." and obs[1] is None and obs[3] == "You are in room 1 of 5."
        assert [i and i["valid_action"] for i in infos] == [True, None, False, True]
        obs, rewards, terminated, truncated, infos = venv.step(["east", "east", None, None])
        np.testing.assert_array_equal(rewards, [1.0, 0.0, 0.0, 0.0])
        np.testing.assert_array_equal(terminated, [True, False, False, False])
        assert infos[0]["success"] is True


@pytest.mark.parametrize("num_workers", [0, 1])
def test_crashing_env_truncates_only_its_episode(num_workers):
    fns = [envs.make_fn("toy/Crashing-v0", crash_at=2), envs.make_fn("toy/Corridor-v0")]
    with envs.TextVectorEnv(fns, num_workers=num_workers) as venv:
        venv.reset(seeds=[0, 0], options=[{"task": 3}, {"task": 3}])
        venv.step(["east", "east"])
        obs, rewards, terminated, truncated, infos = venv.step(["east", "east"])
        assert truncated.tolist() == [True, False]
        assert "simulated env crash" in infos[0]["env_error"] and infos[0]["success"] is False
        assert obs[1] == "You are in room 2 of 5."
        # the crashed env is rebuilt and plays again
        obs, infos = venv.reset(seeds=[1], options=[{"task": 0}], indices=[0])
        assert obs == ["You are in room 0 of 2."]


def test_dead_worker_process_is_restarted_and_counted():
    fns = [envs.make_fn("toy/Corridor-v0")] * 2
    with envs.TextVectorEnv(fns, num_workers=2) as venv:
        venv.reset(seeds=[0, 0], options=[{"task": 1}, {"task": 1}])
        venv._workers[0].process.kill()
        venv._workers[0].process.join()
        obs, rewards, terminated, truncated, infos = venv.step(["east", "east"])
        assert truncated.tolist() == [True, False]
        assert "died" in infos[0]["env_error"]
        obs, infos = venv.reset(seeds=[0], options=[{"task": 0}], indices=[0])
        assert obs == ["You are in room 0 of 2."]


def test_step_length_must_match():
    with envs.TextVectorEnv([envs.make_fn("toy/Corridor-v0")]) as venv:
        venv.reset()
        with pytest.raises(ValueError, match="2 actions for 1 envs"):
            venv.step(["east", "east"])


@pytest.mark.parametrize("executor,num_workers", [(None, 0), ("local", 0), (None, 2), ("process", 2)])
def test_make_vector_env_runs_the_named_executor(executor, num_workers):
    from steprl.envs.vector import make_vector_env

    with make_vector_env([envs.make_fn("toy/Corridor-v0")] * 3, executor, num_workers) as venv:
        assert isinstance(venv, envs.TextVectorEnv) and venv.num_workers == num_workers
        obs, _ = venv.reset(seeds=[0, 0, 0], options=[{"task": i} for i in range(3)])
        assert obs == ["You are in room 0 of 2.", "You are in room 0 of 3.", "You are in room 0 of 4."]


def test_env_config_executor_is_validated_and_defaults_to_todays_behaviour():
    from pydantic import ValidationError

    from steprl.envs.config import EnvConfig

    assert EnvConfig().resolved_executor == "local" and EnvConfig(num_workers=2).resolved_executor == "process"
    assert EnvConfig(executor="ray", num_workers=2, ray={"address": "auto"}).ray.address == "auto"
    with pytest.raises(ValidationError, match="executor='ray' needs num_workers >= 1"):
        EnvConfig(executor="ray")
    with pytest.raises(ValidationError, match="executor='local' steps envs in this process; set num_workers=0"):
        EnvConfig(executor="local", num_workers=2)
    with pytest.raises(ValidationError, match="executor"):
        EnvConfig(executor="mpi", num_workers=1)
    with pytest.raises(ValidationError, match="ray.adress"):
        EnvConfig(ray={"adress": "auto"})


@pytest.mark.parametrize("num_workers", [0, 2])
def test_reset_request_in_step_starts_a_new_episode_beside_the_others_steps(num_workers):
    fns = [envs.make_fn("toy/Corridor-v0")] * 3
    with envs.TextVectorEnv(fns, num_workers=num_workers) as venv:
        venv.reset(seeds=[0, 0, 0], options=[{"task": 0}, {"task": 2}, {"task": 1}])
        obs, rewards, terminated, truncated, infos = venv.step(["east", "east", "east"])
        assert terminated.tolist() == [False, False, False] and obs[1] == "You are in room 1 of 4."
        obs, rewards, terminated, truncated, infos = venv.step(["east", envs.Reset(5, {"task": 3}), None])
        assert obs[0] == "You are in room 2 of 2." and rewards[0] == 1.0 and terminated[0]
        assert obs[1] == "You are in room 0 of 5." and rewards[1] == 0.0
        assert not terminated[1] and not truncated[1]
        assert infos[1]["reset"] is True
        assert obs[2] is None and infos[2] is None
        obs, _, _, _, infos = venv.step([envs.Reset(0, {"task": 0}), "east", "east"])
        assert obs == ["You are in room 0 of 2.", "You are in room 1 of 5.", "You are in room 2 of 3."]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_reset_request_that_raises_ends_like_a_crashed_step(num_workers):
    fns = [envs.make_fn("toy/Corridor-v0")]
    with envs.TextVectorEnv(fns, num_workers=num_workers) as venv:
        venv.reset(seeds=[0], options=[{"task": 0}])
        obs, rewards, terminated, truncated, infos = venv.step([envs.Reset(0, {"task": 10**9})])
        assert truncated.tolist() == [True] and infos[0]["env_error"] and infos[0]["success"] is False
        obs, _, _, _, infos = venv.step([envs.Reset(0, {"task": 1})])  # rebuilt, plays again
        assert obs == ["You are in room 0 of 3."]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_reset_each_reports_a_failing_reset_instead_of_raising(num_workers):
    fns = [envs.make_fn("toy/Corridor-v0")] * 3
    with envs.TextVectorEnv(fns, num_workers=num_workers) as venv:
        obs, infos = venv.reset_each(seeds=[0, 0, 0], options=[{"task": 0}, {"task": 10**9}, {"task": 2}])
        assert obs[0] == "You are in room 0 of 2." and obs[2] == "You are in room 0 of 4."
        assert obs[1] is None and infos[1]["env_error"] and infos[1]["success"] is False
        assert "reset" not in infos[0] and "env_error" not in infos[0]
        with pytest.raises(RuntimeError, match="env 1 failed to reset"):  # plain reset still raises
            venv.reset(options=[{"task": 10**9}], indices=[1])
        obs, infos = venv.reset_each(options=[{"task": 1}], indices=[1])  # the env was rebuilt: it starts
        assert obs == ["You are in room 0 of 3."]


def test_reset_each_retries_a_flaky_reset_on_a_rebuilt_env():
    fns = [envs.make_fn("toy/FlakyReset-v0")] * 2
    with envs.TextVectorEnv(fns, num_workers=0) as venv:
        toy.FlakyResetEnv.fail_once = {1}
        obs, infos = venv.reset_each(options=[{"task": 0}, {"task": 1}])
        assert obs == ["You are in room 0 of 2.", "You are in room 0 of 3."]
        toy.FlakyResetEnv.fail_once = {1}
        obs, infos = venv.reset_each(options=[{"task": 1}], indices=[1], retries=0)
        assert obs == [None] and "simulated flaky reset" in infos[0]["env_error"]
        with pytest.raises(ValueError, match="retries=-1"):
            venv.reset_each(retries=-1)


def _drain(venv) -> dict:
    results = {}
    while venv.in_flight:
        results.update(venv.recv())
    return results


@pytest.mark.parametrize("num_workers", [0, 2])
def test_send_recv_gives_the_results_step_gives(num_workers):
    plan = [["east", "east", "west", "east"], ["fly", "east", None, "east"],
            [envs.Reset(3, {"task": 2}), "east", "east", envs.Reset(0, {"task": 0})], ["east", "west", "east", "east"]]
    fns = [envs.make_fn("toy/Corridor-v0")] * 4
    with envs.TextVectorEnv(fns, num_workers=0) as ref, envs.TextVectorEnv(fns, num_workers=num_workers) as venv:
        for v in (ref, venv):
            v.reset(seeds=[0, 1, 2, 3], options=[{"task": i} for i in range(4)])
        rounds = []
        for actions in plan:
            expected = ref.step(actions)
            venv.send({i: a for i, a in enumerate(actions) if a is not None})
            got = _drain(venv)
            rounds.append(got)
            assert sorted(got) == [i for i, a in enumerate(actions) if a is not None]
            for i, (obs, reward, term, trunc, info) in got.items():
                assert obs == expected[0][i] and reward == expected[1][i] and info == expected[4][i]
                assert (term, trunc) == (expected[2][i], expected[3][i])
        reset = rounds[2][0]  # the third round reset env 0 to task 2 and env 3 to task 0
        assert reset[0] == "You are in room 0 of 4." and reset[4]["reset"] is True and reset[1:4] == (0.0, False, False)
        assert rounds[1][0][4]["valid_action"] is False  # 'fly'
        assert rounds[3][0][0] == "You are in room 1 of 4." and rounds[3][3][0] == "You are in room 1 of 2."


def test_recv_returns_a_fast_worker_without_waiting_for_a_slow_one():
    fns = [envs.make_fn("toy/Slow-v0", delay=3.0), envs.make_fn("toy/Slow-v0", delay=0.0)]
    with envs.TextVectorEnv(fns, num_workers=2) as venv:
        venv.reset(seeds=[0, 0], options=[{"task": 1}, {"task": 1}])
        venv.send({0: "east", 1: "east"})
        first = venv.recv()
        assert list(first) == [1] and first[1][0] == "You are in room 1 of 3."
        assert venv.in_flight == {0}
        venv.send({1: "east"})  # env 1 goes on while env 0 is still stepping
        rest = _drain(venv)
        assert rest[0][0] == "You are in room 1 of 3." and rest[1][0] == "You are in room 2 of 3."


@pytest.mark.parametrize("num_workers", [0, 2])
def test_send_and_recv_refuse_what_would_lose_a_result(num_workers):
    with envs.TextVectorEnv([envs.make_fn("toy/Corridor-v0")] * 2, num_workers=num_workers) as venv:
        venv.reset(options=[{"task": 0}, {"task": 0}])
        with pytest.raises(RuntimeError, match="no env in flight"):
            venv.recv()
        with pytest.raises(ValueError, match="index 2"):
            venv.send({2: "east"})
        with pytest.raises(ValueError, match="None for env 0"):
            venv.send({0: None})
        venv.send({0: "east"})
        with pytest.raises(RuntimeError, match=r"envs \[0\] already have an action in flight"):
            venv.send({0: "east", 1: "east"})
        assert venv.in_flight == {0}  # the refused send sent nothing
        for call in (lambda: venv.step(["east", None]), lambda: venv.reset(), lambda: venv.reset_each(),
                     lambda: venv.call("task_settings", 0)):
            with pytest.raises(RuntimeError, match=r"while envs \[0\] are in flight"):
                call()
        assert _drain(venv)[0][0] == "You are in room 1 of 2."
        obs, *_ = venv.step(["east", "east"])  # idle again: lockstep works
        assert obs == ["You are in room 2 of 2.", "You are in room 1 of 2."]


def test_a_worker_that_dies_with_actions_in_flight_ends_their_episodes():
    fns = [envs.make_fn("toy/Corridor-v0")] * 4
    with envs.TextVectorEnv(fns, num_workers=2) as venv:
        venv.reset(options=[{"task": 3}] * 4)
        venv._workers[0].process.kill()  # holds envs 0 and 1
        venv._workers[0].process.join()
        venv.send({0: "east", 1: "east", 2: "east"})
        got = _drain(venv)
        assert sorted(got) == [0, 1, 2]
        assert all(got[i][3] and "worker process 0 died" in got[i][4]["env_error"] for i in (0, 1))
        assert got[2][0] == "You are in room 1 of 5." and not got[2][3]
        venv.send({0: envs.Reset(0, {"task": 1}), 3: "east"})  # the restarted worker plays again
        got = _drain(venv)
        assert got[0][0] == "You are in room 0 of 3." and got[3][0] == "You are in room 1 of 5."


def test_close_with_actions_in_flight_returns():
    venv = envs.TextVectorEnv([envs.make_fn("toy/Slow-v0", delay=0.5)] * 2, num_workers=2)
    venv.reset(options=[{"task": 0}, {"task": 0}])
    venv.send({0: "east", 1: "east"})
    venv.close()
    assert venv.in_flight == frozenset()
    assert not any(w.process.is_alive() for w in venv._workers)
