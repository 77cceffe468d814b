"""The event-driven chip simulator: SimPy owns the clock, numpy does the per-synapse work.

One algorithmic time step ``t`` has four phases (barrier-synchronised mode, ``mode="sync"``):

1. **Network**: the events emitted at step ``t-1`` (or the ``initial_output`` at ``t=0``)
   travel as packets, one per (source neuron, destination core). Time ``T_net`` from the
   analytic model or the per-packet SimPy model (:mod:`~rsgn.neuromorphic.noc`).
2. **Synapses**: each destination core expands its packets into synaptic operations,
   ``x_j = sum_i w_ij * p_i`` (vectorised CSR gather + ``bincount``), plus external input.
   In sigma-delta mode the core integrates deltas: ``acc_j += sum_i w_ij * d_i``, ``x = acc``.
3. **Neurons**: the idle-update policy selects who is updated:
   ``all`` (every neuron), ``active_cores`` (every neuron of a core that received input) or
   ``touched_only`` (neurons that received input). "Received input" (touched) means: got a
   synaptic event or non-zero external input (sigma-delta coding: got a delta or its external
   input changed). Updated touched neurons count as active updates, the others as idle
   updates. Neurons not updated keep their state and emit nothing; their output reads 0 in
   plain coding and holds its last value in sigma-delta coding. Skipping is exact (same
   outputs as ``all``) for models whose update with zero input is a no-op returning 0 (e.g.
   :class:`~rsgn.neuromorphic.neurons.ReLU` with ``threshold >= 0``), and in sigma-delta coding
   for stateless models; for leaky models (LIF) it is an approximation (leak and bias skip).
4. **Emission**: updated neurons with non-zero (quantised) output emit an event; binary
   neurons carry payload 1, graded neurons a b-bit payload, sigma-delta neurons a delta.

Per-core busy time (serial within a core) and the step time are max-affine::

    busy_c = synops_c * t_synop + act_c * t_update_active + idle_c * t_update_idle
    t_step = max(min_step, T_net + max_c busy_c + t_barrier)

The asynchronous mode (``mode="async"``) drops the barrier: core ``c`` starts step ``t`` when
it finished step ``t-1`` and every packet sent to it at the end of step ``t-1`` has arrived::

    start_c(t) = max(done_c(t-1), max_{p -> c} done_{src(p)}(t-1) + L_p)
    done_c(t)  = start_c(t) + busy_c(t)

(packets use their uncontended latency ``L_p``; the inference ends at ``max_c done_c``).
The events emitted at the last step are reported as outputs but not routed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from .coding import PayloadCoding, SigmaDeltaState, quantize_payload, saturate
from .errors import ConfigError, NetworkError
from .mapping import check_capacity
from .network import Network
from .neurons import StepContext
from .noc import DetailedNoC, analytic_network_time_ps
from .profile import HardwareProfile
from .report import (
    BatchReport,
    EventCounts,
    NeuroBenchMetrics,
    RunReport,
    compute_energy,
)
from .topology import Topology

__all__ = ["SimConfig", "Simulator", "ExtInput", "IDLE_POLICIES"]

IDLE_POLICIES = ("all", "active_cores", "touched_only")
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
        Barrier-synchronised steps or the barrier-free recurrence (module docstring; no
        barrier time or energy and no ``min_step`` floor in async mode).
    noc : {"analytic", "detailed"}
        Network timing model (detailed = per-packet SimPy, sync mode only).
    seed : int
        Seeds ``StepContext.rng`` (stochastic user models).
    record : {"outputs", "none"}
        Keep the ``(steps, N)`` outputs in the report, or only the final output.
    """

    precision: str = "float"
    payload: PayloadCoding = field(default_factory=PayloadCoding)
    idle_policy: str = "all"
    mode: str = "sync"
    noc: str = "analytic"
    seed: int = 0
    record: str = "outputs"

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid option."""
        for name, allowed in (
            ("precision", ("float", "fixed")),
            ("idle_policy", IDLE_POLICIES),
            ("mode", ("sync", "async")),
            ("noc", ("analytic", "detailed")),
            ("record", ("outputs", "none")),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"SimConfig.{name} must be one of {', '.join(allowed)}, "
                    f"got {getattr(self, name)!r}"
                )
        if self.noc == "detailed" and self.mode != "sync":
            raise ConfigError("SimConfig.noc='detailed' needs mode='sync'")

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
        self._nz_fanout = np.bincount(
            syn.src, weights=(syn.weight != 0).astype(np.float64), minlength=network.n_neurons
        ).astype(np.int64)
        self._src_graded = network.graded[network.group_of]
        proj = network.projections()
        dense = sum(network.groups[a].n * network.groups[b].n for a, b, _, _ in proj)
        zeros = sum(network.groups[a].n * network.groups[b].n - nz for a, b, _, nz in proj)
        self._dense_per_step = int(dense)
        self._connection_sparsity = zeros / dense if dense else 0.0
        state_bytes = sum(
            a.nbytes for g in network.groups for a in g.model.init_state(g.n, self.fixed).values()
        )
        self._footprint = int(
            self._weight.nbytes + syn.indptr.nbytes + syn.dst.nbytes + state_bytes
        )

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
            Outputs emitted before step 0 (encoded like any emission and routed in step 0's
            network phase), e.g. the initial activations of a graph network.
        initial_state : mapping, optional
            ``{group name: {state variable: array (n_group,)}}``: start values of neuron
            state variables (the others start at the model's ``state_init``), e.g. the state a
            graph network's ignited nodes start from. Cast to the state's dtype.
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
        env = simpy.Environment()
        run = _Run(self, ext_input, n_steps, initial_output, context)
        if initial_state:
            run.set_state(initial_state)
        proc = env.process(run.process(env))
        env.run(proc)
        return run.report(env.now)

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
    """State of one inference; ``process`` is the SimPy chip process."""

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
        self.dtype = np.int64 if fixed else np.float64
        self.states = [g.model.init_state(g.n, fixed) for g in net.groups]
        self.y = np.zeros(net.n_neurons, dtype=self.dtype)
        self.sd = SigmaDeltaState(net.n_neurons, fixed) if sim.config.payload.sigma_delta else None
        self.acc = np.zeros(net.n_neurons, dtype=self.dtype) if self.sd is not None else None
        self.prev_ext: np.ndarray | None = None
        self.counts = EventCounts()
        self.eff_macs = 0
        self.eff_acs = 0
        self.nonzero_outputs = 0
        self.step_lat: list[int] = []
        self.outputs = (
            np.zeros((n_steps, net.n_neurons), dtype=self.dtype)
            if sim.config.record == "outputs"
            else None
        )
        self.hash = hashlib.sha256()
        self.hash.update(sim.profile.name.encode())
        if init is not None:
            y0 = sim._check_vec(init, "initial_output")
            idx = np.arange(net.n_neurons, dtype=np.int64)
            self.pending = self._emit(idx, y0)
        else:
            self.pending = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=self.dtype))

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

    # ------------------------------------------------------------------ one step
    def process(self, env: simpy.Environment) -> Any:
        sim, net, topo = self.sim, self.sim.network, self.sim.topology
        cfg, tm = sim.config, sim.profile.timing
        syn = net.synapses
        n, n_cores = net.n_neurons, topo.n_cores
        noc = DetailedNoC(env, topo) if cfg.noc == "detailed" else None
        done = np.zeros(n_cores, dtype=np.int64)
        acc_bits = sim.profile.chip.core.accumulator_bits
        c = self.counts
        for t in range(self.n_steps):
            t0 = env.now
            sidx, sval = self.pending
            # 1. network phase: one packet per (event, destination core)
            rpos, rcnt = _gather_ranges(net.route_indptr, sidx)
            pkt_src = net.placement[np.repeat(sidx, rcnt)]
            pkt_dst = net.route_core[rpos]
            same_tile = topo.core_tile[pkt_src] == topo.core_tile[pkt_dst]
            n_intra = int(same_tile.sum())
            c.intra_tile_spikes += n_intra
            c.inter_tile_packets += int(pkt_src.size) - n_intra
            h = topo.hops(pkt_src, pkt_dst)
            c.hops_ew += int(h.ew.sum())
            c.hops_ns += int(h.ns.sum())
            c.chip_hops += int(h.chip.sum())
            if cfg.mode == "sync":
                if noc is not None:
                    yield env.process(noc.deliver(pkt_src, pkt_dst))
                    c.max_link_load = max(c.max_link_load, topo.max_link_load(pkt_src, pkt_dst))
                else:
                    t_net, load = analytic_network_time_ps(topo, pkt_src, pkt_dst)
                    c.max_link_load = max(c.max_link_load, load)
                    yield env.timeout(t_net)
            # 2. synaptic phase
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
            syn_core = np.bincount(net.syn_dst_core[spos], minlength=n_cores)
            c.synops += int(spos.size)
            graded_src = sim._src_graded[sidx]
            nz = sim._nz_fanout[sidx]
            self.eff_macs += int(nz[graded_src].sum())
            self.eff_acs += int(nz[~graded_src].sum())
            touched = np.bincount(dst, minlength=n) > 0
            ext = sim._ext_at(self.ext, t)
            if self.acc is not None:
                self.acc += xs
                if sim.fixed:
                    self.acc = saturate(self.acc, acc_bits)
                x = self.acc.copy()
            else:
                x = xs
            if ext is not None:
                x = x + ext
                # Plain coding: input present; sigma-delta: input changed.
                touched |= (ext != self.prev_ext) if self.acc is not None else (ext != 0)
                self.prev_ext = ext
            if sim.fixed:
                x = saturate(x, acc_bits)
            # 3. neuron updates by idle policy
            if cfg.idle_policy == "all":
                idx = np.arange(n, dtype=np.int64)
            elif cfg.idle_policy == "touched_only":
                idx = np.nonzero(touched)[0]
            else:
                active_core = np.bincount(net.placement[touched], minlength=n_cores) > 0
                idx = np.nonzero(active_core[net.placement])[0]
            act = touched[idx]
            act_core = np.bincount(net.placement[idx[act]], minlength=n_cores)
            idle_core = np.bincount(net.placement[idx[~act]], minlength=n_cores)
            c.neuron_updates_active += int(act.sum())
            c.neuron_updates_idle += int(idx.size - act.sum())
            ynew = np.zeros(idx.size, dtype=self.dtype)
            bounds = np.searchsorted(idx, net.offsets)
            for g, grp in enumerate(net.groups):
                lo, hi = bounds[g], bounds[g + 1]
                if lo == hi:
                    continue
                gidx = idx[lo:hi] - net.offsets[g]
                ctx = StepContext(t, g, sim.fixed, cfg.seed, self.context)
                upd = grp.model.update_fixed if sim.fixed else grp.model.update_float
                ynew[lo:hi] = upd(self.states[g], gidx, x[idx[lo:hi]], ctx)
            if self.sd is None:
                self.y[:] = 0  # plain coding: a neuron not updated emits nothing, outputs 0
            self.y[idx] = ynew
            self.nonzero_outputs += int(np.count_nonzero(self.y))
            if self.outputs is not None:
                self.outputs[t] = self.y
            # 4. emission
            self.pending = self._emit(idx, ynew)
            c.events += int(self.pending[0].size)
            busy = (
                syn_core * tm.synop_ps
                + act_core * tm.neuron_update_active_ps
                + idle_core * tm.neuron_update_idle_ps
            )
            if cfg.mode == "sync":
                yield env.timeout(int(busy.max(initial=0)))
                yield env.timeout(tm.barrier_ps)
                c.barriers += 1
                if env.now - t0 < tm.min_step_ps:
                    yield env.timeout(tm.min_step_ps - (env.now - t0))
            else:
                arrive = np.zeros(n_cores, dtype=np.int64)
                if pkt_src.size:
                    lat = topo.packet_latency_ps(pkt_src, pkt_dst)
                    np.maximum.at(arrive, pkt_dst, done[pkt_src] + lat)
                done = np.maximum(done, arrive) + busy
                yield env.timeout(int(done.max()) - env.now)
            c.steps += 1
            self.step_lat.append(env.now - t0)
            for a in (sidx, self.pending[0], busy):
                self.hash.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
            self.hash.update(np.ascontiguousarray(self.pending[1]).tobytes())
            self.hash.update(np.int64(env.now).tobytes())
        return None

    def report(self, latency_ps: int) -> RunReport:
        sim = self.sim
        c = self.counts
        energy = compute_energy(c, sim.profile, int(latency_ps), sim.topology.n_chips)
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
            latency_ps=int(latency_ps),
            step_latency_ps=np.asarray(self.step_lat, dtype=np.int64),
            outputs=self.outputs,
            final_output=self.y.copy(),
            neurobench=nb,
            trace_hash=self.hash.hexdigest(),
            profile=sim.profile.name,
            n_chips=sim.topology.n_chips,
            cores_used=int(sim.network.cores_used.size),
            config=sim.config.to_dict(),
            provenance_summary=sim.profile.evidence_summary(),
        )
