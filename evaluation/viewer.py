"""Trajectory viewer: one static, self-contained HTML file for a set of saved episodes.

    steprl view runs/quickstart/episodes/iter_000015.jsonl --out viewer.html
    write_viewer(batch, "viewer.html", advantages=credit.estimate("gigpo", credit.StepBatch.from_rows(batch.rows)))

The file opens from disk in any browser: CSS and JavaScript are inline, and
nothing is fetched. Each episode is a ``<section class="episode">`` with
``data-success="true|false"``; inside, one table row per step shows the
observation the action answered, the prompt (decoded from its token ids when
a tokenizer is given, else the episode's earlier actions), the response, the
parsed action, the reward, the valid/format flags, the advantage and the
estimator's per-step quantities where known. A control at the top shows all
episodes, successful only or failed only (it sets the ``hidden`` attribute of
the other episodes).

Credit per step: episodes the trainer saved carry, on every step, the advantage the
update used and the estimator's details (``StepRow.credit``); the viewer shows those
unless ``advantages=`` is given (``steprl view --credit NAME`` recomputes). The
advantage cell is shaded green (pushed up) or red (pushed down), darker for larger
|A| relative to the page's largest; details named ``A_...`` (advantage terms) are
shaded on the same scale. Stable DOM hooks: each ``<tr class="step">`` has
``data-advantage`` (Python's ``repr`` of the float, exact) where known and
``data-kept="false"`` for a row the update dropped; each detail is a
``<span class="detail" data-key=NAME data-value=REPR>``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["write_viewer", "load_episodes"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }
header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #d5d9e0; padding: 10px 18px; z-index: 1; }
h1 { font-size: 18px; margin: 0 0 4px 0; }
main { padding: 10px 18px; }
.episode { background: #fff; border: 1px solid #d5d9e0; border-left: 5px solid #c0392b; border-radius: 4px;
           margin: 8px 0; padding: 4px 10px; }
.episode[data-success="true"] { border-left-color: #1e8449; }
.episode[hidden] { display: none; }
summary { cursor: pointer; padding: 4px 0; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 12px; font-weight: 600; color: #fff; }
.badge.success { background: #1e8449; } .badge.failure { background: #c0392b; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px 0; font-size: 13px; }
th, td { border: 1px solid #e1e4e8; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f0f2f5; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: 12px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.flag-bad { color: #c0392b; font-weight: 600; } .flag-ok { color: #5d6d7e; }
.muted { color: #7f8c8d; font-size: 12px; }
.pos { color: #1e8449; } .neg { color: #c0392b; }
td.adv { font-weight: 600; } td.adv .pos { color: #0e4d2a; } td.adv .neg { color: #7b1d14; }
td.credit { font-size: 12px; white-space: nowrap; }
.detail { display: block; padding: 0 3px; border-radius: 3px; font-variant-numeric: tabular-nums; }
.detail .key { color: #5d6d7e; }
.legend { font-size: 12px; }
.swatch { display: inline-block; width: 14px; height: 10px; border-radius: 2px; vertical-align: middle; }
"""

_JS = """
function applyFilter() {
  const mode = document.querySelector('input[name="show"]:checked').value;
  let shown = 0;
  document.querySelectorAll('section.episode').forEach(function (ep) {
    const success = ep.dataset.success === 'true';
    const visible = mode === 'all' || (mode === 'success' ? success : !success);
    ep.hidden = !visible;
    if (visible) shown += 1;
  });
  document.getElementById('shown').textContent = shown + ' shown';
}
function setOpen(open) {
  document.querySelectorAll('section.episode:not([hidden]) > details').forEach(function (d) { d.open = open; });
}
document.querySelectorAll('input[name="show"]').forEach(function (r) { r.addEventListener('change', applyFilter); });
applyFilter();
"""


def load_episodes(episodes) -> list:
    """Normalize ``episodes`` to a list of episodes, each a list of :class:`agent.rollout.StepRow` in step order.

    Accepts a ``TrajectoryBatch``, a JSONL path written by ``TrajectoryBatch.save_jsonl``,
    a list of ``StepRow``, a list of episodes (lists of ``StepRow``), or a list of the JSONL's episode dicts.
    """
    from steprl.agent.rollout import StepRow, TrajectoryBatch

    if isinstance(episodes, (str, Path)):
        path = Path(episodes)
        if not path.is_file():
            raise FileNotFoundError(f"no episodes file at {str(path)!r}")
        return TrajectoryBatch.load_jsonl(path).episodes()
    if isinstance(episodes, TrajectoryBatch):
        return episodes.episodes()
    items = list(episodes)
    if not items:
        return []
    if all(isinstance(x, StepRow) for x in items):
        return TrajectoryBatch(items).episodes()
    if all(isinstance(x, Sequence) and not isinstance(x, str) for x in items):
        return [sorted(ep, key=lambda r: r.step) for ep in items if len(ep)]
    if all(isinstance(x, Mapping) and "steps" in x for x in items):
        rows = []
        for record in items:
            head = {k: record[k] for k in ("traj_id", "group_id", "task_id", "success")}
            rows += [StepRow(**head, **step) for step in record["steps"]]
        return TrajectoryBatch(rows).episodes()
    raise TypeError(f"write_viewer: cannot read episodes from {type(episodes).__name__} of "
                    f"{type(items[0]).__name__}; give a TrajectoryBatch, a JSONL path or a list of StepRow")


def _credit_lookup(episodes: list, advantages, details) -> dict[tuple[int, int], dict]:
    """Per (traj_id, step): ``{"advantage", "kept", "estimator", "details"}`` from the arguments, else from
    the rows' saved ``credit``; steps with neither are left out."""
    rows = [row for episode in episodes for row in episode]
    if advantages is None:
        if details is not None:
            raise ValueError("details= needs advantages= (saved episodes carry their own details)")
        return {(row.traj_id, row.step): {"advantage": row.credit.get("advantage"),
                                          "kept": row.credit.get("kept", True),
                                          "estimator": row.credit.get("estimator"),
                                          "details": dict(row.credit.get("details") or {})}
                for row in rows if getattr(row, "credit", None)}
    if isinstance(advantages, Mapping):
        values = {(int(t), int(s)): float(v) for (t, s), v in advantages.items()}
    else:
        flat = [float(v) for v in advantages]
        if len(flat) != len(rows):
            raise ValueError(f"advantages has {len(flat)} values but the episodes hold {len(rows)} steps: "
                             "give one per step row, in the batch's row order (traj_id, then step)")
        values = {(row.traj_id, row.step): value for row, value in zip(rows, flat)}
    columns = {}
    for name, column in (details or {}).items():
        column = list(column.tolist() if hasattr(column, "tolist") else column)
        if len(column) != len(rows):
            raise ValueError(f"details[{name!r}] has {len(column)} values but the episodes hold {len(rows)} steps")
        columns[str(name)] = column
    lookup = {}
    for i, row in enumerate(rows):
        key = (row.traj_id, row.step)
        if key in values:
            lookup[key] = {"advantage": values[key], "kept": True, "estimator": None,
                           "details": {name: column[i] for name, column in columns.items()}}
    return lookup


def _number(value) -> float | None:
    """A finite float, or None (missing, None, NaN, not a number)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _shade(value: float | None, scale: float) -> str:
    """Inline background for a signed credit value: green up, red down, alpha by |value| / scale."""
    if value is None or value == 0 or scale <= 0:
        return ""
    alpha = 0.08 + 0.55 * min(abs(value) / scale, 1.0)
    rgb = "30,132,73" if value > 0 else "192,57,43"
    return f' style="background: rgba({rgb},{alpha:.3f})"'


def _detail_text(key: str, value) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value).lower()
    if isinstance(value, int):
        return str(value)
    number = _number(value)
    if number is None:
        return "–"
    if key.startswith("A_"):
        return f"{number:+.3f}"
    return f"{number:.4g}"


def _details_cell(details: dict, scale: float) -> str:
    spans = []
    for key, value in details.items():
        number = _number(value) if not isinstance(value, bool) else None
        shade = _shade(number, scale) if key.startswith("A_") else ""
        raw = "" if number is None else repr(value if isinstance(value, int) else number)
        spans.append(f'<span class="detail" data-key="{html.escape(key)}" data-value="{raw}"{shade}>'
                     f'<span class="key">{html.escape(key)}</span> {_detail_text(key, value)}</span>')
    return f'<td class="credit">{"".join(spans) or "<span class=muted>–</span>"}</td>'


def _pre(text: str | None) -> str:
    return f"<pre>{html.escape(text or '')}</pre>"


def _flag(ok: bool, good: str, bad: str) -> str:
    return f'<span class="flag-ok">{good}</span>' if ok else f'<span class="flag-bad">{bad}</span>'


def _step_row(row, previous: list, credit: dict | None, tokenizer, scale: float, with_details: bool) -> str:
    if tokenizer is not None:
        prompt = tokenizer.decode(row.prompt_ids, skip_special_tokens=False)
        prompt_cell = (f"<details><summary class=muted>prompt ({len(row.prompt_ids)} tokens)</summary>"
                       f"{_pre(prompt)}</details>")
    else:
        earlier = " → ".join(r.action or "∅" for r in previous) or "(first step)"
        prompt_cell = (f'<span class="muted">{len(row.prompt_ids)} prompt tokens (pass a tokenizer to decode);'
                       f" earlier actions:</span>{_pre(earlier)}")
    flags = [_flag(row.valid_action, "valid", "invalid"), _flag(row.format_ok, "format ok", "unparseable")]
    if row.truncated:
        flags.append('<span class="flag-bad">truncated</span>')
    if row.env_error:
        flags.append(f'<span class="flag-bad" title="{html.escape(row.env_error)}">env error</span>')
    if row.history_cut:
        flags.append(f'<span class="muted">history cut {row.history_cut}</span>')
    advantage = None if credit is None else _number(credit["advantage"])
    hooks = ""
    if advantage is None:
        adv = '<td class="num adv"><span class="muted">–</span></td>'
    else:
        hooks = f' data-advantage="{float(advantage)!r}"'
        sign = "pos" if advantage > 0 else "neg" if advantage < 0 else ""
        adv = (f'<td class="num adv" title="A = {float(advantage)!r}"{_shade(advantage, scale)}>'
               f'<span class="{sign}">{advantage:+.3f}</span></td>')
    if credit is not None and credit.get("kept") is False:
        hooks += ' data-kept="false"'
        flags.append('<span class="flag-bad" title="|A| below the drop threshold: not in the update">dropped</span>')
    expert = f'<div class="muted">expert: {html.escape(row.expert_action)}</div>' if row.expert_action else ""
    details = _details_cell(credit["details"] if credit else {}, scale) if with_details else ""
    return (
        f'<tr class="step" data-step="{row.step}" data-valid="{str(row.valid_action).lower()}" '
        f'data-format-ok="{str(row.format_ok).lower()}"{hooks}>'
        f'<td class="num">{row.step}</td><td>{_pre(row.observation)}</td><td>{prompt_cell}</td>'
        f"<td>{_pre(row.response_text)}</td><td>{_pre(row.action)}{expert}</td>"
        f'<td class="num">{row.reward:g}</td><td>{"<br>".join(flags)}</td>{adv}{details}</tr>'
    )


def _episode_section(index: int, episode: list, credit: dict, tokenizer, scale: float, with_details: bool) -> str:
    first, last = episode[0], episode[-1]
    success = bool(last.success)
    total = sum(r.reward for r in episode)
    invalid = sum(not r.valid_action for r in episode)
    unparseable = sum(not r.format_ok for r in episode)
    badge = '<span class="badge success">success</span>' if success else '<span class="badge failure">failed</span>'
    summary = (f"{badge} episode {first.traj_id} · task <code>{html.escape(str(first.task_id))}</code> · "
               f"group {first.group_id} · {len(episode)} steps · return {total:g} · invalid {invalid} · "
               f"unparseable {unparseable}" + (" · truncated" if last.truncated else ""))
    advantages = [a for row in episode
                  if (a := _number((credit.get((row.traj_id, row.step)) or {}).get("advantage"))) is not None]
    if advantages:
        summary += f" · A {min(advantages):+.3f} … {max(advantages):+.3f}"
    body = "".join(_step_row(row, episode[:i], credit.get((row.traj_id, row.step)), tokenizer, scale, with_details)
                   for i, row in enumerate(episode))
    return (
        f'<section class="episode" id="episode-{index}" data-success="{str(success).lower()}" '
        f'data-traj-id="{first.traj_id}" data-task-id="{html.escape(str(first.task_id))}">'
        f"<details><summary>{summary}</summary>"
        "<table><thead><tr><th>step</th><th>observation</th><th>prompt</th><th>response</th><th>action</th>"
        f"<th>reward</th><th>flags</th><th>advantage</th>{'<th>credit details</th>' if with_details else ''}"
        f"</tr></thead><tbody>{body}</tbody></table>"
        "</details></section>"
    )


def write_viewer(episodes, out_html: str | Path, advantages=None, *, details=None, estimator: str | None = None,
                 tokenizer=None, title: str | None = None) -> Path:
    """Write a static HTML viewer of ``episodes`` to ``out_html``; returns its path.

    Args:
        episodes: a ``TrajectoryBatch``, a JSONL path (``TrajectoryBatch.save_jsonl``), a list of
            ``StepRow``, of episodes (lists of ``StepRow``), or of the JSONL's episode dicts.
        out_html: the file to write (parent folders are created).
        advantages: one value per step row in the batch's row order (as ``credit.estimate`` returns
            for ``credit.StepBatch.from_rows(batch.rows)``), or a mapping ``{(traj_id, step): value}``.
            ``None``: the advantages the rows carry (``StepRow.credit``, set on the episodes the trainer
            saves), else "–".
        details: with ``advantages`` as a sequence: the estimator's per-step quantities,
            ``{name: one value per row}`` (``credit.details``), shown beside each advantage.
        estimator: the name the given advantages come from, for the page header.
        tokenizer: a tokenizer (or a model folder to load one from) to decode each prompt's token ids for
            display; without one the viewer lists the episode's earlier actions instead.
        title: page title; defaults to the input's file name.
    """
    source = str(episodes) if isinstance(episodes, (str, Path)) else None
    episodes = load_episodes(episodes)
    lookup = _credit_lookup(episodes, advantages, details)
    magnitudes = [abs(a) for entry in lookup.values() if (a := _number(entry["advantage"])) is not None]
    scale = max(magnitudes, default=0.0)
    with_details = any(entry["details"] for entry in lookup.values())
    if advantages is not None:
        origin = "given" if estimator is None else f"recomputed with {estimator}"
    else:
        names = sorted({str(entry["estimator"]) for entry in lookup.values() if entry["estimator"]})
        origin = "as trained" + (f" ({', '.join(names)})" if names else "")
    credit_line = ("" if not lookup else
                   f'<div class="legend">advantages {html.escape(origin)} · '
                   '<span class="swatch" style="background: rgba(30,132,73,0.6)"></span> pushed up '
                   '<span class="swatch" style="background: rgba(192,57,43,0.6)"></span> pushed down, '
                   f"shade by |A| / {scale:.3g} (the largest here); <code>A_…</code> details on the same scale</div>")
    if isinstance(tokenizer, (str, Path)):
        from steprl.agent.models import load_tokenizer

        tokenizer = load_tokenizer(str(tokenizer))
    wins = sum(bool(ep[-1].success) for ep in episodes)
    title = title or (f"steprl episodes: {Path(source).name}" if source else "steprl episodes")
    sections = "\n".join(_episode_section(i, ep, lookup, tokenizer, scale, with_details)
                         for i, ep in enumerate(episodes))
    meta_json = json.dumps({"episodes": len(episodes), "successes": wins, "source": source,
                            "advantages": origin if lookup else None}).replace("</", "<\\/")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<div>{len(episodes)} episodes · {wins} successful · {len(episodes) - wins} failed
{'' if lookup else '· <span class="muted">no advantages given</span>'}</div>
{credit_line}
<div id="filter">Show:
<label><input type="radio" name="show" value="all" checked> all</label>
<label><input type="radio" name="show" value="success"> successful only</label>
<label><input type="radio" name="show" value="failure"> failed only</label>
· <span id="shown"></span>
· <button type="button" onclick="setOpen(true)">expand</button>
<button type="button" onclick="setOpen(false)">collapse</button>
</div>
</header>
<main>
{sections}
</main>
<script type="application/json" id="viewer-meta">{meta_json}</script>
<script>{_JS}</script>
</body></html>
"""
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
