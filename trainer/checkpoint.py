"""Atomic checkpoints of a run, and resume from the latest one.

Layout::

    RUN_DIR/checkpoints/iter_000012/
        model/        the policy: a LoRA adapter (peft format) or a full HF model folder
        state.pt      components' state dicts (optimizer, scheduler, heads, …), RNG states, extra state
        meta.json     iteration, time, component names (human-readable)

Atomicity: everything is written into a temporary directory next to the final
one (``checkpoints/.tmp-…``), files are fsynced, and the directory is renamed
into place with ``os.replace``, so ``iter_*`` directories are always complete:
a crash mid-save leaves the previous checkpoints untouched and loadable, and
at worst a ``.tmp-*`` directory that the next save removes. Only the last
``keep_last`` checkpoints are kept.

``state.pt`` is a pickle (numpy's RNG state is not a tensor): load checkpoints
you wrote yourself.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_latest",
    "list_checkpoints",
    "capture_rng_state",
    "restore_rng_state",
]

CHECKPOINT_DIR = "checkpoints"
_PREFIX = "iter_"


def capture_rng_state() -> dict:
    """Python, numpy, torch CPU and (when present) CUDA RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping) -> None:
    """Restore what :func:`capture_rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# -- saving ---------------------------------------------------------------------
def save_checkpoint(
    run_dir: str | Path,
    iteration: int,
    *,
    policy=None,
    components: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    keep_last: int | None = 3,
) -> Path:
    """Write ``RUN_DIR/checkpoints/iter_{iteration:06d}`` atomically and prune old checkpoints.

    Args:
        run_dir: the run directory.
        iteration: the number of completed iterations (what resume continues after).
        policy: a :class:`~trainer.policy.Policy` (its ``save``): LoRA adapter or full weights.
        components: objects with ``state_dict()`` / ``load_state_dict()``, by
            name, e.g. ``{"trainer": policy_trainer, "value_head": value_head}``.
        extra: any picklable state (metrics history, sampler seeds, config …).
        keep_last: keep this many newest checkpoints (None = all).

    Returns:
        The checkpoint directory.
    """
    if iteration < 0:
        raise ValueError(f"iteration={iteration} must be >= 0")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last={keep_last} must be >= 1 or None")
    components = dict(components or {})
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    final = root / f"{_PREFIX}{iteration:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        if policy is not None:
            _write_model(policy, tmp / "model")
        _write_state(
            tmp / "state.pt",
            {
                "iteration": iteration,
                "components": {name: obj.state_dict() for name, obj in components.items()},
                "rng": capture_rng_state(),
                "extra": dict(extra or {}),
            },
        )
        meta = {
            "iteration": iteration,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "components": sorted(components),
            "model": None if policy is None else ("lora_adapter" if policy.is_lora else "full"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        _fsync_tree(tmp)
        if final.exists():  # re-saving an iteration (e.g. after a resume): move the old one aside first
            os.replace(final, root / f".old-{final.name}-{os.getpid()}")
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_leftovers(root)
    if keep_last is not None:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_model(policy, directory: Path) -> None:
    policy.save(directory)


def _write_state(path: Path, state: dict) -> None:
    with open(path, "wb") as f:
        torch.save(state, f)


def _fsync_tree(directory: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_leftovers(root: Path) -> None:
    """Delete temp dirs of interrupted saves and checkpoints moved aside (one writer per run directory)."""
    for path in root.iterdir():
        if path.name.startswith((".tmp-", ".old-")) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


# -- loading ----------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A loaded checkpoint. Call :meth:`restore` to put its state back into live objects.

    Attributes:
        path: the ``iter_*`` directory.
        iteration: completed iterations at save time.
        extra: the ``extra`` mapping given to :func:`save_checkpoint`.
        components: state dicts by component name.
        rng: RNG states (see :func:`capture_rng_state`).
    """

    path: Path
    iteration: int
    extra: dict = field(default_factory=dict)
    components: dict = field(default_factory=dict)
    rng: dict | None = None

    @property
    def model_dir(self) -> Path | None:
        """The saved policy weights (``model/``), or None if no policy was saved."""
        model = self.path / "model"
        return model if model.is_dir() else None

    def restore(self, policy=None, components: Mapping[str, Any] | None = None, rng: bool = True) -> None:
        """Load the saved weights into ``policy``, state dicts into ``components``, and the RNG states.

        ``policy`` must be built the same way as the saved one (same base model,
        same LoRA settings); its weights are overwritten.
        """
        if policy is not None:
            if self.model_dir is None:
                raise ValueError(f"checkpoint {self.path} holds no model weights")
            policy.load_weights(self.model_dir)
        for name, obj in (components or {}).items():
            if name not in self.components:
                raise KeyError(f"checkpoint {self.path} has no component {name!r}; it has {sorted(self.components)}")
            obj.load_state_dict(self.components[name])
        if rng and self.rng is not None:
            restore_rng_state(self.rng)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint directories of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith(_PREFIX) and path.name[len(_PREFIX):].isdigit():
            found.append((int(path.name[len(_PREFIX):]), path))
    return [path for _iteration, path in sorted(found)]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read one checkpoint directory (weights stay on disk until :meth:`Checkpoint.restore`)."""
    path = Path(path)
    state_file = path / "state.pt"
    if not state_file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint (no state.pt)")
    state = torch.load(state_file, map_location=map_location, weights_only=False)
    return Checkpoint(
        path=path,
        iteration=int(state["iteration"]),
        extra=state.get("extra", {}),
        components=state.get("components", {}),
        rng=state.get("rng"),
    )


def load_latest(run_dir: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint | None:
    """The newest complete checkpoint of a run, or None if it has none."""
    paths = list_checkpoints(run_dir)
    return load_checkpoint(paths[-1], map_location) if paths else None
