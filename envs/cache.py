"""The on-disk cache of generated games and tasks, and generating them over worker processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "run_jobs"]


def cache_dir(family: str) -> Path:
    """Where a family's generated artifacts live: ``$STEPRL_CACHE/<family>`` or ``~/.cache/steprl/<family>``."""
    base = os.environ.get("STEPRL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "steprl")
    return Path(base) / family


def run_jobs(fn: Callable[[Any], Any], todo: Sequence[Any], *, desc: str, unit: str,
             workers: int | None = None, progress: bool = True) -> None:
    """Call ``fn(job)`` for every job, in ``workers`` processes (default: one per core, at most one per job).

    ``fn`` must be a module-level function (it is pickled to the workers). With one
    worker the jobs run in this process. Exceptions propagate.
    """
    if not todo:
        return
    from tqdm.auto import tqdm

    workers = workers or min(len(todo), os.cpu_count() or 1)
    with tqdm(total=len(todo), desc=desc, unit=unit, disable=not progress) as bar:
        if workers <= 1:
            for job in todo:
                fn(job)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(fn, todo):
                    bar.update()
