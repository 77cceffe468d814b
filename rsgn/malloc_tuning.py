"""Keep large freed tensors in the process heap instead of returning them to the kernel.

glibc serves allocations above its mmap threshold (at most 32 MiB by default) with fresh
``mmap`` pages and unmaps them on free, so every large temporary tensor is page-faulted and
zeroed again. On the CPU a sparse RSGN step at N >= 65k allocates many 100+ MiB temporaries;
measured on the 2-core CI machine (N = 65,536, batch 64, one forward): 10.9 s with the glibc
defaults, 4.5 s with the thresholds raised (the same effect as ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` in the environment). The rsgn command line and the benchmarks call
:func:`tune_malloc` once at start; set ``RSGN_NO_MALLOC_TUNING=1`` to opt out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_INT_MAX = 2**31 - 1


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds (Linux/glibc only). Returns True if applied."""
    if os.environ.get("RSGN_NO_MALLOC_TUNING") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _INT_MAX) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    ok &= mallopt(_M_TOP_PAD, 256 << 20) == 1
    return bool(ok)
