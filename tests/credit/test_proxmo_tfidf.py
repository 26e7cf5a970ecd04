"""ProxMO's vectorized TF-IDF and soft baseline on hard inputs, in every code path.

The TF-IDF tokenizes chunks of texts at once (ASCII bytes or UTF-32 code points), keys the
tokens through direct-mapped tables (long tokens by their chained words) and merges a term's
ids of the two widths by its string; the soft baseline counts terms into per-group blocks. The
module constants below shrink the chunks and tables so that small batches take every path:
many chunks of mixed widths, table collisions and the dict of left-over keys, the sorted
(group, term) codes. Checked against scikit-learn's TfidfVectorizer and the plain-loop
reference (credit/reference.py), which computes the similarities row by row.
"""

from __future__ import annotations

import numpy as np
import pytest

from steprl import credit
from steprl.credit import proxmo
from steprl.credit.reference import proxmo_loop

WORDS = ["go", "to", "the", "Fridge", "FRIDGE", "fridge", "a", "1", "22", "countertop", "countertops", "abcdefgh",
         "abcdefghi", "x" * 17, "ΣΑΣ", "Ὀδυσσεύς", "straße", "İstanbul", "日本語", "snake_case", "__", "٣٤", "ﬁne",
         "café", "CAFÉ", "ab"]
CHARACTERS = list("abXY09_ .,\n-'") + list("éÉßΣσςİΩωДд日٣") + ["\u0301", "ǅ", "½", "²"]

# (chunk characters, table bits, direct (group, term) codes, spread): the default, then the fallback paths
PATHS = [(1 << 21, 18, 1 << 16, 4), (48, 2, -(1 << 62), 4), (200, 3, 1 << 16, 4), (1 << 21, 18, -(1 << 62), 1),
         (1 << 21, 18, -(1 << 62), 0)]


def random_text(rng) -> str:
    kind = rng.random()
    if kind < 0.08:
        return ""
    if kind < 0.6:
        return " ".join(rng.choice(WORDS, size=int(rng.integers(1, 9))).tolist()) + str(rng.choice(["", ".", "!"]))
    if kind < 0.64:  # tokens longer than proxmo._LONG characters, ASCII and not
        return str(rng.choice(["z", "É"])) * int(rng.integers(proxmo._LONG - 2, proxmo._LONG + 50)) + " tail"
    return "".join(rng.choice(CHARACTERS, size=int(rng.integers(1, 40))).tolist())


@pytest.fixture(params=PATHS, ids=["default", "tiny-chunks", "tiny-tables", "codes-by-term", "codes-sorted"])
def path(request, monkeypatch):
    chunk_chars, bits, direct, spread = request.param
    monkeypatch.setattr(proxmo, "_CHUNK_CHARS", chunk_chars)
    monkeypatch.setattr(proxmo, "_BITS", bits)
    monkeypatch.setattr(proxmo, "_DIRECT_CODES", direct)
    monkeypatch.setattr(proxmo, "_SPREAD", spread)
    return request.param


@pytest.mark.parametrize("seed", range(8))
def test_tfidf_is_scikit_learns_on_unicode_and_long_tokens(seed, path):
    sklearn = pytest.importorskip("sklearn.feature_extraction.text", reason="scikit-learn is in the dev extra")
    rng = np.random.default_rng(seed)
    pool = [random_text(rng) for _ in range(int(rng.integers(2, 30)))]
    if seed % 2:
        pool = [text.encode("ascii", "ignore").decode() or "x y" for text in pool]
    texts = [pool[i] for i in rng.integers(0, len(pool), size=int(rng.integers(1, 120)))]
    reference = sklearn.TfidfVectorizer(max_features=1024)
    try:
        expected = reference.fit_transform(texts).toarray()
    except ValueError:  # no word anywhere
        assert proxmo.tfidf(texts)[1] == []
        return
    codes, vocabulary, matrix = proxmo.tfidf(texts)
    assert vocabulary == list(reference.get_feature_names_out())
    np.testing.assert_allclose(matrix[codes], expected, rtol=1e-12, atol=1e-15)


def random_rows(rng, groups: int):
    pool = [random_text(rng) for _ in range(int(rng.integers(2, 25)))]
    rows, traj = [], 0
    for group in range(groups):
        for _ in range(int(rng.integers(1, 5))):
            length, won = int(rng.integers(1, 7)), bool(rng.random() > 0.5)
            for step in range(length):
                rows.append((group, traj, step, float(won and step == length - 1),
                             pool[int(rng.integers(0, len(pool)))], bool(rng.random() > 0.15)))
            traj += 1
    return [rows[i] for i in rng.permutation(len(rows))]


@pytest.mark.parametrize("seed", range(8))
def test_soft_baseline_matches_the_loops(seed, path):
    rng = np.random.default_rng(100 + seed)
    rows = random_rows(rng, groups=int(rng.integers(1, 12)))
    params = {"temperature": float(rng.choice([0.1, 0.5, 0.002])), "max_features": int(rng.choice([1024, 4])),
              "gamma": 0.9, "enable_psc": bool(seed % 2)}
    expected = proxmo_loop(*[list(column) for column in zip(*rows)], **params)
    group_id, traj_id, step, reward, anchor, valid = (list(column) for column in zip(*rows))
    batch = credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid)
    np.testing.assert_allclose(credit.estimate("proxmo", batch, **params), expected, rtol=1e-9, atol=1e-9)


def test_one_term_in_ascii_and_unicode_chunks_is_one_column(monkeypatch):
    # "fridge" is keyed by bytes in the ASCII chunks and by code points in the others; one term for the cap
    monkeypatch.setattr(proxmo, "_CHUNK_CHARS", 16)
    texts = ["fridge apple", "fridge é", "fridge pear", "fridge ü", "apple pear"]
    codes, vocabulary, matrix = proxmo.tfidf(texts, max_features=2)
    assert vocabulary == ["apple", "fridge"]
    assert np.count_nonzero(matrix[codes][:, 1]) == 4


@pytest.mark.parametrize("seed", range(6))
def test_group_term_codes_in_every_strategy(seed, monkeypatch):
    # one table of all (group, term); or by term: a code for a term of one group, table rows for terms in many
    # groups, sorted pairs for terms in a few
    rng = np.random.default_rng(seed)
    n_groups = int(rng.integers(1, 40))
    group = np.unique(np.sort(rng.integers(0, n_groups, size=int(rng.integers(n_groups, 3 * n_groups + 1)))),
                      return_inverse=True)[1]  # every group has a unit
    n_groups = int(group.max()) + 1
    per_unit = rng.integers(0, 6, size=group.size)
    token_group = np.repeat(group, per_unit)
    # terms in any group (many tokens), in a few neighbouring groups (few tokens), in one group
    kind = rng.random(token_group.size)
    term = np.where(kind < 0.4, rng.integers(0, 3, size=token_group.size),
                    np.where(kind < 0.7, 3 + (token_group + rng.integers(0, 3, size=token_group.size)) // 3,
                             1000 + token_group))
    term = np.unique(term, return_inverse=True)[1]  # terms 0..n_terms-1, all occurring
    n_terms = int(term.max()) + 1 if term.size else 1
    for direct, spread_factor in ((1 << 40, 4), (-(1 << 62), 4), (-(1 << 62), 1 << 40), (-(1 << 62), 0)):
        monkeypatch.setattr(proxmo, "_DIRECT_CODES", direct)
        monkeypatch.setattr(proxmo, "_SPREAD", spread_factor)
        code, n_codes, pair_of = proxmo._group_terms(group, per_unit, term, n_groups, n_terms)
        assert code.size == 0 or 0 <= code.min() <= code.max() < n_codes
        code_group, code_term = pair_of(code)
        np.testing.assert_array_equal(code_group, token_group)
        np.testing.assert_array_equal(code_term, term)
        # the code gives the (group, term) (above), and no two codes the same one
        assert np.unique(code).size == np.unique(token_group * n_terms + term).size


@pytest.mark.parametrize("seed", range(4))
def test_parts_on_two_threads_match_one_thread_and_the_loops(seed, monkeypatch):
    # a big batch's parts go to credit's background thread and the caller, each with its own term ids: tiny
    # parts and a zero thread threshold make both threads count (and the tiny tables collide); the results
    # are the same bit for bit as on one thread, with the rows in the agent's order or shuffled
    from steprl.credit import batch as batch_module

    rng = np.random.default_rng(200 + seed)
    rows = random_rows(rng, groups=int(rng.integers(8, 20)))
    if seed % 2:  # agent order: trajectory by trajectory, groups in order (StepBatch.rows_by_group)
        rows.sort(key=lambda row: (row[0], row[1], row[2]))
    params = {"temperature": float(rng.choice([0.1, 0.5])), "max_features": int(rng.choice([1024, 6]))}
    expected = proxmo_loop(*[list(column) for column in zip(*rows)], **params)
    group_id, traj_id, step, reward, anchor, valid = (list(column) for column in zip(*rows))
    monkeypatch.setattr(proxmo, "_CHUNK_CHARS", 40)
    monkeypatch.setattr(proxmo, "_BITS", 3)
    results = []
    for threshold in (0, 1, 1, 0):
        monkeypatch.setattr(batch_module, "BACKGROUND_MIN_ROWS", threshold)
        batch = credit.StepBatch(np.array(group_id), np.array(traj_id), np.array(step), reward, anchor, valid=valid)
        assert batch.rows_by_group == bool(seed % 2)
        results.append(credit.estimate("proxmo", batch, **params))
    np.testing.assert_allclose(results[0], expected, rtol=1e-9, atol=1e-9)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_repeated_texts_count_once_per_group_and_texts_with_nul_or_newlines():
    # rows that repeat a text share one cell of their group (weighted by its rows); texts holding NUL or
    # newlines (the tokenizer joins the texts with NUL) fall back to the texts' lengths for their offsets
    sklearn = pytest.importorskip("sklearn.feature_extraction.text", reason="scikit-learn is in the dev extra")
    texts = ["go to\0fridge 1", "fridge\n\nopen it", "\0\0", "go to fridge 1", "open fridge", "x"]
    reference = sklearn.TfidfVectorizer(max_features=1024)
    expected = reference.fit_transform(texts).toarray()
    codes, vocabulary, matrix = proxmo.tfidf(texts)
    assert vocabulary == list(reference.get_feature_names_out())
    np.testing.assert_allclose(matrix[codes], expected, rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(7)
    rows = []
    for group in range(3):
        for traj in range(4):
            length = int(rng.integers(2, 9))
            for step in range(length):
                rows.append((group, group * 10 + traj, step, float(step == length - 1 and traj % 2),
                             texts[int(rng.integers(0, 3))] if step % 3 else texts[3 + group], True))
    expected = proxmo_loop(*[list(column) for column in zip(*rows)])
    group_id, traj_id, step, reward, anchor, valid = (list(column) for column in zip(*rows))
    batch = credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid)
    np.testing.assert_allclose(credit.estimate("proxmo", batch), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_vocabulary_merges_the_term_ids_of_several_threads(seed):
    # each thread keys its tokens into its own _Terms; the vocabulary and its columns are those of one _Terms
    # that saw every text
    rng = np.random.default_rng(300 + seed)
    texts = [random_text(rng) for _ in range(int(rng.integers(10, 40)))]
    cut = int(rng.integers(1, len(texts)))
    max_features = int(rng.choice([1024, 5]))

    def counted(terms, these):
        indptr, ids, _ = terms.tokenize(these)
        return np.bincount(ids, minlength=terms.space).astype(np.float64)

    one = proxmo._Terms()
    vocabulary, column = one.vocabulary(counted(one, texts), max_features)
    parts = [proxmo._Terms(), proxmo._Terms()]
    totals = [counted(terms, these) for terms, these in zip(parts, (texts[:cut], texts[cut:]))]
    merged, columns = proxmo._vocabulary(parts, totals, max_features)
    assert merged == vocabulary
    for terms, these, part_column in zip(parts, (texts[:cut], texts[cut:]), columns):
        ids_one, ids_part = one.tokenize(these)[1], terms.tokenize(these)[1]
        np.testing.assert_array_equal(part_column[ids_part], column[ids_one])


@pytest.mark.parametrize("temperature", [0.1, 0.002])
def test_terms_of_one_template_share_a_column(temperature, monkeypatch):
    # texts of one template: in a group, the template's words have the same counts in every text and share one
    # block column (idf² summed); words that vary keep theirs. The baseline is the loops' all the same
    rng = np.random.default_rng(11)
    rows = []
    for group in range(6):
        for traj in range(4):
            length = int(rng.integers(1, 12))
            for step in range(length):
                a = int(rng.integers(0, 30))
                text = (f"Task {group}. You are in room {a} of the house, you see a cabinet {a % 7} and a drawer "
                        f"{a % 11}." + (" The drawer is open, the drawer is open." if a % 3 == 0 else ""))
                rows.append((group, group * 10 + traj, step, float(step == length - 1 and traj % 2), text, True))
    params = {"temperature": temperature}
    expected = proxmo_loop(*[list(column) for column in zip(*rows)], **params)
    group_id, traj_id, step, reward, anchor, valid = (list(column) for column in zip(*rows))
    merged = []
    original = proxmo._same_columns
    monkeypatch.setattr(proxmo, "_same_columns", lambda *a: merged.append(original(*a)) or merged[-1])
    batch = credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=valid)
    np.testing.assert_allclose(credit.estimate("proxmo", batch, **params), expected, rtol=1e-9, atol=1e-9)
    assert sum(rep.size for _, rep in merged) < sum(columns.size for columns, _ in merged)  # columns did merge
