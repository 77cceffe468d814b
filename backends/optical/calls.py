r"""The op table of one program call: :func:`rsgn.ops.make_table` with the primitives the offload
map puts on the core replaced by closures bound to this call's readings, noise streams and
event counter (:class:`CallOps`; built afresh by every call, so calls share nothing).

Ignition (``ignite = 'optical'``): every spark beam :math:`s_t` of a sample is read by every
node channel :math:`i`; per node the smallest normalised reading
:math:`c_i = \min_t S_0'/(\sqrt{q_i r_i} I_t) = \cosh \min_t d_H(s_t, p_i)` picks the nearest
spark :math:`t^*` (``nearest_spark`` returns the proxy :math:`\delta = (c - 1)/2 =
\sinh^2(d/2)`, the reference's key), the electronic :func:`rsgn.ops.select_dense` keeps the
``cap`` nodes, and ``spark_distances`` inverts *the same* readings of the selected nodes,
:math:`d = \mathrm{arcosh}\,c` (:func:`rsgn.ops.ignite` then forms
:math:`\alpha = e^{-d^2/2\sigma^2}`). The ``attend`` initial state (``token_distances``) reuses
ignition's readings of the :math:`B W T` (winner, spark) pairs, kept in SRAM, so its weights
carry the same detector noise; pairs ignition did not read, or all of them with ``attend =
'reread'``, are re-read (a second optical pass of the T spark states, the winners' channels
converting: fresh noise, no B T N readings stored).

Optical activation (``propagate = 'eit' | 'sbs'``): ``soft_threshold`` drives the activation
medium with :math:`z = (\alpha_i + \gamma|\tilde h_i| - \theta_i)/T` (its calibrated transfer
function, :mod:`.activation`); the beam its detector reads is detected (per-sample noise over the
activation window, its own receiver) and digitised before the electronic inhibition,
:func:`rsgn.ops.inhibit`.

The :class:`Counter` records what the core did, by op: written states, converted readings and
integration windows in sequence (summed over samples); :mod:`.cost` prices them with the
system's device counts.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

from rsgn import ops, optics
from rsgn.backends.optical.activation import LogPowerActivation
from rsgn.backends.optical.mapping import BallPoints, Channels, ball_parts
from rsgn.backends.optical.readings import (
    STREAM_ACTIVATION,
    STREAM_IGNITE,
    STREAM_REREAD,
    Receiver,
    ignition_readings,
    invert,
    pair_readings,
    sample_rng,
)
from rsgn.spec import Hyper
from rsgn.state import Candidates, Graph


@dataclass
class Counter:
    """What one call did on the core, by op (call-local; :mod:`.cost` prices it)."""

    states: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Written states by op: one per token and sample (fanned out to every channel), or one per
    (token, channel) pair for planar pairs."""
    readings: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Readings converted by an ADC, by op."""
    windows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Integration windows in sequence, by op, summed over samples."""
    activations: int = 0
    """Optical activations (one per candidate and step)."""
    activation_windows: int = 0
    """Activation windows in sequence, summed over samples (one per sample and step)."""
    stored: int = 0
    """Ignition readings stored in SRAM for 'attend' (``attend = 'keep'``)."""
    attend_kept: int = 0
    """(sample, winner, token) distances of 'attend' inverted from ignition's kept readings."""
    reread_pairs: int = 0
    """(sample, node, token) pairs re-read for 'attend' (a second optical pass)."""
    reread_beams: int = 0
    """Spark beams written again for those re-reads."""
    planar_pairs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """(beam, channel) pairs rotated electronically into their plane (D > 3), by op."""

    def optical_pass(self, op: str, states: int, readings: int, windows: int) -> None:
        self.states[op] += states
        self.readings[op] += readings
        self.windows[op] += windows


@dataclass(frozen=True)
class Core:
    """What ``prepare`` mapped that a call's ops read (immutable)."""

    receiver: Receiver
    channels: Channels | None
    """The node channels (None when no op reads through them)."""
    activation: LogPowerActivation | None
    """The optical activation (None: the electronic sigmoid)."""
    seed: int
    ignite: bool
    """Ignition (and 'attend') read through the channels."""
    keep: bool = True
    """'attend' reuses ignition's readings kept in SRAM (else its pairs are re-read)."""


class CallOps:
    """The primitives of one call on the core (see the module docstring).

    ``digests`` identify the call's samples (:func:`.readings.sample_digests`): sample b's
    noise comes from its own streams, whatever batch it is in.
    """

    def __init__(self, core: Core, hyper: Hyper, digests: list[int]) -> None:
        self.core = core
        self.hyper = hyper
        self.digests = digests
        self.counter = Counter()
        self._sparks: BallPoints | None = None
        self._ignition: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # rmin, token, lmin
        self._kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # won, reads, lnorm
        self._selected: tuple[torch.Tensor, torch.Tensor] | None = None
        self._act_rngs: dict[int, np.random.Generator] = {}

    def table(self) -> ops.OpTable:
        """The call's op table: the reference composition with this call's primitives."""
        kw: dict = {}
        if self.core.ignite:
            kw.update(
                nearest_spark=self.nearest_spark,
                select_dense=self.select_dense,
                spark_distances=self.spark_distances,
                token_distances=self.token_distances,
            )
        if self.core.activation is not None:
            kw.update(soft_threshold=self.soft_threshold, inhibit=self.inhibit)
        return ops.make_table(**kw)

    # ---------------------------------------------------------------------------- ignite
    def _rng(self, stream: int, b: int) -> np.random.Generator:
        return sample_rng(self.core.seed, stream, self.digests[b])

    @torch.no_grad()
    def nearest_spark(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per node the spark with the smallest normalised reading and the proxy
        delta = (c - 1)/2 of that reading: [B, N] each (``x``, ``a``: the programmed nodes)."""
        del x, a  # the channels were programmed from them at prepare
        rx, ch, hp = self.core.receiver, self.core.channels, self.hyper
        bsz, t, _ = sparks.shape
        n = ch.q.shape[0]
        self._sparks = ball_parts(sparks, spark_a)
        keep = hp.init_state == "attend" and self.core.keep
        cmin = np.empty((bsz, n))
        tok = np.empty((bsz, n), dtype=np.int64)
        self._ignition, self._kept = [], []
        for b in range(bsz):
            ign = ignition_readings(rx, ch, self._sparks.sample(b), self._rng(STREAM_IGNITE, b))
            cmin[b], tok[b] = ign.cmin, ign.token
            self._ignition.append((ign.rmin, ign.token, ign.lmin))
            if keep:  # the readings 'attend' will need: this sample's own winners
                delta = torch.as_tensor(0.5 * (np.maximum(ign.cmin, 1.0) - 1.0), dtype=sparks.dtype)
                key = ops.ignition_key(delta.unsqueeze(0), hp.selection)
                ids, valid = ops.select_dense(key, hp.cap, hp.selection)
                won = ids[0][valid[0]].numpy()
                self._kept.append((won, ign.reads[:, won], ign.lnorm[:, won]))
                self.counter.stored += ign.reads.size
        e = bsz * t * n
        self.counter.optical_pass("ignite", e if ch.planar else bsz * t, e, bsz * t)
        if ch.planar:
            self.counter.planar_pairs["ignite"] += e
        delta = torch.as_tensor(0.5 * (np.maximum(cmin, 1.0) - 1.0), dtype=sparks.dtype)
        return delta.to(sparks.device), torch.as_tensor(tok, device=sparks.device)

    def select_dense(
        self, score: torch.Tensor, cap: int, method: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The electronic :func:`rsgn.ops.select_dense`; this call's ignition keeps its ids."""
        ids, valid = ops.select_dense(score, cap, method)
        self._selected = (ids, valid)
        return ids, valid

    def spark_distances(
        self, s_sel: torch.Tensor, a_sel: torch.Tensor, x_sel: torch.Tensor, a_nodes: torch.Tensor
    ) -> torch.Tensor:
        """The selected nodes' distances to the sparks that lit them, inverted from the very
        readings that selected them: d = arcosh(S0' / (sqrt(q r) I)) [B, W]."""
        del a_sel, x_sel, a_nodes  # the readings hold them
        ids = self._selected[0].cpu().numpy()
        rmin = np.stack([r[ids[b]] for b, (r, _, _) in enumerate(self._ignition)])
        lnorm = np.stack([lm[ids[b]] for b, (_, _, lm) in enumerate(self._ignition)])
        d = invert(rmin, lnorm, self.core.channels, ids)
        return torch.as_tensor(d, dtype=s_sel.dtype, device=s_sel.device)

    @torch.no_grad()
    def token_distances(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, graph: Graph, ids: torch.Tensor
    ) -> torch.Tensor:
        """Measured d_H(s_t, p_i) [B, W, T] for 'attend': the kept ignition readings of each
        sample's winners; any other (node, sample) pair re-read (fresh noise); ignition's
        padding slots (not selected) get 0 without a reading."""
        del graph
        bsz, t, _ = sparks.shape
        ids_np = ids.cpu().numpy()
        w = ids_np.shape[1]
        d = np.zeros((bsz, w, t))
        own = self._selected is not None and torch.equal(self._selected[0].to(ids.device), ids)
        sel = self._selected[1].cpu().numpy() if own else np.ones(ids_np.shape, bool)
        sparks_bp = self._sparks if own else ball_parts(sparks, spark_a)
        ch = self.core.channels
        for b in range(bsz):
            need = np.flatnonzero(sel[b])
            nodes = ids_np[b, need]
            col = np.full(nodes.shape, -1)
            if own and self._kept and self._kept[b][0].size:
                won = self._kept[b][0]  # ascending, as select_dense returns them
                pos = np.minimum(np.searchsorted(won, nodes), won.size - 1)
                col = np.where(won[pos] == nodes, pos, -1)
            hit = col >= 0
            if hit.any():
                rd = self._kept[b][1][:, col[hit]].T  # [w_hit, T]
                lnorm = self._kept[b][2][:, col[hit]].T
                nd = np.broadcast_to(nodes[hit][:, None], rd.shape)
                d[b, need[hit]] = invert(rd, lnorm, ch, nd)
                self.counter.attend_kept += int(hit.sum()) * t
            miss = need[~hit]
            if miss.size:
                d[b, miss] = pair_readings(
                    self.core.receiver,
                    ch,
                    sparks_bp.sample(b),
                    ids_np[b, miss],
                    self._rng(STREAM_REREAD, b),
                )
                self._count_reread(miss.size * t, t)
        return torch.as_tensor(d, dtype=sparks.dtype, device=sparks.device)

    def _count_reread(self, pairs: int, beams: int) -> None:
        c = self.counter
        c.reread_pairs += pairs
        c.reread_beams += beams
        planar = self.core.channels.planar
        c.optical_pass("attend", pairs if planar else beams, pairs, beams)
        if planar:
            c.planar_pairs["attend"] += pairs

    # ---------------------------------------------------------------------------- activation
    def soft_threshold(
        self,
        alpha_prev: torch.Tensor,
        htilde: torch.Tensor,
        theta: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
    ) -> torch.Tensor:
        """The activation medium's output f(z), z = (alpha_prev + gamma |h~| - theta) / T
        (noise-free; detected in :meth:`inhibit`)."""
        act = self.core.activation
        norm = torch.linalg.vector_norm(htilde, dim=-1)
        z = ((alpha_prev + gamma * norm - theta) / temperature).detach().double().cpu().numpy()
        self.counter.activations += z.shape[0]
        return torch.as_tensor(act(z), dtype=htilde.dtype, device=htilde.device)

    def inhibit(self, cand: Candidates, graph: Graph, *, strength: float) -> torch.Tensor:
        """The activation outputs detected and digitised (each sample's own noise, the
        activation's receiver over its window), then the electronic :func:`rsgn.ops.inhibit` on
        the measured activations."""
        act = self.core.activation
        power = act.output_power(cand.alpha.detach().double().cpu().numpy())
        rows = cand.batch.cpu().numpy()
        out = power.copy()
        bounds = np.searchsorted(rows, np.arange(cand.n_batch + 1))
        det, bandwidth = act.receiver()
        for b in range(cand.n_batch):
            sl = slice(bounds[b], bounds[b + 1])
            if sl.start == sl.stop:
                continue
            self.counter.activation_windows += 1
            if self.core.receiver.noise:
                rng = self._act_rngs.setdefault(b, self._rng(STREAM_ACTIVATION, b))
                i = optics.sample_photocurrent(np.maximum(power[sl], 0.0), bandwidth, det, rng)
                out[sl] = optics.estimate_power(i, det)
        alpha = torch.as_tensor(np.clip(act.from_power(out), 0.0, None), dtype=cand.alpha.dtype)
        measured = dataclasses.replace(cand, alpha=alpha.to(cand.alpha.device))
        return ops.inhibit(measured, graph, strength=strength)
