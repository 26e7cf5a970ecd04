"""Credit you can see: saved episodes carry the advantage each step was trained with, and the viewer shows it.

The episode file round-trips the per-step credit (old files without it still load); the viewer
puts each step's advantage in ``data-advantage`` and the estimator's details beside it;
``steprl view --credit NAME --param k=v`` recomputes. End to end: one GiGPO iteration of the
recipe saves its episodes, and headless Chromium reads every step's advantage from the page,
equal to the array the policy update got.
"""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest

from steprl import credit
from steprl.agent.rollout import StepRow, TrajectoryBatch
from steprl.cli import main as steprl_main
from tests.evaluation.test_viewer import browser  # noqa: F401  (the module's Chromium fixture)
from steprl.evaluation import write_viewer
from steprl.trainer.loop import record_credit


def make_batch() -> TrajectoryBatch:
    """Two groups of two episodes over a corridor of rooms; the first episode of each group wins."""
    rows = []
    for traj in range(4):
        won = traj % 2 == 0
        length = 2 + traj % 2
        for step in range(length):
            last = step == length - 1
            rows.append(StepRow(
                traj_id=traj, group_id=traj // 2, task_id=f"toy:{traj // 2}", step=step, prompt_ids=[1, 2, step],
                response_ids=[3, 4], logprobs=[-0.5, -0.25], response_text=f"go {step}", action=f"go {step}",
                format_ok=True, valid_action=step != 1 or won, reward=1.0 if (last and won) else 0.0,
                anchor=f"room {step}", done=last, truncated=False, success=won, observation=f"You are in room {step}.",
                history_cut=0, expert_action=None, env_error=None))
    for row, following in zip(rows, rows[1:] + [None]):  # the next state's key, as the rollout sets it
        same = following is not None and following.traj_id == row.traj_id
        row.next_anchor_key = following.anchor_key if same else 0
    return TrajectoryBatch(rows)


def trained(batch: TrajectoryBatch, estimator: str = "gigpo", **params):
    """What the recipe does before saving: estimate, then record on the rows (details included)."""
    step_batch = credit.StepBatch.from_rows(batch.rows)
    advantages = credit.estimate(estimator, step_batch, **params)
    keep = credit.keep_mask(advantages, 0.05)
    record_credit(batch.rows, estimator, advantages, keep, credit.details(estimator, step_batch, **params))
    return advantages, keep


class Steps(HTMLParser):
    """Per step row: (traj_id, step, data-advantage, data-kept); per detail span: (key, value)."""

    def __init__(self):
        super().__init__()
        self.traj = None
        self.steps: list[tuple[int, int, str | None, str | None]] = []
        self.details: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.traj = int(attrs["data-traj-id"])
        elif tag == "tr" and attrs.get("class") == "step":
            self.steps.append((self.traj, int(attrs["data-step"]), attrs.get("data-advantage"), attrs.get("data-kept")))
            self.details.append({})
        elif tag == "span" and attrs.get("class") == "detail":
            self.details[-1][attrs["data-key"]] = attrs["data-value"]


def parse(path) -> Steps:
    page = Steps()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_saved_credit_round_trips_and_old_files_still_load(tmp_path):
    batch = make_batch()
    advantages, keep = trained(batch)
    batch.rows[0].credit["details"]["odd"] = None  # a quantity that does not apply to the row (NaN → None)
    record = batch.rows[1].credit
    assert record["estimator"] == "gigpo" and record["advantage"] == advantages[1] and record["kept"] == bool(keep[1])
    assert isinstance(record["details"]["step_group_size"], int) and isinstance(record["details"]["A_E"], float)
    path = batch.save_jsonl(tmp_path / "episodes.jsonl")
    again = TrajectoryBatch.load_jsonl(path)
    assert again.rows == batch.rows  # every float exactly, ints stay ints
    assert [row.credit["advantage"] for row in again.rows] == advantages.tolist()

    plain = make_batch()  # rows without credit: the key is left out, and such a file loads as before
    path = plain.save_jsonl(tmp_path / "plain.jsonl")
    assert all("credit" not in step for line in path.read_text().splitlines() for step in json.loads(line)["steps"])
    assert [row.credit for row in TrajectoryBatch.load_jsonl(path).rows] == [None] * len(plain.rows)


def test_record_credit_writes_plain_values():
    batch = make_batch()
    n = len(batch.rows)
    record_credit(batch.rows, "hgpo", np.arange(n, dtype=np.float64), None,
                  {"level3": np.full(n, np.nan), "size": np.arange(n), "flag": np.ones(n, dtype=bool)})
    credit_of = batch.rows[2].credit
    assert credit_of == {"estimator": "hgpo", "advantage": 2.0, "kept": True,
                         "details": {"level3": None, "size": 2, "flag": 1}}
    assert type(credit_of["advantage"]) is float and type(credit_of["details"]["size"]) is int


def test_viewer_shows_saved_advantages_and_details(tmp_path):
    batch = make_batch()
    advantages, keep = trained(batch)
    path = batch.save_jsonl(tmp_path / "episodes.jsonl")
    out = write_viewer(path, tmp_path / "v.html")
    page = parse(out)
    rows = TrajectoryBatch.load_jsonl(path).rows
    assert [(t, s) for t, s, _, _ in page.steps] == [(r.traj_id, r.step) for r in rows]
    assert [float(a) for _, _, a, _ in page.steps] == advantages.tolist()  # repr: exact
    assert [k is None for *_, k in page.steps] == keep.tolist()  # dropped rows say so
    details = credit.details("gigpo", credit.StepBatch.from_rows(rows))
    for i, shown in enumerate(page.details):
        assert list(shown) == list(details)
        assert float(shown["A_E"]) == details["A_E"][i]
        assert int(shown["step_group_size"]) == details["step_group_size"][i]
    text = out.read_text()
    assert "advantages as trained (gigpo)" in text and "credit details" in text
    assert "rgba(30,132,73" in text and "rgba(192,57,43" in text  # shaded both ways

    bare = write_viewer(make_batch(), tmp_path / "bare.html")  # nothing saved, nothing given: "–"
    assert all(a is None for _, _, a, _ in parse(bare).steps) and "no advantages given" in bare.read_text()


def test_steprl_view_recomputes_with_any_estimator_and_its_parameters(tmp_path, capsys):
    batch = make_batch()
    trained(batch)
    path = batch.save_jsonl(tmp_path / "episodes.jsonl")
    assert steprl_main(["view", str(path), "--out", str(tmp_path / "saved.html")]) == 0
    assert "advantages as trained on 10 of 10 steps" in capsys.readouterr().out

    out = tmp_path / "hgpo.html"
    assert steprl_main(["view", str(path), "--out", str(out), "--credit", "hgpo", "--param", "history_length=1",
                        "--param", "mode=mean_norm"]) == 0
    page = parse(out)
    params = {"history_length": 1, "mode": "mean_norm"}
    want = credit.estimate("hgpo", credit.StepBatch.from_rows(batch.rows), **params)
    assert [float(a) for _, _, a, _ in page.steps] == want.tolist()
    assert set(page.details[0]) == {"R_t", "level1", "level1_size", "level2", "level2_size", "levels_counted"}
    assert page.details[0]["level2"] == ""  # step 0 has no level 2: shown as "–", no value
    assert "recomputed with hgpo (history_length=1, mode=mean_norm)" in out.read_text()

    assert steprl_main(["view", str(path), "--param", "gamma=0.5"]) == 2
    assert "give --credit ESTIMATOR too" in capsys.readouterr().err
    assert steprl_main(["view", str(path), "--credit", "gigpo", "--param", "gama=0.5"]) == 2
    assert "unknown parameter 'gama'" in capsys.readouterr().err
    assert steprl_main(["view", str(path), "--credit", "spa"]) == 2  # ĉ_t comes from a head this run did not train
    assert "needs each step's 'progress'" in capsys.readouterr().err


def test_steprl_view_takes_a_heads_field_from_a_run_that_trained_it(tmp_path):
    batch = make_batch()
    step_batch = credit.StepBatch.from_rows(batch.rows).replace(progress=np.linspace(0, 1, len(batch.rows)))
    record_credit(batch.rows, "spa", credit.estimate("spa", step_batch), None, credit.details("spa", step_batch))
    path = batch.save_jsonl(tmp_path / "episodes.jsonl")
    assert steprl_main(["view", str(path), "--out", str(tmp_path / "v.html"), "--credit", "spa",
                        "--param", "beta=0.1"]) == 0
    want = credit.estimate("spa", step_batch, beta=0.1)
    assert [float(a) for _, _, a, _ in parse(tmp_path / "v.html").steps] == want.tolist()


# -- end to end: one GiGPO iteration of the recipe, read back in Chromium ------------------------------


@pytest.fixture(scope="module")
def gigpo_run(tmp_path_factory):
    """One GiGPO iteration with episodes saved; returns (episodes file, {(traj_id, step): A the update got})."""
    from steprl.agent.models import build_tiny_model
    from steprl.trainer.policy import PolicyTrainer
    from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0)
    from tests.trainer.test_estimator_spec import one_iteration

    model = build_tiny_model("toy/Corridor-v0", tmp_path_factory.mktemp("m") / "tiny", hidden=64, layers=1, vocab=300,
                             num_tasks=4)
    calls = []
    update = PolicyTrainer.update

    def recording_update(self, rows, advantages, keep_mask=None):
        calls.append(({(row.traj_id, row.step): float(a) for row, a in zip(rows, np.asarray(advantages))}, keep_mask))
        return update(self, rows, advantages, keep_mask=keep_mask)

    run_dir = tmp_path_factory.mktemp("run") / "gigpo"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PolicyTrainer, "update", recording_update)
        one_iteration(model, run_dir, "gigpo", "sft.steps=20", "run.save_episodes_every=1",
                      "credit.params={gamma: 0.9, step_weight: 0.5}")
    assert len(calls) == 1 and calls[0][1] is None  # one update; GiGPO drops no rows
    return run_dir / "episodes" / "iter_000001.jsonl", calls[0][0]


@pytest.mark.slow
def test_a_gigpo_iteration_saves_each_steps_trained_advantage_and_details(gigpo_run):
    path, used = gigpo_run
    rows = TrajectoryBatch.load_jsonl(path).rows
    assert {(r.traj_id, r.step) for r in rows} == set(used) and len(rows) == len(used)
    saved = np.array([r.credit["advantage"] for r in rows])
    assert saved.tolist() == [used[(r.traj_id, r.step)] for r in rows]  # exactly the update's array
    assert np.abs(saved).max() > 0 and {r.credit["estimator"] for r in rows} == {"gigpo"}
    a_e = np.array([r.credit["details"]["A_E"] for r in rows])
    a_s = np.array([r.credit["details"]["A_S"] for r in rows])
    assert (a_e + 0.5 * a_s).tolist() == saved.tolist()  # the run's ω = 0.5
    # the saved rows are enough to recompute the same credit offline
    again = credit.estimate("gigpo", credit.StepBatch.from_rows(rows), gamma=0.9, step_weight=0.5)
    assert again.tolist() == saved.tolist()


@pytest.mark.slow
@pytest.mark.browser
def test_chromium_reads_each_steps_trained_advantage_from_the_viewer(gigpo_run, browser, tmp_path):
    path, used = gigpo_run
    out = tmp_path / "viewer.html"
    assert steprl_main(["view", str(path), "--out", str(out)]) == 0
    page = browser.new_page()
    page.goto(out.resolve().as_uri())
    page.click("text=expand")
    shown = page.eval_on_selector_all(
        "section.episode tr.step",
        """els => els.map(e => [Number(e.closest('section.episode').dataset.trajId), Number(e.dataset.step),
                                e.dataset.advantage, e.offsetParent !== null,
                                Object.fromEntries([...e.querySelectorAll('span.detail')]
                                                   .map(s => [s.dataset.key, s.dataset.value]))])""")
    page.close()
    assert len(shown) == len(used)
    for traj, step, advantage, visible, details in shown:
        assert visible
        assert float(advantage) == pytest.approx(used[(traj, step)], abs=1e-6)
        assert float(advantage) == used[(traj, step)]  # the page carries the full float
        assert {"A_E", "A_S", "step_group_size"} <= details.keys()
        assert math.isclose(float(details["A_E"]) + 0.5 * float(details["A_S"]), float(advantage), abs_tol=1e-12)
