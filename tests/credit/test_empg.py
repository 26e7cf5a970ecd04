"""EMPG (credit.empg): hand-worked batches, what holds exactly, properties, errors, composition, config.

Notation as credit/empg.py: H̃ = (H − min H)/(max H − min H + ε) (Eq. 12),
g = exp(−k H̃)/(mean exp(−k H̃) + ε) (Eq. 10), f = exp(−k_f H̃) (Eq. 11),
A' = g·A + ζ·f(H_{t+1}) (no bonus on a trajectory's last step), A'' = A' − mean A'.
"""

from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steprl import credit
from steprl.credit.config import CreditConfig
from steprl.credit.empg import components, modify

LN2 = math.log(2.0)
TINY = 1e-12  # eps small enough that the hand values (computed with ε = 0) hold to ~1e-11


def batch_of(traj_id, step, entropy, group_id=None, reward=None, valid=None, anchor=None, **fields):
    n = len(step)
    return credit.StepBatch(group_id=[0] * n if group_id is None else group_id, traj_id=traj_id, step=step,
                            reward=[0.0] * n if reward is None else reward,
                            anchor=list(range(n)) if anchor is None else anchor, valid=valid, entropy=entropy, **fields)


def as_float(values):
    return np.array([float(v) for v in values])


# --- hand-worked cases ------------------------------------------------------------------------

def test_three_rows_by_hand():
    """τ0 = steps 0, 1 (H = 0, 1); τ1 = step 0 (H = 2). k = k_f = 2 ln 2 makes every factor a power of 1/2.

    H̃ = (0, 1/2, 1); exp(−k H̃) = (1, 1/2, 1/4), mean 7/12, so g = (12/7, 6/7, 3/7); f = (1, 1/2, 1/4).
    Only (τ0, 0) has a next step: bonus ζ·f(H of (τ0, 1)) = 0.1 · 1/2. With A = (1, 1, −2):
    A' = (12/7 + 1/20, 6/7, −6/7), mean (12/7 + 1/20)/3.
    """
    batch = batch_of(traj_id=[0, 0, 1], step=[0, 1, 0], entropy=[0.0, 1.0, 2.0])
    a = np.array([1.0, 1.0, -2.0])
    parts = components(batch, a, k=2 * LN2, k_f=2 * LN2, zeta=0.1, eps=TINY)
    np.testing.assert_allclose(parts["h_norm"], [0, 0.5, 1], atol=1e-11)
    np.testing.assert_allclose(parts["g"], as_float([Fraction(12, 7), Fraction(6, 7), Fraction(3, 7)]), rtol=1e-11)
    np.testing.assert_allclose(parts["f"], [1, 0.5, 0.25], rtol=1e-11)
    np.testing.assert_allclose(parts["bonus"], [0.05, 0, 0], atol=1e-12)
    modulated = [Fraction(12, 7) + Fraction(1, 20), Fraction(6, 7), Fraction(-6, 7)]
    mean = sum(modulated) / 3
    expected = as_float([m - mean for m in modulated])
    np.testing.assert_allclose(credit.empg(batch, a, k=2 * LN2, k_f=2 * LN2, zeta=0.1, eps=TINY), expected,
                               rtol=1e-10, atol=1e-12)


def test_bonus_comes_from_the_next_step_of_the_same_trajectory_and_never_on_the_last():
    """Six rows, two trajectories of 3, rows shuffled: each row's bonus is ζ·f of its own trajectory's next row."""
    traj, step = [1, 0, 1, 0, 0, 1], [2, 1, 0, 0, 2, 1]
    entropy = [0.3, 1.2, 0.0, 3.0, 2.4, 0.6]  # max − min = 3, so H̃ = H/3
    batch = batch_of(traj_id=traj, step=step, entropy=entropy)
    parts = components(batch, np.zeros(6), k=1.0, k_f=1.5, zeta=0.2, eps=TINY)
    f = np.exp(-1.5 * np.array(entropy) / 3)
    nxt = {(t, s): i for i, (t, s) in enumerate(zip(traj, step))}
    expected = [0.2 * f[nxt[t, s + 1]] if (t, s + 1) in nxt else 0.0 for t, s in zip(traj, step)]
    np.testing.assert_allclose(parts["bonus"], expected, rtol=1e-11)
    assert parts["bonus"][0] == 0.0 and parts["bonus"][4] == 0.0  # the last steps (step 2)
    # with A = 0 the output is the centred bonus alone
    np.testing.assert_allclose(credit.empg(batch, np.zeros(6), k=1.0, k_f=1.5, zeta=0.2, eps=TINY),
                               np.array(expected) - np.mean(expected), atol=1e-12)


def test_equal_entropies_scale_by_one_over_one_plus_eps_then_recentre():
    """Zero spread: H̃ = 0 exactly, so g = 1/(1+ε) and f = 1 on every row. What holds exactly:

        A'' = A/(1+ε) + ζ·[t not last] − mean(A/(1+ε) + ζ·[t not last]).

    So with ζ = 0 it is A re-centred and scaled by 1/(1+ε) (A itself where A has mean 0); with
    ζ > 0 the rows that have a next step gain ζ·(1 − p) and last steps lose ζ·p, p the share of
    rows with a next step.
    """
    batch = batch_of(traj_id=[0, 0, 0, 1, 1], step=[0, 1, 2, 0, 1], entropy=[0.7] * 5)
    a = np.array([1.5, -0.5, 2.0, 0.25, -1.0])
    parts = components(batch, a)
    assert np.all(parts["h_norm"] == 0.0) and np.all(parts["f"] == 1.0)
    assert np.all(parts["g"] == 1.0 / (1.0 + 1e-8))
    has_next = np.array([1, 1, 0, 1, 0], dtype=float)
    for zeta in (0.0, 0.1):
        raw = a / (1 + 1e-8) + zeta * has_next
        np.testing.assert_allclose(credit.empg(batch, a, zeta=zeta), raw - raw.mean(), rtol=0, atol=1e-15)
    p = has_next.mean()
    np.testing.assert_allclose(credit.empg(batch, np.zeros(5), zeta=0.1), 0.1 * (has_next - p), atol=1e-15)


def test_singleton_groups_through_grpo():
    """K = 1 groups: GRPO passes R(τ)/(1 + 1e-6) through (docs/credit.md); EMPG then scales each row by g."""
    batch = batch_of(group_id=[0, 0, 1, 2], traj_id=[0, 0, 1, 2], step=[0, 1, 0, 0], reward=[0.0, 1.0, 0.0, 2.0],
                     entropy=[1.0, 0.0, 2.0, 1.0])
    grpo = credit.estimate("grpo", batch)
    np.testing.assert_allclose(grpo, np.array([1, 1, 0, 2]) / (1 + 1e-6))
    h_norm = np.array([0.5, 0.0, 1.0, 0.5])
    g = np.exp(-h_norm) / np.exp(-h_norm).mean()
    modulated = grpo * g + 0.1 * np.array([np.exp(-0.0), 0, 0, 0])  # row 0's next step has H̃ = 0
    np.testing.assert_allclose(credit.empg(batch, grpo, eps=TINY), modulated - modulated.mean(), atol=1e-11)


def test_a_single_row_and_an_empty_batch():
    one = batch_of(traj_id=[0], step=[0], entropy=[1.3])
    assert credit.empg(one, np.array([5.0])).tolist() == [0.0]  # zero mean leaves nothing
    empty = credit.StepBatch([], [], [], [], [], entropy=np.zeros(0))
    assert credit.empg(empty, np.zeros(0)).shape == (0,)


def test_invalid_action_rows_are_modulated_like_any_other():
    """EMPG reads entropies only: the valid flags change nothing given the same A. Estimators that
    penalize invalid actions (GiGPO's λ) do it in A, before EMPG."""
    kw = dict(group_id=[0, 0, 0, 0], traj_id=[0, 0, 1, 1], step=[0, 1, 0, 1], reward=[0.0, 1.0, 0.0, 0.0],
              anchor=[5, 6, 5, 7], entropy=[0.2, 0.9, 1.4, 0.4])
    valid, invalid = batch_of(**kw), batch_of(**kw, valid=[True, False, True, True])
    a = np.array([0.3, -0.1, 0.8, -1.0])
    np.testing.assert_array_equal(credit.empg(invalid, a), credit.empg(valid, a))
    gigpo_valid = credit.estimate("gigpo", valid, normalize="mean")
    gigpo_invalid = credit.estimate("gigpo", invalid, normalize="mean")
    assert not np.allclose(gigpo_valid, gigpo_invalid)  # the penalty is the estimator's
    np.testing.assert_array_equal(credit.empg(invalid, gigpo_invalid), components(valid, gigpo_invalid)["advantages"])


def test_k_zero_and_zeta_zero_only_recentre():
    batch = batch_of(traj_id=[0, 0, 1], step=[0, 1, 0], entropy=[0.1, 2.0, 5.0])
    a = np.array([1.0, 2.0, 6.0])
    np.testing.assert_allclose(credit.empg(batch, a, k=0.0, zeta=0.0), (a - 3.0) / (1 + 1e-8), atol=1e-14)


# --- properties -----------------------------------------------------------------------------

@st.composite
def batches(draw):
    rows = []
    for group in range(draw(st.integers(1, 3))):
        for member in range(draw(st.integers(1, 3))):
            traj = len({r[1] for r in rows})
            for step in range(draw(st.integers(1, 4))):
                rows.append((group, traj, step, draw(st.sampled_from([0.0, 1.0, -0.5])), draw(st.integers(0, 2)),
                             draw(st.booleans()), draw(st.floats(0.0, 6.0))))
    order = draw(st.permutations(range(len(rows))))
    rows = [rows[i] for i in order]
    group, traj, step, reward, anchor, valid, entropy = (list(column) for column in zip(*rows))
    advantages = np.array(draw(st.lists(st.floats(-5, 5), min_size=len(rows), max_size=len(rows))))
    params = {"k": draw(st.sampled_from([0.0, 0.5, 1.0, 3.0])), "k_f": draw(st.sampled_from([0.0, 1.0, 2.0])),
              "zeta": draw(st.sampled_from([0.0, 0.1, 1.0]))}
    return credit.StepBatch(group, traj, step, reward, anchor, valid=valid, entropy=entropy), advantages, params


def empg_loop(batch, advantages, k, k_f, zeta, eps=1e-8):
    """EMPG written the straightforward way: a dict of rows by (trajectory, step), plain Python sums."""
    h = [float(x) for x in batch.entropy]
    lo, hi = min(h), max(h)
    h_norm = [(x - lo) / (hi - lo + eps) for x in h]
    scale = [math.exp(-k * x) for x in h_norm]
    scale_mean = sum(scale) / len(scale)
    row_of = {(batch.traj_id[i], int(batch.step[i])): i for i in range(len(batch))}
    out = []
    for i in range(len(batch)):
        nxt = row_of.get((batch.traj_id[i], int(batch.step[i]) + 1))
        bonus = zeta * math.exp(-k_f * h_norm[nxt]) if nxt is not None else 0.0
        out.append(advantages[i] * scale[i] / (scale_mean + eps) + bonus)
    mean = sum(out) / len(out)
    return np.array([x - mean for x in out])


@settings(max_examples=60, deadline=None)
@given(batches())
def test_matches_the_loop_has_zero_mean_and_permutes_exactly(case):
    batch, advantages, params = case
    out = credit.empg(batch, advantages, **params)
    np.testing.assert_allclose(out, empg_loop(batch, advantages, **params), rtol=1e-9, atol=1e-9)
    assert abs(out.mean()) <= 1e-12 * (1 + np.abs(out).max())
    parts = components(batch, advantages, **params)
    assert parts["g"].mean() == pytest.approx(1.0, abs=1e-7)
    # lower entropy, never a smaller scale (k ≥ 0)
    by_entropy = np.argsort(batch.entropy, kind="stable")
    assert np.all(np.diff(parts["g"][by_entropy]) <= 1e-15)
    # row order: permuting the rows permutes the output bit for bit
    perm = np.random.default_rng(len(batch)).permutation(len(batch))
    fields = ("group_id", "traj_id", "step", "reward", "anchor", "valid", "entropy")
    permuted = credit.StepBatch(**{name: np.asarray(getattr(batch, name))[perm] for name in fields})
    np.testing.assert_array_equal(credit.empg(permuted, advantages[perm], **params), out[perm])


# --- composition with every estimator ---------------------------------------------------------

def full_batch(seed=0, n_traj=12):
    rng = np.random.default_rng(seed)
    group, traj, step = [], [], []
    for t in range(n_traj):
        length = int(rng.integers(1, 6))
        group += [t // 4] * length
        traj += [t] * length
        step += list(range(length))
    n = len(step)
    anchor = rng.integers(0, 4, size=n)
    last = np.append(np.array(traj[1:]) != np.array(traj[:-1]), True)
    next_anchor = np.where(last, 100 + anchor, np.roll(anchor, -1))
    reward = np.where(last & (rng.random(n) < 0.5), 1.0, 0.0)
    episode = np.bincount(traj, weights=reward)
    return credit.StepBatch(group, traj, step, reward, anchor, valid=rng.random(n) > 0.1,
                            progress=rng.normal(size=n), value=rng.normal(size=n), next_anchor=next_anchor,
                            success=episode[traj] > 0, entropy=rng.uniform(0, 4, size=n))


@pytest.mark.parametrize("name", credit.available())
def test_composes_with_every_registered_estimator(name):
    batch = full_batch()
    if credit.spec(name).uses_text_anchors({}):
        batch = batch.replace(anchor=[f"room {a}" for a in batch.anchor])
    estimated = credit.estimate(name, batch)
    out = credit.empg(batch, estimated)
    np.testing.assert_allclose(out, empg_loop(batch, estimated, k=1.0, k_f=1.0, zeta=0.1), rtol=1e-9, atol=1e-9)
    assert abs(out.mean()) < 1e-12


@pytest.mark.parametrize("name", ["grpo", "gigpo"])
def test_grpo_and_gigpo_modulated_by_hand(name):
    """Confident steps keep more of their estimator's advantage than uncertain ones of the same sign."""
    batch = batch_of(group_id=[0] * 6, traj_id=[0, 0, 0, 1, 1, 1], step=[0, 1, 2, 0, 1, 2],
                     reward=[0, 0, 1, 0, 0, 0], anchor=[1, 2, 3, 1, 2, 4], entropy=[0.1, 2.0, 0.1, 0.1, 2.0, 0.1])
    a = credit.estimate(name, batch)
    parts = components(batch, a, zeta=0.0)
    assert parts["g"][0] > 1 > parts["g"][1]  # H̃ = 0 → g = 1/mean > 1; H̃ = 1 → g < 1
    out = credit.empg(batch, a, zeta=0.0)
    np.testing.assert_allclose(out, a * parts["g"] - np.mean(a * parts["g"]), atol=1e-14)
    if name == "grpo":  # rows of τ0 share A > 0: the confident steps get more of it
        assert out[0] > out[1] and out[2] > out[1]


# --- errors -----------------------------------------------------------------------------------

def test_rows_without_entropy_say_why():
    batch = credit.StepBatch([0, 0], [0, 0], [0, 1], [0.0, 1.0], [1, 2])
    with pytest.raises(ValueError, match="needs each step row's mean token entropy"):
        credit.empg(batch, np.zeros(2))
    partial = batch.replace(entropy=[0.5, None])
    assert np.isnan(partial.entropy[1])
    with pytest.raises(ValueError, match=r"1 of 2 rows have none \(first: row 1"):
        credit.empg(partial, np.zeros(2))


def test_bad_inputs_are_named():
    batch = batch_of(traj_id=[0, 0], step=[0, 1], entropy=[0.1, 0.2])
    for params, field in (({"k": -1.0}, "k=-1.0"), ({"k_f": float("nan")}, "k_f=nan"), ({"zeta": "x"}, "zeta='x'"),
                          ({"eps": 0.0}, "eps=0.0")):
        with pytest.raises(ValueError, match=field):
            credit.empg(batch, np.zeros(2), **params)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        credit.empg(batch, np.zeros(3))
    with pytest.raises(ValueError, match="entropy"):
        batch.replace(entropy=[0.1, -0.2])


# --- config and the trainer's call ------------------------------------------------------------

def test_config_fails_early_naming_the_field():
    cfg = CreditConfig(estimator="grpo", modifier="empg", modifier_params={"k": 2.0, "zeta": 0.0})
    assert cfg.modifier == "empg"
    with pytest.raises(ValueError, match="unknown parameter 'k_prime'; it accepts: eps, k, k_f, zeta"):
        CreditConfig(modifier="empg", modifier_params={"k_prime": 1.0})
    with pytest.raises(ValueError, match="credit.modifier='empgg' is not one of: empg"):
        CreditConfig(modifier="empgg")
    with pytest.raises(ValueError, match="zeta=-0.1 must be"):
        CreditConfig(modifier="empg", modifier_params={"zeta": -0.1})
    with pytest.raises(ValueError, match="modifier_params=.* is set but credit.modifier is not"):
        CreditConfig(modifier_params={"k": 1.0})


def test_config_modify_is_what_the_trainer_calls():
    batch = full_batch(seed=3)
    a = credit.estimate("gigpo", batch)
    same, none = CreditConfig().modify(batch, a)
    assert same is a and none == {}
    cfg = CreditConfig(estimator="gigpo", modifier="empg", modifier_params={"k": 2.0})
    out, metrics = cfg.modify(batch, a)
    np.testing.assert_array_equal(out, credit.empg(batch, a, k=2.0))
    assert metrics == modify("empg", batch, a, k=2.0)[1]
    assert metrics["credit/empg_entropy_max"] == float(batch.entropy.max())
    assert metrics["credit/empg_g_min"] < 1 < metrics["credit/empg_g_max"]
