"""`credit.modifier: empg` through the recipe: the rows carry entropies, the update gets EMPG's advantages."""

from __future__ import annotations

import numpy as np
import pytest

from steprl.config import RunConfig
from steprl.loader import load_config
from tests.trainer.test_estimator_spec import corridor_model, one_iteration  # noqa: F401  (fixture)


def test_gigpo_with_empg_trains_and_logs_its_metrics(corridor_model, tmp_path):  # noqa: F811
    metrics = one_iteration(corridor_model, tmp_path / "run", "gigpo", "sft.steps=20", "credit.modifier=empg",
                            "credit.modifier_params={k: 1.0, k_f: 1.0, zeta: 0.1}")
    assert metrics["credit/empg_entropy_max"] >= metrics["credit/empg_entropy_min"] >= 0
    assert metrics["credit/empg_g_min"] <= 1.0 <= metrics["credit/empg_g_max"]
    assert abs(metrics["credit/adv_mean"]) < 1e-9  # EMPG's advantages, centred over the batch
    assert "credit/step_groups" in metrics and np.isfinite(metrics["train/pg_loss"])


def test_a_bad_modifier_parameter_fails_when_the_config_loads(tmp_path):
    with pytest.raises(Exception, match="unknown parameter 'kprime'"):
        load_config("configs/quickstart.yaml", [f"run.dir={tmp_path}", "credit.modifier=empg",
                                                 "credit.modifier_params={kprime: 1.0}"], RunConfig)
