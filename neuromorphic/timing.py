r"""The timing pass: the recorded traffic of a run replayed by SimPy processes, one per core.

The functional pass (:mod:`~rsgn.neuromorphic.simulator`) computes every step in numpy and
records, per step, a :class:`StepPlan`: each core's neuron-update time, the communication phases
a neuron model declared (:class:`~rsgn.neuromorphic.neurons.Phase`: compute on each core, then
flows of packets) and the emitted spikes as flows. This module turns the plans into time:

- one SimPy process per core runs its steps: the neuron updates, then phase by phase (a core
  starts phase ``k`` when it finished phase ``k - 1`` and every flow of phase ``k - 1`` addressed
  to it has been processed by its receive port), computing and then sending its phase's flows;
  after the last phase it emits its spikes. Without phases the spikes leave while the core
  updates (each packet when its neuron is done and the output port is free, in neuron order);
- every flow is a process of the event-driven network (:class:`~rsgn.neuromorphic.noc.Mesh`):
  contention, per-port serialisation and back-pressure decide when its packets are processed;
- ``sync`` mode: a barrier process per step waits for every core and every flow of the step,
  then takes :meth:`Topology.barrier_ps` (``min_step`` floors the step); ``async`` mode has no
  barrier: a core starts step ``t`` once it finished step ``t - 1`` and the spikes of step
  ``t - 1`` addressed to it have been processed.

Flow times are offsets in ps from the moment the core starts sending them.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from .noc import CountingEnvironment, Mesh
from .topology import Topology

__all__ = ["FlowSet", "PhasePlan", "StepPlan", "TimingResult", "simulate"]

HOST = -1
"""Source or destination id of the host interface."""


@dataclass
class FlowSet:
    """Flows of one traffic class in one step (int64 arrays of equal length F).

    ``first`` / ``last`` are the ready offsets of a flow's first and last packet from the moment
    its source starts sending; ``rx_total`` the destination's receive time for all its packets,
    ``rx_last`` for its last packet.
    """

    src: np.ndarray
    dst: np.ndarray
    packets: np.ndarray
    first: np.ndarray
    last: np.ndarray
    rx_total: np.ndarray
    rx_last: np.ndarray

    @classmethod
    def empty(cls) -> FlowSet:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z, z, z, z)

    @property
    def n(self) -> int:
        return int(self.src.size)

    def send_span(self, n_cores: int) -> np.ndarray:
        """Per source core: offset of its last packet (0 for cores that send nothing)."""
        out = np.zeros(n_cores, dtype=np.int64)
        m = self.src >= 0
        if m.any():
            np.maximum.at(out, self.src[m], self.last[m])
        return out


@dataclass
class PhasePlan:
    """A declared phase: per-core compute time before sending, then its flows."""

    name: str
    compute_ps: np.ndarray
    flows: FlowSet


@dataclass
class StepPlan:
    """What one step asks of the chip (module docstring)."""

    update_ps: np.ndarray
    """Per core: neuron-update time (ps); with ``interleaved`` emission it includes the
    packets' generation (the emission offsets are then measured from the step start)."""
    phases: list[PhasePlan] = field(default_factory=list)
    emission: FlowSet = field(default_factory=FlowSet.empty)
    interleaved: bool = True


@dataclass
class TimingResult:
    """Step durations (ps), total latency (ps) and SimPy events scheduled."""

    step_ps: list[int]
    latency_ps: int
    sim_events: int
    flows: int


class _Countdown:
    """An event that fires once ``n`` completions have been reported (at once if n = 0);
    ``time`` is the latest reported completion time (which may lie ahead of the moment the
    event fires: waiters continue from ``time``)."""

    __slots__ = ("event", "left", "time")

    def __init__(self, env: simpy.Environment, n: int) -> None:
        self.event = env.event()
        self.left = n
        self.time = 0
        if n == 0:
            self.event.succeed()

    def hit(self, t: int) -> None:
        self.left -= 1
        self.time = max(self.time, t)
        if self.left == 0:
            self.event.succeed()


class _Run:
    def __init__(
        self,
        topology: Topology,
        plans: list[StepPlan],
        cores: np.ndarray,
        mode: str,
        buffer_packets: int | None,
        quantum_ps: int = 0,
    ) -> None:
        self.env = CountingEnvironment()
        self.topo = topology
        self.plans = plans
        self.mode = mode
        self.mesh = Mesh(self.env, topology, buffer_packets, quantum_ps)
        self.cores = [int(c) for c in cores]
        self.n_cores = topology.n_cores
        self.barrier_ps = topology.barrier_ps(cores)
        self.min_step = topology.profile.timing.min_step_ps
        self.n_flows = 0
        env = self.env
        n_steps = len(plans)
        # countdowns: inbound flows per (step, phase index, core); phase index len(phases) is
        # the emission; all flows of a step (for the barrier)
        self.inbound: list[list[dict[int, _Countdown]]] = []
        self.step_flows: list[_Countdown] = []
        for plan in plans:
            per_phase = []
            total = 0
            for fs in [p.flows for p in plan.phases] + [plan.emission]:
                m = fs.dst >= 0
                cnt = np.bincount(fs.dst[m], minlength=self.n_cores)
                per_phase.append({int(c): _Countdown(env, int(cnt[c])) for c in np.nonzero(cnt)[0]})
                total += fs.n
            self.inbound.append(per_phase)
            self.step_flows.append(_Countdown(env, total))
        self.core_done = [[env.event() for _ in self.cores] for _ in range(n_steps)]
        self.release = [env.event() for _ in range(n_steps)]
        self.release_time = [0] * n_steps
        self.host_free = 0
        self.empty = _Countdown(env, 0)

    # ------------------------------------------------------------------ flows
    def _launch(self, fs: FlowSet, rows: np.ndarray, t0: int, step: int, phase: int) -> None:
        """Start the flows ``rows`` of ``fs`` whose sender begins sending at ``t0``."""
        if rows.size == 0:
            return
        env, mesh = self.env, self.mesh
        paths = mesh.routes(fs.src[rows], np.where(fs.dst[rows] < 0, 0, fs.dst[rows]))
        inbound = self.inbound[step][phase]
        total = self.step_flows[step]
        for j, r in enumerate(rows.tolist()):
            dst = int(fs.dst[r])
            cd = inbound.get(dst)

            def done(t: int, cd: _Countdown | None = cd) -> None:
                if cd is not None:
                    cd.hit(t)
                total.hit(t)

            host = int(fs.src[r]) < 0
            path = paths[j]
            if dst < 0:  # to the host: the mesh route to tile (0, 0), then the host link
                path = path[:-1] + (self.topo.host_link,)
            env.process(
                mesh.flow(
                    path,
                    int(fs.packets[r]),
                    t0 + int(fs.first[r]),
                    int(fs.last[r] - fs.first[r]),
                    int(fs.rx_total[r]),
                    int(fs.rx_last[r]),
                    done,
                    host=host,
                )
            )
            self.n_flows += 1

    @staticmethod
    def _rows_from(fs: FlowSet, core: int) -> np.ndarray:
        return np.nonzero(fs.src == core)[0]

    # ------------------------------------------------------------------ processes
    def core(self, i: int, core: int) -> Generator[Any, Any, None]:
        env = self.env
        prev_done = 0
        for t, plan in enumerate(self.plans):
            if self.mode == "sync":
                if t > 0:
                    yield self.release[t - 1]
                start = self.release_time[t - 1] if t > 0 else 0
            else:
                start = prev_done
                if t > 0:
                    cd = self.inbound[t - 1][-1].get(core)
                    if cd is not None:
                        yield cd.event
                        start = max(start, cd.time)
            if start > env.now:
                yield env.timeout(start - env.now)
            tc = start + int(plan.update_ps[core])
            if plan.interleaved:
                self._launch(plan.emission, self._rows_from(plan.emission, core), start, t, 0)
            else:
                for k, ph in enumerate(plan.phases):
                    if k > 0:
                        cd = self.inbound[t][k - 1].get(core)
                        if cd is not None:
                            yield cd.event
                            tc = max(tc, cd.time)
                    tc += int(ph.compute_ps[core])
                    rows = self._rows_from(ph.flows, core)
                    self._launch(ph.flows, rows, tc, t, k)
                    if rows.size:
                        tc += int(ph.flows.last[rows].max())
                last = len(plan.phases)
                if last:
                    cd = self.inbound[t][last - 1].get(core)
                    if cd is not None:
                        yield cd.event
                        tc = max(tc, cd.time)
                rows = self._rows_from(plan.emission, core)
                self._launch(plan.emission, rows, tc, t, last)
                if rows.size:
                    tc += int(plan.emission.last[rows].max())
            if tc > env.now:
                yield env.timeout(tc - env.now)
            prev_done = tc
            self.core_done[t][i].succeed(tc)

    def host(self) -> Generator[Any, Any, None]:
        """Flows from the host (source -1) start at the step start (sync) or time 0 / the
        previous step's end (async)."""
        env = self.env
        for t, plan in enumerate(self.plans):
            start = env.now
            if t > 0:
                if self.mode == "sync":
                    yield self.release[t - 1]
                    start = self.release_time[t - 1]
                else:
                    yield self.step_flows[t - 1].event
                    start = max(env.now, self.step_flows[t - 1].time)
            fss = [p.flows for p in plan.phases] + [plan.emission]
            for k, fs in enumerate(fss):
                rows = np.nonzero(fs.src < 0)[0]
                self._launch(fs, rows, start, t, k)

    def barrier(self) -> Generator[Any, Any, None]:
        env = self.env
        for t in range(len(self.plans)):
            t0 = self.release_time[t - 1] if t > 0 else 0
            evs = [*self.core_done[t], self.step_flows[t].event]
            yield env.all_of(evs)
            end = max(env.now, self.step_flows[t].time)
            if self.mode == "sync":
                end += self.barrier_ps
                end = max(end, t0 + self.min_step)
            if end > env.now:
                yield env.timeout(end - env.now)
            self.release_time[t] = end
            self.release[t].succeed(end)

    def run(self) -> TimingResult:
        env = self.env
        for i, c in enumerate(self.cores):
            env.process(self.core(i, c))
        env.process(self.host())
        env.process(self.barrier())
        env.run()
        ends = self.release_time
        steps = [ends[0]] + [ends[t] - ends[t - 1] for t in range(1, len(ends))]
        return TimingResult(steps, ends[-1] if ends else 0, self.env.n_events, self.n_flows)


def simulate(
    topology: Topology,
    plans: list[StepPlan],
    cores: np.ndarray,
    mode: str = "sync",
    buffer_packets: int | None = None,
    quantum_ps: int = 0,
) -> TimingResult:
    """Replay ``plans`` on ``topology`` (module docstring); ``cores`` take part in every step
    (and span the barrier). ``quantum_ps``: a flow moves on to its next link without a SimPy
    event while its head is less than that far ahead of the simulation clock (0: an event per
    hop; see :class:`~rsgn.neuromorphic.noc.Mesh`)."""
    if not plans:
        return TimingResult([], 0, 0, 0)
    cores = np.asarray(cores, dtype=np.int64)
    return _Run(topology, plans, cores, mode, buffer_packets, quantum_ps).run()
