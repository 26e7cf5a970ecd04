"""``evaluate(model, env_id, ...) -> Report``: a checkpoint alone on a held-out split, with floor and ceiling.

    from steprl.evaluation import evaluate
    report = evaluate("runs/quickstart", split="test", episodes=200, seeds=(0, 1, 2))
    report.save("runs/quickstart/eval_test")
    print(report.to_markdown())

``model`` is a model folder (``config.json`` + weights + tokenizer) or a run
directory (``config.yaml`` + ``checkpoints/iter_*/model``): a run is evaluated
at its latest checkpoint, with the tokenizer of its base model
(``agent.model``), and its prompt settings, env settings and turn limit
from ``config.yaml`` unless given here. A single checkpoint directory
(``RUN/checkpoints/iter_000010``) works too.

Protocol: tasks ``0..episodes-1`` of ``split``; for every seed, ``k`` episodes
per task with the engine (greedy when ``temperature == 0``), then the
reference agents on the same tasks and env reset seeds: ``random`` (uniform
over ``info["admissible_actions"]``) and ``expert`` (``info["expert_action"]``,
when the env gives one). Everything derives from the seeds, so the same model
and seeds give the same report, apart from its ``date``.

Left out on purpose: evaluating on several envs at once (call it per env), and
any retry of crashed episodes (an env error ends the episode as a failure, as
in training).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steprl.evaluation.report import EpisodeOutcome, ModelInfo, Protocol, Report, summarize_outcomes

__all__ = ["evaluate", "resolve_model", "ResolvedModel", "weights_sha256"]

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")
PROMPT_FIELDS = ("history_k", "history_observations", "response_format", "max_prompt_tokens", "system_prompt",
                 "show_admissible_actions")


# -- which weights ---------------------------------------------------------------------------
@dataclass
class ResolvedModel:
    """Where a model argument's weights, tokenizer and settings live.

    Attributes:
        path: the argument as given.
        weights: folder of the weights to evaluate (a full HF folder or a LoRA adapter).
        tokenizer: folder of the tokenizer.
        base: the base model folder a LoRA adapter applies to (``None`` for full weights).
        source: ``model folder`` or ``run checkpoint``.
        checkpoint: checkpoint directory name for runs.
        run_config: the run's saved ``RunConfig`` (``None`` for a model folder).
    """

    path: str
    weights: Path
    tokenizer: Path
    base: Path | None = None
    source: str = "model folder"
    checkpoint: str | None = None
    run_config: Any = field(default=None, repr=False)


def resolve_model(model: str | Path) -> ResolvedModel:
    """Find the weights, tokenizer and (for runs) config of ``model``: a model folder, run dir or checkpoint dir.

    Raises ``FileNotFoundError`` naming the path when it is none of these.
    """
    from steprl.trainer.checkpoint import (
        MODEL_DIR,
        CheckpointCorrupt,
        is_checkpoint_dir,
        is_run_dir,
        latest_intact,
        read_run_config,
        run_dir_of,
        verify_checkpoint,
    )

    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model {str(model)!r} does not exist: give a model folder (config.json + weights) "
                                "or a run directory (config.yaml + checkpoints/)")
    run_dir, checkpoint = None, None
    if is_run_dir(path):
        run_dir, checkpoint = path, latest_intact(path)  # warns about, and skips, corrupt newer ones
        if checkpoint is None:
            raise FileNotFoundError(f"run directory {str(model)!r} has no checkpoints/iter_*: train it first "
                                    "(or pass its base model folder)")
    elif is_checkpoint_dir(path):
        checkpoint, run_dir = path, run_dir_of(path)
        problem = verify_checkpoint(checkpoint)
        if problem is not None:
            raise CheckpointCorrupt(f"checkpoint {str(model)!r} is corrupt ({problem}); give its run directory to "
                                    "evaluate the newest intact checkpoint")
        if not is_run_dir(run_dir):
            raise FileNotFoundError(f"checkpoint {str(model)!r} is not inside a run directory with a config.yaml")
    if run_dir is None:
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{str(model)!r} is neither a model folder (no config.json) nor a run directory "
                                    "(no config.yaml)")
        return ResolvedModel(str(model), path, path)

    config = read_run_config(run_dir)
    weights = checkpoint / MODEL_DIR
    if not weights.is_dir():
        raise FileNotFoundError(f"checkpoint {checkpoint} holds no model/ folder")
    base_name = config.agent.model
    candidates = [Path(base_name).expanduser(), run_dir / Path(base_name).name, run_dir / "base_model"]
    base = next((c for c in candidates if base_name and (c / "config.json").is_file()), None)
    if base is None:
        raise FileNotFoundError(f"run {str(model)!r}: its base model agent.model={base_name!r} (for the tokenizer) "
                                f"is not found, also not as {run_dir / Path(base_name).name}")
    lora = (weights / "adapter_config.json").is_file()
    return ResolvedModel(str(model), weights, base, base if lora else None, "run checkpoint", checkpoint.name, config)


def weights_sha256(*folders: Path) -> str:
    """sha256 over the weight files of ``folders`` (file name and bytes, in name order)."""
    digest = hashlib.sha256()
    files = []
    for folder in folders:
        files += sorted({f for pattern in WEIGHT_PATTERNS for f in Path(folder).glob(pattern) if f.is_file()})
    if not files:
        raise FileNotFoundError(f"no weight files ({', '.join(WEIGHT_PATTERNS)}) in {', '.join(map(str, folders))}")
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _load_engine(resolved: ResolvedModel, agent_config):
    """An HF engine on the resolved weights (LoRA adapters merged); ``ValueError`` naming the model when it fails."""
    import torch

    from steprl.agent.engines import make_engine
    from steprl.agent.engines.base import default_device, resolve_dtype
    from steprl.agent.models import load_tokenizer, merge_lora

    device = default_device() if agent_config.device == "auto" else torch.device(agent_config.device)
    try:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        dtype = resolve_dtype(agent_config.dtype, device)
        trust = agent_config.trust_remote_code
        if resolved.base is not None:  # a LoRA adapter on the run's base model
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(str(resolved.base), dtype=dtype, trust_remote_code=trust)
            model = merge_lora(PeftModel.from_pretrained(base, str(resolved.weights)))
        else:
            model = AutoModelForCausalLM.from_pretrained(str(resolved.weights), dtype=dtype, trust_remote_code=trust)
        model.to(device).eval()
        tokenizer = load_tokenizer(str(resolved.tokenizer), trust_remote_code=trust)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, JSON errors …
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"cannot load model {resolved.path!r} (weights {resolved.weights}): "
                         f"{type(exc).__name__}: {reason}") from exc
    return make_engine(agent_config.model_copy(update={"engine": "hf"}), module=model, tokenizer=tokenizer)


def _outcomes(name: str, episodes, seed: int, task_types: Mapping[int, str] | None) -> list[EpisodeOutcome]:
    """A report's records of scripted episodes (agent.scripted.play_scripted)."""
    return [EpisodeOutcome(task=e.task, seed=seed, sample=0, success=e.success, reward=e.reward, turns=e.turns,
                           invalid=e.invalid, unparseable=None, truncated=e.truncated,
                           task_type=(task_types or {}).get(e.task)) for e in episodes]


# -- evaluate ---------------------------------------------------------------------------------
def evaluate(
    model: str | Path,
    env_id: str | None = None,
    split: str = "test",
    episodes: int = 100,
    seeds: Sequence[int] = (0,),
    k: int = 1,
    temperature: float = 0.0,
    num_workers: int = 0,
    progress: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
    max_turns: int | None = None,
    *,
    agent: Mapping[str, Any] | None = None,
    references: bool = True,
    lockstep_envs: int | None = None,
) -> Report:
    """Evaluate a model folder or a run's latest checkpoint on ``split``; returns a :class:`Report`.

    Args:
        model: model folder, run directory or checkpoint directory (see the module docstring).
        env_id: registered env id; defaults to a run's ``env.id`` (required for a model folder).
        split: ``train``, ``valid`` or ``test``.
        episodes: tasks to evaluate: indices ``0..episodes-1`` of the split.
        seeds: evaluation seeds; each replays every task ``k`` times with its own env and sampling seeds.
        k: samples per task and seed; with k > 1 the report gives pass@1..k (use ``temperature > 0``).
        temperature: 0 = greedy decoding.
        num_workers: env worker processes of the vector env (0 = in this process).
        progress: show progress bars.
        env_kwargs: env settings; default: a run's ``env.kwargs``, else the registered defaults.
        max_turns: turn limit; default: a run's ``env.max_turns``, else the env's registered time limit.
        agent: :class:`agent.config.AgentConfig` overrides (``history_k``, ``max_new_tokens``, ``top_p``, …) on
            top of the run's ``agent`` section (or the defaults for a model folder).
        references: also play the random and expert agents on the same tasks.
        lockstep_envs: envs stepped together (one engine call per turn for all of them): the engine's batch;
            default: a run's ``eval.envs``, else 32.

    Raises:
        KeyError: unknown env id.
        ValueError: a split that does not exist or has no tasks, ``episodes < 1``, a model that fails to load.
        FileNotFoundError: ``model`` is not a model folder or run directory.
    """
    from steprl import envs  # cheap checks first (arguments, model path, env id, split); the model loads before the games

    seeds = [int(s) for s in seeds]
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: the evaluation has no tasks; give episodes >= 1")
    if k < 1:
        raise ValueError(f"k={k} must be >= 1 (samples per task)")
    if not seeds:
        raise ValueError("seeds is empty: give at least one evaluation seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds} has duplicates")
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0 (0 = greedy)")

    resolved = resolve_model(model)
    run = resolved.run_config  # the run's RunConfig, or None for a model folder
    run_env = run.env if run is not None else None
    env_id = env_id or (run_env.id if run_env is not None else None)
    if env_id is None:
        raise ValueError(f"no env id: pass env_id (--env) for model folder {str(model)!r}")
    spec = envs.spec(env_id)  # KeyError naming near matches
    if run_env is not None and run_env.id != env_id:  # the run's env settings and turn limit are its env's only
        run_env = None
    if env_kwargs is None:
        env_kwargs = dict(run_env.kwargs) if run_env is not None else {}
    env_kwargs = dict(env_kwargs)
    if max_turns is None:
        max_turns = int((run_env.max_turns if run_env is not None else None) or spec.max_episode_steps or 50)
    if max_turns < 1:
        raise ValueError(f"max_turns={max_turns} must be >= 1")
    if lockstep_envs is None:
        lockstep_envs = run.eval.envs if run is not None else 32
    if lockstep_envs < 1:
        raise ValueError(f"lockstep_envs={lockstep_envs} must be >= 1")

    from pydantic import ValidationError

    from steprl.agent.config import AgentConfig
    from steprl.agent.engines.base import Sampling

    notes: list[str] = []
    saved_agent = run.agent.model_dump(mode="json") if run is not None else {}
    agent_settings = {**saved_agent, "model": str(resolved.weights), **dict(agent or {}),
                      "temperature": temperature}
    try:
        agent_config = AgentConfig(**agent_settings)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid agent settings: {problems}") from None
    if agent_config.engine != "hf":
        notes.append(f"agent.engine={agent_config.engine!r}: evaluated with the hf engine")
    if k > 1 and temperature == 0:
        notes.append(f"k={k} samples with greedy decoding repeat the same episode unless the env is stochastic: "
                     "pass@k ≈ pass@1; use temperature > 0")

    probe = envs.make(env_id, split=split, num_tasks=episodes, max_episode_steps=max_turns, **env_kwargs)
    available = probe.unwrapped.num_tasks
    if available < episodes:
        notes.append(f"split {split!r} has only {available} tasks: evaluated {available}, not {episodes}")
    tasks = list(range(available))

    try:  # the model before the games: a model that does not load fails fast
        sha = weights_sha256(*(p for p in (resolved.weights, resolved.base) if p is not None))
        engine = _load_engine(resolved, agent_config)
        # generate the split's games (cached), and read what the env offers: an expert? task types?
        probe.unwrapped.prepare(progress=progress)
        infos: dict[int, dict] = {}  # task → first info; a task whose reset fails is left out here
        errors: list[str] = []
        for task in tasks:
            try:
                infos[task] = probe.reset(seed=0, options={"task": task})[1]
            except Exception as exc:  # the episodes of a broken task count as failures below
                errors.append(f"task {task}: {type(exc).__name__}: {exc}")
                continue
            if "task_type" not in next(iter(infos.values())):
                break  # no task types to read: one task that resets is enough
        if not infos:
            raise RuntimeError(f"no task of {env_id} {split} could be reset (first error: {errors[0]})")
        first_info = next(iter(infos.values()))
        has_expert = first_info.get("expert_action") is not None
        task_types: dict[int, str] | None = None
        if "task_type" in first_info:
            task_types = {task: str(infos[task].get("task_type")) if task in infos else "reset failed"
                          for task in tasks}
    finally:
        probe.close()

    from tqdm.auto import tqdm

    from steprl.agent.prompts import PromptBuilder
    from steprl.agent.rollout import rollout

    builder = PromptBuilder.from_config(engine.tokenizer, agent_config)
    sampling = Sampling(temperature=temperature, top_p=agent_config.top_p, top_k=agent_config.top_k,
                        max_new_tokens=agent_config.max_new_tokens)
    env_fns = [envs.make_fn(env_id, split=split, num_tasks=len(tasks), max_episode_steps=max_turns, **env_kwargs)
               for _ in range(min(lockstep_envs, len(tasks) * k))]
    rows, trajectories = [], []
    with envs.TextVectorEnv(env_fns, num_workers=num_workers) as vector_env:
        outcomes: list[EpisodeOutcome] = []
        for seed in seeds:
            if progress:
                tqdm.write(f"model on {env_id} {split}: seed {seed}, {len(tasks)} tasks × {k}", file=sys.stderr)
            batch = rollout(vector_env, engine, builder, tasks, k=k, max_turns=max_turns, sampling=sampling,
                            seed=seed, progress=progress)
            trajectories.append(batch)
            for episode in batch.episodes():
                first, last = episode[0], episode[-1]
                outcomes.append(EpisodeOutcome(
                    task=tasks[first.group_id], seed=seed, sample=first.traj_id % k, success=bool(last.success),
                    reward=float(sum(r.reward for r in episode)), turns=len(episode),
                    invalid=sum(not r.valid_action for r in episode), unparseable=sum(not r.format_ok for r in episode),
                    truncated=bool(last.truncated), task_type=(task_types or {}).get(tasks[first.group_id])))
            for failed in batch.failed_starts:  # the env could not start it: a failure with no turns
                outcomes.append(EpisodeOutcome(
                    task=tasks[failed.group_id], seed=seed, sample=failed.traj_id % k, success=False, reward=0.0,
                    turns=0, invalid=0, unparseable=0, truncated=True,
                    task_type=(task_types or {}).get(tasks[failed.group_id])))
        rows.append(summarize_outcomes("model", outcomes, seeds, k))

        if references:  # the same loop and seeds as `steprl baselines` (agent.scripted)
            from steprl.agent.scripted import ExpertPolicy, RandomPolicy, play_scripted, policy_factory

            scripted = [RandomPolicy()] + ([ExpertPolicy()] if has_expert else [])
            bar = tqdm(total=len(scripted) * len(seeds) * len(tasks), desc="reference agents", unit="episode",
                       disable=not progress, leave=False)
            for agent_policy in scripted:
                played = []
                for seed in seeds:
                    episodes_played = play_scripted(vector_env, policy_factory(agent_policy, seed), tasks, seed=seed,
                                                    max_turns=max_turns, bar=bar)
                    played += _outcomes(agent_policy.name, episodes_played, seed, task_types)
                rows.append(summarize_outcomes(agent_policy.name, played, seeds, 1))
            bar.close()
            if not has_expert:
                notes.append(f"{env_id} gives no info['expert_action']: no expert row")

    registered = {**spec.kwargs, **env_kwargs}
    protocol = Protocol(
        env_id=env_id, env_version=env_id.rsplit("-", 1)[-1], env_kwargs=_plain(registered), split=split,
        episodes=len(tasks), seeds=seeds, k=k, decoding="greedy" if temperature == 0 else "sampled",
        temperature=float(temperature), top_p=float(agent_config.top_p), top_k=int(agent_config.top_k),
        max_new_tokens=int(agent_config.max_new_tokens), max_turns=int(max_turns),
        prompt={name: getattr(agent_config, name) for name in PROMPT_FIELDS},
    )
    info = ModelInfo(path=str(model), weights=str(resolved.weights), sha256=sha, source=resolved.source,
                     checkpoint=resolved.checkpoint, tokenizer=str(resolved.tokenizer))
    return Report(protocol=protocol, model=info, rows=rows, steprl_version=_steprl_version(),
                  date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), notes=notes, trajectories=trajectories)


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively (JSON round-trips then compare equal)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _steprl_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("steprl")
    except PackageNotFoundError:
        return "unknown"
