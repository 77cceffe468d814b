"""The event-driven chip simulator: numpy computes what happens, SimPy decides when.

A run has two passes.

**Functional pass** (numpy, per step ``t``): every neuron's input ``x(t)`` is what the packets of
step ``t - 1`` delivered (``x = W^T p(t-1)``, vectorised CSR gather + ``bincount``; sigma-delta
coding integrates deltas, ``acc += W^T d``) plus external input. The idle-update policy picks
the neurons to update: ``all``, ``active_cores`` (every neuron of a core with a touched neuron)
or ``touched_only``. A neuron is *touched* when it received a synaptic event or a non-zero
external input (sigma-delta: a delta, or a changed external input), or when its model says it
must update (:meth:`NeuronModel.needs_update`: leak, bias); with ``units > 1`` touching one
compartment of a multi-compartment neuron touches them all. Updated touched neurons are active
updates, the others idle. Updated neurons with a non-zero (quantised) output emit an event: one
packet per destination core of its synapses (Loihi's fan-out axons), and the destination core
does one synaptic op per synapse the packet reaches. A model may declare communication
phases within the step (:meth:`StepContext.phase`). Every step's packets are recorded as a
:class:`~rsgn.neuromorphic.timing.StepPlan`; ``initial_output`` adds a delivery-only step in
front.

**Timing pass** (SimPy, :mod:`~rsgn.neuromorphic.timing`): one process per core replays the
plans; packets move as flows over the event-driven mesh (:mod:`~rsgn.neuromorphic.noc`: finite
link bandwidth, finite buffers, contention, back-pressure, per-port serialisation). Per core::

    update      sum of t_update_active / t_update_idle over its updated neurons
    emission    per event t_spike_out, per packet t_message_out (in neuron order; without
                phases a packet leaves as soon as its neuron is updated)
    receive     per packet t_message_in + synapses reached x t_synop (t_graded_synop for
                graded payloads), in arrival order at the core's receive port

``sync`` mode ends each step with a barrier whose time grows with the tiles and chips used
(:meth:`Topology.barrier_ps`); ``async`` mode has none. Packets of every step are routed
(the last step's too). ``noc="train"`` aggregates a step's packets per (source core,
destination core) into trains of at most ``buffer_packets`` packets; ``noc="packet"``
simulates every packet (the reference the shortcut is validated against).

Energy is counted events times the profile's per-event energies plus static power times the
simulated latency (:func:`~rsgn.neuromorphic.report.compute_energy`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .coding import PayloadCoding, SigmaDeltaState, quantize_payload, saturate
from .errors import ConfigError, NetworkError
from .mapping import check_capacity
from .network import Network
from .neurons import OPS, Phase, StepContext
from .profile import HardwareProfile
from .report import (
    BatchReport,
    EventCounts,
    NeuroBenchMetrics,
    RunReport,
    TrafficCounts,
    compute_energy,
)
from .timing import HOST, FlowSet, PhasePlan, StepPlan, simulate
from .topology import Topology

__all__ = ["SimConfig", "Simulator", "ExtInput", "IDLE_POLICIES", "NOC_MODES"]

IDLE_POLICIES = ("all", "active_cores", "touched_only")
NOC_MODES = ("train", "packet")
ExtInput = np.ndarray | Callable[[int], "np.ndarray | tuple[np.ndarray, np.ndarray]"] | None


@dataclass(frozen=True)
class SimConfig:
    """Simulation options.

    Attributes
    ----------
    precision : {"float", "fixed"}
        Float64 dynamics, or bit-accurate int64 (integer weights, inputs and payloads;
        saturating accumulators of the chip's ``accumulator_bits``).
    payload : PayloadCoding
        Graded payload width/scale and sigma-delta coding.
    idle_policy : {"all", "active_cores", "touched_only"}
    mode : {"sync", "async"}
        Barrier-synchronised steps, or no barrier (module docstring).
    noc : {"train", "packet"}
        Flows per (source core, destination core) and step, or one flow per packet.
    seed : int
        Seeds ``StepContext.rng`` (stochastic user models).
    record : {"outputs", "none"}
        Keep the ``(steps, N)`` outputs in the report, or only the final output.
    buffer_packets : int or None
        Overrides the profile's ``noc.buffer_packets`` (link and receive-port buffer depth).
    noc_quantum_ns : float
        A flow crosses links without a SimPy event of its own while its head is less than this
        far ahead of the clock (0: one event per hop, exact arrival order at every link; more:
        links reserved up to that much early, fewer events; its effect is measured in
        ``studies/neuromorphic/noc_validation.py``).
    """

    precision: str = "float"
    payload: PayloadCoding = field(default_factory=PayloadCoding)
    idle_policy: str = "all"
    mode: str = "sync"
    noc: str = "train"
    seed: int = 0
    record: str = "outputs"
    buffer_packets: int | None = None
    noc_quantum_ns: float = 0.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid option."""
        for name, allowed in (
            ("precision", ("float", "fixed")),
            ("idle_policy", IDLE_POLICIES),
            ("mode", ("sync", "async")),
            ("noc", NOC_MODES),
            ("record", ("outputs", "none")),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"SimConfig.{name} must be one of {', '.join(allowed)}, "
                    f"got {getattr(self, name)!r}"
                )
        if not self.noc_quantum_ns >= 0:
            raise ConfigError(f"SimConfig.noc_quantum_ns must be >= 0, got {self.noc_quantum_ns}")
        if self.buffer_packets is not None and int(self.buffer_packets) < 1:
            raise ConfigError(f"SimConfig.buffer_packets must be >= 1, got {self.buffer_packets}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _gather_ranges(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated positions ``indptr[r]:indptr[r+1]`` for ``rows``, and the range lengths."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), counts
    offs = np.cumsum(counts) - counts
    pos = np.repeat(starts - offs, counts) + np.arange(total, dtype=np.int64)
    return pos, counts


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``keys``: start index of each run of equal keys, and the run lengths."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    brk = np.empty(keys.size, dtype=bool)
    brk[0] = True
    np.not_equal(keys[1:], keys[:-1], out=brk[1:])
    starts = np.nonzero(brk)[0]
    return starts, np.diff(np.append(starts, keys.size))


def group_flows(
    src: np.ndarray,
    dst: np.ndarray,
    offset: np.ndarray,
    rx: np.ndarray,
    n_cores: int,
    per_packet: bool,
    max_packets: int = 1 << 62,
    window: int = 1 << 62,
) -> FlowSet:
    """Packets (source, destination, ready offset, receive time) -> flows: per (source,
    destination) in ready order, split into trains of at most ``max_packets`` packets (the
    buffer depth: a train fits the buffers it fills) whose ready times span at most
    ``window`` ps (a train is a burst: the calendar reserves its work when its head
    arrives), or one flow per packet (``per_packet``). Source/destination -1 is the host."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    offset = np.asarray(offset, dtype=np.int64)
    rx = np.asarray(rx, dtype=np.int64)
    if src.size == 0:
        return FlowSet.empty()
    if per_packet or max_packets <= 1:
        one = np.ones(src.size, dtype=np.int64)
        return FlowSet(src, dst, one, offset, offset, rx, rx)
    key = (src + 1) * (n_cores + 1) + (dst + 1)
    order = np.lexsort((offset, key))
    k, off, r = key[order], offset[order], rx[order]
    starts, lens = _segments(k)
    # split into bursts: a new train when the window or the packet limit is exceeded
    first = np.repeat(off[starts], lens)
    brk = np.zeros(k.size, dtype=bool)
    brk[starts] = True
    if window < (1 << 62) or int(lens.max()) > max_packets:
        # greedy in ready order: cut where the offset leaves the window of the train's
        # first packet (approximated by windows aligned on the group's first packet) or
        # where the packet count reaches max_packets
        rank = np.arange(k.size, dtype=np.int64) - np.repeat(starts, lens)
        wid = (off - first) // max(window, 1)
        seg = wid * (k.size + 1) + rank // max(max_packets, 1)
        brk[1:] |= seg[1:] != seg[:-1]
        starts = np.nonzero(brk)[0]
        lens = np.diff(np.append(starts, k.size))
    ends = starts + lens - 1
    return FlowSet(
        src=src[order][starts],
        dst=dst[order][starts],
        packets=lens,
        first=off[starts],
        last=off[ends],
        rx_total=np.add.reduceat(r, starts),
        rx_last=r[ends],
    )


class Simulator:
    """Runs a :class:`Network` on a chip described by a :class:`HardwareProfile`.

    Parameters
    ----------
    network : Network
    profile : HardwareProfile
    topology : Topology, optional
        Defaults to the smallest chip grid holding the largest placed core id.
    config : SimConfig, optional

    Raises
    ------
    CapacityError
        A core holds more neurons, axons or synapses than the profile allows.
    ConfigError, NetworkError
        Invalid options, graded neurons on a binary-spike chip, non-integer or too wide
        weights in fixed-point mode.
    """

    def __init__(
        self,
        network: Network,
        profile: HardwareProfile,
        topology: Topology | None = None,
        config: SimConfig | None = None,
    ) -> None:
        self.network = network
        self.profile = profile
        self.config = config or SimConfig()
        self.config.validate()
        if topology is None:
            topology = Topology.for_cores(profile, int(network.placement.max(initial=0)) + 1)
        if topology.profile is not profile:
            topology = Topology(profile, topology.chips_x, topology.chips_y)
        self.topology = topology
        self.usage = check_capacity(network, topology)
        self.fixed = self.config.precision == "fixed"
        core = profile.chip.core
        pay = self.config.payload
        if network.graded.any():
            if core.max_payload_bits < 2:
                g = network.groups[int(np.argmax(network.graded))].name
                raise ConfigError(
                    f"preset {profile.name} sends binary spikes only (core.max_payload_bits "
                    f"{core.max_payload_bits}) but group '{g}' is graded"
                )
            pay.validate(core.max_payload_bits)
        self.payload_bits = (
            pay.bits if pay.bits is not None else (core.max_payload_bits if self.fixed else None)
        )
        for g in network.groups:
            g.model.validate(self.fixed)
        syn = network.synapses
        w = syn.weight
        if self.fixed:
            if not np.issubdtype(w.dtype, np.integer):
                if w.size and not np.all(w == np.rint(w)):
                    raise NetworkError(
                        "fixed-point mode needs integer weights; use quantize_weights()"
                    )
                w = w.astype(np.int64)
            hi = (1 << (core.weight_bits - 1)) - 1
            if w.size and (w.max() > hi or w.min() < -hi - 1):
                raise NetworkError(
                    f"weights exceed the {core.weight_bits}-bit signed range of preset "
                    f"{profile.name} (core.weight_bits)"
                )
            self._weight = w.astype(np.int64)
            fanin = int(np.bincount(syn.dst, minlength=1).max()) if syn.nnz else 0
            pmax = 1 << (self.payload_bits - 1) if network.graded.any() else 1
            if pay.sigma_delta:
                pmax *= 2
            bound = int(np.abs(self._weight).max(initial=0)) * pmax * max(fanin, 1)
            self._exact_bincount = bound < (1 << 53)
        else:
            self._weight = w.astype(np.float64)
            self._exact_bincount = True
        self._src_graded = network.graded[network.group_of]
        self._cores = np.unique(network.placement)
        tm = profile.timing
        self.buffer_packets = int(self.config.buffer_packets or profile.noc.buffer_packets)
        # a train is a burst: at most the buffer depth, within the time the output port needs
        # to send that many packets back to back
        self.train_window = 1 << 62
        # a train holds at most the buffer depth (longer trains block more than the
        # per-packet reference on small buffers: measured, noc_validation.py)
        self.train_packets = self.buffer_packets
        # per-route receive time: message_in + synapses reached x (graded) synop time
        t_syn = np.where(self._src_graded[network.route_src], tm.graded_synop_ps, tm.synop_ps)
        self._route_rx = tm.message_in_ps + network.route_nsyn * t_syn
        h = topology.hops(network.placement[network.route_src], network.route_core)
        self._route_hops = (h.ew, h.ns, h.chip)
        self._route_intra = (
            topology.core_tile[network.placement[network.route_src]]
            == (topology.core_tile[network.route_core])
        )
        # NeuroBench layers: non-zero-weight fan-out of each neuron within each layer
        nl = len(network.layers)
        self._layer_nz = [
            np.bincount(
                syn.src[(network.synapse_layer == k) & (syn.weight != 0)],
                minlength=network.n_neurons,
            ).astype(np.int64)
            for k in range(nl)
        ]
        dense = sum(la.n_in * la.n_out for la in network.layers)
        nonzero = int(np.count_nonzero(syn.weight))
        self._dense_per_step = int(dense)
        self._connection_sparsity = (dense - nonzero) / dense if dense else 0.0
        wbytes = -(-core.weight_bits // 8) if self.fixed else 4
        self._footprint = int(syn.nnz * wbytes)

    # ------------------------------------------------------------------ inputs
    def _ext_at(self, ext: ExtInput, t: int) -> np.ndarray | None:
        n = self.network.n_neurons
        if ext is None:
            return None
        if callable(ext):
            v = ext(t)
            if isinstance(v, tuple):
                idx, val = v
                out = np.zeros(n, dtype=np.int64 if self.fixed else np.float64)
                out[np.asarray(idx, dtype=np.int64)] = val
                v = out
        else:
            v = ext[t]
        return self._check_vec(v, "ext_input")

    def _check_vec(self, v: Any, what: str) -> np.ndarray:
        v = np.asarray(v)
        if v.shape != (self.network.n_neurons,):
            raise ConfigError(f"{what}: expected shape ({self.network.n_neurons},), got {v.shape}")
        if self.fixed:
            if not np.issubdtype(v.dtype, np.integer):
                if not np.all(v == np.rint(v)):
                    raise ConfigError(f"{what}: fixed-point mode needs integer values")
            return v.astype(np.int64)
        v = v.astype(np.float64)
        if not np.all(np.isfinite(v)):
            raise ConfigError(f"{what}: contains NaN or inf")
        return v

    # ------------------------------------------------------------------ public API
    def run(
        self,
        ext_input: ExtInput = None,
        n_steps: int | None = None,
        initial_output: np.ndarray | None = None,
        *,
        initial_state: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        context: object = None,
    ) -> RunReport:
        """Simulate one inference from a fresh state.

        Parameters
        ----------
        ext_input : array (steps, N), callable, or None
            External input added to each neuron's synaptic input at every step. A callable
            ``f(step)`` returns a dense ``(N,)`` array or ``(indices, values)``.
        n_steps : int, optional
            Required unless ``ext_input`` is an array (then ``len(ext_input)``).
        initial_output : array (N,), optional
            Outputs emitted before step 0 (encoded like any emission and delivered in a
            delivery-only step in front of step 0), e.g. the initial activations of a graph
            network.
        initial_state : mapping, optional
            ``{group name: {state variable: array (n_group,)}}``: start values of neuron
            state variables (the others start at the model's ``state_init``). Cast to the
            state's dtype.
        context : object, optional
            Per-inference scratch handed to every update callback as ``ctx.context``.

        Returns
        -------
        RunReport
        """
        if n_steps is None:
            if ext_input is None or callable(ext_input):
                raise ConfigError("n_steps is required unless ext_input is an array")
            n_steps = len(ext_input)
        n_steps = int(n_steps)
        if n_steps < 1:
            raise ConfigError(f"n_steps must be >= 1, got {n_steps}")
        if ext_input is not None and not callable(ext_input):
            ext_input = np.asarray(ext_input)
            if ext_input.ndim != 2 or ext_input.shape[0] < n_steps:
                raise ConfigError(
                    f"ext_input: expected shape ({n_steps}, {self.network.n_neurons}), "
                    f"got {ext_input.shape}"
                )
        run = _Run(self, ext_input, n_steps, initial_output, context)
        if initial_state:
            run.set_state(initial_state)
        run.functional()
        return run.timed_report()

    def run_batch(
        self,
        ext_inputs: np.ndarray | list[ExtInput] | None = None,
        n_steps: int | None = None,
        initial_outputs: np.ndarray | None = None,
    ) -> BatchReport:
        """Run several independent inferences (state reset between them).

        ``ext_inputs`` is ``(B, steps, N)`` or a list; ``initial_outputs`` is ``(B, N)``.
        The batch size is taken from whichever is given.
        """
        if ext_inputs is not None:
            b = len(ext_inputs)
        elif initial_outputs is not None:
            b = len(initial_outputs)
        else:
            raise ConfigError("run_batch needs ext_inputs or initial_outputs")
        reps = []
        for k in range(b):
            ext = None if ext_inputs is None else ext_inputs[k]
            init = None if initial_outputs is None else initial_outputs[k]
            reps.append(self.run(ext, n_steps=n_steps, initial_output=init))
        return BatchReport(reps)


class _Run:
    """State of one inference: the functional pass fills ``plans`` and the counts."""

    def __init__(
        self,
        sim: Simulator,
        ext: ExtInput,
        n_steps: int,
        init: np.ndarray | None,
        context: object = None,
    ) -> None:
        self.sim = sim
        self.ext = ext
        self.n_steps = n_steps
        self.context = context
        net = sim.network
        fixed = sim.fixed
        n = net.n_neurons
        self.dtype = np.int64 if fixed else np.float64
        self.states = [g.model.init_state(g.n, fixed) for g in net.groups]
        self.y = np.zeros(n, dtype=self.dtype)
        self.sd = SigmaDeltaState(n, fixed) if sim.config.payload.sigma_delta else None
        self.acc = np.zeros(n, dtype=self.dtype) if self.sd is not None else None
        self.prev_ext: np.ndarray | None = None
        self.counts = EventCounts()
        self.eff_macs = 0
        self.eff_acs = 0
        self.nonzero_outputs = 0
        self.plans: list[StepPlan] = []
        self.outputs = (
            np.zeros((n_steps, n), dtype=self.dtype) if sim.config.record == "outputs" else None
        )
        self.hash = hashlib.sha256()
        self.hash.update(sim.profile.name.encode())
        self.pay_vec = np.zeros(n, dtype=self.dtype)  # payloads sent last step (NeuroBench)
        # what the deliveries of the previous step left for the next update
        self.xs = np.zeros(n, dtype=self.dtype)
        self.touched = np.zeros(n, dtype=bool)
        self.init = init

    def set_state(self, values: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Start values of neuron state variables, by group name (see ``Simulator.run``)."""
        net = self.sim.network
        names = [g.name for g in net.groups]
        for gname, variables in values.items():
            if gname not in names:
                raise ConfigError(f"initial_state: unknown group {gname!r} (groups: {names})")
            k = names.index(gname)
            state = self.states[k]
            for var, v in variables.items():
                if var not in state:
                    raise ConfigError(
                        f"initial_state: group {gname!r} has no state variable {var!r} "
                        f"(variables: {', '.join(state) or 'none'})"
                    )
                v = np.asarray(v)
                if v.shape != state[var].shape:
                    raise ConfigError(
                        f"initial_state[{gname!r}][{var!r}]: expected shape "
                        f"{state[var].shape}, got {v.shape}"
                    )
                state[var][:] = v.astype(state[var].dtype)

    # ------------------------------------------------------------------ emission
    def _emit(self, idx: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Events of the updated neurons ``idx`` (sorted) with outputs ``y``."""
        sim, net = self.sim, self.sim.network
        pay = sim.config.payload
        send_i, send_v = [], []
        bounds = np.searchsorted(idx, net.offsets)
        for g, grp in enumerate(net.groups):
            lo, hi = bounds[g], bounds[g + 1]
            if lo == hi:
                continue
            gi, gy = idx[lo:hi], y[lo:hi]
            if not grp.model.graded:
                m = gy != 0
                send_i.append(gi[m])
                send_v.append(np.ones(int(m.sum()), dtype=self.dtype))
                continue
            q = quantize_payload(gy, sim.payload_bits, pay.scale, sim.fixed)
            if self.sd is None:
                m = q != 0
                send_i.append(gi[m])
                send_v.append(q[m])
            else:
                plain = int(np.count_nonzero(q))
                si, d = self.sd.encode(gi, q, pay.threshold)
                self.counts.sd_events_plain += plain
                self.counts.sd_events_saved += plain - int(si.size)
                send_i.append(si)
                send_v.append(d)
        if not send_i:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=self.dtype)
        return np.concatenate(send_i), np.concatenate(send_v).astype(self.dtype)

    # ------------------------------------------------------------------ delivery
    def _deliver(self, sidx: np.ndarray, sval: np.ndarray, gen_offset: np.ndarray) -> FlowSet:
        """Route the events ``(sidx, sval)``: count their packets and hops, accumulate their
        synaptic input for the next update, and return their flows (packet ``p`` of event
        ``e`` is ready at ``gen_offset[e] + (p + 1) * t_message_out``)."""
        sim, net = self.sim, self.sim.network
        syn = net.synapses
        n, n_cores = net.n_neurons, sim.topology.n_cores
        c = self.counts
        tm = sim.profile.timing
        # packets: one per (event, destination core)
        rpos, rcnt = _gather_ranges(net.route_indptr, sidx)
        rx = sim._route_rx[rpos]
        intra = sim._route_intra[rpos]
        n_intra = int(intra.sum())
        c.intra_tile_spikes += n_intra
        c.inter_tile_packets += int(rpos.size) - n_intra
        hew, hns, hch = sim._route_hops
        c.hops_ew += int(hew[rpos].sum())
        c.hops_ns += int(hns[rpos].sum())
        c.chip_hops += int(hch[rpos].sum())
        # synaptic accumulation for the next update
        spos, scnt = _gather_ranges(syn.indptr, sidx)
        dst = syn.dst[spos]
        vals = sim._weight[spos] * np.repeat(sval, scnt)
        if sim.fixed and not sim._exact_bincount:
            xs = np.zeros(n, dtype=np.int64)
            np.add.at(xs, dst, vals)
        else:
            xs = np.bincount(dst, weights=vals, minlength=n)
            if sim.fixed:
                xs = np.rint(xs).astype(np.int64)
        graded_src = sim._src_graded[sidx]
        n_syn_graded = int(scnt[graded_src].sum())
        c.graded_synops += n_syn_graded
        c.synops += int(spos.size) - n_syn_graded
        self.xs = xs
        self.touched = np.bincount(dst, minlength=n) > 0
        # NeuroBench (value-based, per layer): the layer's input vector is its sources' payloads
        self.pay_vec = np.zeros(n, dtype=self.dtype)
        self.pay_vec[sidx] = sval
        for la, nz in zip(net.layers, sim._layer_nz, strict=True):
            ops = int(nz[sidx].sum())
            if ops == 0:
                continue
            v = self.pay_vec[la.sources]
            spiking = bool(np.all((v == 0) | (v == 1) | (v == -1)))
            if spiking:
                self.eff_acs += ops
            else:
                self.eff_macs += ops
        # flows
        if rpos.size == 0:
            return FlowSet.empty()
        src_core = net.placement[np.repeat(sidx, rcnt)]
        within = np.arange(rpos.size, dtype=np.int64) - np.repeat(np.cumsum(rcnt) - rcnt, rcnt)
        offset = np.repeat(gen_offset, rcnt) + (within + 1) * tm.message_out_ps
        return group_flows(
            src_core,
            net.route_core[rpos],
            offset,
            rx,
            n_cores,
            sim.config.noc == "packet",
            sim.train_packets,
            sim.train_window,
        )

    def _phase_plan(self, ph: Phase) -> PhasePlan:
        """Counts and flows of one declared phase (packets of a core leave one
        ``t_message_out`` apart; the host sends one ``t_host_io`` apart)."""
        sim = self.sim
        topo, tm = sim.topology, sim.profile.timing
        n_cores = topo.n_cores
        tc = self.counts.phase(ph.name)
        t_op = {"neuron_op": tm.neuron_op_ps, "synop": tm.synop_ps,
                "graded_synop": tm.graded_synop_ps}  # fmt: skip
        compute = np.zeros(n_cores, dtype=np.int64)
        for op, v in ph.compute.items():
            compute += v * t_op[op]
            setattr(tc, op + "s", getattr(tc, op + "s") + int(v.sum()))
        src, dst, pk, rx_ops = ph.src, ph.dst, ph.packets, ph.rx_ops
        if src.size == 0:
            return PhasePlan(ph.name, compute, FlowSet.empty())
        from_host, to_host = src == HOST, dst == HOST
        tc.packets += int(pk.sum())
        tc.host_in += int(pk[from_host].sum())
        tc.host_out += int(pk[to_host].sum())
        tc.rx_ops += int(rx_ops.sum())
        s_core = np.where(from_host, 0, src)
        d_core = np.where(to_host, 0, dst)
        h = topo.hops(s_core, d_core)
        tc.hops_ew += int((h.ew * pk).sum())
        tc.hops_ns += int((h.ns * pk).sum())
        tc.chip_hops += int((h.chip * pk).sum())
        same = (topo.core_tile[s_core] == topo.core_tile[d_core]) & ~from_host & ~to_host
        tc.intra_tile += int(pk[same].sum())
        # packets serialised per sender, in message order
        order = np.argsort(src, kind="stable")
        s_o, pk_o = src[order], pk[order]
        cum = np.cumsum(pk_o)
        starts, _ = _segments(s_o)
        base = np.repeat(cum[starts] - pk_o[starts], np.diff(np.append(starts, s_o.size)))
        step_ps = np.where(s_o == HOST, tm.host_io_ps, tm.message_out_ps)
        first = np.empty(src.size, dtype=np.int64)
        first[order] = (cum - pk_o - base + 1) * step_ps
        rx_pp = np.where(to_host, tm.host_io_ps, tm.message_in_ps)
        rx_total = pk * rx_pp + rx_ops * tm.neuron_op_ps
        # every packet: ready one send time apart; a message's receive work spread evenly
        rep = np.repeat(np.arange(src.size), pk)
        j = np.arange(rep.size) - np.repeat(np.cumsum(pk) - pk, pk)
        step_msg = np.where(src == HOST, tm.host_io_ps, tm.message_out_ps)
        off = first[rep] + j * step_msg[rep]
        rxp = rx_total[rep] // pk[rep]
        flows = group_flows(
            src[rep],
            dst[rep],
            off,
            rxp,
            n_cores,
            sim.config.noc == "packet",
            sim.train_packets,
            sim.train_window,
        )
        return PhasePlan(ph.name, compute, flows)

    # ------------------------------------------------------------------ one step
    def _policy(self, touched: np.ndarray) -> np.ndarray:
        sim, net = self.sim, self.sim.network
        pol = sim.config.idle_policy
        if pol == "all":
            return np.arange(net.n_neurons, dtype=np.int64)
        if pol == "touched_only":
            return np.nonzero(touched)[0]
        active_core = np.bincount(net.placement[touched], minlength=sim.topology.n_cores) > 0
        return np.nonzero(active_core[net.placement])[0]

    def _touched(self, ext: np.ndarray | None, t: int) -> np.ndarray:
        net = self.sim.network
        touched = self.touched.copy()
        if ext is not None:
            touched |= (ext != self.prev_ext) if self.acc is not None else (ext != 0)
        if net.units > 1:  # touching one compartment of a unit touches the unit
            touched = np.repeat(touched.reshape(-1, net.units).any(1), net.units)
        for g, grp in enumerate(net.groups):
            m = grp.model.needs_update(self.states[g], grp.n, t)
            if m is not None:
                touched[net.offsets[g] : net.offsets[g + 1]] |= np.asarray(m, dtype=bool)
        return touched

    def step(self, t: int) -> None:
        sim, net = self.sim, self.sim.network
        topo, tm = sim.topology, sim.profile.timing
        cfg = sim.config
        n_cores = topo.n_cores
        c = self.counts
        acc_bits = sim.profile.chip.core.accumulator_bits
        ext = sim._ext_at(self.ext, t)
        if self.acc is not None:
            self.acc += self.xs
            if sim.fixed:
                self.acc = saturate(self.acc, acc_bits)
            x = self.acc.copy()
        else:
            x = self.xs
        if ext is not None:
            x = x + ext
        touched = self._touched(ext, t)
        if ext is not None:
            self.prev_ext = ext
        if sim.fixed:
            x = saturate(x, acc_bits)
        idx = self._policy(touched)
        act = touched[idx]
        # neuron updates; models may declare phases
        phases: list[Phase] = []
        ynew = np.zeros(idx.size, dtype=self.dtype)
        bounds = np.searchsorted(idx, net.offsets)
        declared = np.zeros(idx.size, dtype=bool)
        for g, grp in enumerate(net.groups):
            lo, hi = bounds[g], bounds[g + 1]
            if lo == hi:
                continue
            gidx = idx[lo:hi] - net.offsets[g]
            ctx = StepContext(
                t,
                g,
                sim.fixed,
                cfg.seed,
                self.context,
                n_steps=self.n_steps,
                placement=grp.placement,
                n_cores=n_cores,
                phases=phases,
            )
            upd = grp.model.update_fixed if sim.fixed else grp.model.update_float
            ynew[lo:hi] = upd(self.states[g], gidx, x[idx[lo:hi]], ctx)
            declared[lo:hi] = grp.model.declares_compute
        act_upd = act & ~declared
        c.neuron_updates_active += int(act_upd.sum())
        c.neuron_updates_idle += int(idx.size - act_upd.sum())
        if self.sd is None:
            self.y[:] = 0  # plain coding: a neuron not updated emits nothing, outputs 0
        self.y[idx] = ynew
        self.nonzero_outputs += int(np.count_nonzero(self.y))
        if self.outputs is not None:
            self.outputs[t] = self.y
        # emission
        sidx, sval = self._emit(idx, ynew)
        c.events += int(sidx.size)
        core_of = net.placement[idx]
        t_upd = np.where(act_upd, tm.neuron_update_active_ps, tm.neuron_update_idle_ps)
        emit_pos = np.searchsorted(idx, sidx)
        npk = net.route_indptr[sidx + 1] - net.route_indptr[sidx]
        gen = np.zeros(idx.size, dtype=np.int64)  # per updated neuron: spike + its packets
        gen[emit_pos] = tm.spike_out_ps + npk * tm.message_out_ps
        interleaved = not phases
        # per-neuron generation timeline in (core, neuron) order
        order = np.lexsort((idx, core_of))
        cost = (t_upd + gen) if interleaved else gen
        cum = np.cumsum(cost[order])
        starts, lens = _segments(core_of[order])
        base = np.repeat(cum[starts] - cost[order][starts], lens)
        before = np.empty(idx.size, dtype=np.int64)
        before[order] = cum - cost[order] - base
        # an emitting neuron's first packet follows its update (if interleaved) and spike
        gen_off = before[emit_pos] + tm.spike_out_ps
        if interleaved:
            gen_off = gen_off + t_upd[emit_pos]
            update_ps = np.bincount(core_of, weights=cost, minlength=n_cores).astype(np.int64)
        else:
            update_ps = np.bincount(core_of, weights=t_upd, minlength=n_cores).astype(np.int64)
        plans = [self._phase_plan(ph) for ph in phases]
        emission = self._deliver(sidx, sval, gen_off)
        self.plans.append(StepPlan(update_ps, plans, emission, interleaved))
        c.steps += 1
        for a in (sidx, update_ps, emission.packets, emission.rx_total):
            self.hash.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        self.hash.update(np.ascontiguousarray(sval).tobytes())
        for p in plans:
            self.hash.update(p.name.encode())
            self.hash.update(np.ascontiguousarray(p.flows.packets, dtype=np.int64).tobytes())

    def functional(self) -> None:
        """The functional pass over every step (module docstring)."""
        net = self.sim.network
        if self.init is not None:
            y0 = self.sim._check_vec(self.init, "initial_output")
            idx = np.arange(net.n_neurons, dtype=np.int64)
            sidx, sval = self._emit(idx, y0)
            tm = self.sim.profile.timing
            # delivery-only step: every emitting neuron's packets leave in neuron order
            npk = net.route_indptr[sidx + 1] - net.route_indptr[sidx]
            core = net.placement[sidx]
            order = np.lexsort((sidx, core))
            cost = npk[order] * tm.message_out_ps
            cum = np.cumsum(cost)
            starts, lens = _segments(core[order])
            base = np.repeat(cum[starts] - cost[starts], lens)
            gen = np.empty(sidx.size, dtype=np.int64)
            gen[order] = cum - cost - base
            emission = self._deliver(sidx, sval, gen)
            zero = np.zeros(self.sim.topology.n_cores, dtype=np.int64)
            self.plans.append(StepPlan(zero, [], emission, True))
        for t in range(self.n_steps):
            self.step(t)

    # ------------------------------------------------------------------ timing and report
    def _barrier_traffic(self) -> TrafficCounts:
        """Tokens of one barrier: every used tile but the root sends one up the gather wave
        and receives one back, over its Manhattan distance to the root corner."""
        topo = self.sim.topology
        cores = self.sim._cores
        tiles = np.unique(topo.core_tile[cores])
        x, y = tiles % topo.grid_x, tiles // topo.grid_x
        x0, y0 = int(x.min()), int(y.min())
        cx = np.abs(x // topo.tiles_x - x0 // topo.tiles_x)
        cy = np.abs(y // topo.tiles_y - y0 // topo.tiles_y)
        return TrafficCounts(
            packets=2 * (tiles.size - 1),
            hops_ew=2 * int((np.abs(x - x0) - cx).sum()),
            hops_ns=2 * int((np.abs(y - y0) - cy).sum()),
            chip_hops=2 * int((cx + cy).sum()),
        )

    def timed_report(self) -> RunReport:
        sim = self.sim
        cfg = sim.config
        res = simulate(
            sim.topology,
            self.plans,
            sim._cores,
            cfg.mode,
            sim.buffer_packets,
            int(round(cfg.noc_quantum_ns * 1000)),
        )
        c = self.counts
        c.sim_events = res.sim_events
        c.flows = res.flows
        if cfg.mode == "sync":
            c.barriers = len(self.plans)
            one = self._barrier_traffic()
            for _ in range(c.barriers):
                c.barrier_traffic.add(one)
        latency = res.latency_ps
        self.hash.update(np.asarray(res.step_ps, dtype=np.int64).tobytes())
        energy = compute_energy(c, sim.profile, int(latency), sim.topology.n_chips)
        n = sim.network.n_neurons
        nb = NeuroBenchMetrics(
            dense_synops=float(sim._dense_per_step * self.n_steps),
            eff_macs=float(self.eff_macs),
            eff_acs=float(self.eff_acs),
            activation_sparsity=1.0 - self.nonzero_outputs / (n * self.n_steps) if n else 0.0,
            connection_sparsity=float(sim._connection_sparsity),
            footprint_bytes=sim._footprint,
        )
        return RunReport(
            counts=c,
            energy=energy,
            latency_ps=int(latency),
            step_latency_ps=np.asarray(res.step_ps, dtype=np.int64),
            outputs=self.outputs,
            final_output=self.y.copy(),
            neurobench=nb,
            trace_hash=self.hash.hexdigest(),
            profile=sim.profile.name,
            n_chips=sim.topology.n_chips,
            cores_used=int(sim._cores.size),
            config=cfg.to_dict(),
            provenance_summary=sim.profile.evidence_summary(),
        )


__all__ += ["group_flows", "OPS"]
