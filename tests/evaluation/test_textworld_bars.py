"""Issue 6 acceptance bars on TextWorld: the expert's row ≥ 95% on 50 test games, and the random
row's interval agreeing with an independent Monte-Carlo estimate of the same agent.

The Monte-Carlo check: ``evaluation.run_policy`` (``steprl baselines``: its own vector env, the
scripted-agent loop the report shares) plays the random agent on the same 50 test games, with the same
turn limit, and 4 other seeds, so 200 independent episodes. Given
the games, the report's random rate varies only through the agent's and env's randomness, so its
95% interval (which also allows for the choice of games) contains the Monte-Carlo mean with
probability ≥ 95%: the check fails rarely, but a biased random agent or a broken interval fails
it. The assertions after it make sure it has teeth: the interval is narrow enough to exclude
plausible wrong values, and the Monte-Carlo error is small against it.
"""

from __future__ import annotations

import math

import pytest

from steprl.evaluation import RandomPolicy, evaluate, run_policy

ENV = "textworld/coin_collector-v0"
MAX_TURNS = 50  # the env's registered time limit: the protocol `steprl eval` uses by default


@pytest.fixture(scope="module")
def coin_model(tmp_path_factory):
    from steprl.agent.models import build_tiny_model

    return build_tiny_model(ENV, tmp_path_factory.mktemp("coin") / "tiny", hidden=64, layers=1, vocab=400, num_tasks=2)


@pytest.fixture(scope="module")
def report(coin_model):
    return evaluate(coin_model, ENV, split="test", episodes=50, seeds=(0,), max_turns=MAX_TURNS, progress=False,
                    agent={"max_new_tokens": 4, "max_prompt_tokens": 512, "history_k": 0})


@pytest.mark.slow
def test_expert_succeeds_on_at_least_95_percent_of_50_test_games(report):
    expert = report.row("expert")
    print(f"\nexpert: {expert.successes}/{expert.episodes} = {expert.success_rate:.3f}, CI {expert.ci95}")
    assert expert.episodes == 50
    assert expert.success_rate >= 0.95
    assert report.protocol.max_turns == MAX_TURNS
    assert "| **expert (ceiling)** |" in report.to_markdown()


@pytest.mark.slow
def test_random_row_matches_an_independent_monte_carlo_estimate(report):
    row = report.row("random")
    mc = [run_policy(ENV, RandomPolicy(seed), split="test", num_tasks=50, seed=1000 * seed, progress=False,
                     max_turns=MAX_TURNS)
          for seed in range(1, 5)]
    wins, n = sum(r.successes for r in mc), sum(r.episodes for r in mc)
    p_mc = wins / n
    low, high = row.ci95
    print(f"\nrandom (report): {row.success_rate:.3f} [{low:.3f}, {high:.3f}] over {row.episodes}; "
          f"Monte-Carlo: {p_mc:.3f} over {n} (SE {math.sqrt(p_mc * (1 - p_mc) / n):.3f})")
    assert n == 200
    assert low <= p_mc <= high
    # the check can fail: a narrow interval, and a Monte-Carlo error far below its half-width
    assert high - low < 0.3
    assert math.sqrt(p_mc * (1 - p_mc) / n) < (high - low) / 2 / 3
    assert 0.05 < p_mc < 0.95  # the random agent is neither hopeless nor perfect here: a real floor
