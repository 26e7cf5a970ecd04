"""The run directory: its layout, its saved config, atomic checkpoints, and resume from the latest one.

The one module that knows where a run keeps things; the trainer writes through it
and ``steprl eval`` reads through it. Layout::

    RUN_DIR/config.yaml          the run's config (RunConfig), written when the run starts
    RUN_DIR/metrics.jsonl        one record per iteration (trainer.loop.MetricsLogger)
    RUN_DIR/episodes/            saved episodes, iter_NNNNNN.jsonl
    RUN_DIR/checkpoints/iter_000012/
        model/        the policy: a LoRA adapter (peft format) or a full HF model folder
        state.pt      components' state dicts (optimizer, scheduler, heads, …), RNG states, extra state
        meta.json     iteration, time, component names, and the sha256 of every other file

Integrity: ``meta.json`` records each file's size and sha256 at save time.
:func:`verify_checkpoint` checks them; :func:`load_latest` (``steprl train
--resume``) and :func:`latest_intact` (``steprl eval RUN``) skip a checkpoint
whose files were truncated or changed, with a warning naming it, and take the
newest intact one; :class:`CheckpointCorrupt` when none is intact.

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

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "RUN_CONFIG",
    "is_run_dir",
    "is_checkpoint_dir",
    "run_dir_of",
    "write_run_config",
    "read_run_config",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_latest",
    "list_checkpoints",
    "latest_intact",
    "verify_checkpoint",
    "CheckpointCorrupt",
    "capture_rng_state",
    "restore_rng_state",
]

RUN_CONFIG = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
MODEL_DIR = "model"
_PREFIX = "iter_"
_META = "meta.json"


# -- the run directory ----------------------------------------------------------------
def is_run_dir(path: str | Path) -> bool:
    """A run directory: it holds the run's ``config.yaml``."""
    return (Path(path) / RUN_CONFIG).is_file()


def is_checkpoint_dir(path: str | Path) -> bool:
    """One checkpoint directory (``RUN_DIR/checkpoints/iter_NNNNNN``)."""
    path = Path(path)
    return (path / MODEL_DIR).is_dir() and (path / _META).is_file()


def run_dir_of(checkpoint_dir: str | Path) -> Path:
    """The run directory a checkpoint directory belongs to."""
    return Path(checkpoint_dir).parent.parent


def write_run_config(run_dir: str | Path, config) -> Path:
    """Save a :class:`~trainer.run_config.RunConfig` as ``RUN_DIR/config.yaml``."""
    import yaml

    path = Path(run_dir) / RUN_CONFIG
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def read_run_config(run_dir: str | Path):
    """The run's saved :class:`~trainer.run_config.RunConfig`, validated (a ``ValueError`` names the bad field).

    The credit section is read as saved but not checked against this process's
    estimator registry: a run trained with an estimator registered in the user's own
    code is still readable (evaluation does not use it).
    """
    import yaml
    from pydantic import ValidationError

    from steprl.trainer.run_config import RunConfig

    path = Path(run_dir) / RUN_CONFIG
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a run config (a mapping)")
    credit = data.pop("credit", None)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from None
    if credit is not None:
        from steprl.credit.config import CreditConfig

        config.credit = CreditConfig.model_construct(**credit)
    return config


class CheckpointCorrupt(FileNotFoundError):
    """No intact checkpoint where one was asked for (each failed :func:`verify_checkpoint`)."""


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
            "files": _file_digests(tmp),
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_digests(directory: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"bytes": n, "sha256": hex}}`` for every file under ``directory`` but meta.json."""
    out = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel != _META:
            out[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    return out


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


def verify_checkpoint(path: str | Path) -> str | None:
    """Why the checkpoint at ``path`` is not intact, or None when its files match what was saved.

    Compares every file's size and sha256 with those ``meta.json`` recorded at save.
    A checkpoint written before checksums were recorded is taken as intact if its
    ``state.pt`` is present (it cannot be checked further).
    """
    path = Path(path)
    try:
        meta = json.loads((path / _META).read_text())
    except FileNotFoundError:
        return f"{_META} is missing"
    except (OSError, ValueError) as exc:
        return f"{_META} is unreadable ({exc})"
    files = meta.get("files")
    if files is None:
        return None if (path / "state.pt").is_file() else "state.pt is missing"
    for rel, want in files.items():
        file = path / rel
        if not file.is_file():
            return f"{rel} is missing"
        size = file.stat().st_size
        if size != want["bytes"]:
            return f"{rel} has {size} bytes, {want['bytes']} were saved"
        if _sha256(file) != want["sha256"]:
            return f"{rel} does not match its saved sha256"
    return None


def latest_intact(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run that passes :func:`verify_checkpoint`; None when the run has none.

    Each newer checkpoint skipped gets a warning naming it and what is wrong;
    :class:`CheckpointCorrupt` when there are checkpoints but none is intact.
    """
    paths = list_checkpoints(run_dir)
    bad = []
    for path in reversed(paths):
        problem = verify_checkpoint(path)
        if problem is None:
            for skipped, why in bad:
                warnings.warn(f"checkpoint {skipped} is corrupt ({why}); using {path.name} instead", stacklevel=2)
            return path
        bad.append((path, problem))
    if bad:
        listing = "; ".join(f"{p.name}: {why}" for p, why in bad)
        raise CheckpointCorrupt(f"no intact checkpoint in {Path(run_dir) / CHECKPOINT_DIR} ({listing})")
    return None


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
    """The newest intact checkpoint of a run (see :func:`latest_intact`), or None if it has none."""
    path = latest_intact(run_dir)
    return load_checkpoint(path, map_location) if path is not None else None
