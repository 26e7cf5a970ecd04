"""Group rollouts: K episodes per task, every active env stepped in lockstep.

    batch = rollout(vector_env, engine, prompt_builder, tasks=[0, 1, 2, 3], k=4, max_turns=20)
    batch.save_jsonl("rollouts/iter_0001.jsonl")
    advantages = credit.estimate("gigpo", credit.StepBatch.from_rows(batch.rows))

Each turn, every running episode's prompt is built and tokenized once, the
engine samples all responses in ONE call, the parsed actions go to the vector
env in one ``step``, and each (prompt, response) becomes a :class:`StepRow`
holding the token ids exactly as the engine consumed and produced them. When
there are more episodes than envs, a finished env starts the next pending
episode at once, so the engine batch stays full.

An env that crashes (``info["env_error"]``) ends its episode as truncated; the
rollout goes on and the error is counted in :meth:`TrajectoryBatch.metrics`. An
env that fails to reset (twice, rebuilt in between) gives a :class:`FailedStart`:
an episode with no steps that counts as a failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from steprl.agent.engines.base import Engine, Sampling
from steprl.agent.parsing import parse_response
from steprl.agent.prompts import PromptBuilder

__all__ = ["StepRow", "TrajectoryBatch", "FailedStart", "rollout", "evaluate_agent", "anchor_key", "derive_seed",
           "episode_reset_seed"]


@dataclass
class StepRow:
    """One agent step: the prompt it saw, what it generated, what the env said.

    Attributes:
        traj_id: episode id, unique in the batch (``group_id * k + j``).
        group_id: index of the task in the rollout's ``tasks`` (the K episodes of a task share it).
        task_id: the env's task id (same id ⇔ same task instance).
        step: 0-based turn index within the episode.
        prompt_ids: prompt token ids exactly as the engine consumed them.
        response_ids: response token ids exactly as the engine sampled them (stop token included).
        logprobs: the sampler's log-prob of each response token (temperature 1).
        response_text: the response decoded without special tokens.
        action: the parsed action sent to the env (``""`` if none was found).
        format_ok: the response followed ``response_format`` and finished.
        valid_action: the env accepted the action.
        reward: the env's reward for this step.
        anchor: canonical key of the state the action was taken in (GiGPO).
        done: this is the episode's last step (terminated or truncated).
        truncated: the episode was cut here (time limit, ``max_turns``, env error) rather than terminated.
        success: the episode's outcome, copied onto each of its rows.
        observation: the observation the action answered.
        history_cut: history pairs dropped from this prompt to fit the token budget.
        expert_action: the env's expert action in this state, when it has one.
        env_error: the env's error message when it crashed on this step.
        obs_cut: characters cut from the observation to fit the budget (rare).
        actions_cut: admissible actions left off the prompt's list to fit the budget (rare).
        anchor_key: a stable 63-bit hash of ``anchor`` (:func:`anchor_key`), computed when
            the row is made, so credit groups integers instead of hashing text.
        next_anchor_key: :func:`anchor_key` of the state the action led to (the next row's
            ``anchor_key``; on the last row, the final state's); -1 when the env crashed.
        entropy: mean token entropy of the response's sampling distribution, as the engine
            recorded it (``Completion.entropy``; EMPG's step uncertainty); None when it did not.
        credit: the credit the row was trained with, which the trainer sets on the episodes it
            saves: ``{"estimator": name, "advantage": A, "kept": bool, "details": {name: value}}``
            (the advantage exactly as the update used it; the estimator's per-step quantities,
            ``credit.details``, None where one does not apply); None when not recorded.
    """

    traj_id: int
    group_id: int
    task_id: str
    step: int
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    response_text: str
    action: str
    format_ok: bool
    valid_action: bool
    reward: float
    anchor: str
    done: bool
    truncated: bool
    success: bool
    observation: str
    history_cut: int
    expert_action: str | None
    env_error: str | None
    obs_cut: int = 0
    actions_cut: int = 0
    anchor_key: int = -1
    next_anchor_key: int = -1
    entropy: float | None = None
    credit: dict | None = None

    def __post_init__(self) -> None:
        if self.anchor_key < 0:
            self.anchor_key = anchor_key(self.anchor)


def anchor_key(anchor: str) -> int:
    """A stable 63-bit state hash of an anchor text (BLAKE2b), equal across processes and runs."""
    digest = hashlib.blake2b(anchor.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


_EPISODE_FIELDS = ("traj_id", "group_id", "task_id", "success")
_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(StepRow))
_STEP_FIELDS = tuple(name for name in _ROW_FIELDS if name not in _EPISODE_FIELDS)
_OMITTED_WHEN_NONE = ("credit",)  # optional step fields left out of the JSONL when unset (older files lack them)


@dataclass(frozen=True)
class FailedStart:
    """An episode whose env failed to reset (after one rebuild and retry): it has no steps.

    It counts as a failed episode in :meth:`TrajectoryBatch.success_rate` and as a
    ``rollout/reset_errors`` in the metrics; there is nothing in it to train on.
    """

    traj_id: int
    group_id: int
    task: int
    env_error: str


@dataclass
class TrajectoryBatch:
    """The step rows of a rollout, plus how long it took.

    Attributes:
        rows: step rows ordered by ``traj_id``, then ``step``.
        timings: seconds spent in ``env``, ``engine``, ``prompt`` building and
            ``total``, plus ``engine_calls``; not saved to JSONL.
        failed_starts: episodes whose env could not be reset (no rows; each counts
            as a failure), ordered by ``traj_id``.
    """

    rows: list[StepRow] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    failed_starts: list[FailedStart] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def episodes(self) -> list[list[StepRow]]:
        """Rows grouped by episode (ordered by ``traj_id``), each in step order."""
        by_traj: dict[int, list[StepRow]] = {}
        for row in self.rows:
            by_traj.setdefault(row.traj_id, []).append(row)
        return [sorted(by_traj[t], key=lambda r: r.step) for t in sorted(by_traj)]

    def success_rate(self) -> float:
        """Share of episodes that succeeded, failed starts counted as failures (NaN for an empty batch)."""
        episodes = self.episodes()
        played = len(episodes) + len(self.failed_starts)
        return sum(ep[-1].success for ep in episodes) / played if played else float("nan")

    def metrics(self) -> dict[str, float]:
        """Rollout and env metrics, named by namespace (``rollout/…``, ``env/…``, ``time/…``).

        ``rollout/episodes`` counts every episode, failed starts included; the
        per-step and per-episode means are over the episodes that started.
        """
        episodes = self.episodes()
        failed = len(self.failed_starts)
        if not episodes:
            out = {"rollout/episodes": failed, "rollout/steps": 0}
            if failed:
                out.update({"rollout/reset_errors": failed, "env/success_rate": 0.0})
            return out
        rows = self.rows
        out = {
            "rollout/episodes": len(episodes) + failed,
            "rollout/reset_errors": failed,
            "rollout/steps": len(rows),
            "rollout/turns": float(np.mean([len(ep) for ep in episodes])),
            "rollout/format_ok": float(np.mean([r.format_ok for r in rows])),
            "rollout/invalid": float(np.mean([not r.valid_action for r in rows])),
            "rollout/history_cut": int(sum(r.history_cut for r in rows)),
            "rollout/obs_cut": int(sum(r.obs_cut > 0 for r in rows)),
            "rollout/actions_cut": int(sum(r.actions_cut > 0 for r in rows)),
            "rollout/env_errors": int(sum(any(r.env_error for r in ep) for ep in episodes)),
            "rollout/truncated": float(np.mean([ep[-1].truncated for ep in episodes])),
            "rollout/prompt_tokens": float(np.mean([len(r.prompt_ids) for r in rows])),
            "rollout/response_tokens": float(np.mean([len(r.response_ids) for r in rows])),
            "env/success_rate": self.success_rate(),
            "env/return": float(np.mean([sum(r.reward for r in ep) for ep in episodes])),
        }
        t = self.timings
        if t.get("total"):
            out["time/rollout_s"] = t["total"]
            out["time/env_share"] = t["env"] / t["total"]
            out["time/engine_share"] = t["engine"] / t["total"]
            out["time/env_steps_per_s"] = len(rows) / t["total"]
            out["time/tokens_per_s"] = sum(len(r.response_ids) for r in rows) / t["total"]
        return out

    # -- JSONL ----------------------------------------------------------------
    def save_jsonl(self, path: str | Path) -> Path:
        """Write one episode per line: ``{traj_id, group_id, task_id, success, steps: [...]}``.

        A step's ``credit`` (the advantage it was trained with and the estimator's per-step
        quantities, see :class:`StepRow`) is written when set and left out otherwise.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for episode in self.episodes():
                first = dataclasses.asdict(episode[0])
                record = {name: first[name] for name in _EPISODE_FIELDS}
                record["steps"] = [{name: value for name in _STEP_FIELDS
                                    if (value := getattr(row, name)) is not None or name not in _OMITTED_WHEN_NONE}
                                   for row in episode]
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            for failed in self.failed_starts:  # no steps; the record says why
                f.write(json.dumps({"traj_id": failed.traj_id, "group_id": failed.group_id, "task_id": "",
                                    "success": False, "steps": [], "task": failed.task,
                                    "failed_start": failed.env_error}, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load_jsonl(cls, path: str | Path) -> "TrajectoryBatch":
        """Read a file written by :meth:`save_jsonl`; rows come back equal (files without ``credit`` load too)."""
        rows: list[StepRow] = []
        failed_starts: list[FailedStart] = []
        with Path(path).open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                missing = [name for name in (*_EPISODE_FIELDS, "steps") if name not in record]
                if missing:
                    raise ValueError(f"{path}:{line_no}: episode record lacks {missing}")
                if "failed_start" in record:
                    failed_starts.append(FailedStart(record["traj_id"], record["group_id"], record.get("task", -1),
                                                     record["failed_start"]))
                    continue
                episode = {name: record[name] for name in _EPISODE_FIELDS}
                for step in record["steps"]:
                    unknown = set(step) - set(_STEP_FIELDS)
                    if unknown:
                        raise ValueError(f"{path}:{line_no}: unknown step field(s) {sorted(unknown)}")
                    rows.append(StepRow(**episode, **step))
        return cls(rows, failed_starts=failed_starts)


# -- the rollout ---------------------------------------------------------------
@dataclass
class _Episode:
    """Book-keeping of one running episode."""

    traj_id: int
    group_id: int
    task: int
    reset_seed: int
    observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    rows: list[StepRow] = field(default_factory=list)
    anchor_key: int = -1  # anchor_key of the current state, once hashed (as the previous row's next state)


def episode_reset_seed(seed: int, group: int) -> int:
    """The env reset seed of group ``group``'s episodes in a call seeded ``seed``: the one seeding rule of
    every episode loop (model rollouts here, scripted agents in :mod:`agent.scripted`)."""
    return derive_seed(seed, 0, group)


def derive_seed(*numbers: int) -> int:
    """A 31-bit seed mixed from integers (independent streams per (seed, index))."""
    return int(np.random.SeedSequence([int(x) & 0xFFFFFFFF for x in numbers]).generate_state(1)[0] >> 1)


def rollout(
    vector_env,
    engine: Engine,
    prompt_builder,
    tasks: Sequence[int],
    *,
    k: int = 1,
    max_turns: int = 20,
    sampling: Sampling | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TrajectoryBatch:
    """Play ``k`` episodes of each task with the engine as the policy.

    Args:
        vector_env: an ``envs.TextVectorEnv`` (any number of envs; finished
            envs pick up pending episodes).
        engine: an :class:`~agent.engines.base.Engine`.
        prompt_builder: a :class:`~agent.prompts.PromptBuilder`, or an
            :class:`~agent.config.AgentConfig` to build one (and the sampling) from.
        tasks: task indices of the env's split (``reset(options={"task": i})``).
            Entry ``g`` is group ``g``; a task may appear twice (two groups).
        k: episodes per task (the group size).
        max_turns: turns after which an episode is truncated.
        sampling: how to sample; defaults to the config's, else ``Sampling()``.
            Its seed is replaced by one derived from ``seed`` and the turn.
        seed: makes the rollout reproducible (env reset seeds and sampling).
        progress: show a tqdm bar over episodes.

    Returns:
        A :class:`TrajectoryBatch` with ``len(tasks) * k`` episodes.
    """
    if not isinstance(prompt_builder, PromptBuilder):  # an AgentConfig
        config = prompt_builder
        prompt_builder = PromptBuilder.from_config(engine.tokenizer, config)
        sampling = sampling or config.sampling()
    sampling = sampling or Sampling()
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    if max_turns < 1:
        raise ValueError(f"max_turns={max_turns} must be >= 1")
    if len(tasks) == 0:
        raise ValueError("rollout got no tasks")
    response_format = prompt_builder.response_format
    num_envs = vector_env.num_envs

    pending = deque(
        _Episode(traj_id=group * k + j, group_id=group, task=int(task), reset_seed=episode_reset_seed(seed, group))
        for group, task in enumerate(tasks)
        for j in range(k)
    )
    total_episodes = len(pending)
    running: dict[int, _Episode] = {}  # env index → its episode
    finished: list[_Episode] = []
    failed_starts: list[FailedStart] = []
    timings = {"env": 0.0, "engine": 0.0, "prompt": 0.0, "engine_calls": 0}
    start = time.perf_counter()
    bar = tqdm(total=total_episodes, unit="episode", desc="rollout", disable=not progress, leave=False)
    try:
        while pending or running:
            # start pending episodes on free envs
            free = [i for i in range(num_envs) if i not in running][: len(pending)]
            if free:
                starting = [pending.popleft() for _ in free]
                t0 = time.perf_counter()
                observations, infos = vector_env.reset_each(  # a failing reset is retried once, never raises
                    seeds=[ep.reset_seed for ep in starting],
                    options=[{"task": ep.task} for ep in starting],
                    indices=free,
                )
                timings["env"] += time.perf_counter() - t0
                for env_index, ep, obs, info in zip(free, starting, observations, infos):
                    if obs is None:  # the env could not start this episode: a failure with no steps
                        failed_starts.append(FailedStart(ep.traj_id, ep.group_id, ep.task, info["env_error"]))
                        bar.update(1)
                        continue
                    ep.observation, ep.info = obs, info
                    running[env_index] = ep
            if not running:
                continue

            # one prompt per running episode, one engine call for all of them
            t0 = time.perf_counter()
            env_indices = sorted(running)
            prompts = []
            for i in env_indices:
                ep = running[i]
                prompts.append(
                    prompt_builder.build(
                        ep.info.get("task") or "", ep.observation, ep.history, ep.info.get("admissible_actions"),
                        tools=ep.info.get("tools"),
                    )
                )
            t1 = time.perf_counter()
            timings["prompt"] += t1 - t0
            call_sampling = dataclasses.replace(sampling, seed=derive_seed(seed, 1, timings["engine_calls"]))
            completions = engine.generate([p.token_ids for p in prompts], n=1, sampling=call_sampling)
            timings["engine"] += time.perf_counter() - t1
            timings["engine_calls"] += 1

            actions: list[str | None] = [None] * num_envs
            parsed = []
            for i, completion in zip(env_indices, completions):
                sample = completion[0]
                result = parse_response(sample.text, response_format, finished=sample.finish_reason == "stop")
                actions[i] = result.action
                parsed.append(result)

            t0 = time.perf_counter()
            observations, rewards, terminated, truncated, infos = vector_env.step(actions)
            timings["env"] += time.perf_counter() - t0

            for i, prompt, completion, result in zip(env_indices, prompts, completions, parsed):
                ep, sample, info = running[i], completion[0], infos[i] or {}
                env_error = info.get("env_error")
                ended_by_env = bool(terminated[i] or truncated[i])
                done = ended_by_env or env_error is not None or len(ep.rows) + 1 >= max_turns
                ep.rows.append(
                    StepRow(
                        traj_id=ep.traj_id,
                        group_id=ep.group_id,
                        task_id=str(ep.info.get("task_id", "")),
                        step=len(ep.rows),
                        prompt_ids=list(prompt.token_ids),
                        response_ids=list(sample.token_ids),
                        logprobs=[float(x) for x in sample.logprobs],
                        response_text=sample.text,
                        action=result.action,
                        format_ok=result.format_ok,
                        valid_action=bool(info.get("valid_action", False)),
                        reward=float(rewards[i]),
                        anchor=str(ep.info.get("anchor") or ep.observation),
                        done=done,
                        truncated=done and not bool(terminated[i]),
                        success=False,  # set for the whole episode when it ends
                        observation=ep.observation,
                        history_cut=prompt.history_cut,
                        expert_action=ep.info.get("expert_action"),
                        env_error=env_error,
                        obs_cut=prompt.obs_cut,
                        actions_cut=prompt.actions_cut,
                        anchor_key=ep.anchor_key,
                        entropy=getattr(sample, "entropy", None),
                    )
                )
                ep.history.append((ep.observation, info.get("action_text", result.action)))
                ep.observation = observations[i] if observations[i] is not None else ""
                task_id = ep.info.get("task_id")
                ep.info = {**info, "task": info.get("task") or ep.info.get("task"), "task_id": task_id}
                # the next state's key, hashed once: this row's next_anchor_key and the next row's anchor_key
                ep.anchor_key = anchor_key(str(ep.info.get("anchor") or ep.observation))
                ep.rows[-1].next_anchor_key = -1 if env_error is not None else ep.anchor_key
                if done:
                    success = ended_by_env and env_error is None and bool(info.get("success", False))
                    for row in ep.rows:
                        row.success = success
                    finished.append(running.pop(i))
                    bar.update(1)
            bar.set_postfix(turn=timings["engine_calls"], running=len(running), refresh=False)
    finally:
        bar.close()
    timings["total"] = time.perf_counter() - start
    finished.sort(key=lambda ep: ep.traj_id)
    return TrajectoryBatch([row for ep in finished for row in ep.rows], timings,
                           failed_starts=sorted(failed_starts, key=lambda f: f.traj_id))


def evaluate_agent(vector_env, engine, prompt_builder, num_tasks: int, *, max_turns: int, sampling,
                   seed: int = 0, progress: bool = False, prefix: str = "eval") -> tuple[dict[str, float], object]:
    """Play task ``0..num_tasks-1`` of the vector env's split once each (the trainer's periodic evaluation).

    Returns ``(metrics, trajectory_batch)``; metrics are named ``{prefix}/success_rate``,
    ``{prefix}/return``, ``{prefix}/turns``, ``{prefix}/invalid``, ``{prefix}/format_ok``,
    ``{prefix}/truncated`` and ``{prefix}/stderr`` (binomial standard error of the success rate).
    """
    batch = rollout(vector_env, engine, prompt_builder, list(range(num_tasks)), k=1, max_turns=max_turns,
                    sampling=dataclasses.replace(sampling, seed=seed), seed=seed, progress=progress)
    m = batch.metrics()
    p = m["env/success_rate"]
    metrics = {
        f"{prefix}/success_rate": p,
        f"{prefix}/stderr": float(np.sqrt(p * (1 - p) / max(m["rollout/episodes"], 1))),
        f"{prefix}/episodes": m["rollout/episodes"],
        f"{prefix}/return": m["env/return"],
        f"{prefix}/turns": m["rollout/turns"],
        f"{prefix}/invalid": m["rollout/invalid"],
        f"{prefix}/format_ok": m["rollout/format_ok"],
        f"{prefix}/truncated": m["rollout/truncated"],
    }
    return metrics, batch
