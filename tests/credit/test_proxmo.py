"""ProxMO against hand-computed cases, scikit-learn's TF-IDF, and the official algorithm as loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steprl import credit
from steprl.credit.proxmo import tfidf
from steprl.credit.reference import proxmo_loop

WORDS = ["kitchen", "fridge", "open", "closed", "apple", "mug", "take", "go", "to", "you", "see", "a", "1", "2"]


def make_batch(rows):
    group_id, traj_id, step, reward, anchor, valid = (list(c) for c in zip(*rows))
    return credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid)


def random_rows(rng, n_texts=6):
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 8)))) + ("." if rng.random() > 0.5 else "")
             for _ in range(n_texts)]
    rows = []
    for group in range(int(rng.integers(1, 4))):
        for member in range(int(rng.integers(1, 5))):
            length = int(rng.integers(1, 6))
            won = rng.random() > 0.5
            for step in range(length):
                rows.append((group, group * 10 + member, step, float(won and step == length - 1),
                             str(rng.choice(texts)), bool(rng.random() > 0.15)))
    return [rows[i] for i in rng.permutation(len(rows))]


@pytest.mark.parametrize("seed", range(6))
def test_tfidf_is_scikit_learns(seed):
    sklearn = pytest.importorskip("sklearn.feature_extraction.text", reason="scikit-learn is in the dev extra")
    rng = np.random.default_rng(seed)
    texts = [str(row[4]) for row in random_rows(rng)] + ["", "a b", "Fridge FRIDGE fridge!", "", "x"]
    codes, vocabulary, matrix = tfidf(texts)
    reference = sklearn.TfidfVectorizer(max_features=1024)
    expected = reference.fit_transform(texts).toarray()
    assert vocabulary == list(reference.get_feature_names_out())
    np.testing.assert_allclose(matrix[codes], expected, rtol=1e-12, atol=1e-15)


def test_tfidf_vocabulary_cap_keeps_the_most_frequent_terms():
    sklearn = pytest.importorskip("sklearn.feature_extraction.text", reason="scikit-learn is in the dev extra")
    texts = ["aa aa aa bb bb cc", "aa bb dd", "aa ee ee ee ee"]  # totals: aa 5, ee 4, bb 3, cc 1, dd 1
    codes, vocabulary, matrix = tfidf(texts, max_features=3)
    reference = sklearn.TfidfVectorizer(max_features=3)
    assert vocabulary == ["aa", "bb", "ee"] == list(reference.fit(texts).get_feature_names_out())
    np.testing.assert_allclose(matrix[codes], reference.transform(texts).toarray(), rtol=1e-12)


def test_psc_and_soft_baseline_by_hand():
    # one group, two one-step trajectories with the same text: a wins (1), b fails (0)
    rows = [(0, 0, 0, 1.0, "go to fridge", True), (0, 1, 0, 0.0, "go to fridge", True)]
    adv = credit.estimate("proxmo", make_batch(rows), psc_alpha=4.0, psc_beta=0.866)
    p = 0.5
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    w_pos, w_neg = 1 + 0.866 * (sig((1 - p) ** 4) - 0.5), 1 + 0.866 * (sig(-(p ** 4)) - 0.5)
    # episode: mean-centred (soft_grouping drops the std): ±0.5, scaled; step: identical texts, baseline 0.5
    np.testing.assert_allclose(adv, [0.5 * w_pos + 0.5, -0.5 * w_neg - 0.5], rtol=1e-12)
    no_psc = credit.estimate("proxmo", make_batch(rows), enable_psc=False)
    np.testing.assert_allclose(no_psc, [1.0, -1.0], rtol=1e-12)


def test_dissimilar_texts_keep_their_own_baseline():
    # texts with no word in common: the softmax is e^{1/τ} on itself vs e^0 on the other
    rows = [(0, 0, 0, 1.0, "fridge", True), (0, 1, 0, 0.0, "apple", True)]
    adv = credit.estimate("proxmo", make_batch(rows), enable_psc=False, step_advantage_w=1.0, temperature=0.1)
    self_weight = math.exp(10) / (math.exp(10) + 1)
    baseline_a = self_weight * 1.0
    np.testing.assert_allclose(adv[0], 0.5 + (1.0 - baseline_a), rtol=1e-9)


@pytest.mark.parametrize("seed", range(12))
def test_matches_the_official_algorithm_as_loops(seed):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng)
    params = {"mode": str(rng.choice(["soft_grouping", "mean_norm", "mean_std_norm"])),
              "gamma": float(rng.choice([0.9, 0.95, 1.0])), "enable_psc": bool(rng.random() > 0.3),
              "psc_alpha": float(rng.choice([2.0, 4.0])), "step_advantage_w": float(rng.choice([1.0, 0.5])),
              "temperature": float(rng.choice([0.1, 0.5])), "invalid_penalty": float(rng.choice([0.0, 0.1]))}
    expected = proxmo_loop(*[list(c) for c in zip(*rows)], **params)
    np.testing.assert_allclose(credit.estimate("proxmo", make_batch(rows), **params), expected, rtol=1e-7, atol=1e-9)


def test_spec_asks_for_text_in_soft_grouping_and_order_does_not_matter():
    spec = credit.spec("proxmo")
    assert spec.uses_text_anchors({}) and spec.uses_text_anchors({"mode": "soft_grouping"})
    assert not spec.uses_text_anchors({"mode": "mean_norm"})
    rng = np.random.default_rng(9)
    rows = random_rows(rng)
    order = rng.permutation(len(rows))
    a = credit.estimate("proxmo", make_batch(rows))
    b = credit.estimate("proxmo", make_batch([rows[i] for i in order]))
    np.testing.assert_allclose(a[order], b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="mode='soft'"):
        credit.estimate("proxmo", make_batch(rows), mode="soft")
