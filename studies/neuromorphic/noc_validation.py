"""Validation of the network shortcut under load: the step latency with a step's packets
grouped into flows per (source core, destination core) ('train', the default) against every
packet simulated as its own flow ('packet', the reference), on networks from light to heavy
load, hot spots, narrow links and small buffers (``loihi`` and ``loihi2_est`` presets); and the
event quantum (``noc_quantum_ns`` 25 against 0, trains).

    OMP_NUM_THREADS=1 python studies/neuromorphic/noc_validation.py

Writes ``noc_validation.json`` next to this file: per case the packets per step, both
latencies, the relative error of each step, and the wall time of each mode.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import bench_events  # noqa: E402  (next to this script)
import numpy as np

from rsgn import neuromorphic as nm
from rsgn.checkpoint import atomic_write_bytes

HERE = Path(__file__).resolve().parent


def random_net(prof, n, fan, per_core, spread, hot=False, seed=0):
    rng = np.random.default_rng(seed)
    topo = nm.Topology.for_cores(prof, -(-n // per_core))
    src = np.repeat(np.arange(n), fan)
    if hot:  # half the synapses end on the first core
        dst = np.where(rng.random(src.size) < 0.5, rng.integers(0, per_core, src.size),
                       (src + rng.integers(-spread, spread + 1, src.size)) % n)  # fmt: skip
    else:
        dst = (src + rng.integers(-spread, spread + 1, src.size)) % n
    key = np.unique(src * n + dst)
    src, dst = key // n, key % n
    net = nm.Network(
        [nm.NeuronGroup("g", n, nm.LIF(du=1.0, dv=1.0, v_th=0.5),
                        nm.place_sequential(n, topo, per_core=per_core))],
        nm.SynapseList.from_arrays(src, dst, np.full(src.size, 0.01), n),
    )  # fmt: skip
    return net, topo


CASES = [
    # name, preset, neurons, fan-out, per core, target spread, firing prob., hot, overrides, buf
    ("light", "loihi", 1024, 4, 16, 300, 0.02, False, {}, None),
    ("moderate", "loihi", 1024, 16, 16, 300, 0.1, False, {}, None),
    ("heavy", "loihi", 1024, 32, 16, 300, 0.4, False, {}, None),
    ("saturated", "loihi", 1024, 48, 16, 300, 1.0, False, {}, None),
    ("hot-spot", "loihi", 1024, 16, 16, 300, 0.3, True, {}, None),
    ("hot-spot-buffer-2", "loihi", 1024, 16, 16, 300, 0.3, True, {}, 2),
    ("narrow-links", "loihi", 1024, 16, 16, 300, 0.3, False,
     {"timing.link_packet": 2.9, "timing.chip_link_packet": 2.9}, None),
    ("long-range", "loihi", 4096, 16, 32, 2000, 0.2, False, {}, None),
    ("two-chips", "loihi", 8192, 16, 32, 4000, 0.1, False, {}, None),
    ("loihi2-mesh", "loihi2_est", 8192, 32, 256, 3000, 0.1, False, {}, None),
]  # fmt: skip


def main() -> None:
    rows = []
    for name, preset, n, fan, per, spread, p, hot, over, buf in CASES:
        prof = nm.load_preset(preset)
        if over:
            prof = nm.override(prof, over)
        net, topo = random_net(prof, n, fan, per, spread, hot)
        ext = (np.random.default_rng(1).random((4, n)) < p) * 1.0
        res = {}
        for mode, q in (("train", 0.0), ("packet", 0.0), ("quantum", 25.0)):
            cfg = nm.SimConfig(
                idle_policy="touched_only",
                noc="packet" if mode == "packet" else "train",
                buffer_packets=buf,
                noc_quantum_ns=q,
            )
            sim = nm.Simulator(net, prof, topo, cfg)
            t0 = time.perf_counter()
            rep = sim.run(ext)
            res[mode] = (rep, time.perf_counter() - t0)
        tr, pk, qu = res["train"][0], res["packet"][0], res["quantum"][0]
        err = (tr.step_latency_ps - pk.step_latency_ps) / pk.step_latency_ps
        row = {
            "case": name,
            "preset": preset,
            "neurons": n,
            "packets_per_step": tr.counts.packets / 4,
            "flows_train": tr.counts.flows,
            "flows_packet": pk.counts.flows,
            "latency_train_ns": (tr.step_latency_ps / 1e3).tolist(),
            "latency_packet_ns": (pk.step_latency_ps / 1e3).tolist(),
            "max_abs_step_error": float(np.abs(err).max()),
            "total_error": float(tr.latency_ps / pk.latency_ps - 1),
            "quantum_25ns_vs_train_error": float(qu.latency_ps / tr.latency_ps - 1),
            "events_train": tr.counts.sim_events,
            "events_packet": pk.counts.sim_events,
            "events_quantum_25ns": qu.counts.sim_events,
            "wall_s_train": res["train"][1],
            "wall_s_packet": res["packet"][1],
        }
        rows.append(row)
        print(
            f"{name:18s} packets/step {row['packets_per_step']:8.0f} step error max "
            f"{row['max_abs_step_error']:.2%} total {row['total_error']:+.2%} quantum "
            f"{row['quantum_25ns_vs_train_error']:+.3%}  wall train "
            f"{row['wall_s_train']:.2f} s packet {row['wall_s_packet']:.2f} s",
            flush=True,
        )
    out = {"machine": bench_events.machine_state(), "rows": rows}
    atomic_write_bytes(HERE / "noc_validation.json", json.dumps(out, indent=1).encode())


if __name__ == "__main__":
    main()
