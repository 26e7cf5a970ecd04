"""``steprl bench``: suite validation, the plan, and a tiny suite end to end (run, reuse, resume) on toy/Corridor-v0."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from pathlib import Path

import pytest
import yaml

from steprl import bench
from steprl.cli import main
from steprl.loader import ConfigError

BASE = """\
# steprl train base.yaml
run: {dir: runs/unused, iterations: 1, tasks_per_iteration: 4, group_size: 3, rollout_envs: 12, save_every: 1,
      keep_checkpoints: 3}
tiny_model: {hidden: 64, layers: 1, vocab: 300, corpus_tasks: 4}
env: {id: toy/Corridor-v0, kwargs: {}, train_tasks: 4, max_turns: 5}
agent: {engine: hf, temperature: 1.0, max_new_tokens: 3, history_k: 0}
credit: {estimator: gigpo}
trainer: {lr: 1.0e-3, micro_batch_tokens: 8192}
sft: {steps: 15, lr: 3.0e-3, batch_size: 16, episodes: 8}
eval: {split: valid, tasks: 4, every: 10, envs: 4}
"""


def suite_data(base: Path, **changes) -> dict:
    data = {
        "name": "toy",
        "base_config": str(base),
        "imports": ["tests.envs.toy"],
        "seeds": [0],
        "budget": {"iterations": 2, "tasks_per_iteration": 4, "group_size": 3},
        "methods": {"gigpo": {"overrides": ["credit.estimator=gigpo"]},
                    "grpo": {"overrides": ["credit.estimator=grpo", "credit.params={normalize: mean_std}"]}},
        "sft_plateau": {"steps": 30},
        "eval": {"episodes": 4, "split": "test"},
    }
    data.update(changes)
    return data


def write_suite(directory: Path, **changes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / "base.yaml"
    if not base.exists():
        base.write_text(BASE)
    path = directory / "suite.yaml"
    path.write_text("# steprl bench suite.yaml\n" + yaml.safe_dump(suite_data(base, **changes), sort_keys=False))
    return path


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, field", [
    ({"budget": {"iterations": 2, "tasks_per_iteration": 4, "group_size": 0}}, "budget.group_size"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"sedes": [0]}, "sedes: unknown key"),
    ({"methods": {"grpo": {"overrides": ["run.iterations=5"]}}}, "methods.grpo.overrides: Value error, override"),
    ({"methods": {"grpo": {"overrides": ["sft.steps=5"]}}}, "methods.grpo.overrides: Value error, override 'sft."),
    ({"sft_plateau": {"steps": 9, "overrides": ["agent.model=x"]}}, "sft_plateau.overrides"),
    ({"overrides": ["run.group_size=4"]}, "overrides"),
    ({"eval": {"episodes": 4, "split": "dev"}}, "eval.split"),
    ({"eval": {"temperature": 0}}, "eval.temperature"),
    ({"differences": [["gigpo", "rloo"]]}, "differences"),
    ({"name": "a/b"}, "name"),
])
def test_suite_errors_name_the_field(tmp_path, changes, field):
    with pytest.raises(ConfigError) as info:
        bench.load_suite(write_suite(tmp_path, **changes))
    assert field in str(info.value)


def test_run_config_errors_name_the_run_and_field_before_any_work(tmp_path):
    suite = bench.load_suite(write_suite(tmp_path, methods={"grpo": {"overrides": ["trainer.lr=-1"]}}))
    with pytest.raises(ConfigError, match=r"run seed0/grpo: invalid config: trainer\.lr"):
        bench.plan_suite(suite, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    missing = bench.load_suite(write_suite(tmp_path / "b", base_config="no/such.yaml"))
    with pytest.raises(ConfigError, match="base_config: 'no/such.yaml' not found"):
        bench.plan_suite(missing, tmp_path / "out")


def test_cli_reports_a_bad_suite_in_one_line_with_exit_2(tmp_path, capsys):
    path = write_suite(tmp_path, budget={"iterations": 0, "tasks_per_iteration": 4, "group_size": 3})
    assert main(["bench", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("steprl bench: error: suite") and "budget.iterations" in err and len(err.splitlines()) == 1


# -- the plan ---------------------------------------------------------------------------------
def test_plan_gives_every_row_per_seed_the_same_budget_from_one_sft_start(tmp_path):
    methods = {"gigpo": {"overrides": ["credit.estimator=gigpo"]},
               "grpo": {"overrides": ["credit.estimator=grpo", "credit.params={}"]},
               "rloo": {"overrides": ["credit.estimator=rloo", "credit.params={}"]}}
    suite = bench.load_suite(write_suite(tmp_path, seeds=[0, 1], methods=methods))
    runs = bench.plan_suite(suite, tmp_path / "out", jobs=2)
    assert [r.id for r in runs] == [f"seed{s}/{row}" for s in (0, 1)
                                    for row in ("sft_start", "sft_plateau", "gigpo", "grpo", "rloo")]
    by_id = {r.id: r for r in runs}
    for seed in (0, 1):
        start = by_id[f"seed{seed}/sft_start"]
        assert start.config.run.iterations == 0 and start.config.sft.steps == 15 and start.needs == []
        assert start.config.tiny_model is not None and start.config.run.seed == seed
        plateau = by_id[f"seed{seed}/sft_plateau"].config
        assert (plateau.run.iterations, plateau.sft.steps, plateau.tiny_model) == (0, 30, None)
        assert plateau.agent.model == str(start.run_dir / "base_model")
        for name in methods:
            run = by_id[f"seed{seed}/{name}"]
            cfg = run.config
            assert (cfg.run.iterations, cfg.run.tasks_per_iteration, cfg.run.group_size) == (2, 4, 3)
            assert (cfg.sft.steps, cfg.tiny_model, cfg.run.seed) == (0, None, seed)
            assert cfg.agent.model == str(start.run_dir / "start_model")
            assert cfg.credit.estimator == name and run.needs == [f"seed{seed}/sft_start"]
            assert (cfg.run.torch_threads, cfg.run.progress) == (1, False)
            assert run.eval_temperature == 1.0
    assert len({r.key for r in runs}) == len(runs)
    # the config hash ignores how a run is executed (--jobs) and where the tree lives (--out)
    again = bench.plan_suite(suite, tmp_path / "elsewhere", jobs=1)
    assert [r.key for r in again] == [r.key for r in runs]
    assert again[0].config.run.torch_threads is None


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    path = write_suite(tmp_path)
    assert main(["bench", str(path), "--dry-run", "--out", str(tmp_path / "out"), "--methods", "grpo"]) == 0
    out = capsys.readouterr().out
    assert "budget per method: 2 iterations × 4 tasks × K=3 = 24 episodes" in out
    assert "seed0/sft_start          [fresh]" in out and "seed0/grpo               [fresh]" in out
    assert "seed0/gigpo" not in out and "seed0/sft_plateau" not in out  # filtered; the SFT start comes along
    assert 'credit.estimator="grpo"' in out and "sft.steps=0" in out
    assert not (tmp_path / "out").exists()


def test_t_interval_over_seeds():
    mean, (low, high) = bench.t_interval([0.5, 0.6, 0.7])
    half = 4.3027 * 0.1 / math.sqrt(3)
    assert mean == pytest.approx(0.6) and (low, high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert bench.t_interval([0.4]) == (0.4, None)
    assert bench.t_quantile_975(31) == pytest.approx(2.0395, abs=1e-4)
    assert bench.t_quantile_975(120) == pytest.approx(1.9799, abs=1e-4)


@pytest.mark.parametrize("path", sorted(Path("benchmarks/suites").glob("*.yaml")), ids=str)
def test_shipped_suites_plan(path, tmp_path):
    assert path.read_text().splitlines()[0] == f"# steprl bench {path}"
    suite = bench.load_suite(path)
    runs = bench.plan_suite(suite, tmp_path)
    assert {"gigpo", "grpo"} <= suite.methods.keys() and len(suite.seeds) >= 3
    budgets = {(r.config.run.iterations, r.config.run.tasks_per_iteration, r.config.run.group_size)
               for r in runs if not r.is_sft}
    assert len(budgets) == 1 and len(runs) == len(suite.seeds) * len(suite.rows)


# -- end to end ---------------------------------------------------------------------------------
def invoke(*argv: str) -> tuple[int, str, float]:
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["bench", *argv])
    return code, out.getvalue(), time.perf_counter() - t0


@pytest.fixture(scope="module")
def toy_bench(tmp_path_factory):
    """The toy suite run once, two runs at a time: (suite path, run tree, results dir, exit code, output)."""
    root = tmp_path_factory.mktemp("bench")
    path = write_suite(root)
    code, out, _ = invoke(str(path), "--out", str(root / "runs"), "--results", str(root / "results"), "--jobs", "2")
    return path, root / "runs" / "toy" / "seed0", root / "results", code, out


@pytest.mark.slow
def test_suite_runs_every_row_and_writes_the_tables(toy_bench):
    _, tree, results, code, out = toy_bench
    assert code == 0, out
    assert out.count("done  seed0/") == 4 and "FAILED" not in out
    table = json.loads((results / "toy.json").read_text())
    assert [r["row"] for r in table["rows"]] == ["sft_start", "sft_plateau", "gigpo", "grpo"]
    assert table["missing"] == [] and table["budget"]["episodes"] == 24
    for row in table["rows"]:
        for decoding in ("greedy", "sampled"):
            assert row[decoding]["n"] == 1 and 0.0 <= row[decoding]["per_seed"]["0"] <= 1.0
            assert row[decoding]["ci95"] is None  # one seed: no interval over seeds
        assert row["wall_s"]["0"] > 0 and row["env_steps"]["0"] > 0 and len(row["config_hash"]["0"]) == 16
        assert row["commits"] and row["sampled_temperature"] == [1.0]
    rows = {r["row"]: r for r in table["rows"]}
    assert rows["gigpo"]["env_steps"]["0"] >= 2 * 4 * 3  # 24 episodes of at least one step
    diff = table["differences"][0]
    assert (diff["a"], diff["b"]) == ("gigpo", "grpo")
    assert diff["greedy"]["per_seed"]["0"] == pytest.approx(
        rows["gigpo"]["greedy"]["per_seed"]["0"] - rows["grpo"]["greedy"]["per_seed"]["0"])
    md = (results / "toy.md").read_text()
    assert "| SFT start |" in md and "| SFT plateau (30 steps) |" in md and "**gigpo − grpo**" in md
    for run in ("sft_start", "sft_plateau", "gigpo", "grpo"):
        result = json.loads((tree / run / "result.json").read_text())
        assert result["greedy"]["episodes"] == 4 and result["sampled"]["temperature"] == 1.0
        assert (tree / run / "eval_greedy" / "report.json").is_file() and (tree / run / "log.txt").stat().st_size > 0
    assert not list(results.glob("*.safetensors"))


@pytest.mark.slow
def test_every_method_starts_from_the_seeds_sft_start(toy_bench):
    from safetensors.torch import load_file

    _, tree, results, code, _ = toy_bench
    table = json.loads((results / "toy.json").read_text())
    assert table["start_check"] == {"seed0/gigpo": True, "seed0/grpo": True}
    start = json.loads((tree / "sft_start" / "result.json").read_text())
    start_weights = load_file(str(tree / "sft_start" / "start_model" / "model.safetensors"))
    for method in ("gigpo", "grpo"):
        result = json.loads((tree / method / "result.json").read_text())
        assert result["start_weights_sha256"] == start["start_weights_sha256"]
        assert result["eval_at_start"] == start["eval_at_start"]
        at_zero = load_file(str(tree / method / "checkpoints" / "iter_000000" / "model" / "model.safetensors"))
        assert at_zero.keys() == start_weights.keys()
        assert all((at_zero[k] == start_weights[k]).all() for k in start_weights)
        final = load_file(str(tree / method / "checkpoints" / "iter_000002" / "model" / "model.safetensors"))
        assert any(not (final[k] == start_weights[k]).all() for k in start_weights)  # and RL changed them
    # the greedy evaluation of the SFT start evaluated exactly those weights
    assert start["greedy"]["weights_sha256"] == start["start_weights_sha256"]


@pytest.mark.slow
def test_rerun_reuses_finished_runs(toy_bench):
    path, tree, results, _, _ = toy_bench
    before = {p: p.stat().st_mtime_ns for p in tree.glob("*/result.json")}
    code, out, wall = invoke(str(path), "--out", str(tree.parent.parent), "--results", str(results))
    assert code == 0 and out.count("reused  seed0/") == 4 and "start seed0/" not in out
    assert {p: p.stat().st_mtime_ns for p in tree.glob("*/result.json")} == before and len(before) == 4
    assert wall < 20  # no training, no evaluation: reading results and writing the table


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_checkpoint(toy_bench):
    import shutil

    path, tree, results, _, _ = toy_bench
    grpo = tree / "grpo"
    kept = [line for line in (grpo / "metrics.jsonl").read_text().splitlines() if json.loads(line)["iteration"] <= 1]
    first = json.loads((grpo / "result.json").read_text())
    (grpo / "result.json").unlink()  # as if killed during iteration 2: its checkpoint never written
    shutil.rmtree(grpo / "checkpoints" / "iter_000002")
    code, out, _ = invoke(str(path), "--out", str(tree.parent.parent), "--results", str(results))
    assert code == 0 and out.count("reused  seed0/") == 3 and "start seed0/grpo" in out
    assert "resumed at iteration 1" in out
    result = json.loads((grpo / "result.json").read_text())
    assert result["resumed_at"] == 1 and result["key"] == first["key"]
    lines = (grpo / "metrics.jsonl").read_text().splitlines()
    assert lines[:2] == kept and [json.loads(line)["iteration"] for line in lines] == [0, 1, 2]
    last_attempt = (grpo / "log.txt").read_text().split("=== ")[-1]
    assert "(resume)" in last_attempt and last_attempt.count("iter   2/2") == 1 and "iter   1/2" not in last_attempt
    assert (grpo / "checkpoints" / "iter_000002").is_dir()
    assert "resumed_at" in json.loads((results / "toy.json").read_text())["rows"][3] and \
        json.loads((results / "toy.json").read_text())["rows"][3]["resumed_at"] == {"0": 1}


@pytest.mark.slow
def test_a_changed_method_is_planned_afresh_and_the_rest_reused(toy_bench, capsys):
    path, tree, _, _, _ = toy_bench
    data = yaml.safe_load(path.read_text())
    data["methods"]["grpo"]["overrides"].append("trainer.lr=2e-4")
    changed = path.with_name("changed.yaml")
    changed.write_text(yaml.safe_dump(data))
    assert main(["bench", str(changed), "--dry-run", "--out", str(tree.parent.parent)]) == 0
    out = capsys.readouterr().out
    assert "seed0/grpo               [stale]" in out
    assert out.count("[finished]") == 3


@pytest.mark.slow
def test_sigterm_of_the_harness_ends_its_runs(tmp_path):
    """`kill` of `steprl bench` (as a session's end does) terminates the run it started, not only itself."""
    import os
    import signal
    import subprocess
    import sys

    path = write_suite(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "steprl", "bench", str(path), "--out", str(tmp_path / "runs"),
                             "--results", str(tmp_path / "results")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=Path(__file__).resolve().parents[2])
    job = tmp_path / "runs" / "toy" / "seed0" / "sft_start" / "job.json"
    deadline = time.time() + 120
    while not job.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert job.exists(), proc.communicate()[0]

    def runs_alive() -> list[int]:
        alive = []
        for pid in os.listdir("/proc"):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if str(job).encode() in cmdline:
                alive.append(int(pid))
        return alive

    assert runs_alive()  # the run's process is up
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    time.sleep(1.0)  # the toy run alone takes over 10 s more: an orphan would still be alive
    assert runs_alive() == []


@pytest.mark.slow
def test_a_setting_added_to_the_code_since_keeps_finished_runs(toy_bench):
    """A run made before a config field existed is still reused; a run whose saved config differs is not."""
    path, tree, _, _, _ = toy_bench
    grpo = tree / "grpo"
    job_text, result_text = (grpo / "job.json").read_text(), (grpo / "result.json").read_text()
    try:
        job, result = json.loads(job_text), json.loads(result_text)
        del job["config"]["agent"]["tool_schemas"]  # as an older steprl wrote it
        job["key"] = result["key"] = "0" * 16  # and the digest that older config gave
        (grpo / "job.json").write_text(json.dumps(job))
        (grpo / "result.json").write_text(json.dumps(result))
        run = next(r for r in bench.plan_suite(bench.load_suite(path), tree.parent.parent) if r.row == "grpo")
        assert run.key != "0" * 16
        assert bench.read_result(run) is not None and bench.run_state(run) == ("finished", None)
        job["config"]["trainer"]["lr"] = 0.5  # a real difference
        (grpo / "job.json").write_text(json.dumps(job))
        assert bench.read_result(run) is None and bench.run_state(run) == ("stale", None)
    finally:
        (grpo / "job.json").write_text(job_text)
        (grpo / "result.json").write_text(result_text)


@pytest.mark.slow
def test_a_run_reused_by_its_config_must_have_started_from_the_seeds_start_as_it_is_now(toy_bench):
    """A method's config names the SFT start by path only (the plateau its base model): a start redone since with
    other weights makes them stale even when their own configs, read by today's code, are unchanged; a start redone
    with the same weights under a new key (a fresh checkout's redo) does not."""
    path, tree, _, _, _ = toy_bench
    grpo, plateau, start = tree / "grpo", tree / "sft_plateau", tree / "sft_start"
    files = [d / name for d in (grpo, plateau, start) for name in ("job.json", "result.json")]
    texts = {p: p.read_text() for p in files}
    load = lambda d, name: json.loads(texts[d / name])  # noqa: E731
    try:
        start_result = load(start, "result.json")
        assert start_result["base_weights_sha256"] is not None
        assert start_result["base_weights_sha256"] != start_result["start_weights_sha256"]  # SFT changed the weights
        assert load(plateau, "result.json")["base_weights_sha256"] == start_result["base_weights_sha256"]
        recorded = {"key": start_result["key"], "start_weights_sha256": start_result["start_weights_sha256"],
                    "base_weights_sha256": start_result["base_weights_sha256"]}
        for d in (grpo, plateau):  # recorded at launch; older code's digest: reused by config
            assert load(d, "result.json")["after"] == {"seed0/sft_start": recorded}
            job, result = load(d, "job.json"), load(d, "result.json")
            job["key"] = result["key"] = "0" * 16
            (d / "job.json").write_text(json.dumps(job))
            (d / "result.json").write_text(json.dumps(result))
        planned = {r.row: r for r in bench.plan_suite(bench.load_suite(path), tree.parent.parent)}
        run, plateau_run = planned["grpo"], planned["sft_plateau"]
        assert [dep.id for dep in run.requires] == ["seed0/sft_start"] == [d.id for d in plateau_run.requires]

        def set_start(**changes):
            (start / "result.json").write_text(json.dumps({**start_result, **changes}))

        assert bench.read_result(run) is not None and bench.read_result(plateau_run) is not None
        set_start(key="1" * 16)  # redone under a new key, same weights
        assert bench.read_result(run) is not None and bench.read_result(plateau_run) is not None
        set_start(start_weights_sha256="f" * 64)  # redone with other SFT weights
        assert bench.read_result(run) is None and bench.run_state(run) == ("stale", None)
        assert bench.read_result(plateau_run) is not None  # the plateau did not start from those
        set_start(base_weights_sha256="e" * 64)  # another base model
        assert bench.read_result(plateau_run) is None and bench.run_state(plateau_run) == ("stale", None)
        result = load(grpo, "result.json")
        del result["after"]
        result["key"] = "0" * 16  # a result from before `after`: its own start weights decide
        (grpo / "result.json").write_text(json.dumps(result))
        set_start(key="1" * 16)
        assert bench.read_result(run) is not None
        set_start(start_weights_sha256="f" * 64)
        assert bench.read_result(run) is None
    finally:
        for p, text in texts.items():
            p.write_text(text)


@pytest.mark.slow
def test_a_fresh_checkout_reuses_the_committed_table_and_redoes_a_needed_start(toy_bench, tmp_path, capsys):
    """runs/ is not committed: the table's JSON carries each run's result and config, so a checkout without the run
    directories reuses them; a new method redoes its seed's SFT start (same weights and figures, checked)."""
    import shutil

    path, tree, results, _, _ = toy_bench
    committed = tmp_path / "results"
    shutil.copytree(results, committed)
    table = json.loads((committed / "toy.json").read_text())
    assert set(table["runs"]) == {"seed0/sft_start", "seed0/sft_plateau", "seed0/gigpo", "seed0/grpo"}
    assert table["runs"]["seed0/grpo"]["config"]["credit"]["estimator"] == "grpo"
    out_dir = tmp_path / "runs"  # a fresh checkout: no run directories
    assert main(["bench", str(path), "--dry-run", "--out", str(out_dir), "--results", str(committed)]) == 0
    assert capsys.readouterr().out.count("[archived]") == 4

    code, out, wall = invoke(str(path), "--out", str(out_dir), "--results", str(committed))
    assert code == 0 and out.count("(from the committed table)") == 4 and "start seed0/" not in out
    again = json.loads((committed / "toy.json").read_text())
    for before, after in zip(table["rows"], again["rows"]):
        assert after["greedy"]["per_seed"] == before["greedy"]["per_seed"]
        assert after["sampled"]["per_seed"] == before["sampled"]["per_seed"] and after["archived"] == ["0"]
    assert again["runs"] == table["runs"] and again["start_check"] == table["start_check"]
    assert "‡" in (committed / "toy.md").read_text() and not out_dir.joinpath("toy").exists()

    # --table-only writes the table from what is finished and runs nothing
    code, out, _ = invoke(str(path), "--out", str(out_dir), "--results", str(committed), "--table-only")
    assert code == 0 and "start seed0/" not in out and json.loads((committed / "toy.json").read_text())["runs"] == table["runs"]
    code, out, _ = invoke(str(path), "--out", str(out_dir), "--results", str(tmp_path / "none"), "--table-only")
    assert code == 0 and "start seed0/" not in out and not out_dir.joinpath("toy").exists()
    assert json.loads((tmp_path / "none" / "toy.json").read_text())["missing"] == [
        f"seed0/{row}" for row in ("sft_start", "sft_plateau", "gigpo", "grpo")]

    # a changed row is not taken from the archive
    data = yaml.safe_load(path.read_text())
    data["methods"]["grpo"]["overrides"].append("trainer.lr=2e-4")
    data["methods"]["rloo"] = {"overrides": ["credit.estimator=rloo"]}
    grown = path.with_name("grown.yaml")
    grown.write_text(yaml.safe_dump(data))
    assert main(["bench", str(grown), "--dry-run", "--out", str(out_dir), "--results", str(committed)]) == 0
    plan = capsys.readouterr().out
    assert "seed0/grpo               [fresh]" in plan and "seed0/rloo               [fresh]" in plan
    assert plan.count("[archived]") == 3

    # a new method starts from the SFT start, whose directory is gone: it is redone, and reproduces the archive
    code, out, _ = invoke(str(grown), "--out", str(out_dir), "--results", str(committed), "--methods", "rloo")
    assert code == 0, out
    assert "redo    seed0/sft_start" in out and "seed0/sft_start reproduces its archived figures exactly" in out
    assert "done  seed0/rloo" in out and "start seed0/gigpo" not in out
    final = json.loads((committed / "toy.json").read_text())
    rows = {r["row"]: r for r in final["rows"]}
    assert rows["sft_start"]["archived"] == [] and rows["gigpo"]["archived"] == ["0"]
    assert final["start_check"]["seed0/rloo"] is True and final["start_check"]["seed0/gigpo"] is True
    assert "seed0/grpo" in final["missing"]  # changed, not run here, not taken from the archive
