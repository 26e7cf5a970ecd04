"""StepBatch validation, layout, step_returns / episode_returns, and the torch-free import."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from steprl import credit
from steprl.credit.batch import factorize, factorize_pairs

REPO = Path(__file__).resolve().parents[2]


def rows_batch(rows, **extra):
    """rows: (group_id, traj_id, step, reward, anchor) tuples."""
    group_id, traj_id, step, reward, anchor = (list(column) for column in zip(*rows))
    return credit.StepBatch(group_id, traj_id, step, reward, anchor, **extra)


# two trajectories of different lengths, rows deliberately out of order
ROWS = [
    ("g", "b", 2, 4.0, "x"),
    ("g", "a", 0, 1.0, "x"),
    ("g", "b", 0, 0.0, "x"),
    ("g", "a", 1, 2.0, "y"),
    ("g", "b", 1, 0.0, "y"),
]


def test_step_returns_hand_computed_gamma_half():
    batch = rows_batch(ROWS)
    # a: r = [1, 2]     → R_1 = 2, R_0 = 1 + 0.5·2 = 2
    # b: r = [0, 0, 4]  → R_2 = 4, R_1 = 0 + 0.5·4 = 2, R_0 = 0 + 0.5·2 = 1
    np.testing.assert_allclose(credit.step_returns(batch, 0.5), [4.0, 2.0, 1.0, 2.0, 2.0])


def test_step_returns_gamma_one_and_zero():
    batch = rows_batch(ROWS)
    np.testing.assert_allclose(credit.step_returns(batch, 1.0), [4.0, 3.0, 4.0, 2.0, 4.0])
    np.testing.assert_allclose(credit.step_returns(batch, 0.0), [4.0, 1.0, 0.0, 2.0, 0.0])


def test_step_returns_long_trajectories_match_python_loop():
    rng = np.random.default_rng(3)
    lengths = [300, 1, 57, 128, 129, 2]
    traj = np.repeat(np.arange(len(lengths)), lengths)
    step = np.concatenate([np.arange(t) for t in lengths])
    reward = rng.normal(size=traj.size)
    shuffle = rng.permutation(traj.size)
    batch = credit.StepBatch(traj[shuffle] % 2, traj[shuffle], step[shuffle], reward[shuffle], np.zeros(traj.size, int))
    expected = np.empty(traj.size)
    for t in range(len(lengths)):
        running = 0.0
        for i in reversed(np.flatnonzero(traj == t)):
            running = reward[i] + 0.97 * running
            expected[i] = running
    np.testing.assert_allclose(credit.step_returns(batch, 0.97), expected[shuffle], rtol=1e-12, atol=1e-12)


def test_episode_returns_per_trajectory():
    batch = rows_batch(ROWS)
    episode_return = credit.episode_returns(batch)
    # per row via traj_code: a → 3, b → 4
    np.testing.assert_allclose(episode_return[batch.traj_code], [4.0, 3.0, 4.0, 3.0, 4.0])


def test_layout_is_packed_step_major():
    batch = rows_batch(ROWS)
    # step 0: b (longest first), a; step 1: b, a; step 2: b
    assert batch.active.tolist() == [2, 2, 1]
    assert batch.step_offset.tolist() == [0, 2, 4, 5]
    canonical_keys = [(batch.traj_id[i], int(batch.step[i])) for i in batch.order]
    assert canonical_keys == [("b", 0), ("a", 0), ("b", 1), ("a", 1), ("b", 2)]
    assert batch.group_size.tolist() == [2]
    assert sorted(batch.traj_length.tolist()) == [2, 3]


def test_integer_ids_and_anchors_are_kept_as_ints():
    batch = credit.StepBatch([7, 7], [3, 9], [0, 0], [1.0, 0.0], [123456789012, -5])
    assert batch.anchor.dtype == np.int64 and batch.group_id.dtype == np.int64
    assert batch.n_groups == 1 and batch.n_trajectories == 2


def test_factorize_strings_ints_and_wide_ints():
    codes, count = factorize(("b", "a", "b", "c"))
    assert count == 3 and codes[0] == codes[2] and len({codes[0], codes[1], codes[3]}) == 3
    codes, count = factorize(np.array([10, -3, 10, 7]))
    assert count == 3 and codes.tolist() == [2, 0, 2, 1]  # numbered in value order
    wide = np.array([2**62, -(2**62), 2**62, 5, -(2**63), 2**63 - 1])
    codes, count = factorize(wide)
    assert count == 5 and codes.tolist() == [3, 1, 3, 2, 0, 4]


def test_factorize_keys_that_differ_only_in_dropped_low_bits():
    # 64-bit span + 2 row bits do not fit: the sort keeps the high 62 bits, so 2**62 and 2**62 + 1 tie there;
    # the full-key check must notice and fall back to exact np.unique
    codes, count = factorize(np.array([2**62, 2**62 + 1, -(2**62), 2**62 + 1]))
    assert count == 3 and codes.tolist() == [1, 2, 0, 2]


def test_factorize_pairs_separates_groups_exactly():
    rng = np.random.default_rng(0)
    major = rng.integers(0, 50, 5000)
    minor = rng.integers(-(2**63), 2**63 - 1, 40)[rng.integers(0, 40, 5000)]  # 64-bit keys: the packed path
    codes, count = factorize_pairs(major, 50, minor)
    expected_codes = np.unique(np.stack([major, minor]), axis=1, return_inverse=True)[1].ravel()
    assert count == expected_codes.max() + 1
    assert (codes[:, None] == codes[None, :]).sum() == (expected_codes[:, None] == expected_codes[None, :]).sum()
    np.testing.assert_array_equal(codes, expected_codes)  # same order: by (major, minor)


def test_field_length_mismatch_names_the_field():
    with pytest.raises(ValueError, match=r"field 'reward' has 2 entries but 'group_id' has 3"):
        credit.StepBatch(["g"] * 3, ["a"] * 3, [0, 1, 2], [0.0, 1.0], ["x"] * 3)


def test_gap_in_steps_names_the_trajectory_and_steps():
    with pytest.raises(ValueError, match=r"trajectory 'b' has steps \[0, 2\]"):
        credit.StepBatch(["g"] * 3, ["a", "b", "b"], [0, 0, 2], [0.0] * 3, ["x"] * 3)


def test_repeated_step_names_the_trajectory():
    with pytest.raises(ValueError, match=r"trajectory 'a' has steps \[0, 1, 1\]"):
        credit.StepBatch(["g"] * 4, ["a", "a", "a", "b"], [0, 1, 1, 0], [0.0] * 4, ["x"] * 4)


def test_integer_ids_are_shown_plainly_in_errors():
    with pytest.raises(ValueError, match=r"trajectory 4 appears in groups 1 \(row 0\) and 2 \(row 1\)"):
        credit.StepBatch([1, 2], [4, 4], [0, 1], [0.0, 0.0], [0, 0])
    with pytest.raises(ValueError, match=r"trajectory 4 has steps \[0, 5\]"):
        credit.StepBatch([1, 1], [4, 4], [0, 5], [0.0, 0.0], [0, 0])


def test_negative_step_is_rejected():
    with pytest.raises(ValueError, match=r"trajectory 'a' has steps \[-1, 0\]"):
        credit.StepBatch(["g"] * 2, ["a", "a"], [0, -1], [0.0] * 2, ["x"] * 2)


def test_trajectory_in_two_groups_is_rejected():
    with pytest.raises(ValueError, match=r"trajectory 'a' appears in groups 'g1' \(row 0\) and 'g2' \(row 1\)"):
        credit.StepBatch(["g1", "g2"], ["a", "a"], [0, 1], [0.0, 0.0], ["x", "y"])


def test_non_finite_reward_names_value_and_row():
    with pytest.raises(ValueError, match=r"field 'reward' has non-finite value nan at row 1"):
        credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, float("nan")], ["x", "y"])


def test_non_numeric_reward_names_the_value():
    with pytest.raises(TypeError, match=r"field 'reward' must hold numbers, got 'high'"):
        credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, "high"], ["x", "y"])


def test_valid_must_be_boolean():
    with pytest.raises(TypeError, match=r"field 'valid' must hold booleans, got 2 at row 1"):
        credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, 1.0], ["x", "y"], valid=[1, 2])


def test_unhashable_keys_are_named():
    with pytest.raises(TypeError, match=r"field 'traj_id' has unhashable value \['b'\] at row 1"):
        credit.StepBatch(["g"] * 2, ["a", ["b"]], [0, 0], [0.0, 1.0], ["x", "y"])
    batch = credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, 1.0], ["x", ["x"]])  # anchors hashed on use
    with pytest.raises(TypeError, match=r"field 'anchor' has unhashable value \['x'\] at row 1"):
        credit.estimate("gigpo", batch)


def test_batch_fields_are_read_only_copies():
    reward = np.array([1.0, 2.0])
    batch = credit.StepBatch([0, 0], [0, 1], [0, 0], reward, [0, 0])
    reward[0] = 99.0
    assert batch.reward[0] == 1.0
    with pytest.raises(ValueError):
        batch.reward[0] = 5.0


def test_replace_returns_a_new_validated_batch():
    batch = rows_batch(ROWS)
    doubled = batch.replace(reward=2 * batch.reward)
    np.testing.assert_allclose(credit.step_returns(doubled, 1.0), 2 * credit.step_returns(batch, 1.0))
    with pytest.raises(TypeError, match="unknown field 'rewards'"):
        batch.replace(rewards=batch.reward)


def test_empty_batch_gives_empty_advantages():
    batch = credit.StepBatch([], [], [], [], [], progress=[], value=[])
    for name in credit.available():
        assert credit.estimate(name, batch).shape == (0,)


def test_credit_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from steprl import credit\n"
            "batch = credit.StepBatch(['g', 'g'], ['a', 'b'], [0, 0], [1.0, 0.0], ['x', 'x'])\n"
            "print(credit.estimate('gigpo', batch).round(6).tolist())\n"
            "heavy = sorted(m for m in ('torch', 'pandas', 'scipy') if sys.modules.get(m) is not None)\n"
            "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    advantages, heavy = result.stdout.strip().splitlines()
    # R = [1, 0]: A^E = ±0.5/std(ddof=1)=±0.7071; one step group {1, 0} (γ-returns equal R): A^S = ±0.7071
    assert advantages == "[1.414212, -1.414212]"
    assert heavy == "[]"


def agent_order_columns(seed: int, n_groups: int = 6) -> dict[str, np.ndarray]:
    """Rows as the agent gives them: int ids, trajectory by trajectory, steps 0..T-1 in order."""
    rng = np.random.default_rng(seed)
    length = rng.integers(1, 9, size=n_groups * 4)
    traj = np.repeat(rng.permutation(1000)[: length.size] * 3 - 7, length)  # ids in no particular order
    group = np.repeat(np.repeat(rng.permutation(50)[:n_groups] * 11, 4), length)
    step = np.concatenate([np.arange(t) for t in length])
    return {"group_id": group, "traj_id": traj, "step": step, "reward": rng.normal(size=step.size),
            "anchor": rng.integers(0, 4, size=step.size)}


@pytest.mark.parametrize("seed", range(5))
def test_agent_order_fast_path_builds_the_layout_of_the_general_path(seed, monkeypatch):
    columns = agent_order_columns(seed)
    fast = credit.StepBatch(**columns)
    assert fast._trajectory_runs() is not None  # the rows are in the agent's order: the fast path applies
    permutation = np.random.default_rng(seed).permutation(columns["step"].size)
    general = credit.StepBatch(**{name: column[permutation] for name, column in columns.items()})
    assert general._trajectory_runs() is None
    assert (fast.n_groups, fast.n_trajectories) == (general.n_groups, general.n_trajectories)
    for name in ("group_code", "traj_code", "position"):  # per row: compare through the permutation
        np.testing.assert_array_equal(getattr(fast, name)[permutation], getattr(general, name), err_msg=name)
    for name in ("traj_length", "traj_group", "group_size", "traj_rank", "active", "step_offset"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), err_msg=name)
    np.testing.assert_array_equal(fast.order, permutation[general.order])


@pytest.mark.parametrize(("group_id", "traj_id", "step", "message"), [
    ([1, 1, 1, 1], [4, 4, 4, 4], [0, 1, 0, 1], r"trajectory 4 has steps \[0, 0, 1, 1\]"),  # id reused by two runs
    ([1, 1, 1], [4, 4, 4], [0, 1, 3], r"trajectory 4 has steps \[0, 1, 3\]"),  # gap inside a run
    ([1, 1, 2], [4, 4, 4], [0, 1, 2], r"trajectory 4 appears in groups 1 \(row 0\) and 2 \(row 2\)"),
    ([1, 1, 1], [4, 5, 5], [0, 1, 2], r"trajectory 5 has steps \[1, 2\]"),  # run starting past step 0
])
def test_malformed_agent_order_batches_get_the_general_paths_errors(group_id, traj_id, step, message):
    with pytest.raises(ValueError, match=message):
        credit.StepBatch(group_id, traj_id, step, [0.0] * len(step), [0] * len(step))


def test_field_errors_come_in_field_order_when_fields_convert_in_the_background(monkeypatch):
    import steprl.credit.batch

    monkeypatch.setattr(credit.batch, "BACKGROUND_MIN_ROWS", 1)  # reward..value convert in the background thread
    with pytest.raises(ValueError, match=r"field 'reward' has non-finite value nan at row 1"):
        credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, float("nan")], ["x", "y"])
    with pytest.raises(ValueError, match=r"field 'reward' has non-finite value nan at row 2"):  # before the gap
        credit.StepBatch(["g"] * 3, ["a", "b", "b"], [0, 0, 2], [0.0, 1.0, float("nan")], ["x"] * 3)
    with pytest.raises(TypeError, match=r"field 'step' must hold integers"):  # step comes before reward
        credit.StepBatch(["g"] * 2, ["a", "b"], [0.5, 0], [0.0, float("nan")], ["x", "y"])
    batch = credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [1.0, 2.0], ["x", "y"], valid=[True, False])
    assert batch.reward.tolist() == [1.0, 2.0] and batch.valid.tolist() == [True, False] and len(batch) == 2
