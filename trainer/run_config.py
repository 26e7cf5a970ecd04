"""``RunConfig``: the recipe's config (trainer/loop.py), the packages' configs composed into one run.

    steprl train configs/quickstart.yaml trainer.lr=3e-4 credit.estimator=grpo

It lives beside the recipe; the shell (``steprl.config.load_run_config``) loads it
from YAML with dotted overrides. Sections: ``run`` (schedule and run directory), ``tiny_model`` (build a small
model for the env when no model is given), ``env`` (:class:`envs.config.EnvConfig`),
``agent`` (:class:`agent.config.AgentConfig`), ``credit``
(:class:`credit.config.CreditConfig`), ``trainer`` (:class:`trainer.config.TrainerConfig`),
``sft`` (warm start) and ``eval`` (periodic evaluation). Unknown keys and bad
values fail at load time, naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from steprl.agent.config import AgentConfig
from steprl.credit.config import CreditConfig
from steprl.envs.config import EnvConfig
from steprl.trainer.config import TrainerConfig

__all__ = ["RunConfig", "RunSection", "TinyModelConfig", "SFTConfig", "EvalConfig"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class RunSection(_Section):
    """Schedule and bookkeeping of a run."""

    dir: str = "runs/default"
    """Run directory: config, metrics.jsonl, TensorBoard events, episodes, checkpoints."""
    overwrite: bool = False
    """Start afresh even if run.dir holds checkpoints of an earlier run (they are replaced)."""
    seed: int = 0
    """Seeds the model build, rollouts, sampling and minibatch order."""
    iterations: int = Field(20, ge=0)
    """RL iterations (rollout → credit → update → sync)."""
    tasks_per_iteration: int = Field(8, ge=1)
    """Tasks (groups) rolled out per iteration."""
    group_size: int = Field(8, ge=1)
    """Episodes per task: K, the group of GRPO/GiGPO."""
    rollout_envs: int = Field(64, ge=1)
    """Envs stepped in lockstep during rollouts (one engine call per turn for all)."""
    save_every: int = Field(5, ge=1)
    """Write a checkpoint every this many iterations (and at the end)."""
    keep_checkpoints: int = Field(2, ge=1)
    """Checkpoints kept on disk."""
    save_episodes_every: int = Field(5, ge=1)
    """Save the iteration's episodes as JSONL every this many iterations."""
    progress: bool = True
    """Show progress bars."""
    torch_threads: int | None = None
    """torch intra-op threads; None = torch's default. Tiny models on a busy 2-core CPU run faster with 1."""
    rollout_workers: int = Field(0, ge=0)
    """Engine replicas as Ray actors, each rolling out a share of the tasks on its own envs and getting the weights
    after every update (0 = roll out with the trainer's engine in this process). Cluster: env.ray.address."""
    rollout_worker_cpus: float = Field(1.0, gt=0)
    """CPUs reserved by each rollout worker actor."""
    rollout_worker_gpus: float = Field(0.0, ge=0)
    """GPUs per rollout worker actor (1 = one vLLM engine per GPU; 0.5 = two replicas share a GPU)."""


class TinyModelConfig(_Section):
    """A from-scratch Qwen2 model with a tokenizer fitted to the env (agent.models.build_tiny_model)."""

    hidden: int = Field(128, ge=32)
    """Hidden size (head_dim 64 → hidden/64 heads)."""
    layers: int = Field(2, ge=1)
    """Transformer blocks."""
    vocab: int = Field(1024, ge=300)
    """Target BPE vocabulary size."""
    corpus_tasks: int = Field(16, ge=1)
    """Train tasks played to collect tokenizer text."""


class SFTConfig(_Section):
    """Behaviour cloning on expert trajectories of the train split before RL."""

    steps: int = Field(0, ge=0)
    """Optimizer steps of SFT (0 = no warm start)."""
    batch_size: int = Field(32, ge=1)
    """Expert step rows per SFT step."""
    lr: float = Field(1e-3, gt=0)
    """SFT learning rate (AdamW)."""
    episodes: int = Field(96, ge=1)
    """Expert episodes collected (one per train task, cycling)."""
    dagger_rounds: int = Field(0, ge=0)
    """DAgger rounds after the first fit (0 = off): the policy plays ``dagger_episodes`` train episodes at the
    agent's temperature, the env's ``expert_action`` labels every state it visited (its mistakes included), and
    SFT goes on for ``dagger_steps`` over all examples so far. Teaches recovery from states the expert never
    visits (e.g. a repeated invalid action). Needs an env whose expert acts from any state."""
    dagger_episodes: int = Field(64, ge=1)
    """Policy episodes per DAgger round (random train tasks)."""
    dagger_steps: int = Field(100, ge=1)
    """SFT steps after each DAgger round."""


class EvalConfig(_Section):
    """Periodic evaluation during training."""

    split: str = "valid"
    """Split evaluated during training: valid or test."""
    tasks: int = Field(100, ge=1)
    """Tasks per evaluation (one episode each)."""
    every: int = Field(5, ge=1)
    """Evaluate every this many iterations (and before the first and after the last)."""
    temperature: float = Field(0.0, ge=0)
    """0 = greedy decoding."""
    envs: int = Field(50, ge=1)
    """Envs stepped in lockstep during evaluation."""

    @model_validator(mode="after")
    def _split(self) -> "EvalConfig":
        if self.split not in ("train", "valid", "test"):
            raise ValueError(f"split must be one of ['train', 'valid', 'test'], got {self.split!r}")
        return self


class RunConfig(_Section):
    """One training run."""

    run: RunSection = Field(default_factory=RunSection)
    tiny_model: TinyModelConfig | None = None
    """Build a tiny model into RUN_DIR/base_model instead of loading agent.model."""
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig
    credit: CreditConfig = Field(default_factory=CreditConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="before")
    @classmethod
    def _tiny_model_path(cls, data: Any) -> Any:
        """With ``tiny_model`` set, ``agent.model`` defaults to RUN_DIR/base_model."""
        if isinstance(data, dict) and data.get("tiny_model") is not None:
            agent = dict(data.get("agent") or {})
            run_dir = (data.get("run") or {}).get("dir", RunSection().dir)
            agent.setdefault("model", str(Path(run_dir) / "base_model"))
            data = {**data, "agent": agent}
        return data
