"""Optical Poincaré-core validation: accuracy and energy vs device parameters, with and without
hardware-aware training, on both paper tasks.

    OMP_NUM_THREADS=1 python studies/optical_validation/run.py [--quick] [--out DIR]
        [--hwaware | --all] [--tasks T1,T2] [--trainings K1,K2] [--train-seed S]

Per task: train a small RSGN on ``torch`` (plain) and on ``optical-aware`` (bench-preset
surrogates in the loop); evaluate both on the torch reference and on the ``optical`` backend
(bench preset and one-parameter sweeps of laser power (the link's target SNR), detector noise
(load resistance at the bench's detector power), ADC bits, extinction ratio and element angle
error), accuracy as mean, std and 95% CI (Student t) over noise draws
(``rsgn.evaluation.evaluate(..., repeats=R)``), modelled energy per inference from the optical
program's report. The energy design space (N, fan-out, symbol rate, ENOB, laser power, the
crossover with int8 electronics) is ``studies/optical_design``. Checkpoints go to ``OUT/runs``
(regenerated; not committed); ``results.json``, ``sweeps.csv`` and PNG plots to OUT.

``--hwaware`` runs only the hardware-aware-training rows (:func:`run_hwaware`): per task a plain,
a bench-aware and a ``lowpower``-aware model (larger data sets: 2,000 / 1,000 validation samples),
each evaluated on torch and on the optical core at ``bench`` and ``lowpower`` with 10 noise
seeds; paired gaps with two-way-bootstrap 95% CIs into ``hwaware.json/.csv/.png``.  ``--all``
runs both parts.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from rsgn import optics
from rsgn.backends import get_backend
from rsgn.backends.base import Program
from rsgn.backends.optical.cost import energy_by_domain
from rsgn.backends.optical.validation import accuracy_vs_torch
from rsgn.checkpoint import load_model, read_checkpoint
from rsgn.config import apply_overrides as config_overrides
from rsgn.config import load_config
from rsgn.data import make_task
from rsgn.evaluation import evaluate
from rsgn.model import RSGN
from rsgn.training import train

HERE = Path(__file__).resolve().parent

# The first study's model: the library defaults when it ran (d_hidden 128, affinity rank 32, no
# token encoder, no token skip path), pinned so that later default changes do not change it.
FIRST = [
    "model.d_hidden=128",
    "model.affinity_rank=32",
    "model.encoder_width=0",
    "model.token_skip=false",
    "model.d_space=3",  # one beam's H^3: the core's native ball (D > 3 needs a state per pair)
]
TASKS_FULL = {
    "hierarchical": (["data.n_samples=3000", "train.lr=3e-3", *FIRST], 8),
    "long-range": (["data.n_samples=1500", "model.n_steps=5", "train.lr=3e-3", *FIRST], 6),
}
TASKS_QUICK = {
    "hierarchical": (["data.n_samples=500", "train.lr=3e-3", "model.n_nodes=128", *FIRST], 2),
    "long-range": (["data.n_samples=300", "model.n_steps=2", "train.lr=3e-3", *FIRST], 1),
}

# Hardware-aware training rows (--hwaware): larger data sets so that the validation split has
# 2,000 (hierarchical) / 1,000 (long-range) samples; the model settings the first study used are
# pinned explicitly, so a change of the library defaults does not change these runs.
PINNED = [
    "model.n_nodes=256",
    "model.d_hidden=128",
    "model.affinity_rank=32",
    "model.d_space=3",
    "model.init_state=mean",
    "model.target_active=0.05",
    "model.encoder_width=0",
    "model.token_skip=false",
    "train.lr=3e-3",
]
HWAWARE_TASKS = {
    "hierarchical": (["data.n_samples=10000", *PINNED, "model.n_steps=5"], 8),
    "long-range": (["data.n_samples=5000", *PINNED, "model.n_steps=5"], 6),
}
HWAWARE_TASKS_QUICK = {
    "hierarchical": (["data.n_samples=500", *PINNED, "model.n_nodes=128", "model.n_steps=3"], 2),
    "long-range": (["data.n_samples=300", *PINNED, "model.n_steps=2"], 1),
}
HARSH = "lowpower"
HWAWARE_TRAININGS = (
    # (row name, training backend, training preset)
    ("plain", "torch", None),
    ("aware-bench", "optical-aware", "bench"),
    (f"aware-{HARSH}", "optical-aware", HARSH),
)

BENCH = optics.load_preset("bench")
ENOB_DEFICIT = BENCH.adc.bits - BENCH.adc.enob  # 1.51 bits, kept when the ADC bits are swept
ADC_J_PER_STEP = BENCH.adc.energy_per_sample / 2.0**BENCH.adc.enob  # Walden FoM 16.5 fJ/step


def sweep_specs(quick: bool) -> dict[str, dict]:
    """Sweep name -> values (display units) and the preset overrides (SI) at each value."""
    if quick:
        vals = {
            "target_snr_db": [20.0, 40.8],
            "load_resistance_ohm": [5.0, 50.0],
            "adc_bits": [4, 8],
            "extinction_ratio_dB": [10.0, 30.0],
            "angle_error_deg": [0.1, 2.0],
        }
    else:
        vals = {
            "target_snr_db": [14.0, 20.0, 26.0, 32.0, 40.8, 45.0],
            "load_resistance_ohm": [5.0, 50.0, 500.0, 5000.0],
            "adc_bits": [4, 6, 8, 10, 12],
            "extinction_ratio_dB": [10.0, 20.0, 30.0, 40.0],
            "angle_error_deg": [0.0, 0.1, 1.0, 3.0],
        }
    return vals


def overrides_for(name: str, v: float) -> dict[str, float]:
    """Preset overrides (SI) of one sweep value around the bench point:

    - ``target_snr_db``: the link budget's target, which sets the detector and laser power (the
      sweep's x axis is the resulting source laser power);
    - ``load_resistance_ohm``: detector noise at the bench's detector power (the target SNR set
      to what that power gives with this load: the power stays, the noise changes);
    - ``adc_bits``: ENOB = bits - 1.51 (the bench ADC's deficit), energy by its Walden figure of
      merit (16.5 fJ per step);
    - ``extinction_ratio_dB``: the node diattenuators' extinction ratio;
    - ``angle_error_deg``: the azimuth error of node elements and of written states.
    """
    if name == "target_snr_db":
        return {"link.target_snr_db": v}
    if name == "load_resistance_ohm":
        det = dataclasses.replace(BENCH.receiver_params(), load_resistance=v)
        snr = float(optics.snr(BENCH.detector_power(), BENCH.noise_bandwidth, det))
        return {"detector.load_resistance": v, "link.target_snr_db": 10 * math.log10(snr)}
    if name == "adc_bits":
        enob = max(0.5, v - ENOB_DEFICIT)
        return {"adc.bits": v, "adc.enob": enob, "adc.energy_per_sample": ADC_J_PER_STEP * 2**enob}
    if name == "extinction_ratio_dB":
        return {"node.extinction_ratio": 10.0 ** (v / 10.0)}
    if name == "angle_error_deg":
        return {"node.angle_error": math.radians(v), "encoder.angle_error": math.radians(v)}
    raise ValueError(name)


def overrides_text(changes: dict[str, float]) -> str:
    """The optical targets' ``overrides`` option for ``changes`` (SI values)."""
    return ",".join(f"{k}={v!r}" for k, v in changes.items())


def optical_program(net: RSGN, preset: str, seed: int, changes: dict | None = None) -> Program:
    """The net on the optical target (noise on) at ``preset`` with constants ``changes``."""
    be = get_backend(
        "optical", preset=preset, seed=seed, noise=True, overrides=overrides_text(changes or {})
    )
    return be.prepare(net.export())


def torch_program(net: RSGN) -> Program:
    return get_backend("torch").prepare(net.export())


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def ci95(vals: list[float]) -> tuple[float, float]:
    a = np.asarray(vals, dtype=float)
    if len(a) < 2 or a.std(ddof=1) == 0:
        return float(a.mean()), 0.0
    return float(a.mean()), float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / len(a) ** 0.5)


def predict(program, x: torch.Tensor, bs: int) -> tuple[torch.Tensor, list]:
    preds, reps = [], []
    for s in range(0, x.shape[0], bs):
        logits, rep = program(x[s : s + bs])
        preds.append(logits.argmax(1).cpu())
        reps.append(rep)
    return torch.cat(preds), reps


def optical_eval(net, x, y, changes, repeats, bs=300) -> dict:
    """``repeats`` noise draws (seeds 0 ...) of the bench core with constants ``changes``."""
    be = get_backend("optical", preset="bench", seed=0, overrides=overrides_text(changes))
    ev = evaluate(net, x, y, be, batch_size=bs, repeats=repeats)
    rep = ev.report
    details = rep.details.get("per_batch", [rep.details])[0]  # a merged report keeps each batch's
    lo, hi = ev.noise.ci95
    return {
        "accuracy_mean": ev.noise.mean,
        "accuracy_std": ev.noise.std,
        "accuracy_ci95_half": 0.5 * (hi - lo),
        "accuracies": ev.noise.accuracies,
        "energy_j_per_inference": rep.energy_per_inference.value,
        "energy_by_domain": {k: v / rep.n_samples for k, v in energy_by_domain(rep.ledger).items()},
        "system": details["system"],
    }


def train_or_load(
    task, overrides, epochs, backend, out: Path, log, preset: str | None = None
) -> tuple[RSGN, dict, object]:
    """Train (or reuse the complete checkpoint in ``out``) on ``backend`` with ``preset``."""
    # trained as before issue 18 (the README's numbers were measured so)
    cfg = config_overrides(load_config("paper-training"), [*overrides, f"train.epochs={epochs}"])
    ds = make_task(task, cfg.data, seed=cfg.train.seed)
    ck = out / "checkpoint.pt"
    if ck.exists() and read_checkpoint(ck).get("complete"):
        metrics = json.loads((out / "metrics.json").read_text())
    else:
        metrics = train(cfg, ds, out, backend=backend, preset=preset, resume=ck.exists(), log=log)
    net, _, _ = load_model(ck)
    return net.eval(), metrics, ds


def graph_weight_error(net, seed: int = 0) -> dict:
    """Relative RMS error of the graph's edge weights vs torch: optical (bench) and surrogate."""
    spec = net.export()
    with torch.no_grad():
        w_t = torch_program(net).graph.w
        w_o = optical_program(net, "bench", seed).graph.w
        w_a = get_backend("optical-aware", preset="bench", seed=seed).prepare(spec).graph.w
        m = spec.weights.in_mask

        def rel(w):
            return float(((w - w_t)[m]).pow(2).mean().sqrt() / w_t[m].pow(2).mean().sqrt())

    return {"optical_bench": rel(w_o), "optical_aware_surrogate": rel(w_a)}


# ---------------------------------------------------------------------------------- plots
SWEEP_X = {
    "target_snr_db": "laser power, all sources (W) [link target SNR]",
    "load_resistance_ohm": "load resistance (ohm) [thermal noise ~ 1/R]",
    "adc_bits": "ADC bits (ENOB = bits - 1.51)",
    "extinction_ratio_dB": "node extinction ratio (dB)",
    "angle_error_deg": "element angle error (deg; 0 plotted at 0.01)",
}


def _sweep_x(name: str, pts: list[dict]) -> list[float]:
    if name == "target_snr_db":
        return [pt["system"]["lasers"] * pt["system"]["laser_power_w"] for pt in pts]
    if name == "angle_error_deg":
        return [max(pt["value"], 0.01) for pt in pts]
    return [pt["value"] for pt in pts]


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for task, tr in results["tasks"].items():
        names = list(tr["sweeps"])
        fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names), 6.4), squeeze=False)
        for j, name in enumerate(names):
            ax, ax_e = axes[0, j], axes[1, j]
            for kind, color in (("plain", "C0"), ("aware", "C3")):
                pts = tr["sweeps"][name][kind]
                xs = _sweep_x(name, pts)
                ax.errorbar(
                    xs,
                    [100 * pt["accuracy_mean"] for pt in pts],
                    yerr=[100 * pt["accuracy_ci95_half"] for pt in pts],
                    marker="o",
                    color=color,
                    capsize=3,
                    label=f"{kind} training",
                )
                ax.axhline(100 * tr[kind]["torch_accuracy"], color=color, ls=":", lw=1)
                if kind == "plain":
                    ax_e.plot(
                        xs, [1e6 * pt["energy_j_per_inference"] for pt in pts], "o-", color="k"
                    )
            for a in (ax, ax_e):
                a.set_xlabel(SWEEP_X[name], fontsize=8)
                if name in ("target_snr_db", "load_resistance_ohm", "angle_error_deg"):
                    a.set_xscale("log")
                a.grid(True, which="both", alpha=0.3)
            if j == 0:
                ax.set_ylabel("optical accuracy (%)  [dotted: torch]")
                ax_e.set_ylabel("modelled energy / inference (uJ, plain model)")
                ax.legend(fontsize=7)
        fig.suptitle(
            f"{task}: optical core, one bench constant changed per panel; mean and 95% CI "
            "over noise draws"
        )
        fig.tight_layout()
        fig.savefig(out / f"sweep_{task}.png", dpi=110)
        plt.close(fig)


# ---------------------------------------------------------------------------------- hw-aware
def per_sample_correct(program, x: torch.Tensor, y: torch.Tensor, bs: int = 500) -> np.ndarray:
    """0/1 correctness of every sample (float64 array)."""
    pred, _ = predict(program, x, bs)
    return (pred == y.cpu()).double().numpy()


def paired_gap(
    c_ref: np.ndarray, c_opt: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    r"""Paired accuracy gap :math:`\bar g = \frac{1}{Sn}\sum_{s,i}(c^{ref}_i - c^{opt}_{s,i})` of
    a reference correctness vector ``c_ref`` [n] and optical correctness ``c_opt`` [S, n] (same
    validation samples, S noise seeds), in points of accuracy.

    95% CI: percentile interval of a two-way bootstrap that resamples both the validation samples
    and the noise seeds (``n_boot`` resamples), so it covers the validation-sampling error and
    the device/noise-seed error together (two-way resampling is slightly conservative).  Also
    given: the two one-way standard errors, over samples :math:`sd_i(D_i)/\sqrt n` with
    :math:`D_i = c^{ref}_i - \bar c^{opt}_{\cdot i}`, and over seeds :math:`sd_s(g_s)/\sqrt S`.
    """
    c_opt = np.atleast_2d(c_opt)
    s_n, n = c_opt.shape
    diff = c_ref[None, :] - c_opt  # [S, n]
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        si = rng.integers(0, s_n, s_n)
        ii = rng.integers(0, n, n)
        boots[b] = diff[np.ix_(si, ii)].mean()
    d_i = diff.mean(0)
    g_s = diff.mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {
        "gap_points": 100 * float(diff.mean()),
        "ci95_points": [100 * float(lo), 100 * float(hi)],
        "se_samples_points": 100 * float(d_i.std(ddof=1) / math.sqrt(n)),
        "se_seeds_points": 100 * float(g_s.std(ddof=1) / math.sqrt(s_n)) if s_n > 1 else 0.0,
        "n_samples": int(n),
        "n_seeds": int(s_n),
    }


def preset_summary(p: optics.OpticalPreset) -> dict:
    """The target-relevant constants of a preset, as written in its TOML (value and unit)."""
    keys = (
        "link.target_snr_db",
        "encoder.symbol_rate",
        "detector.load_resistance",
        "adc.bits",
        "adc.enob",
        "dac.bits",
        "encoder.split_error",
        "node.extinction_ratio",
        "node.insertion_loss_db",
        "node.angle_error",
        "node.retardance_error",
    )
    out = {k: p.provenance[k].given for k in keys}
    out["detector_full_scale_power_W (derived)"] = p.detector_power()
    out["noise_bandwidth_Hz (derived)"] = p.noise_bandwidth
    return out


def run_hwaware(
    out: Path,
    quick: bool,
    n_seeds: int,
    log,
    *,
    task_names: list[str] | None = None,
    train_seed: int = 0,
    trainings: list[str] | None = None,
) -> dict:
    """With and without hardware-aware training at the bench and the harsh preset, both tasks.

    Per task, three trainings with the same seed and data: ``plain`` (torch), ``aware-bench``
    and ``aware-<HARSH>`` (optical-aware with that preset's surrogates).  Each model is evaluated
    on torch and on the optical backend at both presets with ``n_seeds`` noise seeds on the whole
    validation split; gaps are paired (same samples) with :func:`paired_gap`.  ``train_seed``
    other than 0 (a replicate: new initialisation, data order and task instance, since the data
    generator is seeded with it too) adds ``train.seed`` and a ``_s<seed>`` run-folder suffix;
    ``task_names`` / ``trainings`` restrict the tasks and training rows (``plain`` is always run:
    it is the reference).
    """
    t0 = time.perf_counter()
    tasks = dict(HWAWARE_TASKS_QUICK if quick else HWAWARE_TASKS)
    if task_names:
        tasks = {t: tasks[t] for t in task_names}
    if train_seed:
        tasks = {t: ([*ov, f"train.seed={train_seed}"], ep) for t, (ov, ep) in tasks.items()}
    suffix = f"_s{train_seed}" if train_seed else ""
    kinds = [
        k for k in HWAWARE_TRAININGS if trainings is None or k[0] in trainings or k[0] == "plain"
    ]
    presets = {name: get_backend("optical", preset=name).preset for name in ("bench", HARSH)}
    seeds = list(range(n_seeds))
    res: dict = {
        "presets": {k: preset_summary(p) for k, p in presets.items()},
        "n_seeds": n_seeds,
        "ci_method": "two-way bootstrap over validation samples and noise seeds, 2000 resamples",
        "train_seed": train_seed,
        "tasks": {},
    }
    rows = []
    for task, (ov, epochs) in tasks.items():
        tr: dict = {"overrides": ov, "epochs": epochs, "models": {}}
        correct: dict = {}
        for kind, backend, tpreset in kinds:
            print(f"[{time.perf_counter() - t0:6.0f}s] hwaware {task}: {kind}", file=log)
            net, metrics, ds = train_or_load(
                task,
                ov,
                epochs,
                backend,
                out / "runs" / "hwaware" / f"{task}_{kind}{suffix}",
                log,
                preset=tpreset,
            )
            x, y = ds.x_val, ds.y_val
            c_t = per_sample_correct(torch_program(net), x, y)
            entry = {
                "training_backend": backend,
                "training_preset": tpreset,
                "train_seconds": metrics["train_seconds"],
                "n_train": int(len(ds.y_train)),
                "n_val": int(len(y)),
                "torch_accuracy": float(c_t.mean()),
                "optical": {},
            }
            correct[kind] = {"torch": c_t}
            for pname in presets:
                te = time.perf_counter()
                c_o = np.stack(
                    [per_sample_correct(optical_program(net, pname, s), x, y) for s in seeds]
                )
                correct[kind][pname] = c_o
                acc_s = c_o.mean(1)
                entry["optical"][pname] = {
                    "accuracy_mean": float(acc_s.mean()),
                    "accuracy_per_seed": acc_s.tolist(),
                    "drop_vs_own_torch": paired_gap(c_t, c_o),
                    "eval_seconds": time.perf_counter() - te,
                }
            tr["models"][kind] = entry
        # the target: plain model on torch (the reference) vs each model on the core
        ref = correct["plain"]["torch"]
        tr["gap_vs_torch_reference"] = {
            pname: {kind: paired_gap(ref, correct[kind][pname]) for kind in correct}
            for pname in presets
        }
        for pname in presets:
            for kind in correct:
                g = tr["gap_vs_torch_reference"][pname][kind]
                m = tr["models"][kind]
                rows.append(
                    {
                        "task": task,
                        "train_seed": train_seed,
                        "training": kind,
                        "eval_preset": pname,
                        "n_val": m["n_val"],
                        "n_seeds": n_seeds,
                        "torch_accuracy_reference": float(ref.mean()),
                        "torch_accuracy_own": m["torch_accuracy"],
                        "optical_accuracy": m["optical"][pname]["accuracy_mean"],
                        "gap_vs_reference_points": g["gap_points"],
                        "gap_ci95_lo": g["ci95_points"][0],
                        "gap_ci95_hi": g["ci95_points"][1],
                        "drop_vs_own_torch_points": m["optical"][pname]["drop_vs_own_torch"][
                            "gap_points"
                        ],
                    }
                )
        res["tasks"][task] = tr
    res["rows"] = rows
    res["wall_seconds"] = time.perf_counter() - t0
    return res


def write_hwaware(res: dict, out: Path, stem: str = "hwaware") -> None:
    """``STEM.json``, ``STEM.csv`` and ``STEM.png`` (gap with CI per task/preset)."""
    from rsgn.checkpoint import atomic_write_bytes

    atomic_write_bytes(out / f"{stem}.json", json.dumps(res, indent=1, default=float).encode())
    rows = res["rows"]
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(res["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    kinds = list(dict.fromkeys(r["training"] for r in rows))
    for j, task in enumerate(tasks):
        ax = axes[0, j]
        sub = [r for r in rows if r["task"] == task]
        pnames = list(dict.fromkeys(r["eval_preset"] for r in sub))
        for i, kind in enumerate(kinds):
            pts = [
                next(r for r in sub if r["training"] == kind and r["eval_preset"] == p)
                for p in pnames
            ]
            xs = np.arange(len(pnames)) + (i - (len(kinds) - 1) / 2) * 0.25
            g = np.array([r["gap_vs_reference_points"] for r in pts])
            lo = g - np.array([r["gap_ci95_lo"] for r in pts])
            hi = np.array([r["gap_ci95_hi"] for r in pts]) - g
            ax.bar(xs, g, width=0.25, color=f"C{i}", label=f"{kind} training")
            ax.errorbar(xs, g, yerr=[lo, hi], fmt="none", color="k", capsize=3)
        ax.axhline(1.0, color="grey", ls=":", lw=1)
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_xticks(range(len(pnames)), [f"optical {p}" for p in pnames])
        ax.set_ylabel("torch reference acc. - optical acc. (points)")
        ax.set_title(
            f"{task}, train seed {sub[0]['train_seed']} (n_val {sub[0]['n_val']}, "
            f"{sub[0]['n_seeds']} noise seeds, 95% CI)"
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run (< 3 min): checks the pipeline")
    ap.add_argument("--out", type=Path, default=None, help="output folder")
    ap.add_argument(
        "--hwaware",
        action="store_true",
        help="run only the hardware-aware-training rows (bench and harsh preset) -> hwaware.*",
    )
    ap.add_argument(
        "--all", action="store_true", help="run the sweeps and then the hardware-aware rows"
    )
    ap.add_argument("--tasks", default=None, help="--hwaware: comma-separated task subset")
    ap.add_argument(
        "--train-seed", type=int, default=0, help="--hwaware: training seed (replicates)"
    )
    ap.add_argument(
        "--trainings", default=None, help="--hwaware: subset of plain,aware-bench,aware-lowpower"
    )
    ap.add_argument(
        "--replot", action="store_true", help="redraw the sweep plots from OUT/results.json"
    )
    args = ap.parse_args(argv)
    out = args.out or HERE / ("results_quick" if args.quick else "results")
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        plot(json.loads((out / "results.json").read_text()), out)
        return 0
    t0 = time.perf_counter()
    if args.hwaware or args.all:
        res = run_hwaware(
            out,
            args.quick,
            2 if args.quick else 10,
            sys.stderr,
            task_names=args.tasks.split(",") if args.tasks else None,
            train_seed=args.train_seed,
            trainings=args.trainings.split(",") if args.trainings else None,
        )
        res["command"] = "OMP_NUM_THREADS=1 python studies/optical_validation/run.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])
        )
        res["machine"] = machine_info()
        default = not (args.tasks or args.train_seed or args.trainings)
        write_hwaware(res, out, "hwaware" if default else f"hwaware_seed{args.train_seed}")
        print(
            json.dumps({"hwaware_rows": res["rows"], "wall_seconds": res["wall_seconds"]}, indent=1)
        )
        if args.hwaware:
            return 0
    tasks = TASKS_QUICK if args.quick else TASKS_FULL
    head_seeds = list(range(2 if args.quick else 5))
    sweep_repeats = 2 if args.quick else 3
    log = sys.stderr
    results: dict = {
        "command": "OMP_NUM_THREADS=1 python studies/optical_validation/run.py"
        + (" --quick" if args.quick else ""),
        "machine": machine_info(),
        "bench_preset": preset_summary(BENCH),
        "tasks": {},
    }
    specs = sweep_specs(args.quick)
    sweep_rows = []
    for task, (ov, epochs) in tasks.items():
        tr: dict = {"overrides": ov, "epochs": epochs, "sweeps": {}}
        nets = {}
        for kind, backend in (("plain", "torch"), ("aware", "optical-aware")):
            print(f"[{time.perf_counter() - t0:6.0f}s] {task}: train {kind} ({backend})", file=log)
            net, metrics, ds = train_or_load(
                task, ov, epochs, backend, out / "runs" / f"{task}_{kind}", log
            )
            nets[kind] = net
            x, y = ds.x_val, ds.y_val
            head = accuracy_vs_torch(net, x, y, "bench", head_seeds)
            drop_m, drop_h = ci95([head["torch_accuracy"] - a for a in head["optical_accuracy"]])
            tr[kind] = {
                "backend": backend,
                "train_seconds": metrics["train_seconds"],
                "val_accuracy_at_train_end": metrics["accuracy"],
                "torch_accuracy": head["torch_accuracy"],
                "bench_optical_accuracy": head["optical_accuracy"],
                "bench_optical_accuracy_mean_ci95": ci95(head["optical_accuracy"]),
                "bench_agreement_with_torch": head["agreement_with_torch"],
                "bench_drop_vs_own_torch_mean_ci95": (drop_m, drop_h),
                "n_val": int(len(y)),
                "graph_weight_rel_rms_error": graph_weight_error(net),
            }
        ref = tr["plain"]["torch_accuracy"]
        gap = [ref - a for a in tr["aware"]["bench_optical_accuracy"]]
        tr["target"] = {
            "definition": "aware-trained model on the bench optical core vs the plainly trained "
            "model on torch (the reference), points of accuracy, mean and 95% CI over seeds",
            "gap_points_mean_ci95": [100 * v for v in ci95(gap)],
            "met_within_1_point": bool(100 * ci95(gap)[0] <= 1.0),
        }
        x, y = ds.x_val, ds.y_val
        torch_e = torch_program(nets["plain"])(x[:64])[1]
        tr["torch_energy_j_per_inference"] = torch_e.ledger.energy_j() / torch_e.n_samples
        for name, values in specs.items():
            tr["sweeps"][name] = {}
            for kind in ("plain", "aware"):
                pts = []
                for v in values:
                    r = optical_eval(nets[kind], x, y, overrides_for(name, v), sweep_repeats)
                    pts.append({"value": v, **r})
                    sweep_rows.append(
                        {
                            "task": task,
                            "training": kind,
                            "sweep": name,
                            "value": v,
                            "torch_accuracy": tr[kind]["torch_accuracy"],
                            "optical_accuracy_mean": r["accuracy_mean"],
                            "optical_accuracy_std": r["accuracy_std"],
                            "optical_accuracy_ci95_half": r["accuracy_ci95_half"],
                            "energy_j_per_inference": r["energy_j_per_inference"],
                            "laser_power_w": r["system"]["laser_power_w"],
                            "detector_full_scale_w": r["system"]["detector_full_scale_w"],
                            "n_repeats": sweep_repeats,
                        }
                    )
                tr["sweeps"][name][kind] = pts
            print(f"[{time.perf_counter() - t0:6.0f}s] {task}: swept {name}", file=log)
        results["tasks"][task] = tr

    results["wall_seconds"] = time.perf_counter() - t0

    from rsgn.checkpoint import atomic_write_bytes

    atomic_write_bytes(out / "results.json", json.dumps(results, indent=1, default=float).encode())
    with open(out / "sweeps.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(sweep_rows[0]))
        w.writeheader()
        w.writerows(sweep_rows)
    plot(results, out)
    summary = {
        t: {
            "torch_plain": r["plain"]["torch_accuracy"],
            "torch_aware": r["aware"]["torch_accuracy"],
            "bench_plain": r["plain"]["bench_optical_accuracy_mean_ci95"],
            "bench_aware": r["aware"]["bench_optical_accuracy_mean_ci95"],
            "target": r["target"],
        }
        for t, r in results["tasks"].items()
    }
    print(json.dumps({"wall_seconds": results["wall_seconds"], "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
