"""ProxMO (arXiv 2602.19225): a soft, similarity-weighted step baseline and success-rate-aware episode credit.

docs/algorithms.md § Step-level methods after GiGPO. The official code is
``GithubX-F/ProxMO-RL`` ``proxmo/core_proxmo.py`` (``compute_proxmo_outcome_advantage``);
this module follows it and matches its per-row outputs (``credit/reference.py:
proxmo_loop`` is that algorithm as plain loops; the tests compare, and compare the TF-IDF
with scikit-learn's where it is installed). Defaults from its ALFWorld run script:
``mode="soft_grouping"``, ``enable_psc=True``, ``psc_alpha=4.0``, ``step_advantage_w=1.0``,
γ = 0.95, invalid-action penalty 0.1; ``psc_beta=0.866`` and ``temperature=0.1`` are the
code's defaults. Per group of K trajectories of one task:

1. Episode advantage (the official ``episode_norm_reward``): the trajectory's return R(τ)
   normalized over the group's step rows (``mode="mean_std_norm"``: unbiased std; the other
   two modes subtract the mean only); a group of one row: mean 0, std 1.
2. Polarized signal controller (``enable_psc``): with p the group's mean R(τ) over its rows
   (clipped to [0, 1]; 0 for a group of one row), a row of a success (R(τ) > 0.5) is
   scaled by 1 + β(σ((1 − p)^α) − ½), a failure's by 1 + β(σ(−p^α) − ½).
3. Step returns R_t = Σ_{k≥t} γ^{k−t} r_k.
4. Step advantage, ``mode="soft_grouping"``: a TF-IDF vector of every row's observation
   (the anchor text; vocabulary, document frequencies and the 1,024-term cap over all rows
   of the batch, as scikit-learn's ``TfidfVectorizer(max_features=1024)``: lowercase,
   words of ≥ 2 word characters, idf = ln((1+n)/(1+df)) + 1, rows L2-normalized), cosine
   similarities, and per row a softmax over the rows of its group of sim/τ (τ =
   ``temperature``, itself included): b_i = Σ_j softmax_j(sim(o_i, o_j)/τ) R_j, A_i = R_i − b_i.
   ``mode="mean_norm"`` / ``"mean_std_norm"``: GiGPO's step groups instead (exact anchors,
   singleton → 0).
5. A_t = A^ep + ``step_advantage_w`` · A^step.

Deliberate differences: where the vocabulary cap cuts between terms of equal frequency,
the alphabetically first are kept (scikit-learn's unstable sort keeps some of them);
equal values in a group give exactly 0; float64 throughout. The invalid-action penalty is
subtracted from r_t before R_t and R(τ) (steprl's GiGPO reading). The similarity merge of
near-identical anchors in the hard modes (``enable_similarity``) is not implemented.

Speed (``benchmarks/credit_speed.py --only proxmo``): the soft grouping works per (group,
distinct text) cell, with numpy throughout: chunks of texts are tokenized at once (no regex,
no Python loop per text), tokens become exact term ids through direct-mapped tables, and
each group's similarities come from a dense block of the terms that two or more of its
tokens share (one column for the terms with the same counts in all its units, as a template's
words have), in batched matrix products (``_soft_baseline``, ``_Chunk``, ``_Terms``). The
rows go in parts of whole groups that credit's background thread and the caller take in
turn, on two cores (``_soft_counts``, ``_Part``): first each part finds its cells and
counts their terms (steps 1-3 run as one more job beside them), then, the vocabulary and
idf known, each part's similarities. numpy's calls release the GIL; the string work that
holds it is kept small (the texts are hashed once, up front; lowercasing and the word test
are numpy operations). The results do not depend on which thread took which part.
"""

from __future__ import annotations

import functools
import math
import operator
import re
import threading

import numpy as np

from .batch import (
    StepBatch,
    WorkPool,
    check_finite,
    check_positive,
    check_unit_interval,
    discounted_suffix_sum,
    factorize,
    factorize_pairs,
    in_background,
    normalize_in_groups,
    trajectory_sums,
)
from .gigpo import penalized_reward
from .registry import register

MODES = ("soft_grouping", "mean_norm", "mean_std_norm")
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern (what _Terms.tokenize finds)


def details(batch: StepBatch, *, gamma: float = 0.95, step_advantage_w: float = 1.0, mode: str = "soft_grouping",
            enable_psc: bool = True, psc_alpha: float = 4.0, psc_beta: float = 0.866, temperature: float = 0.1,
            max_features: int = 1024, epsilon: float = 1e-6, invalid_penalty: float = 0.1) -> dict[str, np.ndarray]:
    """ProxMO's per-step quantities (``credit.details("proxmo", ...)``), row order; A = A_E + step_advantage_w·A_S.

        R_tau            the trajectory's return R(τ) (after the invalid-action penalty)
        psc_scale        the polarized signal controller's factor on the episode advantage (1 when off)
        A_E              the episode advantage, after that factor
        R_t              discounted step return
        baseline         ``soft_grouping``: the soft baseline b_i = Σ_j softmax_j(sim/τ)·R_t of j
        step_group_size  the other modes: rows of the group with the same anchor
        A_S              the step advantage (R_t − baseline; the other modes: normalized in the step group)
    """
    parts: dict = {}
    _compute(batch, gamma, step_advantage_w, mode, enable_psc, psc_alpha, psc_beta, temperature, max_features,
             epsilon, invalid_penalty, parts)
    return parts


@register("proxmo", text_anchors=lambda params: params.get("mode", "soft_grouping") == "soft_grouping",
          details=details)
def advantages(batch: StepBatch, *, gamma: float = 0.95, step_advantage_w: float = 1.0, mode: str = "soft_grouping",
               enable_psc: bool = True, psc_alpha: float = 4.0, psc_beta: float = 0.866, temperature: float = 0.1,
               max_features: int = 1024, epsilon: float = 1e-6, invalid_penalty: float = 0.1) -> np.ndarray:
    """ProxMO advantage of each step row (module docstring, steps 1-5).

    Args:
        gamma: γ of the step returns.
        step_advantage_w: weight of the step advantage.
        mode: "soft_grouping" (the paper's), "mean_norm" or "mean_std_norm" (official names).
        enable_psc, psc_alpha, psc_beta: the polarized signal controller (official names).
        temperature: τ of the soft grouping's softmax.
        max_features: the TF-IDF vocabulary cap.
        epsilon: ε of the std division.
        invalid_penalty: λ off r_t of invalid actions.
    """
    return _compute(batch, gamma, step_advantage_w, mode, enable_psc, psc_alpha, psc_beta, temperature, max_features,
                    epsilon, invalid_penalty)


def _compute(batch: StepBatch, gamma: float, step_advantage_w: float, mode: str, enable_psc: bool, psc_alpha: float,
             psc_beta: float, temperature: float, max_features: int, epsilon: float, invalid_penalty: float,
             parts: dict | None = None) -> np.ndarray:
    """The advantages; `parts` (a dict) receives the per-step quantities of :func:`details` too."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {list(MODES)}")
    check_unit_interval("gamma", gamma)
    check_positive("epsilon", epsilon)
    check_positive("temperature", temperature)
    for name, value in (("step_advantage_w", step_advantage_w), ("psc_alpha", psc_alpha), ("psc_beta", psc_beta),
                        ("invalid_penalty", invalid_penalty)):
        check_finite(name, value)
    if not isinstance(max_features, (int, np.integer)) or max_features < 1:
        raise ValueError(f"max_features={max_features!r} must be an int >= 1")
    n = len(batch)
    step_key = "baseline" if mode == "soft_grouping" else "step_group_size"
    if n == 0:
        if parts is not None:
            parts.update({key: np.zeros(0) for key in ("R_tau", "psc_scale", "A_E", "R_t", step_key, "A_S")})
        return np.zeros(0)
    level = (batch, gamma, mode, enable_psc, psc_alpha, psc_beta, epsilon, invalid_penalty)
    if mode == "soft_grouping":  # steps 1-3 go to the threads with the soft grouping's first pass
        texts = batch.anchor if not isinstance(batch.anchor, np.ndarray) else [str(a) for a in batch.anchor]
        counts, (score, psc_scale, episode, step_return) = _soft_counts(
            batch, texts, max_features, functools.partial(_episode_level, *level))
        step_extra = _soft_baseline(batch, counts, step_return, temperature)
        step = step_return - step_extra
    else:
        score, psc_scale, episode, step_return = _episode_level(*level)
        group = batch.canonical(batch.group_code)
        anchor_code, _ = factorize(batch.anchor, "anchor")
        code, n_codes = factorize_pairs(group, batch.n_groups, batch.canonical(anchor_code))
        step = batch.to_rows(normalize_in_groups(batch.canonical(step_return), code, n_codes,
                                                 "mean_std" if mode == "mean_std_norm" else "mean", epsilon,
                                                 singleton_rule="zero"))
        step_extra = batch.to_rows(np.bincount(code, minlength=n_codes)[code]) if parts is not None else None
    episode = batch.to_rows(episode)
    if parts is not None:
        parts.update({"R_tau": batch.to_rows(score),
                      "psc_scale": np.ones(n) if psc_scale is None else batch.to_rows(psc_scale),
                      "A_E": episode, "R_t": step_return, step_key: step_extra, "A_S": step})
    return episode + step_advantage_w * step


def _episode_level(batch: StepBatch, gamma: float, mode: str, enable_psc: bool, psc_alpha: float, psc_beta: float,
                   epsilon: float, invalid_penalty: float):
    """Steps 1-3: (R(τ), PSC factor or None, episode advantage: canonical order; step returns: row order)."""
    reward = batch.canonical(penalized_reward(batch, invalid_penalty))  # canonical order from here on
    group = batch.canonical(batch.group_code)

    # 1-2. episode level over rows, with the polarized signal controller
    score = trajectory_sums(batch, reward)[batch.canonical(batch.traj_code)]
    episode = normalize_in_groups(score, group, batch.n_groups, "mean_std" if mode == "mean_std_norm" else "mean",
                                  epsilon)
    psc_scale = None
    if enable_psc:
        rows = np.bincount(group, minlength=batch.n_groups)
        p = np.where(rows > 1, np.bincount(group, weights=score, minlength=batch.n_groups) / np.maximum(rows, 1), 0.0)
        p = np.clip(p, 0.0, 1.0)  # per group
        success_weight = 1.0 + psc_beta * (_sigmoid((1.0 - p) ** psc_alpha) - 0.5)
        failure_weight = 1.0 + psc_beta * (_sigmoid(-(p ** psc_alpha)) - 0.5)
        psc_scale = np.where(score > 0.5, success_weight[group], failure_weight[group])
        episode = episode * psc_scale

    # 3. step returns (row order)
    return score, psc_scale, episode, batch.to_rows(discounted_suffix_sum(batch, reward, gamma))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def tfidf(texts, max_features: int = 1024) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(unique text index per row, vocabulary, L2-normalized TF-IDF rows of the unique texts, dense).

    scikit-learn's ``TfidfVectorizer(max_features=...)`` defaults: lowercase, the token
    pattern ``\\b\\w\\w+\\b``, raw term counts, smooth idf ln((1+n)/(1+df)) + 1 with n and df
    counted over rows (duplicates included), the vocabulary cut to the ``max_features``
    most frequent terms (ties: alphabetical), each row L2-normalized. Each distinct text is
    tokenized and vectorized once. :func:`sparse_tfidf` is the same without the dense matrix.
    """
    codes, vocabulary, (indptr, indices, data) = sparse_tfidf(texts, max_features)
    matrix = np.zeros((indptr.size - 1, len(vocabulary)))
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    matrix[rows, indices] = data
    return codes, vocabulary, matrix


def sparse_tfidf(texts, max_features: int = 1024):
    """(unique text index per row, vocabulary, (indptr, indices, data)): :func:`tfidf` as CSR rows."""
    texts = [str(t) for t in texts]
    codes, n_unique = factorize(texts, "anchor")
    first = np.full(n_unique, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # one row per distinct text
    copies = np.bincount(codes, minlength=n_unique)
    units = [texts[i] for i in first.tolist()]
    terms = _Terms()
    pieces = [terms.tokenize(units[a:b])[:2] for a, b in _spans(units, None, np.arange(1, n_unique + 1), n_unique)]
    per_unit = np.concatenate([np.diff(indptr) for indptr, _ in pieces]) if pieces else np.zeros(0, dtype=np.int64)
    ids = np.concatenate([ids for _, ids in pieces]) if pieces else np.zeros(0, dtype=np.int64)
    totals = np.bincount(ids, weights=np.repeat(copies.astype(np.float64), per_unit), minlength=terms.space)
    vocabulary, column_of = terms.vocabulary(totals, max_features)
    empty = np.zeros(n_unique + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    if not vocabulary:
        return codes, vocabulary, empty
    column = column_of[ids]
    unit = np.repeat(np.arange(n_unique, dtype=np.int64), per_unit)
    kept = column >= 0
    shift = max(len(vocabulary) - 1, 1).bit_length()
    pair = (unit[kept] << shift) | column[kept]
    pair.sort(kind="stable")
    starts = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]]))
    count = np.diff(np.append(starts, pair.size))
    pair = pair[starts]
    unit, column = pair >> shift, pair & ((1 << shift) - 1)
    df = np.bincount(column, weights=copies[unit], minlength=len(vocabulary))
    data = count * (np.log((1 + len(codes)) / (1 + df)) + 1.0)[column]
    data /= np.sqrt(np.bincount(unit, weights=data * data, minlength=n_unique))[unit]
    indptr = np.zeros(n_unique + 1, dtype=np.int64)
    np.cumsum(np.bincount(unit, minlength=n_unique), out=indptr[1:])
    return codes, vocabulary, (indptr, column, data)


def _soft_counts(batch: StepBatch, texts, max_features: int, also):
    """The soft grouping's first pass: ((the parts, with their term counts; idf per _Terms id or None
    without words), what `also` returned).

    The rows go in parts of whole groups with about ``_CHUNK_CHARS`` characters of text
    (:class:`_Part`), which credit's background thread and this one take in turn (and the
    job `also`), each with its own term ids (a :class:`_Terms` per thread); the vocabulary,
    document frequencies and idf come from all parts' counts, the threads' ids merged by
    string. The texts are hashed first (``StepBatch.anchor_key``): Python's string hash
    holds the GIL, which the threads need between their numpy calls.
    """
    n = len(batch)
    order = None if batch.rows_by_group else np.argsort(batch.group_code, kind="stable")  # rows group by group
    keys = batch.anchor_key
    made: dict[int, _Terms] = {}

    def count(a: int, b: int) -> _Part:
        terms = made.get(threading.get_ident())
        if terms is None:
            terms = made[threading.get_ident()] = _Terms()
        return _Part(terms, texts, batch.group_code, keys, order, a, b)

    ends = np.cumsum(np.bincount(batch.group_code, minlength=batch.n_groups))
    spans = _spans(texts, order, ends, n)
    also, *parts = _in_parallel(n, [also, *(functools.partial(count, a, b) for a, b in spans)])
    every = list(made.values())
    totals, df = [], []
    for terms in every:
        chunks = [part.chunk for part in parts if part.terms is terms]
        term_ids = np.concatenate([chunk.term_ids for chunk in chunks])
        totals.append(np.bincount(term_ids, weights=np.concatenate([chunk.term_totals for chunk in chunks]),
                                  minlength=terms.space))
        df.append(np.bincount(term_ids, weights=np.concatenate([chunk.term_df for chunk in chunks]),
                              minlength=terms.space))
    vocabulary, columns = _vocabulary(every, totals, max_features)
    if not vocabulary:
        return (parts, None), also
    listed = [np.flatnonzero(column[:d.size] >= 0) for column, d in zip(columns, df)]
    term_df = np.zeros(len(vocabulary))
    for column, d, these in zip(columns, df, listed):  # ids of a term add up
        term_df += np.bincount(column[these], weights=d[these], minlength=len(vocabulary))
    term_idf = np.log((1 + n) / (1 + term_df)) + 1.0
    idf = {}  # per _Terms: idf per id (0: not in the vocabulary)
    for terms, column, d, these in zip(every, columns, df, listed):
        idf[id(terms)] = np.zeros(d.size)
        idf[id(terms)][these] = term_idf[column[these]]
    return (parts, idf), also


def _soft_baseline(batch: StepBatch, counts, step_return: np.ndarray, temperature: float) -> np.ndarray:
    """b_i = Σ_j softmax_j(sim(o_i, o_j)/τ) R_j over the rows j of i's group, row order.

    Rows of a group with the same text share their similarities, so the work is per (group,
    text) cell ("unit"), and cell j weighs in with its n_j rows: b = Σ_j e^{s_ij/τ} ΣR_j /
    Σ_j e^{s_ij/τ} n_j. The units go through in parts of whole groups with about
    ``_CHUNK_CHARS`` characters of text (the temporary arrays stay cache-sized, and below
    glibc's mmap threshold, so they are not page-faulted in anew each time), twice: find
    the units, tokenize and count the terms of each group (:func:`_soft_counts`); then,
    the vocabulary and document frequencies known, the similarities (here). Both passes
    share the parts between credit's background thread and this one. No sort of the
    tokens anywhere.
    """
    parts, idf = counts
    if idf is None:  # no word anywhere: the official code falls back to zero advantages
        return np.asarray(step_return, dtype=np.float64).copy()
    out = np.empty(len(batch))
    _in_parallel(len(batch), [functools.partial(part.baseline, idf[id(part.terms)], temperature, step_return, out)
                              for part in parts])
    return out


class _Part:
    """Rows of whole groups (positions a..b-1 of the rows in group order): their units and the units' counts.

    A unit is a (group, text) cell, found by the texts' hashes (``StepBatch.anchor_key``), one
    text per unit read at its first row; units by group, then first row.
    """

    def __init__(self, terms, texts, group_code, keys, order, a: int, b: int):
        self.terms = terms
        self.rows = rows = slice(a, b) if order is None else order[a:b]
        group = group_code[rows]
        group = group - group[0]  # the part's groups have consecutive codes
        cell, n_cells = factorize_pairs(group, int(group[-1]) + 1, keys[rows])
        first = np.empty(n_cells, dtype=np.int64)
        first[cell[::-1]] = np.arange(b - a - 1, -1, -1)  # a row of each cell (numpy writes in order: the first)
        is_first = np.zeros(b - a, dtype=bool)
        is_first[first] = np.True_
        units = np.flatnonzero(is_first)  # by group, then first row (the rows are in group order)
        unit_cell = cell[units]
        unit_of_cell = np.empty(n_cells, dtype=np.int64)
        unit_of_cell[unit_cell] = np.arange(units.size)
        self.unit = unit_of_cell[cell]  # per row
        self.n_units = units.size
        copies = np.bincount(self.unit, minlength=units.size)
        self.chunk = _Chunk(terms, texts, units + a if order is None else rows[units], group[units], copies)

    def baseline(self, idf: np.ndarray, temperature: float, step_return: np.ndarray, out: np.ndarray) -> None:
        """Write the part's rows' soft baselines into `out` (row order)."""
        unit_return = np.bincount(self.unit, weights=step_return[self.rows], minlength=self.n_units)
        out[self.rows] = self.chunk.baseline(idf, temperature, unit_return)[self.unit]


def _pick(texts, rows: np.ndarray):
    """The texts at `rows` (a tuple)."""
    return (texts[int(rows[0])],) if rows.size == 1 else operator.itemgetter(*rows.tolist())(texts)


def _in_parallel(rows: int, jobs: list) -> list:
    """The jobs' results in order; on big batches credit's background thread takes jobs beside this one."""
    pool = WorkPool(jobs)
    in_background(rows, pool.work)
    return pool.finish()


_CHUNK_CHARS = 1 << 21  # characters of text per chunk, about
_CHUNK = 1 << 18  # similarities per batched product
_DIRECT_CODES = 1 << 16  # (group, term) codes by a table when fewer than this + 4 per token
_SPREAD = 4  # see _group_terms
_LOG2_E = 1.0 / math.log(2.0)


def _spans(texts, rows: np.ndarray | None, ends: np.ndarray, n: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of n positions, cut only at `ends` (after each group), of about _CHUNK_CHARS characters.

    Position i holds text ``texts[rows[i]]`` (``texts[i]`` when `rows` is None).
    """
    if not n:
        return []
    sample = np.linspace(0, n - 1, min(n, 1024)).astype(np.int64)
    if rows is not None:
        sample = rows[sample]
    per_text = sum(len(str(texts[i])) for i in sample.tolist()) / sample.size + 1
    cut = np.flatnonzero(np.diff(ends // max(1, int(_CHUNK_CHARS / per_text)))) + 1  # first group of a new chunk
    bounds = np.concatenate([[0], ends[cut - 1], [n]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


class _Chunk:
    """The cells ("units") of a run of whole groups: their term counts, then their soft baseline.

    Per group, a term with two tokens or more among its units gets a column in the group's
    block (units × those terms: the counts); a term with one token there only adds to that
    unit's self-similarity. Terms with the same counts in every unit of the group share one
    column, whose idf² is the sum of theirs (:func:`_same_columns`). Groups of about the same
    size share one batched matrix product (a "run"). Terms outside the vocabulary keep their
    columns, with idf 0.
    """

    def __init__(self, terms, texts, rows, unit_group, copies):
        units = _pick(texts, rows)
        indptr, ids, present = terms.tokenize(units)
        del units
        per_unit = np.diff(indptr)
        group = unit_group - unit_group[0]  # the chunk's groups have consecutive codes
        n_groups, n_terms = int(group[-1]) + 1, max(present.size, 1)
        term, present = terms.local(ids, present)
        code, n_codes, pair_of = _group_terms(group, per_unit, term, n_groups, n_terms)
        codes = np.flatnonzero(np.bincount(code, minlength=n_codes) >= 2)  # 2+ tokens in the group: block columns
        code_group, code_term = pair_of(codes)
        by_group = np.argsort(code_group, kind="stable")  # (they mostly are already)
        codes, code_group, code_term = codes[by_group], code_group[by_group], code_term[by_group]
        n_shared = np.bincount(code_group, minlength=n_groups)
        rank = np.arange(codes.size) - (np.cumsum(n_shared) - n_shared)[code_group]  # the column in the block
        cells = np.bincount(group, minlength=n_groups)
        order, padded, width, runs, block_at, row_at, column_at = _layout(cells, n_shared)
        n_block = int((padded * width).sum())
        # count the tokens into the blocks; a term's only token in its group goes to a scratch area
        local_unit = np.arange(rows.size) - (np.cumsum(cells) - cells)[group]  # the unit's row in its block
        step = local_unit * width[group]
        place = np.full(n_codes, n_block, dtype=np.int64)
        place[codes] = block_at[code_group] + rank
        place = place[code]
        single = np.flatnonzero(place == n_block)
        place += np.repeat(step, per_unit)
        counts = np.bincount(place, minlength=n_block + int(step.max()) + 1)[:n_block]
        self.single_unit = np.searchsorted(indptr, single, side="right") - 1
        self.single_id = ids[single]
        # per block column: rows' tokens (for the vocabulary cap), rows that have it (document frequency), and two
        # random projections of its counts (to find a group's identical columns)
        row_weights = np.zeros((int(padded.sum()), 3))
        row_weights[row_at[group] + local_unit] = np.column_stack([copies, _random_rows(rows.size)])
        projected, column_df = np.zeros((int(width.sum()), 3)), np.zeros(int(width.sum()))
        for at, stop, size, n_columns in runs:
            m, g = stop - at, order[at]
            b0, r0, c0 = int(block_at[g]), int(row_at[g]), int(column_at[g])
            block = counts[b0:b0 + m * size * n_columns].reshape(m, size, n_columns).astype(np.float64)
            weights = row_weights[r0:r0 + m * size].reshape(m, size, 3).transpose(0, 2, 1)
            projected[c0:c0 + m * n_columns] = np.matmul(weights, block).transpose(0, 2, 1).reshape(-1, 3)
            column_df[c0:c0 + m * n_columns] = np.matmul(weights[:, :1], block > 0).ravel()
        column = column_at[code_group] + rank  # each shared term's block column
        self.shared_id = present[code_term]
        single_copies = copies[self.single_unit].astype(np.float64)
        self.term_ids = np.concatenate([self.shared_id, self.single_id])
        self.term_totals = np.concatenate([projected[column, 0], single_copies])
        self.term_df = np.concatenate([column_df[column], single_copies])
        # a group's terms that have the same counts in all its units (texts of one template share many) need only
        # one column, with the sum of their idf²: the blocks get fewer columns, the similarities the same values
        runs = [(stop - at, size, n_columns, int(block_at[order[at]]), int(row_at[order[at]]),
                 int(column_at[order[at]])) for at, stop, size, n_columns in runs]
        merged, rep = _same_columns(code_group, projected[column, 1], projected[column, 2])
        if rep.size < codes.size:
            counts, runs, column = _merge_columns(counts, runs, order, code_group, rank, merged, rep, n_groups)
        self.shared_at = column  # each shared term's block column (the terms of a merged column share it)
        self.unit_at = row_at[group] + local_unit
        self.weights = np.zeros((int(padded.sum()), 2))  # per block row: ΣR (set by baseline), n (0 on padding)
        self.weights[self.unit_at, 1] = copies
        self.runs = runs
        self.counts = counts.astype(np.uint8 if counts.max(initial=0) < 256 else np.float64)
        self.n_columns = max((m * n_columns + c0 for m, _, n_columns, _, _, c0 in runs), default=0)

    def baseline(self, idf: np.ndarray, temperature: float, unit_return: np.ndarray) -> np.ndarray:
        """Per unit: Σ_j e^{s_ij/τ} R_j / Σ_j e^{s_ij/τ} n_j over the units j of its group (`idf` per term id)."""
        self.weights[self.unit_at, 0] = unit_return
        column_idf = np.sqrt(np.bincount(self.shared_at, weights=idf[self.shared_id] ** 2, minlength=self.n_columns))
        alone = np.zeros(self.weights.shape[0])  # Σ idf² of the terms that only this unit of its group has
        alone[self.unit_at] = np.bincount(self.single_unit, weights=idf[self.single_id] ** 2,
                                          minlength=self.unit_at.size)
        # rows L2-normalized (scikit-learn), then divided by their norm (1) + 1e-8 as the official code does;
        # the similarities come divided by τ and times log2(e): 2^x is a little cheaper than e^x
        scale = math.sqrt(_LOG2_E) / ((1.0 + 1e-8) * math.sqrt(temperature))
        shift = temperature < 1.0 / 300  # e^{1/τ} could overflow: subtract each row's self-similarity first
        out = np.empty(self.weights.shape[0])
        for m, size, n_columns, b0, r0, c0 in self.runs:
            block = self.counts[b0:b0 + m * size * n_columns].reshape(m, size, n_columns) * column_idf[
                c0:c0 + m * n_columns].reshape(m, 1, n_columns)
            square = np.einsum("mck,mck->mc", block, block) + alone[r0:r0 + m * size].reshape(m, size)
            norm = np.sqrt(square)
            factor = np.divide(scale, norm, out=np.zeros_like(norm), where=norm > 0)
            self_similarity = square * factor * factor
            block *= factor[:, :, None]
            sim = np.matmul(block, block.transpose(0, 2, 1).copy())  # a copy: gemm, faster here than syrk
            sim.reshape(m, size * size)[:, ::size + 1] = self_similarity  # with the unit's own single terms
            if shift:
                sim -= self_similarity[:, :, None]
            np.exp2(sim, out=sim)
            summed = np.matmul(sim, self.weights[r0:r0 + m * size].reshape(m, size, 2))
            out[r0:r0 + m * size] = (summed[:, :, 0] / summed[:, :, 1]).ravel()
        return out[self.unit_at]


def _group_terms(group, per_unit, term, n_groups: int, n_terms: int):
    """(code per token, number of codes, codes → (their groups, their terms)): a code per (group, term) present.

    `group`: each unit's group (0..n_groups-1), `per_unit`: its tokens, `term`: each token's
    term (0..n_terms-1, all occurring). A table of every (group, term) when that is small
    (a few entries per token). Else by term: one code for a term in a single group; a table
    row per group for a term with at least n_groups / _SPREAD tokens (so the table has at
    most _SPREAD entries per token); the other (group, term) pairs sorted.
    """
    if n_groups * n_terms <= 4 * term.size + _DIRECT_CODES:
        code = np.repeat(group * n_terms, per_unit)
        code += term
        return code, n_groups * n_terms, lambda codes: np.divmod(codes, n_terms)
    token_group = np.repeat(group, per_unit)
    low, high = np.full(n_terms, n_groups), np.full(n_terms, -1)
    np.minimum.at(low, term, token_group)
    np.maximum.at(high, term, token_group)
    alone = np.flatnonzero(low == high)
    many = np.flatnonzero((low < high) & (np.bincount(term, minlength=n_terms) * _SPREAD >= n_groups))
    index = np.full(n_terms, -1, dtype=np.int64)
    index[many] = np.arange(many.size)
    n_codes = n_groups * many.size
    index[alone] = n_codes + np.arange(alone.size)
    code = index[term]
    code_group = [np.repeat(np.arange(n_groups), many.size), low[alone]]
    code_term = [np.tile(many, n_groups), alone]
    table = np.flatnonzero((code >= 0) & (code < n_codes))
    code[table] += token_group[table] * many.size
    n_codes += alone.size
    few = np.flatnonzero(code < 0)
    if few.size:
        sub, n_sub = factorize_pairs(token_group[few], n_groups, term[few])
        code[few] = n_codes + sub
        n_codes += n_sub
        for values, out in ((token_group[few], code_group), (term[few], code_term)):
            per_code = np.empty(n_sub, dtype=np.int64)
            per_code[sub] = values
            out.append(per_code)
    code_group, code_term = np.concatenate(code_group), np.concatenate(code_term)
    return code, n_codes, lambda codes: (code_group[codes], code_term[codes])


def _layout(cells: np.ndarray, widths: np.ndarray):
    """Blocks of groups with `cells` rows and `widths` columns: (order, rows and columns of each group's block,
    runs, each group's first block entry, row and column).

    Groups by size (then columns), in runs (at, stop, rows, columns) over `order` of up to
    _CHUNK similarities: each run's blocks padded to its largest group's rows and most columns.
    """
    n_groups = cells.size
    order = np.lexsort((widths, cells))
    cells_sorted, widths_sorted = cells[order], widths[order]
    padded = np.zeros(n_groups, dtype=np.int64)  # block rows and columns of each group: its run's
    width = np.zeros(n_groups, dtype=np.int64)
    runs = []
    at = 0
    while at < n_groups:  # the most groups whose similarities and blocks, padded as the run's, fit in _CHUNK
        rows_ = cells_sorted[at:]
        fits = np.arange(1, rows_.size + 1) * rows_ * np.maximum(rows_, np.maximum.accumulate(
            widths_sorted[at:])) <= _CHUNK
        stop = at + max(1, int(np.searchsorted(~fits, True)))
        size = int(cells_sorted[stop - 1])
        n_columns = max(int(widths_sorted[at:stop].max()), 1)
        padded[order[at:stop]], width[order[at:stop]] = size, n_columns
        runs.append((at, stop, size, n_columns))
        at = stop
    return order, padded, width, runs, _offsets(padded * width, order), _offsets(padded, order), _offsets(width, order)


def _random_rows(n: int) -> np.ndarray:
    """Two pseudo-random weights in [1, 2) per row, the same at every call (the projections of the columns)."""
    global _RANDOM
    if _RANDOM.shape[0] < n:  # (made again from the seed: the same first rows, whichever thread grows it)
        _RANDOM = np.random.default_rng(0x5EED).random((max(n, 1 << 15), 2)) + 1.0
    return _RANDOM[:n]


_RANDOM = np.zeros((0, 2))


def _same_columns(group: np.ndarray, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(merged column of each column, one column of each merged column): a group's columns of equal projections.

    `first`, `second`: each column's counts times two fixed random weights per unit in [1, 2),
    summed (:func:`_random_rows`). Equal counts give equal sums; different counts give two
    equal sums by chance only (about 2^-52 each: far less likely than two anchor texts'
    64-bit hashes colliding). Merged columns are numbered group by group, then by projections.
    """
    order = np.lexsort((second, first, group))
    new = np.ones(order.size, dtype=bool)
    g, a, b = group[order], first[order], second[order]
    new[1:] = (g[1:] != g[:-1]) | (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    merged = np.empty(order.size, dtype=np.int64)
    merged[order] = np.cumsum(new) - 1
    return merged, order[new]


def _merge_columns(counts, runs, order, group, rank, merged, rep, n_groups: int):
    """(counts, runs, each shared term's column) with the columns of a merged column (:func:`_same_columns`) as one.

    The runs keep their groups and rows; each gets the most merged columns of its groups.
    """
    n_merged = np.bincount(group[rep], minlength=n_groups)
    first = np.cumsum(n_merged) - n_merged  # each group's first merged column
    merged_rank = np.arange(rep.size) - first[group[rep]]
    new_runs, blocks, new_column_at = [], [], np.zeros(n_groups, dtype=np.int64)
    b_at = c_at = 0
    at = 0
    for m, size, k, b0, r0, c0 in runs:
        block = counts[b0:b0 + m * size * k].reshape(m, size, k)
        groups = order[at:at + m]
        at += m
        width = max(int(n_merged[groups].max()), 1)
        j = np.arange(width)
        valid = j < n_merged[groups][:, None]
        pick = np.where(valid, rank[rep[np.minimum(first[groups][:, None] + j, rep.size - 1)]], 0)  # full ranks
        blocks.append((np.take_along_axis(block, pick[:, None, :], axis=2) * valid[:, None, :]).ravel())
        new_column_at[groups] = c_at + np.arange(m) * width
        new_runs.append((m, size, width, b_at, r0, c_at))
        b_at += m * size * width
        c_at += m * width
    return np.concatenate(blocks), new_runs, new_column_at[group] + merged_rank[merged]


def _offsets(sizes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Start of each item when items of `sizes` are laid out one after another in `order`."""
    at = np.zeros(sizes.size, dtype=np.int64)
    at[order] = np.cumsum(sizes[order]) - sizes[order]
    return at


# --- tokens and term ids -------------------------------------------------------------------
#
# A chunk's texts are joined into one string and tokenized at once with numpy: a token is a
# maximal run of >= 2 word characters (exactly what ``\b\w\w+\b`` finds; the texts are
# joined with "\n", which is no word character and bounds ``str.lower``'s final-sigma
# context, so no token crosses two texts). Each token gets an exact 64-bit key: its 8 bytes
# (ASCII, lowered) or 2 code points (UTF-32), cut to its length and zero-padded (a word
# character is never 0); a
# longer token chains its words: key(w0..wk) = CHAIN | id(w0..wk-1) << 30 | id(wk), each
# prefix's key made an id the same way. Keys become ids through direct-mapped tables.

_LOWER_WORD = bytes(ord(chr(c).lower()) if c < 128 and (chr(c).isalnum() or c == 95) else 0 for c in range(256))
_WORD = re.compile(r"\w")
_MASKS = {width: np.array([(1 << (8 * width * k)) - 1 for k in range(8 // width)] + [(1 << 64) - 1],
                          dtype=np.uint64) for width in (1, 4)}
_PAD = "\n" * 8  # after the last text: room for 8-byte reads
_BITS = 18
_MULTIPLIERS = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                                            0xD6E8FEB86659FD93))
_CHAIN = np.uint64(1 << 63)  # keys of words have this bit clear (ASCII bytes < 128; code points < 2^21)
_STRING = (1 << 63) | (1 << 62)  # keys of tokens of more than _LONG characters: their string's number
_LONG = 4096


class _Terms:
    """Exact term ids, kept over the chunks one thread counts: equal ids ⇔ equal keys ⇔ equal (lowercased) tokens.

    `ids`: rounds of direct-mapped tables (a key takes its slot if free, and keeps it; the
    keys that find theirs taken go to the next table; a dict for the last ones). `names`:
    the string of each id seen as a token, read back from its key. A term has one key per
    character width (ASCII, UTF-32): :meth:`vocabulary` merges ids by their strings.
    """

    def __init__(self):
        self.tables = [np.zeros(1 << _BITS, dtype=np.uint64) for _ in _MULTIPLIERS]
        self.extra: dict[int, int] = {}  # key: id, for keys without a slot
        self.extra_keys: list[int] = []
        self.strings: dict[str, int] = {}  # tokens of more than _LONG characters: number
        self.string_list: list[str] = []
        self.names: dict[int, str] = {}
        self.wide = False  # a text went through as UTF-32
        self.named = np.zeros(self.space, dtype=bool)
        self.seen = np.zeros(self.space, dtype=bool)
        self.remap = np.zeros(self.space, dtype=np.int64)

    @property
    def space(self) -> int:
        return (len(self.tables) << _BITS) + len(self.extra)

    def ids(self, keys: np.ndarray) -> np.ndarray:
        """The id of each (nonzero) key."""
        out = None
        where = None  # positions in `keys` still without an id (None: all)
        for round_, (table, multiplier) in enumerate(zip(self.tables, _MULTIPLIERS)):
            slot = ((keys * multiplier) >> np.uint64(64 - _BITS)).view(np.int64)
            hit = table[slot] == keys
            if not hit.all():
                miss = np.flatnonzero(~hit)
                free = np.flatnonzero(table[slot[miss]] == 0)
                if free.size:
                    table[slot[miss[free]]] = keys[miss[free]]  # of keys that collide here, one wins
                    hit[miss] = table[slot[miss]] == keys[miss]
            if round_:
                slot += round_ << _BITS
            if out is None:
                out = slot
            else:
                out[where[hit]] = slot[hit]
            if hit.all():
                return out
            lost = np.flatnonzero(~hit)
            where = lost if where is None else where[lost]
            keys = keys[lost]
        unique, inverse = np.unique(keys, return_inverse=True)
        for key in unique.tolist():
            if key not in self.extra:
                self.extra[key] = self.space
                self.extra_keys.append(key)
        out[where] = np.array([self.extra[k] for k in unique.tolist()], dtype=np.int64)[inverse]
        grow = self.space - self.named.size
        if grow > 0:
            self.named, self.seen = (np.concatenate([a, np.zeros(grow, dtype=bool)]) for a in (self.named, self.seen))
        return out

    def key(self, term: int) -> int:
        if term < len(self.tables) << _BITS:
            return int(self.tables[term >> _BITS][term & ((1 << _BITS) - 1)])
        return self.extra_keys[term - (len(self.tables) << _BITS)]

    def _names(self, ids: np.ndarray) -> list[str]:
        """The tokens of ids: words read back from their keys at once, chains one by one."""
        keys = np.empty(ids.size, dtype=np.uint64)
        in_tables = ids < len(self.tables) << _BITS
        for round_, table in enumerate(self.tables):
            these = np.flatnonzero(in_tables & (ids >> _BITS == round_))
            keys[these] = table[ids[these] & ((1 << _BITS) - 1)]
        others = np.flatnonzero(~in_tables)
        keys[others] = [self.key(i) for i in ids[others].tolist()]
        names = np.empty(ids.size, dtype=object)
        word = keys >> np.uint64(63) == 0
        ascii_ = word & ((keys >> np.uint64(32) == 0) | (keys & np.uint64(0xFFFFFFFF) > 0x10FFFF))  # see tokenize
        names[ascii_] = keys[ascii_].view("S8").astype("U8")
        wide = word & ~ascii_
        names[wide] = keys[wide].view("<U2")
        chains = np.flatnonzero(~word)
        names[chains] = [self.name(k) for k in keys[chains].tolist()]
        return names.tolist()

    def name(self, key: int) -> str:
        """The token of a key."""
        if key >> 62 == 3:
            return self.string_list[key & ((1 << 62) - 1)]
        tails = []
        while key >> 63:  # a chain: (prefix id, last word's id)
            tails.append(self.key(key & ((1 << 30) - 1)))
            key = self.key((key >> 30) & ((1 << 30) - 1))
        low, high = key & 0xFFFFFFFF, key >> 32  # the first word tells the width (see tokenize)
        width = 1 if high == 0 or low > 0x10FFFF else 4
        return "".join(_word(k, width) for k in [key, *reversed(tails)])

    def tokenize(self, units) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first token of each text and the end, term id of each token, the ids that occur) of the texts.

        Keys of whole tokens do not depend on the width's guess in :meth:`name`: an ASCII key
        of 2-4 characters has its high 32 bits 0, of 5 or more its low 32 bits above any code
        point; a UTF-32 key of a token (2 characters at least) has both code points nonzero.
        """
        try:
            joined = "\n".join(["", *units, _PAD])  # "\n" before, between and after the texts
        except TypeError:  # not all str
            units = [str(u) for u in units]
            joined = "\n".join(["", *units, _PAD])
        lengths = np.fromiter(map(len, units), dtype=np.int64, count=len(units))
        if joined.isascii():
            chars, word = _ascii_words(np.frombuffer(joined.encode("ascii"), dtype=np.uint8))
            source, width = joined, 1
        else:
            source = joined.lower()
            if len(source) != len(joined):  # a character lowers to two: lower each text alone (offsets move)
                lowered = [u.lower() for u in units]
                lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=len(lowered))
                source = "\n".join(["", *lowered, _PAD])
            chars = np.frombuffer(source.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            word = _unicode_words(chars)
            chars = np.where(word, chars, np.uint32(0))
            width, self.wide = 4, True
        edge = np.flatnonzero(word[1:] != word[:-1])  # runs of word characters start after even entries
        before = edge[0::2]
        size = edge[1::2] - before
        kept = np.flatnonzero(size > 1)
        before, size = before[kept], size[kept]
        offsets = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths + 1, out=offsets[1:])  # text i: characters offsets[i] + 1 .. offsets[i + 1] - 1
        indptr = np.searchsorted(before, offsets)
        per_word = 8 // width
        view = np.ndarray((chars.size - per_word,), dtype="<u8", buffer=chars, offset=width, strides=(width,))
        key = view[before]  # the token's first 8 bytes (view[i] starts at character i + 1)
        key &= _MASKS[width].take(size, mode="clip")  # keep the token's own characters
        long = np.flatnonzero(size > per_word)
        if long.size:
            key[long] = self._chain(view, before[long], size[long], per_word, width, source)
        ids = self.ids(key)
        self.seen[ids] = np.True_  # (numpy scalars: the scatter runs without the GIL, a Python bool holds it)
        present = np.flatnonzero(self.seen)
        self.seen[present] = np.False_
        new = present[~self.named[present]]
        if new.size:
            self.named[new] = np.True_
            self.names.update(zip(new.tolist(), self._names(new)))
        return indptr, ids, present

    def local(self, ids: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(each id's index in `present` ordered by the ids' strings; so ordered, the ids that occur, one per string).

        The order depends on the terms alone, not on the ids (which depend on the texts this
        _Terms saw before): a chunk's blocks, and so its sums, come out the same whichever
        thread's _Terms counted it. (A chunk's texts have one width, so one id per string.)
        """
        if self.remap.size < self.space:
            self.remap = np.zeros(self.space, dtype=np.int64)
        names = self.names
        present = present[sorted(range(present.size), key=[names[i] for i in present.tolist()].__getitem__)]
        self.remap[present] = np.arange(present.size)
        return self.remap[ids], present

    def _chain(self, view, before, size, per_word: int, width: int, source: str) -> np.ndarray:
        """Keys of tokens longer than one 8-byte word: their words' ids chained."""
        key = np.empty(size.size, dtype=np.uint64)
        huge = np.flatnonzero(size > _LONG)
        for i, a, s in zip(huge.tolist(), before[huge].tolist(), size[huge].tolist()):
            text = source[a + 1:a + 1 + s].lower()
            if text not in self.strings:
                self.strings[text] = len(self.string_list)
                self.string_list.append(text)
            key[i] = _STRING | self.strings[text]
        todo = np.flatnonzero(size <= _LONG)
        prefix = self.ids(view[before[todo]])
        at, rest = before[todo] + per_word, size[todo] - per_word
        while todo.size:
            tail = self.ids(view[at] & _MASKS[width].take(rest, mode="clip"))
            chained = _CHAIN | (prefix.astype(np.uint64) << np.uint64(30)) | tail.astype(np.uint64)
            last = rest <= per_word
            key[todo[last]] = chained[last]
            more = np.flatnonzero(~last)
            todo, at, rest = todo[more], at[more] + per_word, rest[more] - per_word
            if todo.size:
                prefix = self.ids(chained[more])
        if self.space >= 1 << 30:
            raise ValueError("too many distinct words for the chained token keys")
        return key

    def vocabulary(self, totals: np.ndarray, max_features: int) -> tuple[list[str], np.ndarray]:
        """(vocabulary, column per id or -1): the `max_features` terms of largest total (ties: alphabetical), sorted.

        `totals`: rows' tokens per id; the ids of one string add up.
        """
        vocabulary, (column,) = _vocabulary([self], [totals], max_features)
        return vocabulary, column


def _vocabulary(every: list[_Terms], totals: list[np.ndarray], max_features: int) -> tuple[list[str], list]:
    """(vocabulary, per _Terms its column per id or -1): :meth:`_Terms.vocabulary` over the ids of several.

    `totals`: each one's rows' tokens per id. A term's ids (of one _Terms and width, or of
    several _Terms) add up: they are merged by their strings.
    """
    ids = [np.fromiter(terms.names.keys(), dtype=np.int64, count=len(terms.names)) for terms in every]
    if len(every) > 1 or every[0].wide:  # a term may have two ids or more
        index: dict[str, int] = {}
        term = [np.fromiter((index.setdefault(s, len(index)) for s in terms.names.values()), dtype=np.int64,
                            count=these.size) for terms, these in zip(every, ids)]
        strings = list(index)
    else:
        term, strings = [np.arange(ids[0].size)], list(every[0].names.values())
    total = np.zeros(len(strings))
    for these, term_of, counts in zip(ids, term, totals):
        total += np.bincount(term_of, weights=counts[these], minlength=len(strings))
    chosen = np.arange(len(strings))
    if chosen.size > max_features:
        cut = np.partition(total, chosen.size - max_features)[chosen.size - max_features]
        kept = chosen[total > cut]
        tied = sorted(chosen[total == cut].tolist(), key=strings.__getitem__)[:max_features - kept.size]
        chosen = np.concatenate([kept, np.array(tied, dtype=np.int64)])
    chosen = sorted(chosen.tolist(), key=strings.__getitem__)
    column_of_term = np.full(len(strings), -1, dtype=np.int64)
    column_of_term[chosen] = np.arange(len(chosen))
    columns = []
    for terms, these, term_of, counts in zip(every, ids, term, totals):
        column = np.full(max(counts.size, terms.space), -1, dtype=np.int64)
        column[these] = column_of_term[term_of]
        columns.append(column)
    return [strings[i] for i in chosen], columns


def _word(key: int, width: int) -> str:
    """The characters of one 8-byte word key (zero-padded)."""
    if width == 1:
        return key.to_bytes(8, "little").rstrip(b"\0").decode("ascii")
    return "".join(chr(c) for c in (key & 0xFFFFFFFF, key >> 32) if c)


def _ascii_words(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the bytes, word characters lowercased; whether each is a word character, [A-Za-z0-9_]), without the GIL."""
    chars = raw | np.uint8(0x20)  # A-Z to a-z; digits keep; "_" (0x5F) became 0x7F: put back below
    underscore = raw == np.uint8(95)
    word = np.less(chars - np.uint8(97), np.uint8(26))
    word |= np.less(raw - np.uint8(48), np.uint8(10))
    word |= underscore
    chars ^= underscore.view(np.uint8) << np.uint8(5)
    return chars, word


def _unicode_words(chars: np.ndarray) -> np.ndarray:
    """Whether each code point is a regex word character (``\\w`` of a str pattern)."""
    word = np.zeros(chars.size, dtype=bool)
    ascii_ = chars < 128
    table = np.frombuffer(_LOWER_WORD, dtype=np.uint8)[:128] != 0
    word[ascii_] = table[chars[ascii_]]
    others = np.flatnonzero(~ascii_)
    if others.size:
        points, inverse = np.unique(chars[others], return_inverse=True)
        is_word = np.array([not 0xD800 <= p <= 0xDFFF and _WORD.match(chr(p)) is not None for p in points.tolist()],
                           dtype=bool)
        word[others] = is_word[inverse]
    return word
