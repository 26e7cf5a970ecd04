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
