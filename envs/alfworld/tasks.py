"""ALFWorld task generation from the engine that ships with the ``alfworld`` package.

ALFWorld (Shridhar et al., 2021, "ALFWorld: Aligning Text and Embodied
Environments for Interactive Learning") plays ALFRED household tasks as text
games: a PDDL domain (``alfred.pddl``), a TextWorld grammar (``alfred.twl2``)
and one PDDL *problem* per task. The package ships the domain, the grammar and
the 120 room layouts (receptacles with their positions, the object types of
each room), but not the task data. This module writes the problems itself:

1. pick a room: *seen* rooms (ALFRED's train scenes) for ``train``/``valid``,
   *unseen* rooms (ALFRED's held-out scenes 1-6, 201-206, 301-306, 401-406)
   for ``test``, restricted to the room kinds ALFRED allows per task type
   (heat and cool: kitchens; light: living rooms and bedrooms; ...);
2. pick the task's targets (object type, receptacle type, lamp) among what
   the room holds, with ALFRED's rules: the object must be heatable /
   coolable / cleanable for those tasks, the receptacle must be able to hold
   it (``VAL_RECEPTACLE_OBJECTS``), and it must not be the appliance itself;
3. scatter 1-3 instances of every portable object type of the room over the
   receptacles that can hold them (the target: 1-4 instances, 2-4 for "pick
   two"), never already satisfying the goal; openable receptacles start closed;
4. put the agent at a free floor point of the room's navigation grid;
5. write the problem exactly as ALFWorld's ``initial_state.pddl`` files are
   written (object ids like ``Apple_bar__plus_00_dot_12_...``, locations
   ``loc_bar_x_bar_z_bar_rot_bar_horizon``, ALFRED's goal formulas from
   ``goal_library``), and the instruction with ALFRED's templates
   ("put a clean apple in fridge");
6. keep the task only if Fast Downward (ALFWorld's planner expert) finds a plan,
   storing it as the ``walkthrough``.

Every draw comes from ``random.Random`` seeded by (task type, seed), so the
same seed gives the same task on every machine. A task is saved in ALFWorld's
own trial layout (``traj_data.json``, ``initial_state.pddl``,
``game.tw-pddl``) under ``$STEPRL_CACHE/alfworld`` (default
``~/.cache/steprl/alfworld``), written to a temporary folder and renamed into
place. :func:`export_tasks` copies tasks into a ``json_2.1.1`` tree that
ALFWorld's own loaders (and :mod:`envs.alfworld.data`) read.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from steprl.envs.cache import cache_dir, run_jobs
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "TASK_TYPES", "TASK_TYPE_IDS", "GENERATOR_VERSION", "cache_root", "task_dir", "generate_task",
    "prepare_tasks", "export_tasks", "alfworld_root", "GenerationError",
]

#: ALFWorld's six task types (``alfred_tw_env.TASK_TYPES``), in its order.
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
#: ALFWorld's numeric ids of the task types (its config's ``env.task_types``).
TASK_TYPE_IDS = {name: i + 1 for i, name in enumerate(TASK_TYPES)}
#: Bump when the generator changes what a seed produces (it is part of the cache path).
GENERATOR_VERSION = 1

_SEEN = "seen"
_UNSEEN = "unseen"
_LAMPS = ("DeskLamp", "FloorLamp")
# Receptacles a lamp may stand on (the grammar's ``use`` needs the lamp in a receptacle).
_LAMP_STANDS = ("SideTable", "Desk", "Dresser", "Shelf", "CoffeeTable", "DiningTable", "TVStand", "ArmChair", "Sofa")
# How many instances of a static receptacle type the layouts lack but the room's object list names.
_EXTRA_RECEPTACLE_COUNT = {"StoveBurner": 4}
_MAX_ATTEMPTS = 60
#: Size caps of a generated room (see :func:`_shrink`): receptacles, and object types besides the target.
MAX_RECEPTACLES = 16
MAX_DISTRACTOR_TYPES = 6


class GenerationError(RuntimeError):
    """No valid task could be drawn for a (task type, seed)."""


def alfworld_root() -> Path:
    """The installed ``alfworld`` package folder (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ALFWorld is not installed: pip install 'steprl[alfworld]'")
    return Path(list(spec.submodule_search_locations)[0])


def cache_root() -> Path:
    """Where generated tasks live: ``$STEPRL_CACHE/alfworld`` or ``~/.cache/steprl/alfworld``."""
    return cache_dir("alfworld")


def task_dir(task_type: str, seed: int, rooms: str = _SEEN) -> Path:
    """The cache folder of one generated task (it may not exist yet)."""
    return cache_root() / f"v{GENERATOR_VERSION}" / rooms / task_type / f"seed{seed}"


# -- the shipped engine: constants, domain, grammar, layouts --------------------------------------------------
@lru_cache(maxsize=1)
def _constants():
    from alfworld.gen import constants  # plain data module: no simulator import

    return constants


@lru_cache(maxsize=1)
def _goal_library():
    from alfworld.gen import goal_library

    return goal_library.gdict


@lru_cache(maxsize=1)
def domain_and_grammar() -> tuple[str, str]:
    """ALFWorld's PDDL domain and TextWorld grammar, as shipped."""
    data = alfworld_root() / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


@dataclass(frozen=True)
class _Receptacle:
    id: str  # ALFRED object id, e.g. "Cabinet|+00.68|+00.50|-02.20" or "Sink|...|SinkBasin"
    type: str  # e.g. "Cabinet", "SinkBasin"
    location: tuple[int, int, int, int]  # grid x, grid z, rotation / 90, camera horizon


@dataclass(frozen=True)
class _Room:
    scene: int
    kind: str
    receptacles: tuple[_Receptacle, ...]
    object_types: tuple[str, ...]
    floor: tuple[tuple[int, int], ...]  # navigable grid points


def _scene_kind(scene: int) -> str:
    for kind, scenes in _constants().SCENE_TYPE.items():
        if scene in scenes:
            return kind
    raise ValueError(f"scene {scene} is not an ALFRED scene number")


def _to_grid(x: float) -> int:
    return int(round(x / 0.25))


@lru_cache(maxsize=None)
def _room(scene: int) -> _Room:
    """Receptacles (with the layouts' interaction points), object types and floor grid of a room."""
    import numpy as np

    c = _constants()
    layouts = alfworld_root() / "gen" / "layouts"
    placed = json.loads((layouts / f"FloorPlan{scene}-openable.json").read_text())
    types = json.loads((layouts / f"FloorPlan{scene}-objects.json").read_text())
    floor = tuple(sorted({(_to_grid(x), _to_grid(z)) for x, z in np.load(layouts / f"FloorPlan{scene}-layout.npy")}))
    receptacles = []
    for rid, (x, z, rot, horizon) in sorted(placed.items()):
        rtype = rid.split("|")[-1] if rid.count("|") > 3 else rid.split("|")[0]
        receptacles.append(_Receptacle(rid, rtype, (_to_grid(x), _to_grid(z), int(rot) // 90 % 4, int(horizon))))
    # Static receptacles the room's object list names but the layout file lacks (stove burners,
    # toasters, toilets, ...): give them a floor point of their own, deterministically.
    present = {r.type for r in receptacles}
    static = set(c.RECEPTACLES) - set(c.MOVABLE_RECEPTACLES) - {"PaintingHanger"}
    rng = random.Random(f"room-{scene}")
    for rtype in sorted(set(types) & static - present):
        for k in range(_EXTRA_RECEPTACLE_COUNT.get(rtype, 1)):
            gx, gz = floor[rng.randrange(len(floor))]
            x, z = gx * 0.25, gz * 0.25
            rid = f"{rtype}|{x:+06.2f}|{0.9 + 0.01 * k:+06.2f}|{z:+06.2f}"
            receptacles.append(_Receptacle(rid, rtype, (gx, gz, rng.randrange(4), 30)))
    return _Room(scene, _scene_kind(scene), tuple(receptacles), tuple(sorted(set(types))), floor)


def _portable_types() -> set[str]:
    """Object types that something can hold (ALFRED's ``VAL_RECEPTACLE_OBJECTS``), sliced ones excepted."""
    c = _constants()
    held = set().union(*c.VAL_RECEPTACLE_OBJECTS.values())
    return {t for t in held if "Sliced" not in t and t in c.OBJECTS_SET}


def _can_hold(rtype: str, otype: str) -> bool:
    return otype in _constants().VAL_RECEPTACLE_OBJECTS.get(rtype, ())


def _scenes(task_type: str, rooms: str) -> list[int]:
    c = _constants()
    pool = c.TRAIN_SCENE_NUMBERS if rooms == _SEEN else c.TEST_SCENE_NUMBERS
    kinds = c.GOALS_VALID[task_type]
    layouts = alfworld_root() / "gen" / "layouts"
    return [s for s in sorted(pool) if _scene_kind(s) in kinds and (layouts / f"FloorPlan{s}-openable.json").exists()]


# -- drawing a task -----------------------------------------------------------------------------------------
@dataclass
class _Task:
    task_type: str
    scene: int
    object_target: str
    parent_target: str
    toggle_target: str
    instruction: str
    problem: str
    seed: int
    rooms: str


def _targets(task_type: str, room: _Room, rng: random.Random) -> tuple[str, str, str] | None:
    """(object, receptacle, lamp) types for the task in this room, or None if the room cannot host it."""
    c = _constants()
    rtypes = sorted({r.type for r in room.receptacles})
    objects = sorted(set(room.object_types) & _portable_types() - set(rtypes))
    if task_type == "look_at_obj_in_light":
        lamps = [t for t in _LAMPS if t in room.object_types]
        stands = [r for r in rtypes if r in _LAMP_STANDS]
        if not lamps or not stands:
            return None
        holdable = [o for o in objects if any(_can_hold(r, o) for r in rtypes)]
        if not holdable:
            return None
        return rng.choice(holdable), "", rng.choice(lamps)
    needs = {"pick_clean_then_place_in_recep": ("Cleanable", "SinkBasin"),
             "pick_heat_then_place_in_recep": ("Heatable", "Microwave"),
             "pick_cool_then_place_in_recep": ("Coolable", "Fridge")}
    appliance = None
    if task_type in needs:
        prop, appliance = needs[task_type]
        if appliance not in rtypes:
            return None
        objects = [o for o in objects if o in c.VAL_ACTION_OBJECTS[prop]]
    pairs = [(o, r) for o in objects for r in rtypes if _can_hold(r, o) and r != appliance
             # the object must also have somewhere else to start
             and any(_can_hold(q, o) and q != r for q in rtypes)]
    if not pairs:
        return None
    obj, recep = rng.choice(pairs)
    return obj, recep, ""


def _shrink(room: _Room, task_type: str, obj_t: str, recep_t: str, lamp_t: str, rng: random.Random) -> _Room:
    """Keep at most MAX_RECEPTACLES receptacles: every one the task needs, then a random sample of the rest.

    ALFWorld's planner expert is a uniform-cost search (Fast Downward's lazy search with the g
    evaluator only); its time grows steeply with the number of places and objects, so generated
    rooms are kept at the size of ALFWorld's smaller rooms.
    """
    needed_types = {recep_t, "SinkBasin" if "clean" in task_type else "", "Microwave" if "heat" in task_type else "",
                    "Fridge" if "cool" in task_type else ""} - {""}
    must = [r for r in room.receptacles if r.type in needed_types]
    rest = [r for r in room.receptacles if r.type not in needed_types]
    if len(must) > MAX_RECEPTACLES // 2:
        must = sorted(rng.sample(must, MAX_RECEPTACLES // 2), key=lambda r: r.id)
    # something must be able to hold the target elsewhere, and a lamp stand must stay for light tasks
    hold = [r for r in rest if _can_hold(r.type, obj_t)]
    stands = [r for r in rest if r.type in _LAMP_STANDS] if lamp_t else []
    keep = set(rng.sample(hold, min(2, len(hold)))) | set(rng.sample(stands, min(1, len(stands))))
    others = [r for r in rest if r not in keep]
    room_left = max(0, MAX_RECEPTACLES - len(must) - len(keep))
    keep |= set(rng.sample(others, min(room_left, len(others))))
    chosen = tuple(sorted(set(must) | keep, key=lambda r: r.id))
    return _Room(room.scene, room.kind, chosen, room.object_types, room.floor)


def _object_id(otype: str, recep: _Receptacle, rng: random.Random, taken: set[str]) -> str:
    """An ALFRED-style object id near its receptacle's point (unique in the task)."""
    x0, z0 = recep.location[0] * 0.25, recep.location[1] * 0.25
    while True:
        x, y, z = x0 + rng.uniform(-0.6, 0.6), rng.uniform(0.0, 1.8), z0 + rng.uniform(-0.6, 0.6)
        oid = f"{otype}|{x:+06.2f}|{y:+06.2f}|{z:+06.2f}"
        if oid not in taken:
            taken.add(oid)
            return oid


def _pddl_name(alfred_id: str) -> str:
    """ALFWorld's escaping of ALFRED ids into PDDL names (``PlannedGameState.fix_pddl_str_chars``)."""
    out = alfred_id
    for a, b in (("-", "_minus_"), ("#", "-"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        out = out.replace(a, b)
    return out


def _loc(location: tuple[int, int, int, int]) -> str:
    return _pddl_name("loc|%d|%d|%d|%d" % location)


def _draw(task_type: str, seed: int, rooms: str) -> _Task:
    c = _constants()
    rng = random.Random(f"alfworld-{GENERATOR_VERSION}-{rooms}-{task_type}-{seed}")
    scenes = _scenes(task_type, rooms)
    for _ in range(_MAX_ATTEMPTS):
        room = _room(rng.choice(scenes))
        targets = _targets(task_type, room, rng)
        if targets is None:
            continue
        obj_t, recep_t, lamp_t = targets
        room = _shrink(room, task_type, obj_t, recep_t, lamp_t, rng)
        rtypes = {r.type for r in room.receptacles}
        # Portable objects: up to MAX_DISTRACTOR_TYPES other holdable types of the room, 1-2 instances
        # each; the target 1-3 instances (2-3 for "pick two").
        kinds = sorted(t for t in set(room.object_types) & _portable_types() - rtypes - {obj_t}
                       if any(_can_hold(r, t) for r in rtypes))
        kinds = sorted(rng.sample(kinds, min(len(kinds), MAX_DISTRACTOR_TYPES)))
        counts = {t: rng.randint(1, 2) for t in kinds}
        low = 2 if task_type == "pick_two_obj_and_place" else 1
        counts[obj_t] = rng.randint(low, 3)
        placements: list[tuple[str, str, _Receptacle]] = []  # (pddl object, type, receptacle)
        taken: set[str] = set()
        avoid = {recep_t} if recep_t else set()
        if task_type == "pick_cool_then_place_in_recep":
            avoid.add("Fridge")  # ALFRED counts objects that sat in a fridge as already cool
        ok = True
        for otype in sorted(counts):
            spots = [r for r in room.receptacles if _can_hold(r.type, otype) and not (otype == obj_t and r.type in avoid)]
            if not spots:
                if otype == obj_t:
                    ok = False
                    break
                continue
            for _k in range(counts[otype]):
                recep = rng.choice(spots)
                placements.append((_pddl_name(_object_id(otype, recep, rng, taken)), otype, recep))
        if not ok:
            continue
        lamp = None
        if lamp_t:
            stands = [r for r in room.receptacles if r.type in _LAMP_STANDS]
            recep = rng.choice(stands)
            lamp = (_pddl_name(_object_id(lamp_t, recep, rng, taken)), lamp_t, recep)
        occupied = {r.location[:2] for r in room.receptacles}
        free = [p for p in room.floor if p not in occupied] or list(room.floor)
        gx, gz = rng.choice(free)
        start = (gx, gz, rng.randrange(4), 30)
        template = rng.choice(_goal_library()[task_type]["templates"])
        instruction = template.format(obj=obj_t.lower(), recep=recep_t.lower(), toggle=lamp_t.lower(), mrecep="")
        problem = _problem_pddl(task_type, seed, room, placements, lamp, start, obj_t, recep_t, lamp_t)
        return _Task(task_type, room.scene, obj_t, recep_t, lamp_t, instruction, problem, seed, rooms)
    raise GenerationError(f"no valid {task_type} task for seed {seed} in {rooms} rooms after {_MAX_ATTEMPTS} draws")


def _problem_pddl(task_type: str, seed: int, room: _Room, placements, lamp, start, obj_t, recep_t, lamp_t) -> str:
    """The problem in the layout of ALFWorld's ``initial_state.pddl``."""
    c = _constants()
    static_rtypes = sorted(set(c.RECEPTACLES) - set(c.MOVABLE_RECEPTACLES))
    otypes = sorted((set(c.OBJECTS) | set(c.MOVABLE_RECEPTACLES)) - set(static_rtypes))
    things = list(placements) + ([lamp] if lamp else [])
    receps = sorted(room.receptacles, key=lambda r: r.id)
    locations = sorted({_loc(r.location) for r in receps} | {_loc(start)})
    objects_block = (["agent1 - agent"] + [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in static_rtypes]
                     + sorted(f"{name} - object" for name, _, _ in things)
                     + [f"{_pddl_name(r.id)} - receptacle" for r in receps] + [f"{loc} - location" for loc in locations])
    room_otypes = sorted({t for _, t, _ in placements})
    init = []
    init += [f"(receptacleType {_pddl_name(r.id)} {r.type}Type)" for r in receps]
    init += [f"(objectType {name} {t}Type)" for name, t, _ in things]
    init += [f"(canContain {rt}Type {ot}Type)" for rt in sorted({r.type for r in receps}) for ot in room_otypes
             if _can_hold(rt, ot)]
    init += [f"(pickupable {name})" for name, _, _ in placements]
    init += [f"(isReceptacleObject {name})" for name, t, _ in placements if t in c.MOVABLE_RECEPTACLES_SET]
    init += [f"(openable {_pddl_name(r.id)})" for r in receps if r.type in c.OPENABLE_CLASS_SET]
    init += [f"(atLocation agent1 {_loc(start)})"]
    # As in ALFWorld's problems, only the target type and the movable receptacles (bowls, mugs, pans, ...)
    # carry the clean/heat/cool properties; nothing is sliceable (ALFWorld leaves sliced tasks out).
    # This also keeps the planner's search small.
    relevant = {obj_t} | set(c.MOVABLE_RECEPTACLES)
    for prop, pred in (("Cleanable", "cleanable"), ("Heatable", "heatable"), ("Coolable", "coolable")):
        init += [f"({pred} {name})" for name, t, _ in placements if t in c.VAL_ACTION_OBJECTS[prop] and t in relevant]
    if lamp:
        init += [f"(toggleable {lamp[0]})"]
    init += [f"(inReceptacle {name} {_pddl_name(r.id)})" for name, _, r in things]
    init += [f"(receptacleAtLocation {_pddl_name(r.id)} {_loc(r.location)})" for r in receps]
    init += [f"(objectAtLocation {name} {_loc(r.location)})" for name, _, r in things]
    goal = _goal_library()[task_type]["pddl"].format(obj=obj_t, recep=recep_t, toggle=lamp_t, mrecep="")
    goal = goal.replace("#", "-")
    sep = "\n        "
    return (f"\n(define (problem plan_steprl_{task_type}_{seed})\n(:domain alfred)\n(:objects\n        "
            f"{sep.join(objects_block)}\n        )\n\n(:init\n        {sep.join(init)}\n        )\n\n{goal}")


# -- solving, saving, loading --------------------------------------------------------------------------------------
def grammar_with_task(instruction: str) -> str:
    """ALFWorld's grammar with the task sentence filled in (``add_task_to_grammar``)."""
    return domain_and_grammar()[1].replace("UNKNOWN GOAL", instruction)


def _solve(game: dict[str, Any]) -> tuple[list[str] | None, bool]:
    """(planner walkthrough or None, goal already true at the start)."""
    env = _solver()
    env.load(game)
    state = env.reset()
    return (list(state["policy_commands"]) or None), bool(state["won"])


@lru_cache(maxsize=1)
def _solver():
    """One planner-backed engine per process (each holds its own copy of Fast Downward's library).

    The walkthrough is written with ALFWorld's demangled names (``take apple 1 from countertop 1``),
    as ``alfworld-generate`` writes it.
    """
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs import PddlEnv

    return AlfredDemangler(PddlEnv(textworld.EnvInfos(policy_commands=True, admissible_commands=True)), shuffle=False)


def _traj_data(task: _Task) -> dict[str, Any]:
    """The fields of ALFRED's ``traj_data.json`` that ALFWorld reads (plus provenance)."""
    return {
        "task_type": task.task_type,
        "task_id": f"trial_steprl_{task.rooms}_{task.seed:06d}",
        "pddl_params": {"object_target": task.object_target, "parent_target": task.parent_target,
                        "toggle_target": task.toggle_target, "mrecep_target": "", "object_sliced": False},
        "scene": {"floor_plan": f"FloorPlan{task.scene}", "scene_num": task.scene},
        "turk_annotations": {"anns": [{"task_desc": task.instruction[:1].upper() + task.instruction[1:] + "."}]},
        "steprl": {"generator_version": GENERATOR_VERSION, "seed": task.seed, "rooms": task.rooms},
    }


def generate_task(task_type: str, seed: int, rooms: str = _SEEN) -> Path:
    """Return the folder of one task (``traj_data.json``, ``initial_state.pddl``, ``game.tw-pddl``), generating it if needed.

    Args:
        task_type: one of :data:`TASK_TYPES`.
        seed: the task seed; same seed, same task.
        rooms: ``"seen"`` (ALFRED's train scenes) or ``"unseen"`` (its held-out scenes).
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown ALFWorld task type {task_type!r}; choose one of {TASK_TYPES}")
    if rooms not in (_SEEN, _UNSEEN):
        raise ValueError(f"rooms={rooms!r} must be 'seen' or 'unseen'")
    path = task_dir(task_type, seed, rooms)
    if (path / "game.tw-pddl").exists():
        return path
    domain, _ = domain_and_grammar()
    # Draw until the planner solves it: sub-seeds keep the result a pure function of (type, seed).
    for attempt in range(_MAX_ATTEMPTS):
        task = _draw(task_type, seed if attempt == 0 else seed * 1000 + 10_000_000 + attempt, rooms)
        game = {"pddl_domain": domain, "grammar": grammar_with_task(task.instruction), "pddl_problem": task.problem,
                "solvable": None, "walkthrough": None}
        try:
            walkthrough, already_won = _solve(game)
        except (KeyError, ValueError, AssertionError):  # a problem TextWorld's PDDL engine cannot load: redraw
            continue
        if walkthrough and not already_won:
            break
    else:
        raise GenerationError(f"no solvable {task_type} task for seed {seed} after {_MAX_ATTEMPTS} draws")
    task.seed = seed
    game["solvable"], game["walkthrough"] = True, walkthrough
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".seed{seed}-", dir=path.parent))
    try:
        (tmp / "traj_data.json").write_text(json.dumps(_traj_data(task), indent=1))
        (tmp / "initial_state.pddl").write_text(task.problem)
        (tmp / "game.tw-pddl").write_text(json.dumps(game))
        try:
            os.rename(tmp, path)
        except OSError:  # another process generated it first
            if not (path / "game.tw-pddl").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _generate_job(job: tuple[str, int, str]) -> str:
    return str(generate_task(*job))


def prepare_tasks(jobs: Iterable[tuple[str, int, str]], workers: int | None = None, progress: bool = True) -> list[Path]:
    """Generate many tasks (skipping cached ones) over ``workers`` processes, with a progress bar."""
    jobs = [(t, int(s), r) for t, s, r in jobs]
    todo = [j for j in jobs if not (task_dir(*j) / "game.tw-pddl").exists()]
    run_jobs(_generate_job, todo, desc="generating ALFWorld tasks", unit="task", workers=workers, progress=progress)
    return [task_dir(*j) for j in jobs]


def export_tasks(out_dir: str | os.PathLike, tasks: Sequence[tuple[str, Path]]) -> Path:
    """Copy generated tasks into ALFWorld's released layout and return the ``json_2.1.1`` folder.

    ``tasks`` holds (ALFWorld split, task folder) pairs, the split being ``train``,
    ``valid_seen`` or ``valid_unseen``. Each task lands in
    ``json_2.1.1/<split>/<task_type>-<Object>-<Mrecep>-<Parent>-<scene>/trial_<id>/``
    (the ``-None-`` and the scene number as in ALFRED's folder names).
    """
    root = Path(out_dir) / "json_2.1.1"
    for split, folder in tasks:
        traj = json.loads((Path(folder) / "traj_data.json").read_text())
        p = traj["pddl_params"]
        name = "-".join([traj["task_type"], p["object_target"], p["mrecep_target"] or "None",
                         p["parent_target"] or p["toggle_target"], str(traj["scene"]["scene_num"])])
        dest = root / split / name / traj["task_id"]
        dest.mkdir(parents=True, exist_ok=True)
        for file in ("traj_data.json", "initial_state.pddl", "game.tw-pddl"):
            shutil.copyfile(Path(folder) / file, dest / file)
    return root
