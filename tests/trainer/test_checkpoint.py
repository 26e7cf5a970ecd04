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


def _three_checkpoints(tmp_path):
    policy, trainer = trained()
    for it in (1, 2, 3):
        save_checkpoint(tmp_path, it, policy=policy, components={"trainer": trainer}, keep_last=None)
    return list_checkpoints(tmp_path)


def _weights(path):
    return next(p for p in (path / "model").iterdir() if p.suffix == ".safetensors")


def test_meta_records_size_and_sha256_of_every_file(tmp_path):
    import hashlib
    import json

    path = _three_checkpoints(tmp_path)[-1]
    files = json.loads((path / "meta.json").read_text())["files"]
    on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert sorted(files) == [f for f in on_disk if f != "meta.json"]
    assert "state.pt" in files and any(f.endswith(".safetensors") for f in files)
    weights = _weights(path)
    rel = weights.relative_to(path).as_posix()
    assert files[rel] == {"bytes": weights.stat().st_size, "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert checkpoint.verify_checkpoint(path) is None


def test_verify_names_truncated_flipped_and_missing_files(tmp_path):
    first, second, third = _three_checkpoints(tmp_path)
    weights = _weights(third)
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    assert "bytes" in checkpoint.verify_checkpoint(third) and weights.name in checkpoint.verify_checkpoint(third)
    data = bytearray((second / "state.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    (second / "state.pt").write_bytes(bytes(data))
    assert checkpoint.verify_checkpoint(second) == "state.pt does not match its saved sha256"
    (first / "meta.json").unlink()
    assert checkpoint.verify_checkpoint(first) == "meta.json is missing"


def test_load_latest_falls_back_to_newest_intact_with_a_warning(tmp_path):
    first, second, third = _three_checkpoints(tmp_path)
    with open(_weights(third), "r+b") as f:
        f.truncate(100)
    (second / "state.pt").write_bytes(b"")
    with pytest.warns(UserWarning) as record:
        loaded = load_latest(tmp_path)
    assert loaded.path == first and loaded.iteration == 1
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "iter_000003" in messages[0] and "using iter_000001" in messages[0]
    assert "iter_000002" in messages[1] and "state.pt has 0 bytes" in messages[1]


def test_no_intact_checkpoint_is_a_clear_error_and_an_empty_run_is_none(tmp_path):
    assert load_latest(tmp_path) is None and checkpoint.latest_intact(tmp_path) is None
    for path in _three_checkpoints(tmp_path):
        (path / "state.pt").write_bytes(b"x")
    with pytest.raises(checkpoint.CheckpointCorrupt, match=r"no intact checkpoint .*iter_000003: state.pt has 1 bytes"):
        load_latest(tmp_path)


def test_checkpoint_saved_before_checksums_still_loads(tmp_path):
    import json

    path = _three_checkpoints(tmp_path)[-1]
    meta = json.loads((path / "meta.json").read_text())
    del meta["files"]
    (path / "meta.json").write_text(json.dumps(meta))
    assert checkpoint.verify_checkpoint(path) is None
    assert load_latest(tmp_path).iteration == 3
