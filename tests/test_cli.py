import subprocess
import sys


def steprl(*args, input=None):
    return subprocess.run([sys.executable, "-m", "steprl", *args], capture_output=True, text=True, input=input)


def test_envs_lists_textworld_families():
    out = steprl("envs")
    assert out.returncode == 0
    ids = [line.split()[0] for line in out.stdout.splitlines()]
    for family in ("coin_collector", "treasure_hunter", "simple", "cooking"):
        assert f"textworld/{family}-v0" in ids


def test_play_with_expert_wins():
    out = steprl("play", "textworld/coin_collector-v0", "--split", "test", "--task", "0", input="expert\n" * 20)
    assert out.returncode == 0, out.stderr
    assert "SUCCESS" in out.stdout and "reward +1" in out.stdout


def test_unknown_env_is_one_clear_line_and_exit_2():
    out = steprl("play", "textworld/coin-v0")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "unknown env id 'textworld/coin-v0'" in out.stderr


def test_env_new_rejects_bad_name(tmp_path):
    out = steprl("env", "new", "Bad-Name", "--dir", str(tmp_path))
    assert out.returncode == 2 and "lowercase Python identifier" in out.stderr


def test_a_bug_keeps_its_traceback_and_a_deliberate_error_is_one_line(monkeypatch, capsys):
    """A KeyError from a dict lookup or a ValueError from a library is a bug: the traceback stays."""
    import pytest

    from steprl import cli
    from steprl.commands import envs as envs_command

    def lookup_bug(args):
        return {}["missing"]  # a bug in steprl's own code, not a message for the user

    def numpy_error(args):
        import numpy as np

        return np.zeros(3).reshape(2)  # ValueError raised inside numpy

    def deliberate(args):  # steprl's own check of a user's input
        from steprl.credit.registry import check_params

        check_params("reinforce", {})

    for bug in (lookup_bug, numpy_error):
        monkeypatch.setattr(envs_command, "run", bug)
        with pytest.raises((KeyError, ValueError)):
            cli.main(["envs"])
    monkeypatch.setattr(envs_command, "run", deliberate)
    assert cli.main(["envs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("steprl envs: error: unknown credit estimator 'reinforce'; available: ") and err.count("\n") == 1


def test_malloc_tuning_is_left_to_steprl_train():
    code = ("import steprl.cli as c, steprl.credit.allocator as a; c.main(['envs']); "
            "print('applied', a._applied)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("applied None")
