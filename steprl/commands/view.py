"""``steprl view EPISODES.jsonl --out viewer.html``: a static HTML viewer of saved episodes.

    steprl view runs/quickstart/episodes/iter_000015.jsonl --out viewer.html --tokenizer runs/quickstart/base_model
    steprl view runs/quickstart/episodes/iter_000015.jsonl --credit hgpo --param history_length=4
    steprl view eval/tiny/episodes_seed0.jsonl --credit gigpo

Opens from disk in any browser (no server, nothing fetched). ``--tokenizer``
decodes each prompt for display. Episodes the trainer saved carry the advantage
each step was trained with and the estimator's per-step quantities; the page
shows those, colour-coded. ``--credit ESTIMATOR`` recomputes instead, over the
file's episodes as one batch, with the estimator's defaults or ``--param
key=value`` (repeatable; values read as YAML: 0.5, true, mean), and shows its
per-step quantities. An estimator whose head fills a field (SPA's ĉ_t, GAE's
V(s_t)) takes it from the file when the run that saved it trained that head.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HEAD_DETAILS = {"progress": "c_hat", "value": "V"}  # a head's field → the detail its estimators save it under


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="static HTML viewer of saved episodes (JSONL)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("episodes", help="a JSONL file of episodes (TrajectoryBatch.save_jsonl)")
    p.add_argument("--out", help="HTML file to write (default: EPISODES with .html)")
    p.add_argument("--tokenizer", help="model folder whose tokenizer decodes the prompts")
    p.add_argument("--credit", metavar="ESTIMATOR",
                   help="recompute advantages with this estimator (e.g. gigpo, grpo) instead of the saved ones")
    p.add_argument("--param", metavar="KEY=VALUE", action="append", default=[],
                   help="a parameter of --credit's estimator (repeatable), e.g. --param gamma=0.9")
    p.set_defaults(func=run)


def parse_params(items: list[str]) -> dict:
    """``["gamma=0.9", "similarity=true"]`` → ``{"gamma": 0.9, "similarity": True}`` (values read as YAML)."""
    import yaml

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: expected KEY=VALUE, e.g. --param gamma=0.9")
        params[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return params


def recompute(rows, name: str, params: dict):
    """(advantages, details) of estimator ``name`` over ``rows`` (one batch); a head's field comes from the rows'
    saved details when the run that saved them trained that head."""
    from steprl import credit
    from steprl.cli import UserError

    try:
        credit.check_params(name, params)
    except TypeError as exc:  # an unknown parameter: the message names the accepted ones
        raise UserError(f"--credit {name}: {exc}") from None
    spec = credit.spec(name)
    batch = credit.StepBatch.from_rows(rows, text_anchors=spec.uses_text_anchors(params))
    for field in sorted(spec.needs & set(HEAD_DETAILS)):
        saved = [(row.credit or {}) for row in rows]
        trained_with = {entry.get("estimator") for entry in saved}
        values = [(entry.get("details") or {}).get(HEAD_DETAILS[field]) for entry in saved]
        usable = (rows and all(v is not None for v in values) and None not in trained_with
                  and all(credit.spec(e).head == field for e in trained_with if e in credit.available()))
        if not usable:
            raise ValueError(f"--credit {name} needs each step's {field!r}, which a head fits during training; "
                             f"this file does not carry it (only episodes saved by a run that trained the {field} "
                             "head do)")
        batch = batch.replace(**{field: values})
    return credit.estimate(name, batch, **params), credit.details(name, batch, **params)


def run(args: argparse.Namespace) -> int:
    from steprl.agent.rollout import TrajectoryBatch
    from steprl.evaluation.viewer import write_viewer

    path = Path(args.episodes)
    if not path.is_file():
        raise FileNotFoundError(f"no episodes file at {str(path)!r}")
    params = parse_params(args.param)
    if params and not args.credit:
        raise ValueError("--param sets a parameter of --credit's estimator; give --credit ESTIMATOR too")
    batch = TrajectoryBatch.load_jsonl(path)
    advantages = details = label = None
    if args.credit:
        advantages, details = recompute(batch.rows, args.credit, params)
        label = args.credit + (f" ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
    out = write_viewer(batch, args.out or path.with_suffix(".html"), advantages, details=details, estimator=label,
                       tokenizer=args.tokenizer, title=f"steprl episodes: {path.name}")
    saved = sum(row.credit is not None for row in batch.rows)
    note = f", advantages recomputed with {label}" if label else (
        f", advantages as trained on {saved} of {len(batch.rows)} steps" if saved else ", no advantages saved")
    print(f"wrote {out} ({len(batch.episodes())} episodes{note})")
    return 0
