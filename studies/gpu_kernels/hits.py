"""What the fused step's scores-kernel variants save, counted (not timed) on any device.

    python studies/gpu_kernels/hits.py --sizes 4096 65536 --ks 16 64

Per (N, k), with step_bench.py's setting (batch 64, sequence 64, 32 features, hidden 128,
5% active, the state after ignition and one reference step), counts over the [B, N] rows of
the next step's scores kernel (``kernels.step``):

- ``hits``: active in-edges per row (a row is (sample b, node i); an in-edge is active when its
  source is in b's active set); the fraction of rows with 0, 1, 2 and >= 3 hits;
- ``slot_lookups``: the default kernel looks up the slot map for every live in-slot of every
  row (B x live in-slots); ``TUNING["MASK"]`` only for active ones (the hits), after one
  activity-word load per live in-slot per 32 samples;
- ``gathers``: message rows the scores kernel gathers (all hits), and how many of them are the
  only hit of their row (``gathers_single_hit``): a single-hit row's norm could come from two
  scalars per active state, ``|w g + b|^2 = |b|^2 + w (2 <g, b> + w |g|^2)``, instead of a row
  gather. That shortcut was written and tested under the interpreter in session 6 and removed
  untimed, because these counts cap what it can save at 0.7% (D = 3) to 8% (D = 8) of the
  gathers at N = 65k: active sets are clustered, so a reached row usually has several hits;
- ``update_gathers``: message rows the update kernel gathers to recompute the winners' h~;
- ``bytes_min`` and ``bytes_gather``: step_bench.py's two floors in bytes (bytes_gather adds
  4 d bytes per gathered row of the scores kernel; the update kernel's recomputation, a design
  choice, is left out of the floor as there).

Counts, not times: which variant is faster is for ``step_bench.py --variants`` on a GPU.
``--ckpt DIR [--task NAME]`` instead reports a trained checkpoint's active out-degree per step
against an untrained model of its config (whether training keeps the hubs lit).
Writes JSON to ``--out`` (default ``hits.json`` here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import BATCH, CLASSES, FEAT, HIDDEN, model_config, step_setting  # noqa: E402


def row_hits(graph, st) -> torch.Tensor:
    """[B, N] active in-edges of each row (sample b, node i): in-slots of i whose source is
    in b's active set (the pull view the scores kernel takes)."""
    bsz, n = st.ids.shape[0], graph.n_nodes
    active = torch.zeros(bsz, n, dtype=torch.bool, device=st.ids.device)
    active.scatter_(1, st.ids, st.valid)
    live = graph.in_mask
    src = torch.where(live, graph.in_idx, torch.zeros_like(graph.in_idx))
    hits = torch.zeros(bsz, n, dtype=torch.int64, device=st.ids.device)
    for b in range(bsz):  # [N, K] per sample keeps memory at N K
        hits[b] = (active[b][src] & live).sum(1)
    return hits


def count(n: int, k: int, device: str, config: str | None = None, batch: int = BATCH) -> dict:
    """The counts above for one (N, k) and model config (None: the package default)."""
    from rsgn import ops
    from rsgn.model import RSGN

    torch.manual_seed(0)
    cfg = model_config(n, k, config)
    t0 = time.perf_counter()
    model = RSGN(FEAT, CLASSES, cfg).to(device)
    ref = ops.TABLE
    _, graph, st, params, kw = step_setting(model, cfg, batch, device)
    with torch.no_grad():
        nxt = ref.step(st, graph, *params, **kw)
    bsz = st.ids.shape[0]
    live = graph.in_mask  # [N, K]
    hits = row_hits(graph, st)
    total_rows = bsz * n
    out_deg = graph.out_ptr[1:] - graph.out_ptr[:-1]  # the CSR view: edges out of each node
    out_edges = int(out_deg[st.ids[st.valid]].sum())
    live_slots = int(live.sum())
    n_hits = int(hits.sum())
    single = int((hits == 1).sum())
    winners = torch.zeros(bsz, n, dtype=torch.bool, device=device)
    winners.scatter_(1, nxt.ids, nxt.valid)
    upd = int(hits[winners].sum())
    width = st.ids.shape[1]
    bytes_min = 5 * bsz * width * HIDDEN * 4 + 26 * bsz * n + n * graph.in_idx.shape[1] * 8
    row_bytes = HIDDEN * 4
    frac = {str(c): float((hits == c).sum()) / total_rows for c in (0, 1, 2)}
    frac[">=3"] = float((hits >= 3).sum()) / total_rows
    return {
        "n_nodes": n,
        "k_in": k,
        "batch": bsz,
        "k_active": cfg.k_active,
        "config": config or "default",
        "d_space": cfg.d_space,
        "active_out_edges": out_edges,
        "active_out_degree_mean": out_edges / max(1, int(st.valid.sum())),
        "graph_out_degree_max": int((graph.out_ptr[1:] - graph.out_ptr[:-1]).max()),
        "active_states": int(st.valid.sum()),
        "rows": total_rows,
        "mean_hits_per_row": n_hits / total_rows,
        "rows_by_hits": frac,
        "slot_lookups_default": bsz * live_slots,
        "slot_lookups_mask": n_hits,
        "activity_word_loads_mask": live_slots * -(-bsz // 32),
        "gathers": n_hits,
        "gathers_single_hit": single,
        "single_hit_fraction": single / max(1, n_hits),
        "update_gathers": upd,
        "bytes_min": bytes_min,
        "bytes_gather": bytes_min + n_hits * row_bytes,
        "seconds": time.perf_counter() - t0,
    }


def active_set_overlap(ids: torch.Tensor, ok: torch.Tensor, n: int) -> tuple[float, float]:
    """(fraction of nodes active in any sample, mean Jaccard index of two samples' active
    sets over all pairs): 1 / 1 when every sample lights the same nodes."""
    m = torch.zeros(ids.shape[0], n, dtype=torch.float64)
    m.scatter_(1, ids, ok.double())
    inter = m @ m.T
    size = m.sum(1)
    union = size[:, None] + size[None, :] - inter
    off = ~torch.eye(len(m), dtype=torch.bool)
    jac = (inter / union.clamp_min(1))[off]
    return float((m.sum(0) > 0).double().mean()), float(jac.mean())


def checkpoint_out_degrees(ckpt: str, task: str, samples: int = 256) -> dict:
    """Mean out-degree of the active nodes at each step (ignition first) of a trained
    checkpoint on the first ``samples`` validation samples of ``task``, and of an untrained
    model of the same config (the reference ops, CPU): whether training keeps the hubs lit;
    with how input-specific the active sets are (nodes active in any sample, mean pairwise
    Jaccard index of the samples' active sets). The active sets are the forward's trace."""
    from rsgn import ops
    from rsgn.checkpoint import load_model
    from rsgn.data import make_task
    from rsgn.forward import Trace, forward
    from rsgn.model import RSGN

    net, cfg, _ = load_model(ckpt)
    ds = make_task(task, cfg.data, seed=cfg.train.seed)
    x = ds.x_val[:samples]

    def per_step(model: torch.nn.Module) -> tuple[list[float], float, list, list]:
        trace = Trace()
        model.eval()
        with torch.no_grad():
            graph = model.build_graph()
            forward(model.weights(), model.hyper(), x, ops.TABLE, graph=graph, trace=trace)
        seen = trace.states[:-1]  # the active set each step starts from
        deg = (graph.out_ptr[1:] - graph.out_ptr[:-1]).double()
        n = graph.n_nodes
        cover, jac = zip(*(active_set_overlap(ids, ok, n) for ids, ok in seen), strict=True)
        return [float(deg[ids[ok]].mean()) for ids, ok in seen], float(deg.mean()), cover, jac

    torch.manual_seed(cfg.train.seed)
    fresh = RSGN(ds.d_in, ds.n_classes, cfg.model)
    trained, g_tr, cov_tr, jac_tr = per_step(net)
    untrained, g_un, cov_un, jac_un = per_step(fresh)
    return {
        "checkpoint": str(ckpt),
        "task": task,
        "samples": len(x),
        "n_nodes": cfg.model.n_nodes,
        "d_space": cfg.model.d_space,
        "epochs": cfg.train.epochs,
        "trained_active_out_degree_by_step": trained,
        "trained_graph_out_degree_mean": g_tr,
        "untrained_active_out_degree_by_step": untrained,
        "untrained_graph_out_degree_mean": g_un,
        "trained_nodes_ever_active_by_step": list(cov_tr),
        "trained_mean_jaccard_by_step": list(jac_tr),
        "untrained_nodes_ever_active_by_step": list(cov_un),
        "untrained_mean_jaccard_by_step": list(jac_un),
    }


def main() -> None:
    from rsgn.checkpoint import atomic_write_bytes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 65536])
    ap.add_argument("--ks", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--config", default=None, help="model config (default: the package's; paper)")
    ap.add_argument(
        "--batch", type=int, default=BATCH, help="samples (64; fewer fit N = 1M in 24 GiB)"
    )
    ap.add_argument(
        "--ckpt", default=None, help="instead: per-step active out-degree of this checkpoint"
    )
    ap.add_argument("--task", default="hierarchical", help="with --ckpt: its task")
    ap.add_argument("--out", type=Path, default=HERE / "hits.json")
    args = ap.parse_args()
    if args.ckpt is not None:
        res = checkpoint_out_degrees(args.ckpt, args.task)
        print(json.dumps(res), flush=True)
        atomic_write_bytes(args.out, (json.dumps(res, indent=1) + "\n").encode())
        print(f"wrote {args.out}")
        return
    if any(n < 64 for n in args.sizes) or any(k < 1 for k in args.ks) or args.batch < 1:
        sys.exit("hits.py: --sizes must be >= 64, --ks and --batch >= 1")
    out = {"device": args.device, "torch": torch.__version__, "rows": []}
    for n in args.sizes:
        for k in args.ks:
            out["rows"].append(count(n, k, args.device, args.config, args.batch))
            print(json.dumps(out["rows"][-1]), flush=True)
            atomic_write_bytes(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
