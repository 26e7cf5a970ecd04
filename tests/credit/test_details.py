"""`credit.details`: each estimator's own per-step quantities, from the same code path as its advantages.

Hand-built batches with the numbers worked out, and on random shuffled batches the identity
that ties the details to the advantage (GiGPO: A_E + ω·A_S == A, bit for bit).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from steprl import credit
from steprl.credit import registry

EPS = 1e-6

# GiGPO's hand case (tests/credit/test_gigpo.py), γ = 0.5, λ = 0.1:
#   group g: a: s0 s1 s2, r = 0 0 1 → R(a) = 1, R_t = .25 .5 1;  b: s0 s1, r = 0 −0.1 (invalid) → R(b) = −.1
#   group h (K = 1): c: s0 s0, r = 1 2 → R(c) = 3, R_t = 2 2
GIGPO_ROWS = [  # (group_id, traj_id, step, reward, anchor, valid), scrambled
    ("g", "b", 1, 0.0, "s1", False), ("h", "c", 0, 1.0, "s0", True), ("g", "a", 2, 1.0, "s2", True),
    ("g", "a", 0, 0.0, "s0", True), ("h", "c", 1, 2.0, "s0", True), ("g", "b", 0, 0.0, "s0", True),
    ("g", "a", 1, 0.0, "s1", True),
]
KEYS = [(row[1], row[2]) for row in GIGPO_ROWS]


def text_batch(rows, **extra):
    group_id, traj_id, step, reward, anchor, valid = (list(column) for column in zip(*rows))
    return credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid, **extra)


def per_row(expected, keys=KEYS):
    return np.array([expected[key] for key in keys], dtype=np.float64)


def test_gigpo_details_hand_computed():
    batch = text_batch(GIGPO_ROWS)
    details = credit.details("gigpo", batch, gamma=0.5, normalize="mean")
    assert list(details) == ["R_tau", "A_E", "R_t", "A_S", "step_group_size"]
    np.testing.assert_allclose(details["R_tau"], per_row({("a", 0): 1, ("a", 1): 1, ("a", 2): 1, ("b", 0): -0.1,
                                                          ("b", 1): -0.1, ("c", 0): 3, ("c", 1): 3}), rtol=1e-12)
    np.testing.assert_allclose(details["R_t"], per_row({("a", 0): 0.25, ("a", 1): 0.5, ("a", 2): 1.0, ("b", 0): -0.05,
                                                        ("b", 1): -0.1, ("c", 0): 2.0, ("c", 1): 2.0}), rtol=1e-12)
    # mean mode: A^E = R − 0.56 in g (statistics over g's 5 rows), R in the singleton group h
    np.testing.assert_allclose(details["A_E"], per_row({("a", 0): 0.44, ("a", 1): 0.44, ("a", 2): 0.44,
                                                        ("b", 0): -0.66, ("b", 1): -0.66, ("c", 0): 3, ("c", 1): 3}),
                               rtol=1e-12)
    np.testing.assert_allclose(details["A_S"], per_row({("a", 0): 0.15, ("b", 0): -0.15, ("a", 1): 0.3,
                                                        ("b", 1): -0.3, ("a", 2): 0, ("c", 0): 0, ("c", 1): 0}),
                               rtol=1e-12, atol=1e-15)
    # step groups: (g, s0) {a0, b0}, (g, s1) {a1, b1}, (g, s2) {a2}, (h, s0) {c0, c1}
    assert details["step_group_size"].tolist() == per_row({("a", 0): 2, ("b", 0): 2, ("a", 1): 2, ("b", 1): 2,
                                                           ("a", 2): 1, ("c", 0): 2, ("c", 1): 2}).tolist()
    assert details["step_group_size"].dtype.kind == "i"


@pytest.mark.parametrize("params", [{}, {"gamma": 0.5}, {"step_weight": 0.5}, {"normalize": "mean", "step_weight": 2.0},
                                    {"similarity": True, "similarity_threshold": 0.5}, {"invalid_penalty": 0.0}])
def test_gigpo_levels_add_up_to_the_advantage_exactly(params):
    batch = text_batch(GIGPO_ROWS)
    details = credit.details("gigpo", batch, **params)
    advantage = credit.estimate("gigpo", batch, **params)
    combined = details["A_E"] + params.get("step_weight", 1.0) * details["A_S"]
    assert combined.tolist() == advantage.tolist()  # A = A^E + ω·A^S (Eq. 8), bit for bit


def test_grpo_rloo_loop_details():
    batch = text_batch(GIGPO_ROWS)
    grpo = credit.details("grpo", batch)
    # no invalid-action penalty here: g: R(a) = 1, R(b) = 0 per trajectory → mean 0.5, std √(2·0.5²);
    # h: one trajectory → mean 0, std 1
    std_g = math.sqrt(2 * 0.5 ** 2)
    np.testing.assert_allclose(grpo["R_tau"], per_row({key: {"a": 1, "b": 0, "c": 3}[key[0]] for key in KEYS}))
    np.testing.assert_allclose(grpo["baseline"], per_row({key: 0.5 if key[0] != "c" else 0.0 for key in KEYS}),
                               rtol=1e-12)
    np.testing.assert_allclose(grpo["std"], per_row({key: std_g if key[0] != "c" else 1.0 for key in KEYS}), rtol=1e-12)
    np.testing.assert_allclose((grpo["R_tau"] - grpo["baseline"]) / (grpo["std"] + EPS), credit.estimate("grpo", batch),
                               rtol=1e-12)
    assert "std" not in credit.details("grpo", batch, normalize="mean")
    for name in ("rloo", "loop"):
        rloo = credit.details(name, batch)
        # leave one out: a's baseline is R(b) and b's is R(a); K = 1: 0
        np.testing.assert_allclose(rloo["baseline"], per_row({key: {"a": 0, "b": 1, "c": 0}[key[0]] for key in KEYS}),
                                   rtol=1e-12)
        np.testing.assert_allclose(rloo["R_tau"] - rloo["baseline"], credit.estimate(name, batch), rtol=1e-12)


# HGPO's hand case (tests/credit/test_hgpo.py): one group, a: s0 s1 s2 (R = 1), b: s0 s1 s3, c: s0 s4
HGPO_ROWS = [("g", "a", 0, 0.0, "s0", True), ("g", "a", 1, 0.0, "s1", True), ("g", "a", 2, 1.0, "s2", True),
             ("g", "b", 0, 0.0, "s0", True), ("g", "b", 1, 0.0, "s1", True), ("g", "b", 2, 0.0, "s3", True),
             ("g", "c", 0, 0.0, "s0", True), ("g", "c", 1, 0.0, "s4", True)]


def test_hgpo_details_hand_computed():
    params = dict(gamma=1.0, mode="mean_norm", history_length=2, invalid_penalty=0.0)
    batch = text_batch(HGPO_ROWS)
    details = credit.details("hgpo", batch, **params)
    assert list(details) == ["R_t", "level1", "level1_size", "level2", "level2_size", "level3", "level3_size",
                             "levels_counted"]
    nan = math.nan
    # level 1: (s0) {a0 1, b0 0, c0 0}; (s1) {a1 1, b1 0}; s2, s3, s4 alone
    np.testing.assert_allclose(details["level1"], [2 / 3, 0.5, 0, -1 / 3, -0.5, 0, -1 / 3, 0], rtol=1e-12)
    assert details["level1_size"].tolist() == [3, 2, 1, 3, 2, 1, 3, 1]
    # level 2 (rows at step ≥ 1): (s0 s1) {a1, b1}; (s1 s2), (s1 s3), (s0 s4) alone
    np.testing.assert_allclose(details["level2"], [nan, 0.5, 0, nan, -0.5, 0, nan, 0], rtol=1e-12)
    np.testing.assert_allclose(details["level2_size"], [nan, 2, 1, nan, 2, 1, nan, 1])
    # level 3 (step ≥ 2): a2 and b2, each alone
    np.testing.assert_allclose(details["level3"], [nan, nan, 0, nan, nan, 0, nan, nan])
    assert details["levels_counted"].tolist() == [1, 2, 0, 1, 2, 0, 1, 0]
    # the advantage is the (k+1)^α-weighted mean of the non-zero level values
    levels = np.nan_to_num(np.stack([details[f"level{k}"] for k in (1, 2, 3)]))
    weight = np.array([[2.0], [3.0], [4.0]]) * (levels != 0)
    expected = np.divide((weight * levels).sum(0), weight.sum(0) + EPS, out=np.zeros(8), where=weight.sum(0) > 0)
    np.testing.assert_allclose(credit.estimate("hgpo", batch, **params), expected, rtol=1e-12)
    with_base = credit.details("hgpo", batch, base_group=True, history_length=4)
    assert "level0" in with_base and np.isnan(with_base["level5"]).all()  # no row reaches level 5


GRAPH_ROWS = [  # group, traj, step, reward, anchor, valid, next_anchor, success
    (0, 0, 0, 0.0, 10, True, 11, True), (0, 0, 1, 1.0, 11, True, 99, True),
    (0, 1, 0, 0.0, 10, True, 12, False), (0, 1, 1, 0.0, 12, True, 13, False), (0, 1, 2, 0.0, 13, True, 14, False),
]


def graph_batch(rows):
    g, t, s, r, a, v, nxt, ok = (list(c) for c in zip(*rows))
    return credit.StepBatch(g, t, s, r, np.array(a, dtype=np.int64), valid=v, next_anchor=nxt, success=ok)


def test_graphgpo_details_hand_computed():
    g = 0.5
    batch = graph_batch(GRAPH_ROWS)
    details = credit.details("graphgpo", batch, gamma=g, mode="mean_norm", invalid_penalty=0.0)
    assert details["d_next"].tolist() == [1, 0, 3, 3, 3] and details["reaches"].tolist() == [1, 1, 0, 0, 0]
    assert details["d"].tolist() == [2, 1, 2, 3, 3]
    np.testing.assert_allclose(details["R_step"], [10 * g, 10, 10 * g ** 3, 10 * g ** 3, 10 * g ** 3], rtol=1e-12)
    half = (10 * g - 10 * g ** 3) / 2
    np.testing.assert_allclose(details["A_S"], [half, 0, -half, 0, 0], rtol=1e-12)
    np.testing.assert_allclose(details["A_E"], [0.6, 0.6, -0.4, -0.4, -0.4], rtol=1e-12)
    for params in ({}, {"step_advantage_w": 0.3, "episode_advantage_w": 2.0}, {"episode_advantage_w": 0.0}):
        d = credit.details("graphgpo", batch, **params)
        combined = params.get("step_advantage_w", 1.0) * d["A_S"] + params.get("episode_advantage_w", 1.0) * d["A_E"]
        assert combined.tolist() == credit.estimate("graphgpo", batch, **params).tolist()


def test_spa_details_hand_computed():
    # one group: a: ĉ = 0.2 0.8 (valid, valid); b: ĉ = 0.1 (invalid); α = 1, β = 0.5, γ = 1
    batch = credit.StepBatch(["g"] * 3, ["a", "a", "b"], [0, 1, 0], [0.0, 1.0, 0.0], ["x", "y", "x"],
                             valid=[True, True, False], progress=[0.2, 0.8, 0.1])
    details = credit.details("spa", batch)
    np.testing.assert_allclose(details["c_hat"], [0.2, 0.8, 0.1])
    np.testing.assert_allclose(details["stepwise_reward"], [0.7, 1.3, 0.1], rtol=1e-12)
    np.testing.assert_allclose(details["stepwise_return"], [2.0, 1.3, 0.1], rtol=1e-12)
    # step 0: {a 2.0, b 0.1} → mean 1.05; step 1: a alone → its own return (A = 0)
    np.testing.assert_allclose(details["baseline"], [1.05, 1.3, 1.05], rtol=1e-12)
    np.testing.assert_allclose(details["stepwise_return"] - details["baseline"], credit.estimate("spa", batch),
                               rtol=1e-12, atol=1e-15)


def test_gae_details_hand_computed():
    # one trajectory, r = 0 1, V = 0.5 0.25, γ = 0.9, λ = 0.5
    batch = credit.StepBatch([0, 0], [0, 0], [0, 1], [0.0, 1.0], [1, 2], value=[0.5, 0.25])
    details = credit.details("gae", batch, gamma=0.9, lam=0.5)
    np.testing.assert_allclose(details["V"], [0.5, 0.25])
    np.testing.assert_allclose(details["V_next"], [0.25, 0.0])
    delta = [0.9 * 0.25 - 0.5, 1.0 - 0.25]
    np.testing.assert_allclose(details["delta"], delta, rtol=1e-12)
    advantage = [delta[0] + 0.45 * delta[1], delta[1]]
    np.testing.assert_allclose(details["target"], np.add(advantage, [0.5, 0.25]), rtol=1e-12)
    np.testing.assert_allclose(details["target"] - details["V"], credit.estimate("gae", batch, gamma=0.9, lam=0.5),
                               rtol=1e-12)


def random_batch(seed: int, text: bool = False) -> credit.StepBatch:
    """Random groups of trajectories, shuffled, with every optional field (progress, value, next states, outcomes)."""
    rng = np.random.default_rng(seed)
    rows = []
    traj = 0
    for group in range(int(rng.integers(1, 5))):
        for _ in range(int(rng.integers(1, 5))):
            length = int(rng.integers(1, 6))
            won = bool(rng.random() > 0.5)
            anchors = rng.integers(0, 4, size=length + 1)
            for step in range(length):
                reward = float(won) if step == length - 1 else float(rng.integers(0, 2)) * 0.1
                rows.append((group, traj, step, reward, int(anchors[step]), bool(rng.random() > 0.2),
                             int(anchors[step + 1]), won, float(rng.random()), float(rng.normal())))
            traj += 1
    rows = [rows[i] for i in rng.permutation(len(rows))]
    g, t, s, r, a, v, nxt, ok, progress, value = (list(c) for c in zip(*rows))
    anchor = [f"the room number {x}" for x in a] if text else np.array(a, dtype=np.int64)
    return credit.StepBatch(g, t, s, r, anchor, valid=v, next_anchor=nxt, success=ok, progress=progress, value=value)


IDENTITIES = {  # name → (params, the advantage from the details)
    "gigpo": ({"step_weight": 0.7}, lambda d: d["A_E"] + 0.7 * d["A_S"]),
    "graphgpo": ({"step_advantage_w": 0.5}, lambda d: 0.5 * d["A_S"] + d["A_E"]),
    "pgpo": ({}, lambda d: d["A_S"] + d["shaping_weight"] * d["A_phi"]),
    "proxmo": ({"step_advantage_w": 0.5}, lambda d: d["A_E"] + 0.5 * d["A_S"]),
    "proxmo_hard": ({"mode": "mean_std_norm"}, lambda d: d["A_E"] + d["A_S"]),
}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", sorted(IDENTITIES))
def test_details_rebuild_the_advantage_bit_for_bit(name, seed):
    params, combine = IDENTITIES[name]
    estimator = name.split("_")[0]
    batch = random_batch(seed, text=estimator == "proxmo" and params.get("mode") is None)
    assert combine(credit.details(estimator, batch, **params)).tolist() == \
        credit.estimate(estimator, batch, **params).tolist()


@pytest.mark.parametrize("seed", range(4))
def test_details_rebuild_the_advantage_approximately(seed):
    batch = random_batch(seed)
    spa = credit.details("spa", batch, gamma=0.9)
    np.testing.assert_allclose(spa["stepwise_return"] - spa["baseline"], credit.estimate("spa", batch, gamma=0.9),
                               atol=1e-12)
    gae = credit.details("gae", batch, gamma=0.9)
    np.testing.assert_allclose(gae["target"] - gae["V"], credit.estimate("gae", batch, gamma=0.9), atol=1e-12)
    gagpo = credit.details("gagpo", batch, normalize="mean")
    group_mean = np.bincount(batch.group_code, gagpo["gae"]) / np.bincount(batch.group_code)
    centred = gagpo["gae"] - group_mean[batch.group_code]
    np.testing.assert_allclose(centred, credit.estimate("gagpo", batch, normalize="mean"), atol=1e-12)
    pgpo = credit.details("pgpo", batch)
    rate = np.bincount(batch.traj_code, batch.success) > 0
    won = np.bincount(batch.traj_group, rate, minlength=batch.n_groups) / batch.group_size
    np.testing.assert_allclose(pgpo["p"], won[batch.group_code])
    gigpo = credit.details("gigpo", batch)
    np.testing.assert_allclose(gigpo["A_S"], pgpo["A_S"], atol=0)  # PGPO's step level is GiGPO's
    soft = credit.details("proxmo", random_batch(seed, text=True))
    np.testing.assert_allclose(soft["R_t"] - soft["baseline"], soft["A_S"], atol=1e-12)


@pytest.mark.parametrize("name", credit.available())
def test_every_estimator_gives_one_value_per_row_and_survives_an_empty_batch(name):
    batch = random_batch(7, text=name == "proxmo")
    details = credit.details(name, batch)
    assert details, f"{name} registers no details"
    for key, values in details.items():
        assert values.shape == (len(batch),), key
        assert np.all(np.isfinite(values) | np.isnan(values)), key
    moved = np.random.default_rng(0).permutation(len(batch))  # row order in, row order out
    for key, values in credit.details(name, reorder(batch, moved)).items():
        assert values.tolist() == pytest.approx(details[key][moved].tolist(), nan_ok=True, rel=1e-12, abs=1e-12), key
    empty = credit.StepBatch([], [], [], [], np.zeros(0, dtype=np.int64), progress=[], value=[], next_anchor=[],
                             success=[])
    assert {key: values.shape for key, values in credit.details(name, empty).items()} == {key: (0,) for key in details}


def reorder(batch: credit.StepBatch, order) -> credit.StepBatch:
    fields = {}
    for name in ("group_id", "traj_id", "step", "reward", "anchor", "valid", "progress", "value", "next_anchor",
                 "success"):
        value = getattr(batch, name)
        fields[name] = value[order] if isinstance(value, np.ndarray) else [value[i] for i in order]
    return credit.StepBatch(**fields)


def test_registry_details_hook(monkeypatch):
    for table in ("_ESTIMATORS", "_PARAMETERS", "_SPECS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))

    def doubled(batch, *, scale=1.0):
        return {"R_t": scale * credit.step_returns(batch, 1.0), "flag": batch.valid, "bad": np.zeros(1)}

    @credit.register("with_details", details=lambda batch, *, scale=1.0: {k: v for k, v in doubled(batch, scale=scale)
                                                                        .items() if k != "bad"})
    def with_details(batch, *, scale=1.0):
        return scale * credit.step_returns(batch, 1.0)

    @credit.register("broken_details", details=doubled)
    def broken(batch, *, scale=1.0):
        return np.zeros(len(batch))

    @credit.register("without_details")
    def without(batch):
        return np.zeros(len(batch))

    batch = text_batch(GIGPO_ROWS)
    details = credit.details("with_details", batch, scale=2.0)
    np.testing.assert_allclose(details["R_t"], credit.estimate("with_details", batch, scale=2.0))
    assert details["flag"].dtype == np.int64  # booleans come back as 0/1
    assert credit.spec("with_details").details is not None and credit.spec("without_details").details is None
    assert credit.details("without_details", batch) == {}
    with pytest.raises(ValueError, match="detail 'bad' has shape"):
        credit.details("broken_details", batch)
    with pytest.raises(TypeError, match="unknown parameter 'gamma'"):
        credit.details("with_details", batch, gamma=0.5)
    with pytest.raises(ValueError, match="unknown credit estimator"):
        credit.details("nope", batch)
