"""Every shipped config loads and validates; the GPU config mirrors the GiGPO paper's settings."""

from pathlib import Path

import pytest

from steprl.config import load_run_config

CONFIGS = sorted(Path("configs").rglob("*.yaml"))


def test_there_are_configs():
    assert Path("configs/quickstart.yaml") in CONFIGS and len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=str)
def test_config_loads_and_first_line_is_its_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# steprl ") and str(path) in first
    cfg = load_run_config(path)
    assert cfg.run.iterations >= 1


def test_gpu_config_mirrors_gigpo_paper():
    cfg = load_run_config("configs/textworld/qwen2.5-1.5b-instruct_gigpo_gpu.yaml")
    assert (cfg.agent.engine, cfg.agent.response_format, cfg.agent.history_k) == ("vllm", "think_action", 2)
    assert cfg.run.group_size == 8
    assert cfg.credit.estimator == "gigpo" and cfg.credit.params["gamma"] == 0.95
    t = cfg.trainer
    assert (t.lr, t.kl_coef, t.entropy_coef, t.clip_low, t.clip_high, t.ppo_epochs) == (1e-6, 0.01, 0.001, 0.2, 0.2, 1)
    assert t.aggregation == "token-mean" and t.dtype == "bfloat16"


def test_loop_config_keeps_one_model_copy_settings():
    cfg = load_run_config("configs/textworld/loop_rloo_baseline.yaml")
    assert cfg.credit.estimator == "loop" and cfg.credit.effective_drop_threshold == 0.01
    assert cfg.trainer.kl_coef == 0 and cfg.trainer.aggregation == "seq-mean-token-mean"
