"""GiGPO (Feng et al. 2025, "Group-in-Group Policy Optimization for LLM Agent Training").

docs/algorithms.md § GiGPO. Two levels of group-relative advantage, no critic:

0. Invalid-action penalty (from the reference code): r_t ← r_t − λ for rows with valid=False,
   before everything below, so it lowers the row's R_t and its trajectory's R(τ).
1. Episode level, Eq. 3: A^E = (R(τ) − mean_g R) / (std_g R + ε), R(τ) = Σ_t r_t.
   As in the reference code the statistics run over all *step rows* of the group
   (each row carries its trajectory's R(τ), so longer trajectories weigh more); std is
   the unbiased sample std. Singleton group (K = 1 trajectory): mean 0, std 1.
2. Step returns, Eq. 5: R_t = Σ_{k≥t} γ^{k−t} r_k.
3. Anchor-state grouping, Eq. 6: within a group, rows with identical anchors form a
   step group. Similarity mode: a distinct anchor joins the first existing cluster
   whose representative has `difflib.SequenceMatcher(None, anchor, rep).ratio()` ≥
   threshold, else starts a new cluster. Distinct anchors of a group are visited by
   (first step index they appear at, anchor text), so the clusters do not depend on
   the row order (the reference code visits rows in batch order).
4. Step level, Eq. 7: A^S = (R_t − mean_S R_t) / (std_S R_t + ε) over the step group
   S; singleton step group: A^S = 0.
5. Combined, Eq. 8: A = A^E + ω · A^S.

`normalize="mean"` drops both divisions by the std (the paper's WebShop setting).
Two deliberate readings, both documented in docs/credit.md:
- the singleton episode rule applies to groups with one trajectory; the reference
  code applies it to groups with one row, so for K = 1 with T > 1 it gives A^E = 0
  where this gives R(τ)/(1 + ε);
- the penalty is subtracted from r_t before R_t and R(τ) are computed (the
  docs/algorithms.md statement); the reference code subtracts λ from the row's episode
  score and from its already-discounted R_t, so earlier steps do not feel it.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from functools import partial
from typing import NamedTuple

import numpy as np

from .batch import (
    StepBatch,
    check_finite,
    check_positive,
    check_unit_interval,
    discounted_suffix_sum,
    PairSegments,
    factorize_pairs,
    WorkPool,
    in_background,
    normalize_in_groups,
    sort_pairs,
    trajectory_sums,
)
from .registry import register


SIZE_BUCKETS = ((1, 1, "1"), (2, 2, "2"), (3, 4, "3_4"), (5, 8, "5_8"), (9, 16, "9_16"), (17, None, "17_plus"))


def diagnostics(batch: StepBatch, advantages, *, gamma: float = 0.95, step_weight: float = 1.0,
                normalize: str = "mean_std", eps: float = 1e-6, invalid_penalty: float = 0.1, similarity: bool = False,
                similarity_threshold: float = 0.95) -> dict[str, float | int]:
    """GiGPO's own diagnostics (beside `credit.diagnose`'s generic ones), under ``credit/``.

    anchor-state grouping (Eq. 6)
        step_groups, step_group_size_mean, step_group_size_max
        step_group_size_hist_1, _2, _3_4, _5_8, _9_16, _17_plus
                                share of step groups whose size falls in the bucket
        nonsingleton_share      share of rows in step groups of size ≥ 2 (rows with A^S ≠ 0 possible)
    advantage levels (Eq. 3, 7)
        adv_episode_mean, adv_episode_std     A^E over rows
        adv_step_mean, adv_step_std           A^S over rows
        adv_step_share          mean over rows of |ω A^S| / (|A^E| + |ω A^S|) (0 where both are 0)
    zero_std_group_share        as the generic key, on the penalized episode returns GiGPO compares
    """
    from .diagnostics import mean, std, zero_std_group_share

    episode_advantage, step_advantage = advantage_levels(
        batch, gamma=gamma, normalize=normalize, eps=eps, invalid_penalty=invalid_penalty, similarity=similarity,
        similarity_threshold=similarity_threshold)
    step_group, n_step_groups = step_groups(batch, similarity=similarity, similarity_threshold=similarity_threshold)
    step_group_size = np.bincount(step_group, minlength=n_step_groups)
    weighted_step = np.abs(step_weight * step_advantage)
    magnitude = np.abs(episode_advantage) + weighted_step
    metrics: dict[str, float | int] = {
        "credit/zero_std_group_share": zero_std_group_share(batch, penalized_reward(batch, invalid_penalty)),
        "credit/step_groups": n_step_groups,
        "credit/step_group_size_mean": mean(step_group_size),
        "credit/step_group_size_max": int(step_group_size.max(initial=0)),
    }
    for low, high, label in SIZE_BUCKETS:
        in_bucket = (step_group_size >= low) & (True if high is None else step_group_size <= high)
        metrics[f"credit/step_group_size_hist_{label}"] = mean(in_bucket)
    metrics.update({
        "credit/nonsingleton_share": mean(step_group_size[step_group] > 1),
        "credit/adv_episode_mean": mean(episode_advantage),
        "credit/adv_episode_std": std(episode_advantage),
        "credit/adv_step_mean": mean(step_advantage),
        "credit/adv_step_std": std(step_advantage),
        "credit/adv_step_share": mean(np.divide(weighted_step, magnitude, out=np.zeros_like(magnitude),
                                                where=magnitude > 0)),
    })
    return metrics


def details(batch: StepBatch, *, gamma: float = 0.95, step_weight: float = 1.0, normalize: str = "mean_std",
            eps: float = 1e-6, invalid_penalty: float = 0.1, similarity: bool = False,
            similarity_threshold: float = 0.95) -> dict[str, np.ndarray]:
    """GiGPO's per-step quantities (``credit.details("gigpo", ...)``), row order; A = A_E + ω·A_S.

        R_tau            the trajectory's return R(τ), after the invalid-action penalty
        A_E              episode-level advantage (Eq. 3)
        R_t              discounted step return (Eq. 5)
        A_S              step-level advantage within the anchor-state group (Eq. 7; 0 when alone)
        step_group_size  rows of the group that share the row's anchor state (Eq. 6)
    """
    check_finite("step_weight", step_weight)
    parts: dict = {}
    episode_advantage, step_advantage = _levels(batch, gamma, normalize, eps, invalid_penalty, similarity,
                                                similarity_threshold, None, parts)
    return {"R_tau": parts["R_tau"], "A_E": episode_advantage, "R_t": parts["R_t"], "A_S": step_advantage,
            "step_group_size": parts["step_group_size"]}


@register("gigpo", text_anchors=lambda params: params.get("similarity", False), diagnostics=diagnostics,
          details=details)
def advantages(batch: StepBatch, *, gamma: float = 0.95, step_weight: float = 1.0, normalize: str = "mean_std",
               eps: float = 1e-6, invalid_penalty: float = 0.1, similarity: bool = False,
               similarity_threshold: float = 0.95) -> np.ndarray:
    """GiGPO advantage A = A^E + ω·A^S of each step row (Eq. 8).

    Args:
        gamma: discount γ of the step returns (Eq. 5).
        step_weight: ω, weight of the step-level advantage (Eq. 8).
        normalize: "mean_std" (ALFWorld setting) or "mean" (WebShop setting), both levels.
        eps: added to the std before dividing.
        invalid_penalty: λ subtracted from the reward of rows with valid=False.
        similarity: group anchors by string similarity instead of exact equality.
        similarity_threshold: minimum `SequenceMatcher.ratio()` to join a cluster.
    """
    check_finite("step_weight", step_weight)
    return _levels(batch, gamma, normalize, eps, invalid_penalty, similarity, similarity_threshold, step_weight)


def advantage_levels(batch: StepBatch, *, gamma: float = 0.95, normalize: str = "mean_std", eps: float = 1e-6,
                     invalid_penalty: float = 0.1, similarity: bool = False,
                     similarity_threshold: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(A^E, A^S) per step row, row order: GiGPO's two levels before Eq. 8 combines them."""
    return _levels(batch, gamma, normalize, eps, invalid_penalty, similarity, similarity_threshold, None)


def _levels(batch: StepBatch, gamma: float, normalize: str, eps: float, invalid_penalty: float, similarity: bool,
            similarity_threshold: float, step_weight: float | None, parts: dict | None = None):
    """Both levels; `step_weight` given: A^E + ω·A^S (Eq. 8) in one array, else the pair (A^E, A^S).

    `parts` (a dict, with `step_weight=None`) receives the intermediates of `details`, row order:
    ``R_tau``, ``R_t`` and ``step_group_size``.
    """
    check_unit_interval("gamma", gamma)
    check_positive("eps", eps)
    check_finite("invalid_penalty", invalid_penalty)
    # The step-group sort (Eq. 6) needs nothing below; on big batches it runs in a background
    # thread, beside the episode level and the step returns.
    pending = _start_shared_step_groups(batch, similarity, similarity_threshold) if len(batch) else None
    reward = batch.canonical(penalized_reward(batch, invalid_penalty))  # canonical order from here on

    # Eq. 3: episode level, statistics over the group's step rows (weight = trajectory length)
    episode_return = trajectory_sums(batch, reward)
    episode_advantage = normalize_in_groups(
        episode_return, batch.traj_group, batch.n_groups, normalize, eps,
        weight=batch.traj_length, singleton=batch.group_size == 1, singleton_rule="raw")[batch.traj_code]

    # Eq. 5: discounted step returns, canonical order
    step_return = discounted_suffix_sum(batch, reward, gamma)

    # Eq. 6 + Eq. 7: step level within anchor-state groups; singleton step group → 0. The rows
    # are sorted into contiguous step groups (canonical order inside each), so every group
    # statistic reads and writes memory in order instead of scattering; only the rows of
    # step groups with ≥ 2 members are normalized (the rest have A^S = 0).
    shared_advantage = None
    if pending is not None:
        groups = pending()
        shared_advantage = normalize_in_groups(step_return[groups.positions], groups.code, groups.count, normalize,
                                               eps, singleton_rule="zero", first=groups.first, entries=groups.size)
    if step_weight is None:
        step_advantage = np.zeros(len(batch))
        if shared_advantage is not None:
            step_advantage[groups.rows] = shared_advantage
        if parts is not None:
            step_group_size = np.ones(len(batch), dtype=np.int64)
            if shared_advantage is not None:
                step_group_size[groups.rows] = groups.size[groups.code]
            parts.update(R_tau=episode_return[batch.traj_code], R_t=batch.to_rows(step_return),
                         step_group_size=step_group_size)
        return episode_advantage, step_advantage
    if shared_advantage is not None:  # Eq. 8; rows outside shared step groups keep A^E (+ ω·0)
        episode_advantage[groups.rows] += shared_advantage if step_weight == 1 else step_weight * shared_advantage
    return episode_advantage


def episode_advantage_over_rows(batch: StepBatch, canonical_reward, normalize: str, eps: float) -> np.ndarray:
    """GiGPO's episode level as verl-agent's ``episode_norm_reward`` computes it, canonical order.

    R(τ) of the row's trajectory, normalized over the group's step rows (unbiased std); a
    group of one row gets mean 0, std 1. (``advantages`` above applies the singleton rule to
    groups of one trajectory; the newer estimators that build on this level follow their
    official code.)
    """
    episode = trajectory_sums(batch, canonical_reward)[batch.canonical(batch.traj_code)]
    return normalize_in_groups(episode, batch.canonical(batch.group_code), batch.n_groups, normalize, eps)


def penalized_reward(batch: StepBatch, invalid_penalty: float) -> np.ndarray:
    """r_t − λ·[action invalid] per row, row order (the invalid-action penalty)."""
    if invalid_penalty == 0 or batch.valid.all():
        return batch.reward
    return np.where(batch.valid, batch.reward, batch.reward - invalid_penalty)


def step_groups(batch: StepBatch, *, similarity: bool = False,
                similarity_threshold: float = 0.95) -> tuple[np.ndarray, int]:
    """Anchor-state grouping (Eq. 6): (step-group code per row in row order, number of step groups).

    Rows share a code iff they are in the same group and have the same anchor (exact
    mode) or their anchors fall into the same similarity cluster. Cached on the batch.
    """
    if similarity:
        check_unit_interval("similarity_threshold", similarity_threshold)
        if similarity_threshold == 0:
            raise ValueError("similarity_threshold=0 would put every anchor of a group in one step group; use (0, 1]")
    key = ("step_groups", bool(similarity), float(similarity_threshold) if similarity else None)
    if key not in batch._cache:
        if similarity:
            codes, count = factorize_pairs(batch.group_code, batch.n_groups, batch.anchor_key)
            codes, count = _similarity_step_groups(batch, codes, count, similarity_threshold)
        else:
            codes = np.zeros(len(batch), dtype=np.int64)
            count = 0
            if len(batch):
                segments = step_segments(batch)
                codes[segments.rows] = segments.code
                count = segments.count
        codes.flags.writeable = False
        batch._cache[key] = (codes, count)
    return batch._cache[key]


def step_segments(batch: StepBatch, *, similarity: bool = False, similarity_threshold: float = 0.95) -> PairSegments:
    """The batch's rows sorted into contiguous step groups, canonical order within each (cached).

    Exact mode sorts (group, anchor key) pairs directly, tie-broken by canonical position
    (str anchors compared by hash, see `credit.batch.factorize`); similarity mode sorts
    the merged cluster codes of `step_groups`.
    """
    key = ("step_segments", bool(similarity), float(similarity_threshold) if similarity else None)
    if key not in batch._cache:
        if similarity:
            codes, _ = step_groups(batch, similarity=True, similarity_threshold=similarity_threshold)
            batch._cache[key] = sort_pairs(None, 1, codes, batch.position, batch.order)
        else:
            batch._cache[key] = sort_pairs(batch.group_code, batch.n_groups, batch.anchor_key, batch.position,
                                           batch.order)
    return batch._cache[key]


class SharedStepGroups(NamedTuple):
    """The rows of GiGPO's step groups with ≥ 2 rows, sorted by step group (canonical order within each).

    Per such row: `positions` (canonical position), `rows` (row index), `code` (step group
    renumbered 0..count-1, non-decreasing). Per such step group: `first` (index into the
    arrays above of its first row) and `size` (its number of rows).
    """

    positions: np.ndarray
    rows: np.ndarray
    code: np.ndarray
    count: int
    first: np.ndarray
    size: np.ndarray


def shared_step_segments(batch: StepBatch, similarity: bool = False,
                         similarity_threshold: float = 0.95) -> SharedStepGroups:
    """The rows of `step_segments` that lie in step groups of ≥ 2 rows (cached).

    Singleton step groups get A^S = 0 whatever their value, so GiGPO's step level skips
    them; with a few hundred anchors per group about half the rows and most step groups
    are singletons. Everything comes from the segment starts, so no per-place segment
    code is built for the skipped rows.
    """
    key = _shared_key(similarity, similarity_threshold)
    if key not in batch._cache:
        segments = step_segments(batch, similarity=similarity, similarity_threshold=similarity_threshold)
        positions, code, first, size = _shared_places(segments)
        _cache_shared(batch, key, positions, code, first, size)
    return batch._cache[key]


def _shared_key(similarity: bool, similarity_threshold: float) -> tuple:
    return "shared_step_segments", bool(similarity), float(similarity_threshold) if similarity else None


def _start_shared_step_groups(batch: StepBatch, similarity: bool, similarity_threshold: float):
    """Start `shared_step_segments` (in the background on big batches); returns a call that waits for it.

    Rows that come group by group are sorted in chunks of whole groups; the waiting call
    first helps with the chunks no thread has taken yet.
    """
    chunks = None if similarity else _chunk_jobs(batch)
    if chunks is None:
        return in_background(len(batch), shared_step_segments, batch, similarity, similarity_threshold).result
    in_background(len(batch), chunks.work)
    return lambda: _joined_chunks(batch, chunks.finish())


#: Rows per chunk when GiGPO sorts a batch whose rows come group by group (`StepBatch.rows_by_group`)
#: in chunks of whole groups; batches under 4 chunks are sorted in one piece (at 100k rows the
#: caller's own work outlasts half the sort, so chunks only add overhead there).
CHUNK_ROWS = 50_000


def _chunk_jobs(batch: StepBatch) -> WorkPool | None:
    """The exact-mode shared step groups as jobs over chunks of whole groups, or None (one piece).

    With the rows group by group, rows [a, b) between two group starts hold whole groups,
    and sorting the chunks one by one gives the same places as sorting the batch at once
    (the group is the sort's leading key). Two threads can then share the sort. Int
    anchors only: str anchors are hashed on first use, which is one job for one thread.
    """
    n = len(batch)
    if not batch.rows_by_group or n < 4 * CHUNK_ROWS or _shared_key(False, 0) in batch._cache:
        return None
    if not isinstance(batch.anchor, np.ndarray):  # str anchors: hash them all once, in one background job
        return None
    count = min(n // CHUNK_ROWS, batch.n_groups)
    cuts = np.searchsorted(batch.group_code, batch.group_code[np.arange(1, count) * n // count])  # group starts
    bounds = sorted({0, n, *cuts.tolist()})
    if len(bounds) < 3:
        return None
    return WorkPool(partial(_shared_in_chunk, batch, start, stop) for start, stop in zip(bounds, bounds[1:]))


def _shared_in_chunk(batch: StepBatch, start: int, stop: int) -> tuple[np.ndarray, ...]:
    segments = sort_pairs(batch.group_code[start:stop], batch.n_groups, batch.anchor_key[start:stop],
                          batch.position[start:stop], batch.order, n_tiebreak=len(batch), row_offset=start)
    return _shared_places(segments)


def _joined_chunks(batch: StepBatch, parts: list[tuple[np.ndarray, ...]]) -> SharedStepGroups:
    """The chunks' places in one `SharedStepGroups`, as one sort of the whole batch gives them (cached)."""
    key = _shared_key(False, 0)
    code_offset, place_offset, codes, firsts = 0, 0, [], []
    for _, code, first, _ in parts:
        codes.append(code + code_offset)
        firsts.append(first + place_offset)
        code_offset += first.size
        place_offset += code.size
    _cache_shared(batch, key, np.concatenate([part[0] for part in parts]), np.concatenate(codes),
                  np.concatenate(firsts), np.concatenate([part[3] for part in parts]))
    return batch._cache[key]


def _shared_places(segments: PairSegments) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positions, code, first, size) of the sorted places in segments of ≥ 2 entries."""
    starts = segments.starts
    alone = starts.copy()  # a place is a singleton step group iff it and the next place both start one
    alone[:-1] &= starts[1:]
    places = np.flatnonzero(~alone)
    kept_starts = starts[places]
    code = np.cumsum(kept_starts, dtype=np.int64) - 1  # kept groups renumbered in order
    first = np.flatnonzero(kept_starts)
    size = np.diff(first, append=places.size)
    return segments.tiebreak[places], code, first, size  # step_segments breaks ties by canonical position


def _cache_shared(batch: StepBatch, key, positions, code, first, size) -> None:
    rows = batch.order[positions]
    for array in (positions, rows, code, first, size):
        array.flags.writeable = False
    batch._cache[key] = SharedStepGroups(positions, rows, code, first.size, first, size)


def _similarity_step_groups(batch: StepBatch, exact_code: np.ndarray, n_exact: int,
                            threshold: float) -> tuple[np.ndarray, int]:
    """Merge exact step groups whose anchors are similar; loops over distinct anchors, not rows."""
    if isinstance(batch.anchor, np.ndarray):
        raise TypeError("similarity mode compares anchor text, but the anchors are int state hashes; use exact mode")
    representative = np.full(n_exact, len(batch))
    np.minimum.at(representative, exact_code, np.arange(len(batch)))  # one row per distinct (group, anchor)
    first_step = np.full(n_exact, np.iinfo(np.int64).max)
    np.minimum.at(first_step, exact_code, batch.step)
    anchor_text = [batch.anchor[row] for row in representative.tolist()]  # one per distinct anchor, not per row
    not_text = [i for i, text in enumerate(anchor_text) if not isinstance(text, str)]
    if not_text:
        raise TypeError(f"similarity mode compares anchor text; anchor {anchor_text[not_text[0]]!r} at row "
                        f"{representative[not_text[0]]} is not a str")
    group_of = batch.group_code[representative]
    by_group = np.argsort(group_of, kind="stable")
    cluster_of = np.empty(n_exact, dtype=np.int64)
    n_clusters = 0
    for members in np.split(by_group, np.flatnonzero(np.diff(group_of[by_group])) + 1):  # one group at a time
        clusters: list[tuple[SequenceMatcher, int]] = []  # (matcher holding the representative, cluster id)
        for exact in sorted(members.tolist(), key=lambda e: (first_step[e], anchor_text[e])):
            text = anchor_text[exact]
            for matcher, cluster in clusters:
                matcher.set_seq1(text)  # ratio(text, representative), argument order as in the reference
                if (matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold
                        and matcher.ratio() >= threshold):
                    cluster_of[exact] = cluster
                    break
            else:
                clusters.append((SequenceMatcher(None, text, text), n_clusters))
                cluster_of[exact] = n_clusters
                n_clusters += 1
    return cluster_of[exact_code], n_clusters
