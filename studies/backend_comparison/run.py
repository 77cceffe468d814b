"""Backend comparison: one trained RSGN per paper task, the same validation inputs on every backend.

    OMP_NUM_THREADS=1 python studies/backend_comparison/run.py            # train + compare
    OMP_NUM_THREADS=1 python studies/backend_comparison/run.py --skip-train

Uses only the ``rsgn train`` and ``rsgn compare`` commands. Per task it trains the RSGN and a
Transformer baseline, then runs two compares:

- ``all``: torch, optical ``ideal`` and ``bench``, neuromorphic ``loihi2_est`` and
  ``spinnaker2`` (one row per target:preset), and the Transformer (``--baseline``) costed on
  the same electronic model;
- ``triton``: torch and Triton under ``TRITON_INTERPRET=1`` on a small ``--limit`` (the
  interpreter runs every kernel in numpy, so it is slow);

``neuromorphic:loihi`` and ``neuromorphic:truenorth`` (binary spikes only) are not rows: compare
refuses them before any work (a one-line error, exit 2), which the README records.

Checkpoints go to ``runs/`` (git-ignored); each compare's report (JSON/CSV/MD + PNGs) goes to
``<task>/<setting>/`` and a merged table of every backend x preset to ``summary.{json,csv,md}``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rsgn.checkpoint import atomic_write_bytes

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"

# trained as before issue 18 (the README's numbers were measured so): --config paper-training
TRAIN = {
    "hierarchical": [
        "--config", "paper-training", "--set", "data.n_samples=3000", "--set", "train.lr=3e-3",
        "--epochs", "8",
    ],
    "long-range": [
        "--config", "paper-training", "--set", "data.n_samples=1500", "--set", "model.n_steps=5",
        "--set", "train.lr=3e-3", "--epochs", "6",
    ],
}  # fmt: skip

BASELINE = "transformer"  # trained with the RSGN's training settings, its default size

SETTINGS = {
    "all": [
        "torch",
        "optical:ideal",
        "optical:bench",
        "neuromorphic:loihi2_est",
        "neuromorphic:spinnaker2",
    ],
    "triton": ["torch", "triton"],
}

SUMMARY_COLS = [
    "task",
    "setting",
    "row",
    "status",
    "n_samples",
    "accuracy",
    "agreement",
    "max_abs_logit_err",
    "latency_s_per_inference",
    "latency_p50_s",
    "latency_p99_s",
    "latency_kind",
    "energy_j_per_inference",
    "energy_kind",
    "events_per_inference",
    "active_fraction",
]


def without_lr(args: list[str]) -> list[str]:
    """``args`` without its ``--set train.lr=...`` pair."""
    out: list[str] = []
    for a in args:
        if a.startswith("train.lr="):
            out.pop()  # its "--set"
        else:
            out.append(a)
    return out


def sh(cmd: list[str], env: dict | None = None) -> float:
    print("$", " ".join(cmd), flush=True)
    t = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    p = subprocess.run(cmd, env=env)
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    return time.perf_counter() - t


def fmt(v) -> str:
    if isinstance(v, str) and v.startswith("n/a: torch is the reference"):
        return "(reference)"
    if isinstance(v, float):
        return f"{v:.3g}"
    if v is None:
        return ""
    s = str(v)
    return s.replace("|", "/")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--limit", type=int, default=256, help="validation samples per compare")
    ap.add_argument("--triton-limit", type=int, default=32)
    ap.add_argument("--tasks", default="hierarchical,long-range")
    ap.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help="compares to run; the summary merges every <task>/<setting>/compare.json on disk",
    )
    args = ap.parse_args()
    rsgn = [sys.executable, "-m", "rsgn.cli"]
    t_all = time.perf_counter()
    log: dict = {"commands": [], "wall_s": {}}
    rows: list[dict] = []
    for task in args.tasks.split(","):
        run, base = RUNS / task, RUNS / f"{task}-{BASELINE}"
        if not args.skip_train:
            for model, folder in (("rsgn", run), (BASELINE, base)):
                shutil.rmtree(folder, ignore_errors=True)  # fresh runs (runs/ is git-ignored)
                # the baseline at its own default learning rate
                args_ = TRAIN[task] if model == "rsgn" else without_lr(TRAIN[task])
                cmd = [*rsgn, "train", "--task", task, "--model", model, *args_]
                cmd += ["--seed", "0", "--out", str(folder), "--quiet"]
                log["wall_s"][f"train {task} {model}"] = sh(cmd)
                log["commands"].append(cmd)
        for setting in [s for s in args.settings.split(",") if s]:
            out = HERE / task / setting
            shutil.rmtree(out, ignore_errors=True)  # this study's own report (compare never
            # overwrites one: it would write a numbered sibling)
            limit = args.triton_limit if setting == "triton" else args.limit
            cmd = [*rsgn, "compare", "--ckpt", str(run), "--task", task]
            cmd += ["--backends", ",".join(SETTINGS[setting]), "--limit", str(limit)]
            cmd += ["--out", str(out)]
            if setting == "all":
                cmd += ["--baseline", str(base)]
            env = {"TRITON_INTERPRET": "1"} if setting == "triton" else {}
            log["wall_s"][f"compare {task} {setting}"] = sh(cmd, env)
            log["commands"].append((["TRITON_INTERPRET=1"] if env else []) + cmd)
    log["wall_s"]["total (this invocation)"] = time.perf_counter() - t_all
    for task in TRAIN:
        for setting in SETTINGS:
            f = HERE / task / setting / "compare.json"
            if not f.exists():
                continue
            for r in json.loads(f.read_text())["rows"]:
                if "row" not in r:  # a report of the version-1 compare (another format)
                    continue
                if setting != "all" and r["row"].startswith("torch"):
                    continue  # the torch reference row is the same in every setting
                rows.append({"task": task, "setting": setting, **r})
    root = str(HERE.parents[1]) + "/"
    rel = [["python" if c == sys.executable else str(c).replace(root, "") for c in cmd]
           for cmd in log["commands"]]  # fmt: skip
    meta = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "omp_num_threads": 1,
        },
        "limit": args.limit,
        "triton_limit": args.triton_limit,
        "invocations": [],
    }
    old = HERE / "summary.json"
    if old.exists() and args.skip_train:  # a fresh training starts the record over
        prev = json.loads(old.read_text())
        meta["invocations"] = prev.get("invocations") or [
            {"command": "OMP_NUM_THREADS=1 python studies/backend_comparison/run.py", **{
                k: prev[k] for k in ("commands", "wall_s") if k in prev}}
        ]  # fmt: skip
    argv = " ".join(["OMP_NUM_THREADS=1 python studies/backend_comparison/run.py", *sys.argv[1:]])
    meta["invocations"].append(
        {"command": argv, "commands": [" ".join(c) for c in rel], "wall_s": log["wall_s"]}
    )
    text = json.dumps({**meta, "rows": rows}, indent=1, default=str)
    atomic_write_bytes(HERE / "summary.json", text.encode())
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()})
    atomic_write_bytes(HERE / "summary.csv", buf.getvalue().encode())
    cols = [
        "task", "setting", "row", "status", "n_samples", "accuracy", "agreement",
        "latency_s_per_inference", "latency_kind", "energy_j_per_inference",
    ]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        ok = r.get("status") == "ok"
        cells = [fmt(r.get(c)) if ok or c in cols[:4] else "" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    atomic_write_bytes(HERE / "summary.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    print(json.dumps(log["wall_s"], indent=1))


if __name__ == "__main__":
    main()
