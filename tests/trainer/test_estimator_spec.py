"""A new estimator is one registration: the recipe fits the head its spec names and drops the rows it says.

Everything the recipe needs is declared here, in the test file; nothing outside it is edited.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from steprl import credit
from steprl.config import RunConfig
from steprl.credit import registry
from steprl.loader import load_config

SEEN: dict[str, list] = {"advantages": [], "values": []}
DROP = 0.3


def _own_diagnostics(batch, advantages, *, gamma=1.0):
    return {"credit/baseline_mean": float(np.mean(batch.value))}


def _register():
    @credit.register("return_minus_value", head="value", drop_threshold=DROP, diagnostics=_own_diagnostics)
    def advantages(batch, *, gamma=1.0):
        """Monte Carlo return minus the critic's V(s_t), a REINFORCE-with-baseline."""
        assert batch.value is not None  # the recipe filled the field the spec's head names
        adv = credit.step_returns(batch, gamma) - batch.value
        SEEN["advantages"].append(np.asarray(adv))
        SEEN["values"].append(np.asarray(batch.value))
        return adv


@pytest.fixture
def scratch_registry(monkeypatch):
    for table in ("_ESTIMATORS", "_PARAMETERS", "_SPECS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


@pytest.fixture(scope="module")
def corridor_model(tmp_path_factory):
    from steprl.agent.models import build_tiny_model
    from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0)

    return build_tiny_model("toy/Corridor-v0", tmp_path_factory.mktemp("m") / "tiny", hidden=64, layers=1, vocab=300,
                            num_tasks=4)


def one_iteration(model, run_dir, estimator, *extra):
    from steprl.trainer.loop import RLRun

    cfg = load_config("configs/quickstart.yaml", [
        f"run.dir={run_dir}", "run.iterations=1", "run.tasks_per_iteration=4", "run.group_size=3", "run.seed=1",
        "run.progress=false", "env.id=toy/Corridor-v0", "env.kwargs={}", "env.train_tasks=4", "env.max_turns=5",
        "eval.split=valid", "eval.tasks=2", "eval.every=10", "sft.steps=40", "sft.lr=3e-3", "tiny_model=null", f"agent.model={model}",
        "trainer.micro_batch_tokens=8192", "agent.max_new_tokens=3", "agent.history_k=0",
        f"credit.estimator={estimator}", "credit.params={}", *extra,
    ], RunConfig)
    RLRun(cfg).run()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return next(r for r in records if r["iteration"] == 1)


def test_new_estimator_with_a_value_head_and_a_drop_threshold_trains(corridor_model, tmp_path, scratch_registry):
    _register()
    SEEN["advantages"].clear(), SEEN["values"].clear()
    metrics = one_iteration(corridor_model, tmp_path / "run", "return_minus_value", "credit.params={gamma: 0.5}")
    assert len(SEEN["advantages"]) == 1
    adv = SEEN["advantages"][0]
    # the head was built and fitted on the returns (value head metrics logged)
    assert {"value/loss", "value/mse", "value/clip_frac"} <= metrics.keys()
    # the head starts at zero output, so the first iteration's values are 0 and A is the plain return
    assert np.all(SEEN["values"][0] == 0.0)
    # the spec's drop threshold was applied: the share of rows with |A| < 0.3
    assert metrics["credit/dropped_share"] == pytest.approx(float(np.mean(np.abs(adv) < DROP)))
    assert 0.0 < metrics["credit/dropped_share"] < 1.0
    # generic and own diagnostics, and none of GiGPO's
    assert metrics["credit/baseline_mean"] == 0.0 and metrics["credit/rows"] == len(adv)
    assert metrics["credit/adv_mean"] == pytest.approx(float(np.mean(adv)))
    assert not any(k.startswith(("credit/step_group", "credit/adv_step", "credit/adv_episode")) for k in metrics)
    assert (tmp_path / "run" / "checkpoints" / "iter_000001").is_dir()


def test_grpo_run_logs_no_gigpo_keys_and_gigpo_run_does(corridor_model, tmp_path):
    grpo = one_iteration(corridor_model, tmp_path / "grpo", "grpo")
    gigpo = one_iteration(corridor_model, tmp_path / "gigpo", "gigpo")
    gigpo_only = {k for k in gigpo if k.startswith(("credit/step_group", "credit/nonsingleton", "credit/adv_step",
                                                    "credit/adv_episode"))}
    assert len(gigpo_only) >= 10
    assert not gigpo_only & grpo.keys()
    assert "credit/dropped_share" not in grpo and "value/loss" not in grpo
    assert {"credit/adv_std", "credit/zero_adv_share", "credit/zero_std_group_share"} <= grpo.keys()


@pytest.mark.parametrize("estimator, own_key", [("hgpo", "credit/hgpo_level1_share"),
                                                ("graphgpo", "credit/graph_reachable_share")])
def test_newer_estimators_train_through_the_recipe(corridor_model, tmp_path, estimator, own_key):
    """The rows carry what they need (next states, outcomes); their own diagnostics are logged."""
    metrics = one_iteration(corridor_model, tmp_path / estimator, estimator, "sft.steps=20")  # a policy that mixes outcomes
    assert 0.0 <= metrics[own_key] <= 1.0 and metrics["credit/rows"] > 0
    assert np.isfinite(metrics["credit/adv_std"]) and metrics["credit/adv_std"] > 0 and np.isfinite(metrics["train/pg_loss"])
    assert not any(k.startswith("credit/step_group") for k in metrics)
