"""A third-party env registered only through the `steprl.envs` entry point."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from steprl.commands.env_new import write_package


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """`steprl env new` output, installed (not editable) into a private target dir."""
    root = tmp_path_factory.mktemp("plugin")
    pkg = write_package("guess_number", root)
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(pkg)], check=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), str(Path.cwd())]))
    return pkg, env


def test_plugin_env_listed_by_steprl_envs(installed_plugin):
    pkg, env = installed_plugin
    out = subprocess.run([sys.executable, "-m", "steprl", "envs"], env=env, capture_output=True, text=True, check=True)
    line = next(l for l in out.stdout.splitlines() if l.startswith("guess_number/GuessNumber-v0"))
    assert "[guess_number:register]" in line


def test_plugin_env_passes_check_env_and_its_own_tests(installed_plugin):
    pkg, env = installed_plugin
    code = "from steprl import envs; e = envs.make('guess_number/GuessNumber-v0'); envs.check_env(e, num_bad_actions=300); print('OK')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "OK"
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
                           env=env, capture_output=True, text=True, cwd=pkg)
    assert tests.returncode == 0, tests.stdout[-2000:]
    assert "2 passed" in tests.stdout
