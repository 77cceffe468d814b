"""The sparse train step and inference of two installs of rsgn, alternated on one machine.

    python studies/sparse_vs_dense/before_after.py --before /path/to/old/venv/bin/python \
        [--sizes 256,4096,65536] [--rounds 3] [--out before_after.json]

Each round runs ``bench.py --one sparse N`` (a fresh process: build, one warm-up step, then the
median of ``--repeats`` train steps and inferences) under the ``--before`` interpreter and under
this one, alternating, so both versions see the same machine state; the table gives, per N,
the median over rounds of each version's medians and the ratio after / before. ``--before``
is an interpreter whose ``import rsgn`` is the older version (e.g. a virtual environment with
``pip install --no-deps -e <old checkout>``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE / "bench.py"


def one(python: str, n: int, repeats: int) -> dict:
    cmd = [python, str(BENCH), "--one", "sparse", str(n), "--repeats", str(repeats)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def version(python: str) -> str:
    code = "import rsgn, sys; print(rsgn.__version__, rsgn.__file__)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="interpreter of the older install")
    ap.add_argument("--sizes", default="256,4096,65536")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "before_after.json"))
    args = ap.parse_args()
    pythons = {"before": args.before, "after": sys.executable}
    sizes = [int(s) for s in args.sizes.split(",")]
    runs: dict[str, dict[int, list[dict]]] = {k: {n: [] for n in sizes} for k in pythons}
    for r in range(args.rounds):
        for n in sizes:
            order = list(pythons) if r % 2 == 0 else list(reversed(pythons))
            for label in order:
                res = one(pythons[label], n, args.repeats)
                runs[label][n].append(res)
                print(
                    f"round {r + 1} N={n:6d} {label:6s} train {res['train_step_s']:.4f}s "
                    f"infer {res['infer_s']:.4f}s",
                    flush=True,
                )
    rows = []
    for n in sizes:
        row: dict = {"n_nodes": n}
        for label in pythons:
            for key in ("train_step_s", "infer_s"):
                row[f"{label}_{key}"] = statistics.median(x[key] for x in runs[label][n])
        for key in ("train_step_s", "infer_s"):
            row[f"ratio_{key}"] = row[f"after_{key}"] / row[f"before_{key}"]
        rows.append(row)
    from rsgn.checkpoint import atomic_write_json

    meta = {
        "command": " ".join(["python", "studies/sparse_vs_dense/before_after.py", *sys.argv[1:]]),
        "before": version(args.before),
        "after": version(sys.executable),
        "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "repeats": args.repeats,
    }
    atomic_write_json(args.out, {"meta": meta, "rows": rows, "runs": runs})
    print(
        "| N | train before (s) | train after (s) | after/before | infer before (s) "
        "| infer after (s) | after/before |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n_nodes']} | {r['before_train_step_s']:.4f} | {r['after_train_step_s']:.4f} "
            f"| {r['ratio_train_step_s']:.3f} | {r['before_infer_s']:.4f} "
            f"| {r['after_infer_s']:.4f} | {r['ratio_infer_s']:.3f} |"
        )


if __name__ == "__main__":
    main()
