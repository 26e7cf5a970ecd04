"""Evaluation: success rates on held-out splits, with reference agents."""

from evaluation.baselines import ExpertPolicy, RandomPolicy, run_policy

__all__ = ["run_policy", "ExpertPolicy", "RandomPolicy"]
