"""Neuromorphic study: RSGN on the simulated chip (``rsgn.backends.neuromorphic``): accuracy by
mode on trained checkpoints, energy and latency with their breakdown, exact vs local selection,
cost vs active fraction, idle policy and node count, simulation speed, and calibration checks.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python studies/neuromorphic/run.py                 # every part
    OMP_NUM_THREADS=1 python studies/neuromorphic/run.py --parts accuracy,sweep
    OMP_NUM_THREADS=1 python studies/neuromorphic/run.py --quick         # small, into quick/

Each part writes ``part_<name>.json`` (and CSV tables) next to this file (``--out`` to change);
every run rebuilds ``results.json`` from the part files present. Parts:

- ``accuracy``: two trained checkpoints (``ckpt_h``: hierarchical, ``ckpt_lr``: long-range;
  trained by this script when absent) on torch and on the chip in float (exact and local
  selection), graded 8-bit and 4-bit (calibrated payload LSBs), 8-bit with the data-free bound,
  the bit-accurate fixed datapath and 8-bit sigma-delta;
- ``sweep``: energy and latency per inference vs active fraction and idle policy;
- ``scaling``: vs node count, and the dynamic energy when the active fraction halves;
- ``calibration``: the TrueNorth operating point and Loihi's per-event arithmetic;
- ``speed``: the engine's synaptic events per second on one core (``bench_events.py``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import bench_events  # noqa: E402  (next to this script)
import numpy as np
import torch

from rsgn import neuromorphic as nm
from rsgn.backends import get_backend
from rsgn.backends.neuromorphic.cost import PARTS
from rsgn.checkpoint import atomic_write_bytes, load_model
from rsgn.config import DataConfig, ModelConfig
from rsgn.data import make_task
from rsgn.model import RSGN

HERE = Path(__file__).resolve().parent
# trained as before issue 18 (the numbers here were measured so): --config paper-training
CHECKPOINTS = {
    "hierarchical": (
        "ckpt_h",
        ["--config", "paper-training", "--set", "data.n_samples=3000", "--set", "train.lr=3e-3",
         "--epochs", "8"],
        3000,
    ),
    "long-range": (
        "ckpt_lr",
        ["--config", "paper-training", "--set", "data.n_samples=1500", "--set",
         "model.n_steps=5", "--set", "train.lr=3e-3", "--epochs", "6"],
        1500,
    ),
}  # fmt: skip
"""task -> (checkpoint folder, training arguments, data set size): the settings of
``studies/backend_comparison`` (8 and 6 epochs)."""
PART_NAMES = ("calibration", "accuracy", "sweep", "scaling", "speed")


def machine() -> dict:
    return {**bench_events.machine_state(), "torch": torch.__version__}


def write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def agreement(logits: torch.Tensor, ref: torch.Tensor) -> dict:
    """Measured agreement with the torch target's logits on the same inputs."""
    diff = (logits.double() - ref.double()).abs().amax(1)
    return {
        "prediction_agreement": float((logits.argmax(1) == ref.argmax(1)).float().mean()),
        "max_abs_logit_error": float(diff.max()),
        "max_rel_logit_error": float((diff / ref.double().abs().amax(1)).max()),
    }


def per_inference(rep) -> dict:
    """Energy by part, latency and simulator figures per inference (``Report.details``)."""
    m = rep.details
    n = rep.n_samples
    split = m["energy_split_j"]
    bd = m["energy_breakdown_j"]
    c = m["event_counts"]
    wall = rep.wall_time.value
    synops = c["synops"] + c["graded_synops"]
    return {
        "energy_total_j": rep.ledger.energy_j() / n,
        "energy_dynamic_j": split["dynamic"] / n,
        **{f"energy_{k}_j": bd[k] / n for k in PARTS},
        "latency_mean_s": m["latency_stats_s"]["mean"],
        "latency_p95_s": m["latency_stats_s"]["p95"],
        "step_latency_s": m["step_latency_s"],
        "active_fraction": rep.active_fraction,
        "sim_events_per_inference": m["sim_events"] / n,
        "noc_messages_per_inference": m["noc_messages"] / n,
        "flows_per_inference": m["flows"] / n,
        "packets_by_class_per_inference": {k: v / n for k, v in m["packets_by_class"].items()},
        "synops_per_inference": synops / n,
        "events_per_inference": c["events"] / n,
        "select_rounds_per_inference": sum(m["select_rounds"]) / n,
        "mapping": m["mapping"],
        "wall_s_per_inference": wall / n,
        "synops_per_wall_s": synops / wall,
    }


# ---------------------------------------------------------------------------- accuracy
def checkpoint(task: str, out: Path, quick: bool) -> Path:
    folder, args, _ = CHECKPOINTS[task]
    ckpt = HERE / folder
    if (ckpt / "checkpoint.pt").exists():
        return ckpt
    if quick:
        ckpt = out / f"{folder}_quick"
        if (ckpt / "checkpoint.pt").exists():
            return ckpt
        args = ["--config", "paper-training", "--set", "data.n_samples=600", "--set",
                "train.lr=3e-3", "--epochs", "1"]  # fmt: skip
    cmd = [sys.executable, "-m", "rsgn.cli", "train", "--task", task, *args, "--out", str(ckpt)]
    print("training:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return ckpt


MODES = [
    ("float exact", {}, False),
    ("float, local k-WTA", {"selection": "local"}, False),
    ("graded 8-bit (calibrated)", {"payload_bits": 8}, True),
    ("graded 4-bit (calibrated)", {"payload_bits": 4}, True),
    ("graded 8-bit (bound scale)", {"payload_bits": 8}, False),
    ("fixed (bit-accurate, bound scale)", {"mode": "fixed"}, False),
    (
        "8-bit sigma-delta thr 1 LSB (calibrated)",
        {"payload_bits": 8, "sigma_delta": True, "sd_threshold": 1.0},
        True,
    ),
]
LONG_RANGE_MODES = ("float exact", "float, local k-WTA", "graded 8-bit (calibrated)",
                    "graded 4-bit (calibrated)")  # fmt: skip


def accuracy(out: Path, quick: bool) -> list[dict]:
    rows = []
    for task in CHECKPOINTS:
        ckpt = checkpoint(task, out, quick)
        model = load_model(ckpt)
        model = model[0] if isinstance(model, tuple) else model
        spec = model.export()
        ds = make_task(task, DataConfig(n_samples=CHECKPOINTS[task][2]), seed=0)
        n = (40 if quick else 200) if task == "hierarchical" else (20 if quick else 100)
        x, y = ds.x_val[:n], ds.y_val[:n]
        x_cal = ds.x_train[: 20 if quick else 100]
        ref, _ = get_backend("torch").prepare(spec)(x)
        acc_t = float((ref.argmax(1) == y).float().mean())
        rows.append({"task": task, "config": "torch", "accuracy": acc_t, "n_val": n})
        modes = MODES if task == "hierarchical" else [m for m in MODES if m[0] in LONG_RANGE_MODES]
        if quick:
            modes = modes[:4]
        for name, kw, cal in modes:
            t0 = time.perf_counter()
            prog = get_backend("neuromorphic", **kw).prepare(spec)
            if cal:
                prog = prog.calibrate(x_cal)
            logits, rep = prog(x)
            acc = float((logits.argmax(1) == y).float().mean())
            agree = agreement(logits, ref)
            sd = rep.details["sigma_delta_events"]
            row = {
                "task": task,
                "config": name,
                "accuracy": acc,
                "drop_vs_torch_points": 100 * (acc_t - acc),
                **agree,
                "payload_bits": rep.details["payload_bits"],
                "sd_saved_fraction": sd["saved_fraction"],
                "n_val": n,
                **per_inference(rep),
                "wall_s": time.perf_counter() - t0,
            }
            rows.append(row)
            print(
                f"  {task} {name:42s} acc {acc:.4f} agree {agree['prediction_agreement']:.4f} "
                f"E {row['energy_total_j'] * 1e6:8.2f} uJ  lat {row['latency_mean_s'] * 1e6:8.1f}"
                f" us  {row['wall_s']:.0f} s",
                flush=True,
            )
    return rows


# ---------------------------------------------------------------------------- cost sweeps
def cost_model(n_nodes: int, d: int, frac: float, n_features: int) -> RSGN:
    """An untrained RSGN in the paper's configuration (mean initial state, raw tokens: the
    front end's cost does not swamp the propagation's); same seed, same geometry."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        n_nodes=n_nodes, d_hidden=d, target_active=frac, init_state="mean", encoder_width=0
    )
    return RSGN(n_features, 20, cfg)


def run_cost(model: RSGN, x: torch.Tensor, **kw):
    t0 = time.perf_counter()
    prog = get_backend("neuromorphic", **kw).prepare(model.export())
    prep = time.perf_counter() - t0
    _, rep = prog(x)
    return rep, prep


def sweep(x: torch.Tensor, quick: bool) -> list[dict]:
    n_nodes, d = (512, 16) if quick else (2048, 16)
    rows = []
    for frac in (0.01, 0.02, 0.05, 0.1):
        model = cost_model(n_nodes, d, frac, x.shape[-1])
        for policy in nm.IDLE_POLICIES:
            rep, _ = run_cost(model, x, idle_policy=policy)
            row = {"n_nodes": n_nodes, "d_hidden": d, "target_active": frac, "idle_policy": policy}
            row.update(per_inference(rep))
            rows.append(row)
            print(
                f"  N {n_nodes} f {frac:.2f} {policy:13s} E_dyn "
                f"{row['energy_dynamic_j'] * 1e6:9.3f} uJ  E_tot {row['energy_total_j'] * 1e6:9.3f}"
                f" uJ  lat {row['latency_mean_s'] * 1e6:8.2f} us",
                flush=True,
            )
    return rows


PROPAGATION = ("synaptic", "neuron_program", "projection", "selection")
"""The dynamic parts that scale with the active set (the front end, ignition and readout are
per input, the NoC part carries both)."""


def scaling(x: torch.Tensor, quick: bool) -> tuple[list[dict], list[dict]]:
    """Cost vs N, and the propagation's dynamic energy when the active fraction halves."""
    sizes = (256, 1024) if quick else (256, 1024, 4096, 16384)
    d = 8
    fracs = (0.1, 0.05, 0.025)
    pairs = ((0.1, 0.05), (0.05, 0.025))
    ratio_rows, size_rows = [], []
    for n_nodes in sizes:
        res = {}
        for frac in fracs:
            if math.floor(frac * n_nodes + 1e-9) < 2:
                continue
            model = cost_model(n_nodes, d, frac, x.shape[-1])
            rep, prep = run_cost(model, x, idle_policy="touched_only")
            res[frac] = rep
            row = {"n_nodes": n_nodes, "d_hidden": d, "target_active": frac, "prepare_s": prep}
            row.update(per_inference(rep))
            size_rows.append(row)
            print(
                f"  N {n_nodes:6d} f {frac:.3f} E_dyn {row['energy_dynamic_j'] * 1e6:10.3f} uJ"
                f"  lat {row['latency_mean_s'] * 1e6:8.2f} us  "
                f"{row['synops_per_wall_s'] / 1e6:.2f} M synops/s  "
                f"{row['wall_s_per_inference']:.1f} s/inference",
                flush=True,
            )
        for hi, lo in pairs:
            if hi not in res or lo not in res:
                continue
            a, b = res[hi].details, res[lo].details
            ea = sum(a["energy_breakdown_j"][k] for k in PROPAGATION)
            eb = sum(b["energy_breakdown_j"][k] for k in PROPAGATION)
            ratio_rows.append(
                {
                    "n_nodes": n_nodes,
                    "d_hidden": d,
                    "frac_hi": hi,
                    "frac_lo": lo,
                    "active_fraction_ratio": res[lo].active_fraction / res[hi].active_fraction,
                    "propagation_dynamic_ratio": eb / ea,
                    "dynamic_ratio": b["energy_split_j"]["dynamic"]
                    / a["energy_split_j"]["dynamic"],
                    "total_ratio": res[lo].ledger.energy_j() / res[hi].ledger.energy_j(),
                    "events_ratio": b["event_counts"]["events"] / a["event_counts"]["events"],
                }
            )
            r = ratio_rows[-1]
            print(
                f"  N {n_nodes:6d} {hi:.3f}->{lo:.3f}: propagation energy ratio "
                f"{r['propagation_dynamic_ratio']:.3f}, dynamic {r['dynamic_ratio']:.3f}, "
                f"events {r['events_ratio']:.3f}",
                flush=True,
            )
    return ratio_rows, size_rows


# ---------------------------------------------------------------------------- calibration
def truenorth(quick: bool) -> dict:
    """TrueNorth at 20 Hz x 128 synapses per neuron: power from the simulator's counted events
    (42 mW static + 11.2 pJ all-in dynamic per synaptic event, the preset's split of the
    measured 72 mW). ``K`` cores of 256 LIF neurons, each driving 128 synapses on the next
    core, fire by external drive with probability 0.02 per 1 ms tick; the dynamic power of the
    K cores scales by 4096 / K, the static power is the chip's."""
    prof = nm.load_preset("truenorth")
    topo = nm.Topology(prof)
    k_cores = 16 if quick else 64
    per, fan = 256, 128
    n = k_cores * per
    rng = np.random.default_rng(0)
    src = np.repeat(np.arange(n, dtype=np.int64), fan)
    tgt_core = (src // per + 1) % k_cores
    local = np.concatenate([rng.choice(per, fan, replace=False) for _ in range(n)])
    syn = nm.SynapseList.from_arrays(src, tgt_core * per + local, np.zeros(src.size), n)
    place = nm.place_sequential(n, topo, per_core=per)
    net = nm.Network([nm.NeuronGroup("tn", n, nm.LIF(du=1.0, dv=1.0, v_th=1.0), place)], syn)
    ticks = 50 if quick else 200
    drive = (rng.random((ticks, n)) < 0.02).astype(np.float64)
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only", record="none"))
    rep = sim.run(drive)
    c = rep.counts
    t_s = rep.latency_ps * 1e-12
    rate = c.events / (n * t_s)
    dyn_chip = rep.energy.dynamic_pj * 1e-12 / t_s * 4096 / k_cores
    static = rep.energy.terms["static"] * 1e-12 / t_s
    return {
        "cores_simulated": k_cores,
        "ticks": ticks,
        "measured_rate_hz": rate,
        "synops_per_spike": c.synops / c.events,
        "dynamic_chip_mw": dyn_chip * 1e3,
        "static_chip_mw": static * 1e3,
        "total_chip_mw": (dyn_chip + static) * 1e3,
        "total_chip_at_exact_20hz_mw": (dyn_chip * 20.0 / rate + static) * 1e3,
        "reference": "72 mW measured at 20 Hz x 128 synapses (Merolla'14); 42 mW at zero "
        "activity (Akopyan'15)",
    }


def loihi() -> dict:
    """One spike into a neuron on the same core, on the ``loihi`` preset: the simulated
    energy against the per-event arithmetic."""
    prof = nm.load_preset("loihi")
    topo = nm.Topology(prof)
    net = nm.Network(
        [nm.NeuronGroup("x", 2, nm.LIF(du=1.0, dv=1.0, v_th=10.0), np.zeros(2, np.int64))],
        nm.SynapseList.from_arrays(np.array([0]), np.array([1]), np.array([1.0]), 2),
    )
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only"))
    rep = sim.run(n_steps=1, initial_output=np.array([1.0, 0.0]))
    e = prof.energy
    return {
        "simulated_dynamic_pj": rep.energy.dynamic_pj,
        "arithmetic_pj": e.message_out + e.tile_spike + e.message_in + e.synop
        + e.neuron_update_active,
        "terms": "message out 111 + router 1.7 + message in 0 + synop 23.6 + the target's "
        "active update 81 pJ (the initial spike is injected: no spike generation)",
        "simulated_latency_ns": rep.latency_ps / 1e3,
        "sanafe_study": "studies/neuromorphic/sanafe: 12 networks against SANA-FE",
    }  # fmt: skip


# ---------------------------------------------------------------------------- speed
def speed(quick: bool) -> list[dict]:
    rows = []
    for n in (4096,) if quick else (4096, 65536):
        for noc in ("train", "packet"):
            t0 = time.perf_counter()
            rate = bench_events.main(
                ["--neurons", str(n), "--repeats", "1" if quick else "3", "--noc", noc]
            )
            rows.append(
                {
                    "neurons": n,
                    "noc": noc,
                    "synaptic_events_per_s": rate,
                    "wall_s": time.perf_counter() - t0,
                    "machine": bench_events.machine_state(),
                }
            )
    return rows


# ---------------------------------------------------------------------------- plots
def plots(out: Path, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = res.get("accuracy")
    if acc:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        r = [x for x in acc if x["config"] != "torch"]
        labels = [f"{x['task']}: {x['config']}" for x in r]
        ax.barh(labels, [100 * x["accuracy"] for x in r])
        for task in CHECKPOINTS:
            t = next(x for x in acc if x["task"] == task and x["config"] == "torch")
            ax.axvline(100 * t["accuracy"], ls="--", label=f"torch, {task}")
        ax.set(xlabel="validation accuracy (%)", title="trained RSGN on the simulated chip")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "accuracy_by_mode.png", dpi=90)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(8, 4.5))
        r = [x for x in acc if x["config"] != "torch"]
        left = np.zeros(len(r))
        for part in PARTS:
            v = np.array([1e6 * x[f"energy_{part}_j"] for x in r])
            ax.barh([f"{x['task']}: {x['config']}" for x in r], v, left=left, label=part)
            left += v
        ax.set(xlabel="energy per inference (uJ)", title="energy by part (loihi2_est)")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(out / "energy_breakdown.png", dpi=90)
        plt.close(fig)
    sw = res.get("sweep")
    if sw:
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for policy in nm.IDLE_POLICIES:
            r = [x for x in sw if x["idle_policy"] == policy]
            f = [100 * x["target_active"] for x in r]
            ax[0].plot(f, [1e6 * x["energy_total_j"] for x in r], "o-", label=policy)
            ax[1].plot(f, [1e6 * x["latency_mean_s"] for x in r], "o-", label=policy)
        ax[0].set(xlabel="target active fraction (%)", ylabel="energy / inference (uJ)",
                  yscale="log", title=f"N={sw[0]['n_nodes']}, d={sw[0]['d_hidden']}")  # fmt: skip
        ax[1].set(xlabel="target active fraction (%)", ylabel="latency / inference (us)")
        ax[0].legend()
        fig.tight_layout()
        fig.savefig(out / "energy_latency_vs_active_fraction.png", dpi=90)
        plt.close(fig)
    sz = res.get("node_scaling")
    if sz:
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for frac in sorted({x["target_active"] for x in sz}):
            r = [x for x in sz if x["target_active"] == frac]
            ns = [x["n_nodes"] for x in r]
            ax[0].plot(ns, [1e6 * x["energy_dynamic_j"] for x in r], "o-", label=f"{frac:.3f}")
            ax[1].plot(ns, [1e6 * x["latency_mean_s"] for x in r], "o-", label=f"{frac:.3f}")
        ax[0].set(xscale="log", yscale="log", xlabel="nodes",
                  ylabel="dynamic energy / inference (uJ)", title="touched_only, d=8")  # fmt: skip
        ax[1].set(xscale="log", yscale="log", xlabel="nodes", ylabel="latency / inference (us)")
        ax[0].legend(title="active fraction")
        fig.tight_layout()
        fig.savefig(out / "energy_latency_vs_nodes.png", dpi=90)
        plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sweeps, into quick/")
    ap.add_argument("--parts", default=",".join(PART_NAMES), help="comma-separated parts")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else (HERE / "quick" if a.quick else HERE)
    out.mkdir(parents=True, exist_ok=True)
    parts = [p for p in a.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PART_NAMES))
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; known: {', '.join(PART_NAMES)}")
    torch.set_num_threads(1)
    ds = make_task("hierarchical", DataConfig(n_samples=200), seed=1)
    x_cost = ds.x_val[: 2 if a.quick else 4]
    for part in parts:
        t0 = time.perf_counter()
        print(part, flush=True)
        data: dict = {}
        if part == "calibration":
            data = {"truenorth": truenorth(a.quick), "loihi_single_event": loihi()}
        elif part == "accuracy":
            rows = accuracy(out, a.quick)
            write_csv(out / "accuracy.csv", rows)
            data = {"accuracy": rows}
        elif part == "sweep":
            rows = sweep(x_cost, a.quick)
            write_csv(out / "active_fraction_idle_policy.csv", rows)
            data = {"sweep": rows, "inputs": len(x_cost)}
        elif part == "scaling":
            ratio, size = scaling(x_cost, a.quick)
            write_csv(out / "halving.csv", ratio)
            write_csv(out / "node_scaling.csv", size)
            data = {"halving": ratio, "node_scaling": size, "inputs": len(x_cost)}
        elif part == "speed":
            data = {"speed": speed(a.quick)}
        data["wall_s"] = time.perf_counter() - t0
        data["machine"] = machine()
        data["command"] = " ".join([sys.executable, *sys.argv])
        atomic_write_bytes(
            out / f"part_{part}.json", (json.dumps(data, indent=1, default=float) + "\n").encode()
        )
    res: dict = {"machine": machine(), "quick": a.quick, "platform": platform.platform()}
    for part in PART_NAMES:
        f = out / f"part_{part}.json"
        if f.exists():
            res[part] = json.loads(f.read_text())
    flat = {
        "accuracy": res.get("accuracy", {}).get("accuracy"),
        "sweep": res.get("sweep", {}).get("sweep"),
        "node_scaling": res.get("scaling", {}).get("node_scaling"),
    }
    atomic_write_bytes(
        out / "results.json", (json.dumps(res, indent=1, default=float) + "\n").encode()
    )
    plots(out, {k: v for k, v in flat.items() if v})
    print(f"done -> {out}", flush=True)


if __name__ == "__main__":
    if hasattr(os, "sched_setaffinity"):  # one core: the speed target is per core
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    main()
