"""The HTML trajectory viewer: every episode and step rendered, self-contained, filterable by success.

The DOM checks run twice: with Python's HTML parser (always) and in headless Chromium
(marker ``browser``; skipped when Chromium or Playwright is missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from steprl.agent.rollout import StepRow, TrajectoryBatch
from steprl.evaluation import write_viewer

OUTCOMES = [True, False, False, True, False]  # episode i succeeds iff OUTCOMES[i]


def make_batch() -> TrajectoryBatch:
    rows = []
    for traj, success in enumerate(OUTCOMES):
        length = 2 + traj % 3
        for step in range(length):
            last = step == length - 1
            rows.append(StepRow(
                traj_id=traj, group_id=traj // 2, task_id=f"toy:{traj // 2}", step=step, prompt_ids=[5, 6, 7 + step],
                response_ids=[8, 9], logprobs=[-0.1, -0.2], response_text=f"<b>go</b> east {traj}-{step}",
                action="go east" if step % 2 == 0 else "take <coin>", format_ok=step != 1, valid_action=step != 2,
                reward=1.0 if (last and success) else 0.0, anchor=f"room {step}", done=last,
                truncated=last and not success, success=success, observation=f"You are in room {step} & hall {traj}.",
                history_cut=0, expert_action="go east", env_error=None))
    return TrajectoryBatch(rows)


class EpisodeCounter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.episodes: list[dict[str, str]] = []
        self.step_rows = 0
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and "episode" in (attrs.get("class") or "").split():
            self.episodes.append(attrs)
        if tag == "tr" and attrs.get("class") == "step":
            self.step_rows += 1
        for key in ("src", "href"):
            if attrs.get(key):
                self.external.append(attrs[key])


def parse(path) -> EpisodeCounter:
    parser = EpisodeCounter()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_episode_and_step_is_rendered_with_success_attribute(tmp_path):
    batch = make_batch()
    advantages = [0.5 * i - 2 for i in range(len(batch.rows))]
    out = write_viewer(batch, tmp_path / "v.html", advantages)
    page = parse(out)
    assert [e["data-success"] for e in page.episodes] == [str(s).lower() for s in OUTCOMES]
    assert page.step_rows == len(batch.rows)
    assert page.external == []  # nothing to fetch: CSS and JS are inline
    text = out.read_text()
    assert "<script src" not in text and "<link" not in text
    assert "&lt;b&gt;go&lt;/b&gt; east 0-0" in text  # responses are escaped, not rendered as HTML
    assert "take &lt;coin&gt;" in text and "room 1 &amp; hall 0" in text
    assert f"{advantages[3]:+.3f}" in text
    assert "unparseable" in text and "invalid" in text


def test_jsonl_path_rows_and_records_give_the_same_page(tmp_path):
    batch = make_batch()
    path = batch.save_jsonl(tmp_path / "episodes.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    pages = [write_viewer(src, tmp_path / f"{i}.html", title="t").read_text()
             for i, src in enumerate([batch, path, batch.rows, batch.episodes(), records])]
    mains = [p[p.index("<main>"):p.index("</main>")] for p in pages]
    assert all(m == mains[0] for m in mains)


def test_advantages_must_match_the_rows(tmp_path):
    with pytest.raises(ValueError, match="advantages has 3 values but the episodes hold 14 steps"):
        write_viewer(make_batch(), tmp_path / "v.html", [0.0, 1.0, 2.0])
    with pytest.raises(FileNotFoundError, match="no episodes file"):
        write_viewer(tmp_path / "missing.jsonl", tmp_path / "v.html")


def test_a_tokenizer_decodes_the_prompts(tmp_path):
    class FakeTokenizer:
        def decode(self, ids, skip_special_tokens=False):
            return "PROMPT:" + ",".join(map(str, ids))

    text = write_viewer(make_batch(), tmp_path / "v.html", tokenizer=FakeTokenizer()).read_text()
    assert "PROMPT:5,6,8" in text
    text = write_viewer(make_batch(), tmp_path / "w.html").read_text()
    assert "PROMPT:" not in text and "earlier actions" in text


def test_steprl_view_writes_the_page(tmp_path):
    path = make_batch().save_jsonl(tmp_path / "episodes.jsonl")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "steprl", "view", str(path), "--out", str(tmp_path / "v.html"),
                          "--credit", "grpo"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    page = parse(tmp_path / "v.html")
    assert len(page.episodes) == len(OUTCOMES)
    assert "no advantages given" not in (tmp_path / "v.html").read_text()


# -- in a real browser --------------------------------------------------------------------
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.browser
def test_viewer_in_chromium_renders_all_and_filters_by_success(browser, tmp_path):
    out = write_viewer(make_batch(), tmp_path / "viewer.html")
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.resolve().as_uri())

    def visible() -> list[str]:
        return page.eval_on_selector_all(
            "section.episode", "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.success)")

    assert page.eval_on_selector_all("section.episode", "els => els.length") == len(OUTCOMES)
    assert visible() == [str(s).lower() for s in OUTCOMES]
    assert page.inner_text("#shown") == f"{len(OUTCOMES)} shown"

    page.check('input[name="show"][value="success"]')
    assert visible() == ["true"] * sum(OUTCOMES)
    assert page.inner_text("#shown") == f"{sum(OUTCOMES)} shown"

    page.check('input[name="show"][value="failure"]')
    assert visible() == ["false"] * (len(OUTCOMES) - sum(OUTCOMES))

    page.check('input[name="show"][value="all"]')
    assert len(visible()) == len(OUTCOMES)
    page.click("text=expand")  # every step row of every episode is in the DOM and shows
    shown_rows = page.eval_on_selector_all("tr.step", "els => els.filter(e => e.offsetParent !== null).length")
    assert shown_rows == len(make_batch().rows)
    assert requests == [out.resolve().as_uri()]  # nothing fetched but the file itself
    page.close()
