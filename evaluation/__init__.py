"""Evaluation: success rates on held-out splits, with reference agents."""

from evaluation.agent_eval import evaluate_agent
from evaluation.baselines import ExpertPolicy, RandomPolicy, run_policy

__all__ = ["evaluate_agent", "run_policy", "ExpertPolicy", "RandomPolicy"]
