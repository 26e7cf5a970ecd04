"""Fixtures for the distributed tests: a local Ray instance (2 CPUs) and a tiny model built in ~1 s."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_local():
    """``ray.init(num_cpus=2)`` for one test module, shut down afterwards.

    Actors see the repository on ``PYTHONPATH`` (so ``tests.envs.toy`` envs
    resolve there too) and run torch with one thread.
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    env_vars = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env_vars})
    yield ray
    ray.shutdown()


CORPUS = [
    "You are in room 0 of 2.", "You are in room 3 of 5.", "Reach room 4.", "east", "west", "look",
    "That is not a valid action.", "Admissible actions: east, west",
] * 20


@pytest.fixture(scope="module")
def corridor_model(tmp_path_factory) -> Path:
    """A from-scratch Qwen2 model (hidden 64, 1 layer) with a tokenizer fitted to toy-corridor text."""
    from steprl.agent.models import build_tiny_model

    return build_tiny_model(CORPUS, tmp_path_factory.mktemp("corridor_model"), hidden=64, layers=1, vocab=300, seed=0)
