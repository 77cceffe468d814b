"""The electronic cost model: a run's trace -> counted events of a digital datapath.

Every formula of the electronic datapath exists here once; the torch and Triton targets charge
all ops with it, the optical and neuromorphic targets the ops they compute electronically.
Events and their energies are those of the ``electronic_45nm`` table; energy = sum of counted
events x per-event energy. A :class:`Precision` names the events of one datapath width: every
charge function takes one (``FP32``, the default: fp32 arithmetic, 32-bit SRAM and DRAM words;
``INT8``: 8-bit integer arithmetic and 8-bit words). Index arithmetic (``int_op_32b``: edge
gathers, histograms) is 32-bit at either precision. MAC, add and transcendental counts, SRAM
and DRAM word counts below are those of the chosen precision.

Per batch of B samples with T tokens (F token features, D ball dimensions, d state width, C
classes, K_inh inhibition slots), for a step from the active set A (|A| sources, E_A their
out-edges) to the candidates M (reached or active) and the winners A':

=========  =======================================================================================
op         events
=========  =======================================================================================
graph      (once per program, E live edges) MAC E (r + D); transcendental 4E; SRAM E (r + D + 2)
encode     MAC  B T (w d_in F)_enc + B T (F 4D + 4D D + D) + |A0| d (+ init, below)
           transcendental  B T (F_enc + 4D + D + 2);  SRAM  front-end weights, once per batch
           init 'attend': MAC |A0| T F + |A0| F d, transcendental |A0| T;
           'mean': MAC B F d, add B T F
ignite     MAC B T N (D + 1); add B T N; int 4 B N; transcendental 3 B W;
           SRAM B T (D + 1) + N (D + 1)
attend     (pairs P = B W T)  MAC P (D + 1); transcendental P; SRAM B W (D + 1)
propagate  MAC |A| d^2 + E_A d + M d; SRAM E_A (d + 2) + |A| d + d^2; int 4 E_A;
           transcendental 2 M
inhibit    add M (K_inh + 2); SRAM M K_inh   (none when beta = 0)
select     int 8 M
update     add 6 |A'| d; SRAM 3 |A'| d
readout    MAC |A| d + B C d; SRAM |A| d + C d  (+ node_readout |A| C MAC and SRAM;
           + token_skip B T F add, B F C MAC, F C + C SRAM)
input      DRAM B T d_in
=========  =======================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rsgn.backends.base import OPS
from rsgn.backends.cost import CostLedger, EnergyTable, load_energy_table
from rsgn.errors import RsgnError
from rsgn.forward import Trace
from rsgn.sparse import gather_out_edges
from rsgn.spec import ModelSpec
from rsgn.state import Graph

TABLE_NAME = "electronic_45nm"
MODEL = "counted events x electronic_45nm per-event energies (Horowitz 2014, 45 nm)"


@dataclass(frozen=True)
class Precision:
    """The events of one electronic datapath width (names of ``electronic_45nm`` events)."""

    name: str
    mac: str
    add: str
    transcendental: str
    sram: str
    dram: str
    bits: int
    """Operand width in bits."""


FP32 = Precision(
    "fp32", "mac_fp32", "add_fp32", "transcendental_fp32", "sram_word_32b", "dram_word_32b", 32
)
INT8 = Precision(
    "int8", "mac_int8", "add_int8", "transcendental_int8", "sram_word_8b", "dram_word_8b", 8
)
PRECISIONS: dict[str, Precision] = {p.name: p for p in (FP32, INT8)}
"""The datapath precisions of the electronic cost model, by name."""


def precision(name: str) -> Precision:
    """The :class:`Precision` called ``name`` (fp32, int8); an RsgnError names the choices."""
    if name not in PRECISIONS:
        raise RsgnError(f"unknown electronic precision {name!r} (choices: {', '.join(PRECISIONS)})")
    return PRECISIONS[name]


def model_text(prec: Precision) -> str:
    """The cost model's description at precision ``prec``."""
    return MODEL if prec is FP32 else f"{MODEL}, {prec.name} datapath"


ELECTRONIC_OPS = tuple(op for op in OPS if op not in ("graph", "sync", "static"))
"""The ops :func:`charge_run` charges per call (the graph is charged once, by the program)."""


def electronic_table() -> EnergyTable:
    return load_energy_table(TABLE_NAME)


@dataclass(frozen=True)
class StepSizes:
    """Sizes of one propagation step of a batch (sums over its samples)."""

    sources: int
    """|A|: active nodes the step propagates from."""
    edges: int
    """E_A: out-edges of the active nodes."""
    candidates: int
    """M: (sample, node) pairs reached from A or in A."""
    winners: int
    """|A'|: nodes active after the step."""


@torch.no_grad()
def step_sizes(
    graph: Graph,
    before: tuple[torch.Tensor, torch.Tensor],
    after: tuple[torch.Tensor, torch.Tensor],
) -> StepSizes:
    """The sizes of the step that took active set ``before`` (ids, valid) to ``after``."""
    ids, valid = before
    bsz, width = ids.shape
    n = graph.n_nodes
    rows = valid.reshape(-1).nonzero(as_tuple=True)[0]
    src = ids.reshape(-1)[rows]
    edges, owner = gather_out_edges(graph.out_ptr, graph.out_edge, src)
    hit = torch.zeros(bsz * n, dtype=torch.bool, device=ids.device)
    hit[(rows // width)[owner] * n + edges // graph.in_idx.shape[1]] = True
    hit[(rows // width) * n + src] = True
    return StepSizes(
        sources=int(rows.numel()),
        edges=int(edges.numel()),
        candidates=int(hit.sum()),
        winners=int(after[1].sum()),
    )


def charge_graph(ledger: CostLedger, spec: ModelSpec, n_edges: int, prec: Precision = FP32) -> None:
    """The graph op over E live edges (once per program, not per batch; op ``graph``):
    MAC E (r + D) (affinities, distances), transcendental 4E (asinh, sqrt, exp, softplus /
    sigmoid), SRAM E (r + D + 2)."""
    hp = spec.hyper
    rank = spec.weights.aff_u.shape[1]
    ledger.op("graph")
    ledger.add(prec.mac, n_edges * (rank + hp.d_space))
    ledger.add(prec.transcendental, 4 * n_edges)
    ledger.add(prec.sram, n_edges * (rank + hp.d_space + 2))


def charge_encode(
    ledger: CostLedger, spec: ModelSpec, bsz: int, t: int, n_lit: int, prec: Precision = FP32
) -> None:
    """The front end: token encoder, spark MLP and expmap0, initial states (op ``encode``)."""
    hp, w = spec.hyper, spec.weights
    f = w.enc_w.shape[0] if w.enc_w is not None else hp.d_in
    dsp, d = hp.d_space, hp.d_hidden
    bt = bsz * t
    macs = bt * (f * 4 * dsp + 4 * dsp * dsp + dsp) + n_lit * d
    trans = bt * (4 * dsp + dsp + 2)
    adds = 0
    if w.enc_w is not None:
        macs += bt * hp.encoder_width * hp.d_in * f
        trans += bt * f
    if hp.init_state == "mean":
        macs += bsz * f * d
        adds += bt * f
    else:  # attend
        macs += n_lit * t * f + n_lit * f * d
        trans += n_lit * t
    ledger.op("encode")
    ledger.add(prec.mac, macs)
    ledger.add(prec.add, adds)
    ledger.add(prec.transcendental, trans)
    ledger.add(prec.sram, w.front_end_params())


def charge_ignite(
    ledger: CostLedger, spec: ModelSpec, bsz: int, t: int, width: int, prec: Precision = FP32
) -> None:
    """Distances of every (spark, node) pair, min over tokens, select, exact distances of the
    B W winners (op ``ignite``)."""
    n, dsp = spec.hyper.n_nodes, spec.hyper.d_space
    ledger.op("ignite")
    ledger.add(prec.mac, bsz * t * n * (dsp + 1))
    ledger.add(prec.add, bsz * t * n)
    ledger.add("int_op_32b", bsz * n * 4)
    ledger.add(prec.transcendental, bsz * width * 3)
    ledger.add(prec.sram, bsz * t * (dsp + 1) + n * (dsp + 1))


def charge_attend(
    ledger: CostLedger, spec: ModelSpec, bsz: int, t: int, width: int, prec: Precision = FP32
) -> None:
    """The B W T (winner, spark) distances of the 'attend' initial state (op ``attend``)."""
    dsp = spec.hyper.d_space
    pairs = bsz * width * t
    ledger.op("attend")
    ledger.add(prec.mac, pairs * (dsp + 1))
    ledger.add(prec.transcendental, pairs)
    ledger.add(prec.sram, bsz * width * (dsp + 1))


def charge_propagate(ledger: CostLedger, d: int, s: StepSizes, prec: Precision = FP32) -> None:
    """W_h projection of the sources, message sum over E_A edges, soft threshold (op
    ``propagate``)."""
    ledger.op("propagate")
    ledger.add(prec.mac, s.sources * d * d + s.edges * d + s.candidates * d)
    ledger.add(prec.sram, s.edges * (d + 2) + s.sources * d + d * d)
    ledger.add("int_op_32b", s.edges * 4)
    ledger.add(prec.transcendental, 2 * s.candidates)


def charge_inhibit(
    ledger: CostLedger, candidates: int, k_inh: int, strength: float, prec: Precision = FP32
) -> None:
    """Mean of the neighbours' alpha and one division per candidate (op ``inhibit``)."""
    ledger.op("inhibit")
    if strength == 0:
        return
    ledger.add(prec.add, candidates * (k_inh + 2))
    ledger.add(prec.sram, candidates * k_inh)


def charge_select(ledger: CostLedger, candidates: int) -> None:
    """Radix select over the candidates: key mapping, histogram passes, compare (op
    ``select``)."""
    ledger.op("select")
    ledger.add("int_op_32b", candidates * 8)


def charge_update(ledger: CostLedger, d: int, winners: int, prec: Precision = FP32) -> None:
    """Residual + LayerNorm + alpha scaling of the winners (op ``update``)."""
    ledger.op("update")
    ledger.add(prec.add, winners * d * 6)
    ledger.add(prec.sram, winners * d * 3)


def charge_readout(
    ledger: CostLedger, spec: ModelSpec, bsz: int, t: int, n_final: int, prec: Precision = FP32
) -> None:
    """Activation-weighted pooling and W_o, plus the readout options (op ``readout``)."""
    hp, w = spec.hyper, spec.weights
    c, d = hp.n_classes, hp.d_hidden
    ledger.op("readout")
    ledger.add(prec.mac, n_final * d + bsz * c * d)
    ledger.add(prec.sram, n_final * d + c * d)
    if w.node_out is not None:
        ledger.add(prec.mac, n_final * c)
        ledger.add(prec.sram, n_final * c)
    if w.skip_w is not None:
        f = w.skip_w.shape[1]
        ledger.add(prec.add, bsz * t * f)
        ledger.add(prec.mac, bsz * f * c)
        ledger.add(prec.sram, f * c + c)


def charge_input(
    ledger: CostLedger, spec: ModelSpec, bsz: int, t: int, prec: Precision = FP32
) -> None:
    """The input tokens streamed in from DRAM (op ``input``)."""
    ledger.op("input")
    ledger.add(prec.dram, bsz * t * spec.hyper.d_in)


def charge_run(
    ledger: CostLedger,
    spec: ModelSpec,
    graph: Graph,
    trace: Trace,
    *,
    ops: tuple[str, ...] = ELECTRONIC_OPS,
    prec: Precision = FP32,
) -> list[StepSizes]:
    """Charge the ops named in ``ops`` of one traced forward pass at precision ``prec``;
    returns the step sizes."""
    hp = spec.hyper
    bsz, t = trace.batch, trace.tokens
    ids0, valid0 = trace.states[0]
    n_lit = int(valid0.sum())
    if "encode" in ops:
        charge_encode(ledger, spec, bsz, t, n_lit, prec)
    if "ignite" in ops:
        charge_ignite(ledger, spec, bsz, t, ids0.shape[1], prec)
    if "attend" in ops and hp.init_state == "attend":
        charge_attend(ledger, spec, bsz, t, ids0.shape[1], prec)
    sizes = [step_sizes(graph, a, b) for a, b in zip(trace.states, trace.states[1:], strict=False)]
    k_inh = graph.inh_idx.shape[1]
    for s in sizes:
        if "propagate" in ops:
            charge_propagate(ledger, hp.d_hidden, s, prec)
        if "inhibit" in ops:
            charge_inhibit(ledger, s.candidates, k_inh, hp.inhibition_strength, prec)
        if "select" in ops:
            charge_select(ledger, s.candidates)
        if "update" in ops:
            charge_update(ledger, hp.d_hidden, s.winners, prec)
    if "readout" in ops:
        charge_readout(ledger, spec, bsz, t, int(trace.states[-1][1].sum()), prec)
    if "input" in ops:
        charge_input(ledger, spec, bsz, t, prec)
    return sizes
