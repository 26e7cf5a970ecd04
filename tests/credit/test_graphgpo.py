"""GraphGPO against hand-computed graphs and the official algorithm written as loops (credit/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from steprl import credit
from steprl.credit.reference import graphgpo_loop

# one group: a: s0 -> s1 -> (success); b: s0 -> s2 -> s3 -> s4, failed. Anchors and next anchors are ints.
HAND = [  # group, traj, step, reward, anchor, valid, next_anchor, success
    (0, 0, 0, 0.0, 10, True, 11, True), (0, 0, 1, 1.0, 11, True, 99, True),
    (0, 1, 0, 0.0, 10, True, 12, False), (0, 1, 1, 0.0, 12, True, 13, False), (0, 1, 2, 0.0, 13, True, 14, False),
]


def make_batch(rows):
    g, t, s, r, a, v, nxt, ok = (list(c) for c in zip(*rows))
    return credit.StepBatch(g, t, s, r, np.array(a, dtype=np.int64), valid=v, next_anchor=nxt, success=ok)


def test_hand_computed_distances_and_advantages():
    g = 0.5
    batch = make_batch(HAND)
    # d(success) = 0, d(s1) = 1, d(s0) = 2; s2, s3, s4 cannot reach it: largest finite (2) + 1 = 3
    distance, reachable = credit.graphgpo.next_state_distances(batch)
    assert distance.tolist() == [1, 0, 3, 3, 3] and reachable.tolist() == [True, True, False, False, False]
    assert credit.graphgpo.anchor_distances(batch).tolist() == [2, 1, 2, 3, 3]
    adv = credit.estimate("graphgpo", batch, gamma=g, mode="mean_norm", invalid_penalty=0.0)
    # step: only s0 has two rows: R = 10γ (a) vs 10γ³ (b) -> ±(10γ − 10γ³)/2; episode: R(τ) 1 vs 0 over 5 rows
    half = (10 * g - 10 * g ** 3) / 2
    np.testing.assert_allclose(adv, [half + 0.6, 0.6, -half - 0.4, -0.4, -0.4], rtol=1e-12)
    steps_only = credit.estimate("graphgpo", batch, gamma=g, mode="mean_norm", episode_advantage_w=0.0)
    np.testing.assert_allclose(steps_only, [half, 0, -half, 0, 0], rtol=1e-12)


def test_a_group_without_success_has_no_step_signal():
    rows = [(0, t, s, 0.0, s, True, s + 1, False) for t in range(3) for s in range(3)]
    distance, reachable = credit.graphgpo.next_state_distances(make_batch(rows))
    assert distance.tolist() == [1.0] * 9 and not reachable.any()  # every node: 0 + 1
    assert credit.estimate("graphgpo", make_batch(rows)).tolist() == [0.0] * 9


def test_needs_next_states_and_integer_anchors():
    plain = credit.StepBatch([0], [0], [0], [1.0], [5])
    with pytest.raises(ValueError, match="graphgpo needs each row's next state"):
        credit.estimate("graphgpo", plain)
    text = credit.StepBatch([0], [0], [0], [1.0], ["s"], next_anchor=[1], success=[True])
    with pytest.raises(ValueError, match="integer state keys"):
        credit.estimate("graphgpo", text)
    with pytest.raises(ValueError, match="mode='std'"):
        credit.estimate("graphgpo", make_batch(HAND), mode="std")


def random_rows(rng):
    rows = []
    for group in range(int(rng.integers(1, 5))):
        for member in range(int(rng.integers(1, 6))):
            length = int(rng.integers(1, 8))
            won = bool(rng.random() > 0.5)
            states = [int(rng.integers(5)) for _ in range(length + 1)]
            for step in range(length):
                crashed = step == length - 1 and not won and rng.random() > 0.8
                rows.append((group, group * 10 + member, step, float(won and step == length - 1),
                             states[step], bool(rng.random() > 0.15), None if crashed else states[step + 1], won))
    return [rows[i] for i in rng.permutation(len(rows))]


@pytest.mark.parametrize("seed", range(16))
def test_matches_the_official_algorithm_as_loops(seed):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng)
    params = {"gamma": float(rng.choice([0.1, 0.2, 0.9])), "mode": str(rng.choice(["mean_norm", "mean_std_norm"])),
              "normalize_distance": bool(rng.random() > 0.5), "episode_advantage_w": float(rng.choice([0.0, 1.0])),
              "step_advantage_w": float(rng.choice([1.0, 0.5])), "invalid_penalty": float(rng.choice([0.0, 0.1]))}
    expected = graphgpo_loop(*[list(c) for c in zip(*rows)], **params)
    np.testing.assert_allclose(credit.estimate("graphgpo", make_batch(rows), **params), expected, rtol=1e-9,
                               atol=1e-9)


def test_row_order_does_not_change_any_row_and_diagnostics():
    rng = np.random.default_rng(5)
    rows = random_rows(rng)
    order = rng.permutation(len(rows))
    a = credit.estimate("graphgpo", make_batch(rows))
    b = credit.estimate("graphgpo", make_batch([rows[i] for i in order]))
    assert np.array_equal(a[order], b)
    metrics = credit.diagnose(make_batch(HAND), np.zeros(5), estimator="graphgpo")
    assert metrics["credit/graph_reachable_share"] == pytest.approx(2 / 5)
    assert metrics["credit/graph_distance_mean"] == pytest.approx(0.5)


def test_rows_from_the_agent_carry_next_states():
    from steprl.agent.rollout import StepRow, anchor_key

    def row(traj, step, anchor, nxt, done, won):
        return StepRow(traj_id=traj, group_id=0, task_id="t", step=step, prompt_ids=[1], response_ids=[2],
                       logprobs=[0.0], response_text="go", action="go", format_ok=True, valid_action=True,
                       reward=float(won and done), anchor=anchor, done=done, truncated=False, success=won,
                       observation=anchor, history_cut=0, expert_action=None, env_error=None,
                       next_anchor_key=anchor_key(nxt) if nxt else -1)
    batch = credit.StepBatch.from_rows([row(0, 0, "a", "b", False, True), row(0, 1, "b", "c", True, True),
                                        row(1, 0, "a", None, True, False)])
    assert list(batch.next_anchor) == [anchor_key("b"), anchor_key("c"), None]
    assert batch.next_anchor[0] == batch.anchor[1] and batch.success.tolist() == [True, True, False]
