r"""The RSGN node as a neuron model of the chip simulator: compartments <-> the node program.

One simulator step is one propagation step. The simulator routes the events of the previous
step and accumulates, for each compartment, its synaptic input (message sums m_ik on the state
compartments, alpha_i(t-1) on the gate through its self-synapse), then calls
:meth:`RsgnNode.update_float` (or ``update_fixed``) once with every compartment it updates
(the idle policy decides which). The model decodes the inputs (:class:`~.coding.Coding`),
runs :func:`~.node_program.node_step` over the sample's candidates (updated nodes with a
non-zero input) and returns the compartments' outputs: the winners' payloads g_i and alpha_i,
0 elsewhere. Each compartment's state lives in the simulator's per-run state arrays:

- ``h``: state compartment (i, k) holds h_ik, the gate holds alpha_i (0 while i is inactive);
- ``x``: the last decoded input (sigma-delta coding integrates deltas, so an input persists);
- ``y``: the last output in value units (sigma-delta: a held node keeps sending nothing new).

With sigma-delta coding a previously active node that receives no delta is not re-evaluated:
it holds its state and outputs and keeps its slot in the active-set cap (an approximation whose
agreement with the reference is measured). What the node program did in an inference (the
candidates, winners and selection rounds of each step, the nodes that computed a payload
projection, its current active set) goes into the per-inference :class:`InferenceLog` the
simulator hands to every call as ``ctx.context``; the cost model reads it after the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.backends.neuromorphic.coding import Coding
from rsgn.backends.neuromorphic.node_program import NodeParams, node_step

STATE_VARS = ("h", "x", "y")


@dataclass(frozen=True)
class StepLog:
    """One step of one inference as the node program ran it."""

    candidates: np.ndarray
    winners: np.ndarray
    held: int
    """Sigma-delta: previously active nodes that received no delta and kept their slot."""
    rounds: int
    """Global reduction rounds of the k-winners selection."""
    values: int
    """Values per core and round of the selection's reductions."""


@dataclass
class InferenceLog:
    """Per-inference record of the node program (the simulator's ``context``)."""

    n_steps: int
    active: np.ndarray
    """Current active set (sorted ids) ..."""
    alpha: np.ndarray
    """... their activations ..."""
    h: np.ndarray
    """... and states [|A|, d]."""
    peak: np.ndarray
    """[d] largest |g_k| sent so far (payload calibration)."""
    emitted: list[np.ndarray] = field(default_factory=list)
    """Nodes that computed the payload projection, per emission (0: ignition, t+1: step t)."""
    steps: dict[int, StepLog] = field(default_factory=dict)

    @classmethod
    def start(
        cls, n_steps: int, ids: np.ndarray, alpha: np.ndarray, h: np.ndarray, g: np.ndarray
    ) -> InferenceLog:
        peak = np.abs(g).max(0) if ids.size else np.zeros(h.shape[1])
        return cls(n_steps, ids, alpha, h, peak, emitted=[ids])

    def active_counts(self, sigma_delta: bool) -> list[int]:
        """|A| after each step. A step in which no compartment received input (the chip went
        silent) does not run the node program: the active set empties (sigma-delta: it holds)."""
        out, last = [], int(self.active.size)
        for t in range(self.n_steps):
            if t in self.steps:
                s = self.steps[t]
                last = int(s.winners.size) + s.held
            elif not sigma_delta:
                last = 0
            out.append(last)
        return out

    def final(self, sigma_delta: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The active set after the last step: (ids, alpha, h)."""
        if sigma_delta or (self.n_steps - 1) in self.steps:
            return self.active, self.alpha, self.h
        d = self.h.shape[1]
        return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, d))


class RsgnNode(nm.NeuronModel):
    """Every compartment of the RSGN: the node program behind the simulator's update calls."""

    name = "rsgn_node"
    graded = True
    state_init = dict.fromkeys(STATE_VARS, 0.0)

    def __init__(self, params: NodeParams, coding: Coding) -> None:
        self.params = params
        self.coding = coding

    def init_state(self, n: int, fixed: bool) -> dict[str, np.ndarray]:
        """float64 state in both precisions: the node program evaluates on dequantised inputs."""
        del fixed
        return {k: np.zeros(n, dtype=np.float64) for k in STATE_VARS}

    def validate(self, fixed: bool) -> None:
        """Runs in float and fixed precision."""

    def update_float(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: nm.StepContext
    ) -> np.ndarray:
        y = self.step(state, idx, self.coding.decode(idx, x), ctx.step, ctx.context)
        return self.coding.encode(idx, y)

    def update_fixed(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: nm.StepContext
    ) -> np.ndarray:
        return self.update_float(state, idx, x, ctx)

    def step(
        self,
        state: dict[str, np.ndarray],
        idx: np.ndarray,
        xv: np.ndarray,
        t: int,
        log: InferenceLog,
    ) -> np.ndarray:
        """Step ``t`` for the updated compartments ``idx`` (sorted) with decoded inputs ``xv``;
        returns their outputs in value units (module docstring)."""
        p, sd = self.params, self.coding.sigma_delta
        n, d = p.n_nodes, p.d
        c = d + 1
        h_all = state["h"].reshape(n, c)
        y_all = state["y"].reshape(n, c)
        touched = np.unique(idx // c)
        if sd:
            state["x"][idx] = xv
            xin = state["x"].reshape(n, c)[touched]
        else:
            xin = np.zeros((touched.size, c))
            xin[np.searchsorted(touched, idx // c), idx % c] = xv
        has_input = (xin != 0).any(1)
        cand, xin = touched[has_input], xin[has_input]
        prev = log.active
        held = np.setdiff1d(prev, cand, assume_unique=True) if sd else np.zeros(0, np.int64)
        res = node_step(p, cand, xin[:, :d], xin[:, d], h_all[cand, :d], p.cap - held.size)
        win = cand[res.winners]
        leave = np.setdiff1d(prev, np.concatenate([win, held]), assume_unique=True)
        h_all[leave] = 0.0
        y_all[leave] = 0.0
        y_all[cand] = 0.0
        h_all[win, :d] = res.h
        h_all[win, d] = res.alpha
        y_all[win, :d] = res.g
        y_all[win, d] = res.alpha
        active = np.union1d(win, held)
        log.active = active
        log.alpha = h_all[active, d].copy()
        log.h = h_all[active, :d].copy()
        if win.size:
            log.peak = np.maximum(log.peak, np.abs(res.g).max(0))
        log.emitted.append(win)
        sel = res.selection
        log.steps[t] = StepLog(cand, win, int(held.size), sel.rounds, sel.values)
        return state["y"][idx]
