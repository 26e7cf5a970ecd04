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
"""

from __future__ import annotations

import math
import re

import numpy as np

from .batch import (
    StepBatch,
    check_finite,
    check_positive,
    check_unit_interval,
    discounted_suffix_sum,
    factorize,
    factorize_pairs,
    normalize_in_groups,
    trajectory_sums,
)
from .gigpo import penalized_reward
from .registry import register

MODES = ("soft_grouping", "mean_norm", "mean_std_norm")
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern


@register("proxmo", text_anchors=lambda params: params.get("mode", "soft_grouping") == "soft_grouping")
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
    if n == 0:
        return np.zeros(0)
    reward = batch.canonical(penalized_reward(batch, invalid_penalty))  # canonical order from here on
    group = batch.canonical(batch.group_code)

    # 1-2. episode level over rows, with the polarized signal controller
    score = trajectory_sums(batch, reward)[batch.canonical(batch.traj_code)]
    episode = normalize_in_groups(score, group, batch.n_groups, "mean_std" if mode == "mean_std_norm" else "mean",
                                  epsilon)
    if enable_psc:
        rows = np.bincount(group, minlength=batch.n_groups)
        p = np.where(rows > 1, np.bincount(group, weights=score, minlength=batch.n_groups) / np.maximum(rows, 1), 0.0)
        p = np.clip(p, 0.0, 1.0)[group]
        success_weight = 1.0 + psc_beta * (_sigmoid((1.0 - p) ** psc_alpha) - 0.5)
        failure_weight = 1.0 + psc_beta * (_sigmoid(-(p ** psc_alpha)) - 0.5)
        episode = episode * np.where(score > 0.5, success_weight, failure_weight)

    # 3-4. step level
    step_return = discounted_suffix_sum(batch, reward, gamma)
    if mode == "soft_grouping":
        texts = batch.anchor if not isinstance(batch.anchor, np.ndarray) else [str(a) for a in batch.anchor]
        step = batch.canonical(_soft_step_advantage(batch, texts, batch.to_rows(step_return), temperature,
                                                    max_features))
    else:
        anchor_code, _ = factorize(batch.anchor, "anchor")
        code, n_codes = factorize_pairs(group, batch.n_groups, batch.canonical(anchor_code))
        step = normalize_in_groups(step_return, code, n_codes, "mean_std" if mode == "mean_std_norm" else "mean",
                                   epsilon, singleton_rule="zero")
    return batch.to_rows(episode + step_advantage_w * step)


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
    codes, n_unique = factorize(texts, "anchor")
    first = np.full(n_unique, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # one row per distinct text
    copies = np.bincount(codes, minlength=n_unique)
    counts = []
    total: dict[str, float] = {}
    docs: dict[str, int] = {}
    for row, c in zip(first.tolist(), copies.tolist()):
        words: dict[str, int] = {}
        for word in TOKEN.findall(str(texts[row]).lower()):
            words[word] = words.get(word, 0) + 1
        counts.append(words)
        for word, count in words.items():
            total[word] = total.get(word, 0) + count * c
            docs[word] = docs.get(word, 0) + c
    vocabulary = sorted(total)
    if len(vocabulary) > max_features:
        vocabulary = sorted(sorted(vocabulary, key=lambda w: -total[w])[:max_features])
    column = {word: i for i, word in enumerate(vocabulary)}
    n_docs = len(codes)
    idf = np.array([math.log((1 + n_docs) / (1 + docs[w])) + 1.0 for w in vocabulary])
    indptr, indices, data = [0], [], []
    for words in counts:
        kept = [(column[w], n) for w, n in words.items() if w in column]
        kept.sort()
        indices += [i for i, _ in kept]
        data += [n for _, n in kept]
        indptr.append(len(indices))
    indptr, indices = np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64)
    data = np.asarray(data, dtype=np.float64) * idf[indices]
    norms = _row_norms(indptr, data)
    data = data / np.repeat(np.where(norms > 0, norms, 1.0), np.diff(indptr))
    return codes, vocabulary, (indptr, indices, data)


def _row_norms(indptr: np.ndarray, data: np.ndarray) -> np.ndarray:
    """L2 norm of each CSR row (0 for an empty one)."""
    row = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    return np.sqrt(np.bincount(row, weights=data * data, minlength=indptr.size - 1))


def _soft_step_advantage(batch: StepBatch, texts, step_return: np.ndarray, temperature: float,
                         max_features: int) -> np.ndarray:
    """A_i = R_i − Σ_j softmax_j(sim(o_i, o_j)/τ) R_j over the rows j of i's group, row order.

    Rows of a group with the same text share their similarities, so the work is per (group,
    text) cell: each group's cells as a dense block over the group's own terms.
    """
    codes, vocabulary, (indptr, indices, data) = sparse_tfidf(texts, max_features)
    if not vocabulary:  # no word anywhere: the official code falls back to zeros
        return np.zeros(len(batch))
    scale = 1.0 / (_row_norms(indptr, data) + 1e-8)  # the official code normalizes the rows a second time
    cell, n_cells = factorize_pairs(batch.group_code, batch.n_groups, codes)
    cell_text = np.zeros(n_cells, dtype=np.int64)
    cell_text[cell] = codes
    cell_group = np.zeros(n_cells, dtype=np.int64)
    cell_group[cell] = batch.group_code
    cell_rows = np.bincount(cell, minlength=n_cells).astype(np.float64)
    cell_return = np.bincount(cell, weights=step_return, minlength=n_cells)
    baseline = np.zeros(n_cells)
    order = np.argsort(cell_group, kind="stable")
    bounds = np.searchsorted(cell_group[order], np.arange(batch.n_groups + 1))
    for g in range(batch.n_groups):
        members = order[bounds[g]:bounds[g + 1]]
        text = cell_text[members]
        starts, ends = indptr[text], indptr[text + 1]
        local_rows = np.repeat(np.arange(members.size), ends - starts)
        spans = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist())]) if \
            local_rows.size else np.zeros(0, dtype=np.int64)
        terms, local_terms = np.unique(indices[spans], return_inverse=True)
        block = np.zeros((members.size, terms.size))
        block[local_rows, local_terms] = data[spans] * scale[text][local_rows]
        logits = block @ block.T / temperature
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)  # per cell; each cell stands for its rows in the softmax
        baseline[members] = (weights @ cell_return[members]) / (weights @ cell_rows[members])
    return step_return - baseline[cell]
