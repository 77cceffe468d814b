"""Benchmark: synaptic events processed per second of wall time, on one CPU core.

Run with ``python studies/neuromorphic/bench_events.py`` (``--help`` for options). The workload
is a random sparse network (``--neurons`` neurons, ``--fanout`` synapses each, placed 1,024 per
core on the ``loihi2_est`` preset) whose neurons relay their external input: a random
``--active`` fraction fires graded events each step, so every step runs the full engine: the
functional pass (routing, hop counts, CSR gather, synaptic accumulation, neuron updates,
emission) and the event-level timing pass (one SimPy process per core, every flow of packets
through the event-driven mesh, barriers). The figure printed is total synaptic operations /
wall time of ``Simulator.run`` (best of ``--repeats``). ``--json`` records the result with the
machine's state (load average and the busiest other processes: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from rsgn.checkpoint import atomic_write_bytes
from rsgn.neuromorphic.coding import PayloadCoding
from rsgn.neuromorphic.mapping import place_sequential
from rsgn.neuromorphic.network import Network, NeuronGroup, SynapseList, sorted_unique
from rsgn.neuromorphic.neurons import ReLU
from rsgn.neuromorphic.profile import load_preset
from rsgn.neuromorphic.simulator import SimConfig, Simulator
from rsgn.neuromorphic.topology import Topology

__all__ = ["build_workload", "machine_state", "main"]


def build_workload(
    n: int, fanout: int, active: float, steps: int, seed: int = 0, noc: str = "train"
) -> tuple[Simulator, np.ndarray]:
    """The benchmark simulator and its ``(steps, N)`` external input.

    Neurons are ``ReLU(threshold=1)`` with local random targets; a random ``active`` fraction
    gets external input in ``[1.1, 2.1)`` each step, while synaptic input (weights
    ~ N(0, 0.01)) stays mostly below threshold, so about ``active * N`` neurons fire per step.
    """
    prof = load_preset("loihi2_est")
    topo = Topology.for_cores(prof, -(-n // 1024))
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n, dtype=np.int64), fanout)
    # Local random targets (within +-2048) keep each core's fan-in below max_axons_in.
    dst = (src + rng.integers(-2048, 2049, src.size)) % n
    key = sorted_unique(src * n + dst)
    src, dst = key // n, key % n
    w = rng.normal(0.0, 0.01, src.size)
    net = Network(
        [NeuronGroup("x", n, ReLU(threshold=1.0), place_sequential(n, topo, per_core=1024))],
        SynapseList.from_arrays(src, dst, w, n),
    )
    ext = np.where(rng.random((steps, n)) < active, rng.random((steps, n)) + 1.1, 0.0)
    cfg = SimConfig(
        payload=PayloadCoding(bits=8, scale=1 / 64),
        idle_policy="touched_only",
        record="none",
        noc=noc,
    )
    return Simulator(net, prof, topo, cfg), ext


def machine_state() -> dict:
    """CPU, load average and the five busiest processes (the machine is shared)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ps = subprocess.run(
            ["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True, timeout=10
        ).stdout.splitlines()[1:6]
    except (OSError, subprocess.SubprocessError):
        ps = []
    return {
        "cpu": cpu or platform.processor(),
        "logical_cpus": os.cpu_count(),
        "pinned_to_cpus": sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "busiest_processes": [p.strip() for p in ps],
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def main(argv: list[str] | None = None, pin_cpu: bool = False) -> float:
    """Run the benchmark; print and return synaptic events per second.

    ``pin_cpu`` restricts this process to one CPU core first (the command line does).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=65536)
    ap.add_argument("--fanout", type=int, default=64)
    ap.add_argument("--active", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--noc", default="train", choices=("train", "packet"))
    ap.add_argument("--json", default=None, help="append the result to this JSON file")
    a = ap.parse_args(argv)
    if pin_cpu and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sim, ext = build_workload(a.neurons, a.fanout, a.active, a.steps, noc=a.noc)
    best, synops, rep = 0.0, 0, None
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        rep = sim.run(ext)
        dt = time.perf_counter() - t0
        synops = rep.counts.synops + rep.counts.graded_synops
        best = max(best, synops / dt)
    print(
        f"neurons={a.neurons} fanout={a.fanout} active={a.active} steps={a.steps} noc={a.noc} "
        f"synops/run={synops} sim_events/run={rep.counts.sim_events} "
        f"flows/run={rep.counts.flows} pinned_to_one_cpu={pin_cpu}"
    )
    print(f"synaptic events per second: {best:,.0f}")
    if a.json:
        path = Path(a.json)
        rows = json.loads(path.read_text()) if path.exists() else []
        rows.append(
            {
                "neurons": a.neurons,
                "fanout": a.fanout,
                "active": a.active,
                "steps": a.steps,
                "noc": a.noc,
                "repeats": a.repeats,
                "synops_per_run": synops,
                "sim_events_per_run": rep.counts.sim_events,
                "flows_per_run": rep.counts.flows,
                "packets_per_run": rep.counts.packets,
                "synaptic_events_per_s": best,
                "machine": machine_state(),
            }
        )
        atomic_write_bytes(path, json.dumps(rows, indent=1).encode())
    return best


if __name__ == "__main__":
    main(pin_cpu=True)
