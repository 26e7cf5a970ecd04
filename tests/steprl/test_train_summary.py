"""The end-of-run summary `steprl train` prints, including runs without RL evaluations."""

from steprl.commands.train import print_summary


def summary(start, last):
    return {"success_start": start, "success_last3": last, "eval_split": "test", "eval_episodes": 200,
            "wall_s": 90.0, "run_dir": "runs/x", "success_curve": [[0, start]] if start == start else []}


def test_summary_prints_the_gain_in_points(capsys):
    print_summary(summary(0.485, 0.8283))
    out = capsys.readouterr().out
    assert "start (after SFT warm start):  48.5%" in out
    assert "after RL (mean of last 3 evaluations):  82.8%   (+34.3 points)" in out
    assert "wall time 1.5 min" in out


def test_summary_without_rl_evaluations_says_so_instead_of_nan(capsys):
    print_summary(summary(0.79, float("nan")))
    out = capsys.readouterr().out
    assert "nan" not in out
    assert "start (after SFT warm start):  79.0%" in out
    assert "no evaluation after iteration 0" in out
