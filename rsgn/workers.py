"""Process-pool workers that do not outlive the process that started them.

A ``ProcessPoolExecutor`` worker whose parent is killed (``kill``, a lost terminal) finishes
the task it is running, here a training of minutes to hours, before it notices.
:func:`watched_pool` is the pool ``rsgn sweep`` and the studies train in: its workers run
:func:`exit_with_parent` and end within seconds of their parent instead.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def exit_with_parent(parent: int, period: float = 5.0) -> None:
    """Pool-worker initializer: a daemon thread polls ``os.getppid()`` every ``period``
    seconds and ends this worker (``os._exit(3)``, exit status 3) once it differs from
    ``parent``, i.e. once the process that started the worker is gone (the worker is
    re-parented). A run-folder lock the worker held is then stale and is taken over by the
    next invocation (``rsgn.training``)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period)
        os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def watched_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (a fresh interpreter each: no forked torch or
    numba thread state), each running :func:`exit_with_parent` for this process."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )
