"""Optical design space: energy per inference and per MAC-equivalent of the Poincaré core against
N, fan-out, symbol rate, ENOB, laser power (the link's target SNR), wavelengths and the node
devices' holding power; the crossover with the int8 electronic baseline; published optical
accelerators side by side.

    OMP_NUM_THREADS=1 python studies/optical_design/run.py [--quick] [--out DIR]

Every figure comes from the targets themselves: the ``optical`` target (preset ``bench``, noise
off: the architecture's cost, not an accuracy; one change per sweep point through options or
preset overrides) and the ``torch`` target priced at int8 and fp32 (the electronic baselines),
on the same untrained RSGNs (seed 0, 32 input features, 20 classes, sequence 64, library
defaults otherwise) and the same inputs (2 samples).

Per point: the optical program's energy per inference, its optical core's share (ops ``ignite``,
``attend``, ``static``: the readings with their converters, lasers, receivers, node devices and
the electronics around them) and the MAC-equivalents it read ((D + 1) per ignition reading and
'attend' pair: the MACs the electronic model spends on the same distances); the electronic
baselines' energy per inference and the energy of their ``ignite`` + ``attend`` ops (the same
distances computed electronically) per MAC they count there.

Outputs (OUT = studies/optical_design/results): ``results.json`` (every point, machine,
command), ``points.csv``, ``energy_vs_nodes.png``, ``core_per_mac_vs_nodes.png``,
``sweeps.png``, ``published.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rsgn import optics
from rsgn.backends import get_backend
from rsgn.backends.optical.cost import OPTICAL_CORE_OPS
from rsgn.checkpoint import atomic_write_bytes
from rsgn.config import ModelConfig
from rsgn.model import RSGN

HERE = Path(__file__).resolve().parent
FEATURES, CLASSES, SEQ, BATCH = 32, 20, 64, 2
BENCH = optics.load_preset("bench")
WALDEN_J = BENCH.adc.energy_per_sample / 2.0**BENCH.adc.enob  # 16.5 fJ per conversion step
ENOB_DEFICIT = BENCH.adc.bits - BENCH.adc.enob  # 1.51 bits, kept when the ENOB is swept

# Published energies per multiply-accumulate (J); "what" says what each figure covers.
PUBLISHED = [
    {
        "name": "Lightmatter photonic processor (Nature 2025)",
        "j_per_mac": 2 * 79.6 / 65.5e12,
        "what": "measured system: 78 W electrical + 1.6 W optical at 65.5 TOPS (ABFP16), "
        "2 operations per MAC",
        "source": "Lightmatter2025",
    },
    {
        "name": "coherent VCSEL ONN (Chen 2023)",
        "j_per_mac": 2 * 7e-15,
        "what": "the system's reachable efficiency, 7 fJ per operation, 2 operations per MAC",
        "source": "Chen2023",
    },
    {
        "name": "<1 photon per multiplication (Wang 2022)",
        "j_per_mac": 2.4e-19,
        "what": "detected optical energy only, 0.64 photons per MAC",
        "source": "Wang2022",
    },
    {
        "name": "standard quantum limit (Hamerly 2019)",
        "j_per_mac": 50e-21,
        "what": "optical energy limit of photoelectric multiplication",
        "source": "Hamerly2019",
    },
    {
        "name": "45 nm int8 MAC (Horowitz 2014)",
        "j_per_mac": 0.23e-12,
        "what": "8-bit multiply + add, arithmetic only",
        "source": "Horowitz2014",
    },
    {
        "name": "45 nm fp32 MAC (Horowitz 2014)",
        "j_per_mac": 4.6e-12,
        "what": "32-bit FP multiply + add, arithmetic only",
        "source": "Horowitz2014",
    },
]


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "note": "2 shared CPU cores; every figure here is modelled (counts x energies), not timed",
    }


def spec_for(n: int, d_space: int):
    torch.manual_seed(0)
    cfg = ModelConfig(n_nodes=n, d_space=d_space, hebbian=False)
    return RSGN(FEATURES, CLASSES, cfg).export()


def inputs() -> torch.Tensor:
    return torch.randn(BATCH, SEQ, FEATURES, generator=torch.Generator().manual_seed(1))


def core_breakdown(ledger) -> dict[str, float]:
    """Optical-core energy (J, whole call) by device class."""
    table = ledger.table.events
    cls = {
        "adc_sample": "ADC",
        "receiver_window": "receivers (PD + TIA)",
        "laser_window": "lasers",
        "dac_sample": "DAC + encoder",
        "encoder_symbol": "DAC + encoder",
        "node_hold_window": "node devices",
        "node_setting": "node devices",
    }
    out: dict[str, float] = {}
    for op in OPTICAL_CORE_OPS:
        for ev, n in ledger.counts.get(op, {}).items():
            key = cls.get(ev, "electronics around the readings")
            out[key] = out.get(key, 0.0) + n * table[ev].joules()
    return out


def optical_point(spec, x, options: dict, overrides: dict | None = None) -> dict:
    text = ",".join(f"{k}={v!r}" for k, v in (overrides or {}).items())
    be = get_backend("optical", preset="bench", noise=False, overrides=text, **options)
    prog = be.prepare(spec)
    _, rep = prog(x)
    n = rep.n_samples
    det = rep.details
    core = det["optical_core_energy_j_per_inference"]
    macs = det["mac_equivalents_per_inference"]
    return {
        "energy_j_per_inference": rep.energy_per_inference.value,
        "core_j_per_inference": core,
        "mac_equivalents_per_inference": macs,
        "core_j_per_mac_eq": core / macs,
        "core_breakdown_j_per_inference": {k: v / n for k, v in core_breakdown(rep.ledger).items()},
        "latency_s": rep.latency.value,
        "system": det["system"],
    }


def electronic_point(spec, x, precision: str) -> dict:
    _, rep = get_backend("torch", precision=precision).prepare(spec)(x)
    by_op = rep.ledger.energy_by_op()
    counts = rep.ledger.counts
    mac = "mac_int8" if precision == "int8" else "mac_fp32"
    dist_ops = ("ignite", "attend")
    dist = sum(by_op.get(op, 0.0) for op in dist_ops)
    macs = sum(counts.get(op, {}).get(mac, 0.0) for op in dist_ops)
    n = rep.n_samples
    return {
        "energy_j_per_inference": rep.energy_per_inference.value,
        "distances_j_per_inference": dist / n,
        "distance_macs_per_inference": macs / n,
        "distances_j_per_mac": dist / macs,
    }


# ---------------------------------------------------------------------------------- sweeps
def enob_overrides(enob: float) -> dict:
    """An ADC at ``enob`` effective bits (nominal bits = enob + the bench's 1.51 deficit,
    rounded up), energy by the bench ADC's Walden figure of merit, and the link matched to its
    SNDR (as the bench preset's link is)."""
    bits = math.ceil(enob + ENOB_DEFICIT)
    return {
        "adc.bits": bits,
        "adc.enob": enob,
        "adc.energy_per_sample": WALDEN_J * 2.0**enob,
        "link.target_snr_db": round(float(optics.sqnr_db(enob)), 3),
    }


def sweeps(quick: bool) -> dict[str, list]:
    if quick:
        return {
            "fanout": [1, 16, 0],
            "symbol_rate_gbd": [2.5, 10.0],
            "enob": [4.0, 6.49],
            "target_snr_db": [20.0, 40.8],
            "wavelengths": [1, 4],
            "holding_power_w": [0.0, 1.0],
            "attend": ["keep", "reread"],
        }
    return {
        "fanout": [1, 4, 16, 64, 0],
        "symbol_rate_gbd": [1.0, 2.5, 5.0, 10.0],
        "enob": [3.0, 4.0, 5.0, 6.49],
        "target_snr_db": [20.0, 26.0, 32.0, 38.0, 40.8, 44.0],
        "wavelengths": [1, 2, 4, 8],
        "holding_power_w": [0.0, 1e-3, 0.1, 1.0],
        "attend": ["keep", "reread"],
    }


def sweep_point(name: str, v: float) -> tuple[dict, dict]:
    """(options, overrides) of one sweep value around the bench point."""
    if name == "fanout":
        return {"fanout": int(v)}, {}
    if name == "symbol_rate_gbd":
        return {}, {"encoder.symbol_rate": v * 1e9}
    if name == "enob":
        return {}, enob_overrides(v)
    if name == "target_snr_db":
        return {}, {"link.target_snr_db": v}
    if name == "wavelengths":
        return {"wavelengths": int(v)}, {}
    if name == "holding_power_w":
        return {}, {"node.holding_power": v}
    if name == "attend":
        return {"attend": v}, {}
    raise ValueError(name)


def crossover(ns: list[int], optical: list[float], electronic: list[float]) -> float | None:
    """The N (log-log interpolation) where the optical curve drops below the electronic one,
    None if it never does over ``ns`` (also reported: whether it is below at the first N)."""
    diff = [math.log(o) - math.log(e) for o, e in zip(optical, electronic, strict=True)]
    if diff[0] < 0:
        return float(ns[0])
    for i in range(1, len(ns)):
        if diff[i] < 0 <= diff[i - 1]:
            t = diff[i - 1] / (diff[i - 1] - diff[i])
            return float(
                math.exp(math.log(ns[i - 1]) + t * (math.log(ns[i]) - math.log(ns[i - 1])))
            )
    return None


def best_corner() -> tuple[dict, dict]:
    """The most favourable corner inside the regimes this preset allows: 4 effective bits
    (link matched), node devices without holding power (non-volatile), 'attend' re-read instead
    of stored, the largest fan-out the laser allows and the fastest symbol rate the converters
    take (10 GBd, the bench's)."""
    return {"attend": "reread"}, {**enob_overrides(4.0), "node.holding_power": 0.0}


# ---------------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_vs_nodes(res: dict, out: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, d in zip(axes, (3, 8), strict=True):
        rows = [r for r in res["vs_nodes"] if r["d_space"] == d]
        ns = [r["n_nodes"] for r in rows]
        ax.plot(ns, [r["optical"]["energy_j_per_inference"] for r in rows], "D-", c="C3",
                label="optical bench (whole inference)")  # fmt: skip
        ax.plot(ns, [r["int8"]["energy_j_per_inference"] for r in rows], "o-", c="C0",
                label="electronic int8 (whole inference)")  # fmt: skip
        ax.plot(ns, [r["fp32"]["energy_j_per_inference"] for r in rows], "s--", c="C7",
                label="electronic fp32 (whole inference)")  # fmt: skip
        ax.plot(ns, [r["optical"]["core_j_per_inference"] for r in rows], "D:", c="C3",
                alpha=0.7, label="optical core only (ignite, attend, static)")  # fmt: skip
        ax.plot(ns, [r["int8"]["distances_j_per_inference"] for r in rows], "o:", c="C0",
                alpha=0.7, label="int8 ignite + attend only")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("nodes N")
        ax.set_ylabel("modelled energy per inference (J)")
        ax.set_title(f"D = {d}" + (" (one beam's H^3)" if d == 3 else " (planar pairs)"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Energy per inference vs N: optical bench core vs electronic baselines (45 nm)")
    fig.tight_layout()
    _save(fig, out / "energy_vs_nodes.png")
    plt.close(fig)


def plot_core_per_mac(res: dict, out: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, d in zip(axes, (3, 8), strict=True):
        rows = [r for r in res["vs_nodes"] if r["d_space"] == d]
        ns = [r["n_nodes"] for r in rows]
        kinds = sorted({k for r in rows for k in r["optical"]["core_breakdown_j_per_inference"]})
        colors = ["C1", "C2", "C4", "C5", "C6", "C8", "C9"]
        for i, k in enumerate(kinds):
            ys = [
                r["optical"]["core_breakdown_j_per_inference"].get(k, 0.0)
                / r["optical"]["mac_equivalents_per_inference"]
                for r in rows
            ]
            ax.plot(ns, [max(y, 1e-18) for y in ys], ".-", c=colors[i % len(colors)], lw=1, label=k)
        ax.plot(ns, [r["optical"]["core_j_per_mac_eq"] for r in rows], "D-", c="C3", lw=2,
                label="optical core, total")  # fmt: skip
        ax.plot(ns, [r["int8"]["distances_j_per_mac"] for r in rows], "o-", c="C0", lw=2,
                label="int8 electronics, same distances")  # fmt: skip
        ax.plot(ns, [r["fp32"]["distances_j_per_mac"] for r in rows], "s--", c="C7",
                label="fp32 electronics, same distances")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(1e-16, 1e-10)
        ax.set_xlabel("nodes N")
        ax.set_ylabel("energy per MAC-equivalent (J)")
        ax.set_title(f"D = {d}: optical core per MAC-equivalent, by device (bench)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower left")
    fig.tight_layout()
    _save(fig, out / "core_per_mac_vs_nodes.png")
    plt.close(fig)


SWEEP_LABEL = {
    "fanout": "fan-out F (channels per source; 0 plotted at the auto value)",
    "symbol_rate_gbd": "encoder symbol rate (GBd)",
    "enob": "ADC ENOB (bits; link matched)",
    "target_snr_db": "laser power, all sources (W) [link target SNR 20 ... 44 dB]",
    "wavelengths": "wavelengths W",
    "holding_power_w": "node device holding power (W per device)",
    "attend": "'attend' distances: readings kept in SRAM or re-read",
}


def _total_laser_w(system: dict) -> float:
    """Optical power of all the core's sources (W)."""
    return system["lasers"] * system["laser_power_w"]


def plot_sweeps(res: dict, out: Path) -> None:
    plt = _plt()
    names = list(res["sweeps"])
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), squeeze=False)
    int8 = res["sweep_baseline"]["int8"]["distances_j_per_mac"]
    fp32 = res["sweep_baseline"]["fp32"]["distances_j_per_mac"]
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        pts = res["sweeps"][name]
        if name == "target_snr_db":
            xs = [_total_laser_w(p["optical"]["system"]) for p in pts]
        elif name == "fanout":
            xs = [p["optical"]["system"]["fanout"] for p in pts]
        elif name == "holding_power_w":
            xs = [max(p["value"], 1e-4) for p in pts]
        elif name == "attend":
            xs = list(range(len(pts)))
            ax.set_xticks(xs, [p["value"] for p in pts])
        else:
            xs = [p["value"] for p in pts]
        ax.plot(xs, [p["optical"]["core_j_per_mac_eq"] for p in pts], "D-", c="C3",
                label="optical core per MAC-eq")  # fmt: skip
        ax.axhline(int8, c="C0", label="int8 electronics, same distances")
        ax.axhline(fp32, c="C7", ls="--", label="fp32 electronics, same distances")
        if name in ("fanout", "target_snr_db", "holding_power_w", "symbol_rate_gbd"):
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(SWEEP_LABEL[name], fontsize=8)
        ax.set_ylabel("J per MAC-equivalent")
        ax.grid(True, which="both", alpha=0.3)
        if name == "holding_power_w":
            ax.text(1.2e-4, int8 * 1.3, "0 W plotted at 1e-4", fontsize=7)
        if name == names[0]:
            ax.legend(fontsize=7)
    n = res["sweep_nodes"]
    fig.suptitle(
        f"One change at a time around the bench point (N = {n}, D = 3): the optical core's "
        "energy per MAC-equivalent"
    )
    fig.tight_layout()
    _save(fig, out / "sweeps.png")
    plt.close(fig)


def plot_published(res: dict, out: Path) -> None:
    plt = _plt()
    rows = [(p["name"], p["j_per_mac"], "C7") for p in PUBLISHED]
    for r in res["ours"]:
        rows.append((r["name"], r["j_per_mac"], "C3"))
    rows.sort(key=lambda t: t[1])
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y, [r[1] for r in rows], color=[r[2] for r in rows])
    ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("energy per multiply-accumulate (J); red: this model (modelled)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    for yy, r in zip(y, rows, strict=True):
        ax.text(r[1] * 1.15, yy, f"{r[1]:.2g}", va="center", fontsize=7)
    ax.set_xlim(1e-21, 1e-9)
    fig.tight_layout()
    _save(fig, out / "published.png")
    plt.close(fig)


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run: checks the pipeline")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    out = args.out or HERE / ("results_quick" if args.quick else "results")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    x = inputs()
    ns = [64, 256, 1024] if args.quick else [64, 256, 1024, 4096, 16384]
    res: dict = {
        "command": "OMP_NUM_THREADS=1 python studies/optical_design/run.py"
        + (" --quick" if args.quick else ""),
        "machine": machine_info(),
        "model": {"features": FEATURES, "classes": CLASSES, "seq": SEQ, "batch": BATCH},
        "vs_nodes": [],
        "published": PUBLISHED,
    }
    for d in (3, 8):
        for n in ns:
            spec = spec_for(n, d)
            row = {
                "n_nodes": n,
                "d_space": d,
                "optical": optical_point(spec, x, {}),
                "optical_best": optical_point(spec, x, *best_corner()),
                "int8": electronic_point(spec, x, "int8"),
                "fp32": electronic_point(spec, x, "fp32"),
            }
            res["vs_nodes"].append(row)
            print(f"[{time.perf_counter() - t0:6.0f}s] N={n} D={d}", file=sys.stderr)
    res["crossover"] = {}
    for d in (3, 8):
        rows = [r for r in res["vs_nodes"] if r["d_space"] == d]
        nn = [r["n_nodes"] for r in rows]
        for what, key_o, key_e in (
            ("whole inference, bench", ("optical", "energy_j_per_inference"),
             ("int8", "energy_j_per_inference")),
            ("distances, bench", ("optical", "core_j_per_inference"),
             ("int8", "distances_j_per_inference")),
            ("distances, best corner", ("optical_best", "core_j_per_inference"),
             ("int8", "distances_j_per_inference")),
        ):  # fmt: skip
            o = [r[key_o[0]][key_o[1]] for r in rows]
            e = [r[key_e[0]][key_e[1]] for r in rows]
            res["crossover"][f"D={d}: {what}"] = {
                "n_nodes_where_optical_below_int8": crossover(nn, o, e),
                "ratio_optical_over_int8_at_largest_n": o[-1] / e[-1],
                "ratio_optical_over_int8_at_smallest_n": o[0] / e[0],
            }
    n_sweep = 256 if args.quick else 1024
    spec = spec_for(n_sweep, 3)
    res["sweep_nodes"] = n_sweep
    res["sweep_baseline"] = {p: electronic_point(spec, x, p) for p in ("int8", "fp32")}
    res["sweeps"] = {}
    for name, values in sweeps(args.quick).items():
        pts = []
        for v in values:
            opts, over = sweep_point(name, v)
            try:
                pts.append({"value": v, "optical": optical_point(spec, x, opts, over)})
            except Exception as exc:  # an out-of-regime point is a result too
                pts.append({"value": v, "error": str(exc)})
        res["sweeps"][name] = [p for p in pts if "optical" in p]
        res.setdefault("sweep_errors", {})[name] = [p for p in pts if "error" in p]
        print(f"[{time.perf_counter() - t0:6.0f}s] swept {name}", file=sys.stderr)
    big = max(ns)
    ours = []
    for r in res["vs_nodes"]:
        if r["n_nodes"] in (min(ns), big):
            ours.append(
                {
                    "name": f"this core, bench, N = {r['n_nodes']}, D = {r['d_space']}",
                    "j_per_mac": r["optical"]["core_j_per_mac_eq"],
                }
            )
        if r["n_nodes"] == big and r["d_space"] == 3:
            ours.append(
                {
                    "name": f"this core, best corner, N = {big}, D = 3",
                    "j_per_mac": r["optical_best"]["core_j_per_mac_eq"],
                }
            )
    res["ours"] = ours
    res["wall_seconds"] = time.perf_counter() - t0
    atomic_write_bytes(out / "results.json", json.dumps(res, indent=1, default=float).encode())
    with open(out / "points.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "n_nodes",
                "d_space",
                "optical_j_per_inference",
                "optical_core_j_per_inference",
                "optical_core_j_per_mac_eq",
                "optical_best_core_j_per_mac_eq",
                "int8_j_per_inference",
                "int8_distances_j_per_mac",
                "fp32_j_per_inference",
                "fanout",
                "laser_power_w",
            ]
        )
        for r in res["vs_nodes"]:
            o = r["optical"]
            w.writerow(
                [
                    r["n_nodes"],
                    r["d_space"],
                    o["energy_j_per_inference"],
                    o["core_j_per_inference"],
                    o["core_j_per_mac_eq"],
                    r["optical_best"]["core_j_per_mac_eq"],
                    r["int8"]["energy_j_per_inference"],
                    r["int8"]["distances_j_per_mac"],
                    r["fp32"]["energy_j_per_inference"],
                    o["system"]["fanout"],
                    o["system"]["laser_power_w"],
                ]
            )
    plot_vs_nodes(res, out)
    plot_core_per_mac(res, out)
    plot_sweeps(res, out)
    plot_published(res, out)
    print(
        json.dumps({"wall_seconds": res["wall_seconds"], "crossover": res["crossover"]}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
