r"""The whole RSGN inference as the chip's programmable neuron: ignition, propagation, readout.

One inference is one simulator run of ``n_steps + 2`` steps; the host only streams the input
tokens in and reads the logits out (both costed as host-interface traffic):

step 0 (ignite)
    io_in: the tokens x [T, F_in] host -> root core. front_end: the root computes the token
    features and sparks (:mod:`.front_end`) and broadcasts the sparks to every core holding a
    node. ignite: every gate computes its node's distance to every spark; the ignition
    selection (top-cap of -delta over all nodes, the same distributed radix select as every
    step's, :mod:`.traffic`) picks A(0); the winners compute alpha(0). init: the initial
    states h(0) ('attend': the root sends the token features to the winners' gate cores; 'mean':
    the root sends W_init mean_t e_t to their state cores), written into the state
    compartments (split nodes: the slices sent to the slice cores).
step 1 (emit)
    A(0)'s compartments update: W_h projection g = alpha W_h h (graded MACs on the state
    cores) and emission of g on the state compartments.
steps 2 .. n_steps + 1 (propagate; step 2 + s is the definition's step s + 1)
    The candidates (nodes reached by a message, plus the active nodes) run the node program
    (:mod:`.node_program`): soft threshold, inhibition (activations sent to the cores of the
    candidates they inhibit), the k-winners selection (rounds over the NoC, or the local
    per-core k-WTA), the LayerNorm update, and, except in the last step, the W_h projection
    and the emission. Split nodes exchange partials between their slices.
last step (readout)
    Every core sends its partial sum of alpha_i h_i (and alpha_i R_i) to the root, which
    computes the logits (with the skip path from the token features it kept) and sends them to
    the host.

Every piece of work is declared as a phase (compute per core, then messages) and timed and
charged by the simulator; what the program computed goes into the per-inference
:class:`InferenceLog` (the simulator's ``context``): the final logits, each step's candidates,
winners and selection rounds, the emitting nodes, the active set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.backends.neuromorphic import front_end as fe
from rsgn.backends.neuromorphic import traffic
from rsgn.backends.neuromorphic.coding import Coding
from rsgn.backends.neuromorphic.mapping import Layout
from rsgn.backends.neuromorphic.node_program import (
    NodeParams,
    inhibit,
    inhibit_ops,
    project,
    select,
    soft_threshold,
    threshold_ops,
    update,
    update_ops,
)

STATE_VARS = ("h", "y")
SELECTIONS = ("exact", "local")


@dataclass(frozen=True)
class StepLog:
    """One propagation step of one inference as the chip ran it."""

    candidates: np.ndarray
    winners: np.ndarray
    rounds: int
    """Reduction rounds of the selection over the NoC (0 for the local k-WTA)."""


@dataclass
class InferenceLog:
    """Per-inference record of the chip program (the simulator's ``context``)."""

    x: np.ndarray
    """[T, F_in] the input tokens (they reach the chip through the io_in phase)."""
    n_steps: int
    e: np.ndarray | None = None
    """[T, F] token features (each token's on the core that owns it)."""
    token_cores: np.ndarray | None = None
    """[T] the core that owns each token (front end, skip path)."""
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0))
    h: np.ndarray | None = None
    peak: np.ndarray | None = None
    """[d] largest |g_k| sent so far (payload calibration)."""
    emitted: list[np.ndarray] = field(default_factory=list)
    """Nodes that computed the W_h projection and emitted, per emission."""
    ignition_rounds: int = 0
    steps: dict[int, StepLog] = field(default_factory=dict)
    active_counts: list[int] = field(default_factory=list)
    """|A| after ignition and after each propagation step."""
    logits: np.ndarray | None = None


@dataclass(frozen=True)
class ChipConfig:
    """How the program runs: the selection (``exact``: the model's rule, radix or stat, over
    the NoC; ``local``: per-core k-WTA) and the radix digit width."""

    selection: str = "exact"
    select_bits: int = 4


class RsgnChip(nm.NeuronModel):
    """Every compartment of the RSGN: the chip program behind the simulator's update calls
    (module docstring)."""

    name = "rsgn_node"
    graded = True
    declares_compute = True
    state_init = dict.fromkeys(STATE_VARS, 0.0)

    def __init__(
        self,
        params: NodeParams,
        front: fe.FrontParams,
        coding: Coding,
        layout: Layout,
        config: ChipConfig,
    ) -> None:
        self.params = params
        self.front = front
        self.coding = coding
        self.layout = layout
        self.config = config
        n = params.n_nodes
        counts = np.bincount(layout.gate_cores, minlength=layout.topology.n_cores)
        # local k-WTA: the cap split over the cores by their share of the nodes (cumulative
        # rounding: the quotas sum to the cap exactly)
        cum = np.floor(params.cap * np.cumsum(counts) / max(1, n) + 1e-9).astype(np.int64)
        self.quota = np.diff(np.concatenate([[0], cum]))

    # ------------------------------------------------------------------ simulator interface
    def init_state(self, n: int, fixed: bool) -> dict[str, np.ndarray]:
        """float64 state in both precisions: the program evaluates on dequantised inputs."""
        del fixed
        return {k: np.zeros(n, dtype=np.float64) for k in STATE_VARS}

    def validate(self, fixed: bool) -> None:
        """Runs in float and fixed precision."""

    def needs_update(
        self, state: dict[str, np.ndarray], n: int, step: int = 0
    ) -> np.ndarray | None:
        """Step 0: every gate (ignition); later: every compartment of an active node."""
        c = self.params.d + 1
        gates = np.zeros((n // c, c), dtype=bool)
        if step == 0:
            gates[:, -1] = True
            return gates.ravel()
        active = state["h"].reshape(-1, c)[:, -1] != 0
        gates[active] = True
        return gates.ravel()

    def update_float(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: nm.StepContext
    ) -> np.ndarray:
        log: InferenceLog = ctx.context
        if ctx.step == 0:
            y = self.ignite(state, ctx, log)
        elif ctx.step == 1:
            y = self.emit_initial(state, ctx, log)
        else:
            y = self.propagate(state, idx, self.coding.decode(idx, x), ctx, log)
        return self.coding.encode(idx, y[idx])

    def update_fixed(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: nm.StepContext
    ) -> np.ndarray:
        return self.update_float(state, idx, x, ctx)

    # ------------------------------------------------------------------ helpers
    def _views(self, state: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        n, c = self.params.n_nodes, self.params.d + 1
        return state["h"].reshape(n, c), state["y"].reshape(n, c)

    def _select(self, score: np.ndarray, ids: np.ndarray, n_ids: int, ignition: bool):
        """The selection of this program: the model's rule over the NoC, or the local k-WTA;
        ignition keeps every winner (its eps cut applies to alpha(0) afterwards)."""
        cfg, p = self.config, self.params
        method = "radix" if ignition else p.method
        if cfg.selection == "local":
            method = "local"
        return select(
            score,
            ids,
            cap=p.cap,
            eps=-np.inf if ignition else p.eps,
            method=method,
            n_nodes=n_ids,
            bits=cfg.select_bits,
            cores=self.layout.gate_cores[ids],
            quota=self.quota,
        )

    def _emission(self, ctx: nm.StepContext, log: InferenceLog, nodes: np.ndarray) -> None:
        """The W_h projection of ``nodes`` (split: the all-gather of h first)."""
        lay, d = self.layout, self.params.d
        traffic.exchange_gather(ctx, lay, nodes)
        macs = traffic.slice_mac_counts(lay, nodes, d, ctx.n_cores)
        ctx.phase("project", compute={"graded_synop": macs})
        log.emitted.append(nodes)

    # ------------------------------------------------------------------ step 0
    def ignite(self, state: dict[str, np.ndarray], ctx: nm.StepContext, log: InferenceLog):
        p, f, lay = self.params, self.front, self.layout
        n, d = p.n_nodes, p.d
        n_cores, root = ctx.n_cores, lay.root
        gate = lay.gate_cores
        x = log.x
        t, f_in = x.shape
        d_space = f.pos.shape[1]
        # io_in: the host sends each token (and the convolution's halo) to the core that
        # owns it: the tokens in contiguous blocks over the cores holding nodes. Each core
        # computes its tokens' features and sparks and broadcasts the sparks.
        used = np.unique(gate)
        owner = used[(np.arange(t) * used.size) // t]  # token -> core
        blocks, per_core_tokens = np.unique(owner, return_counts=True)
        halo = min(fe.conv_halo(f), t - 1) if t > 1 else 0
        ctx.phase(
            "io_in",
            src=np.full(blocks.size, traffic.HOST),
            dst=blocks,
            packets=(np.minimum(per_core_tokens + halo, t)) * f_in,
        )
        e = fe.encode(x, f)
        s, a_s = fe.sparks(e, f)
        tok = fe.token_ops(f)
        fe_work = {
            "graded_synop": traffic.per_core(n_cores, blocks, per_core_tokens * tok.macs),
            "neuron_op": traffic.per_core(n_cores, blocks, per_core_tokens * tok.ops),
        }
        # every token core sends its sparks (D + 1 values each) to every core holding a node
        src = np.repeat(blocks, used.size)
        dst = np.tile(used, blocks.size)
        pk = np.repeat(per_core_tokens * (d_space + 1), used.size)
        keep = src != dst
        ctx.phase("front_end", compute=fe_work, src=src[keep], dst=dst[keep], packets=pk[keep])
        log.token_cores = owner
        # distances, then the ignition selection over all nodes
        delta = fe.spark_deltas(s, a_s, f.pos, f.conf)  # [T, N]
        tok = delta.argmin(0)
        dmin = delta[tok, np.arange(n)]
        oc_d = fe.delta_ops(t, 1, d_space)
        dist_macs = traffic.per_core(n_cores, gate, oc_d.macs)
        dist_ops = traffic.per_core(n_cores, gate, oc_d.ops + 1)
        ctx.phase("ignite", compute={"graded_synop": dist_macs})
        ids = np.arange(n, dtype=np.int64)
        if p.method == "stat" and self.config.selection == "exact":
            score = -np.log(np.maximum(dmin, 1e-30))
            sel = select(score, ids, cap=p.cap, eps=-np.inf, method="stat", n_nodes=n)
        else:
            sel = self._select(-dmin, ids, n, ignition=True)
        traffic.selection(ctx, "ignite_select", sel, gate, root, first=dist_ops)
        win = ids[sel.winners]
        alpha = fe.alpha0(dmin[win], f.sigma)
        keep = alpha > f.eps
        win, alpha = win[keep], alpha[keep]
        # initial states
        d_tok = 2.0 * np.arcsinh(np.sqrt(delta[:, win].T))  # [W, T]
        h0, node_oc, root_oc = fe.initial_state(e, d_tok, alpha, f)
        alpha_ops = traffic.per_core(n_cores, gate[win], fe.ALPHA0_OPS)
        if f.init_state == "attend":
            # every token core sends its tokens' features to each ignited node's gate core
            tgt = np.unique(gate[win])
            src = np.repeat(blocks, tgt.size)
            dst = np.tile(tgt, blocks.size)
            pk = np.repeat(per_core_tokens * e.shape[1], tgt.size)
            keep = src != dst
            ctx.phase(
                "init",
                compute={"neuron_op": alpha_ops},
                src=src[keep],
                dst=dst[keep],
                packets=pk[keep],
            )
            per = max(1, win.size)
            init_work = {
                "graded_synop": traffic.per_core(n_cores, gate[win], node_oc.macs // per),
                "neuron_op": traffic.per_core(n_cores, gate[win], node_oc.ops // per),
            }
            if lay.split > 1 and win.size:  # the h(0) slices to the state slices
                sc, gs = lay.slice_cores, lay.split - 1
                keep = lay.state_sizes[np.tile(np.arange(gs), win.size)] > 0
                ctx.phase(
                    "init",
                    compute=init_work,
                    src=np.repeat(sc[win, gs], gs)[keep],
                    dst=sc[win][:, :gs].ravel()[keep],
                    packets=np.tile(lay.state_sizes[:gs], win.size)[keep],
                )
            else:
                ctx.phase("init", compute=init_work)
        else:
            root_init = {
                "graded_synop": np.where(np.arange(n_cores) == root, root_oc.macs, 0),
                "neuron_op": np.where(np.arange(n_cores) == root, root_oc.ops, 0)
                + traffic.per_core(n_cores, gate[win], fe.ALPHA0_OPS + d),
            }
            traffic.broadcast(ctx, "init", root, lay.slice_cores[win].ravel(), d, compute=root_init)
        h_all, y_all = self._views(state)
        h_all[:] = 0.0
        y_all[:] = 0.0
        h_all[win, :d] = h0
        h_all[win, d] = alpha
        log.e = e
        log.active, log.alpha, log.h = win, alpha, h0
        log.peak = np.zeros(d)
        log.ignition_rounds = len(sel.rounds)
        log.active_counts.append(int(win.size))
        if not win.size:
            self._read_out_empty(ctx, log)
        return state["y"]

    def _read_out_empty(self, ctx: nm.StepContext, log: InferenceLog) -> None:
        """The active set is empty (nothing ignited above eps, or no winner in a step): no node
        updates or sends again, so the definition's final state is empty; the root, which
        ran the selection, reads out now (logits = b_o [+ the skip path]) and the remaining
        steps are idle."""
        empty = np.zeros(0, dtype=np.int64)
        self.readout(ctx, log, empty, np.zeros(0), np.zeros((0, self.params.d)))
        log.active_counts += [0] * (log.n_steps + 1 - len(log.active_counts))

    # ------------------------------------------------------------------ step 1
    def emit_initial(
        self, state: dict[str, np.ndarray], ctx: nm.StepContext, log: InferenceLog
    ) -> np.ndarray:
        p = self.params
        d = p.d
        h_all, y_all = self._views(state)
        nodes = log.active
        g = project(h_all[nodes, :d], h_all[nodes, d], p.w_h)
        self._emission(ctx, log, nodes)
        y_all[nodes, :d] = g
        if nodes.size:
            log.peak = np.maximum(log.peak, np.abs(g).max(0))
        return state["y"]

    # ------------------------------------------------------------------ steps 2 ..
    def propagate(
        self,
        state: dict[str, np.ndarray],
        idx: np.ndarray,
        xv: np.ndarray,
        ctx: nm.StepContext,
        log: InferenceLog,
    ) -> np.ndarray:
        p, lay = self.params, self.layout
        n, d = p.n_nodes, p.d
        c = d + 1
        n_cores, root = ctx.n_cores, lay.root
        gate = lay.gate_cores
        h_all, y_all = self._views(state)
        sd = self.coding.sigma_delta
        s_idx = ctx.step - 2  # the definition's step s_idx + 1
        last = ctx.last
        updated = np.unique(idx // c)
        xin = np.zeros((updated.size, c))
        xin[np.searchsorted(updated, idx // c), idx % c] = xv
        prev = log.active
        is_cand = (xin[:, :d] != 0).any(1) | np.isin(updated, prev)
        cand, m = updated[is_cand], xin[is_cand, :d]
        # soft threshold (split: partials on the state slices, then to the gate slice)
        htilde = m + p.b_h
        a = soft_threshold(
            h_all[cand, d], htilde, p.theta[cand], gamma=p.gamma, temperature=p.temperature
        )
        if lay.split > 1:
            ctx.phase(
                "threshold",
                compute={"neuron_op": traffic.slice_mac_counts(lay, cand, 2, n_cores)},
            )
            traffic.exchange_partials(ctx, lay, cand)
            thr = traffic.per_core(n_cores, gate[cand], threshold_ops(0))
        else:
            thr = traffic.per_core(n_cores, gate[cand], threshold_ops(d))
        # inhibition
        if p.inhibition != 0 and cand.size:
            traffic.inhibition(ctx, lay, cand, p.inh_idx, p.inh_valid, thr)
            n_nb = (p.inh_valid[cand] & np.isin(p.inh_idx[cand], cand)).sum(1)
            inh = traffic.per_core(n_cores, gate[cand], inhibit_ops(n_nb))
            a = inhibit(cand, a, p.inh_idx, p.inh_valid, strength=p.inhibition)
        else:
            inh = thr
        # selection
        sel = self._select(a, cand, n, ignition=False)
        traffic.selection(ctx, "select", sel, gate[cand], root, first=inh)
        win = cand[sel.winners]
        aw = a[sel.winners]
        h = update(htilde[sel.winners], h_all[win, :d], aw, p.ln_w, p.ln_b)
        # the update (split: alpha, mean and 1/std back to the state slices first)
        traffic.exchange_back(ctx, lay, win)
        upd = traffic.slice_mac_counts(lay, win, 6, n_cores) + traffic.per_core(
            n_cores, gate[win], update_ops(0)
        )
        ctx.phase("update", compute={"neuron_op": upd})
        # state: leavers reset, winners written
        leave = np.setdiff1d(prev, win, assume_unique=True)
        h_all[leave] = 0.0
        y_all[leave] = 0.0
        y_all[cand, :d] = 0.0
        h_all[win, :d] = h
        h_all[win, d] = aw
        log.active, log.alpha, log.h = win, aw, h
        log.active_counts.append(int(win.size))
        log.steps[s_idx] = StepLog(cand, win, len(sel.rounds))
        if not last and not win.size:
            self._read_out_empty(ctx, log)
            return state["y"]
        if not last:
            g = project(h, aw, p.w_h)
            self._emission(ctx, log, win)
            y_all[win, :d] = g
            if win.size:
                log.peak = np.maximum(log.peak, np.abs(g).max(0))
            return state["y"]
        self.readout(ctx, log, win, aw, h)
        # the last step emits nothing (sigma-delta: hold, so no delta is sent)
        if not sd:
            y_all[:] = 0.0
        return state["y"]

    # ------------------------------------------------------------------ readout
    def readout(
        self,
        ctx: nm.StepContext,
        log: InferenceLog,
        win: np.ndarray,
        alpha: np.ndarray,
        h: np.ndarray,
    ) -> None:
        """Partial sums to the root, the root's readout, the logits to the host."""
        f, lay = self.front, self.layout
        n_cores, root = ctx.n_cores, lay.root
        macs = traffic.slice_mac_counts(lay, win, 1, n_cores)
        sizes = np.zeros(n_cores, dtype=np.int64)  # values each core sends: its slice width
        if win.size:
            np.maximum.at(sizes, lay.slice_cores[win].ravel(), np.tile(lay.state_sizes, win.size))
        node_sum = None
        n_classes = f.out_w.shape[0]
        if f.node_out is not None:
            node_sum = (alpha[:, None] * f.node_out[win]).sum(0)
            macs = macs + traffic.per_core(n_cores, lay.gate_cores[win], n_classes)
            np.add.at(sizes, np.unique(lay.gate_cores[win]), n_classes)
        ops = np.zeros(n_cores, dtype=np.int64)
        if f.skip_w is not None:  # the token cores' max over their tokens (F values each)
            tc, cnt = np.unique(log.token_cores, return_counts=True)
            np.add.at(sizes, tc, log.e.shape[1])
            ops += traffic.per_core(n_cores, tc, cnt * log.e.shape[1])
        senders = np.nonzero(sizes)[0]
        traffic.gather(
            ctx, "readout", senders, sizes[senders], root, compute={"graded_synop": macs}
        )
        logits, oc = fe.readout(fe.pooled(alpha, h), node_sum, log.e, f)
        at_root = np.arange(n_cores) == root
        ctx.phase(
            "io_out",
            compute={
                "graded_synop": np.where(at_root, oc.macs, 0),
                "neuron_op": np.where(at_root, oc.ops, 0),
            },
            src=np.array([root]),
            dst=np.array([traffic.HOST]),
            packets=n_classes,
        )
        log.logits = logits
