"""rsgn.workers: a pool worker whose parent is gone stops (exit_with_parent); the watched pool
runs it in every worker; the sweep engine and both studies train in that pool."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsgn import workers
from rsgn.workers import watched_pool

ROOT = Path(__file__).resolve().parents[1]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _orphan_pid(watch: bool) -> tuple[int, subprocess.Popen]:
    """Start parent -> child; the child (exit_with_parent(parent) when ``watch``) reports
    ready; kill the parent and return the child's pid."""
    call = "exit_with_parent(os.getppid(), 0.05); " if watch else ""
    child = (
        "import os, time; from rsgn.workers import exit_with_parent; "
        f"{call}print('ready', flush=True); time.sleep(30)"
    )
    parent = (
        "import subprocess, sys, time; "
        f"c = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE, "
        "text=True); assert c.stdout.readline().strip() == 'ready'; "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    p = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    pid = int(p.stdout.readline())
    p.kill()
    p.wait()
    return pid, p


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_worker_exits_once_its_parent_is_gone() -> None:
    pid, _ = _orphan_pid(watch=True)
    deadline = time.monotonic() + 20
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _running(pid)
    if alive:
        os.kill(pid, 9)
    assert not alive, "the worker outlived its parent"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_without_the_watcher_the_orphan_keeps_running() -> None:
    """The control: the same orphan without exit_with_parent is still alive a second later
    (so the test above measures the watcher, not the orphan's own end)."""
    pid, _ = _orphan_pid(watch=False)
    time.sleep(1.0)
    alive = _running(pid)
    os.kill(pid, 9)
    assert alive


def _watcher_parent() -> int | None:
    """In a pool worker: the parent pid its exit-with-parent thread watches, or None."""
    import threading

    return next((os.getppid() for t in threading.enumerate() if t.name == "exit-with-parent"), None)


def test_a_watched_pool_worker_watches_its_parent() -> None:
    with watched_pool(1) as pool:
        assert pool.submit(_watcher_parent).result(timeout=120) == os.getpid()


class _Refused(Exception):
    pass


def _recording(calls: list[int]):
    def make(workers: int):
        calls.append(workers)
        raise _Refused

    return make


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_the_sweep_trains_in_a_watched_pool(tmp_path, monkeypatch) -> None:
    from rsgn import sweep

    calls: list[int] = []
    monkeypatch.setattr(workers, "watched_pool", _recording(calls))
    with pytest.raises(_Refused):
        sweep._run_local([object(), object()], str(tmp_path), workers=2, hook=lambda u, r: None)
    assert calls == [2]


def test_the_paper_study_trains_in_a_watched_pool(tmp_path, monkeypatch) -> None:
    study = _load(ROOT / "studies" / "paper_reproduction" / "run.py", "prr_workers")
    calls: list[int] = []
    monkeypatch.setattr(workers, "watched_pool", _recording(calls))
    with pytest.raises(_Refused):
        study.main(["--tiny", "--workers", "2", "--out", str(tmp_path / "o"),
                    "--runs", str(tmp_path / "runs")])  # fmt: skip
    assert calls == [2]


@pytest.mark.skipif(importlib.util.find_spec("aeon") is None, reason="aeon not installed")
def test_the_real_data_study_trains_in_a_watched_pool(tmp_path, monkeypatch) -> None:
    study = _load(ROOT / "studies" / "real_data" / "run.py", "rdr_workers")
    calls: list[int] = []
    monkeypatch.setattr(workers, "watched_pool", _recording(calls))
    with pytest.raises(_Refused):
        study.main(["--quick", "--models", "rsgn,mlp", "--no-minirocket", "--workers", "2",
                    "--out", str(tmp_path / "q"), "--runs", str(tmp_path / "runs")])  # fmt: skip
    assert calls == [2]
