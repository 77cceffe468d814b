"""Network-on-chip timing: an analytic max-affine model and a per-packet SimPy model.

All packets of a step are injected together at the start of the step's network phase
(barrier-synchronised execution). Packet ``p`` has the uncontended latency ``L_p`` of
:meth:`Topology.packet_latency_ps`. A directed link carries one packet per ``t_link``
(``timing.link_packet``, its serialisation time); a hop's latency includes it.

Analytic model (max-affine)::

    T_net = max_p L_p + t_link * max(0, max_l n_l - 1)

where ``n_l`` is the number of packets crossing link ``l`` in the step. With no link shared
(``max_l n_l <= 1``) it is exact; at low load it stays within a small fraction of the detailed
model; at high load it is an estimate (queueing along several links of one path is not summed).

Detailed model: one SimPy process per packet, one ``simpy.Resource`` (capacity 1, FIFO) per
directed link. Per hop a packet waits for the link, holds it ``t_link``, releases it and
travels the rest of the hop latency. ``T_net`` is the last arrival. Meant for small meshes
and for validating the analytic model (Python costs about 1-7 us per SimPy event).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from .topology import Link, Topology

__all__ = ["analytic_network_time_ps", "DetailedNoC", "simulate_packets"]


def analytic_network_time_ps(
    topology: Topology, src_core: np.ndarray, dst_core: np.ndarray
) -> tuple[int, int]:
    """Analytic network-phase time of one step.

    Returns
    -------
    (int, int)
        ``(T_net in ps, max link load)``; ``(0, 0)`` without packets.
    """
    if len(src_core) == 0:
        return 0, 0
    lat = topology.packet_latency_ps(src_core, dst_core)
    load = topology.max_link_load(src_core, dst_core)
    t_link = topology.profile.timing.link_packet_ps
    return int(lat.max()) + t_link * max(0, load - 1), load


class DetailedNoC:
    """Per-packet network model living in a SimPy environment.

    Parameters
    ----------
    env : simpy.Environment
        The simulator's environment (it owns the clock).
    topology : Topology
    """

    def __init__(self, env: simpy.Environment, topology: Topology) -> None:
        self.env = env
        self.topology = topology
        self._links: dict[Link, simpy.Resource] = {}
        self.n_events = 0

    def _link(self, link: Link) -> simpy.Resource:
        res = self._links.get(link)
        if res is None:
            res = simpy.Resource(self.env, capacity=1)
            self._links[link] = res
        return res

    def _packet(self, path: list[Link], out: list[int], k: int) -> Generator[Any, Any, None]:
        t = self.topology.profile.timing
        yield self.env.timeout(t.tile_spike_ps)
        for link in path:
            with self._link(link).request() as req:
                yield req
                yield self.env.timeout(t.link_packet_ps)
            yield self.env.timeout(self.topology.link_latency_ps(link) - t.link_packet_ps)
            self.n_events += 1
        out[k] = self.env.now

    def deliver(
        self, src_core: np.ndarray, dst_core: np.ndarray
    ) -> Generator[Any, Any, np.ndarray]:
        """SimPy process body: inject all packets now; return their arrival times (ps).

        Use as ``arrivals = yield env.process(noc.deliver(src, dst))``.
        """
        start = self.env.now
        n = len(src_core)
        out = [start] * n
        procs = [
            self.env.process(self._packet(self.topology.route(int(s), int(d)), out, k))
            for k, (s, d) in enumerate(zip(src_core, dst_core, strict=True))
        ]
        if procs:
            yield self.env.all_of(procs)
        return np.asarray(out, dtype=np.int64) - start


def simulate_packets(topology: Topology, src_core: np.ndarray, dst_core: np.ndarray) -> np.ndarray:
    """Run the detailed model alone for one batch of packets injected at t=0.

    Returns
    -------
    numpy.ndarray
        Arrival time of each packet in ps (``T_net = max``).
    """
    env = simpy.Environment()
    noc = DetailedNoC(env, topology)
    proc = env.process(noc.deliver(np.asarray(src_core), np.asarray(dst_core)))
    env.run(proc)
    return proc.value
