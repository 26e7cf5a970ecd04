"""Property tests (hypothesis) that hold for every batch, not just the hand-worked ones.

- permuting the rows permutes every estimator's output identically (bit for bit);
- GRPO / RLOO / LOOP advantages sum to zero over the trajectories of a group (K ≥ 2);
- shifting rewards by a per-group constant leaves the group-relative advantages alone,
  stated where it is true:
  * c added to each trajectory's *final* reward: R(τ) moves by c for every τ, so GRPO,
    RLOO and GiGPO's episode level (K ≥ 2) are unchanged; with γ = 1 every R_t moves by
    c too, so GiGPO's step level is unchanged.
  * c added to *every* reward of groups whose trajectories have equal length and whose
    anchors are tied to the step index ("lockstep" groups): R(τ) moves by c·T and R_t by
    c·Σ_{k<T−t} γ^k, the same within every step group, for any γ; SPA (c added to ĉ) too.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from steprl import credit
from steprl.credit.gigpo import advantage_levels

SETTINGS = settings(max_examples=50, deadline=None)
REWARDS = st.sampled_from([0.0, 1.0, -1.0, 0.5, 10.0, 0.1, -0.3])
# Returns that are equal in exact arithmetic can differ in the last bit once shifted (the sums round
# differently); dividing by std ≈ 1e-15 plus eps = 1e-6 turns that into ~1e-8. Std-normalized
# comparisons therefore get a looser tolerance than mean-only ones.
ATOL_MEAN, ATOL_STD = 1e-9, 1e-6


@st.composite
def rollouts(draw, lockstep=False):
    """Rows as dicts; groups of K trajectories (K ≥ 2 when lockstep), ids str or int, anchors str or int."""
    string_ids, string_anchors = draw(st.booleans()), draw(st.booleans())
    rows, traj_index = [], 0
    for group in range(draw(st.integers(1, 4))):
        k = draw(st.integers(2 if lockstep else 1, 4))
        common_length = draw(st.integers(1, 5))
        for member in range(k):
            length = common_length if lockstep else draw(st.integers(1, 5))
            for step in range(length):
                state = draw(st.integers(0, 2))
                anchor = (step, state) if lockstep else state
                rows.append({
                    "group_id": f"task{group}" if string_ids else group * 7,
                    "traj_id": f"task{group}/{member}" if string_ids else traj_index,
                    "step": step, "reward": draw(REWARDS),
                    "anchor": f"obs {anchor}" if string_anchors else hash(anchor) % 1000,
                    "valid": draw(st.booleans()), "progress": draw(REWARDS), "value": draw(REWARDS)})
            traj_index += 1
    return rows


def make_batch(rows):
    return credit.StepBatch(**{field: [row[field] for row in rows] for field in
                               ("group_id", "traj_id", "step", "reward", "anchor", "valid", "progress", "value")})


ESTIMATES = [("grpo", {}), ("grpo", {"normalize": "mean"}), ("rloo", {}), ("loop", {}), ("gigpo", {}),
             ("gigpo", {"normalize": "mean", "gamma": 1.0, "step_weight": 0.5}), ("spa", {"gamma": 0.9}),
             ("gae", {"gamma": 0.9, "lam": 0.8})]


@SETTINGS
@given(st.data())
def test_permuting_rows_permutes_every_estimator_identically(data):
    rows = data.draw(rollouts())
    permutation = data.draw(st.permutations(range(len(rows))))
    batch, permuted = make_batch(rows), make_batch([rows[i] for i in permutation])
    for name, params in ESTIMATES:
        np.testing.assert_array_equal(credit.estimate(name, permuted, **params),
                                      credit.estimate(name, batch, **params)[list(permutation)], err_msg=name)


def first_row_of_each_trajectory(batch):
    _, first = np.unique(batch.traj_code, return_index=True)
    return first


@SETTINGS
@given(rollouts())
def test_grpo_rloo_loop_advantages_sum_to_zero_over_a_groups_trajectories(rows):
    batch = make_batch(rows)
    first = first_row_of_each_trajectory(batch)  # one row per trajectory
    multi = batch.group_size[batch.group_code[first]] >= 2
    for name, params in [("grpo", {}), ("grpo", {"normalize": "mean"}), ("rloo", {}), ("loop", {})]:
        trajectory_advantage = credit.estimate(name, batch, **params)[first]
        group_sum = np.bincount(batch.group_code[first][multi], trajectory_advantage[multi], minlength=batch.n_groups)
        np.testing.assert_allclose(group_sum, 0.0, atol=1e-9, err_msg=name)


def shifted(rows, shift_of_group, where):
    return [dict(row, reward=row["reward"] + shift_of_group[row["group_id"]]) if where(row) else row for row in rows]


@SETTINGS
@given(st.data())
def test_adding_a_constant_to_each_final_reward_of_a_group(data):
    rows = data.draw(rollouts())
    groups = sorted({row["group_id"] for row in rows}, key=str)
    shift_of_group = dict(zip(groups, data.draw(st.lists(REWARDS, min_size=len(groups), max_size=len(groups)))))
    length = {}
    for row in rows:
        length[row["traj_id"]] = max(length.get(row["traj_id"], 0), row["step"] + 1)
    batch = make_batch(rows)
    moved = make_batch(shifted(rows, shift_of_group, lambda row: row["step"] == length[row["traj_id"]] - 1))
    multi = batch.group_size[batch.group_code] >= 2  # rows of groups with K ≥ 2
    for name, params, atol in [("grpo", {}, ATOL_STD), ("grpo", {"normalize": "mean"}, ATOL_MEAN),
                               ("rloo", {}, ATOL_MEAN), ("loop", {}, ATOL_MEAN)]:
        np.testing.assert_allclose(credit.estimate(name, moved, **params)[multi],
                                   credit.estimate(name, batch, **params)[multi], atol=atol, err_msg=name)
    for normalize, atol in (("mean_std", ATOL_STD), ("mean", ATOL_MEAN)):
        episode, step = advantage_levels(batch, gamma=1.0, normalize=normalize)
        moved_episode, moved_step = advantage_levels(moved, gamma=1.0, normalize=normalize)
        np.testing.assert_allclose(moved_step, step, atol=atol)  # step level: every row
        np.testing.assert_allclose(moved_episode[multi], episode[multi], atol=atol)


@SETTINGS
@given(st.data())
def test_adding_a_constant_to_every_reward_of_a_lockstep_group(data):
    rows = data.draw(rollouts(lockstep=True))
    groups = sorted({row["group_id"] for row in rows}, key=str)
    shift_of_group = dict(zip(groups, data.draw(st.lists(REWARDS, min_size=len(groups), max_size=len(groups)))))
    gamma = data.draw(st.sampled_from([0.0, 0.5, 0.95, 1.0]))
    batch, moved = make_batch(rows), make_batch(shifted(rows, shift_of_group, lambda row: True))
    for name, params, atol in [("grpo", {}, ATOL_STD), ("rloo", {}, ATOL_MEAN), ("gigpo", {"gamma": gamma}, ATOL_STD)]:
        np.testing.assert_allclose(credit.estimate(name, moved, **params), credit.estimate(name, batch, **params),
                                   atol=atol, err_msg=name)
    np.testing.assert_allclose(advantage_levels(moved, gamma=gamma, normalize="mean")[1],
                               advantage_levels(batch, gamma=gamma, normalize="mean")[1], atol=ATOL_MEAN)
    moved_progress = make_batch([dict(row, progress=row["progress"] + shift_of_group[row["group_id"]]) for row in rows])
    np.testing.assert_allclose(credit.estimate("spa", moved_progress, gamma=gamma),
                               credit.estimate("spa", batch, gamma=gamma), atol=ATOL_MEAN)


@SETTINGS
@given(rollouts(), st.sampled_from([0.0, 0.3, 0.9, 1.0]))
def test_step_returns_match_a_python_loop(rows, gamma):
    batch = make_batch(rows)
    expected = np.zeros(len(rows))
    by_trajectory = {}
    for i, row in enumerate(rows):
        by_trajectory.setdefault(row["traj_id"], []).append(i)
    for indices in by_trajectory.values():
        running = 0.0
        for i in sorted(indices, key=lambda i: -rows[i]["step"]):
            running = rows[i]["reward"] + gamma * running
            expected[i] = running
    np.testing.assert_allclose(credit.step_returns(batch, gamma), expected, rtol=1e-12, atol=1e-12)
