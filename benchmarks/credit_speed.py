"""GiGPO credit assignment speed: vectorized `credit` vs the straightforward Python loop.

Builds synthetic rollouts (groups of 8 trajectories, 1–50 steps each, anchors drawn
from 300 observation texts per group, 5% invalid actions, sparse final reward) of 10k,
100k and 1M step rows, with int ids and numeric numpy arrays, rows ordered by
trajectory then step, and times `StepBatch(...)` ("build") plus
`credit.estimate("gigpo", ...)` ("gigpo"). Two anchor forms:

- "int": int64 state hashes. This is what the trainer pays: `agent` hashes each
  anchor text once when the step is made (`StepRow.anchor_key`, BLAKE2b, during the
  rollout, where it is noise next to generation) and `StepBatch.from_rows`
  hands credit the integers.
- "text": a list of freshly built anchor strings (new objects, no cached hash), as
  GiGPO's similarity mode or your own code may pass them; credit then hashes every
  string, and Python's string hashing alone is ~14 ms per 100k rows here.

For 10k and 100k rows it also runs `credit.reference.gigpo_loop`, the same computation written the
straightforward way (a Python loop over groups and rows with dicts keyed by
trajectory and (group, anchor)), asserts that both give the same numbers, and prints
the speedup. Both sides report their best of several runs (the machine may be shared),
and the loop's runs are interleaved with the vectorized ones.
Extra rows repeat the sizes with the rows shuffled (a worst case for memory access).

Allocator: the table runs after `credit.tune_allocator()`, as `steprl train`
does (glibc keeps freed memory instead of page-faulting each numpy temporary in; see
credit/allocator.py). A first block times the 100k rows with the default allocator,
before tuning, so the effect is on record in the same run.

Left out: similarity mode (it loops over distinct anchors by design), other estimators
(each does a subset of GiGPO's work). A last block times the estimators after GiGPO and
the EMPG modifier (`credit.empg`) on the 1M-row batch (the issue's bar: ≤ 1 s each).

    .venv/bin/python benchmarks/credit_speed.py
    .venv/bin/python benchmarks/credit_speed.py --only proxmo   # just that estimator's 1M-row line
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from steprl import credit
from steprl.credit.reference import gigpo_loop

TRAJECTORIES_PER_GROUP = 8
MAX_STEPS = 50
ANCHORS_PER_GROUP = 300
CASES = (  # (anchors, row order, rows)
    ("int", "agent", 10_000), ("int", "agent", 100_000), ("int", "agent", 1_000_000),
    ("int", "shuffled", 100_000), ("int", "shuffled", 1_000_000),
    ("text", "agent", 10_000), ("text", "agent", 100_000), ("text", "agent", 1_000_000),
)
LOOP_SIZES = (10_000, 100_000)
VECTOR_REPEATS, LOOP_REPEATS = 20, 5  # LOOP_REPEATS divides VECTOR_REPEATS


def make_rollouts(n_rows: int, order: str = "agent", seed: int = 0) -> dict[str, np.ndarray]:
    """Numeric fields as numpy arrays, exactly `n_rows` rows, by trajectory then step ("agent") or "shuffled"."""
    rng = np.random.default_rng(seed)
    length = rng.integers(1, MAX_STEPS + 1, size=n_rows)  # more than enough trajectories
    end = np.cumsum(length)
    n_traj = int(np.searchsorted(end, n_rows)) + 1
    length = length[:n_traj]
    length[-1] -= int(end[n_traj - 1]) - n_rows  # cut the last trajectory to hit n_rows exactly
    traj = np.repeat(np.arange(n_traj), length)
    step = np.arange(n_rows) - np.repeat(np.cumsum(length) - length, length)
    group = traj // TRAJECTORIES_PER_GROUP
    anchor_index = rng.integers(0, ANCHORS_PER_GROUP, size=n_rows)
    success = rng.random(n_traj) < 0.4
    reward = np.where((step == length[traj] - 1) & success[traj], 10.0, 0.0)
    valid = rng.random(n_rows) >= 0.05
    shuffle = rng.permutation(n_rows) if order == "shuffled" else np.arange(n_rows)
    return {"group_id": group[shuffle], "traj_id": traj[shuffle], "step": step[shuffle], "reward": reward[shuffle],
            "anchor_index": anchor_index[shuffle], "valid": valid[shuffle]}


def make_anchors(rollouts: dict[str, np.ndarray], kind: str):
    """Fresh observation strings (new objects, no cached hash), or int state hashes."""
    group, index = rollouts["group_id"], rollouts["anchor_index"]
    if kind == "int":
        return group * 1_000_003 + index * 7_919
    return [f"Task {g}. You are in room {a} of the house. Looking around you see a cabinet {a % 7}, "
            f"a countertop {a % 5} and a drawer {a % 11}." for g, a in zip(group.tolist(), index.tolist())]


def gigpo_vectorized(rollouts, anchor) -> tuple[np.ndarray, float, float]:
    """(advantages, build seconds, gigpo seconds)."""
    start = time.perf_counter()
    batch = credit.StepBatch(rollouts["group_id"], rollouts["traj_id"], rollouts["step"], rollouts["reward"],
                             anchor, valid=rollouts["valid"])
    built = time.perf_counter()
    advantages = credit.estimate("gigpo", batch)
    return advantages, built - start, time.perf_counter() - built


def run_loop(rollouts, anchor) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    fields = [rollouts[name].tolist() for name in ("group_id", "traj_id", "step", "reward")]  # lists index fastest
    anchor = anchor.tolist() if isinstance(anchor, np.ndarray) else anchor
    advantages = gigpo_loop(*fields, anchor, rollouts["valid"].tolist())
    return np.array(advantages), time.perf_counter() - start


def untuned_rows() -> list[str]:
    """The 100k cases with glibc's default malloc settings (must run before tune_allocator)."""
    lines = []
    for kind in ("int", "text"):
        rollouts = make_rollouts(100_000)
        total = min(sum(gigpo_vectorized(rollouts, make_anchors(rollouts, kind))[1:]) for _ in range(VECTOR_REPEATS))
        lines.append(f"default allocator, {kind} anchors, 100,000 rows: total {total:.4f} s")
    return lines


def main() -> None:
    before = untuned_rows()
    tuned = credit.tune_allocator()
    print(f"GiGPO credit assignment (exact anchors, gamma=0.95, mean_std): best of {VECTOR_REPEATS} runs "
          f"(loop: best of {LOOP_REPEATS})")
    print(f"machine: {os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
          f"numpy {np.__version__}, load average at start {os.getloadavg()[0]:.2f}")
    print(f"data: groups of {TRAJECTORIES_PER_GROUP} trajectories, 1-{MAX_STEPS} steps, anchors drawn from "
          f"{ANCHORS_PER_GROUP} observation texts per group, 5% invalid actions; order 'agent' = by trajectory, "
          "then step (as agent.TrajectoryBatch gives them)")
    print(*before, sep="\n")
    print(f"allocator tuned (credit.tune_allocator, as steprl train does): {tuned}; the table below runs tuned")
    header = (f"{'anchors':>7} {'order':>8} {'rows':>10} {'groups':>7} {'anchors/group':>13} {'build s':>8} "
              f"{'gigpo s':>8} {'total s':>8} {'x prev':>7} {'loop s':>7} {'speedup':>8}")
    print(header)
    print("-" * len(header))
    previous: dict[tuple[str, str], float] = {}
    for kind, order, n_rows in CASES:
        rollouts = make_rollouts(n_rows, order)
        # Where the loop runs too, its runs are interleaved with the vectorized ones (one loop
        # run after every VECTOR_REPEATS // LOOP_REPEATS vectorized runs), so a slow spell of
        # the machine hits both sides alike and the speedup compares like with like.
        with_loop = n_rows in LOOP_SIZES
        runs, loop_times, loop_advantages = [], [], None
        for repeat in range(VECTOR_REPEATS):
            anchor = make_anchors(rollouts, kind)
            runs.append(gigpo_vectorized(rollouts, anchor))
            if with_loop and (repeat + 1) % (VECTOR_REPEATS // LOOP_REPEATS) == 0:
                loop_advantages, seconds = run_loop(rollouts, make_anchors(rollouts, kind))
                loop_times.append(seconds)
        advantages = runs[-1][0]
        build, gigpo = min(run[1] for run in runs), min(run[2] for run in runs)
        total = min(run[1] + run[2] for run in runs)
        groups = rollouts["group_id"]
        n_groups = np.unique(groups).size
        distinct = np.unique(groups * ANCHORS_PER_GROUP + rollouts["anchor_index"]).size / n_groups
        growth = f"{total / previous[kind, order]:.1f}x" if (kind, order) in previous else "-"
        loop_cell, speed_cell = "-", "-"
        if with_loop:
            np.testing.assert_allclose(advantages, loop_advantages, rtol=1e-9, atol=1e-9)
            loop_cell, speed_cell = f"{min(loop_times):.3f}", f"{min(loop_times) / total:.0f}x"
        print(f"{kind:>7} {order:>8} {n_rows:>10,} {n_groups:>7,} {distinct:>13.0f} {build:>8.4f} {gigpo:>8.4f} "
              f"{total:>8.4f} {growth:>7} {loop_cell:>7} {speed_cell:>8}")
        previous[kind, order] = total
    print("build = StepBatch(...) from arrays + a list of anchors; gigpo = credit.estimate('gigpo', batch); "
          "x prev = total / total of the 10x smaller size.")
    print("loop and vectorized advantages agree (assert_allclose, rtol=atol=1e-9) at every size where both ran.")
    newer_estimators()


NEWER = ("hgpo", "graphgpo", "pgpo", "gagpo", "empg", "proxmo")  # the last block's estimators


def newer_estimators(only: tuple[str, ...] = NEWER) -> None:
    """The step-level estimators after GiGPO on the 1M-row int-anchor batch (issue bar: ≤ 1 s); `only`: a subset."""
    rollouts = make_rollouts(1_000_000, "agent")
    anchor = make_anchors(rollouts, "int")
    # the next state: the next row's anchor in the same trajectory (agent order), a fresh state after the last
    last = np.append(rollouts["traj_id"][1:] != rollouts["traj_id"][:-1], True)
    next_anchor = np.where(last, anchor + (1 << 40), np.roll(anchor, -1))
    episode = np.bincount(rollouts["traj_id"], weights=rollouts["reward"])
    entropy = np.random.default_rng(1).gamma(2.0, 0.5, size=anchor.size)  # step entropies for EMPG (nats)
    batch = credit.StepBatch(rollouts["group_id"], rollouts["traj_id"], rollouts["step"], rollouts["reward"],
                             anchor, valid=rollouts["valid"], next_anchor=next_anchor,
                             success=episode[rollouts["traj_id"]] > 0, entropy=entropy)
    print("\nestimators after GiGPO, int anchors, agent order, 1,000,000 rows (StepBatch built once): best of 5")
    for name, params in (("hgpo", {"history_length": 2}), ("hgpo", {"history_length": 4, "base_group": True}),
                         ("graphgpo", {}), ("pgpo", {}), ("gagpo", {})):
        if name not in only:
            continue
        batch._cache.pop("graphgpo", None)
        best = min(_timed(lambda: (batch._cache.pop("graphgpo", None), credit.estimate(name, batch, **params)))
                   for _ in range(5))
        print(f"  {name} {params}: {best:.3f} s")
    # EMPG is a modifier: it rescales any estimator's advantages (here GiGPO's) by the rows' entropies
    if "empg" in only:
        advantages = credit.estimate("gigpo", batch)
        best = min(_timed(lambda: credit.empg(batch, advantages)) for _ in range(5))
        print(f"  empg (modifier on gigpo's advantages, k=1, k_f=1, zeta=0.1): {best:.3f} s")
    # ProxMO's soft grouping reads the observation text (TF-IDF); its rows come with text anchors. Each run gets
    # a new batch of new strings (built untimed), as each trainer iteration does: a reused batch would keep its
    # texts' hashes (StepBatch.anchor_key, cached on the batch) from the first run and skip hashing them
    if "proxmo" in only:
        runs = []
        for _ in range(3):
            text_batch = batch.replace(anchor=make_anchors(rollouts, "text"))
            runs.append(_timed(lambda: credit.estimate("proxmo", text_batch)))
        print(f"  proxmo {{'mode': 'soft_grouping'}} (text anchors, new batch per run, best of 3): {min(runs):.3f} s")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=NEWER, metavar="NAME",
                        help=f"time only these estimators of the last block ({', '.join(NEWER)}) on the 1M-row "
                             "batch, skipping the GiGPO table")
    args = parser.parse_args()
    if args.only:
        credit.tune_allocator()
        newer_estimators(tuple(args.only))
    else:
        main()
