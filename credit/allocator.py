"""Keep freed memory in the process heap, so numpy temporaries do not page-fault.

Every estimator makes a dozen temporary arrays of one float per step row. With
glibc's default malloc, arrays above the (dynamic) mmap threshold are mapped fresh
from the kernel and returned on free, and the heap top is trimmed back to the OS;
each new temporary then costs one page fault per 4 KiB. At 100k rows that is most
of GiGPO's time (measured in ``benchmarks/credit_speed.py``: 25 ms → 10 ms on a
shared 2-core machine). ``tune_allocator()`` raises glibc's mmap threshold to its
maximum (32 MiB) and its trim threshold to 1 GiB, so freed blocks are reused; the
cost is that up to that much freed memory stays with the process. It changes the
whole process, so only ``steprl train`` calls it (after its config loads); other
commands and library use leave malloc alone. Call it yourself when you use
``credit`` on large batches in your own trainer. Setting ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in the
environment does the same for any process. On other C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_applied: bool | None = None


def tune_allocator(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Apply the two ``mallopt`` settings once per process; True if glibc took them."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    return _applied
