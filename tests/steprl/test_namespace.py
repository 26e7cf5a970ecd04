"""steprl installs under one name: the library folders import as ``steprl.envs`` etc., never as ``envs``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("envs", "agent", "credit", "trainer", "evaluation")


def test_pyproject_lists_every_package_folder():
    """A subpackage missing from pyproject's list would be absent from a wheel install."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    assert mapping == {f"steprl.{name}": name for name in LIBRARY}
    want = set()
    for top in (*LIBRARY, "steprl"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            want.add(".".join(rel) if top == "steprl" else "steprl." + ".".join(rel))
    assert set(config["packages"]) == want


def _user_packages(where: Path) -> None:
    """Folders a researcher's repo commonly has, each failing loudly if steprl ever imports it."""
    for name in ("envs", "agent", "trainer", "credit", "evaluation"):
        (where / name).mkdir()
        (where / name / "__init__.py").write_text(f"raise RuntimeError('the user\\'s own {name} was imported')\n")


@pytest.mark.slow
def test_wheel_installs_only_steprl_at_top_level(tmp_path):
    # Build from a copy: setuptools writes build/ and *.egg-info into the source tree it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert build.returncode == 0, build.stderr[-3000:]
    top = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert top == {"steprl"}
    assert (target / "steprl" / "envs" / "web" / "webshop" / "text_env.py").is_file()

    # A clean interpreter: the wheel first, then this venv's dependencies, no .pth files (so not
    # this checkout's editable install) and no repo root on the path.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    code = (
        "import importlib\n"
        "for name in ('envs', 'agent', 'credit', 'trainer', 'evaluation'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        print('missing', name)\n"
        "from steprl import envs\n"
        "print('from', envs.__file__)\n"
        "print('ids', len(envs.registry()))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]]))
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=workdir, capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert [l for l in lines if l.startswith("missing")] == [f"missing {n}" for n in LIBRARY]
    assert lines[-2] == f"from {target / 'steprl' / 'envs' / '__init__.py'}"
    assert int(lines[-1].split()[1]) >= 30


def test_cli_ignores_users_own_envs_agent_trainer_packages(tmp_path):
    """``python -m steprl`` puts the working directory first on sys.path; its packages must not shadow ours."""
    _user_packages(tmp_path)
    out = subprocess.run([sys.executable, "-m", "steprl", "envs"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "textworld/coin_collector-v0" in out.stdout
    assert "the user's own" not in out.stdout + out.stderr


@pytest.mark.slow
def test_one_iteration_train_beside_users_own_packages(tmp_path):
    from steprl.agent.models import build_tiny_model

    work = tmp_path / "repo"
    work.mkdir()
    _user_packages(work)
    model = build_tiny_model("textworld/coin_collector-v0", tmp_path / "tiny", hidden=64, layers=1, vocab=400,
                             num_tasks=2)
    args = [str(ROOT / "configs" / "quickstart.yaml"), "tiny_model=null", f"agent.model={model}",
            f"run.dir={tmp_path / 'run'}", "run.iterations=1", "run.tasks_per_iteration=2", "run.group_size=2",
            "run.progress=false", "env.kwargs.level=[2,3]", "env.train_tasks=2", "env.max_turns=3",
            "eval.split=valid", "eval.tasks=2", "eval.every=10", "sft.steps=0", "agent.max_new_tokens=4",
            "agent.history_k=1", "agent.max_prompt_tokens=384"]
    out = subprocess.run([sys.executable, "-m", "steprl", "train", *args], cwd=work, capture_output=True,
                         text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "the user's own" not in out.stdout + out.stderr
    records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any('"iteration": 1' in line for line in records)
