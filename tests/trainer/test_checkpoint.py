"""Atomic checkpoints: exact restore of weights, optimizer, scheduler and RNG; crashes leave the last one intact."""

import random

import numpy as np
import pytest
import torch

import steprl.trainer.checkpoint as checkpoint
from tests.trainer import make_rows, tiny_model, single_thread  # noqa: F401  (single_thread: autouse fixture)
from steprl.trainer.checkpoint import list_checkpoints, load_latest, save_checkpoint
from steprl.trainer.config import TrainerConfig
from steprl.trainer.policy import Policy, PolicyTrainer

ROWS = make_rows([(6, 4), (9, 3), (4, 5)], seed=4)


def trained(lora=False, updates=2):
    config = TrainerConfig(lr=1e-3, warmup_steps=5, lora={"enabled": lora, "r": 4})
    policy = Policy.from_model(tiny_model(), config)
    trainer = PolicyTrainer(policy, config)
    for _ in range(updates):
        trainer.update(ROWS, [1.0, -1.0, 0.5])
    return policy, trainer


def snapshot(policy, trainer):
    params = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    optim = {
        i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.items()}
        for i, state in enumerate(trainer.optimizer.state.values())
    }
    return params, optim, trainer.scheduler.state_dict(), trainer.updates


def draw_random():
    return random.random(), float(np.random.rand()), torch.rand(3)


def assert_same(a, b):
    params_a, optim_a, sched_a, updates_a = a
    params_b, optim_b, sched_b, updates_b = b
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        assert torch.equal(params_a[name], params_b[name]), name
    assert len(optim_a) == len(optim_b) > 0
    for i in optim_a:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(torch.as_tensor(optim_a[i][key]), torch.as_tensor(optim_b[i][key])), (i, key)
    assert sched_a == sched_b
    assert updates_a == updates_b


@pytest.mark.parametrize("lora", [False, True])
def test_save_then_restore_is_exact(tmp_path, lora):
    policy, trainer = trained(lora)
    saved = snapshot(policy, trainer)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = save_checkpoint(tmp_path, 2, policy=policy, components={"trainer": trainer}, extra={"best": 0.5})
    expected_draws = draw_random()
    assert path == tmp_path / "checkpoints" / "iter_000002"

    trainer.update(ROWS, [-1.0, 1.0, 2.0])  # move everything away from the saved state
    draw_random()
    name, param = next((n, p) for n, p in policy.model.named_parameters() if p.requires_grad)
    assert not torch.equal(param, saved[0][name])

    ckpt = load_latest(tmp_path)
    assert ckpt.iteration == 2 and ckpt.extra == {"best": 0.5}
    ckpt.restore(policy, {"trainer": trainer})
    assert_same(snapshot(policy, trainer), saved)
    draws = draw_random()
    assert draws[:2] == expected_draws[:2] and torch.equal(draws[2], expected_draws[2])

    # a fresh process: rebuild the policy and trainer from scratch, then restore
    fresh_policy, fresh_trainer = trained(lora, updates=0)
    ckpt.restore(fresh_policy, {"trainer": fresh_trainer}, rng=False)
    assert_same(snapshot(fresh_policy, fresh_trainer), saved)
    # and the next update is identical in both
    metrics_a = trainer.update(ROWS, [1.0, -1.0, 0.5])
    metrics_b = fresh_trainer.update(ROWS, [1.0, -1.0, 0.5])
    assert metrics_a == metrics_b


def test_a_crash_mid_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    policy, trainer = trained()
    save_checkpoint(tmp_path, 1, policy=policy, components={"trainer": trainer})
    saved = snapshot(policy, trainer)
    trainer.update(ROWS, [1.0, -1.0, 0.5])

    def crash(path, state):
        path.write_bytes(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(checkpoint, "_write_state", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(tmp_path, 2, policy=policy, components={"trainer": trainer})
    monkeypatch.undo()

    assert [p.name for p in list_checkpoints(tmp_path)] == ["iter_000001"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_000001"]  # no temp dir left
    ckpt = load_latest(tmp_path)
    assert ckpt.iteration == 1
    fresh_policy, fresh_trainer = trained(updates=0)
    ckpt.restore(fresh_policy, {"trainer": fresh_trainer})
    assert_same(snapshot(fresh_policy, fresh_trainer), saved)


def test_a_killed_save_leaves_a_temp_dir_that_is_ignored_then_cleaned(tmp_path):
    policy, trainer = trained(updates=1)
    save_checkpoint(tmp_path, 1, policy=policy, components={"trainer": trainer})
    leftover = tmp_path / "checkpoints" / ".tmp-iter_000002-abc"  # what SIGKILL during a save leaves
    (leftover / "model").mkdir(parents=True)
    assert load_latest(tmp_path).iteration == 1
    save_checkpoint(tmp_path, 2, policy=policy, components={"trainer": trainer})
    assert not leftover.exists()
    assert load_latest(tmp_path).iteration == 2


def test_keep_last_and_resaving_an_iteration(tmp_path):
    policy, trainer = trained(updates=0)
    for iteration in range(1, 5):
        save_checkpoint(tmp_path, iteration, components={"trainer": trainer}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["iter_000003", "iter_000004"]
    save_checkpoint(tmp_path, 4, components={"trainer": trainer}, extra={"again": True}, keep_last=2)
    assert load_latest(tmp_path).extra == {"again": True}
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_000003", "iter_000004"]
    assert load_latest(tmp_path / "elsewhere") is None
    with pytest.raises(KeyError, match="no component 'value_head'"):
        load_latest(tmp_path).restore(components={"value_head": trainer})
    with pytest.raises(ValueError, match="holds no model weights"):
        load_latest(tmp_path).restore(policy)
