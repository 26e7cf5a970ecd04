"""The fast ALFWorld engine path (``fast=True``, :mod:`envs.alfworld.fast`) plays exactly like TextWorld's own.

Random action sequences over the six task types are replayed through ``fast=True`` and ``fast=False`` in
lockstep; every observation, admissible-action list (same order), reward, terminated/truncated flag, info
(``success``, ``won``, ``anchor``, ``task``) and, with the planner on, expert action must be the same. Some
sequences follow the task's walkthrough to the end, so winning steps are compared too; tasks repeat, so the
fast path's caches (translation, command texts, plans) are compared warm as well as cold.
"""

import json
import random

import pytest

pytest.importorskip("alfworld", reason="ALFWorld is an extra: pip install 'steprl[alfworld]'")

from steprl import envs  # noqa: E402
from steprl.envs.alfworld.tasks import TASK_TYPES  # noqa: E402

NUM_TASKS = 12  # mixed-v0 is round robin over the six types: two tasks of each
COMPARED = ("task", "admissible_actions", "anchor", "expert_action", "task_type", "won", "success", "valid_action")


def _pair(expert: bool):
    kw = dict(split="test", num_tasks=NUM_TASKS, expert=expert)
    return envs.make("alfworld/mixed-v0", fast=True, **kw), envs.make("alfworld/mixed-v0", fast=False, **kw)


def _same(a, b, where):
    assert a[0] == b[0], f"{where}: observation differs"
    if len(a) == 5:  # a step: reward, terminated, truncated
        assert a[1:4] == b[1:4], f"{where}: reward/terminated/truncated differ: {a[1:4]} != {b[1:4]}"
    ia, ib = a[-1], b[-1]
    for key in COMPARED:
        assert ia.get(key) == ib.get(key), f"{where}: info[{key!r}] differs: {ia.get(key)!r} != {ib.get(key)!r}"


def _walkthrough(env, task: int) -> list[str]:
    seed = env.unwrapped.task_seeds[task]
    return list(json.loads(env.unwrapped.game_file(seed).read_text()).get("walkthrough") or [])


def _replay(fast, slow, task: int, seq: int, max_steps: int, experts: list | None = None) -> tuple[int, bool]:
    """One seeded sequence through both envs; returns (steps, won). ``experts`` collects each state's expert action."""
    rng = random.Random(f"alfworld-fast-{task}-{seq}")
    walk = _walkthrough(fast, task)
    # follow the walkthrough to the end (a win), or for its first 0-3 actions, then random admissible actions
    follow = len(walk) if rng.random() < 0.15 else rng.randrange(min(len(walk), 3) + 1)
    a = fast.reset(seed=seq, options={"task": task})
    b = slow.reset(seed=seq, options={"task": task})
    _same(a, b, f"task {task} seq {seq} reset")
    info = a[-1]
    if experts is not None:
        experts.append(info.get("expert_action"))
    for t in range(max(max_steps, follow)):
        admissible = info["admissible_actions"]
        action = walk[t] if t < follow and walk[t] in admissible else rng.choice(admissible)
        a = fast.step(action)
        b = slow.step(action)
        _same(a, b, f"task {task} seq {seq} step {t} ({action!r})")
        info = a[-1]
        if experts is not None and not (a[2] or a[3]):
            experts.append(info.get("expert_action"))
        if a[2] or a[3]:
            return t + 1, bool(info.get("success"))
    return max(max_steps, follow), False


@pytest.mark.slow
def test_fast_path_replays_like_textworld():
    fast, slow = _pair(expert=False)
    try:
        types, wins, steps = set(), 0, 0
        for seq in range(204):
            task = seq % NUM_TASKS
            n, won = _replay(fast, slow, task, seq, max_steps=2 + seq % 4)
            types.add(fast.unwrapped.task_type_of(fast.unwrapped.task_seeds[task]))
            wins += won
            steps += n
        assert types == set(TASK_TYPES)
        assert wins >= 15 and steps >= 600, (wins, steps)  # winning steps and plenty of others compared
    finally:
        fast.close()
        slow.close()


@pytest.mark.slow
def test_fast_path_expert_actions_like_textworld():
    fast, slow = _pair(expert=True)
    experts: list = []
    try:
        for seq in range(24):  # the planner runs every step on both paths: fewer, shorter sequences
            _replay(fast, slow, seq % NUM_TASKS, 1000 + seq, max_steps=3, experts=experts)
        # the comparison had something to compare: the planner gave an action in (nearly) every state
        assert len(experts) >= 24 * 2 and sum(e is not None for e in experts) >= 0.9 * len(experts), experts
    finally:
        fast.close()
        slow.close()


def test_fast_is_the_default_and_can_be_turned_off():
    assert envs.make("alfworld/pick_and_place-v0", split="test", num_tasks=1).unwrapped.fast is True
    assert envs.make("alfworld/pick_and_place-v0", split="test", num_tasks=1, fast=False).unwrapped.fast is False
