"""The triton target's cost model: the electronic cost model
(:func:`rsgn.backends.torch.cost.charge_run`, the same events for the same ops) plus what the
fused step computes beyond the decomposition.

The fused step does not store h~ for every candidate: its update kernel recomputes h~ for each
winner by the same pull over the winner's in-edges, one multiply-add of d per in-edge whose
source is active. Per step, from the active set A (the sources) to the winners A',

    recompute  MAC  d * |{(b, j -> i) live : j in A_b, i in A'_b}|     (op ``propagate``)

charged under ``propagate`` (the op the recomputed sum belongs to), and only for steps the
fused kernels ran. The fused step also selects over every node's score (a [B, N] radix
select, no candidate list), so its ``select`` is charged for B N scores, not the M
candidates of the decomposition. The recompute is counted also when
``kernels.step.TUNING["STORE"]`` lets winners load a kept sum instead: the ledger models the
default kernels.
"""

from __future__ import annotations

import torch

from rsgn.backends.cost import CostLedger
from rsgn.backends.torch import cost as electronic
from rsgn.forward import Trace
from rsgn.spec import ModelSpec
from rsgn.state import Graph

MODEL = electronic.MODEL + "; fused step: + d MAC per active in-edge of each winner (recompute)"


@torch.no_grad()
def recompute_edges(
    graph: Graph,
    before: tuple[torch.Tensor, torch.Tensor],
    after: tuple[torch.Tensor, torch.Tensor],
) -> int:
    """Live in-edges j -> i with j active in ``before`` and i a winner in ``after`` (per
    sample, summed): the in-edges the fused update pulls again."""
    ids, valid = before
    new_ids, new_valid = after
    active = torch.zeros(ids.shape[0], graph.n_nodes, dtype=torch.bool, device=ids.device)
    active.scatter_(1, ids, valid)
    src = graph.in_idx[new_ids]  # [B, W', K]
    hit = active.gather(1, src.flatten(1)).view(src.shape) & graph.in_mask[new_ids]
    return int((hit & new_valid.unsqueeze(-1)).sum())


def charge_recompute(ledger: CostLedger, d: int, edges: int) -> None:
    """The fused update's recomputation of h~ for the winners (op ``propagate``)."""
    ledger.op("propagate")
    ledger.add("mac_fp32", edges * d)


def charge_run(
    ledger: CostLedger, spec: ModelSpec, graph: Graph, trace: Trace, *, fused: bool
) -> list[int]:
    """Charge one traced forward pass: every op with the electronic model, plus the
    recomputation of each step when the fused step ran. Returns the recomputed in-edges per
    step (empty when it did not run)."""
    if not fused:
        electronic.charge_run(ledger, spec, graph, trace)
        return []
    ops = tuple(op for op in electronic.ELECTRONIC_OPS if op != "select")
    electronic.charge_run(ledger, spec, graph, trace, ops=ops)
    for _ in trace.states[1:]:
        electronic.charge_select(ledger, trace.batch * spec.hyper.n_nodes)
    d = spec.hyper.d_hidden
    edges = [
        recompute_edges(graph, a, b) for a, b in zip(trace.states, trace.states[1:], strict=False)
    ]
    for e in edges:
        charge_recompute(ledger, d, e)
    return edges
