"""Step rows, the grouping helpers every estimator shares, and discounted step returns.

A `StepBatch` holds one entry per *step row* (one (trajectory, step) pair) in any
row order. On construction it validates the fields and builds its *layout*: integer
codes for groups and trajectories, and a canonical row order in which estimators
compute before handing results back in the caller's row order.

The canonical order is step-major and packed (like PyTorch's PackedSequence): all
rows at step 0, then all rows at step 1, ...; within a step, trajectories by length,
longest first. Trajectories still running at step t+1 are then a prefix of those at
step t, so a backward recursion over steps (`discounted_suffix_sum`) is one slice
operation per step index, never a loop over rows. Computing in one fixed order also
makes every estimator exactly invariant to row permutations: the same floating-point
sums happen in the same order.

Plumbing only; the algorithms live in one module each (`credit/grpo.py`, ...).
"""

from __future__ import annotations

import numbers
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property

import numpy as np

NORMALIZE_MODES = ("mean_std", "mean")

#: Batches with at least this many rows run independent parts of an estimator in a
#: background thread (see `in_background`); smaller ones run everything in the caller's
#: thread, where a thread hand-off would cost more than it saves. 0 disables the thread.
BACKGROUND_MIN_ROWS = 20_000


class StepBatch:
    """One entry per step row, rows in any order.

    Args:
        group_id: task instance the row's trajectory was rolled out for (the K
            rollouts of one task form a group). str or int.
        traj_id: trajectory the row belongs to; unique across the batch (a
            trajectory belongs to exactly one group). str or int.
        step: index of the row in its trajectory; each trajectory has steps
            0..T-1, no gaps, no repeats.
        reward: env reward r_t of the step.
        anchor: canonical key of the state the step acted in, for GiGPO's
            anchor-state grouping: the raw observation text, or an int state hash.
        valid: whether the response parsed to an action the env executed
            (default all True). GiGPO's invalid-action penalty and SPA's grounding
            signal read it.
        progress: SPA's per-step progress contribution ĉ_t (needed by `spa`).
        value: critic value V(s_t) of the step (needed by `gae`).
        next_anchor: key of the state the step led to (the next row's anchor; for a
            trajectory's last row, the final state's), same kind as ``anchor``; None per
            row where unknown (an env error). Needed by estimators on the state graph.
        success: the row's episode succeeded (bool per row, the same on every row of
            a trajectory).
        entropy: the step's mean token entropy at sampling time (nats, ≥ 0), as the agent's
            engines record it (``StepRow.entropy``); NaN (or None) per row where unknown.
            Read by the EMPG modifier (`credit.empg`).

    Layout attributes (read-only numpy arrays), for estimators:
        group_code, traj_code: per row, 0..n_groups-1 / 0..n_trajectories-1.
        traj_length, traj_group: per trajectory, its T and its group code.
        group_size: per group, K (number of trajectories).
        order: row index at each canonical position; position: canonical position of each row.
        traj_rank: per trajectory, its slot within a step block (longest trajectory first).
        rows_by_group: True when the rows are in the agent's order and come group by group,
            group codes never decreasing (GiGPO then sorts whole-group chunks on both cores).
        step_offset: canonical position where the block of step t starts (t = 0..T_max).
        active: per step index t, how many trajectories have a step t (block size).
    """

    def __init__(self, group_id, traj_id, step, reward, anchor, valid=None, progress=None, value=None,
                 next_anchor=None, success=None, entropy=None):
        n = _length("group_id", group_id)
        for name, field in (("traj_id", traj_id), ("step", step), ("reward", reward), ("anchor", anchor),
                            ("valid", valid), ("progress", progress), ("value", value),
                            ("next_anchor", next_anchor), ("success", success), ("entropy", entropy)):
            if field is not None and _length(name, field) != n:
                raise ValueError(f"StepBatch: field {name!r} has {_length(name, field)} entries but 'group_id' has "
                                 f"{n}; every field needs exactly one entry per step row")
        self.group_id = _as_keys(group_id)
        self.traj_id = _as_keys(traj_id)
        self.anchor = _as_keys(anchor)
        self.next_anchor = None if next_anchor is None else tuple(next_anchor) if not isinstance(
            next_anchor, np.ndarray) else _as_keys(next_anchor)
        self.success = None if success is None else _read_only(_as_bool_array("success", success))
        self.entropy = None if entropy is None else _read_only(_as_entropy_array(entropy))
        self.step = _read_only(_as_int_array("step", step))
        # The fields the layout does not read are converted and checked beside it (a background
        # thread on big batches); their errors still come before the layout's.
        others = in_background(n, _convert_others, n, reward, valid, progress, value)
        self._cache: dict = {}
        try:
            self._build_layout()
        except Exception:
            others.result()  # raises instead if a field is bad too
            raise
        self.reward, self.valid, self.progress, self.value = others.result()

    @classmethod
    def from_rows(cls, rows, text_anchors: bool = False) -> StepBatch:
        """The agent's step rows (``agent.rollout.StepRow``) as a batch; ``valid`` = ``format_ok and valid_action``.

        Anchors go in as the rows' integer ``anchor_key`` state hashes (hashed when each
        step was made, so credit does no string work); ``text_anchors=True`` passes the
        anchor texts instead (an estimator whose spec asks for them: GiGPO's similarity mode).
        ``next_anchor`` is the rows' ``next_anchor_key`` (integer hashes, None where the env
        crashed), ``success`` the episode's outcome, ``entropy`` the step's mean token entropy
        at sampling time (NaN where a row has none; the field is None when no row has one).
        The rows are read by attribute; credit does not import the agent.
        """
        entropy = [getattr(r, "entropy", None) for r in rows]
        return cls(
            group_id=np.array([r.group_id for r in rows], dtype=np.int64),
            traj_id=np.array([r.traj_id for r in rows], dtype=np.int64),
            step=np.array([r.step for r in rows], dtype=np.int64),
            reward=np.array([r.reward for r in rows], dtype=np.float64),
            anchor=[r.anchor for r in rows] if text_anchors else np.array([r.anchor_key for r in rows], dtype=np.int64),
            valid=np.array([r.format_ok and r.valid_action for r in rows], dtype=bool),
            next_anchor=[key if (key := getattr(r, "next_anchor_key", -1)) >= 0 else None for r in rows],
            success=np.array([r.success for r in rows], dtype=bool),
            entropy=None if all(h is None for h in entropy) else entropy,
        )

    def __len__(self) -> int:
        return self.step.size

    def __repr__(self) -> str:
        return (f"StepBatch(rows={len(self)}, trajectories={self.n_trajectories}, groups={self.n_groups}, "
                f"progress={'yes' if self.progress is not None else 'no'}, "
                f"value={'yes' if self.value is not None else 'no'})")

    def replace(self, **fields) -> StepBatch:
        """A new, validated batch with some fields replaced, e.g. `batch.replace(reward=r)`."""
        names = ("group_id", "traj_id", "step", "reward", "anchor", "valid", "progress", "value", "next_anchor",
                 "success", "entropy")
        unknown = sorted(set(fields) - set(names))
        if unknown:
            raise TypeError(f"StepBatch.replace: unknown field {unknown[0]!r}; fields are {', '.join(names)}")
        return StepBatch(**{**{name: getattr(self, name) for name in names}, **fields})

    # --- layout -------------------------------------------------------------------
    def _build_layout(self) -> None:
        n = len(self)
        self.rows_by_group = False  # rows come group by group, in group-code order (set by the fast path)
        runs = self._trajectory_runs()  # rows in the agent's order: codes from one entry per trajectory
        checked = runs is not None
        if not checked:
            self.group_code, self.n_groups = factorize(self.group_id, "group_id")
            self.traj_code, self.n_trajectories = factorize(self.traj_id, "traj_id")
            self.traj_length = np.bincount(self.traj_code, minlength=self.n_trajectories)
            self.traj_group = np.zeros(self.n_trajectories, dtype=np.int64)
            self.traj_group[self.traj_code] = self.group_code  # one row's group per trajectory ...
            moved = self.traj_group[self.traj_code] != self.group_code  # ... which every row must share
            if np.any(moved):
                self._fail_group(int(np.flatnonzero(moved)[0]))
        self.group_size = np.bincount(self.traj_group, minlength=self.n_groups)

        longest = int(self.traj_length.max(initial=0))
        shortfall = longest - self.traj_length  # ranks: longest first, ties by code
        if longest < 2**16:
            shortfall = shortfall.astype(np.uint16)  # numpy's stable sort of 16-bit keys is a radix sort
        longest_first = np.argsort(shortfall, kind="stable")
        self.traj_rank = np.empty(self.n_trajectories, dtype=np.int64)
        self.traj_rank[longest_first] = np.arange(self.n_trajectories)
        ended = np.cumsum(np.bincount(self.traj_length, minlength=longest + 1))  # trajectories with T ≤ t
        self.active = self.n_trajectories - ended[:longest]  # trajectories that have a step t
        self.step_offset = np.concatenate([[0], np.cumsum(self.active)])
        if not checked and n and (self.step.min() < 0 or self.step.max() >= longest):
            self._fail_steps()
        self.position = self.step_offset[self.step] + self.traj_rank[self.traj_code]
        # rows → positions is one-to-one iff every trajectory has steps 0..T-1 exactly once
        # (a step outside 0..T-1 lands in another block, since every block below T_max is non-empty)
        if not checked:
            taken = np.bincount(self.position, minlength=n)
            if taken.size != n or np.any(taken != 1):
                self._fail_steps()
        self.order = np.empty(n, dtype=np.int64)
        if checked:  # block t holds step t of the trajectories ranked < active[t]: first row + t
            first_row, run_traj = runs
            first_by_rank = np.empty(self.n_trajectories, dtype=np.int64)
            first_by_rank[self.traj_rank[run_traj]] = first_row
            for t in range(self.active.size):
                np.add(first_by_rank[:self.active[t]], t, out=self.order[self.step_offset[t]:self.step_offset[t + 1]])
        else:
            self.order[self.position] = np.arange(n)
        for name in ("group_code", "traj_code", "traj_length", "traj_group", "group_size", "traj_rank",
                     "active", "step_offset", "position", "order"):
            _read_only(getattr(self, name))

    def _trajectory_runs(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Fast path for rows in the agent's order: sets the codes and returns (first row, trajectory code)
        of each run, or returns None for the general path.

        The agent hands rows trajectory by trajectory, steps 0..T-1 in order. Then each
        trajectory is a run of rows that starts at step 0, and the group and trajectory
        codes are factorized from one entry per run instead of one per row. The checks
        here are exactly what the general path checks: steps 0..T-1 without gaps or
        repeats, a traj_id never reused by another run, one group per trajectory. Any
        other order (or str ids) returns None and the general path does the work (and
        names the first offending row if the batch is malformed).
        """
        group_id, traj_id, step = self.group_id, self.traj_id, self.step
        if not (isinstance(group_id, np.ndarray) and isinstance(traj_id, np.ndarray)) or step.size == 0:
            return None
        starts = step == 0
        if not starts[0] or not np.all((np.diff(step) == 1) | starts[1:]):
            return None  # not runs of steps 0, 1, 2, ...
        if np.any((traj_id[1:] == traj_id[:-1]) == starts[1:]) or np.any((group_id[1:] != group_id[:-1]) > starts[1:]):
            return None  # a run that changes trajectory or group midway, or a trajectory split over runs
        first = np.flatnonzero(starts)
        run_traj, n_trajectories = factorize(traj_id[first])  # the general path's numbering: by id
        if n_trajectories != first.size:
            return None  # a traj_id reused by two runs
        run_group, self.n_groups = factorize(group_id[first])
        self.rows_by_group = bool(np.all(run_group[1:] >= run_group[:-1]))
        run_length = np.diff(first, append=step.size)
        self.n_trajectories = n_trajectories
        self.traj_code = np.repeat(run_traj, run_length)
        self.group_code = np.repeat(run_group, run_length)
        self.traj_length = np.empty(self.n_trajectories, dtype=np.int64)
        self.traj_length[run_traj] = run_length
        self.traj_group = np.empty(self.n_trajectories, dtype=np.int64)
        self.traj_group[run_traj] = run_group
        return first, run_traj

    def _fail_group(self, row: int) -> None:
        traj = self.traj_code[row]
        other = int(np.flatnonzero((self.traj_code == traj) & (self.group_code != self.group_code[row]))[0])
        first, second = sorted((row, other))
        raise ValueError(f"StepBatch: trajectory {_shown(self.traj_id, row)!r} appears in groups "
                         f"{_shown(self.group_id, first)!r} (row {first}) and {_shown(self.group_id, second)!r} "
                         f"(row {second}); a trajectory belongs to exactly one group (traj_id must be unique "
                         "across the batch)")

    def _fail_steps(self) -> None:
        """Find a trajectory whose steps are not 0..T-1 and say so (error path only)."""
        length = self.traj_length[self.traj_code]
        outside = (self.step < 0) | (self.step >= length)
        if np.any(outside):
            row = int(np.flatnonzero(outside)[0])
        else:  # all steps in range, so some (trajectory, step) repeats
            key = self.traj_code * (int(length.max()) + 1) + self.step
            _, first, count = np.unique(key, return_index=True, return_counts=True)
            row = int(first[np.flatnonzero(count > 1)[0]])
        steps = np.sort(self.step[self.traj_code == self.traj_code[row]])
        shown = steps[:20].tolist() + (["..."] if steps.size > 20 else [])
        raise ValueError(f"StepBatch: trajectory {_shown(self.traj_id, row)!r} has steps {shown}; "
                         f"the steps of a trajectory must be 0..T-1 with no gaps or repeats (row {row})")

    # --- canonical order helpers ----------------------------------------------------
    def canonical(self, row_values) -> np.ndarray:
        """Row-order values rearranged into canonical order."""
        return np.asarray(row_values)[self.order]

    def to_rows(self, canonical_values) -> np.ndarray:
        """Canonical-order values rearranged back into the batch's row order."""
        return np.asarray(canonical_values)[self.position]

    @cached_property
    def anchor_key(self) -> np.ndarray:
        """int64 key per row: the anchor itself for int anchors, else its Python hash (computed on first use)."""
        if isinstance(self.anchor, np.ndarray):
            return self.anchor
        return _read_only(hash_keys(self.anchor, "anchor"))


# --- shared math -----------------------------------------------------------------------

def normalize_in_groups(values, group, n_groups, normalize="mean_std", eps=1e-6, *,
                        weight=None, singleton=None, singleton_rule="raw", first=None, entries=None, ddof=1):
    """Group-relative advantage `(x − mean_g x) / (std_g x + eps)` for every entry.

    docs/algorithms.md, GRPO and GiGPO Eq. 3 / Eq. 7. `normalize="mean"` drops the division.
    The std is the unbiased sample std (ddof=1), as `torch.std` in the reference code;
    `ddof=0` gives the population std (`torch.std(unbiased=False)`, HGPO's reference).

    Args:
        values: one float per entry. group: the entry's group code (0..n_groups-1).
        weight: how many step rows each entry stands for (statistics as if each entry
            were repeated `weight` times); default 1.
        singleton: per-group bool marking groups that get the singleton rule; default:
            groups with a single entry.
        singleton_rule: "raw" → mean 0, std 1 (the value passes through, divided by
            1 + eps in mean_std mode); "zero" → advantage 0.
        first, entries: optional, when the caller already has them: per group, the index
            of one of its entries and its number of entries.

    A group whose values are all equal gets exactly 0 (not NaN): the mean is taken
    relative to a member of the group, so it equals that value exactly there.
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize={normalize!r} is not one of {NORMALIZE_MODES}")
    values = np.asarray(values, dtype=np.float64)
    if entries is None:
        entries = np.bincount(group, minlength=n_groups)
    count = entries if weight is None else np.bincount(group, weights=weight, minlength=n_groups)
    if first is None:
        member = np.zeros(n_groups)
        member[group] = values  # any one member of each group
    else:
        member = values[first]
    shifted = values - member[group]
    shifted_sum = np.bincount(group, shifted if weight is None else weight * shifted, minlength=n_groups)
    mean = member + shifted_sum / np.maximum(count, 1)  # exactly the value for constant groups
    lone = entries == 1 if singleton is None else np.asarray(singleton, dtype=bool)
    # masks applied by multiplying with 0/1 (random boolean-mask writes cost ~5x more)
    mean *= ~lone  # singleton: mean 0 (and std 1 below)
    deviation = values - mean[group]
    lone_scale = (1.0 / (1.0 + eps) if normalize == "mean_std" else 1.0) if singleton_rule == "raw" else 0.0
    if normalize == "mean_std":
        squares = deviation * deviation
        squares_sum = np.bincount(group, squares if weight is None else weight * squares, minlength=n_groups)
        scale = 1.0 / (np.sqrt(squares_sum / np.maximum(count - ddof, 1)) + eps)
        scale *= ~lone
    else:
        scale = (~lone).astype(np.float64)
    if lone_scale:
        scale += lone_scale * lone
    return deviation * scale[group]


def discounted_suffix_sum(batch: StepBatch, canonical_values, discount: float) -> np.ndarray:
    """`out_t = Σ_{k≥0} discount^k · x_{t+k}` to the end of each trajectory, canonical order.

    Walks the step blocks backwards: the trajectories with a step t+1 are the first
    `active[t+1]` slots of block t, so one slice operation per step index does it.
    """
    out = np.array(canonical_values, dtype=np.float64)
    offset, active = batch.step_offset, batch.active
    for t in range(active.size - 2, -1, -1):
        width = active[t + 1]  # trajectories that go on after step t
        out[offset[t]:offset[t] + width] += discount * out[offset[t + 1]:offset[t + 1] + width]
    return out


def step_returns(batch: StepBatch, gamma: float, reward=None) -> np.ndarray:
    """Discounted return from each step to the end of its trajectory, in row order.

    `R_t = Σ_{k≥t} γ^{k−t} r_k` (GiGPO Eq. 5); the value after a trajectory's last
    step is 0. `reward` overrides `batch.reward` (one float per row, row order).
    """
    check_unit_interval("gamma", gamma)
    reward = batch.reward if reward is None else np.asarray(reward, dtype=np.float64)
    return batch.to_rows(discounted_suffix_sum(batch, batch.canonical(reward), gamma))


def episode_returns(batch: StepBatch, reward=None) -> np.ndarray:
    """`R(τ) = Σ_t r_t`, one float per trajectory, indexed by `batch.traj_code`.

    Summed in step order whatever the row order. `reward` overrides `batch.reward`
    (one float per row, row order).
    """
    reward = batch.reward if reward is None else np.asarray(reward, dtype=np.float64)
    return trajectory_sums(batch, batch.canonical(reward))


def trajectory_sums(batch: StepBatch, canonical_values) -> np.ndarray:
    """`Σ_t x_t` per trajectory (indexed by `batch.traj_code`) of canonical-order values.

    One slice addition per step index, in step order, like `discounted_suffix_sum`: block t
    adds into the first `active[t]` trajectories by rank. Each trajectory's sum is taken
    0 + x_0 + x_1 + ..., whatever the row order.
    """
    values = np.asarray(canonical_values, dtype=np.float64)
    by_rank = np.zeros(batch.n_trajectories)
    offset, active = batch.step_offset, batch.active
    for t in range(active.size):
        by_rank[:active[t]] += values[offset[t]:offset[t + 1]]
    return by_rank[batch.traj_rank]


# --- overlapping independent work -------------------------------------------------------

_executor: tuple[int, ThreadPoolExecutor] | None = None
_executor_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _executor_lock
    _executor_lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_background(rows: int, fn, *args) -> Future:
    """Run `fn(*args)` in credit's one background thread when `rows` ≥ `BACKGROUND_MIN_ROWS`.

    numpy's sort, ufuncs and fancy indexing release the GIL on numeric arrays, so a
    sort-heavy chain (GiGPO's step-group sort) runs beside the caller's bincount-heavy
    work on a second core. Smaller batches run `fn` at once in the caller's thread.
    Either way the result is the same: the work is the same numpy calls in the same
    order. The executor is re-created after a fork (the child does not inherit the thread),
    and work submitted from the background thread itself runs inline.
    """
    global _executor
    if (BACKGROUND_MIN_ROWS and rows >= BACKGROUND_MIN_ROWS and (os.cpu_count() or 1) >= 2
            and not threading.current_thread().name.startswith("steprl-credit")):  # never wait on itself
        with _executor_lock:
            if _executor is None or _executor[0] != os.getpid():
                _executor = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="steprl-credit"))
            try:
                return _executor[1].submit(fn, *args)
            except RuntimeError:  # interpreter shutting down: no new threads, run it here
                pass
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # re-raised by future.result(), as from the thread
        future.set_exception(exc)
    return future


class WorkPool:
    """Jobs that any thread may take: credit's background thread and the caller share them.

    `in_background(rows, pool.work)` lets the background thread start on the jobs; the
    caller does its own work, then `pool.finish()` takes whatever jobs are left, waits
    for the ones running elsewhere, and returns every job's result in job order (or
    re-raises the first job's error). Run inline, `work` simply does every job.
    """

    def __init__(self, jobs):
        self._jobs = list(jobs)
        self._results: list = [None] * len(self._jobs)
        self._errors: list[BaseException | None] = [None] * len(self._jobs)
        self._next, self._left = 0, len(self._jobs)
        self._lock = threading.Lock()
        self._done = threading.Event()
        if not self._jobs:
            self._done.set()

    def work(self) -> None:
        """Take and run jobs until none is left to take."""
        while True:
            with self._lock:
                index = self._next
                if index >= len(self._jobs):
                    return
                self._next += 1
            try:
                self._results[index] = self._jobs[index]()
            except BaseException as exc:  # handed to finish()'s caller
                self._errors[index] = exc
            with self._lock:
                self._left -= 1
                if not self._left:
                    self._done.set()

    def finish(self) -> list:
        """Help with the jobs left, wait for all, and return their results in job order."""
        self.work()
        self._done.wait()
        for error in self._errors:
            if error is not None:
                raise error
        return self._results


# --- parameter checks shared by the estimators ------------------------------------------

def check_unit_interval(name: str, value) -> None:
    if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} must be a number in [0, 1]")


def check_positive(name: str, value) -> None:
    if not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name}={value!r} must be a number > 0")


def check_finite(name: str, value) -> None:
    if not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")


# --- factorization: equal keys -> equal integer codes ---------------------------------------

def factorize(keys, field: str = "key") -> tuple[np.ndarray, int]:
    """(codes, k): codes in 0..k-1, equal codes ⇔ equal keys, numbered in key order.

    Integer keys are coded exactly. Other keys (str, ...) are coded by their 64-bit
    Python hash (SipHash with a per-process key): two different keys share a code only
    if their hashes collide, chance ≈ D²/2^65 for D distinct keys (≈ 3e-15 for 300
    anchors of a group). Checking every row's string against a representative would
    cost more than all the rest of GiGPO, so it is not done; pass int state hashes
    when that chance matters. The numbering never depends on the row order.
    """
    return factorize_pairs(None, 1, keys if isinstance(keys, np.ndarray) else hash_keys(keys, field))


def hash_keys(keys, field: str = "key") -> np.ndarray:
    """int64 Python hash of every key (C-level `map`, no Python loop)."""
    try:
        return np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys))
    except TypeError:
        bad = next(i for i, key in enumerate(keys) if not _is_hashable(key))
        raise TypeError(f"StepBatch: field {field!r} has unhashable value {keys[bad]!r} at row {bad}; "
                        "ids and anchors must be str or int") from None


def factorize_pairs(major, n_major: int, minor) -> tuple[np.ndarray, int]:
    """Exact codes of (major, minor) pairs, numbered in (major, minor) order.

    `major`: codes in 0..n_major-1 (None: all 0); `minor`: any int64 keys. Pairs that
    span a small range: an O(n) presence table. Otherwise the sort of `sort_pairs`.
    """
    minor = np.asarray(minor).astype(np.int64, copy=False)
    n = minor.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    low, high = int(minor.min()), int(minor.max())
    span = high - low + 1
    if n_major * span < 4 * n + 1024:  # presence table over every possible pair
        pair = minor - low if low else minor
        if major is not None:
            pair = major * span + pair
        present = np.zeros(n_major * span, dtype=bool)
        present[pair] = True
        rank = np.cumsum(present, dtype=np.int64) - 1
        return rank[pair], int(rank[-1]) + 1
    segments = sort_pairs(major, n_major, minor)
    codes = np.empty(n, dtype=np.int64)
    codes[segments.rows] = segments.code
    return codes, segments.count


class PairSegments:
    """Entries sorted by (major, minor, tiebreak): equal pairs are contiguous segments.

    Attributes: `tiebreak` (the tiebreak value at each sorted place), `starts` (bool per
    sorted place: a new segment starts there), `count` (number of segments), and, computed
    on first use, `rows` (entry index at each sorted place) and `code` (segment number at
    each sorted place: 0..count-1, non-decreasing, in (major, minor) order). Callers that
    need only some places (GiGPO's shared step groups) map just those through
    `rows_of_tiebreak` instead of paying for `rows` at every place.
    """

    def __init__(self, tiebreak, starts, rows_of_tiebreak=None, rows=None):
        self.tiebreak, self.starts = tiebreak, starts
        self.rows_of_tiebreak = rows_of_tiebreak  # None: the tiebreak is the entry index
        if rows is not None:
            self.__dict__["rows"] = rows
        self.count = int(np.count_nonzero(starts))

    @cached_property
    def rows(self) -> np.ndarray:
        return self.tiebreak if self.rows_of_tiebreak is None else np.asarray(self.rows_of_tiebreak)[self.tiebreak]

    @cached_property
    def code(self) -> np.ndarray:
        return np.cumsum(self.starts, dtype=np.int64) - 1


def sort_pairs(major, n_major: int, minor, tiebreak=None, rows_of_tiebreak=None, *, n_tiebreak: int | None = None,
               row_offset: int = 0) -> PairSegments:
    """Sort (major, minor) pairs into contiguous segments, one `np.sort` of packed keys.

    Packs [major | minor − min(minor) | tiebreak] into 64 bits and sorts once, far faster
    than the argsort inside `np.unique`. `tiebreak` (default: the entry index) must be
    distinct values in 0..n_tiebreak-1 (default n, i.e. a permutation), and
    `rows_of_tiebreak` maps each value to its entry's row; it orders the entries
    within a segment (estimators pass canonical positions, so a segment's entries are
    in canonical order whatever the row order). The entries may be a slice of a batch's
    rows starting at `row_offset` (GiGPO sorts a batch in chunks of whole groups). When
    the minor key does not fit (hashes), its low bits are left out of the sort and the
    full keys compared afterwards; only if two different keys shared the kept bits does
    it fall back to `np.unique`'s codes (then sorted by them).
    """
    minor = np.asarray(minor).astype(np.int64, copy=False)
    n = minor.size
    low, high = int(minor.min()), int(minor.max())
    row_bits = max(int((n if n_tiebreak is None else n_tiebreak) - 1).bit_length(), 1)
    major_bits = int(n_major - 1).bit_length()
    minor_bits = 64 - row_bits - major_bits
    if minor_bits < 16:  # too little room left to pack: exact, slower
        return _segments_by_unique(major, minor, tiebreak, rows_of_tiebreak, row_offset)
    dropped = max((high - low).bit_length() - minor_bits, 0)  # low minor bits that do not fit
    packed = minor.view(np.uint64) - np.uint64(low % 2**64)  # minor − min, unsigned (wraps correctly)
    if dropped:
        packed >>= np.uint64(dropped)
    packed <<= np.uint64(row_bits)
    packed |= np.arange(n, dtype=np.uint64) if tiebreak is None else np.asarray(tiebreak).view(np.uint64)
    if major is not None:
        packed |= np.asarray(major, dtype=np.int64).view(np.uint64) << np.uint64(64 - major_bits)
    packed.sort()
    sorted_tiebreak = np.bitwise_and(packed, np.uint64((1 << row_bits) - 1)).view(np.int64)
    starts = np.empty(n, dtype=bool)  # sorted place starts a new pair: its kept bits differ
    starts[0] = True
    np.greater_equal(packed[1:] ^ packed[:-1], np.uint64(1 << row_bits), out=starts[1:])
    segments = PairSegments(sorted_tiebreak, starts, None if tiebreak is None else rows_of_tiebreak)
    if dropped:  # equal kept bits must mean equal keys
        sorted_minor = minor[segments.rows - row_offset if row_offset else segments.rows]
        if np.any((sorted_minor[1:] != sorted_minor[:-1]) > starts[1:]):
            return _segments_by_unique(major, minor, tiebreak, rows_of_tiebreak, row_offset)
    return segments


def factorize_integers(keys) -> tuple[np.ndarray, int]:
    """(codes, k) for an integer array, exact, codes in the order of the sorted values."""
    return factorize_pairs(None, 1, keys)


def _pairs_by_unique(major, minor) -> tuple[np.ndarray, int]:
    minor_code, n_minor = _unique_codes(minor)
    return (minor_code, n_minor) if major is None else _unique_codes(major * n_minor + minor_code)


def _segments_by_unique(major, minor, tiebreak, rows_of_tiebreak, row_offset: int = 0) -> PairSegments:
    codes, n_codes = _pairs_by_unique(major, minor)
    n = codes.size
    tiebreak = np.arange(n) if tiebreak is None else np.asarray(tiebreak)
    order = np.lexsort((tiebreak, codes))
    sorted_codes = codes[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=starts[1:])
    return PairSegments(tiebreak[order], starts, rows=order + row_offset if row_offset else order)


def _unique_codes(keys) -> tuple[np.ndarray, int]:
    unique, codes = np.unique(keys, return_inverse=True)
    return codes.astype(np.int64), unique.size


def _is_hashable(key) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


# --- field conversion -------------------------------------------------------------------

def _convert_others(n: int, reward, valid, progress, value) -> tuple:
    """StepBatch's reward, valid, progress and value fields, converted and checked in that order."""
    return (_read_only(_as_float_array("reward", reward)),
            _read_only(np.ones(n, dtype=bool) if valid is None else _as_bool_array("valid", valid)),
            None if progress is None else _read_only(_as_float_array("progress", progress)),
            None if value is None else _read_only(_as_float_array("value", value)))


def _length(name: str, field) -> int:
    try:
        return len(field)
    except TypeError:
        raise TypeError(f"StepBatch: field {name!r} must be a list or array with one entry per step row, "
                        f"got {type(field).__name__}") from None


def _shown(keys, row: int):
    """The key at `row` as a plain Python value, for error messages."""
    key = keys[row]
    return key.item() if isinstance(key, np.generic) else key


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _as_keys(field):
    """Ids and anchors: an int64 array when the keys are integers, else a tuple of the keys."""
    if isinstance(field, np.ndarray):
        if field.ndim != 1:
            raise ValueError(f"StepBatch: ids and anchors must be one-dimensional, got shape {field.shape}")
        if field.dtype.kind in "biu":
            return _read_only(field.astype(np.int64))
        return tuple(field.tolist())
    field = tuple(field)
    if field and isinstance(field[0], (int, np.integer)) and not isinstance(field[0], bool):
        as_array = np.array(field)  # all integers? then exact integer codes, else hashes
        if as_array.dtype.kind in "iu" and as_array.ndim == 1:
            return _read_only(as_array.astype(np.int64))
    return field


def _as_float_array(name: str, field) -> np.ndarray:
    try:
        array = np.array(field, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"StepBatch: field {name!r} must hold numbers, got {_first_non_number(field)!r}") from None
    if array.ndim != 1:
        raise ValueError(f"StepBatch: field {name!r} must be one-dimensional, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"StepBatch: field {name!r} has non-finite value {array[row]} at row {row}")
    return array


def _as_entropy_array(field) -> np.ndarray:
    """Entropies as float64, None → NaN (unknown); a negative or infinite value is an error."""
    if not isinstance(field, np.ndarray) or field.dtype == object:
        field = [np.nan if value is None else value for value in field]
    try:
        array = np.array(field, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"StepBatch: field 'entropy' must hold numbers or None, "
                        f"got {_first_non_number(field)!r}") from None
    if array.ndim != 1:
        raise ValueError(f"StepBatch: field 'entropy' must be one-dimensional, got shape {array.shape}")
    bad = np.isinf(array) | (array < 0)
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"StepBatch: field 'entropy' has value {array[row]} at row {row}; an entropy is a finite "
                         "number >= 0 (NaN or None where unknown)")
    return array


def _as_int_array(name: str, field) -> np.ndarray:
    array = np.asarray(field)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu" or array.ndim != 1:
        raise TypeError(f"StepBatch: field {name!r} must hold integers (one per row), got dtype {array.dtype} "
                        f"and shape {array.shape}")
    return array.astype(np.int64)


def _as_bool_array(name: str, field) -> np.ndarray:
    array = np.asarray(field)
    if array.ndim != 1:
        raise ValueError(f"StepBatch: field {name!r} must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind == "b":
        return array.copy()
    if array.dtype.kind in "iuf":
        bad = ~np.isin(array, (0, 1))
        if not np.any(bad):
            return array.astype(bool)
        row = int(np.flatnonzero(bad)[0])
        raise TypeError(f"StepBatch: field {name!r} must hold booleans, got {array[row].item()!r} at row {row}")
    raise TypeError(f"StepBatch: field {name!r} must hold booleans, got dtype {array.dtype}")


def _first_non_number(field):
    for value in field:
        try:
            float(value)
        except (TypeError, ValueError):
            return value
    return field
