"""steprl trainer: the reusable core of the RL loop (docs/algorithms.md § The policy loss the trainer shares).

    config = TrainerConfig(lora={"enabled": True}, aggregation="seq-mean-token-mean", clip_low=0.1, clip_high=0.1)
    policy = load_policy("runs/tiny", config)
    trainer = PolicyTrainer(policy, config)              # trainer.reference is None when kl_coef == 0
    metrics = trainer.update(rows, advantages, keep_mask=keep)
    engine.update_weights(policy.state_dict_for_engine())
    save_checkpoint(run_dir, iteration, policy=policy, components={"trainer": trainer})

Modules: `config` (TrainerConfig), `loss` (pure torch losses), `batching`
(padding and token-budget micro-batches), `policy` (Policy, PolicyTrainer),
`heads` (value head, SPA progress estimator), `progress` (SPA's progress estimator as
its reference code trains it), `sft` (behaviour cloning),
`checkpoint` (atomic save, resume). The RL loop recipe is `trainer/loop.py`.
"""

from steprl.trainer.batching import MicroBatch, collate, make_micro_batches
from steprl.trainer.checkpoint import Checkpoint, list_checkpoints, load_checkpoint, load_latest, save_checkpoint
from steprl.trainer.config import HeadConfig, LoraConfig, TrainerConfig
from steprl.trainer.heads import ProgressEstimator, ValueHead
from steprl.trainer.loss import aggregate, entropy_from_logits, kl_k3, policy_loss, value_loss
from steprl.trainer.policy import Policy, PolicyTrainer, load_policy, make_optimizer
from steprl.trainer.progress import ReferenceProgressEstimator
from steprl.trainer.sft import SFTTrainer, sft_step

__all__ = [
    "TrainerConfig",
    "LoraConfig",
    "HeadConfig",
    "policy_loss",
    "kl_k3",
    "entropy_from_logits",
    "value_loss",
    "aggregate",
    "MicroBatch",
    "collate",
    "make_micro_batches",
    "Policy",
    "load_policy",
    "make_optimizer",
    "PolicyTrainer",
    "ValueHead",
    "ProgressEstimator",
    "ReferenceProgressEstimator",
    "SFTTrainer",
    "sft_step",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_latest",
    "list_checkpoints",
]
