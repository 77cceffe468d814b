"""Mesh topology, XY routing and the event-driven network: closed forms, contention,
back-pressure, the barrier, and the train shortcut validated against per-packet flows."""

from __future__ import annotations

import numpy as np
import pytest
from neuro_helpers import tile_xy

from rsgn import neuromorphic as nm


@pytest.fixture(scope="module")
def prof():
    return nm.load_preset("loihi")


def test_hops_equal_manhattan_distance(prof):
    topo = nm.Topology(prof, 3, 2)
    rng = np.random.default_rng(0)
    s = rng.integers(0, topo.n_cores, 5000)
    d = rng.integers(0, topo.n_cores, 5000)
    h = topo.hops(s, d)
    xs, ys = tile_xy(topo, s)
    xd, yd = tile_xy(topo, d)
    np.testing.assert_array_equal(h.total, np.abs(xs - xd) + np.abs(ys - yd))
    cx = np.abs(xs // prof.chip.tiles_x - xd // prof.chip.tiles_x)
    cy = np.abs(ys // prof.chip.tiles_y - yd // prof.chip.tiles_y)
    np.testing.assert_array_equal(h.chip, cx + cy)
    assert (h.ew >= 0).all() and (h.ns >= 0).all()
    for k in range(200):
        path = topo.route(int(s[k]), int(d[k]))
        assert len(path) == h.total[k]
        dirs = "".join(p[0] for p in path)
        assert dirs.lstrip("EW").strip("NS") == ""
    loads = topo.link_loads(s, d)
    assert sum(int(a.sum()) for a in loads.values()) == int(h.total.sum())


def test_route_links_follow_the_xy_route(prof):
    """Link ids of the vectorised routes: the same links as the per-pair route, then the
    destination's receive port; chip-crossing links get the chip latency; the host's route
    starts at the host interface."""
    topo = nm.Topology(prof, 2, 2)
    rng = np.random.default_rng(1)
    s = rng.integers(0, topo.n_cores, 300)
    d = rng.integers(0, topo.n_cores, 300)
    r = topo.route_links(s, d)
    lat, ser, kind = topo.link_tables()
    dir_id = {"E": 0, "W": 1, "N": 2, "S": 3}
    h = topo.hops(s, d)
    for i in range(300):
        links = r.links[r.ptr[i] : r.ptr[i + 1]]
        want = [4 * (y * topo.grid_x + x) + dir_id[dn] for dn, x, y in topo.route(s[i], d[i])]
        assert links[:-1].tolist() == want
        assert links[-1] == 4 * topo.n_tiles + d[i]
        assert int((kind[links[:-1]] == 2).sum()) == h.chip[i]
    np.testing.assert_array_equal(r.lat, lat[r.links])
    np.testing.assert_array_equal(r.ser, ser[r.links])
    host = topo.route_links(np.array([-1]), np.array([5]))
    assert host.links[0] == topo.host_link and host.links[-1] == 4 * topo.n_tiles + 5


def test_single_packet_latency_closed_form(prof):
    topo = nm.Topology(prof, 2, 1)
    t = prof.timing
    src = int(np.nonzero((topo.core_x == 1) & (topo.core_y == 0))[0][0])
    dst = int(np.nonzero((topo.core_x == 10) & (topo.core_y == 3))[0][0])
    h = topo.hops(np.array([src]), np.array([dst]))
    assert (int(h.ew[0]), int(h.ns[0]), int(h.chip[0])) == (8, 3, 1)
    closed = t.tile_spike_ps + 8 * t.hop_ew_ps + 3 * t.hop_ns_ps + t.chip_hop_ps
    assert int(topo.packet_latency_ps(np.array([src]), np.array([dst]))[0]) == closed
    got = nm.simulate_flows(topo, [src], [dst], rx_per_packet=t.message_in_ps)
    assert int(got[0]) == closed + t.message_in_ps


def test_two_packets_on_one_link_serialise(prof):
    topo = nm.Topology(prof)
    t = prof.timing
    arr = nm.simulate_flows(topo, [0, 0], [4, 4])  # tile 0 -> tile 1: one shared E link
    one = t.tile_spike_ps + t.hop_ew_ps
    assert sorted(arr.tolist()) == [one, one + t.link_packet_ps]
    # as one flow of two packets: the same last arrival
    assert nm.simulate_flows(topo, [0], [4], [2], spread=[0]).tolist() == [one + t.link_packet_ps]


def test_receive_port_serialises_and_back_pressure_holds_the_link(prof):
    """Slow receive port: k packets are processed one after another; with a buffer of B
    packets the feeding link stays busy until only B are left to process."""
    topo = nm.Topology(prof)
    t = prof.timing
    rx, k = 50_000, 40
    for b in (4, 16):
        env = nm.CountingEnvironment()
        mesh = nm.Mesh(env, topo, buffer_packets=b)
        path = mesh.route(0, 4)
        env.process(mesh.flow(path, k, 0, 0, k * rx, rx))
        env.run()
        head = t.tile_spike_ps + t.hop_ew_ps
        assert mesh.free[path[-1]] == head + k * rx  # the port works through every packet
        # back-pressure: the link is held until the last packet fits into the port's buffer,
        # i.e. until (k - b) packets have been processed (less the wire time L - t_link)
        assert mesh.free[path[0]] == head + (k - b) * rx - (t.hop_ew_ps - t.link_packet_ps)


def _traffic_net(prof, n_src=64, per_core=8, hot=None, fan=4):
    """Sources spread over the chip, each with ``fan`` synapses to distinct targets spread
    over 32 cores (or all on the ``hot`` core); every source fires in step 0."""
    topo = nm.Topology(prof)
    n_tgt = 256
    n = n_src + n_tgt
    src = np.repeat(np.arange(n_src), fan)
    i = np.arange(src.size)
    dst = n_src + ((i * 37) % n_tgt if hot is None else i % per_core)
    order = nm.core_order(topo)
    place = np.concatenate(
        [order[(np.arange(n_src) * 7) % 64 + 64], order[np.arange(n_tgt) // per_core]]
    )
    if hot is not None:
        place[n_src : n_src + per_core] = hot
    net = nm.Network(
        [nm.NeuronGroup("g", n, nm.LIF(du=1.0, dv=1.0, v_th=0.5), place)],
        nm.SynapseList.from_arrays(src, dst, np.full(src.size, 0.01), n),
    )
    ext = np.zeros((1, n))
    ext[0, :n_src] = 1.0
    return net, topo, ext


def _step0(prof, net, topo, ext, **cfg):
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only", **cfg))
    return sim.run(ext)


def _row_net(prof, hot_heavy: bool):
    """Sources on the 4 cores of tile (0, 0) send east along row 0: ``hot_heavy=False``: every
    source sends one light packet to each of the 16 cores of tiles (4..7, 0) (a link-bound
    stream); ``True``: half the sources send a heavy packet (64 synapses) to one core of tile
    (2, 0), the other half a packet of 32 synapses to each east core."""
    topo = nm.Topology(prof)

    def tile(x):
        return [int(c) for c in np.nonzero((topo.core_x == x) & (topo.core_y == 0))[0]]

    src_cores, east = tile(0), [c for x in range(4, 8) for c in tile(x)]
    hot = tile(2)[0]
    sper, eper, n_hot = 8, 32, 64
    n_src, n_east = 4 * sper, len(east) * eper
    n = n_src + n_east + n_hot
    place = np.concatenate([np.repeat(src_cores, sper), np.repeat(east, eper), np.full(n_hot, hot)])
    src, dst = [], []
    for s in range(n_src):
        if hot_heavy and s % sper < sper // 2:
            tgt = n_src + n_east + np.arange(n_hot)
        else:
            per_core = np.arange(eper if hot_heavy else 1)
            tgt = (n_src + np.arange(len(east))[:, None] * eper + per_core).ravel()
        src += [s] * tgt.size
        dst += tgt.tolist()
    net = nm.Network(
        [nm.NeuronGroup("g", n, nm.LIF(du=1.0, dv=1.0, v_th=0.5), place)],
        nm.SynapseList.from_arrays(np.array(src), np.array(dst), np.full(len(src), 1e-3), n),
    )
    ext = np.zeros((1, n))
    ext[0, :n_src] = 1.0
    return net, topo, ext


@pytest.mark.parametrize("noc", ["train", "packet"])
def test_timing_matters_hot_spot_narrow_link_small_buffer(prof, noc):
    """The same spikes take longer (1) when they converge on one core, (2) over narrower
    links, (3) with smaller buffers (a backlogged hot spot holds the shared link, so the
    traffic behind it reaches its receivers late); the outputs never change."""
    base_net, topo, ext = _traffic_net(prof)
    hot_net, _, _ = _traffic_net(prof, hot=int(nm.core_order(topo)[0]))
    base = _step0(prof, base_net, topo, ext, noc=noc)
    hot = _step0(prof, hot_net, topo, ext, noc=noc)
    assert hot.counts.synops == base.counts.synops and hot.counts.events == base.counts.events
    assert hot.latency_ps > 1.5 * base.latency_ps
    row, _, ext_r = _row_net(prof, hot_heavy=False)
    narrow_prof = nm.override(prof, {"timing.link_packet": 2.9, "timing.chip_link_packet": 2.9})
    wide = _step0(prof, row, topo, ext_r, noc=noc)
    narrow = _step0(narrow_prof, row, nm.Topology(narrow_prof), ext_r, noc=noc)
    hol, _, ext_h = _row_net(prof, hot_heavy=True)
    big = _step0(prof, hol, topo, ext_h, noc=noc, buffer_packets=16)
    small = _step0(prof, hol, topo, ext_h, noc=noc, buffer_packets=1)
    print(
        f"{noc}: spread {base.latency_ps / 1e3:.0f} ns, hot spot {hot.latency_ps / 1e3:.0f}; "
        f"links 0.29 ns {wide.latency_ps / 1e3:.0f}, 2.9 ns {narrow.latency_ps / 1e3:.0f}; "
        f"buffer 16 {big.latency_ps / 1e3:.0f}, 1 {small.latency_ps / 1e3:.0f}"
    )
    assert narrow.latency_ps > 1.2 * wide.latency_ps
    assert small.latency_ps > 1.05 * big.latency_ps
    np.testing.assert_array_equal(narrow.outputs, wide.outputs)
    np.testing.assert_array_equal(small.outputs, big.outputs)
    assert small.energy.total_pj != big.energy.total_pj  # static energy follows the latency
    assert small.energy.dynamic_pj == big.energy.dynamic_pj


def test_smaller_buffer_delays_cross_traffic_behind_a_hot_spot(prof):
    """A slow receive port fills its buffer; back-pressure then holds the shared link, so a
    flow that only passes through waits longer with a smaller buffer."""
    topo = nm.Topology(prof)
    slow = int(np.nonzero((topo.core_x == 2) & (topo.core_y == 0))[0][0])
    far = int(np.nonzero((topo.core_x == 5) & (topo.core_y == 0))[0][0])
    src = np.array([0, 1])  # both on tile (0, 0): they share the eastward links
    dst = np.array([slow, far])
    k = np.array([60, 1])
    start = np.array([0, 2_000])
    rx = np.array([40_000, 0])
    ends = {
        b: nm.simulate_flows(
            topo, src, dst, k, start=start, spread=[0, 0], rx_per_packet=rx, buffer_packets=b
        )
        for b in (2, 16, 64)
    }
    print({b: (e / 1e3).tolist() for b, e in ends.items()})
    assert ends[2][1] > ends[16][1] > ends[64][1]
    assert ends[2][0] == ends[16][0] == ends[64][0]  # the hot spot's own work is the same


def test_train_shortcut_agrees_with_per_packet_flows_under_load(prof):
    """Step latency with flows per core pair ('train') vs every packet its own flow
    ('packet') on random networks from light to heavy load; the measured error is printed
    (and tabulated by studies/neuromorphic/noc_validation.py)."""
    errs = []
    for p_fire, fan in ((0.02, 4), (0.1, 16), (0.4, 32), (1.0, 48)):
        n = 1024
        topo = nm.Topology(prof)
        rng = np.random.default_rng(int(p_fire * 100) + fan)
        src = np.repeat(np.arange(n), fan)
        dst = (src + rng.integers(-300, 301, src.size)) % n
        key = np.unique(src * n + dst)
        src, dst = key // n, key % n
        net = nm.Network(
            [nm.NeuronGroup("g", n, nm.LIF(du=1.0, dv=1.0, v_th=0.5),
                            nm.place_sequential(n, topo, per_core=16))],
            nm.SynapseList.from_arrays(src, dst, np.full(src.size, 0.01), n),
        )  # fmt: skip
        ext = (rng.random((3, n)) < p_fire) * 1.0
        reps = {m: _step0(prof, net, topo, ext, noc=m) for m in nm.NOC_MODES}
        tr, pk = reps["train"], reps["packet"]
        np.testing.assert_array_equal(tr.outputs, pk.outputs)
        assert tr.counts.packets == pk.counts.packets > 0
        assert tr.counts.flows < pk.counts.flows
        err = np.abs(tr.step_latency_ps - pk.step_latency_ps) / pk.step_latency_ps
        errs.append(float(err.max()))
        print(f"p={p_fire} fan={fan}: packets/step {tr.counts.packets / 3:.0f}, "
              f"train-vs-packet step error max {err.max():.3%}")  # fmt: skip
    assert max(errs) < 0.05


def test_barrier_grows_with_tiles_and_chips(prof):
    """[Davies2018]: 113 ns for one tile, 465 ns for the 32 tiles of a chip; more chips, more."""
    one = nm.Topology(prof)
    assert one.barrier_ps(np.array([0])) == 113_000
    assert one.barrier_ps(np.arange(128)) == 465_000
    four = nm.Topology(prof, 2, 2)
    b = [four.barrier_ps(np.arange(128 * k)) for k in (1, 2, 4)]
    assert b[0] == 465_000 < b[1] < b[2]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_single_event_step_latency_in_simulator(prof, mode):
    """One spike 0 -> 1 across the mesh, delivered before step 0; neuron 1 fires in step 0."""
    topo = nm.Topology(prof)
    far = int(np.nonzero((topo.core_x == 3) & (topo.core_y == 2))[0][0])
    net = nm.Network(
        [nm.NeuronGroup("g", 2, nm.LIF(du=1.0, dv=1.0, v_th=0.5), np.array([0, far]))],
        nm.SynapseList.from_arrays(np.array([0]), np.array([1]), np.array([1.0]), 2),
    )
    cfg = nm.SimConfig(idle_policy="touched_only", mode=mode)
    rep = nm.Simulator(net, prof, topo, cfg).run(n_steps=1, initial_output=np.array([1.0, 0.0]))
    t = prof.timing
    lat = t.tile_spike_ps + 3 * t.hop_ew_ps + 2 * t.hop_ns_ps
    deliver = t.message_out_ps + lat + t.message_in_ps + t.synop_ps
    fire = t.neuron_update_active_ps + t.spike_out_ps
    bar = topo.barrier_ps(np.array([0, far])) if mode == "sync" else 0
    assert bar == (113_000 + 2 * 5 * 17_600 if mode == "sync" else 0)
    assert rep.step_latency_ps.tolist() == [deliver + bar, fire + bar]
    assert rep.outputs[0, 1] == 1.0
    assert rep.latency_ps == int(rep.step_latency_ps.sum())


def test_colocated_neurons_cost_no_hops(prof):
    topo = nm.Topology(prof)
    n = 4 * 200
    src = np.repeat(np.arange(n), 5)
    dst = np.random.default_rng(1).integers(0, n, src.size)
    key = np.unique(src * n + dst)
    src, dst = key // n, key % n
    place = np.arange(n) // 200
    assert (topo.core_tile[place] == 0).all()
    net = nm.Network(
        [nm.NeuronGroup("g", n, nm.LIF(v_th=0.5), place)],
        nm.SynapseList.from_arrays(src, dst, np.ones(src.size), n),
    )
    rep = nm.Simulator(net, prof, topo).run(n_steps=3, initial_output=np.ones(n))
    c = rep.counts
    assert c.packets > 0 and c.hops == 0 and c.inter_tile_packets == 0
    assert c.intra_tile_spikes == c.packets and c.noc_messages == 0
    assert rep.energy.terms["hops_ew"] == rep.energy.terms["hops_ns"] == 0.0


def test_counting_environment_counts_each_scheduled_event_once():
    env = nm.CountingEnvironment()
    assert env.n_events == 0
    env.timeout(5)  # a timeout schedules itself once, when it is made
    assert env.n_events == 1
    env.timeout(3)
    assert env.n_events == 2


def test_default_spread_is_one_message_out_per_packet_after_the_first(prof):
    """spread=None means the source sends its k packets message_out apart: the same result as
    the explicit spread (k - 1) * message_out, and later than sending them all at once."""
    topo = nm.Topology(prof)
    t = prof.timing
    k = 6
    default = nm.simulate_flows(topo, [0], [4], [k])
    explicit = nm.simulate_flows(topo, [0], [4], [k], spread=[(k - 1) * t.message_out_ps])
    burst = nm.simulate_flows(topo, [0], [4], [k], spread=[0])
    assert default.tolist() == explicit.tolist()
    assert int(default[0]) >= int(burst[0])
    assert int(default[0]) >= t.tile_spike_ps + t.hop_ew_ps + (k - 1) * t.message_out_ps


def test_counting_environment_keeps_simpy_event_order():
    """Counting must not reorder: an event succeeded at time t is processed before a
    zero-delay timeout made after it (SimPy's default priority), exactly as in a plain
    simpy.Environment."""
    import simpy

    def order(env):
        seen = []

        def proc():
            yield env.timeout(3)
            ev = env.event()
            ev.callbacks.append(lambda _e: seen.append("succeeded"))
            ev.succeed()
            to = env.timeout(0)
            to.callbacks.append(lambda _e: seen.append("timeout"))
            yield to

        env.process(proc())
        env.run()
        return seen

    assert order(nm.CountingEnvironment()) == order(simpy.Environment())
    assert order(nm.CountingEnvironment()) == ["succeeded", "timeout"]


def test_mesh_defaults_are_exact_integer_time(prof):
    topo = nm.Topology(prof)
    mesh = nm.Mesh(nm.CountingEnvironment(), topo)
    assert mesh.quantum == 0 and type(mesh.quantum) is int
    assert mesh.buffer == prof.noc.buffer_packets and type(mesh.buffer) is int
    assert mesh.free == [0] * topo.n_links and mesh.burst == [0] * topo.n_links
    m2 = nm.Mesh(nm.CountingEnvironment(), topo, np.int64(4), quantum_ps=np.int64(500))
    assert (m2.buffer, m2.quantum) == (4, 500)
    assert type(m2.buffer) is int and type(m2.quantum) is int


def test_host_flow_from_time_zero_closed_form(prof):
    """A single packet from the host at t = 0 on an idle mesh: the host link and the mesh
    links' latencies, then the receive port; nothing else (idle calendars start at 0)."""
    topo = nm.Topology(prof, 2, 1)
    lat, _, _ = topo.link_tables()
    rx = 777
    for dst in (0, 5, topo.n_cores - 1):
        path = nm.Mesh(nm.CountingEnvironment(), topo).route(-1, dst)
        got = nm.simulate_flows(topo, [-1], [dst], rx_per_packet=rx)
        assert int(got[0]) == int(lat[list(path[:-1])].sum()) + rx


def test_spread_out_flow_ends_with_its_last_packet(prof):
    """k packets spread S apart in time over links faster than the spread keep their spread:
    the last one arrives S after the head and is processed in rx, on an idle mesh."""
    topo = nm.Topology(prof)
    t = prof.timing
    spread, rx = 100_000, 1_000
    got = nm.simulate_flows(topo, [0], [4], [3], spread=[spread], rx_per_packet=rx)
    assert int(got[0]) == t.tile_spike_ps + t.hop_ew_ps + spread + rx


def test_routes_of_mismatched_pairs_are_refused(prof):
    mesh = nm.Mesh(nm.CountingEnvironment(), nm.Topology(prof))
    with pytest.raises(ValueError):
        mesh.routes(np.array([0, 1]), np.array([4]))


def test_flows_carry_at_least_one_packet(prof):
    topo = nm.Topology(prof)
    with pytest.raises(ValueError, match="^every flow carries at least one packet, got 0$"):
        nm.simulate_flows(topo, [0, 0], [4, 4], [3, 0])
    mesh = nm.Mesh(nm.CountingEnvironment(), topo)
    with pytest.raises(ValueError, match="^a flow carries at least one packet, got k = 0$"):
        next(mesh.flow(mesh.route(0, 4), 0, 0, 0, 0, 0))
    assert nm.simulate_flows(topo, [0], [4], [1]).tolist() == [
        prof.timing.tile_spike_ps + prof.timing.hop_ew_ps
    ]
    assert nm.simulate_flows(topo, [], []).tolist() == []


def _contended_flows(topo, rng, n=24):
    src = rng.integers(-1, 8, n)  # the host and the first tiles' cores: shared links
    dst = rng.integers(0, 16, n)
    packets = rng.integers(1, 60, n)
    start = rng.integers(0, 2_000_000, n)
    spread = rng.integers(0, 300_000, n)
    rx = rng.integers(1_000, 60_000, n)
    return src, dst, packets, start, spread, rx


def test_flows_are_exactly_time_shift_invariant(prof):
    """Integer-picosecond arithmetic: delaying every flow by S delays every result by exactly
    S, for S far beyond float64's 53-bit mantissa (2^60 + 1 ps), under contention,
    back-pressure (buffer 4, slow ports) and long spreads alike."""
    topo = nm.Topology(prof)
    rng = np.random.default_rng(7)
    src, dst, packets, start, spread, rx = _contended_flows(topo, rng)
    shift = (1 << 60) + 1
    kw = dict(spread=spread, rx_per_packet=rx, buffer_packets=4)
    base = nm.simulate_flows(topo, src, dst, packets, start=start, **kw)
    moved = nm.simulate_flows(topo, src, dst, packets, start=start + shift, **kw)
    assert moved.dtype == np.int64
    np.testing.assert_array_equal(moved - shift, base)
    assert (base > start).all()


def _quantum_events(lat, start, tile, host, quantum):
    """Events of one flow run alone under ``quantum``: the process start and end, and one
    wait each time the head is more than ``quantum`` ahead of the clock."""
    now, n = 0, 2
    a = start if host else start + tile
    if a > now + quantum:
        now, n = a, n + 1
    for dt in lat:
        a += dt
        if a > now + quantum:
            now, n = a, n + 1
    return n


@pytest.mark.parametrize(
    ("src", "start", "quantum"),
    [(0, 0, 0), (-1, 0, 0), (-1, 4100, 4100), (3, 2000, 4100), (0, 0, 6200), (0, 0, 10**9)],
)
def test_quantum_merges_waits_without_changing_results(prof, src, start, quantum):
    """The quantum only skips waits of at most ``quantum`` ps: the flow's result is the one
    of quantum 0, and the events are the process start and end plus one wait per hop whose
    head is more than ``quantum`` ahead of the clock (boundary included: equal is no wait)."""
    topo = nm.Topology(prof, 2, 1)
    t = prof.timing
    dst = topo.n_cores - 1
    ends, events = [], []
    for q in (0, quantum):
        env = nm.CountingEnvironment()
        mesh = nm.Mesh(env, topo, quantum_ps=q)
        path = mesh.route(src, dst)
        p = env.process(mesh.flow(path, 3, start, 0, 3 * 900, 900, host=src < 0))
        env.run()
        ends.append(p.value)
        events.append(env.n_events)
    assert ends[0] == ends[1]
    lat = [mesh.lat[link] for link in path[:-1]]
    want = _quantum_events(lat, start, t.tile_spike_ps, src < 0, quantum)
    assert events[1] == want
    assert events[0] == 2 + (start + (0 if src < 0 else t.tile_spike_ps) > 0) + len(lat)


def test_flow_started_late_waits_for_its_head_only(prof):
    """A flow whose process starts at T0 > 0 waits until its head is due (not T0 longer):
    after the run the clock stands at the head's arrival at the receive port."""
    topo = nm.Topology(prof)
    t = prof.timing
    env = nm.CountingEnvironment()
    mesh = nm.Mesh(env, topo)
    path = mesh.route(0, 4)
    t0, rx = 50_000, 1_000
    out = {}

    def later():
        yield env.timeout(t0)
        out["end"] = yield from mesh.flow(path, 1, t0 + 10, 0, rx, rx)

    env.process(later())
    env.run()
    head = t0 + 10 + t.tile_spike_ps + t.hop_ew_ps
    assert out["end"] == head + rx
    assert env.now == head
