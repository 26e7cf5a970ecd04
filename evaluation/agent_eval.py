"""Success rate of an LLM agent on a split: one greedy (or sampled) episode per task.

This is the evaluation the trainer runs periodically; ``steprl eval`` builds
its reports on the same rollout.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["evaluate_agent"]


def evaluate_agent(vector_env, engine, prompt_builder, num_tasks: int, *, max_turns: int, sampling,
                   seed: int = 0, progress: bool = False, prefix: str = "eval") -> tuple[dict[str, float], object]:
    """Play task ``0..num_tasks-1`` of the vector env's split once each.

    Returns ``(metrics, trajectory_batch)``; metrics are named ``{prefix}/success_rate``,
    ``{prefix}/return``, ``{prefix}/turns``, ``{prefix}/invalid``, ``{prefix}/format_ok``,
    ``{prefix}/truncated`` and ``{prefix}/stderr`` (binomial standard error of the success rate).
    """
    from steprl.agent.rollout import rollout

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
