"""Where the compiled train step's time goes: torch.profiler self-CPU time of one train step,
split into the numba propagation step (forward ``CpuFusedStep``, backward
``CpuFusedStepBackward``) and everything else (encoder, sparks, ignition, readout, loss,
AdamW), for the model that the dense formulation computes (``--model twin``) or the default.

    python studies/cpu_compiled/profile_step.py [--n 256] [--model twin|default]

The floor this gives: with a propagation step that cost nothing, the step could not be faster
than the "everything else" time, so dense / (everything else) bounds the speed-up over dense.

It also counts the propagation's work per sample and step (``propagation_work``): the active
nodes A, the out-edges they push along (sum of their out-degrees) and the candidates (A and
their out-neighbours, every row whose h~ the kernel computes), for the benchmark's untrained
model and, with ``--checkpoint``, for a trained one on its own task's data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sparse_vs_dense"))


def propagation_work(model, x, table) -> dict[str, float]:
    """Mean per sample and propagation step: active nodes, pushed out-edges, candidates; and
    the mean out-degree of the graph. Counted on the inputs of the S propagation steps (the
    active sets after ignition and after steps 1..S-1) of one forward pass."""
    import torch

    from rsgn.forward import Trace, build_graph, forward

    tr = Trace()
    model.eval()
    with torch.no_grad():
        w, hp = model.weights(), model.hyper()
        g = build_graph(w, hp, table)
        forward(w, hp, x, table, graph=g, trace=tr)
    n = g.n_nodes
    deg = g.out_ptr[1:] - g.out_ptr[:-1]
    dst = g.out_edge // g.in_idx.shape[1]
    act, edges, cand = [], [], []
    for ids, valid in tr.states[:-1]:
        for b in range(ids.shape[0]):
            a = ids[b][valid[b]]
            act.append(a.numel())
            edges.append(int(deg[a].sum()))
            nb = [dst[g.out_ptr[j] : g.out_ptr[j + 1]] for j in a.tolist()]
            cand.append(int(torch.unique(torch.cat([a, *nb])).numel()))
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return {
        "nodes": n,
        "mean_out_degree": float(deg.float().mean()),
        "active": mean(act),
        "pushed_edges": mean(edges),
        "active_out_degree": mean(edges) / max(mean(act), 1e-9),
        "candidates": mean(cand),
    }


def print_work(label: str, w: dict[str, float]) -> None:
    print(
        f"{label}: per sample and step {w['active']:.1f} active of {w['nodes']} nodes, "
        f"{w['pushed_edges']:.0f} out-edges pushed (active nodes' mean out-degree "
        f"{w['active_out_degree']:.1f}, graph's {w['mean_out_degree']:.1f}), "
        f"{w['candidates']:.1f} candidates ({w['candidates'] / w['nodes']:.0%} of the nodes)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--model", choices=("twin", "default"), default="twin")
    ap.add_argument("--steps", type=int, default=5, help="profiled steps (after 3 warm-up)")
    ap.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="also count the propagation work of this trained RSGN on 256 validation samples "
        "of its own task (repeatable)",
    )
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
    print_work("benchmark model (untrained)", propagation_work(model, x, table))
    for path in a.checkpoint:
        from rsgn.checkpoint import load_model
        from rsgn.data import make_task

        trained, rc, meta = load_model(path)
        ds = make_task(meta["data"]["name"], rc.data, seed=rc.train.seed)
        xv = ds.x_val[:256]
        print_work(f"trained: {path}", propagation_work(trained, xv, table))


if __name__ == "__main__":
    main()
