"""Same accuracy on ``triton`` as on ``torch`` (issue 4 target): on a CUDA GPU, train the RSGN
on each paper task once with each backend (same seed, same data), then evaluate every
checkpoint on both backends over the whole validation split.

    python studies/gpu_kernels/accuracy.py --epochs 8 --out accuracy.json

Reports, per task: the accuracy of each (trained-on, evaluated-on) pair, the prediction
agreement between backends on the same checkpoint, and the largest logit difference.
Exits with a message without CUDA (the Triton compiler needs a GPU; the CPU interpreter is
too slow for whole validation sets).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
TASK_SETTINGS = {"hierarchical": [], "long-range": ["--set", "model.n_steps=7"]}


def main() -> None:
    from rsgn.checkpoint import atomic_write_bytes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--tasks", nargs="+", default=list(TASK_SETTINGS))
    ap.add_argument("--runs", type=Path, default=Path("/tmp/rsgn_gpu_accuracy"))
    ap.add_argument("--out", type=Path, default=HERE / "accuracy.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("accuracy.py needs a CUDA GPU (none found)")
    from rsgn.backends import get_backend
    from rsgn.checkpoint import load_model
    from rsgn.data import make_task
    from rsgn.evaluation import evaluate

    out: dict = {"device": torch.cuda.get_device_name(), "epochs": args.epochs, "tasks": {}}
    for task in args.tasks:
        res: dict = {}
        for trained_on in ("torch", "triton"):
            run = args.runs / task / trained_on
            t0 = time.perf_counter()
            # trained as before issue 18 (the committed numbers): --config paper-training
            cmd = ["rsgn", "train", "--task", task, "--config", "paper-training",
                   "--backend", trained_on, "--epochs",
                   str(args.epochs), "--seed", "0", "--set", "train.device=cuda", "--out",
                   str(run), "--quiet", *TASK_SETTINGS[task]]  # fmt: skip
            subprocess.run(cmd, check=True)
            res[f"train_{trained_on}_s"] = time.perf_counter() - t0
            model, cfg, _ = load_model(run)
            model = model.cuda()
            ds = make_task(task, cfg.data, seed=cfg.train.seed)
            logits = {}
            for be in ("torch", "triton"):
                ev = evaluate(model, ds.x_val, ds.y_val, get_backend(be), keep_logits=True)
                res[f"{trained_on}_model_on_{be}_acc"] = ev.accuracy
                logits[be] = ev.logits
            res[f"{trained_on}_model_agreement"] = float(
                (logits["torch"].argmax(1) == logits["triton"].argmax(1)).float().mean()
            )
            res[f"{trained_on}_model_max_logit_diff"] = float(
                (logits["torch"] - logits["triton"]).abs().max()
            )
            res["n_val"] = int(len(ds.y_val))
        res["acc_gap_points"] = 100 * (res["triton_model_on_triton_acc"] -
                                       res["torch_model_on_torch_acc"])  # fmt: skip
        out["tasks"][task] = res
        print(task, json.dumps(res), flush=True)
        atomic_write_bytes(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
