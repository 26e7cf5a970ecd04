"""``steprl view EPISODES.jsonl --out viewer.html``: a static HTML viewer of saved episodes.

    steprl view runs/quickstart/episodes/iter_000015.jsonl --out viewer.html --tokenizer runs/quickstart/base_model
    steprl view eval/tiny/episodes_seed0.jsonl --credit gigpo

Opens from disk in any browser (no server, nothing fetched). ``--tokenizer``
decodes each prompt for display; ``--credit ESTIMATOR`` computes advantages
over the file's episodes (as one batch, default parameters) to show per step.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="static HTML viewer of saved episodes (JSONL)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("episodes", help="a JSONL file of episodes (TrajectoryBatch.save_jsonl)")
    p.add_argument("--out", help="HTML file to write (default: EPISODES with .html)")
    p.add_argument("--tokenizer", help="model folder whose tokenizer decodes the prompts")
    p.add_argument("--credit", metavar="ESTIMATOR", help="show advantages of this estimator (e.g. gigpo, grpo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steprl.agent.rollout import TrajectoryBatch
    from steprl.evaluation.viewer import write_viewer

    path = Path(args.episodes)
    if not path.is_file():
        raise FileNotFoundError(f"no episodes file at {str(path)!r}")
    batch = TrajectoryBatch.load_jsonl(path)
    advantages = None
    if args.credit:
        from steprl import credit

        advantages = credit.estimate(args.credit, credit.StepBatch.from_rows(batch.rows))
    out = write_viewer(batch, args.out or path.with_suffix(".html"), advantages, tokenizer=args.tokenizer,
                       title=f"steprl episodes: {path.name}")
    print(f"wrote {out} ({len(batch.episodes())} episodes)")
    return 0
