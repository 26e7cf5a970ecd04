"""The RL recipe behind ``steprl train CONFIG``: rollouts → credit → update → sync, with evaluation.

    steprl train configs/quickstart.yaml [key.sub=value ...]
    steprl train --resume runs/quickstart

Per iteration (ARCHITECTURE.md data flow):
  1. rollout   — ``run.tasks_per_iteration`` train tasks × ``run.group_size`` episodes,
                 all envs in lockstep, one engine call per turn (agent.rollout);
  2. credit    — ``credit.estimate(credit.estimator, ...)`` one advantage per step row,
                 ``credit.diagnose`` logged; SPA's progress estimator / GAE's value head
                 are fitted here first;
  3. update    — PPO-style policy update (trainer.policy.PolicyTrainer);
  4. sync      — the engine gets the new weights (a no-op for the HF engine, which
                 generates with the trained module itself: one model copy);
  5. evaluate  — every ``eval.every`` iterations, greedy, on ``eval.split``;
  6. checkpoint — every ``run.save_every`` iterations, atomically.

Before the first iteration: an optional SFT warm start on expert steps of the
train split, the heads' one-time fitting (SPA's progress estimator with
``trainer.progress_head.mode=reference``: explore, fit, freeze; trainer/progress.py),
then an evaluation (the "SFT start" the README compares against).

Beyond one process (docs/distributed.md), all off by default:
  * ``env.executor: ray`` — env workers are Ray actors (envs.ray_vector);
  * ``run.rollout_workers: N`` — N engine replicas as Ray actors roll out shares of the
    tasks and get the weights after every update (agent.workers);
  * ``torchrun --nproc_per_node N -m steprl train CONFIG`` — N data-parallel ranks:
    each rolls out its share of the tasks, the batch is gathered on every rank, the
    update's gradients are summed over ranks (trainer.distributed); rank 0 evaluates,
    logs and checkpoints.

Left out on purpose: asynchronous rollouts and any reward shaping beyond what the
estimators define.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RLRun", "MetricsLogger", "SectionTimer"]


class SectionTimer:
    """Wall time per named section: ``with timer("update"): ...``; ``metrics()`` → ``{"time/update_s": …}``.

    A section entered twice adds up (the heads run before and after credit).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def metrics(self) -> dict[str, float]:
        return {f"time/{name}_s": value for name, value in self.seconds.items()}


class MetricsLogger:
    """Metrics as JSONL (``metrics.jsonl``) and TensorBoard events under the run directory."""

    def __init__(self, run_dir: Path, truncate_after: int | None = None):
        self.path = run_dir / "metrics.jsonl"
        if truncate_after is not None and self.path.exists():  # resume: drop records past the checkpoint
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("iteration", 0) <= truncate_after]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tb"))
        except Exception:  # tensorboard missing: JSONL still has everything
            self._tb = None

    def log(self, iteration: int, metrics: dict[str, Any]) -> None:
        record = {"iteration": iteration, **{k: _plain(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key != "iteration" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, iteration)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def record_credit(rows, estimator: str, advantages, keep=None, details=None) -> None:
    """Set each row's ``credit`` (``agent.rollout.StepRow.credit``): what the update trained it with.

    ``advantages`` and ``keep`` are the arrays the update got (row order), ``details`` the
    estimator's per-step quantities (``credit.details``); numbers become plain Python values,
    NaN and infinities None, so the JSONL round-trips them exactly.
    """
    advantage = np.asarray(advantages, dtype=np.float64).tolist()
    kept = [True] * len(rows) if keep is None else np.asarray(keep, dtype=bool).tolist()
    columns = {name: _plain_column(values) for name, values in (details or {}).items()}
    for i, row in enumerate(rows):
        row.credit = {"estimator": estimator, "advantage": advantage[i], "kept": kept[i],
                      "details": {name: column[i] for name, column in columns.items()}}


def _plain_column(values) -> list:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64).tolist()
    values = values.astype(np.float64)
    finite = np.isfinite(values)
    column = values.tolist()
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            column[i] = None
    return column


class _NullLogger:
    """The metrics logger of ranks other than 0: they train, rank 0 writes."""

    def log(self, iteration: int, metrics: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class RLRun:
    """One training run, built from a :class:`steprl.trainer.run_config.RunConfig`.

    Args:
        config: the run config.
        resume: continue from the latest checkpoint in ``config.run.dir``.
    """

    def __init__(self, config, resume: bool = False):
        self.config = config
        self.run_dir = Path(config.run.dir)
        self.resume = resume
        self.start_iteration = 0
        self.resumed = False  # set when a checkpoint was loaded (its SFT and first evaluation are done)
        self.history: list[dict[str, float]] = []  # evaluation records
        self._sft_stats: dict[str, float] = {}  # the SFT figures an iteration-0 checkpoint kept (for --resume)
        self.dist = None  # trainer.distributed.DistContext under torchrun
        self.workers = None  # agent.workers.RolloutWorkers with run.rollout_workers > 0

    @property
    def is_main(self) -> bool:
        """Rank 0 (or the only process): evaluates, logs, writes checkpoints."""
        return self.dist is None or self.dist.is_main

    def _barrier(self) -> None:
        if self.dist is not None:
            self.dist.barrier()

    # -- setup ------------------------------------------------------------------
    def setup(self) -> None:
        from steprl import envs
        from steprl.agent.models import TEXT_FORMATS, build_tiny_model, load_tokenizer
        from steprl.agent.prompts import PromptBuilder
        from steprl.trainer.checkpoint import list_checkpoints, load_latest, write_run_config
        from steprl.trainer.distributed import DistributedPolicyTrainer, init_distributed
        from steprl.trainer.policy import PolicyTrainer, load_policy

        cfg = self.config
        self.dist = init_distributed(cfg.trainer.dist_backend)
        if not self.resume and list_checkpoints(self.run_dir) and not cfg.run.overwrite:
            raise FileExistsError(f"{self.run_dir} already holds checkpoints: continue it with `steprl train --resume "
                                  f"{self.run_dir}`, or set run.dir=NEW_DIR or run.overwrite=true")
        self._barrier()  # every rank has checked before rank 0 writes
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            write_run_config(self.run_dir, cfg)
        self._seed_everything(cfg.run.seed)

        model_dir = Path(cfg.agent.model)
        if self.is_main and cfg.tiny_model is not None and (not self.resume or not (model_dir / "config.json").exists()):
            # A fresh run rebuilds its tiny model even if an earlier run left one there (reusing it once
            # hid a tokenizer change); --resume keeps the one its checkpoints were trained with.
            t0 = time.perf_counter()
            self.say(f"building a tiny model for {cfg.env.id} → {model_dir}")
            formats = tuple(dict.fromkeys((*TEXT_FORMATS, cfg.agent.response_format)))
            build_tiny_model(cfg.env.id, model_dir, hidden=cfg.tiny_model.hidden, layers=cfg.tiny_model.layers,
                             vocab=cfg.tiny_model.vocab, seed=cfg.run.seed, num_tasks=cfg.tiny_model.corpus_tasks,
                             response_formats=formats)
            self.say(f"  built in {time.perf_counter() - t0:.1f}s")

        # Games for every split the run touches, generated in parallel up front by rank 0; other
        # ranks wait, then find them in the cache (or, on another node's disk, make them as needed).
        if self.is_main:
            for split, count in (("train", cfg.env.train_tasks), (cfg.eval.split, cfg.eval.tasks)):
                env = envs.make(cfg.env.id, split=split, num_tasks=count, **cfg.env.kwargs)
                env.unwrapped.prepare(progress=cfg.run.progress)
                env.close()
        self._barrier()

        self.policy = load_policy(str(model_dir), cfg.trainer, trust_remote_code=cfg.agent.trust_remote_code)
        self.tokenizer = load_tokenizer(str(model_dir), trust_remote_code=cfg.agent.trust_remote_code)
        self.builder = PromptBuilder.from_config(self.tokenizer, cfg.agent)
        self.engine = self._make_engine(model_dir)
        self.trainer = (DistributedPolicyTrainer if self.dist is not None else PolicyTrainer)(self.policy, cfg.trainer)
        self.heads = self._make_heads()
        n_train = min(cfg.run.rollout_envs, cfg.run.tasks_per_iteration * cfg.run.group_size)
        if cfg.run.rollout_workers > 0:
            from steprl.agent.workers import RolloutWorkers

            self.workers = RolloutWorkers(  # env.num_workers: env workers/actors *per replica* here
                cfg.agent.model_copy(update={"model": str(model_dir)}),
                cfg.env.make_fns("train", cfg.env.train_tasks, max(n_train, cfg.run.rollout_workers)),
                cfg.run.rollout_workers, address=cfg.env.ray.address, torch_threads=cfg.run.torch_threads,
                actor_options={"num_cpus": cfg.run.rollout_worker_cpus, "num_gpus": cfg.run.rollout_worker_gpus},
                env_executor=cfg.env.resolved_executor, env_workers=cfg.env.num_workers,
                env_actor_options={"num_cpus": cfg.env.ray.actor_cpus})
        else:
            self.train_envs = cfg.env.make_vector_env("train", cfg.env.train_tasks, n_train)
        if self.is_main:
            self.eval_envs = cfg.env.make_vector_env(cfg.eval.split, cfg.eval.tasks, min(cfg.eval.envs, cfg.eval.tasks))

        checkpoint = load_latest(self.run_dir) if self.resume else None
        if self.resume and checkpoint is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {self.run_dir / 'checkpoints'}")
        if checkpoint is not None:
            components = {"trainer": self.trainer, **self.heads}
            checkpoint.restore(self.policy, components)
            self.start_iteration = checkpoint.iteration
            self.resumed = True
            self.history = list(checkpoint.extra.get("eval_history", []))
            self._sft_stats = dict(checkpoint.extra.get("sft_stats", {}))
            self._sync_weights()
            self.say(f"resumed {self.run_dir} at iteration {self.start_iteration}")
        elif self.workers is not None:
            self._sync_weights()  # the replicas loaded the model folder; the trainer may differ (SFT comes later)
        if not self.is_main:
            self.logger = _NullLogger()
            return
        if checkpoint is None:
            (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        self.logger = MetricsLogger(self.run_dir, truncate_after=self.start_iteration if checkpoint else None)

    def _seed_everything(self, seed: int) -> None:
        import random

        import torch

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        if self.config.run.torch_threads:
            torch.set_num_threads(self.config.run.torch_threads)

    def _make_engine(self, model_dir: Path):
        """The rollout engine (agent.make_engine): HF generates with the policy module itself, vLLM loads ``model_dir``."""
        from steprl.agent.engines import make_engine

        return make_engine(self.config.agent, path=model_dir, module=self.policy.model, tokenizer=self.tokenizer,
                           seed=self.config.run.seed)

    def _make_heads(self) -> dict:
        """The heads the estimator's spec and ``credit.reward`` ask for (SPA's progress estimator, GAE's
        critic), by checkpoint component name (trainer.heads.make_heads); empty for none."""
        from steprl.trainer.heads import make_heads

        return make_heads(self.config.credit, self.policy, self.config.trainer, seed=self.config.run.seed)

    def _prepare_heads(self) -> dict[str, float]:
        """Heads that fit once before RL do it now, on the SFT policy (SPA's estimator with
        ``trainer.progress_head.mode=reference``: explore, fit, freeze, save); a resumed run reloads them."""
        stats: dict[str, float] = {}
        for head in self.heads.values():
            stats.update(head.prepare(self))
        return stats

    def _sync_weights(self) -> None:
        if getattr(self.engine, "model", None) is not self.policy.model:
            self.engine.update_weights(self.policy.state_dict_for_engine())
        if self.workers is not None:  # every rollout replica, through Ray's object store
            self.workers.update_weights(self.policy.state_dict_for_engine())

    def say(self, message: str) -> None:
        if not self.is_main:
            return
        from tqdm.auto import tqdm

        tqdm.write(message)

    # -- SFT warm start -----------------------------------------------------------
    def sft(self) -> dict[str, float]:
        from steprl import envs
        from steprl.trainer.expert import collect_expert_steps
        from steprl.trainer.sft import SFTTrainer

        cfg = self.config
        if cfg.sft.steps == 0:
            return {}
        t0 = time.perf_counter()
        env = envs.make(cfg.env.id, split="train", num_tasks=cfg.env.train_tasks, max_episode_steps=cfg.env.max_turns,
                        **cfg.env.kwargs)
        examples, stats = collect_expert_steps(env, self.builder, self.tokenizer, cfg.sft.episodes,
                                            max_turns=cfg.env.max_turns, seed=cfg.run.seed)
        env.close()
        if not examples:
            raise RuntimeError(f"SFT: the expert produced no successful episodes on {cfg.env.id}; set sft.steps=0")
        sft = SFTTrainer(self.policy, cfg.trainer.model_copy(update={"lr": cfg.sft.lr, "warmup_steps": 0}))
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.sft.steps, desc="SFT warm start", unit="step", disable=not cfg.run.progress, leave=False)

        # Without a progress bar (steprl bench, logs to files) a line every tenth of the steps, so a
        # long warm start is not silent for minutes.
        every = max(1, cfg.sft.steps // 10) if not cfg.run.progress else 0
        done = 0

        def on_step(loss: float) -> None:
            nonlocal done
            bar.update()
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            done += 1
            if every and done % every == 0 and done < cfg.sft.steps:
                self.say(f"SFT step {done}/{cfg.sft.steps}: loss {loss:.3f} ({time.perf_counter() - t0:.0f}s)")

        rng = np.random.default_rng([cfg.run.seed, 7])
        losses = sft.fit(examples, steps=cfg.sft.steps, batch_size=cfg.sft.batch_size, rng=rng, on_step=on_step)
        bar.close()
        self._sync_weights()
        n_expert = len(examples)
        if cfg.sft.dagger_rounds:
            stats.update(self._dagger(sft, examples, losses, rng))
        last = [x for x in losses[-5:] if math.isfinite(x)]
        stats.update({"sft/loss_first": losses[0], "sft/loss_last": float(np.mean(last)) if last else float("nan"),
                      "sft/steps": float(len(losses)), "sft/skipped_steps": float(sft.skipped_steps),
                      "time/sft_s": time.perf_counter() - t0})
        skipped = f", {sft.skipped_steps} skipped (non-finite loss or gradient)" if sft.skipped_steps else ""
        dagger = f" + {len(examples) - n_expert} DAgger" if cfg.sft.dagger_rounds else ""
        self.say(f"SFT: {n_expert} expert steps{dagger}, {len(losses)} steps{skipped}, loss {losses[0]:.3f} → "
                 f"{stats['sft/loss_last']:.3f} ({stats['time/sft_s']:.0f}s)")
        return stats

    def _dagger(self, sft, examples: list, losses: list[float], rng: np.random.Generator) -> dict[str, float]:
        """``sft.dagger_rounds`` rounds of DAgger (Ross et al., 2011) after the first SFT fit.

        Each round the current policy plays ``sft.dagger_episodes`` episodes of random train tasks at the
        agent's sampling settings; every step with an ``expert_action`` becomes an example (the prompt the
        policy saw → the expert's action), added to ``examples``; then ``sft.dagger_steps`` more SFT steps
        over all of them, and the engine gets the new weights. ``losses`` grows in place.
        """
        from steprl.trainer.expert import end_of_turn_id, expert_example

        cfg = self.config
        stop = end_of_turn_id(self.tokenizer)
        successes, added = [], 0
        for r in range(cfg.sft.dagger_rounds):
            tasks = rng.choice(cfg.env.train_tasks, size=cfg.sft.dagger_episodes,
                               replace=cfg.sft.dagger_episodes > cfg.env.train_tasks)
            batch, _ = self._rollout(tasks.tolist(), seed=int(rng.integers(2**31)), k=1)
            new = [expert_example(row.prompt_ids, row.expert_action, self.tokenizer, self.builder.response_format, stop)
                   for row in batch.rows if row.expert_action]
            ends = [row for row in batch.rows if row.done]
            successes.append(sum(row.success for row in ends) / max(len(ends), 1))
            examples.extend(new)
            added += len(new)
            losses.extend(sft.fit(examples, steps=cfg.sft.dagger_steps, batch_size=cfg.sft.batch_size, rng=rng))
            self._sync_weights()
            self.say(f"DAgger round {r + 1}/{cfg.sft.dagger_rounds}: policy success {successes[-1]:.1%} on "
                     f"{len(ends)} train episodes, +{len(new)} expert-labelled steps ({len(examples)} in all), "
                     f"loss {np.mean(losses[-5:]):.3f}")
        return {"sft/dagger_examples": float(added), "sft/dagger_success_first": successes[0],
                "sft/dagger_success_last": successes[-1]}

    # -- evaluation ---------------------------------------------------------------
    def evaluate(self, iteration: int) -> dict[str, float]:
        from steprl.agent.engines.base import Sampling
        from steprl.agent.rollout import evaluate_agent

        cfg = self.config
        t0 = time.perf_counter()
        sampling = Sampling(temperature=cfg.eval.temperature, top_p=cfg.agent.top_p, top_k=cfg.agent.top_k,
                            max_new_tokens=cfg.agent.max_new_tokens)
        metrics, _ = evaluate_agent(self.eval_envs, self.engine, self.builder, cfg.eval.tasks,
                                    max_turns=cfg.env.max_turns, sampling=sampling, seed=cfg.run.seed + 10_000,
                                    progress=False)
        metrics["time/eval_s"] = time.perf_counter() - t0
        self.history.append({"iteration": iteration, **metrics})
        return metrics

    # -- one RL iteration -----------------------------------------------------------
    def iteration(self, it: int) -> dict[str, float]:
        """One RL iteration, top to bottom: rollout → credit → policy update → weight sync."""
        from steprl import credit

        cfg = self.config
        timer = SectionTimer()
        rng = np.random.default_rng([cfg.run.seed, it])
        n_tasks = cfg.env.train_tasks
        tasks = rng.choice(n_tasks, size=cfg.run.tasks_per_iteration, replace=cfg.run.tasks_per_iteration > n_tasks)

        # 1. rollout: K episodes of each task
        with timer("rollout"):
            batch, faults = self._rollout(tasks.tolist(), seed=int(rng.integers(2**31)))
        metrics = {**batch.metrics(), **faults}

        # 2. credit: each head fills its field (SPA's ĉ_t, GAE's V(s_t)), credit.reward=spa turns ĉ_t into
        #    the rewards, then one advantage per step row, the estimator's diagnostics, and the rows it drops
        step_batch = credit.StepBatch.from_rows(batch.rows, text_anchors=cfg.credit.text_anchors)
        features, filled = {}, {}
        for name, head in self.heads.items():
            with timer("heads"):
                features[name] = head.features(batch.rows)  # one pass serves both calls of a head
                filled[name], head_metrics = head.before_credit(batch.rows, features[name])
            metrics.update(head_metrics)
        if self.heads:
            step_batch = step_batch.replace(**{head.name: filled[name] for name, head in self.heads.items()})
        step_batch, reward_metrics = cfg.credit.shape_rewards(step_batch)
        metrics.update(reward_metrics)
        with timer("credit"):
            estimated = credit.estimate(cfg.credit.estimator, step_batch, **cfg.credit.params)
            # credit.modifier (EMPG) reshapes them for the policy update; a head fits on the estimator's own
            advantages, modifier_metrics = cfg.credit.modify(step_batch, estimated)
        metrics.update(credit.diagnose(step_batch, advantages, estimator=cfg.credit.estimator, **cfg.credit.params))
        metrics.update(modifier_metrics)
        for name, head in self.heads.items():
            with timer("heads"):
                metrics.update(head.after_credit(batch.rows, estimated, filled[name], features[name]))
        threshold = cfg.credit.effective_drop_threshold
        keep = None if threshold is None else credit.keep_mask(advantages, threshold)
        if keep is not None:
            metrics["credit/dropped_share"] = float(1 - keep.mean())

        # 3. policy update: trainer.ppo_epochs × shuffled minibatches × micro-batches (PolicyTrainer.update)
        with timer("update"):
            metrics.update(self.trainer.update(batch.rows, advantages, keep_mask=keep))

        # 4. weight sync: the engine (and rollout workers) get the new weights
        with timer("sync"):
            self._sync_weights()

        metrics.update(timer.metrics())
        if self.is_main and (it + 1) % cfg.run.save_episodes_every == 0:
            # each saved step carries the advantage the update used and the estimator's per-step quantities
            # (with the estimator's own advantage beside them when credit.modifier reshaped it)
            details = credit.details(cfg.credit.estimator, step_batch, **cfg.credit.params)
            if advantages is not estimated:
                details = {"A_estimator": estimated, **details}
            record_credit(batch.rows, cfg.credit.estimator, advantages, keep, details)
            batch.save_jsonl(self.run_dir / "episodes" / f"iter_{it + 1:06d}.jsonl")
        return metrics

    def _rollout(self, tasks: list[int], seed: int, *, k: int | None = None, sampling=None):
        """The iteration's episodes and fault counts (``k`` episodes per task, default ``run.group_size``;
        ``sampling`` default the agent's).

        Rolled out here or on the rollout workers; under torchrun each rank plays its
        share of the tasks and every rank gets the gathered batch.
        """
        from steprl.agent.rollout import TrajectoryBatch, derive_seed, rollout

        cfg = self.config
        kwargs = dict(k=k or cfg.run.group_size, max_turns=cfg.env.max_turns, sampling=sampling or cfg.agent.sampling())
        if self.dist is not None:
            from steprl.trainer.distributed import split_tasks

            tasks = split_tasks(tasks, self.dist.rank, self.dist.world_size)
            seed = derive_seed(seed, 3, self.dist.rank)
        faults: dict[str, float] = {}
        if not tasks:
            batch = TrajectoryBatch([], {})
        elif self.workers is not None:
            batch = self.workers.rollout(tasks, seed=seed, **kwargs)
            faults = dict(self.workers.last_faults)
        else:
            batch = rollout(self.train_envs, self.engine, self.builder, tasks, seed=seed, progress=False, **kwargs)
        if self.dist is not None:
            from steprl.trainer.distributed import gather_batch

            batch = gather_batch(batch, len(tasks), kwargs["k"])
        return batch, faults

    # -- the whole run ----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        from steprl.trainer.checkpoint import save_checkpoint

        cfg = self.config
        t_start = time.perf_counter()
        self.setup()
        components = {"trainer": self.trainer, **self.heads}
        try:
            stats: dict[str, float] = {}
            if self.resumed:
                self._prepare_heads()  # reloads what the first start fitted (SPA's reference estimator)
            else:  # a run resumed from iter_000000 already has its SFT warm start
                stats = self.sft()
                stats.update(self._prepare_heads())
                if self.is_main:  # saved before the first evaluation, so a failing evaluation loses no SFT
                    save_checkpoint(self.run_dir, 0, policy=self.policy, components=components,
                                    extra={"eval_history": self.history, "sft_stats": stats},
                                    keep_last=cfg.run.keep_checkpoints)
            if self.is_main and self.start_iteration == 0 and not any(h["iteration"] == 0 for h in self.history):
                stats = {**self._sft_stats, **stats}  # after --resume: the SFT figures the checkpoint kept
                stats.update(self.evaluate(0))  # also after --resume from an SFT checkpoint saved before it
                self.logger.log(0, stats)
                self.say(self._eval_line(0, stats))
                save_checkpoint(self.run_dir, 0, policy=self.policy, components=components,
                                extra={"eval_history": self.history}, keep_last=cfg.run.keep_checkpoints)
            bar = tqdm(range(self.start_iteration, cfg.run.iterations), desc="RL", unit="it",
                       initial=self.start_iteration, total=cfg.run.iterations,
                       disable=not (cfg.run.progress and self.is_main))
            for it in bar:
                t0 = time.perf_counter()
                metrics = self.iteration(it)
                done = it + 1
                if self.is_main and (done % cfg.eval.every == 0 or done == cfg.run.iterations):
                    metrics.update(self.evaluate(done))
                metrics["time/iteration_s"] = time.perf_counter() - t0
                self.logger.log(done, metrics)
                self.say(self._iteration_line(done, metrics))
                if self.is_main and (done % cfg.run.save_every == 0 or done == cfg.run.iterations):
                    save_checkpoint(self.run_dir, done, policy=self.policy, components=components,
                                    extra={"eval_history": self.history}, keep_last=cfg.run.keep_checkpoints)
            bar.close()
        finally:
            self.close()
        summary = self.summary(time.perf_counter() - t_start)
        if self.is_main:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def summary(self, wall_s: float) -> dict[str, Any]:
        evals = self.history
        start = next((h["eval/success_rate"] for h in evals if h["iteration"] == 0), float("nan"))
        last = [h["eval/success_rate"] for h in evals if h["iteration"] > 0][-3:]
        return {
            "run_dir": str(self.run_dir),
            "eval_split": self.config.eval.split,
            "eval_episodes": self.config.eval.tasks,
            "success_start": start,
            "success_last3": float(np.mean(last)) if last else float("nan"),
            "success_curve": [(h["iteration"], h["eval/success_rate"]) for h in evals],
            "wall_s": wall_s,
        }

    def close(self) -> None:
        for name in ("train_envs", "eval_envs"):
            if hasattr(self, name):
                getattr(self, name).close()
        if self.workers is not None:
            self.workers.close()
        if hasattr(self, "logger"):
            self.logger.close()
        if self.dist is not None:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    @staticmethod
    def _eval_line(it: int, m: dict[str, float]) -> str:
        return (f"[eval @ {it}] success {100 * m['eval/success_rate']:.1f}% ± {100 * m['eval/stderr']:.1f} "
                f"over {int(m['eval/episodes'])} episodes, turns {m['eval/turns']:.1f}, invalid {100 * m['eval/invalid']:.0f}%")

    def _iteration_line(self, it: int, m: dict[str, float]) -> str:
        line = (f"iter {it:>3}/{self.config.run.iterations} | train success {100 * m['env/success_rate']:5.1f}% "
                f"return {m['env/return']:.2f} turns {m['rollout/turns']:.1f} | pg_loss {m.get('train/pg_loss', 0):+.4f} "
                f"| rollout {m['time/rollout_s']:.1f}s credit {1000 * m['time/credit_s']:.1f}ms update {m['time/update_s']:.1f}s")
        if "eval/success_rate" in m:
            line += f" | eval {100 * m['eval/success_rate']:.1f}%"
        return line
