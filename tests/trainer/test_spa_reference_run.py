"""SPA in its reference form through the recipe: the estimator is fitted once on exploration rollouts of the
SFT policy, frozen, saved, reloaded on resume, and its dense rewards r̃_t = ĉ_t + 0.5·g_t train spa, gae and grpo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from steprl import credit
from steprl.config import RunConfig
from steprl.loader import load_config
from steprl.trainer.progress import ESTIMATOR_DIR, ReferenceProgressEstimator

pytestmark = pytest.mark.slow

REFERENCE = ["trainer.progress_head.mode=reference",
             "trainer.progress_head.reference={rollouts_per_task: 3, lr: 1e-3, warmup_steps: 2, epochs: 2, "
             "batch_size: 4}"]
VARIANTS = {  # the three ways RL reads the same frozen estimator's rewards
    "spa": ["credit.estimator=spa", "credit.params={gamma: 0.99, grounding: reference}"],
    "gae": ["credit.estimator=gae", "credit.params={gamma: 0.99, lam: 0.95}", "credit.reward=spa",
            "credit.reward_params={grounding: reference}"],
    "grpo": ["credit.estimator=grpo", "credit.params={}", "credit.reward=spa",
             "credit.reward_params={grounding: reference}"],
}


@pytest.fixture(scope="module")
def corridor_model(tmp_path_factory):
    from steprl.agent.models import build_tiny_model
    from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0)

    return build_tiny_model("toy/Corridor-v0", tmp_path_factory.mktemp("m") / "tiny", hidden=64, layers=1, vocab=300,
                            num_tasks=4)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(model, run_dir, *extra):
    return load_config("configs/quickstart.yaml", [
        f"run.dir={run_dir}", "run.iterations=1", "run.tasks_per_iteration=4", "run.group_size=3", "run.seed=1",
        "run.progress=false", "run.save_episodes_every=1", "env.id=toy/Corridor-v0", "env.kwargs={}",
        "env.train_tasks=4", "env.max_turns=5", "eval.split=valid", "eval.tasks=2", "eval.every=10", "sft.steps=20",
        "sft.lr=3e-3", "tiny_model=null", f"agent.model={model}", "trainer.micro_batch_tokens=8192",
        "agent.max_new_tokens=3", "agent.history_k=0", *REFERENCE, *extra], RunConfig)


def records(run_dir):
    return {r["iteration"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}


def reference_grounding(rows) -> np.ndarray:
    """g_t of the reference code, from the rows: the action was valid, or it is the episode's last step."""
    return np.array([float((r.format_ok and r.valid_action) or r.done) for r in rows])


class Spy:
    """Records what the frozen estimator gave and what the estimator of the run received."""

    def __init__(self, monkeypatch):
        self.c_hat, self.rows, self.batches = [], [], []
        before_credit = ReferenceProgressEstimator.before_credit
        estimate = credit.estimate

        def spy_before_credit(head, rows, features):
            c_hat, metrics = before_credit(head, rows, features)
            self.rows.append(list(rows))
            self.c_hat.append(c_hat)
            return c_hat, metrics

        def spy_estimate(name, batch, **params):
            self.batches.append(batch)
            return estimate(name, batch, **params)

        monkeypatch.setattr(ReferenceProgressEstimator, "before_credit", spy_before_credit)
        monkeypatch.setattr(credit, "estimate", spy_estimate)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_one_iteration_on_the_reference_estimators_rewards(corridor_model, tmp_path, monkeypatch, variant):
    from steprl.trainer.loop import RLRun

    spy = Spy(monkeypatch)
    run = RLRun(config(corridor_model, tmp_path / variant, *VARIANTS[variant]))
    run.run()
    metrics = records(tmp_path / variant)
    # fitted once, before RL, on K = 3 exploration episodes of each of the 4 train tasks
    assert metrics[0]["progress/explore_episodes"] == 12 and metrics[0]["progress/fit_steps"] == 2 * 3
    assert metrics[0]["progress/fit_mse"] < metrics[0]["progress/fit_mse_before"]
    assert (tmp_path / variant / ESTIMATOR_DIR / "meta.json").is_file()
    assert (tmp_path / variant / ESTIMATOR_DIR / "episodes.jsonl").is_file()
    first = metrics[1]
    assert {"progress/c_hat_mean", "progress/mse"} <= first.keys() and np.isfinite(first["train/pg_loss"])
    assert "progress/fit_mse" not in first  # nothing is fitted during RL

    (rows,), (c_hat,), (batch,) = spy.rows, spy.c_hat, spy.batches
    estimator = next(h for h in run.heads.values() if isinstance(h, ReferenceProgressEstimator))
    np.testing.assert_array_equal(batch.progress, c_hat)  # the frozen estimator's ĉ_t, one per step row
    np.testing.assert_allclose(estimator.predict(rows), c_hat, rtol=1e-6, atol=1e-6)
    dense = c_hat + 0.5 * reference_grounding(rows)  # r̃_t = ĉ_t + 0.5·g_t
    if variant == "spa":  # spa builds r̃_t itself (its details show it); the batch keeps the env reward
        np.testing.assert_array_equal(batch.reward, [r.reward for r in rows])
        np.testing.assert_allclose(credit.details("spa", batch, gamma=0.99, grounding="reference")["stepwise_reward"],
                                   dense, rtol=1e-12, atol=1e-12)
    else:  # gae and grpo get r̃_t as their rewards
        np.testing.assert_allclose(batch.reward, dense, rtol=1e-12, atol=1e-12)
        assert first["credit/stepwise_return_mean"] == pytest.approx(dense.sum() / batch.n_trajectories)
    if variant == "gae":  # PPO's critic is fitted on the same rewards, beside the frozen estimator
        assert {"value/loss", "value/mse"} <= first.keys()
        episodes = (tmp_path / variant / "episodes" / "iter_000001.jsonl").read_text().splitlines()
        saved = [json.loads(line) for line in episodes]
        targets = [step["credit"]["details"]["target"] for episode in saved for step in episode["steps"]]
        assert len(targets) == len(rows) and all(np.isfinite(targets))


def test_the_estimator_is_frozen_during_rl_and_resume_reloads_it_without_refitting(corridor_model, tmp_path,
                                                                                    monkeypatch):
    from steprl.trainer.loop import RLRun

    run_dir = tmp_path / "run"
    run = RLRun(config(corridor_model, run_dir, *VARIANTS["grpo"]))
    snapshots = {}
    prepare = ReferenceProgressEstimator.prepare

    def snapshot_after_prepare(head, run_):
        out = prepare(head, run_)
        snapshots["estimator"] = {n: p.detach().clone() for n, p in head.model.model.state_dict().items()}
        snapshots["linear"] = head.linear.weight.detach().clone()
        snapshots["policy"] = {n: p.detach().clone() for n, p in run_.policy.model.state_dict().items()}
        return out

    monkeypatch.setattr(ReferenceProgressEstimator, "prepare", snapshot_after_prepare)
    run.run()
    estimator = run.heads["progress_head"]
    assert records(run_dir)[1]["train/optimizer_steps"] > 0
    policy_after = run.policy.model.state_dict()
    assert any(not torch.equal(snapshots["policy"][n], policy_after[n]) for n in policy_after)  # RL trained the policy
    after = estimator.model.model.state_dict()
    assert all(torch.equal(snapshots["estimator"][n], after[n]) for n in after)  # ... and left the estimator alone
    assert torch.equal(snapshots["linear"], estimator.linear.weight)
    rows = [(list(r[0]), list(r[1])) for r in [([5, 6, 7, 8], [9, 10, 2]), ([5, 6], [11, 2])]]
    fitted = estimator.predict(rows)

    # --resume: the estimator comes back from RUN_DIR/progress_estimator; nothing is explored or fitted again
    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run must not explore or fit the progress estimator again")

    monkeypatch.setattr(ReferenceProgressEstimator, "collect", refuse)
    monkeypatch.setattr(ReferenceProgressEstimator, "fit", refuse)
    resumed = RLRun(config(corridor_model, run_dir, *VARIANTS["grpo"], "run.iterations=2"), resume=True)
    resumed.run()
    assert resumed.resumed and set(records(run_dir)) == {0, 1, 2}
    reloaded = resumed.heads["progress_head"]
    np.testing.assert_array_equal(reloaded.predict(rows), fitted)
    assert all(torch.equal(after[n], p) for n, p in reloaded.model.model.state_dict().items())

    # a run directory whose estimator is gone cannot be resumed (it was fitted on the SFT policy)
    import shutil

    shutil.rmtree(run_dir / ESTIMATOR_DIR)
    with pytest.raises(FileNotFoundError, match="progress_estimator is missing"):
        RLRun(config(corridor_model, run_dir, *VARIANTS["grpo"], "run.iterations=3"), resume=True).run()


def test_online_progress_head_still_trains_spa_and_feeds_other_estimators(corridor_model, tmp_path):
    """mode: online (the default) is today's head, fitted every iteration; credit.reward=spa works with it too."""
    from steprl.trainer.loop import RLRun

    for name, extra in (("spa", ["credit.estimator=spa", "credit.params={}"]), ("gae", VARIANTS["gae"])):
        cfg = config(corridor_model, tmp_path / name, *extra)
        cfg.trainer.progress_head = type(cfg.trainer.progress_head)()  # back to the default online head
        RLRun(cfg).run()
        metrics = records(tmp_path / name)
        assert "progress/explore_episodes" not in metrics[0] and not (tmp_path / name / ESTIMATOR_DIR).exists()
        assert {"progress/mse_before", "progress/mse"} <= metrics[1].keys()  # fitted on the iteration's episodes
