"""``check_env``: the environment contract of ARCHITECTURE.md, as code.

Raises :class:`EnvContractError` naming the first broken rule. Checks:
text spaces that admit any string; ``reset`` → ``(str, dict)`` with the
required info keys; ``step`` → 5-tuple with the right types and
``valid_action``; bad actions (empty, huge, unicode, control characters,
non-strings) never raise and come back ``valid_action=False`` without ending
the episode; same seed and same actions ⇒ same observations; ``success`` is
set when an episode ends.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from steprl.envs.core import RESET_INFO_KEYS, STEP_INFO_KEYS

__all__ = ["check_env", "EnvContractError", "bad_actions"]


class EnvContractError(AssertionError):
    """An env broke the steprl environment contract."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise EnvContractError(message)


def bad_actions(n: int = 300, seed: int = 0) -> list[Any]:
    """``n`` malformed actions: empty, whitespace, 10 kB, unicode, control chars, random bytes."""
    rng = np.random.default_rng(seed)
    fixed: list[Any] = ["", " ", "\n\t", "x" * 10_000, "🙂" * 50, "ünïcödé ☃ 日本語", "\x00\x01\x02", "go\x07 east",
                        "\u202e\u200b", "<action></action>", "{}", "None", "\\", "'; DROP TABLE", "%s%n"]
    out: list[Any] = []
    while len(out) < n:
        if len(out) < len(fixed):
            out.append(fixed[len(out)])
            continue
        kind = int(rng.integers(4))
        length = int(rng.integers(0, 60))
        if kind == 0:  # random printable ASCII gibberish
            out.append("".join(chr(c) for c in rng.integers(33, 127, size=length)) + "zq")
        elif kind == 1:  # random unicode
            out.append("".join(chr(c) for c in rng.integers(0x80, 0x2FFF, size=length + 1)))
        elif kind == 2:  # control characters
            out.append("".join(chr(c) for c in rng.integers(0, 32, size=length + 1)))
        else:
            out.append("q" * int(rng.integers(5_000, 12_000)))
    return out


def _check_step(result: Any, where: str) -> tuple[str, float, bool, bool, dict]:
    _require(isinstance(result, tuple) and len(result) == 5, f"{where}: step must return a 5-tuple, got {type(result)}")
    obs, reward, terminated, truncated, info = result
    _require(isinstance(obs, str), f"{where}: observation must be str, got {type(obs).__name__}")
    _require(isinstance(reward, (int, float, np.floating)), f"{where}: reward must be a number, got {reward!r}")
    _require(isinstance(terminated, (bool, np.bool_)) and isinstance(truncated, (bool, np.bool_)),
             f"{where}: terminated/truncated must be bools")
    _require(isinstance(info, dict), f"{where}: info must be a dict")
    missing = [k for k in STEP_INFO_KEYS if k not in info]
    _require(not missing, f"{where}: info lacks required keys {missing}")
    if terminated or truncated:
        _require("success" in info, f"{where}: info must carry 'success' when the episode ends")
    return obs, float(reward), bool(terminated), bool(truncated), info


def _pick_action(info: dict, rng: np.random.Generator) -> str:
    """A random admissible action; where the env lists none, its expert's action, else an empty (invalid) one."""
    admissible = info.get("admissible_actions")
    if admissible:
        return admissible[int(rng.integers(len(admissible)))]
    return info.get("expert_action") or ""


def check_env(env: gymnasium.Env, *, num_bad_actions: int = 30, max_steps: int = 20, seed: int = 123) -> None:
    """Verify ``env`` follows the steprl environment contract; raise on the first violation.

    Args:
        env: a text env (wrapped or not).
        num_bad_actions: how many malformed actions to try (the acceptance
            test of the fuzzing bar uses 300).
        max_steps: length of the random-action episodes used for determinism.
        seed: seed of the episodes and of the action choices.
    """
    name = getattr(env.spec, "id", None) or type(env.unwrapped).__name__
    for space_name in ("observation_space", "action_space"):
        space = getattr(env, space_name)
        _require(isinstance(space, gymnasium.spaces.Text), f"{name}: {space_name} must be a gymnasium.spaces.Text")
        _require(space.contains("Hello, world! ünïcödé"), f"{name}: {space_name} must admit any text (punctuation, unicode)")

    obs, info = env.reset(seed=seed)
    _require(isinstance(obs, str), f"{name}: reset must return a str observation, got {type(obs).__name__}")
    _require(isinstance(info, dict), f"{name}: reset must return an info dict")
    missing = [k for k in RESET_INFO_KEYS if k not in info]
    _require(not missing, f"{name}: reset info lacks required keys {missing}")
    _require(isinstance(info["task"], str) and info["task"].strip() != "", f"{name}: info['task'] must be non-empty text")
    adm = info["admissible_actions"]
    _require(adm is None or (isinstance(adm, list) and all(isinstance(a, str) for a in adm)),
             f"{name}: info['admissible_actions'] must be a list of str or None")
    _require(info["anchor"] is not None and info["anchor"] != "", f"{name}: info['anchor'] must be set")
    _require(obs.isprintable() or all(c.isprintable() or c in "\n\t" for c in obs), f"{name}: observation has control characters")

    # Malformed actions: never raise, valid_action False, the episode continues.
    anchor_before = info["anchor"]
    for i, action in enumerate(bad_actions(num_bad_actions, seed) + [None, 42, b"bytes"]):
        try:
            result = env.step(action)
        except Exception as exc:  # noqa: BLE001 - the contract is 'never raises'
            raise EnvContractError(f"{name}: step({action!r:.40}) raised {type(exc).__name__}: {exc}") from exc
        _, _, terminated, truncated, step_info = _check_step(result, f"{name}: bad action #{i} {action!r:.40}")
        _require(step_info["valid_action"] is False, f"{name}: bad action {action!r:.40} was reported valid")
        if truncated and not terminated:
            env.reset(seed=seed)  # a time limit may cut in; that is allowed
            continue
        _require(not terminated, f"{name}: bad action {action!r:.40} ended the episode")
        _require(step_info["anchor"] == anchor_before, f"{name}: bad action {action!r:.40} changed the anchor state")

    # Determinism: same seed, same actions ⇒ same observations.
    def rollout() -> list[str]:
        rng = np.random.default_rng(seed)
        obs, info = env.reset(seed=seed)
        seen = [obs, info["task_id"]]
        for t in range(max_steps):
            obs, reward, terminated, truncated, info = _check_step(env.step(_pick_action(info, rng)), f"{name}: step {t}")
            seen += [obs, repr(reward)]
            if terminated or truncated:
                break
        return seen

    first, second = rollout(), rollout()
    _require(first == second, f"{name}: same seed and actions gave different observations (first differs at item "
             f"{next(i for i, (a, b) in enumerate(zip(first, second)) if a != b) if first[:len(second)] != second[:len(first)] else min(len(first), len(second))})")

    # Splits, when the env has them: disjoint seed sets.
    base = env.unwrapped
    ranges = getattr(base, "split_ranges", None)
    if ranges:
        names = list(ranges)
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                ra, rb = ranges[names[a]], ranges[names[b]]
                _require(max(ra.start, rb.start) >= min(ra.stop, rb.stop),
                         f"{name}: splits {names[a]!r} and {names[b]!r} share task seeds")
