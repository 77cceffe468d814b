"""What splitting nodes over cores costs on the simulated chip: one checkpoint, one preset, the
same validation samples at several ``node_split`` values (``rsgn.backends.neuromorphic``).

    OMP_NUM_THREADS=1 python studies/backend_comparison/node_split.py \\
        --ckpt RUN --task hierarchical --preset loihi2_est --splits auto,1,2,4,8 --limit 256

``auto`` is the backend's default (the smallest split that fits). A split at which the
mapping does not fit is reported with the backend's one-line reason. Writes
``node_split_<preset>.{json,md}`` into ``--out`` (default: this folder / TASK), atomically.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from rsgn.backends import get_backend
from rsgn.checkpoint import atomic_write_bytes, load_model
from rsgn.data import make_task
from rsgn.errors import RsgnError
from rsgn.evaluation import evaluate
from rsgn.spec import ModelSpec

HERE = Path(__file__).resolve().parent


def run_one(
    spec: ModelSpec, x: torch.Tensor, y: torch.Tensor, ref: torch.Tensor, preset: str, split
) -> dict:
    """One split through ``rsgn.evaluation``: accuracy, agreement with the torch logits ``ref``
    (measured on the same samples), mapping, energy and latency per inference."""
    row: dict = {"node_split": "auto" if split is None else split}
    t0 = time.perf_counter()
    try:
        be = get_backend("neuromorphic", preset=preset, node_split=split)
        be.check(spec)
        res = evaluate(spec, x, y, be, batch_size=64, keep_logits=True)
    except RsgnError as exc:
        return {**row, "status": f"failed: {exc}"}
    rep = res.report
    batches = rep.details.get("per_batch", [rep.details])
    n = rep.n_samples
    mp = batches[-1]["mapping"]
    return {
        **row,
        "status": "ok",
        "used_split": mp["node_split"],
        "nodes_per_core": mp["nodes_per_core"],
        "cores_used": mp["cores_used"],
        "chips": mp["n_chips"],
        "n_samples": n,
        "accuracy": res.accuracy,
        "agreement": float((res.logits.argmax(1) == ref.argmax(1)).float().mean()),
        "max_abs_logit_error": float((res.logits - ref).abs().max()),
        "energy_j_per_inference": rep.energy_per_inference.value,
        "exchange_energy_j_per_inference": sum(b["energy_breakdown_j"]["exchange"] for b in batches)
        / n,
        "exchange_packets_per_inference": sum(b["exchange_counts"]["packets"] for b in batches) / n,
        "latency_s_per_inference": rep.latency.value,
        "wall_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--preset", default="loihi2_est")
    ap.add_argument("--splits", default="auto,1,2,4,8")
    ap.add_argument("--limit", type=int, default=256)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    try:
        splits = [None if s == "auto" else int(s) for s in args.splits.split(",") if s]
        if args.limit < 1:
            raise ValueError(f"--limit must be positive, got {args.limit}")
    except ValueError as exc:
        sys.exit(f"node_split.py: {exc}")
    model, cfg, _ = load_model(args.ckpt)
    spec = model.export()
    ds = make_task(args.task, cfg.data, seed=cfg.train.seed)
    x, y = ds.x_val[: args.limit], ds.y_val[: args.limit]
    ref = evaluate(spec, x, y, "torch", batch_size=64, keep_logits=True).logits
    rows = [run_one(spec, x, y, ref, args.preset, s) for s in splits]
    out = Path(args.out) if args.out else HERE / args.task
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": "OMP_NUM_THREADS=1 python studies/backend_comparison/node_split.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "rows": rows,
    }
    atomic_write_bytes(out / f"node_split_{args.preset}.json", json.dumps(meta, indent=1).encode())
    cols = [
        "node_split", "status", "used_split", "nodes_per_core", "cores_used", "chips",
        "accuracy", "agreement", "max_abs_logit_error", "energy_j_per_inference",
        "exchange_energy_j_per_inference", "exchange_packets_per_inference",
        "latency_s_per_inference", "wall_s",
    ]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write_bytes(out / f"node_split_{args.preset}.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
