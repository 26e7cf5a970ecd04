"""The search-then-place expert (expert="explore"): its rules by hand, then on the engine."""

import pytest

from steprl.envs.alfworld.explore import Explorer

GO = ["go to cabinet 1", "go to cabinet 2", "go to countertop 1", "go to countertop 2", "go to drawer 1"]


def test_explorer_rules_by_hand():
    ex = Explorer("pick_and_place_simple", "Mug", "CounterTop")
    assert ex.action(GO + ["look"]) == "go to cabinet 1"  # first receptacle in the (sorted) list
    ex.observe("go to cabinet 1", True, "You arrive at cabinet 1. The cabinet 1 is closed.")
    here = [a for a in GO if a != "go to cabinet 1"] + ["open cabinet 1", "examine cabinet 1"]
    assert ex.action(here) == "open cabinet 1"  # look inside before moving on
    ex.observe("open cabinet 1", True, "You open the cabinet 1. The cabinet 1 is open. In it, you see a cup 1.")
    here = [a for a in GO if a != "go to cabinet 1"] + ["close cabinet 1", "take cup 1 from cabinet 1"]
    assert ex.action(here) == "go to cabinet 2"  # a cup is not a mug; cabinet 1 was visited
    ex.observe("go to cabinet 2", True, "You arrive at cabinet 2. On the cabinet 2, you see a mug 3.")
    here = [a for a in GO if a != "go to cabinet 2"] + ["take mug 3 from cabinet 2"]
    assert ex.action(here) == "take mug 3 from cabinet 2"
    ex.observe("take mug 3 from cabinet 2", True, "You pick up the mug 3 from the cabinet 2.")
    assert ex.holding
    here = [a for a in GO if a != "go to cabinet 2"] + ["move mug 3 to cabinet 2"]
    assert ex.action(here) == "go to countertop 1"  # holding: to the first target receptacle
    ex.observe("go to countertop 1", True, "You arrive at countertop 1. On the countertop 1, you see nothing.")
    here = [a for a in GO if a != "go to countertop 1"] + ["move mug 3 to countertop 1"]
    assert ex.action(here) == "move mug 3 to countertop 1"


def test_explorer_skips_invalid_steps_and_tried_targets():
    ex = Explorer("pick_and_place_simple", "apple", "fridge")
    ex.observe("go to cabinet 1", False, "Nothing happens.")  # an invalid step changes nothing
    assert ex.visited == set() and ex.place == ""
    ex.holding, ex.place = True, "fridge 1"
    ex.tried_targets.add("fridge 1")
    assert ex.action(["go to fridge 1", "go to fridge 2", "open fridge 1"]) == "open fridge 1"  # closed target: open
    ex.place = "cabinet 1"
    assert ex.action(["go to fridge 1", "go to fridge 2"]) == "go to fridge 2"
    assert ex.action(["go to cabinet 2"]) is None  # nowhere left to try


def test_explorer_refuses_other_task_types():
    with pytest.raises(ValueError, match="expert='explore' supports task types"):
        Explorer("pick_heat_then_place_in_recep", "apple", "fridge")


pytest.importorskip("alfworld", reason="ALFWorld is an extra: pip install 'steprl[alfworld]'")


def test_env_rejects_explore_for_other_types_and_bad_values():
    from steprl.envs.alfworld.env import AlfWorldEnv

    with pytest.raises(ValueError, match="expert='explore' supports"):
        AlfWorldEnv(task_types=("pick_heat_then_place_in_recep",), expert="explore")
    with pytest.raises(ValueError, match="expert='oracle' must be"):
        AlfWorldEnv(task_types=("pick_and_place_simple",), expert="oracle")


@pytest.mark.slow
def test_explorer_wins_every_task_from_admissible_actions_only():
    """On 12 train and 12 test tasks the explorer wins each within 40 steps, using only admissible actions."""
    import steprl.envs as envs

    lengths = []
    for split in ("train", "test"):
        env = envs.make("alfworld/pick_and_place-v0", split=split, expert="explore")
        for seed in range(12):
            _, info = env.reset(seed=seed)
            for t in range(1, 41):
                action = info["expert_action"]
                assert action in info["admissible_actions"]
                _, reward, terminated, truncated, info = env.step(action)
                assert info["valid_action"]
                if terminated or truncated:
                    break
            assert terminated and reward == 1.0 and info["success"], (split, seed, t)
            lengths.append(t)
        env.close()
    assert 4 <= min(lengths) and max(lengths) <= 40
    assert sum(lengths) / len(lengths) > 5  # it searches: longer than the planner's 4-step pick & place
