"""One engine factory (agent.make_engine): the trainer's engine gets every agent setting the workers get."""

from __future__ import annotations

import pytest

from steprl.agent import engines
from steprl.agent.config import AgentConfig
from steprl.config import RunConfig
from steprl.loader import load_config


class RecordingVLLM:
    """Stands in for vLLM's engine in this unit test of the wiring: records what it was built with."""

    built: list["RecordingVLLM"] = []

    def __init__(self, model, **kwargs):
        self.model_path, self.kwargs = model, kwargs
        RecordingVLLM.built.append(self)

    def update_weights(self, state_dict):
        pass

    def close(self):
        pass


VLLM_SETTINGS = ["agent.engine=vllm", "agent.vllm_gpu_memory_utilization=0.3", "agent.vllm_kv_cache_gib=2.5",
                 "agent.vllm_max_model_len=777", "agent.vllm_enable_prefix_caching=false", "agent.dtype=float32",
                 "agent.vllm_entropy_top_k=0"]
EXPECTED = {"dtype": "float32", "gpu_memory_utilization": 0.3, "kv_cache_gib": 2.5, "max_model_len": 777,
            "enable_prefix_caching": False, "entropy_top_k": 0, "trust_remote_code": False, "seed": 5}


def test_make_engine_passes_every_vllm_setting(monkeypatch, tmp_path):
    monkeypatch.setattr(engines, "VLLMEngine", RecordingVLLM)
    config = AgentConfig(model=str(tmp_path), engine="vllm", vllm_gpu_memory_utilization=0.3, vllm_kv_cache_gib=2.5,
                         vllm_max_model_len=777, vllm_enable_prefix_caching=False, dtype="float32",
                         vllm_entropy_top_k=0, trust_remote_code=True)
    engine = engines.make_engine(config, seed=5)
    assert engine.model_path == str(tmp_path)
    assert engine.kwargs == {**EXPECTED, "trust_remote_code": True}


def test_trainer_builds_its_vllm_engine_through_the_factory(monkeypatch, tmp_path):
    from steprl.agent.models import build_tiny_model
    from steprl.trainer.loop import RLRun
    from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0)

    monkeypatch.setattr(engines, "VLLMEngine", RecordingVLLM)
    RecordingVLLM.built.clear()
    model = build_tiny_model("toy/Corridor-v0", tmp_path / "tiny", hidden=64, layers=1, vocab=300, num_tasks=2)
    cfg = load_config("configs/quickstart.yaml", [
        f"run.dir={tmp_path / 'run'}", "run.seed=5", "run.progress=false", "env.id=toy/Corridor-v0", "env.kwargs={}",
        "env.train_tasks=2", "eval.split=valid", "eval.tasks=2", "tiny_model=null", f"agent.model={model}",
        *VLLM_SETTINGS], RunConfig)
    run = RLRun(cfg)
    try:
        run.setup()
        assert run.engine is RecordingVLLM.built[-1] and len(RecordingVLLM.built) == 1
        assert run.engine.model_path == str(model)
        assert run.engine.kwargs == EXPECTED
    finally:
        run.close()


def test_trainer_hf_engine_generates_with_the_policy_module(tmp_path):
    from steprl.agent.models import build_tiny_model
    from steprl.trainer.loop import RLRun
    from tests.envs import toy  # noqa: F401

    model = build_tiny_model("toy/Corridor-v0", tmp_path / "tiny", hidden=64, layers=1, vocab=300, num_tasks=2)
    cfg = load_config("configs/quickstart.yaml", [
        f"run.dir={tmp_path / 'run'}", "run.progress=false", "env.id=toy/Corridor-v0", "env.kwargs={}",
        "env.train_tasks=2", "eval.split=valid", "eval.tasks=2", "tiny_model=null", f"agent.model={model}",
        "agent.max_batch_size=7"], RunConfig)
    run = RLRun(cfg)
    try:
        run.setup()
        assert isinstance(run.engine, engines.HFEngine)
        assert run.engine.model is run.policy.model and run.engine.max_batch_size == 7
    finally:
        run.close()


def test_make_engine_with_a_module_needs_its_tokenizer():
    with pytest.raises(ValueError, match="needs the module's tokenizer"):
        engines.make_engine(AgentConfig(model="x"), module=object())
