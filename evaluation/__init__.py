"""Evaluation: success rates on held-out splits, with reference agents, reports, plots and a viewer.

    from steprl.evaluation import evaluate, compare, Report, plot_run, write_viewer

    report = evaluate("runs/quickstart", split="test", episodes=200)   # -> Report
    report.save("runs/quickstart/eval_test")                           # report.json + report.md
    print(compare(Report.load("a/report.json"), report).text())        # B − A with its uncertainty
    plot_run("runs/quickstart")                                        # PNG training curves
    write_viewer("runs/quickstart/episodes/iter_000015.jsonl", "viewer.html")

See docs/evaluation.md.
"""

from steprl.agent.rollout import evaluate_agent
from steprl.evaluation.baselines import ExpertPolicy, RandomPolicy, run_policy
from steprl.evaluation.evaluate import evaluate, resolve_model, weights_sha256
from steprl.evaluation.plots import plot_run
from steprl.evaluation.report import AgentResult, Comparison, ModelInfo, Protocol, Report, compare, pass_at_k, wilson_interval
from steprl.evaluation.viewer import write_viewer

__all__ = [
    "evaluate_agent", "run_policy", "ExpertPolicy", "RandomPolicy",
    "evaluate", "resolve_model", "weights_sha256",
    "Report", "Protocol", "ModelInfo", "AgentResult", "Comparison", "compare", "pass_at_k", "wilson_interval",
    "plot_run", "write_viewer",
]
