r"""The event-driven network-on-chip: flows of packets over finite links with finite buffers.

Traffic is a set of *flows*: ``k`` packets from one source core (or the host) to one
destination core, whose packets become ready at the source between ``start`` and
``start + spread`` (the sending core's output port serialises them). A flow is a SimPy process
that moves hop by hop along its XY route (:meth:`Topology.route_links`): the route's mesh links,
then the destination core's receive port, where the packets are processed one after another.

Every link ``l`` keeps two calendars: ``free[l]``, the time by which the work reserved on it
is done (links are work-conserving FIFO servers in the order heads arrive), and ``burst[l]``,
the same for the part of each flow's work that arrives faster than the link serves it (its
queue: a flow whose packets trickle in one by one leaves no backlog). When the head of a flow
reaches link ``l`` at time ``a`` with its tail ``sp`` behind::

    q        = max(a, burst[l])                          the head waits for the queue ahead
    s_next   = max(q + L_l, burst[next])                 the head's start on the next link
    nat      = max(max(a, free[l]) + k t_l, a + sp + t_l) the tail's departure, unblocked
    held     = s_next + (k - B) t_next - (L_l - t_l)     back-pressure: the last packet enters
                                                         the next link's B-packet input buffer
                                                         when the (k - B)-th has left it
    x        = max(0, held - nat)                        what back-pressure adds: the link
                                                         is blocked that long
    free[l]  = max(a, free[l]) + k t_l + x               the link's work, this flow's included
    burst[l] = q + max(t_l, k t_l - sp) + x              the backlog this flow adds
    sp <- nat + x - t_l - q ;  a <- q + L_l

so contention delays a flow's tail by all the work reserved ahead of it, and its head only by
the queue; a flow whose packets arrive spread out interleaves with the others. For a single
packet the two calendars coincide (the per-packet reference is a plain FIFO with finite
buffers).

``L_l`` is the link's latency (a hop, including its serialisation; chip-crossing links have their
own latency and serialisation), ``B`` the buffer depth (``noc.buffer_packets``). The receive port
is the last "link" (``free <- s + rx_total``; the flow's last packet is processed at
``max(s + rx_total, a + sp + rx_last)``): its service time per packet is the receiving core's
work per packet
(``message_in`` plus the packet's synaptic operations), so a hot spot's slow receive port fills
its buffer and holds the mesh links that feed it, which delays the other flows on those links.
A packet inside its source tile pays ``t_tile`` (router traversal) and no link.

Aggregating a step's packets per (source core, destination core) into one flow ("train" mode,
the default) is the shortcut; "packet" mode gives every packet its own flow (the detailed
reference: packets of different flows interleave on shared links). The shortcut is validated
against the reference under load (``tests/neuromorphic/test_neuro_noc.py`` and
``studies/neuromorphic/noc_validation.py``: measured step-time error of train vs packet mode,
stated in that study's README). The head's start on the next link is a lookahead at the time
the head leaves (flows that reach the next link in between are not seen), so back-pressure is
approximate in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from .topology import Topology

__all__ = ["CountingEnvironment", "Mesh", "simulate_flows"]


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it schedules (``n_events``)."""

    def __init__(self) -> None:
        super().__init__()
        self.n_events = 0

    def schedule(self, event: Any, priority: int = 1, delay: Any = 0) -> None:  # noqa: D102
        self.n_events += 1
        super().schedule(event, priority, delay)


class Mesh:
    """The links and receive ports of one run, living in a SimPy environment.

    Parameters
    ----------
    env : simpy.Environment
    topology : Topology
    buffer_packets : int, optional
        Input buffer depth B (default: the profile's ``noc.buffer_packets``).
    quantum_ps : int, optional
        A flow's process waits for its head only when the head is more than this far ahead of
        the clock (0, the default: at every hop); the results do not depend on it, the number
        of events does. Times are integer picoseconds throughout.
    """

    def __init__(
        self,
        env: simpy.Environment,
        topology: Topology,
        buffer_packets: int | None = None,
        quantum_ps: int = 0,
    ) -> None:
        self.env = env
        self.topology = topology
        lat, ser, _ = topology.link_tables()
        self.lat = lat.tolist()
        self.ser = ser.tolist()
        self.free = [0] * topology.n_links
        self.burst = [0] * topology.n_links
        self.buffer = int(buffer_packets or topology.profile.noc.buffer_packets)
        self.tile_ps = topology.profile.timing.tile_spike_ps
        self.quantum = int(quantum_ps)
        self._routes: dict[tuple[int, int], tuple[int, ...]] = {}

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        """Link ids of the route ``src -> dst`` (cached), receive port last."""
        key = (src, dst)
        r = self._routes.get(key)
        if r is None:
            rl = self.topology.route_links(np.array([src]), np.array([dst]))
            r = tuple(rl.links.tolist())
            self._routes[key] = r
        return r

    def routes(self, src: np.ndarray, dst: np.ndarray) -> list[tuple[int, ...]]:
        """Routes of many pairs (vectorised for the pairs not cached yet)."""
        keys = list(zip(src.tolist(), dst.tolist(), strict=True))
        miss = [k for k in dict.fromkeys(keys) if k not in self._routes]
        if miss:
            ms = np.array([m[0] for m in miss], dtype=np.int64)
            md = np.array([m[1] for m in miss], dtype=np.int64)
            rl = self.topology.route_links(ms, md)
            links = rl.links.tolist()
            ptr = rl.ptr.tolist()
            for i, k in enumerate(miss):
                self._routes[k] = tuple(links[ptr[i] : ptr[i + 1]])
        return [self._routes[k] for k in keys]

    def flow(
        self,
        path: tuple[int, ...],
        k: int,
        start: int,
        spread: int,
        rx_total: int,
        rx_last: int,
        done: Callable[[int], None] | None = None,
        host: bool = False,
    ) -> Generator[Any, Any, int]:
        """SimPy process of one flow (module docstring); returns the time its last packet has
        been processed at the destination. ``done(t)`` is called with that time as soon as the
        head reaches the receive port (its calendar fixes it): whoever waits on it resumes at
        the reported time, not at the call."""
        if k < 1:
            raise ValueError(f"a flow carries at least one packet, got k = {k}")
        env = self.env
        free, burst, lat, ser, b = self.free, self.burst, self.lat, self.ser, self.buffer
        a = start if host else start + self.tile_ps
        quantum = self.quantum
        if a > env.now + quantum:
            yield env.timeout(a - env.now)
        sp = spread
        last = len(path) - 1
        rx_ser = rx_total // k
        for i in range(last):
            link = path[i]
            sl = ser[link]
            work = k * sl
            q = max(a, burst[link])  # the head waits for the queue ahead of it
            nxt = path[i + 1]
            a_next = q + lat[link]
            s_next = max(a_next, burst[nxt])
            t_next = rx_ser if i + 1 == last else ser[nxt]
            # back-pressure: the tail enters the next link's B-packet buffer only when the
            # (k - B)-th packet has left it; what that adds to the tail's own departure blocks
            # the link
            held = s_next + (k - b) * t_next - (lat[link] - sl)
            natural = max(max(a, free[link]) + work, a + sp + sl)
            extra = max(0, held - natural)
            free[link] = max(a, free[link]) + work + extra
            burst[link] = q + max(sl, work - sp) + extra
            sp = natural + extra - sl - q
            a = a_next
            if a > env.now + quantum:
                yield env.timeout(a - env.now)
        port = path[last]
        w = max(a, free[port]) + rx_total
        free[port] = w
        burst[port] = max(a, burst[port]) + max(rx_last, rx_total - sp)
        end = max(w, a + sp + rx_last)
        if done is not None:  # known now (the port's calendar): reported without waiting
            done(end)
        return end


def simulate_flows(
    topology: Topology,
    src: np.ndarray,
    dst: np.ndarray,
    packets: np.ndarray | None = None,
    *,
    start: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    rx_per_packet: int | np.ndarray = 0,
    buffer_packets: int | None = None,
) -> np.ndarray:
    """Run flows alone on an idle mesh (flows injected in the order given, ties FIFO).

    Parameters
    ----------
    topology : Topology
    src, dst : int arrays (F,)
        Source (-1: the host) and destination cores.
    packets : int array (F,), optional
        Packets per flow, at least 1 (default 1 each).
    start, spread : int arrays (F,), optional
        Ready time of the first packet and the time to the last one (ps; default 0 and
        ``(k - 1) * timing.message_out``).
    rx_per_packet : int or array (F,)
        Receive-port time per packet (ps).
    buffer_packets : int, optional
        Buffer depth B (default: the profile's).

    Returns
    -------
    numpy.ndarray
        Time (ps) at which each flow's last packet has been processed.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    n = src.size
    k = np.ones(n, dtype=np.int64) if packets is None else np.asarray(packets, dtype=np.int64)
    if n and k.min() < 1:
        raise ValueError(f"every flow carries at least one packet, got {k.min()}")
    st = np.zeros(n, dtype=np.int64) if start is None else np.asarray(start, dtype=np.int64)
    t_out = topology.profile.timing.message_out_ps
    sp = (k - 1) * t_out if spread is None else np.asarray(spread, dtype=np.int64)
    rx = np.broadcast_to(np.asarray(rx_per_packet, dtype=np.int64), (n,))
    env = CountingEnvironment()
    mesh = Mesh(env, topology, buffer_packets)
    paths = mesh.routes(src, dst)
    out = np.zeros(n, dtype=np.int64)
    procs = []
    for i in range(n):
        procs.append(
            env.process(
                mesh.flow(
                    paths[i],
                    int(k[i]),
                    int(st[i]),
                    int(sp[i]),
                    int(rx[i] * k[i]),
                    int(rx[i]),
                    host=bool(src[i] < 0),
                )
            )
        )
    env.run()
    for i, p in enumerate(procs):
        out[i] = p.value
    return out
