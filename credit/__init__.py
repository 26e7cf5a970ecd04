"""steprl credit assignment: one advantage per step row, from flat arrays (numpy only).

    batch = credit.StepBatch(group_id, traj_id, step, reward, anchor, valid=..., progress=..., value=...)
    advantages = credit.estimate("gigpo", batch, gamma=0.95)
    metrics = credit.diagnose(batch, advantages, estimator="gigpo", gamma=0.95)
    credit.spec("gigpo")      # what the estimator needs and does (head, anchors, row drop, diagnostics)
    credit.details("gigpo", batch, gamma=0.95)  # its per-step quantities: {"A_E": ..., "A_S": ..., ...}
    credit.empg(batch, advantages)  # EMPG: modulates any estimator's advantages by step entropy (needs entropy=)

Estimators (docs/algorithms.md): grpo, rloo, loop, gigpo, hgpo, graphgpo, pgpo, gagpo, proxmo, spa, gae; `credit.available()`
lists them, `credit.register(name)` adds one. See docs/credit.md.
"""

from . import gae, gagpo, gigpo, graphgpo, grpo, hgpo, loop, pgpo, proxmo, rloo, spa  # noqa: F401  (importing registers the estimators)
from .allocator import tune_allocator
from .batch import StepBatch, episode_returns, step_returns
from .diagnostics import diagnose
from .empg import empg  # EMPG modulates any estimator's advantages: credit.empg(batch, advantages)
from .loop import keep_mask
from .registry import EstimatorSpec, available, check_params, details, estimate, register, spec, unregister

__all__ = ["EstimatorSpec", "StepBatch", "available", "check_params", "details", "diagnose", "empg", "episode_returns",
           "estimate", "keep_mask", "register", "spec", "step_returns", "tune_allocator", "unregister"]
