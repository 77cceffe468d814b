"""The screening driver of issue 18 (one training, seed S, extra ``--set`` strings), as run:

    OMP_NUM_THREADS=1 python screen.py OUT hierarchical rsgn 0 train.augment_jitter=0.2

Its logs beside it are the trainings the README's screening table reads (made with the
defaults of that moment: patience 10, augment_shift in whole steps, +-4).
"""

import json
import sys
import time

import torch

from rsgn.config import apply_overrides, load_config
from rsgn.data import make_task
from rsgn.training import train

torch.set_num_threads(1)
out, task, model, seed = sys.argv[1:5]
cfg = apply_overrides(load_config(None), [f"train.seed={seed}", *sys.argv[5:]])
ds = make_task(task, cfg.data, seed=int(seed))
t = time.time()
with open(out + ".log", "w") as log:
    m = train(cfg, ds, out, model=None if model == "rsgn" else model, log=log)
print(json.dumps({"out": out, "acc": m["accuracy"], "selection": m["selection"],
                  "wall": round(time.time() - t)}))  # fmt: skip
