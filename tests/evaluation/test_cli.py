"""`steprl eval`: one clear error line and exit code 2 for a bad model, env or split; reports and --compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from steprl.evaluation.report import Report
from tests.evaluation.test_report import make_report

ENV = "textworld/coin_collector-v0"


def steprl(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "steprl", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from steprl.agent.models import build_tiny_model

    corpus = ["You are in a room.", "go east", "go west", "take coin", "You see a coin.", "Find the coin."] * 30
    return str(build_tiny_model(corpus, tmp_path_factory.mktemp("m") / "tiny", hidden=64, layers=1, vocab=300))


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory):
    bad = tmp_path_factory.mktemp("bad")
    (bad / "config.json").write_text('{"model_type": "qwen2", "hidden_size": "wide"}')
    (bad / "model.safetensors").write_bytes(b"\x00" * 64)
    return str(bad)


def assert_one_line_error(out: subprocess.CompletedProcess, *fragments: str) -> None:
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("steprl eval: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_model(tmp_path):
    missing = str(tmp_path / "no_such_model")
    assert_one_line_error(steprl("eval", "--model", missing, "--env", ENV), "does not exist", missing)


@pytest.mark.slow
def test_model_that_cannot_be_loaded(broken_model):
    assert_one_line_error(steprl("eval", "--model", broken_model, "--env", ENV, "--no-progress"),
                          "cannot load model", broken_model)


def test_unknown_env_id(tiny_model):
    assert_one_line_error(steprl("eval", "--model", tiny_model, "--env", "textworld/coin_colector-v0"),
                          "unknown env id 'textworld/coin_colector-v0'", "Did you mean")


@pytest.mark.parametrize("args, fragments", [
    (["--episodes", "0"], ["episodes=0", "no tasks"]),
    (["--split", "holdout"], ["split='holdout'", "not one of"]),
])
def test_split_with_no_tasks(tiny_model, args, fragments):
    assert_one_line_error(steprl("eval", "--model", tiny_model, "--env", ENV, *args), *fragments)


def test_eval_without_model_or_compare():
    assert_one_line_error(steprl("eval", "--env", ENV), "--model")


@pytest.mark.slow
def test_eval_prints_markdown_and_writes_report(tiny_model, tmp_path):
    out_dir = tmp_path / "report"
    out = steprl("eval", "--model", tiny_model, "--env", ENV, "--episodes", "2", "--max-turns", "3", "--seeds", "0",
                 "1", "--out", str(out_dir), "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| **model** |" in out.stdout and "| **expert (ceiling)** |" in out.stdout
    report = Report.load(out_dir / "report.json")
    assert report.protocol.seeds == [0, 1] and report.protocol.episodes == 2 and report.protocol.max_turns == 3
    assert report.row("model").episodes == 4
    assert (out_dir / "report.md").read_text() == report.to_markdown()
    for seed in (0, 1):
        assert len((out_dir / f"episodes_seed{seed}.jsonl").read_text().splitlines()) == 2


def test_compare_prints_the_difference_and_protocol_verdict(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(make_report(20).to_json())
    b.write_text(make_report(30, path="models/b").to_json())
    out = steprl("eval", "--compare", str(a), str(b))
    assert out.returncode == 0, out.stderr
    assert "Protocols match" in out.stdout
    assert "B − A: +20.0 points, 95% CI [+0.5, +37.5]" in out.stdout

    c = tmp_path / "c.json"
    c.write_text(make_report(30, split="valid").to_json())
    out = steprl("eval", "--compare", str(a), str(c))
    assert out.returncode == 0 and out.stdout.startswith("PROTOCOLS DIFFER")
    assert "split: 'test' vs 'valid'" in out.stdout

    (tmp_path / "junk.json").write_text(json.dumps({"x": 1}))
    assert_one_line_error(steprl("eval", "--compare", str(a), str(tmp_path / "junk.json")), "format")
    assert_one_line_error(steprl("eval", "--compare", str(a), str(tmp_path / "none.json")), "no report")
