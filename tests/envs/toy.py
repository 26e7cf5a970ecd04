"""Tiny text envs for unit tests of the env machinery (not stand-ins for real envs)."""

from __future__ import annotations

import numpy as np

from steprl import envs


class CorridorEnv(envs.TextEnv):
    """Walk ``length`` rooms east to win; 'west' goes back. Task seed sets the length."""

    def _load_task(self, task_seed: int) -> None:
        self.length = 2 + task_seed % 4

    def _obs(self) -> tuple[str, dict]:
        text = f"You are in room {self.pos} of {self.length}."
        actions = ["east"] + (["west"] if self.pos > 0 else [])
        return text, {"task": f"Reach room {self.length}.", "admissible_actions": actions, "anchor": text,
                      "expert_action": "east"}

    def _reset_task(self, rng: np.random.Generator) -> tuple[str, dict]:
        self.pos = 0
        return self._obs()

    def _step_action(self, action: str):
        if action not in ("east", "west") or (action == "west" and self.pos == 0):
            return self.invalid_action()
        self.pos += 1 if action == "east" else -1
        obs, info = self._obs()
        done = self.pos == self.length
        if done:
            info["success"] = True
        return obs, float(done), done, False, info


class CrashingEnv(CorridorEnv):
    """A corridor whose ``crash_at``-th step raises (to test that a crash ends only its episode)."""

    def __init__(self, crash_at: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.crash_at = crash_at
        self.steps = 0

    def _reset_task(self, rng):
        self.steps = 0
        return super()._reset_task(rng)

    def _step_action(self, action: str):
        self.steps += 1
        if self.steps == self.crash_at:
            raise RuntimeError("simulated env crash")
        return super()._step_action(action)


class FlakyResetEnv(CorridorEnv):
    """A corridor whose reset raises once for each task listed in ``FlakyResetEnv.fail_once`` (this process)."""

    fail_once: set[int] = set()

    def _reset_task(self, rng):
        if self.task_seed in FlakyResetEnv.fail_once:
            FlakyResetEnv.fail_once.discard(self.task_seed)
            raise RuntimeError("simulated flaky reset")
        return super()._reset_task(rng)


class SlowEnv(CorridorEnv):
    """A corridor whose steps sleep ``delay`` seconds (to show who waits for whom, not to time anything)."""

    def __init__(self, delay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay

    def _step_action(self, action: str):
        import time

        time.sleep(self.delay)
        return super()._step_action(action)


envs.register("toy/Corridor-v0", CorridorEnv, description="test corridor", max_episode_steps=20)
envs.register("toy/Crashing-v0", CrashingEnv, description="test corridor that crashes", max_episode_steps=20)
envs.register("toy/FlakyReset-v0", FlakyResetEnv, description="test corridor with a flaky reset", max_episode_steps=20)
envs.register("toy/Slow-v0", SlowEnv, description="test corridor with slow steps", max_episode_steps=20)
