"""Trajectory viewer: one static, self-contained HTML file for a set of saved episodes.

    steprl view runs/quickstart/episodes/iter_000015.jsonl --out viewer.html
    write_viewer(batch, "viewer.html", advantages=credit.estimate("gigpo", credit.StepBatch.from_rows(batch.rows)))

The file opens from disk in any browser: CSS and JavaScript are inline, and
nothing is fetched. Each episode is a ``<section class="episode">`` with
``data-success="true|false"``; inside, one table row per step shows the
observation the action answered, the prompt (decoded from its token ids when
a tokenizer is given, else the episode's earlier actions), the response, the
parsed action, the reward, the valid/format flags and the advantage where
known. A control at the top shows all episodes, successful only or failed
only (it sets the ``hidden`` attribute of the other episodes).
"""

from __future__ import annotations

import html
import json
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


def _advantage_lookup(episodes: list, advantages) -> dict[tuple[int, int], float]:
    if advantages is None:
        return {}
    if isinstance(advantages, Mapping):
        return {(int(t), int(s)): float(v) for (t, s), v in advantages.items()}
    values = [float(v) for v in advantages]
    rows = [row for episode in episodes for row in episode]
    if len(values) != len(rows):
        raise ValueError(f"advantages has {len(values)} values but the episodes hold {len(rows)} steps: "
                         "give one per step row, in the batch's row order (traj_id, then step)")
    return {(row.traj_id, row.step): value for row, value in zip(rows, values)}


def _pre(text: str | None) -> str:
    return f"<pre>{html.escape(text or '')}</pre>"


def _flag(ok: bool, good: str, bad: str) -> str:
    return f'<span class="flag-ok">{good}</span>' if ok else f'<span class="flag-bad">{bad}</span>'


def _step_row(row, previous: list, advantage: float | None, tokenizer) -> str:
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
    if advantage is None:
        adv = '<span class="muted">–</span>'
    else:
        adv = f'<span class="{"pos" if advantage > 0 else "neg" if advantage < 0 else ""}">{advantage:+.3f}</span>'
    expert = f'<div class="muted">expert: {html.escape(row.expert_action)}</div>' if row.expert_action else ""
    return (
        f'<tr class="step" data-step="{row.step}" data-valid="{str(row.valid_action).lower()}" '
        f'data-format-ok="{str(row.format_ok).lower()}">'
        f'<td class="num">{row.step}</td><td>{_pre(row.observation)}</td><td>{prompt_cell}</td>'
        f"<td>{_pre(row.response_text)}</td><td>{_pre(row.action)}{expert}</td>"
        f'<td class="num">{row.reward:g}</td><td>{"<br>".join(flags)}</td><td class="num">{adv}</td></tr>'
    )


def _episode_section(index: int, episode: list, advantages: dict, tokenizer) -> str:
    first, last = episode[0], episode[-1]
    success = bool(last.success)
    total = sum(r.reward for r in episode)
    invalid = sum(not r.valid_action for r in episode)
    unparseable = sum(not r.format_ok for r in episode)
    badge = '<span class="badge success">success</span>' if success else '<span class="badge failure">failed</span>'
    summary = (f"{badge} episode {first.traj_id} · task <code>{html.escape(str(first.task_id))}</code> · "
               f"group {first.group_id} · {len(episode)} steps · return {total:g} · invalid {invalid} · "
               f"unparseable {unparseable}" + (" · truncated" if last.truncated else ""))
    body = "".join(_step_row(row, episode[:i], advantages.get((row.traj_id, row.step)), tokenizer)
                   for i, row in enumerate(episode))
    return (
        f'<section class="episode" id="episode-{index}" data-success="{str(success).lower()}" '
        f'data-traj-id="{first.traj_id}" data-task-id="{html.escape(str(first.task_id))}">'
        f"<details><summary>{summary}</summary>"
        "<table><thead><tr><th>step</th><th>observation</th><th>prompt</th><th>response</th><th>action</th>"
        f"<th>reward</th><th>flags</th><th>advantage</th></tr></thead><tbody>{body}</tbody></table>"
        "</details></section>"
    )


def write_viewer(episodes, out_html: str | Path, advantages=None, *, tokenizer=None,
                 title: str | None = None) -> Path:
    """Write a static HTML viewer of ``episodes`` to ``out_html``; returns its path.

    Args:
        episodes: a ``TrajectoryBatch``, a JSONL path (``TrajectoryBatch.save_jsonl``), a list of
            ``StepRow``, of episodes (lists of ``StepRow``), or of the JSONL's episode dicts.
        out_html: the file to write (parent folders are created).
        advantages: one value per step row in the batch's row order (as ``credit.estimate`` returns
            for ``credit.StepBatch.from_rows(batch.rows)``), or a mapping ``{(traj_id, step): value}``; ``None`` shows "–".
        tokenizer: a tokenizer (or a model folder to load one from) to decode each prompt's token ids for
            display; without one the viewer lists the episode's earlier actions instead.
        title: page title; defaults to the input's file name.
    """
    source = str(episodes) if isinstance(episodes, (str, Path)) else None
    episodes = load_episodes(episodes)
    lookup = _advantage_lookup(episodes, advantages)
    if isinstance(tokenizer, (str, Path)):
        from steprl.agent.models import load_tokenizer

        tokenizer = load_tokenizer(str(tokenizer))
    wins = sum(bool(ep[-1].success) for ep in episodes)
    title = title or (f"steprl episodes: {Path(source).name}" if source else "steprl episodes")
    sections = "\n".join(_episode_section(i, ep, lookup, tokenizer) for i, ep in enumerate(episodes))
    meta_json = json.dumps({"episodes": len(episodes), "successes": wins, "source": source}).replace("</", "<\\/")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<div>{len(episodes)} episodes · {wins} successful · {len(episodes) - wins} failed
{'' if lookup else '· <span class="muted">no advantages given</span>'}</div>
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
