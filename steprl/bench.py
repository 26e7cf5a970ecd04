"""``steprl bench SUITE.yaml``: one env family's Table 1, every method from the same SFT start at the same budget.

    steprl bench benchmarks/suites/coin_collector.yaml --jobs 2
    steprl bench benchmarks/suites/coin_collector.yaml --dry-run          # the plan, nothing run

For each seed of the suite:

1. ``sft_start``: the base config with ``run.iterations=0``: the model is built (or
   loaded) and warm-started by SFT on expert steps **once**; the result is exported as
   a plain HF model folder with its tokenizer (``start_model/``);
2. ``sft_plateau``: the same base model trained by SFT alone for ``sft_plateau.steps``
   steps (what imitation reaches by itself);
3. one run per method, each loading ``start_model/`` (``tiny_model=null``,
   ``sft.steps=0``) with the suite's budget: the same iterations × tasks × K episodes.

Every final policy (and both SFT rows) is evaluated with :func:`steprl.evaluation.evaluate`
on the held-out split, greedily and sampled at the training temperature, one episode
per task. The table gives per row the mean over seeds with a 95% t-interval over seeds
(``mean ± t_{0.975,n-1}·sd/√n``, sd with ddof 1), each seed's value, wall time and env
steps; and per pair in ``differences`` (default GiGPO − GRPO) the seed-paired difference
with its t-interval.

Each run lives in ``OUT/<suite>/seed<S>/<row>/`` and runs in its own subprocess (its output
goes to ``log.txt`` there), which writes ``result.json`` when done. A rerun reuses every run
whose ``result.json`` has the same config hash, resumes a run with checkpoints from its
latest one, and starts afresh a run whose config changed.

The table's JSON keeps every finished run's ``result.json`` and config under ``runs``, so a
suite carries over to a fresh checkout (``runs/`` is not committed): a run whose directory
is gone is reused from there when its saved config is the planned one. If a run still to
do starts from such a run (a method from its seed's SFT start), that run is redone first
and the harness says whether the redone figures and weights equal the archived ones.

Left out on purpose: anything but success rates in the table (the per-run reports under
``eval_greedy/`` and ``eval_sampled/`` have turns, invalid actions and intervals per seed),
scheduling across machines, and early stopping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from steprl.loader import ConfigError, format_validation_error, load_config, read_yaml_mapping

__all__ = ["Suite", "load_suite", "PlannedRun", "plan_suite", "run_suite", "build_table", "table_markdown",
           "t_interval", "run_job", "load_archive", "attach_archive", "SFT_START", "SFT_PLATEAU"]

SFT_START = "sft_start"
SFT_PLATEAU = "sft_plateau"
RESULT = "result.json"
STARTED_FROM = ("start_weights_sha256", "base_weights_sha256")
"""What a run's result records of the weights it started from (its SFT start's: what it exported and its base model)."""
JOB = "job.json"
LOG = "log.txt"
START_MODEL = "start_model"
BUDGET_KEYS = ("run.iterations", "run.tasks_per_iteration", "run.group_size")
HARNESS_KEYS = ("run.seed", "run.dir")  # set per run by the harness
START_KEYS = ("tiny_model", "agent.model", "sft.")  # a method starts from the SFT start, not from these
# run settings that change how a run is executed, not what it computes: left out of the config hash
BOOKKEEPING = ("dir", "progress", "overwrite", "torch_threads")


# -- the suite file ---------------------------------------------------------------------------
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class BudgetSpec(_Spec):
    """What every method gets: the same number of episodes (iterations × tasks × K)."""

    iterations: int = Field(ge=1)
    """RL iterations of every method run."""
    tasks_per_iteration: int = Field(ge=1)
    """Tasks (groups) per iteration."""
    group_size: int = Field(ge=1)
    """Episodes per task (K)."""

    @property
    def episodes(self) -> int:
        return self.iterations * self.tasks_per_iteration * self.group_size


class MethodSpec(_Spec):
    """One method: overrides on top of the base config and the suite's overrides."""

    overrides: list[str] = Field(default_factory=list)
    """Dotted ``key=value`` overrides, e.g. ``credit.estimator=grpo``."""

    @field_validator("overrides")
    @classmethod
    def _not_harness_keys(cls, value: list[str]) -> list[str]:
        _check_overrides(value, BUDGET_KEYS + HARNESS_KEYS + START_KEYS,
                         "every method gets the suite's budget and starts from the seed's SFT start")
        return value


class PlateauSpec(_Spec):
    """SFT alone, trained longer from the same base model on the same expert data."""

    steps: int = Field(ge=1)
    """SFT steps (the warm start's ``sft.steps`` is the short one)."""
    overrides: list[str] = Field(default_factory=list)
    """Extra overrides of the plateau run (e.g. ``sft.lr=3e-4``)."""

    @field_validator("overrides")
    @classmethod
    def _not_harness_keys(cls, value: list[str]) -> list[str]:
        _check_overrides(value, BUDGET_KEYS + HARNESS_KEYS + ("tiny_model", "agent.model", "sft.steps"),
                         "the plateau starts from the seed's base model; its length is sft_plateau.steps")
        return value


class EvalSpec(_Spec):
    """The final evaluation of every row, greedy and sampled."""

    episodes: int = Field(200, ge=1)
    """Tasks ``0..episodes-1`` of the split, one episode each per evaluation seed."""
    split: Literal["train", "valid", "test"] = "test"
    """Held-out split."""
    temperature: float | None = Field(None, gt=0)
    """Temperature of the sampled evaluation; None = each run's training temperature (``agent.temperature``)."""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    """Evaluation seeds (env reset and sampling seeds)."""


class Suite(_Spec):
    """A benchmark suite: one base config, methods, seeds, one budget, one evaluation."""

    name: str
    """Names the run tree (``OUT/<name>/``) and the tables (``benchmarks/results/<name>.md``)."""
    base_config: str
    """Run config every run starts from (path relative to the working directory)."""
    imports: list[str] = Field(default_factory=list)
    """Modules imported before configs are read (envs registered in your own code)."""
    overrides: list[str] = Field(default_factory=list)
    """Dotted ``key=value`` overrides applied to every run."""
    seeds: list[int] = Field(min_length=1)
    """Training seeds; every row is run once per seed."""
    methods: dict[str, MethodSpec] = Field(min_length=1)
    """Method name → its overrides."""
    budget: BudgetSpec
    """Iterations, tasks per iteration and K: the same for every method."""
    sft_plateau: PlateauSpec | None = None
    """The SFT-plateau row; None = no such row."""
    eval: EvalSpec = Field(default_factory=EvalSpec)
    """The final evaluation."""
    differences: list[tuple[str, str]] | None = None
    """Seed-paired differences ``[a, b]`` (a − b) to report; None = ``[gigpo, grpo]`` when both are methods."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError(f"name {value!r} must be letters, digits, '_', '.', '-' (it names a folder)")
        return value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds {value} has duplicates")
        return value

    @field_validator("overrides")
    @classmethod
    def _suite_overrides(cls, value: list[str]) -> list[str]:
        _check_overrides(value, BUDGET_KEYS + HARNESS_KEYS, "set it under budget: (iterations, tasks, K) or "
                         "leave it to the harness (seed, dir)")
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: dict[str, MethodSpec]) -> dict[str, MethodSpec]:
        for name, method in value.items():
            if name in (SFT_START, SFT_PLATEAU) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
                raise ValueError(f"method name {name!r} must be letters, digits, '_', '.', '+', '-' and not "
                                 f"{SFT_START!r} or {SFT_PLATEAU!r}")
        return value

    @model_validator(mode="after")
    def _differences(self) -> "Suite":
        for pair in self.differences or []:
            unknown = [m for m in pair if m not in self.methods]
            if unknown:
                raise ValueError(f"differences: {pair} names {unknown}, not methods of the suite "
                                 f"({list(self.methods)})")
        return self

    @property
    def rows(self) -> list[str]:
        """The table's rows, in order."""
        return [SFT_START, *([SFT_PLATEAU] if self.sft_plateau is not None else []), *self.methods]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        if self.differences is not None:
            return [tuple(p) for p in self.differences]
        return [("gigpo", "grpo")] if {"gigpo", "grpo"} <= self.methods.keys() else []


def _check_overrides(overrides: Sequence[str], reserved: Sequence[str], why: str) -> None:
    for item in overrides:
        key, sep, _ = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        if any(key == r.rstrip(".") or key.startswith(r if r.endswith(".") else r + ".") for r in reserved):
            raise ValueError(f"override {item!r} sets {key}, which the harness owns: {why}")


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; :class:`ConfigError` names the field at fault."""
    path = Path(path)
    data = read_yaml_mapping(path, "suite file", "a mapping (name, base_config, seeds, methods, ...)")
    if data is None:
        raise ConfigError(f"suite {path} is empty: it needs name, base_config, seeds, methods, ...")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"suite {path}: {format_validation_error(exc)}") from None


# -- the plan ---------------------------------------------------------------------------------
@dataclasses.dataclass
class PlannedRun:
    """One run of a suite: its row, seed, directory, resolved config and the runs it needs first."""

    row: str
    seed: int
    run_dir: Path
    config: Any  # RunConfig
    overrides: list[str]
    key: str
    """Hash of the resolved config (bookkeeping left out) and of the keys of the runs it starts from."""
    eval_key: str
    """Hash of the final evaluation's settings."""
    eval_temperature: float
    """Temperature of the sampled evaluation."""
    requires: list["PlannedRun"] = dataclasses.field(default_factory=list, repr=False)
    """The planned runs this one starts from (the seed's SFT start): it waits for them, and a reused run must have
    started from them as they are now."""
    archived: dict | None = None
    """This run's entry in the suite's committed table (``{"result": ..., "config": ...}``), if there is one: a run
    whose directory is gone (``runs/`` is not committed) is reused from it when its config is the planned one."""

    @property
    def id(self) -> str:
        return f"seed{self.seed}/{self.row}"

    @property
    def needs(self) -> list[str]:
        """The ids of the runs in :attr:`requires`."""
        return [dep.id for dep in self.requires]

    @property
    def is_sft(self) -> bool:
        return self.row in (SFT_START, SFT_PLATEAU)


def import_modules(names: Sequence[str]) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"imports: cannot import {name!r} ({exc})") from None


def plan_suite(suite: Suite, out: str | Path = "runs/bench", *, jobs: int = 1,
               threads: int | None = None) -> list[PlannedRun]:
    """Every run of the suite with its resolved, validated config (no work done).

    Each config is the base config + the suite's overrides + the budget + the row's
    overrides + what the harness sets (seed, directory, start model); a bad one
    raises :class:`ConfigError` naming the run and the field. ``threads`` sets each run's torch
    threads (default: 1 when ``jobs`` > 1, else torch's own choice); it is bookkeeping, not part of
    the config hash.
    """
    from steprl.trainer.run_config import RunConfig

    import_modules(suite.imports)
    base_path = Path(suite.base_config)
    if not base_path.is_file():
        raise ConfigError(f"base_config: {suite.base_config!r} not found (paths are relative to the working directory)")
    root = Path(out) / suite.name
    b = suite.budget
    budget = [f"run.iterations={b.iterations}", f"run.tasks_per_iteration={b.tasks_per_iteration}",
              f"run.group_size={b.group_size}"]
    bookkeeping = ["run.progress=false", "run.overwrite=true", *([f"run.torch_threads={threads or 1}"] if (threads or jobs > 1) else [])]
    try:
        base = load_config(base_path, list(suite.overrides), RunConfig)
    except ConfigError as exc:
        raise ConfigError(f"base_config {suite.base_config} with the suite's overrides: {exc}") from None
    runs: list[PlannedRun] = []
    for seed in suite.seeds:
        seed_dir = root / f"seed{seed}"
        start_dir = seed_dir / SFT_START
        base_model = str(start_dir / "base_model") if base.tiny_model is not None else base.agent.model
        rows: list[tuple[str, list[str], list[str]]] = [(SFT_START, ["run.iterations=0"], [])]
        if suite.sft_plateau is not None:
            rows.append((SFT_PLATEAU, [*suite.sft_plateau.overrides, "run.iterations=0", "tiny_model=null",
                                       f"agent.model={base_model}", f"sft.steps={suite.sft_plateau.steps}"],
                         [SFT_START] if base.tiny_model is not None else []))
        for name, method in suite.methods.items():
            rows.append((name, [*method.overrides, "tiny_model=null", f"agent.model={start_dir / START_MODEL}",
                                "sft.steps=0"], [SFT_START]))
        planned: dict[str, PlannedRun] = {}  # this seed's rows so far, by row
        for row, extra, needs in rows:
            run_dir = seed_dir / row
            overrides = [*suite.overrides, *budget, f"run.seed={seed}", f"run.dir={run_dir}", *bookkeeping, *extra]
            try:
                config = load_config(base_path, overrides, RunConfig)
            except ConfigError as exc:
                raise ConfigError(f"run seed{seed}/{row}: {exc}") from None
            temperature = suite.eval.temperature or config.agent.temperature
            if temperature <= 0:
                raise ConfigError(f"eval.temperature: run seed{seed}/{row} trains at agent.temperature=0; "
                                  "set eval.temperature > 0 for the sampled evaluation")
            requires = [planned[n] for n in needs]
            key = _digest({"config": _identity(config, root), "after": [dep.key for dep in requires]})
            eval_key = _digest({**suite.eval.model_dump(), "temperature": temperature})
            planned[row] = PlannedRun(row, seed, run_dir, config, overrides, key, eval_key, temperature,
                                      requires=requires)
            runs.append(planned[row])
    return runs


def _identity(config, root: Path) -> dict:
    """The config as data, without bookkeeping, paths inside the suite's tree made relative to it."""
    data = config.model_dump(mode="json")
    data["run"] = {k: v for k, v in data["run"].items() if k not in BOOKKEEPING}
    prefix = str(root) + os.sep

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value[len(prefix):] if isinstance(value, str) and value.startswith(prefix) else value

    return strip(data)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_result(run: PlannedRun) -> dict | None:
    """The run's ``result.json`` if it is there and was made from the same config and evaluation; if the run has no
    directory, its archived result (from the committed table, marked ``"archived": True``) under the same
    conditions; else None."""
    if run.run_dir.exists():  # a directory (finished, interrupted or stale) speaks for the run
        return _disk_result(run)
    entry = run.archived
    if not entry or not isinstance(entry.get("result"), dict):
        return None
    result = entry["result"]
    if result.get("eval_key") != run.eval_key:
        return None
    if result.get("key") == run.key or (_same_saved_config(entry.get("config"), run) and _started_from(run, result)):
        return {**result, "archived": True}
    return None


def _disk_result(run: PlannedRun) -> dict | None:
    path = run.run_dir / RESULT
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if result.get("eval_key") != run.eval_key:
        return None
    return result if result.get("key") == run.key or (_same_config(run) and _started_from(run, result)) else None


def _started_from(run: PlannedRun, result: dict) -> bool:
    """Whether a run reused or resumed by its config (its key from older code) started from what its needed runs
    are now (``result``: its result or its job).

    Its config names the SFT start by path only, so a start redone since (another tiny model, more SFT steps)
    leaves it unchanged. What it started from is compared by content: a method's start weights
    (``start_weights_sha256``), the plateau's base model (``base_weights_sha256``), as recorded at its launch
    (``after``) or, in results written before that, by the method itself. A start redone with the same weights
    (a fresh checkout's redo) still matches.
    """
    field = "base_weights_sha256" if run.row == SFT_PLATEAU else "start_weights_sha256"
    after = result.get("after")
    for dep in run.requires:
        now = read_result(dep)
        if now is None:
            return False
        recorded = (after.get(dep.id) or {}).get(field) if isinstance(after, dict) else result.get(field)
        if recorded is not None and now.get(field) is not None and recorded != now[field]:
            return False
    return True


def load_archive(results_dir: str | Path, suite_name: str) -> dict[str, dict]:
    """``{run id: {"result", "config"}}`` from the suite's committed table ``RESULTS/<suite>.json`` (empty if none)."""
    path = Path(results_dir) / f"{suite_name}.json"
    try:
        runs = json.loads(path.read_text()).get("runs") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    return runs if isinstance(runs, dict) else {}


def attach_archive(runs: Sequence[PlannedRun], archive: dict[str, dict]) -> None:
    """Give each planned run its archived entry (see :attr:`PlannedRun.archived`)."""
    for run in runs:
        run.archived = archive.get(run.id)


def _same_config(run: PlannedRun) -> bool:
    """Whether the run directory's saved config, read by today's code, is the planned one.

    A key is a digest of the whole config, so a setting added to the code since (with its
    default) changes every key; the saved config, validated again, gets that default too and
    still equals the plan. (That it started from what its needed runs are now: :func:`_started_from`.)
    """
    job = run.run_dir / JOB
    try:
        saved = json.loads(job.read_text())["config"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return False
    return _same_saved_config(saved, run)


def _same_saved_config(saved: Any, run: PlannedRun) -> bool:
    """Whether a saved config (JSON data), validated by today's code, is the run's planned config."""
    from steprl.trainer.run_config import RunConfig

    if not isinstance(saved, dict):
        return False
    try:
        stored = RunConfig.model_validate(saved)
    except (ValidationError, TypeError, ValueError):
        return False
    root = run.run_dir.parent.parent
    return _identity(stored, root) == _identity(run.config, root)


def run_state(run: PlannedRun) -> tuple[str, int | None]:
    """``(state, iteration)``: ``finished``, ``resume`` (from the latest checkpoint's iteration), ``archived``
    (no directory; reused from the committed table, redone from scratch if a run to do starts from it), ``fresh`` or
    ``stale`` (the directory holds a run of another config, which is replaced)."""
    from steprl.trainer.checkpoint import list_checkpoints

    if not run.run_dir.exists():
        return ("archived" if read_result(run) is not None else "fresh"), None
    if read_result(run) is not None:
        return "finished", None
    job = run.run_dir / JOB
    launched = json.loads(job.read_text()) if job.is_file() else {}
    saved = launched.get("key")
    checkpoints = list_checkpoints(run.run_dir)
    if saved is not None and saved != run.key and _same_config(run) and _started_from(run, launched):
        saved = run.key
    if saved == run.key and checkpoints:
        return "resume", int(checkpoints[-1].name.split("_")[-1])
    return ("stale" if saved not in (None, run.key) or checkpoints else "fresh"), None


def describe_plan(suite: Suite, runs: Sequence[PlannedRun]) -> str:
    """The dry run's text: budget, each run's state, what it needs and how its config differs from the base config."""
    from steprl.trainer.run_config import RunConfig

    base = load_config(suite.base_config, list(suite.overrides), RunConfig)
    b = suite.budget
    lines = [f"suite {suite.name}: {base.env.id}, base config {suite.base_config}, seeds {suite.seeds}",
             f"budget per method: {b.iterations} iterations × {b.tasks_per_iteration} tasks × K={b.group_size} "
             f"= {b.episodes} episodes",
             f"evaluation: {suite.eval.episodes} {suite.eval.split} tasks, greedy and sampled, "
             f"seeds {suite.eval.seeds}",
             f"every run: {' '.join(suite.overrides) or 'the base config'}; below, each run's changes to that", ""]
    flat_base = _flatten(base.model_dump(mode="json"))
    for run in runs:
        state, iteration = run_state(run)
        state_text = f"resume at iteration {iteration}" if state == "resume" else state
        after = f", after {', '.join(run.needs)}" if run.needs else ""
        r = run.config.run
        budget = "" if run.is_sft else f", budget {r.iterations}×{r.tasks_per_iteration}×{r.group_size}"
        lines.append(f"{run.id:<24} [{state_text}] config {run.key}{after}{budget}, "
                     f"sampled eval T={run.eval_temperature:g}")
        flat = _flatten(run.config.model_dump(mode="json"))
        diff = [f"{k}={json.dumps(v)}" for k, v in flat.items() if flat_base.get(k, object()) != v]
        lines.append("    " + " ".join(diff))
    return "\n".join(lines)


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and not key.endswith("params") and key != "kwargs":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# -- running ----------------------------------------------------------------------------------
def git_commit(cwd: str | Path = ".") -> str:
    """``git rev-parse HEAD``, with ``+dirty`` when tracked files have uncommitted changes; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def run_suite(suite: Suite, runs: Sequence[PlannedRun], *, jobs: int = 1, say: Callable[[str], None] = print,
              poll_s: float = 0.5, threads: int | None = None) -> dict[str, str]:
    """Run what is not finished, ``jobs`` at a time, each in its own subprocess; returns ``{run id: outcome}``.

    Outcomes: ``reused``, ``done``, ``failed`` (its log's tail is printed) or ``skipped`` (a run it needs
    failed). A run waits for the runs it needs.
    """
    commit = git_commit()
    finished = {run.id: read_result(run) for run in runs}
    outcome: dict[str, str] = {run_id: "reused" for run_id, r in finished.items() if r is not None}
    archived = {run_id: r for run_id, r in finished.items() if r is not None and r.get("archived")}
    by_id = {run.id: run for run in runs}
    pending = [run for run in runs if run.id not in outcome]
    # a run to do that starts from an archived run (its directory, and so its weights, gone) needs that run redone:
    # deterministic on the same machine, so the redone figures are checked against the archived ones below
    redo = set()
    frontier = [n for run in pending for n in run.needs]
    while frontier:
        need = frontier.pop()
        if need in archived and need not in redo:
            redo.add(need)
            frontier.extend(by_id[need].needs)
    for run in runs:
        if run.id in redo:
            del outcome[run.id]
            say(f"redo    {run.id}: archived, but its directory is gone and a run starts from it")
    pending = [run for run in runs if run.id not in outcome]
    total = len(runs)
    for run in runs:
        if outcome.get(run.id) == "reused":
            result = finished[run.id]
            say(f"reused  {run.id}: {_figures(result)}" + (" (from the committed table)" if result.get("archived") else ""))
    counter = iter(range(total - len(pending) + 1, total + 1))
    running: dict[str, tuple[PlannedRun, subprocess.Popen, float, int, Any]] = {}
    env = {**os.environ, "TQDM_DISABLE": "1"}  # no progress bars in the runs' logs
    if threads or jobs > 1:
        n = str(threads or 1)
        env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n)
    previous = _interrupt_on_sigterm()  # `kill` of the harness ends its runs too (they resume next time)
    try:
        while pending or running:
            for run in list(pending):
                if len(running) >= jobs:
                    break
                needs = [outcome.get(n) for n in run.needs]
                if any(n in ("failed", "skipped") for n in needs):
                    pending.remove(run)
                    outcome[run.id] = "skipped"
                    say(f"skipped {run.id}: {', '.join(run.needs)} did not finish")
                    continue
                if not all(n in ("reused", "done") for n in needs):
                    continue
                pending.remove(run)
                index = next(counter)
                proc, log = _launch(run, suite, commit, env)
                running[run.id] = (run, proc, time.perf_counter(), index, log)
                say(f"[{index}/{total}] start {run.id} (log {run.run_dir / LOG})")
            time.sleep(poll_s if running else 0)
            for run_id, (run, proc, started, index, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[run_id]
                result = read_result(run)
                if proc.returncode == 0 and result is not None:
                    outcome[run_id] = "done"
                    at = result.get("resumed_at")
                    resumed = f", resumed at iteration {at}" if at is not None else ""
                    minutes = (time.perf_counter() - started) / 60
                    say(f"[{index}/{total}] done  {run_id}: {_figures(result)} ({minutes:.1f} min{resumed})")
                    if run_id in archived:
                        say(f"        {run_id} {_compare_redo(archived[run_id], result)}")
                else:
                    outcome[run_id] = "failed"
                    tail = (run.run_dir / LOG).read_text(errors="replace").splitlines()[-15:]
                    say(f"[{index}/{total}] FAILED {run_id} (exit {proc.returncode}); "
                        f"last lines of {run.run_dir / LOG}:\n" + "\n".join("    " + line for line in tail))
    except KeyboardInterrupt:
        for run, proc, *_ in running.values():
            proc.terminate()
        for run, proc, *_ in running.values():
            proc.wait()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return outcome


def _compare_redo(before: dict, after: dict) -> str:
    """Whether a redone run reproduced its archived figures (success rates and, for an SFT row, the weights)."""
    fields = [("greedy", lambda r: r["greedy"]["success_rate"]), ("sampled", lambda r: r["sampled"]["success_rate"]),
              ("eval at start", lambda r: r.get("eval_at_start")),
              ("start weights", lambda r: r.get("start_weights_sha256")),
              ("final weights", lambda r: r["greedy"].get("weights_sha256"))]
    differ = [name for name, get in fields if get(before) is not None and get(before) != get(after)]
    if not differ:
        return "reproduces its archived figures exactly"
    return "WARNING: differs from its archived run in " + ", ".join(differ) + " (archived: " + _figures(before) + ")"


def _interrupt_on_sigterm():
    """Make SIGTERM raise KeyboardInterrupt (main thread only); returns the handler it replaced, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


def _launch(run: PlannedRun, suite: Suite, commit: str, env: dict) -> tuple[subprocess.Popen, Any]:
    """Prepare the run directory (kept to resume, emptied when fresh or stale) and start the run's subprocess."""
    state, _ = run_state(run)
    if state in ("fresh", "stale") and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    (run.run_dir / RESULT).unlink(missing_ok=True)
    job = {"id": run.id, "row": run.row, "seed": run.seed, "key": run.key, "eval_key": run.eval_key,
           "config": run.config.model_dump(mode="json"), "overrides": run.overrides, "resume": state == "resume",
           "imports": suite.imports, "commit": commit, "export_start_model": run.row == SFT_START,
           "eval": {**suite.eval.model_dump(), "temperature": run.eval_temperature},
           "after": {dep.id: _started_from_record(dep) for dep in run.requires}}
    (run.run_dir / JOB).write_text(json.dumps(job, indent=2))
    log = open(run.run_dir / LOG, "a", encoding="utf-8")
    log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {run.id} ({'resume' if job['resume'] else 'fresh'}) ===\n")
    log.flush()
    code = "import sys; from steprl.bench import run_job; sys.exit(run_job(sys.argv[1]))"
    proc = subprocess.Popen([sys.executable, "-c", code, str(run.run_dir / JOB)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env)
    return proc, log


def _started_from_record(dep: PlannedRun) -> dict:
    """What a run records at launch of a run it starts from: its key and :data:`STARTED_FROM` weights."""
    result = read_result(dep) or {}
    return {k: result.get(k) for k in ("key", *STARTED_FROM)}


def _figures(result: dict) -> str:
    return (f"greedy {_pct(result['greedy']['success_rate'])}, sampled {_pct(result['sampled']['success_rate'])} "
            f"(T={result['sampled']['temperature']:g})")


# -- one run (in its subprocess) ---------------------------------------------------------------
def run_job(job_path: str | Path) -> int:
    """Train or resume one planned run, export the SFT start, evaluate, write ``result.json``; exit code 0 when done."""
    from steprl import credit
    from steprl.evaluation.evaluate import weights_sha256
    from steprl.trainer.checkpoint import load_latest
    from steprl.trainer.loop import RLRun
    from steprl.trainer.run_config import RunConfig

    job = json.loads(Path(job_path).read_text())
    import_modules(job["imports"])
    cfg = RunConfig.model_validate(job["config"])
    run_dir = Path(cfg.run.dir)
    credit.tune_allocator()
    start_sha = None if job["row"] in (SFT_START, SFT_PLATEAU) else weights_sha256(Path(cfg.agent.model))
    t_start = time.perf_counter()
    resumed_at = None
    if job["resume"]:
        latest = load_latest(run_dir)
        resumed_at = latest.iteration if latest is not None else None
    if cfg.run.iterations == 0 and resumed_at is not None:
        print(f"{job['id']}: its checkpoint is there; training skipped", flush=True)
    else:
        RLRun(cfg, resume=resumed_at is not None).run()
    history = load_latest(run_dir).extra.get("eval_history", [])
    base_sha = None  # the model SFT started from: the start's tiny model (built into its directory), or a local model
    if job["row"] in (SFT_START, SFT_PLATEAU):
        base = run_dir / "base_model" if job["row"] == SFT_START and cfg.tiny_model is not None else Path(cfg.agent.model)
        try:
            base_sha = weights_sha256(base)
        except OSError:  # a hub id, not a directory
            pass

    evaluated = run_dir
    if job["export_start_model"]:
        evaluated = export_start_model(cfg, run_dir / START_MODEL)
        start_sha = weights_sha256(evaluated)
    t_eval = time.perf_counter()
    spec = job["eval"]
    figures = {name: _evaluate(evaluated, cfg, spec, temperature, run_dir / f"eval_{name}")
               for name, temperature in (("greedy", 0.0), ("sampled", spec["temperature"]))}
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = list({r["iteration"]: r for r in map(json.loads, filter(str.strip, lines))}.values())  # last per iteration
    result = {
        "id": job["id"], "row": job["row"], "seed": job["seed"], "key": job["key"], "eval_key": job["eval_key"],
        "commit": job["commit"], "overrides": job["overrides"], "resumed_at": resumed_at, "after": job.get("after", {}),
        **figures,
        "eval_at_start": next((h["eval/success_rate"] for h in history if h["iteration"] == 0), None),
        "curve": [[h["iteration"], h["eval/success_rate"]] for h in history],
        "start_weights_sha256": start_sha,
        "base_weights_sha256": base_sha,
        "wall_s": training_seconds(records),
        "eval_s": time.perf_counter() - t_eval,
        "attempt_s": time.perf_counter() - t_start,
        "env_steps": int(sum(r.get("rollout/steps", 0) for r in records if r["iteration"] > 0)),
        "episodes": int(sum(r.get("rollout/episodes", 0) for r in records if r["iteration"] > 0)),
        "expert_steps": int(next((r["sft/examples"] for r in records if "sft/examples" in r), 0)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    tmp = run_dir / (RESULT + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n")
    os.replace(tmp, run_dir / RESULT)
    print(f"{job['id']}: {_figures(result)}", flush=True)
    return 0


def training_seconds(records: Sequence[dict]) -> float:
    """SFT and RL time of a run from its metrics (one record per iteration): SFT, the iteration-0 evaluation and every
    iteration's time (its periodic evaluation included). The same for a resumed run, whose records past its
    checkpoint were dropped; model build, env preparation and the final evaluations are not in it."""
    return float(sum(r.get("time/iteration_s", 0.0) + r.get("time/sft_s", 0.0)
                     + (r.get("time/eval_s", 0.0) if r["iteration"] == 0 else 0.0) for r in records))


def export_start_model(cfg, out_dir: Path) -> Path:
    """The run's latest checkpoint as a plain HF model folder with its tokenizer (LoRA merged), written atomically."""
    from steprl.agent.models import load_tokenizer
    from steprl.trainer.checkpoint import load_latest
    from steprl.trainer.policy import load_policy

    policy = load_policy(cfg.agent.model, cfg.trainer, trust_remote_code=cfg.agent.trust_remote_code)
    load_latest(cfg.run.dir).restore(policy, rng=False)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    policy.export_pretrained(tmp)
    load_tokenizer(cfg.agent.model, trust_remote_code=cfg.agent.trust_remote_code).save_pretrained(str(tmp))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def _evaluate(model: Path, cfg, spec: dict, temperature: float, out_dir: Path) -> dict:
    """One evaluation with the run's env, turn limit and prompt settings given explicitly (same for every row)."""
    from steprl.evaluation import evaluate

    agent = {k: v for k, v in cfg.agent.model_dump(mode="json").items() if k not in ("model", "temperature")}
    report = evaluate(model, cfg.env.id, split=spec["split"], episodes=spec["episodes"], seeds=spec["seeds"],
                      temperature=temperature, progress=False, env_kwargs=dict(cfg.env.kwargs),
                      max_turns=cfg.env.max_turns, agent=agent, references=False, lockstep_envs=cfg.eval.envs)
    report.save(out_dir)
    row = report.row("model")
    return {"success_rate": row.success_rate, "ci95": row.ci95, "episodes": row.episodes,
            "effective_n": row.effective_n, "mean_turns": row.mean_turns, "invalid_share": row.invalid_share,
            "temperature": temperature, "weights_sha256": report.model.sha256}


# -- the table --------------------------------------------------------------------------------
# t_{0.975, df} for df = 1..30; beyond, the Cornish-Fisher expansion (error < 1e-4)
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
         2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
         2.0518, 2.0484, 2.0452, 2.0423)


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df={df} must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963984540054
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def t_interval(values: Sequence[float]) -> tuple[float, list[float] | None]:
    """``(mean, [low, high])``: the 95% t-interval ``mean ± t_{0.975,n-1}·sd/√n`` (sd ddof 1); no interval for n < 2."""
    values = [float(v) for v in values]
    if not values:
        return float("nan"), None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = t_quantile_975(len(values) - 1) * sd / math.sqrt(len(values))
    return mean, [mean - half, mean + half]


def _stat(per_seed: dict[int, float]) -> dict:
    mean, ci = t_interval(list(per_seed.values()))
    return {"mean": mean, "ci95": ci, "n": len(per_seed), "per_seed": {str(s): v for s, v in per_seed.items()}}


def build_table(suite: Suite, runs: Sequence[PlannedRun], *, suite_path: str | Path | None = None) -> dict:
    """The suite's table as data, from the ``result.json`` files of its runs (missing or stale ones listed)."""
    results = {run.id: read_result(run) for run in runs}
    missing = [run.id for run in runs if results[run.id] is None]
    env_id = runs[0].config.env.id if runs else None
    rows = []
    for row in suite.rows:
        mine = [(run, results[run.id]) for run in runs if run.row == row and results[run.id] is not None]
        rows.append({
            "row": row,
            "greedy": _stat({run.seed: r["greedy"]["success_rate"] for run, r in mine}),
            "sampled": _stat({run.seed: r["sampled"]["success_rate"] for run, r in mine}),
            "sampled_temperature": sorted({r["sampled"]["temperature"] for _, r in mine}),
            "eval_at_start": {str(run.seed): r["eval_at_start"] for run, r in mine},
            "wall_s": {str(run.seed): r["wall_s"] for run, r in mine},
            "env_steps": {str(run.seed): (r["expert_steps"] if row in (SFT_START, SFT_PLATEAU) else r["env_steps"])
                          for run, r in mine},
            "config_hash": {str(run.seed): r["key"] for run, r in mine},
            "start_weights_sha256": {str(run.seed): r["start_weights_sha256"] for run, r in mine},
            "resumed_at": {str(run.seed): r["resumed_at"] for run, r in mine if r.get("resumed_at") is not None},
            "commits": sorted({r["commit"] for _, r in mine}),
            "archived": sorted(str(run.seed) for run, r in mine if r.get("archived")),
        })
    by_row = {r["row"]: r for r in rows}
    differences = []
    for a, b in suite.pairs:
        entry = {"a": a, "b": b}
        for decoding in ("greedy", "sampled"):
            pa, pb = by_row[a][decoding]["per_seed"], by_row[b][decoding]["per_seed"]
            entry[decoding] = _stat({int(s): pa[s] - pb[s] for s in pa if s in pb})
        differences.append(entry)
    start = by_row[SFT_START]
    start_check = {}  # does every method start from the seed's SFT start? (same weights, same iteration-0 evaluation)
    for method in suite.methods:
        for seed, sha in by_row[method]["start_weights_sha256"].items():
            if seed in start["start_weights_sha256"]:
                start_check[f"seed{seed}/{method}"] = (
                    sha == start["start_weights_sha256"][seed]
                    and by_row[method]["eval_at_start"][seed] == start["eval_at_start"][seed])
    b = suite.budget
    return {
        "suite": suite.name,
        "suite_file": str(suite_path) if suite_path is not None else None,
        "env_id": env_id,
        "base_config": suite.base_config,
        "seeds": suite.seeds,
        "budget": {**b.model_dump(), "episodes": b.episodes},
        "sft_plateau_steps": suite.sft_plateau.steps if suite.sft_plateau is not None else None,
        "eval": suite.eval.model_dump(),
        "interval": ("95% t-interval over seeds: mean ± t_{0.975,n-1}·sd/√n, sd over seeds with ddof 1; "
                     "none with one seed"),
        "commit": git_commit(),
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": rows,
        "differences": differences,
        "start_check": start_check,
        "missing": missing,
        "runs": {run.id: {"result": {k: v for k, v in results[run.id].items() if k != "archived"},
                          "config": _saved_config(run, results[run.id])}
                 for run in runs if results[run.id] is not None},
    }


def _saved_config(run: PlannedRun, result: dict) -> Any:
    """The config a result was made from: the run directory's ``job.json``, or the archive's copy."""
    if result.get("archived"):
        return (run.archived or {}).get("config")
    try:
        return json.loads((run.run_dir / JOB).read_text())["config"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return run.config.model_dump(mode="json")


def table_markdown(table: dict) -> str:
    """The table as Markdown: one row per SFT row and method, then the paired differences."""
    seeds = table["seeds"]
    b, ev = table["budget"], table["eval"]
    temps = sorted({t for r in table["rows"] for t in r["sampled_temperature"]})
    temp_text = ", ".join(f"{t:g}" for t in temps) if temps else "the training temperature"
    labels = {SFT_START: "SFT start", SFT_PLATEAU: f"SFT plateau ({table['sft_plateau_steps']} steps)"}
    lines = [
        f"# {table['suite']}: {table['env_id']}, held-out {ev['split']} success",
        "",
        f"`steprl bench {table['suite_file'] or table['suite'] + '.yaml'}` · base config `{table['base_config']}` · "
        f"commit `{table['commit']}`",
        "",
        f"Every method: {b['iterations']} iterations × {b['tasks_per_iteration']} tasks × K = {b['group_size']} = "
        f"{b['episodes']} episodes, from the same SFT start per seed. Evaluation: tasks 0–{ev['episodes'] - 1} of the "
        f"{ev['split']} split, evaluation seeds {ev['seeds']}, greedy (T = 0) and sampled (T = {temp_text}).",
        "",
        f"| row | greedy | sampled | greedy per seed ({', '.join(map(str, seeds))}) | sampled per seed | "
        "wall (min) | env steps |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    for r in table["rows"]:
        wall = [v for v in r["wall_s"].values() if v is not None and not math.isnan(v)]
        steps = list(r["env_steps"].values())
        marks = (" †" if r["resumed_at"] else "") + (" ‡" if r.get("archived") else "")
        cells = [labels.get(r["row"], r["row"]) + marks, _mean_ci(r["greedy"]),
                 _mean_ci(r["sampled"]), _per_seed(r["greedy"], seeds), _per_seed(r["sampled"], seeds),
                 f"{sum(wall) / len(wall) / 60:.1f}" if wall else "–",
                 f"{sum(steps) / len(steps):,.0f}" if steps else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    for d in table["differences"]:
        lines.append(f"| **{d['a']} − {d['b']}** (paired by seed) | {_mean_ci(d['greedy'], points=True)} | "
                     f"{_mean_ci(d['sampled'], points=True)} | {_per_seed(d['greedy'], seeds, points=True)} | "
                     f"{_per_seed(d['sampled'], seeds, points=True)} | | |")
    lines += [
        "",
        f"Success in %: mean over seeds [95% t-interval over seeds, mean ± t(0.975, n−1)·sd/√n, sd with ddof 1; "
        f"none with one seed]. Differences in points, per seed then the same interval. Env steps: for the SFT rows "
        f"the expert's steps imitated; for methods the RL rollouts' steps (on top of the SFT start). Wall: the run's "
        f"SFT and RL time as logged per iteration, its periodic evaluations included (mean over seeds); model build, "
        f"env preparation and the final evaluations not.",
    ]
    if any(r["resumed_at"] for r in table["rows"]):
        lines.append("† resumed from a checkpoint (its wall time counts the iterations it kept, once).")
    if any(r.get("archived") for r in table["rows"]):
        lines.append("‡ seeds " + "; ".join(f"{r['row']}: {', '.join(r['archived'])}" for r in table["rows"]
                                            if r.get("archived"))
                     + " reused from this table's earlier version (`runs` in the JSON): their run directories were "
                       "not present, their saved configs equal the plan.")
    bad = [k for k, ok in table["start_check"].items() if not ok]
    if bad:
        lines.append(f"WARNING: these runs did not start from their seed's SFT start: {', '.join(bad)}.")
    if table["missing"]:
        lines.append(f"Missing (not run, failed, or from another config): {', '.join(table['missing'])}.")
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _mean_ci(stat: dict, points: bool = False) -> str:
    if not stat["n"]:
        return "–"
    fmt = (lambda x: f"{100 * x:+.1f}") if points else (lambda x: f"{100 * x:.1f}")
    text = fmt(stat["mean"]) + ("" if points else "%")
    if stat["ci95"] is not None:
        text += f" [{fmt(stat['ci95'][0])}, {fmt(stat['ci95'][1])}]"
    return text


def _per_seed(stat: dict, seeds: Sequence[int], points: bool = False) -> str:
    values = stat["per_seed"]
    fmt = (lambda x: f"{100 * x:+.1f}") if points else (lambda x: f"{100 * x:.1f}")
    return ", ".join(fmt(values[str(s)]) if str(s) in values else "–" for s in seeds)


def write_table(table: dict, results_dir: str | Path) -> tuple[Path, Path]:
    """``RESULTS/<suite>.json`` and ``RESULTS/<suite>.md``."""
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{table['suite']}.json", out / f"{table['suite']}.md"
    json_path.write_text(json.dumps(table, indent=2, allow_nan=True) + "\n")
    md_path.write_text(table_markdown(table))
    return json_path, md_path
