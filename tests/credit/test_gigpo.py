"""GiGPO (Eq. 3, 5, 6, 7, 8) against advantages worked out by hand, plus the loop reference."""

import math
import os
from difflib import SequenceMatcher

import numpy as np
import pytest

from steprl import credit
from steprl.credit.gigpo import advantage_levels, step_groups
from steprl.credit.reference import gigpo_loop

EPS = 1e-6

# group g, K = 2 (γ = 0.5, λ = 0.1):
#   a: anchors s0 s1 s2, r = 0 0 1                    R(a) = 1      R_t = 0.25 0.5 1
#   b: anchors s0 s1,    r = 0 −0.1 (invalid action)  R(b) = −0.1   R_t = −0.05 −0.1
# group h, K = 1 (singleton episode group):
#   c: anchors s0 s0,    r = 1 2                      R(c) = 3      R_t = 1 + 0.5·2 = 2, 2
ROWS = [  # (group_id, traj_id, step, reward, anchor, valid), scrambled
    ("g", "b", 1, 0.0, "s1", False), ("h", "c", 0, 1.0, "s0", True), ("g", "a", 2, 1.0, "s2", True),
    ("g", "a", 0, 0.0, "s0", True), ("h", "c", 1, 2.0, "s0", True), ("g", "b", 0, 0.0, "s0", True),
    ("g", "a", 1, 0.0, "s1", True),
]
KEYS = [(row[1], row[2]) for row in ROWS]


def make_batch(rows):
    group_id, traj_id, step, reward, anchor, valid = (list(column) for column in zip(*rows))
    return credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid)


def per_row(expected, keys=KEYS):
    return np.array([expected[key] for key in keys])


def test_gigpo_mean_std_hand_computed():
    # Eq. 3 over the 5 rows of g: values 1,1,1,−0.1,−0.1 → mean 0.56, unbiased var (3·0.44² + 2·0.66²)/4 = 0.363
    std_g = math.sqrt((3 * 0.44**2 + 2 * 0.66**2) / 4)
    episode = {"a": 0.44 / (std_g + EPS), "b": -0.66 / (std_g + EPS), "c": 3 / (1 + EPS)}  # c: singleton group
    # Eq. 7: step group (g, s0) = {0.25, −0.05}: ±0.15 / std, std = √(2·0.15²/1); (g, s1) = {0.5, −0.1}: ±0.3 / std;
    # (g, s2) = {1} singleton → 0; (h, s0) = {2, 2} all equal → exactly 0
    s0, s1 = 0.15 / (math.sqrt(2 * 0.15**2) + EPS), 0.3 / (math.sqrt(2 * 0.3**2) + EPS)
    step = {("a", 0): s0, ("b", 0): -s0, ("a", 1): s1, ("b", 1): -s1, ("a", 2): 0.0, ("c", 0): 0.0, ("c", 1): 0.0}
    expected = {key: episode[key[0]] + step[key] for key in step}  # Eq. 8, ω = 1
    adv = credit.estimate("gigpo", make_batch(ROWS), gamma=0.5)
    np.testing.assert_allclose(adv, per_row(expected), rtol=1e-12, atol=1e-15)


def test_gigpo_levels_separately_and_singletons():
    episode, step = advantage_levels(make_batch(ROWS), gamma=0.5, normalize="mean")
    # mean mode: A^E = R − 0.56 in g, R in the singleton group h; A^S = R_t − step-group mean
    np.testing.assert_allclose(episode, per_row({("a", 0): 0.44, ("a", 1): 0.44, ("a", 2): 0.44, ("b", 0): -0.66,
                                                 ("b", 1): -0.66, ("c", 0): 3.0, ("c", 1): 3.0}), rtol=1e-12)
    np.testing.assert_allclose(step, per_row({("a", 0): 0.15, ("b", 0): -0.15, ("a", 1): 0.3, ("b", 1): -0.3,
                                              ("a", 2): 0.0, ("c", 0): 0.0, ("c", 1): 0.0}), rtol=1e-12, atol=1e-15)
    assert step[KEYS.index(("a", 2))] == 0.0  # singleton step group: exactly 0
    assert step[KEYS.index(("c", 0))] == 0.0 and step[KEYS.index(("c", 1))] == 0.0  # equal returns: exactly 0


def test_gigpo_step_weight_and_no_penalty():
    # λ = 0: R(b) = 0 → g rows 1,1,1,0,0, mean 0.6; b's returns 0, 0 → (g, s0) = {0.25, 0}, (g, s1) = {0.5, 0}
    adv = credit.estimate("gigpo", make_batch(ROWS), gamma=0.5, normalize="mean", invalid_penalty=0.0,
                          step_weight=0.5)
    expected = {("a", 0): 0.4 + 0.5 * 0.125, ("b", 0): -0.6 - 0.5 * 0.125, ("a", 1): 0.4 + 0.5 * 0.25,
                ("b", 1): -0.6 - 0.5 * 0.25, ("a", 2): 0.4, ("c", 0): 3.0, ("c", 1): 3.0}
    np.testing.assert_allclose(adv, per_row(expected), rtol=1e-12)


def test_gigpo_gamma_one_different_lengths():
    # a: s0 s1, r = 0 1 (R = 1);  b: s0 s2 s1, r = 0 0 0 (R = 0);  γ = 1 → R_t: a 1 1, b 0 0 0
    rows = [("g", "a", 0, 0.0, "s0", True), ("g", "a", 1, 1.0, "s1", True), ("g", "b", 0, 0.0, "s0", True),
            ("g", "b", 1, 0.0, "s2", True), ("g", "b", 2, 0.0, "s1", True)]
    std_rows = math.sqrt((2 * 0.6**2 + 3 * 0.4**2) / 4)  # rows 1,1,0,0,0: mean 0.4
    step = 0.5 / (math.sqrt(0.5) + EPS)  # {1, 0}: ±0.5 / std, std = √0.5
    expected = [0.6 / (std_rows + EPS) + step, 0.6 / (std_rows + EPS) + step, -0.4 / (std_rows + EPS) - step,
                -0.4 / (std_rows + EPS), -0.4 / (std_rows + EPS) - step]
    np.testing.assert_allclose(credit.estimate("gigpo", make_batch(rows), gamma=1.0), expected, rtol=1e-12)


def test_gigpo_all_equal_rewards_give_exact_zero():
    rows = [("g", t, s, float(s), f"s{s}", True) for t in "abc" for s in range(3)]
    adv = credit.estimate("gigpo", make_batch(rows))
    assert np.all(adv == 0.0)


def test_gigpo_single_row_batch_passes_the_return_through():
    adv = credit.estimate("gigpo", make_batch([("g", "a", 0, 2.5, "s", True)]))
    np.testing.assert_allclose(adv, [2.5 / (1 + EPS)], rtol=1e-15)  # A^E raw (K = 1), A^S = 0 (singleton)


def test_gigpo_shuffled_rows_and_int_anchors_give_identical_numbers():
    batch = make_batch(ROWS)
    permutation = [3, 6, 0, 5, 2, 4, 1]
    shuffled = make_batch([ROWS[i] for i in permutation])
    np.testing.assert_array_equal(credit.estimate("gigpo", shuffled), credit.estimate("gigpo", batch)[permutation])
    int_anchor = {"s0": 17, "s1": -3, "s2": 2**40}
    as_ints = make_batch([(*row[:4], int_anchor[row[4]], *row[5:]) for row in ROWS])
    np.testing.assert_array_equal(credit.estimate("gigpo", as_ints), credit.estimate("gigpo", batch))


def test_anchors_of_different_groups_never_share_a_step_group():
    codes, count = step_groups(make_batch(ROWS))
    by_key = dict(zip(KEYS, codes.tolist()))
    assert count == 4  # (g, s0) (g, s1) (g, s2) (h, s0)
    assert by_key[("a", 0)] == by_key[("b", 0)] != by_key[("c", 0)] == by_key[("c", 1)]


# --- similarity mode -----------------------------------------------------------------------
BASE = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"  # 40 characters
NEAR = BASE[:5] + "#" + BASE[6:]  # 1 substitution: ratio 39/40 = 0.975
FAR = NEAR[:20] + "!" + NEAR[21:30] + "?" + NEAR[31:]  # 2 more: ratio to NEAR 0.95, to BASE 0.925
OTHER = "a completely different observation text!"


def test_similarity_examples_have_the_intended_ratios():
    assert SequenceMatcher(None, NEAR, BASE).ratio() == pytest.approx(0.975)
    assert SequenceMatcher(None, FAR, NEAR).ratio() == pytest.approx(0.95)
    assert SequenceMatcher(None, FAR, BASE).ratio() == pytest.approx(0.925)


SIMILAR_ROWS = [  # BASE first seen at step 0, NEAR at step 1, FAR at step 2
    ("g", "a", 0, 0.0, BASE, True), ("g", "a", 1, 0.0, NEAR, True), ("g", "a", 2, 1.0, FAR, True),
    ("g", "b", 0, 0.0, BASE, True), ("g", "b", 1, 0.0, OTHER, True), ("g", "b", 2, 0.0, FAR, True),
    ("g", "c", 0, 0.0, OTHER, True), ("g", "c", 1, 0.0, BASE, True),
]


def test_similarity_joins_the_first_cluster_whose_representative_is_similar():
    codes, count = step_groups(make_batch(SIMILAR_ROWS), similarity=True, similarity_threshold=0.95)
    anchor_code = {row[4]: code for row, code in zip(SIMILAR_ROWS, codes.tolist())}
    # BASE is the representative (step 0); NEAR joins it (0.975); FAR vs BASE is 0.925 < 0.95 → its own
    # cluster, although FAR vs NEAR is 0.95 (only representatives are compared, as in the reference code)
    assert anchor_code[BASE] == anchor_code[NEAR]
    assert len({anchor_code[BASE], anchor_code[FAR], anchor_code[OTHER]}) == 3 and count == 3
    # the advantages are those of exact mode with NEAR written as BASE
    relabelled = [(*row[:4], BASE if row[4] == NEAR else row[4], *row[5:]) for row in SIMILAR_ROWS]
    np.testing.assert_allclose(
        credit.estimate("gigpo", make_batch(SIMILAR_ROWS), similarity=True, similarity_threshold=0.95),
        credit.estimate("gigpo", make_batch(relabelled)), rtol=1e-12)


def test_similarity_threshold_and_row_order_independence():
    strict, count = step_groups(make_batch(SIMILAR_ROWS), similarity=True, similarity_threshold=0.99)
    exact, _ = step_groups(make_batch(SIMILAR_ROWS))
    assert count == 4  # nothing merges at 0.99: the same partition of rows as exact mode
    np.testing.assert_array_equal(strict[:, None] == strict[None, :], exact[:, None] == exact[None, :])
    permutation = [7, 2, 5, 0, 3, 6, 1, 4]
    shuffled = make_batch([SIMILAR_ROWS[i] for i in permutation])
    np.testing.assert_array_equal(
        credit.estimate("gigpo", shuffled, similarity=True),
        credit.estimate("gigpo", make_batch(SIMILAR_ROWS), similarity=True)[permutation])


def test_similarity_needs_text_anchors():
    batch = credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, 1.0], [5, 6])
    with pytest.raises(TypeError, match="similarity mode compares anchor text, but the anchors are int state hashes"):
        credit.estimate("gigpo", batch, similarity=True)
    mixed = credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, 1.0], ["room", 6.5])
    with pytest.raises(TypeError, match=r"similarity mode compares anchor text; anchor 6\.5 at row 1 is not a str"):
        credit.estimate("gigpo", mixed, similarity=True)


def test_bad_parameters_are_named():
    batch = make_batch(ROWS)
    with pytest.raises(ValueError, match=r"normalize='std' is not one of \('mean_std', 'mean'\)"):
        credit.estimate("gigpo", batch, normalize="std")
    with pytest.raises(ValueError, match=r"gamma=1.5 must be a number in \[0, 1\]"):
        credit.estimate("gigpo", batch, gamma=1.5)
    with pytest.raises(ValueError, match="similarity_threshold=0"):
        credit.estimate("gigpo", batch, similarity=True, similarity_threshold=0)


# --- against the readable reference (credit/reference.py) --------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_vectorized_gigpo_matches_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    n_groups, k, max_steps, n_anchors = rng.integers(1, 6), rng.integers(1, 5), rng.integers(1, 12), rng.integers(1, 6)
    rows = []
    for group in range(n_groups):
        for member in range(k):
            for step in range(rng.integers(1, max_steps + 1)):
                rows.append((f"task{group}", f"task{group}/{member}", step, float(rng.choice([0.0, 1.0, -0.5, 2.0])),
                             f"state {rng.integers(n_anchors)}", bool(rng.random() > 0.2)))
    rows = [rows[i] for i in rng.permutation(len(rows))]
    params = {"gamma": float(rng.choice([0.0, 0.5, 0.95, 1.0])), "step_weight": float(rng.choice([0.0, 1.0, 2.5])),
              "normalize": str(rng.choice(["mean", "mean_std"])), "invalid_penalty": float(rng.choice([0.0, 0.1]))}
    columns = [list(column) for column in zip(*rows)]
    expected = gigpo_loop(*columns, **params)
    np.testing.assert_allclose(credit.estimate("gigpo", make_batch(rows), **params), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("similarity", [False, True])
def test_step_groups_sorted_in_a_background_thread_give_the_same_bits(similarity, monkeypatch):
    import steprl.credit.batch

    rng = np.random.default_rng(3)
    rows = [(f"task{g}", f"task{g}/{m}", t, float(rng.choice([0.0, 1.0, -0.5])), f"room {rng.integers(6)}",
             bool(rng.random() > 0.1)) for g in range(40) for m in range(4) for t in range(rng.integers(1, 15))]
    monkeypatch.setattr(credit.batch, "BACKGROUND_MIN_ROWS", 0)  # everything in the caller's thread
    serial = credit.estimate("gigpo", make_batch(rows), similarity=similarity)
    monkeypatch.setattr(credit.batch, "BACKGROUND_MIN_ROWS", 1)  # the step-group sort in the background thread
    background = credit.estimate("gigpo", make_batch(rows), similarity=similarity)
    if (os.cpu_count() or 1) >= 2:
        assert credit.batch._executor is not None  # the thread was used (one core: all in the caller's thread)
    np.testing.assert_array_equal(background, serial)
    with pytest.raises(TypeError, match="similarity mode compares anchor text"):  # errors come back from the thread
        credit.estimate("gigpo", credit.StepBatch(["g"] * 2, ["a", "b"], [0, 0], [0.0, 1.0], [5, 6]), similarity=True)


@pytest.mark.parametrize("wide_anchors", [False, True])
def test_sorting_in_chunks_of_whole_groups_gives_the_one_piece_places_bit_for_bit(wide_anchors, monkeypatch):
    import steprl.credit.batch
    import steprl.credit.gigpo

    rng = np.random.default_rng(7)
    group, traj, step, anchor = [], [], [], []
    for g in range(30):  # rows group by group, trajectory by trajectory: the agent's order
        for m in range(4):
            for t in range(rng.integers(1, 12)):
                group.append(g * 5)
                traj.append(g * 4 + m)
                step.append(t)
                anchor.append(rng.integers(6))
    anchor = np.array(anchor)
    if wide_anchors:  # 64-bit state hashes: the sort keeps their high bits and checks the full keys after
        anchor = rng.integers(-(2**63), 2**63 - 1, size=6, dtype=np.int64)[anchor]
    columns = (np.array(group), np.array(traj), np.array(step), rng.choice([0.0, 1.0, -0.5], size=len(step)), anchor)

    one_piece = credit.gigpo.shared_step_segments(credit.StepBatch(*columns))
    monkeypatch.setattr(credit.gigpo, "CHUNK_ROWS", 20)
    batch = credit.StepBatch(*columns)
    assert batch.rows_by_group
    jobs = credit.gigpo._chunk_jobs(batch)
    assert jobs is not None and len(jobs._jobs) >= 5
    chunked = credit.gigpo._joined_chunks(batch, jobs.finish())
    text_batch = credit.StepBatch(*columns[:4], [f"room {a}" for a in columns[4].tolist()])
    assert text_batch.rows_by_group and credit.gigpo._chunk_jobs(text_batch) is None  # str anchors: one piece
    assert chunked.count == one_piece.count
    for name in ("positions", "rows", "code", "first", "size"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(one_piece, name), err_msg=name)

    for threshold in (0, 1):  # chunks done inline, or shared by the background thread and the caller
        monkeypatch.setattr(credit.batch, "BACKGROUND_MIN_ROWS", threshold)
        monkeypatch.setattr(credit.gigpo, "CHUNK_ROWS", 20)
        chunked_advantage = credit.estimate("gigpo", credit.StepBatch(*columns))
        monkeypatch.setattr(credit.gigpo, "CHUNK_ROWS", 10**9)
        np.testing.assert_array_equal(chunked_advantage, credit.estimate("gigpo", credit.StepBatch(*columns)))


def test_a_failing_chunk_job_raises_in_the_caller():
    from steprl.credit.batch import WorkPool

    def fail():
        raise RuntimeError("chunk 2 failed")

    pool = WorkPool([lambda: 1, fail, lambda: 3])
    with pytest.raises(RuntimeError, match="chunk 2 failed"):
        pool.finish()
    assert WorkPool([lambda: 1, lambda: 2]).finish() == [1, 2] and WorkPool([]).finish() == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_background_thread_works_again_in_a_forked_child(monkeypatch):
    import steprl.credit.batch

    monkeypatch.setattr(credit.batch, "BACKGROUND_MIN_ROWS", 1)
    batch = make_batch(ROWS)
    expected = credit.estimate("gigpo", batch)  # starts the parent's background thread
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the thread did not survive the fork; a new one must be made, not waited on
        ok = np.array_equal(credit.estimate("gigpo", make_batch(ROWS)), expected)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
