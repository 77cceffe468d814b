"""Where the compiled train step's time goes: torch.profiler self-CPU time of one train step,
split into the numba propagation step (forward ``CpuFusedStep``, backward
``CpuFusedStepBackward``) and everything else (encoder, sparks, ignition, readout, loss,
AdamW), for the model that the dense formulation computes (``--model twin``) or the default.

    python studies/cpu_compiled/profile_step.py [--n 256] [--model twin|default]

The floor this gives: with a propagation step that cost nothing, the step could not be faster
than the "everything else" time, so dense / (everything else) bounds the speed-up over dense.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sparse_vs_dense"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--model", choices=("twin", "default"), default="twin")
    ap.add_argument("--steps", type=int, default=5, help="profiled steps (after 3 warm-up)")
    a = ap.parse_args()
    import torch
    from bench import MODELS
    from torch.profiler import profile

    from rsgn.backends.torch.target import op_table
    from rsgn.config import ModelConfig
    from rsgn.malloc_tuning import tune_malloc
    from rsgn.model import RSGN

    tune_malloc()
    torch.manual_seed(0)
    cfg = ModelConfig(n_nodes=a.n, d_hidden=128, hebbian=False, **MODELS[a.model])
    model = RSGN(32, 20, cfg)
    table = op_table("numba")
    x, y = torch.randn(64, 64, 32), torch.randint(0, 20, (64,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x, ops_table=table).logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    with profile() as prof:
        for _ in range(a.steps):
            step()
    wall = (time.perf_counter() - t0) / a.steps
    ev = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ev) / a.steps / 1e3
    kern = {
        e.key: e.self_cpu_time_total / a.steps / 1e3
        for e in ev
        if e.key in ("CpuFusedStep", "CpuFusedStepBackward")
    }
    rest = total - sum(kern.values())
    print(f"N = {a.n}, model {a.model}, {torch.get_num_threads()} threads, {a.steps} steps")
    print(f"wall per step (profiled): {wall * 1e3:.1f} ms; profiler self-CPU total {total:.1f} ms")
    for k, v in kern.items():
        print(f"  {k}: {v:.1f} ms ({v / total:.0%})")
    print(f"  everything else: {rest:.1f} ms ({rest / total:.0%})")
    print(ev.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
