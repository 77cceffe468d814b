"""Issue 20's benchmark: the compiled CPU step against the eager sparse step and the dense
formulation, the demo's wall time before and after, and data-parallel throughput.

    python studies/cpu_compiled/bench.py                          # everything -> results.json/.md
    python studies/cpu_compiled/bench.py --before-python /path/to/old/venv/bin/python \\
        --before-root /path/to/old/checkout                    # + the demo of an older rsgn
    python studies/cpu_compiled/bench.py --quick                   # N = 256, 1,024; 1 DDP epoch

Three parts, one run, one machine:

1. Train step (forward + cross-entropy + backward + AdamW) and inference at N = 256 ... 65,536,
   batch 64, sequence 64, hidden 128: ``dense`` (N x N), ``sparse`` (eager reference ops) and
   ``compiled`` (the torch target's default numba table), each (model, N) in a fresh process
   (``studies/sparse_vs_dense/bench.py --kinds dense,sparse,compiled``).
2. ``rsgn demo`` wall time and accuracy: ``compile=eager`` and the default (numba) at HEAD, and
   the demo of an older checkout when ``--before-python``/``--before-root`` are given.
3. Data-parallel training throughput (samples per second of training, evaluation excluded):
   ``rsgn train --nproc 1`` and ``--nproc 2`` (gloo) on the demo's data and model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STEPS = ROOT / "studies" / "sparse_vs_dense" / "bench.py"


def run_steps(quick: bool, out: Path, model: str, sizes: str | None = None) -> dict:
    """Part 1: the sparse-vs-dense bench with the compiled model added, for one RSGN
    configuration (``twin``: the dense formulation's own model; ``default``: the package's)."""
    cmd = [sys.executable, str(STEPS), "--kinds", "dense,sparse,compiled", "--out", str(out)]
    cmd += ["--model", model]
    if sizes:
        cmd += ["--sizes", sizes]
    if quick:
        cmd.append("--quick")
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def run_demo(python: str, cwd: Path, args: list[str]) -> dict:
    """Part 2: one ``rsgn demo``: wall time of the whole command, and its own summary."""
    cmd = [python, "-m", "rsgn.cli", "demo", *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"demo failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
    acc = re.search(r"validation accuracy ([0-9.]+)", p.stdout)
    train_s = re.search(r"train time ([0-9.]+) s", p.stdout)
    return {
        "command": " ".join(["rsgn demo", *args]),
        "cwd": str(cwd),
        "wall_s": wall,
        "train_s": float(train_s.group(1)) if train_s else None,
        "accuracy": float(acc.group(1)) if acc else None,
    }


def run_ddp(nproc: int, epochs: int) -> dict:
    """Part 3: ``rsgn train --nproc N`` on the demo's data; training samples per second."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "rsgn.cli",
            "train",
            "--task",
            "hierarchical",
            "--config",
            "paper-training",
            "--set",
            "data.n_samples=3000",
            "--epochs",
            str(epochs),
            "--nproc",
            str(nproc),
            "--quiet",
            "--out",
            str(out),
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        m = json.loads((out / "metrics.json").read_text())
    n_train = m["splits"]["train"]
    train_s = sum(h["seconds"] for h in m["history"])
    return {
        "nproc": nproc,
        "epochs": epochs,
        "train_samples": n_train,
        "train_s": train_s,
        "samples_per_s": n_train * epochs / train_s,
        "wall_s": wall,
        "accuracy": m["accuracy"],
    }


def table(res: dict) -> str:
    out = [
        "# Compiled CPU step, demo, data-parallel throughput",
        "",
        f"Machine: {res['steps']['meta']['machine']}; torch {res['steps']['meta']['torch']}; "
        f"{res['date']}. Command: `{res['command']}`",
        "",
        "## Train step and inference: one model, sparse and dense (`--model twin`)",
        "",
        Path(res["steps_md"]).read_text().split("\n", 3)[3],
        "## Train step and inference: the package's default model (`--model default`)",
        "",
        Path(res["default_steps_md"]).read_text().split("\n", 3)[3],
        "## The demo (`rsgn demo`: 8 epochs, 2,400 samples)",
        "",
        "| run | wall time (s) | training (s) | validation accuracy |",
        "|---|---|---|---|",
    ]
    for d in res["demo"]:
        out.append(
            f"| `{d['command']}` ({d['cwd']}) | {d['wall_s']:.1f} | {d['train_s']:.1f} | "
            f"{d['accuracy']:.3f} |"
        )
    out += [
        "",
        "## Data-parallel training (gloo, `rsgn train --nproc N`, demo data and model)",
        "",
        "| processes | training samples/s | training (s) | epochs | accuracy |",
        "|---|---|---|---|---|",
    ]
    for d in res["ddp"]:
        out.append(
            f"| {d['nproc']} | {d['samples_per_s']:.0f} | {d['train_s']:.1f} | "
            f"{d['epochs']} | {d['accuracy']:.3f} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 256, 1,024; one DDP epoch")
    ap.add_argument("--before-python", help="python of an older rsgn install (its demo)")
    ap.add_argument("--before-root", help="that install's checkout (the demo's working folder)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    out = Path(args.out)
    steps_json = out.with_name(out.stem + "_steps.json")
    res: dict = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d"),
        "cpu_threads": os.cpu_count(),
    }
    res["steps"] = run_steps(args.quick, steps_json, "twin")
    res["steps_md"] = str(steps_json.with_suffix(".md"))
    default_json = out.with_name(out.stem + "_steps_default.json")
    res["default_steps"] = run_steps(args.quick, default_json, "default", "256,1024")
    res["default_steps_md"] = str(default_json.with_suffix(".md"))
    demos = []
    if args.before_python:
        demos.append(run_demo(args.before_python, Path(args.before_root or ROOT), []))
    demos.append(run_demo(sys.executable, ROOT, ["--backend-arg", "compile=eager"]))
    demos.append(run_demo(sys.executable, ROOT, []))
    res["demo"] = demos
    for d in demos:
        print(f"demo {d['command']} ({d['cwd']}): {d['wall_s']:.1f} s, acc {d['accuracy']}")
    epochs = 1 if args.quick else 3
    res["ddp"] = [run_ddp(n, epochs) for n in (1, 2)]
    for d in res["ddp"]:
        print(f"ddp nproc={d['nproc']}: {d['samples_per_s']:.0f} samples/s")
    from rsgn.checkpoint import atomic_write_bytes, atomic_write_json

    atomic_write_json(out, res)
    atomic_write_bytes(out.with_suffix(".md"), table(res).encode())
    print(table(res))


if __name__ == "__main__":
    main()
