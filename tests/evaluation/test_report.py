"""Report statistics against hand-computed values, JSON/Markdown round trips, and compare()."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steprl.evaluation.report import (
    AgentResult,
    EpisodeOutcome,
    ModelInfo,
    Protocol,
    Report,
    compare,
    effective_sample_size,
    pass_at_k,
    summarize_outcomes,
    wilson_interval,
)


# -- statistics ---------------------------------------------------------------------------
def test_wilson_interval_matches_textbook_values():
    # Wilson 95% for 8/10 (Newcombe 1998, Table I): 0.4902–0.9433; for 0/10: 0–0.2775
    low, high = wilson_interval(0.8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0.0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(1.0, 50)[0] == pytest.approx(0.9287, abs=1e-4)


def test_effective_sample_size_one_play_per_task_is_the_episode_count():
    means = [1, 0, 1, 1, 0, 1, 0, 1]
    assert effective_sample_size(means, 8) == pytest.approx(8)


def test_effective_sample_size_repeated_deterministic_episodes_count_once():
    # 10 tasks × 4 seeds, each task all-or-nothing (greedy on a deterministic env): 10 independent units
    means = [1.0] * 6 + [0.0] * 4
    assert effective_sample_size(means, 40) == pytest.approx(10)
    assert effective_sample_size([1.0] * 10, 40) == 10  # p = 1: the task count


def test_effective_sample_size_homogeneous_tasks_use_every_episode():
    # every task succeeds half the time over 4 samples: as good as 40 independent draws (capped at N)
    assert effective_sample_size([0.5] * 10, 40) == 40


def test_design_effect_interval_covers_where_naive_wilson_does_not():
    """Simulated greedy evaluations (4 seeds replay the same outcome per task): naive Wilson over all
    episodes under-covers the true rate; the design-effect interval keeps ~95%."""
    rng = np.random.default_rng(0)
    true_p, tasks, seeds, trials = 0.6, 50, 4, 2000
    naive = adjusted = 0
    for _ in range(trials):
        task_success = rng.random(tasks) < true_p  # each task's (deterministic) outcome
        p = task_success.mean()
        lo, hi = wilson_interval(p, tasks * seeds)
        naive += lo <= true_p <= hi
        lo, hi = wilson_interval(p, effective_sample_size(task_success.astype(float), tasks * seeds))
        adjusted += lo <= true_p <= hi
    assert adjusted / trials >= 0.93
    assert naive / trials <= 0.80


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 9), data=st.data())
def test_pass_at_k_equals_the_share_of_successful_k_subsets(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    brute = sum(any(s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError, match="k=5, n=4"):
        pass_at_k(4, 1, 5)


# -- summarize ------------------------------------------------------------------------------------
def outcome(task, seed, success, sample=0, turns=4, invalid=1, unparseable=0, truncated=False, task_type=None):
    return EpisodeOutcome(task, seed, sample, success, float(success), turns, invalid, unparseable, truncated,
                          task_type)


def test_summary_numbers_by_hand():
    # seed 0: tasks 0,1,2 → 1,1,0 ; seed 1: → 1,0,0
    outs = [outcome(0, 0, True), outcome(1, 0, True), outcome(2, 0, False, truncated=True),
            outcome(0, 1, True), outcome(1, 1, False, unparseable=2), outcome(2, 1, False, truncated=True)]
    row = summarize_outcomes("model", outs, seeds=[0, 1])
    assert row.episodes == 6 and row.successes == 3
    assert row.success_rate == 0.5
    assert row.success_per_seed == pytest.approx([2 / 3, 1 / 3])
    assert row.success_std == pytest.approx(np.std([2 / 3, 1 / 3], ddof=1))
    assert row.invalid_share == pytest.approx(6 / 24)
    assert row.unparseable_share == pytest.approx(2 / 24)
    assert row.truncation_rate == pytest.approx(2 / 6)
    assert row.mean_reward == 0.5 and row.mean_turns == 4
    # task means 1, 0.5, 0 → Var 1/6, p(1-p) = 1/4 → n_eff = 3 · (1/4) / (1/6) = 4.5
    assert row.effective_n == pytest.approx(4.5)
    assert row.ci95 == pytest.approx(list(wilson_interval(0.5, 4.5)))
    assert row.pass_at_k == {}


def test_summary_pass_at_k_and_task_types():
    # k = 4 samples of 2 tasks, one seed: task 0 succeeds 1/4, task 1 succeeds 3/4
    outs = [outcome(0, 0, s == 0, sample=s, task_type="short") for s in range(4)]
    outs += [outcome(1, 0, s != 0, sample=s, task_type="long") for s in range(4)]
    row = summarize_outcomes("model", outs, seeds=[0], k=4)
    assert set(row.pass_at_k) == {"1", "2", "4"}
    assert row.pass_at_k["1"] == pytest.approx(0.5)
    assert row.pass_at_k["2"] == pytest.approx((0.5 + 1.0) / 2)  # task 0: 1 - C(3,2)/C(4,2) = 1/2; task 1: 1
    assert row.pass_at_k["4"] == 1.0
    assert row.by_task_type["short"]["success_rate"] == 0.25
    assert row.by_task_type["long"]["success_rate"] == 0.75
    assert row.by_task_type["long"]["episodes"] == 4


def test_scripted_agents_have_no_unparseable_share():
    outs = [EpisodeOutcome(0, 0, 0, True, 1.0, 3, 0, None, False)]
    assert summarize_outcomes("expert", outs, [0]).unparseable_share is None


# -- the report -----------------------------------------------------------------------------------
def make_report(successes: int, episodes: int = 50, split: str = "test", path: str = "models/a") -> Report:
    outs = [outcome(t, 0, t < successes) for t in range(episodes)]
    protocol = Protocol(env_id="textworld/coin_collector-v0", env_version="v0", env_kwargs={"level": [2, 3]},
                        split=split, episodes=episodes, seeds=[0], k=1, decoding="greedy", temperature=0.0, top_p=1.0,
                        top_k=0, max_new_tokens=8, max_turns=20, prompt={"history_k": 4})
    model = ModelInfo(path=path, weights=path, sha256="ab" * 32, source="model folder")
    rows = [summarize_outcomes("model", outs, [0]),
            summarize_outcomes("random", [EpisodeOutcome(t, 0, 0, t % 3 == 0, 0.0, 9, 0, None, True)
                                          for t in range(episodes)], [0])]
    return Report(protocol, model, rows, "0.1.0", "2025-01-01T00:00:00", notes=["a note"])


def test_json_round_trip(tmp_path):
    report = make_report(20)
    json_path, _ = report.save(tmp_path / "out")
    loaded = Report.load(json_path)
    assert loaded == report
    assert loaded.to_dict() == json.loads(json_path.read_text())
    assert Report.load(tmp_path / "out").row("random").successes == 17  # a folder works too


def test_markdown_has_protocol_and_rows():
    md = make_report(20).to_markdown()
    assert "`textworld/coin_collector-v0` (version v0)" in md
    assert "| seeds | 0 |" in md and "greedy" in md
    assert "| **model** | 40.0% |" in md
    assert "| **random (floor)** | 34.0% |" in md
    assert "- a note" in md


def test_load_rejects_non_reports(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="format"):
        Report.load(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError, match="no report"):
        Report.load(tmp_path / "missing.json")


# -- compare --------------------------------------------------------------------------------------
def test_compare_difference_and_standard_error_by_hand():
    a, b = make_report(20), make_report(30, path="models/b")
    c = compare(a, b)
    assert c.protocols_match
    assert c.difference == pytest.approx(0.2)
    assert c.stderr == pytest.approx(math.sqrt(0.4 * 0.6 / 50 + 0.6 * 0.4 / 50))
    # Newcombe: d ± sqrt of the squared Wilson half-widths on the matching sides
    la, ua = wilson_interval(0.4, 50)
    lb, ub = wilson_interval(0.6, 50)
    assert c.ci95[0] == pytest.approx(0.2 - math.sqrt((0.6 - lb) ** 2 + (ua - 0.4) ** 2))
    assert c.ci95[1] == pytest.approx(0.2 + math.sqrt((ub - 0.6) ** 2 + (0.4 - la) ** 2))
    assert c.p_value == pytest.approx(math.erfc(abs(0.2 / c.stderr) / math.sqrt(2)))
    # same 50 episodes: per-task differences are 1 on tasks 20..29, else 0
    diffs = np.array([1.0 if 20 <= t < 30 else 0.0 for t in range(50)])
    assert c.paired_stderr == pytest.approx(diffs.std(ddof=1) / math.sqrt(50))
    text = c.text()
    assert "Protocols match" in text and "B − A: +20.0 points" in text


def test_compare_interval_matches_newcombe_1998():
    # Newcombe (1998), Table II example (a): 56/70 − 48/80, method 10 (hybrid score): 0.0524 to 0.3339
    c = compare(make_report(48, episodes=80), make_report(56, episodes=70))
    assert c.difference == pytest.approx(0.2)
    assert c.ci95 == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert c.paired_stderr is None  # different episodes: no pairing
    assert "episodes: 80 vs 70" in c.text()


def test_compare_states_protocol_differences():
    text = compare(make_report(20), make_report(20, split="valid")).text()
    assert text.startswith("PROTOCOLS DIFFER")
    assert "split: 'test' vs 'valid'" in text
    assert "no significant difference" in text


def test_compare_at_the_boundary_keeps_a_real_interval():
    c = compare(make_report(50), make_report(50))
    assert c.stderr == 0 and c.z is None
    assert c.ci95[0] < 0 < c.ci95[1]  # 50/50 vs 50/50 does not prove equality to the last point


def test_row_lookup_names_the_rows():
    with pytest.raises(KeyError, match="expert"):
        make_report(1).row("expert")
    assert isinstance(make_report(1).row("model"), AgentResult)
