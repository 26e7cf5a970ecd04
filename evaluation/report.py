"""Evaluation reports: the protocol, the numbers with their uncertainty, and a comparison of two reports.

    report = evaluation.evaluate("runs/quickstart", "textworld/coin_collector-v0", episodes=200)
    report.save("eval/")                       # report.json + report.md
    print(compare(Report.load("a/report.json"), Report.load("b/report.json")).text())

A :class:`Report` holds

* the **protocol** (:class:`Protocol`): env id and version, env settings,
  split, task count, seeds, samples per task ``k``, decoding, turn limit and
  prompt settings: everything that changes the number besides the model;
* the **model** (:class:`ModelInfo`): its path and the sha256 of its weight files;
* one **row** per agent (:class:`AgentResult`): the model, and the reference
  agents on the same tasks: ``random`` (a uniformly random admissible action,
  the floor) and ``expert`` (``info["expert_action"]``, the ceiling) where the
  env has one.

Statistics (the unit of independence is the *task*):

* ``success_rate``: the share of all episodes that succeeded (seeds × tasks × k);
  ``success_std``: the standard deviation of the per-seed rates (``None`` with one seed).
* ``ci95``: a Wilson score interval at the design-effect-adjusted sample size
  ``effective_n`` (Kish): ``n_eff = T · p(1-p) / Var(task means)``, clipped to
  ``[T, N]`` (T tasks, N episodes, p the pooled rate). Episodes of the same
  task are correlated (with greedy decoding and a deterministic env, repeated
  seeds replay the same episode), so they count for less than independent
  draws. With one episode per task ``n_eff = N`` and this is the textbook
  Wilson interval; with ``p`` at 0 or 1 ``n_eff = T``.
* ``pass_at_k``: the unbiased estimator of Chen et al. (2021),
  ``1 - C(n-c, j) / C(n, j)`` from the ``n = k`` samples of each task (``c``
  successes), averaged over tasks and seeds, for ``j`` = 1, 2, 4, …, k.
* :func:`compare`: ``B − A`` in success with the two-proportion standard error
  ``sqrt(pA(1-pA)/nA + pB(1-pB)/nB)`` (effective sizes) and Newcombe's
  hybrid-score 95% interval built from the two Wilson intervals (it stays
  sensible at 0% and 100%); when both reports played the very same episodes
  (same tasks, seeds, k) a paired standard error over tasks is given too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Protocol", "ModelInfo", "AgentResult", "Report", "Comparison", "compare",
    "wilson_interval", "effective_sample_size", "pass_at_k", "summarize_outcomes", "EpisodeOutcome",
]

Z95 = 1.959963984540054  # two-sided 95% normal quantile
REPORT_FORMAT = 1


# -- statistics ---------------------------------------------------------------------
def wilson_interval(rate: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``rate`` observed over ``n`` (possibly effective, non-integer) trials."""
    if n <= 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    center = (rate + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(rate * (1 - rate), 0.0) / n + z * z / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))


def effective_sample_size(task_means: Sequence[float], n_episodes: int) -> float:
    """Kish effective sample size of a success rate whose episodes cluster by task.

    ``task_means`` holds each task's success rate (over its seeds and samples);
    all tasks have the same number of episodes. Returns ``T · p(1-p) / Var(task means)``
    clipped to ``[T, n_episodes]``; ``T`` when ``p`` is 0 or 1.
    """
    means = np.asarray(task_means, dtype=np.float64)
    tasks = len(means)
    if tasks == 0:
        return 0.0
    p = float(means.mean())
    between = float(means.var())  # population variance: one play per task gives exactly n_eff = T
    if p * (1 - p) <= 0:
        return float(tasks)
    if between <= 0:
        return float(n_episodes)
    return float(min(max(tasks * p * (1 - p) / between, tasks), n_episodes))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` successes: ``1 - C(n-c, k) / C(n, k)`` (Chen et al., 2021)."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"c={c} successes must be in [0, n={n}]")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_levels(k: int) -> list[int]:
    """The j of pass@j a report shows for ``k`` samples: 1, 2, 4, … below k, and k."""
    levels = [j for j in (2**i for i in range(32)) if j < k]
    return levels + [k]


# -- per-episode outcomes → one row -------------------------------------------------------
@dataclass
class EpisodeOutcome:
    """What one episode of one agent came to (the rows of a report are summaries of these).

    Attributes:
        task: task index in the split.
        seed: evaluation seed.
        sample: sample index within the task (0..k-1).
        success: the episode succeeded.
        reward: summed reward.
        turns: steps taken.
        invalid: steps whose action the env rejected.
        unparseable: steps whose response did not follow the format (``None`` for scripted agents).
        truncated: the episode was cut (turn limit, env error) rather than ended by the env.
        task_type: ``info["task_type"]`` of the task, when the env gives one.
    """

    task: int
    seed: int
    sample: int
    success: bool
    reward: float
    turns: int
    invalid: int
    unparseable: int | None
    truncated: bool
    task_type: str | None = None


@dataclass
class AgentResult:
    """One agent's row in a report.

    Attributes:
        agent: ``"model"``, ``"random"`` or ``"expert"``.
        episodes: episodes played (seeds × tasks × samples).
        successes: episodes that succeeded.
        success_rate: ``successes / episodes`` (= the mean of the per-seed rates).
        success_std: standard deviation (ddof 1) of the per-seed rates; ``None`` with one seed.
        success_per_seed: the rate of each seed, in the protocol's seed order.
        ci95: 95% Wilson interval at ``effective_n`` (see the module docstring).
        effective_n: design-effect-adjusted number of independent episodes.
        pass_at_k: ``{"1": …, "2": …, …, "k": …}`` when k > 1 samples per task were drawn, else ``{}``.
        mean_reward: mean summed reward per episode (the score gained, for TextWorld).
        mean_turns: mean steps per episode.
        invalid_share: share of steps whose action the env rejected.
        unparseable_share: share of steps whose response broke the format (``None`` for scripted agents).
        truncation_rate: share of episodes cut by the turn limit or an env error.
        by_task_type: the same metrics per ``info["task_type"]`` (empty when the env has no types).
        outcomes: ``[task, seed, sample, success]`` per episode, for paired comparisons.
    """

    agent: str
    episodes: int
    successes: int
    success_rate: float
    success_std: float | None
    success_per_seed: list[float]
    ci95: list[float]
    effective_n: float
    pass_at_k: dict[str, float]
    mean_reward: float
    mean_turns: float
    invalid_share: float
    unparseable_share: float | None
    truncation_rate: float
    by_task_type: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: list[list[int]] = field(default_factory=list, repr=False)


def summarize_outcomes(agent: str, outcomes: Sequence[EpisodeOutcome], seeds: Sequence[int], k: int = 1,
                       *, by_type: bool = True) -> AgentResult:
    """Reduce one agent's episodes to an :class:`AgentResult` (success, interval, pass@k, shares).

    Every (task, seed) must hold the same number ``k`` of samples.
    """
    if not outcomes:
        raise ValueError(f"agent {agent!r} has no episodes to summarize")
    outcomes = sorted(outcomes, key=lambda o: (o.seed, o.task, o.sample))
    success = np.array([o.success for o in outcomes], dtype=np.float64)
    task = np.array([o.task for o in outcomes])
    seed = np.array([o.seed for o in outcomes])
    _, task_index = np.unique(task, return_inverse=True)
    task_means = np.bincount(task_index, weights=success) / np.bincount(task_index)
    per_seed = [float(success[seed == s].mean()) for s in seeds if np.any(seed == s)]
    rate = float(success.mean())
    n_eff = effective_sample_size(task_means, len(outcomes))
    low, high = wilson_interval(rate, n_eff)

    passes: dict[str, float] = {}
    if k > 1:
        counts: dict[tuple[int, int], list[int]] = {}
        for o in outcomes:
            counts.setdefault((o.seed, o.task), [0, 0])
            counts[(o.seed, o.task)][0] += 1
            counts[(o.seed, o.task)][1] += int(o.success)
        for j in pass_at_k_levels(k):
            values = [pass_at_k(n, c, j) for n, c in counts.values() if n >= j]
            passes[str(j)] = float(np.mean(values)) if values else float("nan")

    steps = sum(o.turns for o in outcomes)
    scripted = any(o.unparseable is None for o in outcomes)
    result = AgentResult(
        agent=agent,
        episodes=len(outcomes),
        successes=int(success.sum()),
        success_rate=rate,
        success_std=float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None,
        success_per_seed=per_seed,
        ci95=[low, high],
        effective_n=n_eff,
        pass_at_k=passes,
        mean_reward=float(np.mean([o.reward for o in outcomes])),
        mean_turns=float(np.mean([o.turns for o in outcomes])),
        invalid_share=sum(o.invalid for o in outcomes) / max(steps, 1),
        unparseable_share=None if scripted else sum(o.unparseable or 0 for o in outcomes) / max(steps, 1),
        truncation_rate=float(np.mean([o.truncated for o in outcomes])),
        outcomes=[[o.task, o.seed, o.sample, int(o.success)] for o in outcomes],
    )
    types = sorted({o.task_type for o in outcomes if o.task_type is not None})
    if by_type and types:
        for name in types:
            sub = summarize_outcomes(agent, [o for o in outcomes if o.task_type == name], seeds, k, by_type=False)
            result.by_task_type[name] = {
                "episodes": sub.episodes, "success_rate": sub.success_rate, "ci95": sub.ci95,
                "mean_reward": sub.mean_reward, "mean_turns": sub.mean_turns, "invalid_share": sub.invalid_share,
                "truncation_rate": sub.truncation_rate,
            }
    return result


# -- the report -------------------------------------------------------------------------
@dataclass
class Protocol:
    """Everything besides the model that decides the number; two reports compare only if these match.

    Attributes:
        env_id: registered env id, e.g. ``textworld/coin_collector-v0``.
        env_version: the id's version suffix (``v0``).
        env_kwargs: the env's settings (registered defaults merged with overrides).
        split: ``train``, ``valid`` or ``test``.
        episodes: tasks evaluated: indices ``0..episodes-1`` of the split.
        seeds: evaluation seeds (env reset seeds and sampling derive from them).
        k: samples (episodes) per task and seed; pass@k is reported when k > 1.
        decoding: ``greedy`` (temperature 0) or ``sampled``.
        temperature: sampling temperature.
        top_p: nucleus mass.
        top_k: top-k cut (0 = off).
        max_new_tokens: longest response.
        max_turns: turns before an episode is truncated.
        prompt: prompt settings (history window, format, token budget, system prompt, admissible actions shown).
    """

    env_id: str
    env_version: str
    env_kwargs: dict[str, Any]
    split: str
    episodes: int
    seeds: list[int]
    k: int
    decoding: str
    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    max_turns: int
    prompt: dict[str, Any]

    def differences(self, other: Protocol) -> list[str]:
        """One line per field that differs from ``other`` (empty when the protocols match)."""
        lines = []
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict) and isinstance(theirs, dict):
                for key in sorted(set(mine) | set(theirs)):
                    if mine.get(key) != theirs.get(key):
                        lines.append(f"{f.name}.{key}: {mine.get(key)!r} vs {theirs.get(key)!r}")
            elif mine != theirs:
                lines.append(f"{f.name}: {mine!r} vs {theirs!r}")
        return lines

    def decoding_text(self) -> str:
        """``greedy`` or ``sampled (temperature 0.7, top_p 0.9)``."""
        if self.decoding == "greedy":
            return "greedy"
        extras = [f"temperature {self.temperature:g}"] + ([f"top_p {self.top_p:g}"] if self.top_p < 1 else [])
        extras += [f"top_k {self.top_k}"] if self.top_k else []
        return f"sampled ({', '.join(extras)})"


@dataclass
class ModelInfo:
    """Which weights were evaluated.

    Attributes:
        path: the model folder or run directory as given.
        weights: the folder the weights were read from (a run's latest ``checkpoints/iter_*/model``).
        sha256: sha256 over the weight files (name and bytes, sorted by name; LoRA: adapter and base).
        source: ``model folder``, ``run checkpoint`` or ``none`` (reference agents only).
        checkpoint: the checkpoint directory name (``iter_000015``) for runs.
        tokenizer: the folder the tokenizer came from.
    """

    path: str
    weights: str
    sha256: str
    source: str
    checkpoint: str | None = None
    tokenizer: str | None = None


@dataclass
class Report:
    """An evaluation: its protocol, the model, one row per agent, and when and with what it was made.

    Attributes:
        protocol: see :class:`Protocol`.
        model: see :class:`ModelInfo`.
        rows: the model's row first, then the reference rows (``random``, ``expert``).
        steprl_version: version of steprl that made the report.
        date: ISO time of the evaluation (the only field that differs between two identical evaluations).
        notes: caveats found while evaluating (e.g. a split with fewer tasks than asked).
    """

    protocol: Protocol
    model: ModelInfo
    rows: list[AgentResult]
    steprl_version: str
    date: str
    notes: list[str] = field(default_factory=list)
    trajectories: list = field(default_factory=list, repr=False, compare=False)
    """The model's episodes, one :class:`agent.rollout.TrajectoryBatch` per seed (not saved in the JSON)."""

    def row(self, agent: str = "model") -> AgentResult:
        """The row of ``agent`` (``model``, ``random``, ``expert``)."""
        for r in self.rows:
            if r.agent == agent:
                return r
        raise KeyError(f"report has no row {agent!r}; it has {[r.agent for r in self.rows]}")

    def has_row(self, agent: str) -> bool:
        return any(r.agent == agent for r in self.rows)

    # -- (de)serialization ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data (without the trajectories)."""
        return {
            "format": REPORT_FORMAT,
            "protocol": dataclasses.asdict(self.protocol),
            "model": dataclasses.asdict(self.model),
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "steprl_version": self.steprl_version,
            "date": self.date,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Inverse of :meth:`to_dict`."""
        fmt = data.get("format")
        if fmt != REPORT_FORMAT:
            raise ValueError(f"report format {fmt!r} is not {REPORT_FORMAT}: is this a steprl eval report.json?")
        return cls(
            protocol=Protocol(**data["protocol"]),
            model=ModelInfo(**data["model"]),
            rows=[AgentResult(**row) for row in data["rows"]],
            steprl_version=data["steprl_version"],
            date=data["date"],
            notes=list(data.get("notes", [])),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n"

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``out_dir``; returns both paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out / "report.json", out / "report.md"
        json_path.write_text(self.to_json(), encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path

    @classmethod
    def load(cls, path: str | Path) -> Report:
        """Read a ``report.json`` (or the folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "report.json"
        if not path.is_file():
            raise FileNotFoundError(f"no report at {str(path)!r} (write one with `steprl eval ... --out DIR`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON: {exc}") from None
        return cls.from_dict(data)

    # -- Markdown -------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """The report as Markdown: protocol table, one row per agent, per-task-type table when the env has types."""
        p, m = self.protocol, self.model
        pct = _pct
        lines = [
            f"# steprl evaluation: {p.env_id} · {p.split}",
            "",
            "| protocol | |",
            "|---|---|",
            f"| env | `{p.env_id}` (version {p.env_version}) {_kwargs_text(p.env_kwargs)} |",
            f"| split | {p.split}: tasks 0–{p.episodes - 1} ({p.episodes} tasks) |",
            f"| seeds | {', '.join(map(str, p.seeds))} |",
            f"| samples per task (k) | {p.k} |",
            f"| decoding | {p.decoding_text()}, max {p.max_new_tokens} new tokens |",
            f"| max turns | {p.max_turns} |",
            f"| prompt | {_kwargs_text(p.prompt)} |",
            f"| model | `{m.path}`" + (f" ({m.source}, {m.checkpoint})" if m.checkpoint else f" ({m.source})") + " |",
            f"| weights sha256 | `{m.sha256}` |",
            f"| steprl | {self.steprl_version} · {self.date} |",
            "",
        ]
        pass_levels = sorted({int(j) for r in self.rows for j in r.pass_at_k}, key=int)
        header = ["agent", "success", "± std (seeds)", "95% CI", *[f"pass@{j}" for j in pass_levels],
                  "reward", "turns", "invalid", "unparseable", "truncated", "episodes"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        labels = {"model": "model", "random": "random (floor)", "expert": "expert (ceiling)"}
        for r in self.rows:
            cells = [
                f"**{labels.get(r.agent, r.agent)}**",
                pct(r.success_rate),
                "–" if r.success_std is None else f"± {100 * r.success_std:.1f}",
                f"[{pct(r.ci95[0])}, {pct(r.ci95[1])}]",
                *[pct(r.pass_at_k[str(j)]) if str(j) in r.pass_at_k else "–" for j in pass_levels],
                f"{r.mean_reward:.2f}",
                f"{r.mean_turns:.1f}",
                pct(r.invalid_share),
                "–" if r.unparseable_share is None else pct(r.unparseable_share),
                pct(r.truncation_rate),
                f"{r.episodes} (n_eff {r.effective_n:.0f})",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        types = sorted({t for r in self.rows for t in r.by_task_type})
        if types:
            lines += ["", "Success by task type:", "",
                      "| task type | " + " | ".join(labels.get(r.agent, r.agent) for r in self.rows) + " |",
                      "|---|" + "---|" * len(self.rows)]
            for t in types:
                cells = []
                for r in self.rows:
                    sub = r.by_task_type.get(t)
                    cells.append("–" if sub is None else
                                 f"{pct(sub['success_rate'])} [{pct(sub['ci95'][0])}, {pct(sub['ci95'][1])}] "
                                 f"({sub['episodes']} ep.)")
                lines.append(f"| {t} | " + " | ".join(cells) + " |")
        lines += ["", ("Success: share of all episodes; ± std over seeds; 95% CI: Wilson at the design-effect-adjusted "
                       "sample size n_eff (episodes of one task count as correlated). pass@j: unbiased estimator from "
                       "the k samples per task. Invalid / unparseable: share of steps.")]
        if self.notes:
            lines += ["", "Notes:", *[f"- {note}" for note in self.notes]]
        return "\n".join(lines) + "\n"

    def summary_line(self) -> str:
        """``model 34.0% [25.1, 44.2] · random 72.0% · expert 100.0%``."""
        parts = []
        for r in self.rows:
            parts.append(f"{r.agent} {_pct(r.success_rate)} [{_pct(r.ci95[0])}, {_pct(r.ci95[1])}]")
        return " · ".join(parts)


def _pct(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.1f}%"


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if v is not None) if kwargs else ""


# -- comparing two reports ------------------------------------------------------------------
@dataclass
class Comparison:
    """``B − A`` in one agent's success rate, with its uncertainty and the protocol check.

    Attributes:
        agent: the row compared (``model`` by default).
        success_a, success_b: the two success rates.
        n_a, n_b: their effective sample sizes.
        difference: ``success_b − success_a``.
        stderr: two-proportion standard error ``sqrt(pA(1-pA)/nA + pB(1-pB)/nB)``.
        ci95: Newcombe's hybrid-score 95% interval of the difference (from the two Wilson intervals).
        z, p_value: ``difference / stderr`` and its two-sided normal p-value (``None`` when stderr is 0).
        paired_stderr: standard error of the mean per-task difference when both played the same
            episodes (same tasks, seeds, k), else ``None``; tighter when the tasks, not the
            models, drive most of the variance.
        protocol_differences: one line per protocol field that differs (empty: comparable).
        model_a, model_b: ``path (sha256[:12])`` of each side.
    """

    agent: str
    success_a: float
    success_b: float
    n_a: float
    n_b: float
    difference: float
    stderr: float
    ci95: tuple[float, float]
    z: float | None
    p_value: float | None
    paired_stderr: float | None
    protocol_differences: list[str]
    model_a: str
    model_b: str

    @property
    def protocols_match(self) -> bool:
        return not self.protocol_differences

    def text(self) -> str:
        """A few lines for the terminal, the protocol verdict first."""
        lines = []
        if self.protocol_differences:
            lines.append("PROTOCOLS DIFFER: the difference below mixes the models with these protocol changes:")
            lines += [f"  - {d}" for d in self.protocol_differences]
        else:
            lines.append("Protocols match (env, split, tasks, seeds, k, decoding, turn limit, prompt).")
        lines += [
            f"A: {self.model_a}  {self.agent} success {_pct(self.success_a)} (n_eff {self.n_a:.0f})",
            f"B: {self.model_b}  {self.agent} success {_pct(self.success_b)} (n_eff {self.n_b:.0f})",
        ]
        d, (lo, hi) = self.difference, self.ci95
        line = (f"B − A: {100 * d:+.1f} points, 95% CI [{100 * lo:+.1f}, {100 * hi:+.1f}] "
                f"(two-proportion SE {100 * self.stderr:.1f} points")
        if self.z is not None:
            line += f"; z = {self.z:.2f}, p = {self.p_value:.3g}"
        lines.append(line + ")")
        if self.paired_stderr is not None:
            lines.append(f"paired over the same episodes: SE {100 * self.paired_stderr:.1f} points, 95% CI "
                         f"[{100 * (d - Z95 * self.paired_stderr):+.1f}, {100 * (d + Z95 * self.paired_stderr):+.1f}]")
        verdict = "B is better" if lo > 0 else "A is better" if hi < 0 else "no significant difference"
        lines.append(f"verdict at 95%: {verdict}")
        return "\n".join(lines)


def compare(a: Report, b: Report, agent: str = "model") -> Comparison:
    """``b − a`` in ``agent``'s success rate, with its standard error, 95% interval and a protocol check."""
    ra, rb = a.row(agent), b.row(agent)
    pa, pb, na, nb = ra.success_rate, rb.success_rate, ra.effective_n, rb.effective_n
    d = pb - pa
    se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    (la, ua), (lb, ub) = ra.ci95, rb.ci95
    ci = (d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2))
    z = d / se if se > 0 else None
    p_value = math.erfc(abs(z) / math.sqrt(2)) if z is not None else None
    return Comparison(
        agent=agent, success_a=pa, success_b=pb, n_a=na, n_b=nb, difference=d, stderr=se, ci95=ci, z=z,
        p_value=p_value, paired_stderr=_paired_stderr(ra, rb),
        protocol_differences=a.protocol.differences(b.protocol),
        model_a=f"{a.model.path} ({a.model.sha256[:12]})", model_b=f"{b.model.path} ({b.model.sha256[:12]})",
    )


def _paired_stderr(ra: AgentResult, rb: AgentResult) -> float | None:
    """SE of the mean per-task difference when both rows hold exactly the same episode keys."""
    keys_a = {tuple(o[:3]): o[3] for o in ra.outcomes}
    keys_b = {tuple(o[:3]): o[3] for o in rb.outcomes}
    if not keys_a or keys_a.keys() != keys_b.keys():
        return None
    per_task: dict[int, list[float]] = {}
    for key, success_a in keys_a.items():
        per_task.setdefault(key[0], []).append(keys_b[key] - success_a)
    diffs = np.array([np.mean(v) for v in per_task.values()])
    if len(diffs) < 2:
        return None
    return float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
