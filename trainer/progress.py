"""SPA's progress estimator as the reference code trains it (``trainer.progress_head.mode: reference``).

docs/algorithms.md § SPA; docs/credit.md § SPA in its reference form. The reference
(``WangHanLinHenry/SPA-RL-Agent``, ``prm/train_our_progress_model.py``, ``prm/rl_data_org.py``):

1. Explore: the SFT policy plays K episodes of every train task at temperature 1.
2. Fit: a *separate* copy of the SFT policy, every weight trainable, plus ``Linear(vocab → 1)``
   on its LM-head logits at the last token of each assistant turn gives ĉ_t; the loss per
   trajectory is ``(Σ_t ĉ_t − R)²`` (R its final reward), averaged over a minibatch;
   Adam(W) lr 3e-6, weight decay 0.01, 500 log warm-up steps, 1 epoch, gradient clip 1.0.
3. Freeze: the estimator never changes again; RL reads ĉ_t from it.

Here: steps 1–3 run once, after the SFT warm start and before RL iteration 1
(:meth:`ReferenceProgressEstimator.prepare`, called by the recipe for every head); the
result is saved in ``RUN_DIR/progress_estimator/`` so that ``--resume`` reloads it instead
of fitting again. Every iteration then predicts ĉ_t for its step rows (:meth:`before_credit`);
the estimator's spec (``spa``) or ``credit.reward: spa`` turns them into the stepwise reward
``r̃_t = ĉ_t + 0.5·g_t`` (credit/spa.py).

Where each step's ĉ_t is read: one forward pass per step row over ``prompt + response``, the
logits at the row's last response token (the end-of-turn token the agent sampled). The reference
runs one pass over the whole conversation and reads every turn's last token; with causal
attention the two agree exactly when the row's prompt holds the whole history (the agent's
``history_k`` covers the episode), and otherwise ĉ_t sees what the policy saw.

Memory: one more copy of the LLM (the estimator, fp32 master weights, the policy's compute
dtype under autocast) plus its optimizer state while it fits; the optimizer is dropped when it
is frozen. Each minibatch costs one no-grad pass (Σ_t ĉ_t per trajectory) and one gradient
pass whose micro-batches fit ``trainer.micro_batch_tokens`` whatever a trajectory's length:
the per-row weights ``2(Σ_t ĉ_t − R)/B`` make the gradient exactly that of the loss.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from steprl.trainer.batching import make_micro_batches
from steprl.trainer.config import HeadConfig
from steprl.trainer.policy import Policy

__all__ = ["ReferenceProgressEstimator", "LogWarmup", "ESTIMATOR_DIR"]

ESTIMATOR_DIR = "progress_estimator"
"""Where a run keeps its fitted estimator: ``RUN_DIR/progress_estimator/``."""


class LogWarmup:
    """LR multiplier of DeepSpeed's ``WarmupLR`` (``warmup_type="log"``, the reference's scheduler):
    ``log(s + 1) / log(W)`` at optimizer step ``s < W``, then 1. A picklable callable."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        if self.warmup_steps <= 1 or step >= self.warmup_steps:
            return 1.0
        return math.log(step + 1) / math.log(self.warmup_steps)


class ReferenceProgressEstimator:
    """ĉ_t from a frozen, fully fine-tuned copy of the SFT policy (docs/credit.md § SPA in its reference form).

    The recipe calls, in order: :meth:`prepare` once before RL (explore, fit, freeze, save; or reload on
    ``--resume``), then every iteration :meth:`features` and :meth:`before_credit` (ĉ_t per row, no fitting)
    and :meth:`after_credit` (nothing). The building blocks (:meth:`build`, :meth:`fit`, :meth:`freeze`,
    :meth:`save`, :meth:`load`, :meth:`predict`) also work on their own.

    Args:
        policy: the policy being trained; at :meth:`build` (after the SFT warm start) its weights are copied.
        config: ``trainer.progress_head`` (``mode: reference``; the settings are ``config.reference``).
        token_budget: padded tokens per forward pass (``trainer.micro_batch_tokens``).
        seed: seeds the linear head's initialization and the minibatch order.

    Example:
        >>> estimator = ReferenceProgressEstimator(policy, HeadConfig(mode="reference"))
        >>> estimator.build()
        >>> metrics = estimator.fit(exploration_rows)       # rows with traj_id and reward
        >>> estimator.freeze()
        >>> c_hat = estimator.predict(rows)
    """

    name = "progress"  # the StepBatch field it fills

    def __init__(self, policy: Policy, config: HeadConfig, *, token_budget: int = 4096, seed: int = 0):
        self.policy = policy
        self.config = config
        self.settings = config.reference
        self.token_budget = token_budget
        self.seed = seed
        self.model: Policy | None = None  # the estimator's LM (a Policy wrapper for its forward helpers)
        self.linear: nn.Linear | None = None
        self.frozen = False
        self.expected_files: dict | None = None  # from a checkpoint: the saved estimator's file digests

    # -- the estimator ----------------------------------------------------------------------------
    def build(self) -> None:
        """The estimator: a deep copy of the policy as it is now (LoRA merged in), every weight trainable,
        fp32 master weights, plus ``Linear(vocab → 1)`` with PyTorch's default initialization (as the reference;
        ``init: zero`` starts it at 0)."""
        model = copy.deepcopy(self.policy.model)
        if self.policy.is_lora:
            model = model.merge_and_unload()
        model = model.to(device=self.policy.device, dtype=torch.float32).requires_grad_(True)
        self.model = Policy(model, device=self.policy.device, dtype=self.policy.dtype)
        vocab = self._vocab_size(model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.linear = nn.Linear(vocab, 1)
        if self.settings.init == "zero":
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)
        self.linear.to(self.policy.device)
        self.frozen = False

    @staticmethod
    def _vocab_size(model: nn.Module) -> int:
        head = model.get_output_embeddings()
        return int(head.out_features if hasattr(head, "out_features") else head.weight.shape[0])

    def parameters(self) -> list[nn.Parameter]:
        self._require_built()
        return [*self.model.model.parameters(), *self.linear.parameters()]

    def _contributions(self, micro) -> torch.Tensor:
        """``[B]`` fp32 ĉ of each row of a micro-batch: the linear head on the LM-head logits at the row's
        last response token (its end-of-turn token), under the current grad mode."""
        model = self.model
        micro = micro.to(model.device)
        model.model.train(torch.is_grad_enabled())  # dropout (if any) only in gradient passes, as the policy
        width = micro.input_ids.shape[1]
        keep = micro.response_ids.shape[1] + 1  # columns P − 1 … P + R − 1 hold every row's last response token
        with model.autocast():
            logits = model.model(**model._inputs(micro), use_cache=False,
                                 **({"logits_to_keep": keep} if model.keeps_logits else {})).logits
        column = micro.last_response_index - (width - logits.shape[1])
        picked = logits[torch.arange(micro.num_rows, device=logits.device), column].float()  # [B, vocab]
        return self.linear(picked).squeeze(-1)

    @torch.no_grad()
    def features(self, rows: Sequence) -> torch.Tensor:
        """``[len(rows)]`` fp32 ĉ_t per row (row order), no grad. (The recipe's name: a head's "features"
        are what its two calls share; here they are the predictions themselves.)"""
        self._require_built()
        out = torch.zeros(len(rows), dtype=torch.float32, device=self.policy.device)
        for micro in make_micro_batches(rows, self.token_budget, pad_id=self.model.pad_id):
            out[micro.row_index.to(out.device)] = self._contributions(micro).to(out.device)
        return out

    def predict(self, rows: Sequence, features: torch.Tensor | None = None) -> np.ndarray:
        """ĉ_t per row (row order), float64."""
        features = self.features(rows) if features is None else features
        return features.double().cpu().numpy()

    # -- the recipe's calls -------------------------------------------------------------------------
    def before_credit(self, rows: Sequence, features: torch.Tensor) -> tuple[np.ndarray, dict[str, float]]:
        """ĉ_t per row from the frozen estimator (no fitting), and how well it still predicts the outcomes:
        ``progress/mse`` = mean over this iteration's trajectories of ``(Σ_t ĉ_t − R)²``."""
        c_hat = self.predict(rows, features)
        metrics = {"progress/c_hat_mean": float(c_hat.mean()) if len(c_hat) else 0.0,
                   "progress/c_hat_std": float(c_hat.std()) if len(c_hat) else 0.0}
        if len(rows):
            codes, targets = _trajectories(rows)
            sums = np.bincount(codes, weights=c_hat, minlength=targets.size)
            metrics["progress/mse"] = float(np.mean((sums - targets) ** 2))
        return c_hat, metrics

    def after_credit(self, rows, advantages, filled, features) -> dict[str, float]:
        """Nothing: the estimator is frozen during RL."""
        return {}

    def prepare(self, run) -> dict[str, float]:
        """Before RL iteration 1 (``run``: the :class:`~trainer.loop.RLRun`, its policy the SFT one): explore,
        fit, freeze, save in ``RUN_DIR/progress_estimator/``. A resumed run (``run.resumed``) reloads that
        instead and fits nothing. Returns the metrics of the fit (``progress/...``, ``time/progress_*``)."""
        directory = Path(run.run_dir) / ESTIMATOR_DIR
        if run.resumed:
            if not (directory / "meta.json").is_file():
                raise FileNotFoundError(
                    f"--resume: {directory} is missing; this run's progress estimator (trainer.progress_head.mode="
                    "reference) was fitted once on the SFT policy and cannot be refitted from a later checkpoint. "
                    "Start the run afresh (run.overwrite=true)")
            self.load(directory)
            run.say(f"progress estimator: reloaded {directory} (frozen, not refitted)")
            return {}
        t0 = time.perf_counter()
        batch, metrics = self.collect(run)
        metrics["time/progress_explore_s"] = time.perf_counter() - t0
        if run.is_main:
            t0 = time.perf_counter()
            self.build()
            metrics.update(self.fit(batch.rows))
            self.freeze()
            metrics["time/progress_fit_s"] = time.perf_counter() - t0
            self.save(directory, metrics=metrics, episodes=batch)
        run._barrier()
        if not run.is_main:  # every rank predicts with the very weights rank 0 fitted
            self.load(directory)
        run.say(f"progress estimator: {int(metrics['progress/explore_episodes'])} exploration episodes "
                f"(success {100 * metrics['progress/explore_success_rate']:.1f}%), "
                + (f"fit MSE {metrics['progress/fit_mse_before']:.4f} → {metrics['progress/fit_mse']:.4f} "
                   f"(outcome variance {metrics['progress/target_var']:.4f}); " if run.is_main else "")
                + f"frozen, saved in {directory}")
        if run.is_main and metrics["progress/target_var"] == 0:
            run.say("progress estimator: every exploration episode had the same outcome, so ĉ_t carries no "
                    "signal about it; more exploration (reference.rollouts_per_task) or a better SFT start helps")
        return metrics

    def collect(self, run):
        """K = ``rollouts_per_task`` episodes of every train task with the run's engine, at ``temperature``.

        Returns ``(TrajectoryBatch, metrics)``."""
        from dataclasses import replace

        from steprl.agent.rollout import derive_seed

        cfg = run.config
        sampling = replace(cfg.agent.sampling(), temperature=self.settings.temperature)
        tasks = list(range(cfg.env.train_tasks))
        batch, faults = run._rollout(tasks, seed=derive_seed(cfg.run.seed, 21), k=self.settings.rollouts_per_task,
                                     sampling=sampling)
        if not batch.rows:
            raise RuntimeError("progress estimator: the exploration rollouts produced no steps to fit on")
        rollout = batch.metrics()
        metrics = {"progress/explore_episodes": float(rollout["rollout/episodes"]),
                   "progress/explore_steps": float(rollout["rollout/steps"]),
                   "progress/explore_success_rate": float(rollout["env/success_rate"]),
                   "progress/explore_turns": float(rollout["rollout/turns"]),
                   **{f"progress/explore_{key.split('/')[-1]}": value for key, value in faults.items()}}
        return batch, metrics

    # -- fitting ------------------------------------------------------------------------------------
    def fit(self, rows: Sequence) -> dict[str, float]:
        """Train every weight on ``(Σ_t ĉ_t − R)²`` over the rows' trajectories (R = Σ_t r_t, the final
        reward when only the last step pays): ``epochs`` × shuffled minibatches of ``batch_size``
        trajectories, AdamW, log warm-up, gradient clipping.

        Returns:
            ``progress/fit_mse_before`` and ``progress/fit_mse`` (mean over the trajectories, before and
            after), ``progress/target_var`` (the outcomes' variance: the MSE of predicting their mean),
            ``progress/fit_r2`` (when the outcomes vary), ``progress/fit_loss_first`` /
            ``progress/fit_loss_last`` (minibatch losses, the last the mean of the final 10),
            ``progress/fit_steps``, ``progress/fit_trajectories``.
        """
        self._require_built()
        if self.frozen:
            raise RuntimeError("the progress estimator is frozen; build() a new one to fit again")
        settings = self.settings
        rows = list(rows)
        if not rows:
            raise ValueError("the progress estimator needs step rows to fit on")
        codes, targets = _trajectories(rows)
        n_traj = targets.size
        members = [np.flatnonzero(codes == t) for t in range(n_traj)]
        device = self.policy.device
        targets_t = torch.as_tensor(targets, dtype=torch.float32, device=device)
        params = self.parameters()
        optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LogWarmup(settings.warmup_steps))
        before = self._mse(rows, codes, targets)
        rng = np.random.default_rng([self.seed, 17])
        losses: list[float] = []
        for _epoch in range(settings.epochs):
            order = rng.permutation(n_traj)
            for start in range(0, n_traj, settings.batch_size):
                chosen = order[start : start + settings.batch_size]
                subset = np.concatenate([members[t] for t in chosen])
                local = np.repeat(np.arange(chosen.size), [members[t].size for t in chosen])
                optimizer.zero_grad(set_to_none=True)
                losses.append(self.backward_minibatch([rows[i] for i in subset], local, targets_t[chosen]))
                if settings.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        after = self._mse(rows, codes, targets)
        variance = float(targets.var())
        metrics = {"progress/fit_mse_before": before, "progress/fit_mse": after, "progress/target_var": variance,
                   "progress/fit_loss_first": losses[0], "progress/fit_loss_last": float(np.mean(losses[-10:])),
                   "progress/fit_steps": float(len(losses)), "progress/fit_trajectories": float(n_traj)}
        if variance > 0:  # all outcomes equal: nothing to explain
            metrics["progress/fit_r2"] = 1.0 - after / variance
        return metrics

    def backward_minibatch(self, rows: Sequence, local: np.ndarray, targets: torch.Tensor) -> float:
        """Accumulate the gradient of ``mean_τ (Σ_t ĉ_t − R_τ)²`` over the minibatch's trajectories.

        ``local[i]`` is row i's trajectory (0..B−1), ``targets[b]`` its R. A no-grad pass gives each
        trajectory's sum; the gradient pass then weights each row's ĉ by ``2(Σ_t ĉ_t − R)/B``, which is
        exactly the loss's gradient, in micro-batches of ``token_budget`` tokens however long a trajectory
        is. Does not zero the gradients or step. Returns the minibatch loss (before the step)."""
        device = self.policy.device
        local_t = torch.as_tensor(np.asarray(local), device=device)
        n = int(targets.numel())
        with torch.no_grad():
            sums = torch.zeros(n, device=device).index_add_(0, local_t, self.features(rows))
            error = sums - targets.to(device)
            weight = (2.0 / n) * error[local_t]
        for micro in make_micro_batches(rows, self.token_budget, pad_id=self.model.pad_id):
            out = self._contributions(micro)
            (out * weight[micro.row_index.to(device)]).sum().backward()
        return float((error ** 2).mean())

    def _mse(self, rows, codes: np.ndarray, targets: np.ndarray) -> float:
        sums = np.bincount(codes, weights=self.predict(rows), minlength=targets.size)
        return float(np.mean((sums - targets) ** 2))

    def freeze(self) -> None:
        """No weight of the estimator changes from now on (no grad, eval mode)."""
        self._require_built()
        self.model.model.requires_grad_(False).eval()
        self.linear.requires_grad_(False)
        self.frozen = True

    # -- saving -------------------------------------------------------------------------------------
    def save(self, directory: str | Path, metrics: dict | None = None, episodes=None) -> Path:
        """Write the estimator atomically: ``model/`` (HF folder), ``linear.safetensors``, the exploration
        ``episodes.jsonl`` (when given) and ``meta.json`` (settings, fit metrics, every file's sha256)."""
        from safetensors.torch import save_file

        from steprl.trainer.checkpoint import _file_digests, _fsync_tree

        self._require_built()
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{directory.name}-", dir=directory.parent))
        try:
            self.model.save(tmp / "model")
            save_file({name: t.detach().contiguous().cpu() for name, t in self.linear.state_dict().items()},
                      str(tmp / "linear.safetensors"))
            if episodes is not None:
                episodes.save_jsonl(tmp / "episodes.jsonl")
            meta = {"settings": self.settings.model_dump(mode="json"), "seed": self.seed,
                    "metrics": {k: float(v) for k, v in (metrics or {}).items()},
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": _file_digests(tmp)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            _fsync_tree(tmp)
            old = None
            if directory.exists():
                old = directory.parent / f".old-{directory.name}-{os.getpid()}"
                os.replace(directory, old)
            os.replace(tmp, directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.expected_files = meta["files"]
        return directory

    def load(self, directory: str | Path) -> None:
        """Rebuild the estimator from :meth:`save`'s folder (frozen); its files must match their saved sha256
        (and, after :meth:`load_state_dict` from a checkpoint, the digests that checkpoint recorded)."""
        from safetensors.torch import load_file

        from steprl.trainer.checkpoint import _file_digests

        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        found = _file_digests(directory)
        for want in (meta["files"], self.expected_files):
            if want is not None and found != want:
                changed = sorted(k for k in set(found) | set(want) if found.get(k) != want.get(k))
                raise ValueError(f"{directory}: the saved progress estimator's files changed since it was fitted "
                                 f"({', '.join(changed[:5])})")
        self.build()
        self.model.load_weights(directory / "model")
        state = load_file(str(directory / "linear.safetensors"), device=str(self.policy.device))
        self.linear.load_state_dict(state)
        self.freeze()
        self.expected_files = meta["files"]

    def state_dict(self) -> dict:
        """What a checkpoint keeps: where the estimator is and its files' digests (the weights stay in
        ``RUN_DIR/progress_estimator/``, written once)."""
        return {"dir": ESTIMATOR_DIR, "files": self.expected_files}

    def load_state_dict(self, state: dict) -> None:
        self.expected_files = state.get("files")

    def _require_built(self) -> None:
        if self.model is None:
            raise RuntimeError("the reference progress estimator is not built yet: prepare(run), build() or load()")


def _trajectories(rows: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Per row its trajectory code (first-appearance order); per trajectory R = Σ_t r_t."""
    from steprl.trainer.heads import trajectory_codes

    codes, n_traj = trajectory_codes([_field(row, "traj_id") for row in rows])
    rewards = np.array([float(_field(row, "reward")) for row in rows], dtype=np.float64)
    return codes, np.bincount(codes, weights=rewards, minlength=n_traj)


def _field(row, name: str):
    value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
    if value is None:
        raise ValueError(f"a step row has no {name!r}: the progress estimator needs traj_id and reward per row")
    return value
