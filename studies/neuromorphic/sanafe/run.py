"""Calibration of the chip simulator against SANA-FE (PyPI ``sanafe`` 2.2.9, GPL-3.0; an
oracle of this study and its test only, never imported by the package).

The same binary LIF networks run in both simulators with the same Loihi constants: the
``loihi`` preset of ``rsgn.neuromorphic`` is written into a SANA-FE architecture file
(:func:`arch_yaml`), so every difference left is a modelling difference. Networks follow the
random-network family of SANA-FE's own Loihi validation [Boyle2025] (``scripts/tcad2025/
random_network.py``): ``cores`` x ``per_core`` neurons, a fraction of driver neurons that fire
every step (bias above threshold), each sending ``msgs`` messages (distinct destination cores)
of ``syn`` synapses each to passive neurons, whose tiny weights never make them fire; the
``hot`` pattern sends every message to one core. Neurons are memoryless (no current or
potential carried over), so both simulators fire exactly the same spikes.

Usage (repository root)::

    OMP_NUM_THREADS=1 python studies/neuromorphic/sanafe/run.py            # the table
    OMP_NUM_THREADS=1 python studies/neuromorphic/sanafe/run.py --quick    # 3 networks

Writes ``results.json`` and ``table.csv`` next to this file (``--out`` to change).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.checkpoint import atomic_write_bytes

HERE = Path(__file__).resolve().parent
T = 8
"""Timesteps per run."""
THRESHOLD, BIAS, WEIGHT = 64.0, 128.0, 1.0 / 64.0


@dataclass(frozen=True)
class NetSpec:
    name: str
    cores: int
    per_core: int
    drivers: float
    """Fraction of neurons that fire every step."""
    msgs: int
    """Messages (distinct destination cores) per driver."""
    syn: int
    """Synapses per message."""
    pattern: str = "random"
    """``random`` destination cores, or ``hot``: every message to core 0."""
    seed: int = 0


NETWORKS = [
    NetSpec("small-sparse", 4, 64, 0.05, 1, 1),
    NetSpec("small-dense", 4, 64, 0.5, 4, 8),
    NetSpec("mid-lowfan", 16, 256, 0.02, 1, 4),
    NetSpec("mid-fan4", 16, 256, 0.1, 4, 4),
    NetSpec("mid-fan16", 16, 256, 0.1, 16, 2),
    NetSpec("mid-active", 16, 256, 0.5, 4, 2),
    NetSpec("chip-sparse", 128, 128, 0.01, 4, 4),
    NetSpec("chip-fan8", 128, 256, 0.05, 8, 4),
    NetSpec("chip-dense", 128, 64, 0.5, 8, 8),
    NetSpec("full-cores", 128, 1024, 0.02, 4, 16),
    NetSpec("hot-16", 16, 64, 0.25, 1, 8, "hot"),
    NetSpec("hot-128", 128, 32, 0.1, 1, 4, "hot"),
]
QUICK = ["small-dense", "mid-fan4", "hot-16"]


def build(spec: NetSpec) -> dict:
    """Drivers, their messages and synapses, as plain arrays (the same in both simulators)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.cores * spec.per_core
    core_of = np.arange(n) // spec.per_core
    drivers = np.sort(rng.choice(n, max(1, round(spec.drivers * n)), replace=False))
    src, dst = [], []
    for i in drivers:
        if spec.pattern == "hot":
            dests = np.array([0])
        else:
            dests = rng.choice(spec.cores, min(spec.msgs, spec.cores), replace=False)
        for c in dests:
            tgt = c * spec.per_core + rng.choice(spec.per_core, spec.syn, replace=False)
            tgt = tgt[tgt != i]
            src += [int(i)] * tgt.size
            dst += tgt.tolist()
    return {
        "n": n,
        "core_of": core_of,
        "drivers": drivers,
        "src": np.array(src, dtype=np.int64),
        "dst": np.array(dst, dtype=np.int64),
    }


# ------------------------------------------------------------------------------ ours
def run_ours(prof: nm.HardwareProfile, net: dict, noc: str = "train") -> dict:
    """Drivers and passive neurons as two LIF groups (drivers first) on cores 0.. of one
    chip; SANA-FE processes every neuron every step: idle policy ``all``."""
    n = net["n"]
    drivers = net["drivers"]
    is_drv = np.zeros(n, dtype=bool)
    is_drv[drivers] = True
    order = np.concatenate([drivers, np.nonzero(~is_drv)[0]])  # new index -> old index
    new_of = np.empty(n, dtype=np.int64)
    new_of[order] = np.arange(n)
    topo = nm.Topology(prof)
    place = net["core_of"][order]
    nd = drivers.size
    lif = {"du": 1.0, "dv": 1.0, "v_th": THRESHOLD}
    groups = [
        nm.NeuronGroup("drivers", nd, nm.LIF(bias=BIAS, name="driver", **lif), place[:nd]),
        nm.NeuronGroup("passive", n - nd, nm.LIF(name="passive", **lif), place[nd:]),
    ]
    syn = nm.SynapseList.from_arrays(
        new_of[net["src"]], new_of[net["dst"]], np.full(net["src"].size, WEIGHT), n
    )
    cfg = nm.SimConfig(idle_policy="all", noc=noc, record="outputs")
    sim = nm.Simulator(nm.Network(groups, syn), prof, topo, cfg)
    t0 = time.perf_counter()
    rep = sim.run(n_steps=T)
    wall = time.perf_counter() - t0
    spikes = rep.outputs.sum(1)
    e = rep.energy
    bc = e.by_class_terms
    soma = e.terms["neuron_update_active"] + e.terms["neuron_update_idle"] + e.terms["spike_out"]
    return {
        "energy_per_step_pj": (e.total_pj - e.terms["static"]) / T,
        "static_per_step_pj": e.terms["static"] / T,
        "latency_per_step_ns": rep.latency_ps / T / 1e3,
        "spikes_per_step": spikes.tolist(),
        "soma_pj": soma / T,
        "synapse_pj": (e.terms["synops"] + e.terms["graded_synops"]) / T,
        "network_pj": (
            e.terms["message_out"] + e.terms["hops_ew"] + e.terms["hops_ns"] + e.terms["chip_hops"]
        )
        / T,
        "message_in_pj": (e.terms["message_in"] + e.terms["tile_spikes"]) / T,
        "barrier_pj": bc.get("barrier", {}).get("tile_spikes", 0.0) / T
        + sum(v for k, v in bc.get("barrier", {}).items() if k.startswith("hops")) / T,
        "packets_per_step": rep.counts.packets / T,
        "barrier_ns": sim.topology.barrier_ps(sim._cores) / 1e3,
        "wall_s": wall,
    }


# ------------------------------------------------------------------------------ SANA-FE
def arch_yaml(prof: nm.HardwareProfile, sync_s: float) -> str:
    """A SANA-FE architecture with the constants of ``prof``: the layout of SANA-FE's Loihi
    file, every value ours. SANA-FE charges each neuron an access every step and an update
    when it changes (our idle and active updates: access = idle, update = active - idle); the
    router traversal of a packet (our tile_spike) rides on its receive energy."""
    e, t, ch = prof.energy, prof.timing, prof.chip
    pj, ns = 1e-12, 1e-9
    per_tile = ch.cores_per_tile
    lines = [
        "architecture:",
        "  name: rsgn_loihi_constants",
        "  attributes:",
        "    topology: mesh",
        f"    width: {ch.tiles_x}",
        f"    height: {ch.tiles_y}",
        f"    link_buffer_size: {prof.noc.buffer_packets}",
        "    sync_model: fixed",
        f"    latency_sync: {sync_s:.6e}",
        "  tile:",
        f"    - name: tile[0..{ch.tiles_x * ch.tiles_y - 1}]",
        "      attributes:",
        f"        energy_north_hop: {e.hop_ns * pj:.6e}",
        f"        latency_north_hop: {t.hop_ns_ps * 1e-3 * ns:.6e}",
        f"        energy_east_hop: {e.hop_ew * pj:.6e}",
        f"        latency_east_hop: {t.hop_ew_ps * 1e-3 * ns:.6e}",
        f"        energy_south_hop: {e.hop_ns * pj:.6e}",
        f"        latency_south_hop: {t.hop_ns_ps * 1e-3 * ns:.6e}",
        f"        energy_west_hop: {e.hop_ew * pj:.6e}",
        f"        latency_west_hop: {t.hop_ew_ps * 1e-3 * ns:.6e}",
        "      core:",
        f"        - name: core[0..{per_tile - 1}]",
        "          attributes:",
        "            buffer_position: soma",
        "            buffer_inside_unit: false",
        f"            max_neurons_supported: {ch.core.max_neurons}",
        "          axon_in:",
        "            - name: axon_in",
        "              attributes:",
        f"                energy_message_in: {(e.message_in + e.tile_spike) * pj:.6e}",
        f"                latency_message_in: {t.message_in_ps * 1e-3 * ns:.6e}",
        "          soma:",
        "            - name: lif",
        "              attributes:",
        "                model: leaky_integrate_fire",
        f"                energy_access_neuron: {e.neuron_update_idle * pj:.6e}",
        f"                latency_access_neuron: {t.neuron_update_idle_ps * 1e-3 * ns:.6e}",
        "                energy_update_neuron: "
        f"{(e.neuron_update_active - e.neuron_update_idle) * pj:.6e}",
        "                latency_update_neuron: "
        f"{(t.neuron_update_active_ps - t.neuron_update_idle_ps) * 1e-3 * ns:.6e}",
        f"                energy_spike_out: {e.spike_out * pj:.6e}",
        f"                latency_spike_out: {t.spike_out_ps * 1e-3 * ns:.6e}",
        "          dendrite:",
        "            - name: dendrite",
        "              attributes:",
        "                model: accumulator",
        "                energy_update: 0.0",
        "                latency_update: 0.0",
        "          synapse:",
        "            - name: synapse",
        "              attributes:",
        "                model: current_based",
        f"                energy_process_spike: {e.synop * pj:.6e}",
        f"                latency_process_spike: {t.synop_ps * 1e-3 * ns:.6e}",
        "          axon_out:",
        "            - name: axon_out",
        "              attributes:",
        f"                energy_message_out: {e.message_out * pj:.6e}",
        f"                latency_message_out: {t.message_out_ps * 1e-3 * ns:.6e}",
    ]
    return "\n".join(lines) + "\n"


def run_sanafe(prof: nm.HardwareProfile, net: dict, sync_s: float) -> dict:
    """The same network in SANA-FE (detailed timing model). Our core c sits on tile
    (x, y) = its topology coordinates; SANA-FE numbers tiles column by column."""
    import sanafe  # the oracle: imported here only

    topo = nm.Topology(prof)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arch.yaml"
        path.write_text(arch_yaml(prof, sync_s))
        arch = sanafe.load_arch(str(path))
    network = sanafe.Network()
    attrs = {"threshold": THRESHOLD, "reset": 0.0, "leak_decay": 0.0, "input_decay": 0.0}
    pop = network.create_neuron_group("pop", net["n"], attrs)
    cores = arch.cores()
    per_tile, height = prof.chip.cores_per_tile, prof.chip.tiles_y
    for i, neuron in enumerate(pop.neurons):
        c = int(net["core_of"][i])
        tile = int(topo.core_x[c]) * height + int(topo.core_y[c])
        neuron.map_to_core(cores[tile * per_tile + c % per_tile])
    for i in net["drivers"]:
        pop.neurons[int(i)].set_attributes(model_attributes={"bias": BIAS})
    for s, d in zip(net["src"].tolist(), net["dst"].tolist(), strict=True):
        pop.neurons[s].connect_to_neuron(pop.neurons[d], {"weight": WEIGHT})
    chip = sanafe.SpikingChip(arch)
    chip.load(network)
    t0 = time.perf_counter()
    silence = io.StringIO()
    stdout, sys.stdout = sys.stdout, silence
    try:
        r = chip.sim(T, timing_model="detailed", perf_trace=True)
    finally:
        sys.stdout = stdout
    wall = time.perf_counter() - t0
    en = r["energy"]
    return {
        "energy_per_step_pj": en["total"] * 1e12 / T,
        "latency_per_step_ns": r["sim_time"] * 1e9 / T,
        "spikes_per_step": r["perf_trace"]["fired"],
        "soma_pj": en["soma"] * 1e12 / T,
        "synapse_pj": en["synapse"] * 1e12 / T,
        "network_pj": en["network"] * 1e12 / T,
        "packets_per_step": r["packets_sent"] / T,
        "wall_s": wall,
    }


def compare(spec: NetSpec, prof: nm.HardwareProfile) -> dict:
    net = build(spec)
    ours = run_ours(prof, net)
    pk = run_ours(prof, net, noc="packet")
    sf = run_sanafe(prof, net, ours["barrier_ns"] * 1e-9)
    # our per-packet receive energy (message_in + router) is part of SANA-FE's "network"
    e_err = ours["energy_per_step_pj"] / sf["energy_per_step_pj"] - 1
    l_err = ours["latency_per_step_ns"] / sf["latency_per_step_ns"] - 1
    return {
        **asdict(spec),
        "neurons": net["n"],
        "synapses": int(net["src"].size),
        "spikes_per_step": ours["spikes_per_step"][0],
        "same_spikes": ours["spikes_per_step"] == sf["spikes_per_step"],
        "packets_per_step": ours["packets_per_step"],
        "sanafe_packets_per_step": sf["packets_per_step"],
        "energy_pj_per_step": ours["energy_per_step_pj"],
        "sanafe_energy_pj_per_step": sf["energy_per_step_pj"],
        "energy_error": e_err,
        "latency_ns_per_step": ours["latency_per_step_ns"],
        "latency_packet_mode_ns_per_step": pk["latency_per_step_ns"],
        "sanafe_latency_ns_per_step": sf["latency_per_step_ns"],
        "latency_error": l_err,
        "barrier_ns": ours["barrier_ns"],
        "ours_soma_pj": ours["soma_pj"],
        "sanafe_soma_pj": sf["soma_pj"],
        "ours_synapse_pj": ours["synapse_pj"],
        "sanafe_synapse_pj": sf["synapse_pj"],
        "ours_network_pj": ours["network_pj"] + ours["message_in_pj"],
        "sanafe_network_pj": sf["network_pj"],
        "ours_barrier_tokens_pj": ours["barrier_pj"],
        "ours_static_pj_per_step": ours["static_per_step_pj"],
        "wall_s_ours": ours["wall_s"],
        "wall_s_sanafe": sf["wall_s"],
    }


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sanafe

    return {
        "cpu": cpu or platform.processor(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sanafe": getattr(sanafe, "__version__", "2.2.9"),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    prof = nm.load_preset("loihi")
    rows = []
    for spec in NETWORKS:
        if args.quick and spec.name not in QUICK:
            continue
        row = compare(spec, prof)
        rows.append(row)
        print(
            f"{spec.name:12s} neurons {row['neurons']:6d} spikes/step {row['spikes_per_step']:5.0f}"
            f" E {row['energy_pj_per_step']:11.1f} vs {row['sanafe_energy_pj_per_step']:11.1f} pJ"
            f" ({row['energy_error']:+.1%})  L {row['latency_ns_per_step']:8.1f} vs "
            f"{row['sanafe_latency_ns_per_step']:8.1f} ns ({row['latency_error']:+.1%})",
            flush=True,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "timesteps": T, "preset": "loihi", "rows": rows}
    atomic_write_bytes(out / "results.json", json.dumps(result, indent=1).encode())
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(out / "table.csv", buf.getvalue().encode())
    return rows


if __name__ == "__main__":
    main()
