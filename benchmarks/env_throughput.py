"""Env throughput: raw TextWorld vs steprl's env vs the vector env with 1 and 2 workers.

Prints one table from one run, so the ratios compare like with like:
- raw TextWorld steps/s (``textworld.start`` with the same requested infos),
- the same games through ``envs.make`` (wrapper overhead, target ≤ 10%),
- ``TextVectorEnv`` with 8 envs over 1 vs 2 worker processes (target ≥ 1.6×), two ways:
  in lockstep (``step``: every round waits for the slower worker) and through
  ``send``/``recv`` (each env gets its next action as soon as its result is back, so
  no worker waits for the other). An env whose episode ended is reset in its next
  round, beside the others' steps. Lockstep with 16 envs shows how much of its gap is
  imbalance (more envs per worker even it out),
- reset time of a cached game that is not the one loaded (target ≤ 50 ms).

A second table covers the other families (web shop text and browser modes, a
MiniWoB++ task, the tool envs, ALFWorld): steps/s of the env alone under a fixed
action choice (a cyclic pick among the admissible actions, else the expert's action)
and the median reset time. A family whose dependency is missing is listed as skipped.

Rows are measured in interleaved repeats. Steps/s are the best of each row; the
overhead and the speed-ups are ratios taken within each repeat (the two rows ran back
to back, in alternating order), and their median over the repeats is reported with
its range: on a shared machine the load drifts, and a ratio of two bests mixes two
different moments. The two rows of each ratio play the same fixed action sequence (a
cyclic pick among the admissible actions), so they do identical game work. The vector
rows pick by round and the single-env rows by step, so their episodes differ: compare
vector rows with each other.

    python benchmarks/env_throughput.py [--env textworld/coin_collector-v0] [--steps 2000] [--families-only | --textworld-only]
    python benchmarks/env_throughput.py --families-only --family tools/python-v0   # the sandbox's two modes
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from steprl import envs

ENV_ID = "textworld/coin_collector-v0"


def pick(actions: list[str], t: int) -> str:
    return actions[(7 * t + 3) % len(actions)]


def raw_textworld(paths: list[str], steps: int) -> float:
    import textworld

    infos = textworld.EnvInfos(admissible_commands=True, won=True, lost=True, score=True, max_score=True,
                               objective=True, policy_commands=True)
    tw_envs = [textworld.start(p, request_infos=infos) for p in paths]
    states = [e.reset() for e in tw_envs]
    t0 = time.perf_counter()
    for t in range(steps):
        i = t % len(tw_envs)
        state, _, done = tw_envs[i].step(pick(sorted(states[i].admissible_commands), t))
        states[i] = tw_envs[i].reset() if done else state
    return steps / (time.perf_counter() - t0)


def steprl_env(env_id: str, n: int, steps: int) -> float:
    env_list = [envs.make(env_id, split="test", num_tasks=n, max_episode_steps=0) for _ in range(n)]
    infos = [e.reset(seed=i, options={"task": i})[1] for i, e in enumerate(env_list)]
    t0 = time.perf_counter()
    for t in range(steps):
        i = t % n
        _, _, term, trunc, info = env_list[i].step(pick(infos[i]["admissible_actions"], t))
        infos[i] = env_list[i].reset(seed=i, options={"task": i})[1] if (term or trunc) else info
    return steps / (time.perf_counter() - t0)


def vector(env_id: str, n: int, workers: int, steps: int) -> float:
    """Env steps/s of a TextVectorEnv: every round steps each env, or resets it if its episode just ended.

    The reset rides in the same round trip as the other envs' steps (``envs.Reset``
    in the env's action slot), as a rollout that keeps every env busy would do it.
    """
    fns = [envs.make_fn(env_id, split="test", num_tasks=n, max_episode_steps=0) for _ in range(n)]
    with envs.TextVectorEnv(fns, num_workers=workers) as venv:
        _, infos = venv.reset(seeds=list(range(n)), options=[{"task": i} for i in range(n)])
        done = [False] * n
        stepped, t = 0, 0
        t0 = time.perf_counter()
        while stepped < steps:
            actions = [envs.Reset(i, {"task": i}) if done[i] else pick(infos[i]["admissible_actions"], t)
                       for i in range(n)]
            stepped += n - sum(done)
            _, _, term, trunc, infos = venv.step(actions)
            done = [bool(term[i] or trunc[i]) for i in range(n)]
            t += 1
        return stepped / (time.perf_counter() - t0)


def vector_async(env_id: str, n: int, workers: int, steps: int) -> float:
    """Env steps/s of a TextVectorEnv driven by ``send``/``recv``: each env gets its next action as soon as its result is back.

    Every env plays the action sequence it plays in :func:`vector` (it picks by its own
    round count, which in lockstep is the shared round), so the two do the same game
    work; here no worker waits for the other's slow round.
    """
    fns = [envs.make_fn(env_id, split="test", num_tasks=n, max_episode_steps=0) for _ in range(n)]
    with envs.TextVectorEnv(fns, num_workers=workers) as venv:
        _, infos = venv.reset(seeds=list(range(n)), options=[{"task": i} for i in range(n)])
        rounds = [0] * n
        stepped = n
        t0 = time.perf_counter()
        venv.send({i: pick(infos[i]["admissible_actions"], 0) for i in range(n)})
        while venv.in_flight:
            actions = {}
            for i, (_, _, term, trunc, info) in venv.recv().items():
                rounds[i] += 1
                if stepped >= steps:
                    continue
                if term or trunc:
                    actions[i] = envs.Reset(i, {"task": i})
                else:
                    actions[i] = pick(info["admissible_actions"], rounds[i])
                    stepped += 1
            venv.send(actions)
        return stepped / (time.perf_counter() - t0)


def cached_reset_ms(env_id: str, n: int) -> float:
    env = envs.make(env_id, split="test", num_tasks=n)
    env.reset(options={"task": 0})
    times = []
    for i in range(1, n):  # each reset loads a different cached game
        t0 = time.perf_counter()
        env.reset(options={"task": i})
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


#: (label, env id, make kwargs, steps) of the other families' rows.
FAMILY_CASES: list[tuple[str, str, dict, int]] = [
    ("webshop text mode", "web/webshop-text-v0", {}, 2000),
    ("webshop browser mode", "web/webshop-browser-v0", {}, 200),
    ("MiniWoB click-button", "web/miniwob-click-button-v0", {}, 300),
    ("tools apps (expert actions)", "tools/apps-v0", {}, 2000),
    ("tools python (expert, hook only)", "tools/python-v0", {"sandbox": "hook"}, 100),
    ("tools python (expert, bwrap)", "tools/python-v0", {"sandbox": "bwrap"}, 100),
    ("ALFWorld pick & place, no expert", "alfworld/pick_and_place-v0", {"expert": False}, 300),
    ("  same, fast=False (TextWorld's)", "alfworld/pick_and_place-v0", {"expert": False, "fast": False}, 300),
    ("ALFWorld mixed, planner expert on", "alfworld/mixed-v0", {"expert": True}, 300),
    ("  same, fast=False (TextWorld's)", "alfworld/mixed-v0", {"expert": True, "fast": False}, 300),
]


def family_row(env_id: str, kwargs: dict, steps: int, tasks: int = 8) -> tuple[float, float]:
    """(steps/s, median reset ms) of one env over ``tasks`` test tasks."""
    env = envs.make(env_id, split="test", num_tasks=tasks, **kwargs)
    resets, done_steps, busy, t = [], 0, 0.0, 0
    try:
        while done_steps < steps:
            t0 = time.perf_counter()
            _, info = env.reset(seed=t, options={"task": t % tasks})
            resets.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(steps - done_steps):
                admissible = info.get("admissible_actions")
                action = pick(admissible, t) if admissible else (info.get("expert_action") or "look")
                _, _, term, trunc, info = env.step(action)
                done_steps += 1
                t += 1
                if term or trunc:
                    break
            busy += time.perf_counter() - t0
    finally:
        env.close()
    return done_steps / busy, 1000 * float(np.median(resets[1:] or resets))


def family_table(steps_scale: float = 1.0, only: list[str] | None = None) -> None:
    print(f"\n| {'family row':<34} | {'env id':<36} | {'steps/s':>8} | {'reset ms':>8} |")
    print(f"|{'-' * 36}|{'-' * 38}|{'-' * 10}|{'-' * 10}|")
    for label, env_id, kwargs, steps in FAMILY_CASES:
        if only and env_id not in only:
            continue
        if env_id not in envs.registry():
            print(f"| {label:<34} | {env_id:<36} | {'skipped: not registered':>21} |")
            continue
        try:
            rate, reset_ms = family_row(env_id, kwargs, max(1, int(steps * steps_scale)))
        except Exception as exc:  # noqa: BLE001 - a missing extra or browser skips its row
            print(f"| {label:<34} | {env_id:<36} | skipped: {type(exc).__name__}: {str(exc)[:60]} |")
            continue
        print(f"| {label:<34} | {env_id:<36} | {rate:8.1f} | {reset_ms:8.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=ENV_ID)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--games", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats (best steps/s, median ratios)")
    parser.add_argument("--families-only", action="store_true", help="only the table of the other families")
    parser.add_argument("--textworld-only", action="store_true", help="only the TextWorld table")
    parser.add_argument("--family", action="append", metavar="ENV_ID",
                        help="with --families-only: only this env's rows (repeatable), e.g. tools/python-v0")
    args = parser.parse_args()
    if args.families_only:
        print(f"# machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
        family_table(only=args.family)
        return

    probe = envs.make(args.env, split="test", num_tasks=args.games)
    probe.unwrapped.prepare(progress=False)
    paths = [probe.unwrapped.game_file(s) for s in probe.unwrapped.task_seeds]

    print(f"# env throughput — {args.env}, {args.games} games, {args.steps} steps per row, {args.repeats} repeats")
    print(f"# machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    # Interleaved repeats: drift in the machine's load hits every row alike. Steps/s are the best
    # of each row; each ratio is taken within a repeat (its two rows ran back to back, in
    # alternating order) and the median over repeats is reported, with its range.
    wide = 2 * args.games
    envs.make(args.env, split="test", num_tasks=wide).unwrapped.prepare(progress=False)  # generate before timing
    runs: dict[str, list[float]] = {key: [] for key in ("raw", "wrapped", "v1", "v2", "a1", "a2", "w1", "w2")}
    measure = {
        "raw": lambda: raw_textworld(paths, args.steps),
        "wrapped": lambda: steprl_env(args.env, args.games, args.steps),
        "v1": lambda: vector(args.env, args.games, 1, args.steps),
        "v2": lambda: vector(args.env, args.games, 2, args.steps),
        "a1": lambda: vector_async(args.env, args.games, 1, args.steps),
        "a2": lambda: vector_async(args.env, args.games, 2, args.steps),
        "w1": lambda: vector(args.env, wide, 1, args.steps),
        "w2": lambda: vector(args.env, wide, 2, args.steps),
    }
    for repeat in range(args.repeats):
        for pair in (("raw", "wrapped"), ("v1", "v2"), ("a1", "a2"), ("w1", "w2")):
            for key in pair if repeat % 2 == 0 else pair[::-1]:
                runs[key].append(measure[key]())
    raw, wrapped, v1, v2, a1, a2, w1, w2 = (max(runs[k]) for k in ("raw", "wrapped", "v1", "v2", "a1", "a2", "w1", "w2"))

    def paired(top: str, bottom: str) -> tuple[float, float, float]:
        """(median, min, max) over repeats of runs[top] / runs[bottom]."""
        ratios = np.array(runs[top]) / np.array(runs[bottom])
        return float(np.median(ratios)), float(ratios.min()), float(ratios.max())

    kept = paired("wrapped", "raw")  # share of raw speed the wrapper keeps: median, min, max
    overhead = (100 * (1 - kept[0]), 100 * (1 - kept[2]), 100 * (1 - kept[1]))  # median, lowest, highest
    speedup, async_speedup, wide_speedup = paired("v2", "v1"), paired("a2", "a1"), paired("w2", "w1")
    reset_ms = cached_reset_ms(args.env, args.games)
    rows = [
        ("raw TextWorld", f"{raw:8.0f} steps/s", ""),
        ("steprl env (envs.make)", f"{wrapped:8.0f} steps/s",
         f"overhead {overhead[0]:5.1f}% ({overhead[1]:.1f} to {overhead[2]:.1f}; target ≤ 10%)"),
        (f"TextVectorEnv, {args.games} envs, 1 worker", f"{v1:8.0f} steps/s", ""),
        (f"TextVectorEnv, {args.games} envs, 2 workers", f"{v2:8.0f} steps/s",
         f"speed-up {speedup[0]:4.2f}× ({speedup[1]:.2f}–{speedup[2]:.2f}; target ≥ 1.6×)"),
        ("  same, send/recv, 1 worker", f"{a1:8.0f} steps/s", ""),
        ("  same, send/recv, 2 workers", f"{a2:8.0f} steps/s",
         f"speed-up {async_speedup[0]:4.2f}× ({async_speedup[1]:.2f}–{async_speedup[2]:.2f}; target ≥ 1.6×)"),
        (f"TextVectorEnv, {wide} envs, 1 worker", f"{w1:8.0f} steps/s", ""),
        (f"TextVectorEnv, {wide} envs, 2 workers", f"{w2:8.0f} steps/s",
         f"speed-up {wide_speedup[0]:4.2f}× ({wide_speedup[1]:.2f}–{wide_speedup[2]:.2f})"),
        ("reset of a cached game", f"{reset_ms:8.1f} ms", "target ≤ 50 ms"),
    ]
    print(f"| {'what':<36} | {'figure':>17} | {'vs target':<44} |")
    print(f"|{'-' * 38}|{'-' * 19}|{'-' * 46}|")
    for name, figure, note in rows:
        print(f"| {name:<36} | {figure:>17} | {note:<44} |")
    print(f"steps/s: best of {args.repeats} repeats; overhead and speed-ups: median over the repeats of the "
          "ratio within each repeat (range in brackets)")
    if not args.textworld_only:
        family_table()


if __name__ == "__main__":
    main()
