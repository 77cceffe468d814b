"""Neuromorphic backend study: energy, latency, accuracy and simulation speed of RSGN on the
simulated chip (``rsgn.backends.neuromorphic``), plus calibration checks of the chip model.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python studies/neuromorphic/run.py --quick   # < 2 min, smaller sweeps
    OMP_NUM_THREADS=1 python studies/neuromorphic/run.py           # the full study

Writes ``results.json``, ``*.csv`` and ``*.png`` next to this file (``--out`` to change). Parts:

1. accuracy: a small RSGN trained on the hierarchical task (``ckpt_h``, trained by this script
   if absent) on torch vs the chip in float, graded (16/8/4 bits, bound and calibrated payload
   scales), fixed-point and sigma-delta modes;
2. sweep: energy and latency per inference vs active fraction and idle policy (untrained
   model: cost scaling only);
3. scaling: dynamic energy when the active fraction halves, and energy / latency vs node
   count up to 65,536 nodes (untrained models), with the simulation speed through the backend;
4. calibration: the TrueNorth operating point and the Loihi per-op arithmetic.
"""

from __future__ import annotations

import argparse
import csv
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
from rsgn.checkpoint import load_model
from rsgn.config import DataConfig, ModelConfig
from rsgn.data import make_task
from rsgn.model import RSGN

HERE = Path(__file__).resolve().parent
TASK = "hierarchical"
# trained as before issue 18 (the README's numbers were measured so): --config paper-training
TRAIN_ARGS = ["--config", "paper-training", "--set", "data.n_samples=3000", "--set",
              "train.lr=3e-3", "--epochs", "8"]  # fmt: skip


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor(),
        "logical_cpus": os.cpu_count(),
        "pinned_to_cpus": sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def agreement(logits: torch.Tensor, ref: torch.Tensor) -> dict:
    """Measured agreement with the torch target's logits on the same inputs."""
    diff = (logits.double() - ref.double()).abs().amax(1)
    return {
        "prediction_agreement": float((logits.argmax(1) == ref.argmax(1)).float().mean()),
        "max_abs_logit_error": float(diff.max()),
        "max_rel_logit_error": float((diff / ref.double().abs().amax(1)).max()),
    }


def per_inference(rep) -> dict:
    """Energy split and latency per inference from a target report (``Report.details``)."""
    m = rep.details
    n = rep.n_samples
    split = m["energy_split_j"]
    bd = m["energy_breakdown_j"]
    wall = rep.wall_time.value
    return {
        "energy_total_j": rep.ledger.energy_j() / n,
        "energy_dynamic_j": split["dynamic"] / n,
        "energy_static_j": split["static"] / n,
        "energy_host_j": split["host"] / n,
        "energy_updates_j": (bd["neuron_update_active"] + bd["neuron_update_idle"]) / n,
        "energy_synops_j": bd["synops"] / n,
        "energy_projection_j": bd["projection"] / n,
        "energy_select_j": bd["select"] / n,
        "latency_mean_s": m["latency_stats_s"]["mean"],
        "latency_p95_s": m["latency_stats_s"]["p95"],
        "active_fraction": rep.active_fraction,
        "synops_per_inference": m["event_counts"]["synops"] / n,
        "events_per_inference": m["event_counts"]["events"] / n,
        "updates_per_inference": (
            m["event_counts"]["neuron_updates_active"] + m["event_counts"]["neuron_updates_idle"]
        )
        / n,
        "select_rounds_per_inference": sum(m["select_rounds"]) / n,
        "sim_wall_s": wall,
        "synops_per_wall_s": m["event_counts"]["synops"] / wall,
    }


# ---------------------------------------------------------------------------- 1. accuracy
def checkpoint(out: Path, quick: bool) -> Path:
    ckpt = HERE / "ckpt_h"
    if (ckpt / "checkpoint.pt").exists():
        return ckpt
    if quick:  # a short run in the output folder, not the study's checkpoint
        ckpt = out / "ckpt_quick"
        if (ckpt / "checkpoint.pt").exists():
            return ckpt
        args = ["--config", "paper-training", "--set", "data.n_samples=600", "--set",
                "train.lr=3e-3", "--epochs", "1"]  # fmt: skip
    else:
        args = TRAIN_ARGS
    cmd = [sys.executable, "-m", "rsgn.cli", "train", "--task", TASK, *args, "--out", str(ckpt)]
    print("training:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return ckpt


def accuracy(out: Path, quick: bool) -> list[dict]:
    ckpt = checkpoint(out, quick)
    model = load_model(ckpt)
    model = model[0] if isinstance(model, tuple) else model
    spec = model.export()
    ds = make_task(TASK, DataConfig(n_samples=3000), seed=0)
    n = 60 if quick else 300
    x, y = ds.x_val[:n], ds.y_val[:n]
    x_cal = ds.x_train[: 50 if quick else 200]
    t0 = time.perf_counter()
    ref, _ = get_backend("torch").prepare(spec)(x)
    acc_t = float((ref.argmax(1) == y).float().mean())
    rows = [{"config": "torch", "accuracy": acc_t, "n_val": n, "wall_s": time.perf_counter() - t0}]
    configs = [
        ("float exact", {}, False),
        ("graded 16-bit (bound scale)", {"payload_bits": 16}, False),
        ("graded 8-bit (bound scale)", {"payload_bits": 8}, False),
        ("graded 16-bit (calibrated)", {"payload_bits": 16}, True),
        ("graded 8-bit (calibrated)", {"payload_bits": 8}, True),
        ("graded 4-bit (calibrated)", {"payload_bits": 4}, True),
        ("fixed (bit-accurate, bound scale)", {"mode": "fixed"}, False),
        ("8-bit sigma-delta thr 0 LSB", {"payload_bits": 8, "sigma_delta": True}, True),
        (
            "8-bit sigma-delta thr 1 LSB",
            {"payload_bits": 8, "sigma_delta": True, "sd_threshold": 1.0},
            True,
        ),
        (
            "8-bit sigma-delta thr 4 LSB",
            {"payload_bits": 8, "sigma_delta": True, "sd_threshold": 4.0},
            True,
        ),
    ]
    if quick:
        configs = [c for c in configs if "16" not in c[0] and "4 LSB" not in c[0]]
    for name, kw, cal in configs:
        t0 = time.perf_counter()
        prog = get_backend("neuromorphic", **kw).prepare(spec)
        if cal:
            prog = prog.calibrate(x_cal)
        logits, rep = prog(x)
        acc = float((logits.argmax(1) == y).float().mean())
        agree = agreement(logits, ref)
        sd = rep.details["sigma_delta_events"]
        row = {
            "config": name,
            "accuracy": acc,
            "drop_vs_torch_points": 100 * (acc_t - acc),
            **agree,
            "payload_lsb_max": rep.details["payload_scale"],
            "sd_events_plain": sd["plain"],
            "sd_events_saved": sd["saved"],
            "sd_saved_fraction": sd["saved_fraction"],
            "n_val": n,
            **per_inference(rep),
            "wall_s": time.perf_counter() - t0,
        }
        rows.append(row)
        print(
            f"  {name:36s} acc {acc:.4f} agree {agree['prediction_agreement']:.4f} "
            f"E_dyn {row['energy_dynamic_j'] * 1e6:.3f} uJ  {row['wall_s']:.1f}s",
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------------- 2./3. cost
def untrained(n_nodes: int, d: int, frac: float, n_features: int) -> RSGN:
    torch.manual_seed(0)  # same seed: same geometry and weights for every active fraction
    return RSGN(n_features, 20, ModelConfig(n_nodes=n_nodes, d_hidden=d, target_active=frac))


def run_cost(model: RSGN, x: torch.Tensor, **kw):
    t0 = time.perf_counter()
    prog = get_backend("neuromorphic", **kw).prepare(model.export())
    prep = time.perf_counter() - t0
    _, rep = prog(x)
    return prog, rep, prep


def sweep(x: torch.Tensor, quick: bool) -> list[dict]:
    n_nodes, d = (1024, 16) if quick else (4096, 16)
    rows = []
    for frac in (0.01, 0.02, 0.05, 0.1):
        model = untrained(n_nodes, d, frac, x.shape[-1])
        for policy in nm.IDLE_POLICIES:
            _, rep, _ = run_cost(model, x, idle_policy=policy)
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


def scaling(x: torch.Tensor, quick: bool) -> tuple[list[dict], list[dict]]:
    """Dynamic energy ratio when the active fraction halves (touched_only), and cost vs N."""
    sizes = (256, 1024) if quick else (256, 1024, 4096, 16384, 65536)
    d = 8
    fracs = (0.1, 0.05, 0.025, 0.02, 0.01)
    pairs = ((0.1, 0.05), (0.05, 0.025), (0.02, 0.01))
    ratio_rows, size_rows = [], []
    for n_nodes in sizes:
        res = {}
        for frac in fracs:
            if math.floor(frac * n_nodes + 1e-9) < 2:
                continue
            model = untrained(n_nodes, d, frac, x.shape[-1])
            prog, rep, prep = run_cost(model, x, idle_policy="touched_only")
            res[frac] = rep
            row = {"n_nodes": n_nodes, "d_hidden": d, "target_active": frac}
            row.update(per_inference(rep))
            row.update(
                prepare_s=prep,
                cores_used=rep.details["mapping"]["cores_used"],
                n_chips=rep.details["mapping"]["n_chips"],
                neurons=rep.details["mapping"]["neurons"],
                synapses=rep.details["mapping"]["synapses"],
            )
            size_rows.append(row)
            print(
                f"  N {n_nodes:6d} f {frac:.3f} E_dyn {row['energy_dynamic_j'] * 1e6:10.3f} uJ"
                f"  lat {row['latency_mean_s'] * 1e6:8.2f} us  "
                f"{row['synops_per_wall_s'] / 1e6:.2f} M synops/s  prep {prep:.1f}s",
                flush=True,
            )
        for hi, lo in pairs:
            if hi not in res or lo not in res:
                continue
            a, b = res[hi].details, res[lo].details
            ea = np.asarray(a["dynamic_energy_per_inference_j"])
            eb = np.asarray(b["dynamic_energy_per_inference_j"])
            per_input = eb / ea
            ca, cb = a["event_counts"], b["event_counts"]
            ratio_rows.append(
                {
                    "n_nodes": n_nodes,
                    "d_hidden": d,
                    "frac_hi": hi,
                    "frac_lo": lo,
                    "active_fraction_ratio": res[lo].active_fraction / res[hi].active_fraction,
                    "dynamic_energy_ratio": float(eb.mean() / ea.mean()),
                    "per_input_ratio_mean": float(per_input.mean()),
                    "per_input_ratio_std": float(per_input.std()),
                    "events_ratio": cb["events"] / ca["events"],
                    "synops_ratio": cb["synops"] / ca["synops"],
                    "updates_ratio": cb["neuron_updates_active"] / ca["neuron_updates_active"],
                    "total_energy_ratio": res[lo].ledger.energy_j() / res[hi].ledger.energy_j(),
                    "within_5pct_of_half": bool(abs(eb.mean() / ea.mean() - 0.5) <= 0.025),
                    "n_inputs": len(ea),
                }
            )
            r = ratio_rows[-1]
            print(
                f"  N {n_nodes:6d} {hi:.3f}->{lo:.3f}: E_dyn ratio "
                f"{r['dynamic_energy_ratio']:.3f} (per input {r['per_input_ratio_mean']:.3f} +- "
                f"{r['per_input_ratio_std']:.3f}), events {r['events_ratio']:.3f}, updates "
                f"{r['updates_ratio']:.3f}",
                flush=True,
            )
    return ratio_rows, size_rows


# ---------------------------------------------------------------------------- 4. calibration
def truenorth(quick: bool) -> dict:
    """TrueNorth at 20 Hz x 128 synapses per neuron: power from the simulator's counted events.

    ``K`` cores of 256 LIF neurons each (one axon per neuron driving 128 synapses on the next
    core, TrueNorth's crossbar style), firing by external drive with probability 0.02 per 1 ms
    tick (20 Hz); zero synaptic weights keep the rate at the drive. Power of the K cores is
    simulated energy / simulated time; the chip figure scales it by 4096 / K cores.
    """
    prof = nm.load_preset("truenorth")
    topo = nm.Topology(prof)
    k_cores = 16 if quick else 64
    per, fan = 256, 128
    n = k_cores * per
    rng = np.random.default_rng(0)
    src = np.repeat(np.arange(n, dtype=np.int64), fan)
    core = src // per
    tgt_core = (core + 1) % k_cores
    local = np.concatenate([rng.choice(per, fan, replace=False) for _ in range(n)])
    dst = tgt_core * per + local
    syn = nm.SynapseList.from_arrays(src, dst, np.zeros(src.size), n)
    place = nm.place_sequential(n, topo, per_core=per)
    lif = nm.LIF(du=1.0, dv=1.0, v_th=1.0)
    net = nm.Network([nm.NeuronGroup("tn", n, lif, place)], syn)
    ticks = 50 if quick else 200
    drive = (rng.random((ticks, n)) < 0.02).astype(np.float64)
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only", record="none"))
    t0 = time.perf_counter()
    rep = sim.run(drive)
    wall = time.perf_counter() - t0
    c = rep.counts
    t_s = rep.latency_ps * 1e-12
    p_sub = rep.energy.total_pj * 1e-12 / t_s
    rate = c.events / (n * t_s)
    syn_per_spike = c.synops / c.events
    chip = p_sub * prof.chip.cores_per_chip / k_cores
    return {
        "cores_simulated": k_cores,
        "neurons_simulated": n,
        "ticks": ticks,
        "tick_s": t_s / ticks,
        "measured_rate_hz": rate,
        "synops_per_spike": syn_per_spike,
        "synops": c.synops,
        "energy_pj": rep.energy.total_pj,
        "power_simulated_cores_mw": p_sub * 1e3,
        "power_chip_scaled_mw": chip * 1e3,
        "power_chip_at_exact_20hz_mw": chip * 1e3 * 20.0 / rate,
        "reference_mw": "4096 x 256 x 20 Hz x 128 x 26 pJ = 69.8 mW (Merolla'14: 72 mW measured)",
        "reference_arithmetic_mw": 4096 * 256 * 20 * 128 * 26e-12 * 1e3,
        "wall_s": wall,
    }


def loihi(quick: bool) -> dict:
    """The Loihi worked example of the reference notes (16,384 nodes, d 64, 1.5 % active,
    fanout 32, 4 steps) and a single-event check, on the ``loihi`` preset."""
    prof = nm.load_preset("loihi")
    out: dict = {}
    # single event: one spike into one neuron on the same core
    topo = nm.Topology(prof)
    net = nm.Network(
        [nm.NeuronGroup("x", 2, nm.LIF(du=1.0, dv=1.0, v_th=10.0), np.zeros(2, np.int64))],
        nm.SynapseList.from_arrays(np.array([0]), np.array([1]), np.array([1.0]), 2),
    )
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only"))
    rep = sim.run(n_steps=1, initial_output=np.array([1.0, 0.0]))
    e = prof.energy
    out["single_event"] = {
        "simulated_dynamic_pj": rep.energy.dynamic_pj,
        "arithmetic_pj": e.tile_spike + e.synop + e.neuron_update_active,
        "terms": "1 intra-tile spike 1.7 + 1 synop 23.6 + 1 active update 81 pJ",
    }
    n_nodes = 4096 if quick else 16384
    d, fan, steps = 64, 32, 4
    c = d + 1
    n = n_nodes * c
    n_act = math.floor(0.015 * n_nodes)
    rng = np.random.default_rng(0)
    act = np.sort(rng.choice(n_nodes, n_act, replace=False))
    # each active node's d state compartments fire every step; each has 32 targets: the same
    # channel of nodes within +-64 (placement keeps them on nearby cores)
    src_n = np.repeat(act, fan)
    off = np.concatenate([rng.choice(np.r_[-64:0, 1:65], fan, replace=False) for _ in range(n_act)])
    dst_n = (src_n + off) % n_nodes
    k = np.arange(d)
    src = (src_n[:, None] * c + k).ravel()
    dst = (dst_n[:, None] * c + k).ravel()
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    per_core = prof.chip.core.max_neurons // c * c
    topo = nm.Topology.for_cores(prof, -(-n // per_core))
    place = nm.place_sequential(n, topo, per_core=per_core)
    lif = nm.LIF(du=1.0, dv=1.0, v_th=1.0)
    net = nm.Network(
        [nm.NeuronGroup("x", n, lif, place)],
        nm.SynapseList.from_arrays(src, dst, np.zeros(src.size), n),
    )
    fire = (act[:, None] * c + k).ravel()

    def drive(t):
        return fire, np.ones(fire.size)

    res = {}
    for policy in ("all", "touched_only"):
        sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy=policy, record="none"))
        r = sim.run(drive, n_steps=steps + 1)  # step 0 fires; steps 1..4 deliver and fire
        t = r.energy.terms
        res[policy] = {
            "synops_uj": t["synops"] * 1e-6,
            "neuron_updates_uj": (t["neuron_update_active"] + t["neuron_update_idle"]) * 1e-6,
            "routing_uj": (t["tile_spikes"] + t["hops_ew"] + t["hops_ns"] + t["chip_hops"]) * 1e-6,
            "static_uj": t["static"] * 1e-6,
            "latency_us": r.latency_ps * 1e-6,
            "synops": r.counts.synops,
            "updates": r.counts.neuron_updates_active + r.counts.neuron_updates_idle,
            "mean_hops_per_packet": (r.counts.hops_ew + r.counts.hops_ns + r.counts.chip_hops)
            / max(1, r.counts.packets),
            "n_chips": topo.n_chips,
        }
    out["worked_example"] = {
        "n_nodes": n_nodes,
        "d": d,
        "active_nodes": n_act,
        "fanout": fan,
        "steps_with_synops": steps,
        "simulated": res,
        "reference_arithmetic_uj": {
            "synops": n_act * d * fan * steps * e.synop * 1e-6,
            "all_compartments_idle_52pJ": n * steps * e.neuron_update_idle * 1e-6,
            "reference_notes_16384": "synops 47, routing 31 (3.9 hops avg on an 8x4 mesh), "
            "updates 222, static 5 (104 mW x 50 us)",
        },
    }
    return out


# ---------------------------------------------------------------------------- plots
def plots(out: Path, acc_rows, sweep_rows, ratio_rows, size_rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for policy in nm.IDLE_POLICIES:
        r = [x for x in sweep_rows if x["idle_policy"] == policy]
        f = [100 * x["target_active"] for x in r]
        ax[0].plot(f, [1e6 * x["energy_total_j"] for x in r], "o-", label=policy)
        ax[1].plot(f, [1e6 * x["latency_mean_s"] for x in r], "o-", label=policy)
    n0 = sweep_rows[0]["n_nodes"]
    ax[0].set(
        xlabel="target active fraction (%)",
        ylabel="energy per inference (uJ)",
        title=f"N={n0}, d={sweep_rows[0]['d_hidden']}, loihi2_est",
        yscale="log",
    )
    ax[1].set(
        xlabel="target active fraction (%)",
        ylabel="latency per inference (us)",
        title="latency (mean over inputs)",
    )
    ax[0].legend()
    fig.tight_layout()
    fig.savefig(out / "energy_latency_vs_active_fraction.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for frac in sorted({x["target_active"] for x in size_rows}):
        r = [x for x in size_rows if x["target_active"] == frac]
        ns = [x["n_nodes"] for x in r]
        ax[0].plot(ns, [1e6 * x["energy_dynamic_j"] for x in r], "o-", label=f"{frac:.3f}")
        ax[1].plot(ns, [1e6 * x["latency_mean_s"] for x in r], "o-", label=f"{frac:.3f}")
    ax[0].set(
        xscale="log",
        yscale="log",
        xlabel="nodes",
        ylabel="dynamic energy / inference (uJ)",
        title="touched_only, d=8, untrained",
    )
    ax[1].set(xscale="log", yscale="log", xlabel="nodes", ylabel="latency / inference (us)")
    ax[0].legend(title="active fraction")
    fig.tight_layout()
    fig.savefig(out / "energy_latency_vs_nodes.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for hi, lo in sorted({(x["frac_hi"], x["frac_lo"]) for x in ratio_rows}, reverse=True):
        r = [x for x in ratio_rows if (x["frac_hi"], x["frac_lo"]) == (hi, lo)]
        ax.errorbar(
            [x["n_nodes"] for x in r],
            [x["dynamic_energy_ratio"] for x in r],
            yerr=[x["per_input_ratio_std"] for x in r],
            fmt="o-",
            capsize=3,
            label=f"{hi:g} -> {lo:g}",
        )
    ax.axhspan(0.475, 0.525, color="g", alpha=0.15, label="0.5 +- 5%")
    ax.set(
        xscale="log",
        xlabel="nodes",
        ylabel="E_dyn(f/2) / E_dyn(f)",
        title="halving the active fraction (touched_only)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "dynamic_energy_halving.png", dpi=90)
    plt.close(fig)

    r = [x for x in acc_rows if x["config"] != "torch"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh([x["config"] for x in r], [100 * x["accuracy"] for x in r])
    ax.axvline(100 * acc_rows[0]["accuracy"], color="k", ls="--", label="torch")
    ax.set(xlabel="validation accuracy (%)", title="trained RSGN on the simulated chip")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_by_mode.png", dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sweeps (< 2 minutes)")
    ap.add_argument(
        "--out",
        default=None,
        help="output folder (default: next to this file; --quick: a quick/ subfolder)",
    )
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else (HERE / "quick" if a.quick else HERE)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "sched_setaffinity"):  # one core: the speed target is per core
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    res: dict = {"machine": machine(), "quick": a.quick, "command": " ".join(sys.argv)}
    parts = {}
    ds = make_task(TASK, DataConfig(n_samples=200), seed=1)
    x_cost = ds.x_val[: 4 if a.quick else 16]

    t0 = time.perf_counter()
    print("calibration", flush=True)
    res["truenorth"] = truenorth(a.quick)
    print(
        f"  TrueNorth: {res['truenorth']['power_chip_scaled_mw']:.1f} mW at "
        f"{res['truenorth']['measured_rate_hz']:.2f} Hz",
        flush=True,
    )
    res["loihi"] = loihi(a.quick)
    parts["calibration_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print("accuracy", flush=True)
    acc_rows = accuracy(out, a.quick)
    parts["accuracy_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print("active fraction x idle policy", flush=True)
    sweep_rows = sweep(x_cost, a.quick)
    parts["sweep_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print("scaling and halving", flush=True)
    ratio_rows, size_rows = scaling(x_cost, a.quick)
    parts["scaling_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    res["library_bench_synops_per_s"] = bench_events.main(
        ["--neurons", "65536", "--repeats", "3"] if not a.quick else ["--repeats", "1"]
    )
    parts["bench_s"] = time.perf_counter() - t0

    speed = [x["synops_per_wall_s"] for x in size_rows]
    res["backend_speed_synops_per_s"] = {
        "min": min(speed),
        "median": float(np.median(speed)),
        "max": max(speed),
        "at_largest_n": [
            x["synops_per_wall_s"] for x in size_rows if x["n_nodes"] == size_rows[-1]["n_nodes"]
        ],
        "trained_model_float": [x["synops_per_wall_s"] for x in acc_rows[1:2]],
    }
    res["accuracy"] = acc_rows
    res["sweep"] = sweep_rows
    res["halving"] = ratio_rows
    res["node_scaling"] = size_rows
    res["wall_s"] = {**parts, "total": time.perf_counter() - t_start}
    write_csv(out / "accuracy.csv", acc_rows)
    write_csv(out / "active_fraction_idle_policy.csv", sweep_rows)
    write_csv(out / "halving.csv", ratio_rows)
    write_csv(out / "node_scaling.csv", size_rows)
    from rsgn.checkpoint import atomic_write_bytes

    atomic_write_bytes(
        out / "results.json", (json.dumps(res, indent=1, default=float) + "\n").encode()
    )
    plots(out, acc_rows, sweep_rows, ratio_rows, size_rows)
    print(f"done in {res['wall_s']['total']:.0f} s -> {out}", flush=True)


if __name__ == "__main__":
    main()
