"""``steprl eval``: evaluate a model or a run's latest checkpoint on a held-out split, or compare two reports.

    steprl eval --model runs/quickstart --env textworld/coin_collector-v0 --split test --episodes 200 --seeds 0 1 2
    steprl eval --model models/tiny --env textworld/coin_collector-v0 --k 4 --temperature 0.7 --out eval/tiny
    steprl eval --compare eval/a/report.json eval/b/report.json

Prints the report as Markdown and writes ``report.json``, ``report.md`` and the
model's episodes (``episodes_seed{S}.jsonl``, for ``steprl view``) into ``--out``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model or run on a held-out split; --compare two reports",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model folder, or run directory (its latest checkpoint)")
    p.add_argument("--env", dest="env_id", help="env id (default: the run's env.id)")
    p.add_argument("--split", default="test", help="train, valid or test (default test)")
    p.add_argument("--episodes", type=int, default=100, help="tasks 0..N-1 of the split (default 100)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="evaluation seeds (default 0)")
    p.add_argument("--k", type=int, default=1, help="samples per task; k > 1 reports pass@1..k (default 1)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--max-turns", type=int, default=None, help="turn limit (default: the run's, else the env's)")
    p.add_argument("--workers", type=int, default=0, help="env worker processes (default 0: in-process)")
    p.add_argument("--envs", type=int, default=None,
                   help="envs stepped in lockstep, the engine's batch (default: the run's eval.envs, else 32)")
    p.add_argument("--no-references", action="store_true", help="skip the random and expert rows")
    p.add_argument("--out", help="output folder (default: RUN/eval_SPLIT, or eval/MODEL_ENV_SPLIT)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="print B − A of two reports and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl.cli import UserError

    if args.compare:
        from steprl.evaluation.report import Report, compare

        a, b = (Report.load(path) for path in args.compare)
        print(compare(a, b).text())
        return 0
    if not args.model:
        raise UserError("give --model DIR_OR_RUN (or --compare A.json B.json)")
    from steprl.evaluation.evaluate import evaluate

    report = evaluate(args.model, args.env_id, split=args.split, episodes=args.episodes, seeds=args.seeds, k=args.k,
                      temperature=args.temperature, num_workers=args.workers, progress=not args.no_progress,
                      max_turns=args.max_turns, references=not args.no_references, lockstep_envs=args.envs)
    out = Path(args.out) if args.out else _default_out(args.model, report.protocol.env_id, report.protocol.split)
    json_path, md_path = report.save(out)
    for seed, batch in zip(report.protocol.seeds, report.trajectories):
        batch.save_jsonl(out / f"episodes_seed{seed}.jsonl")
    print(report.to_markdown())
    print(f"wrote {json_path}, {md_path} and the episodes (steprl view {out / 'episodes_seed{S}.jsonl'})")
    return 0


def _default_out(model: str, env_id: str, split: str) -> Path:
    from steprl.trainer.checkpoint import is_run_dir

    path = Path(model)
    if is_run_dir(path):
        return path / f"eval_{split}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{path.name}_{env_id}_{split}")
    return Path("eval") / name
