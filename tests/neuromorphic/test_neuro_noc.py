"""Mesh topology, XY routing, hop counts and the analytic vs per-packet network models."""

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
    # chip hops = chip boundaries crossed in x and in y
    cx = np.abs(xs // prof.chip.tiles_x - xd // prof.chip.tiles_x)
    cy = np.abs(ys // prof.chip.tiles_y - yd // prof.chip.tiles_y)
    np.testing.assert_array_equal(h.chip, cx + cy)
    assert (h.ew >= 0).all() and (h.ns >= 0).all()
    # the XY route has exactly that many links and visits X first
    for k in range(200):
        path = topo.route(int(s[k]), int(d[k]))
        assert len(path) == h.total[k]
        dirs = "".join(p[0] for p in path)
        assert dirs.lstrip("EW").strip("NS") == ""
    # per-link loads sum to the hop total
    loads = topo.link_loads(s, d)
    assert sum(int(a.sum()) for a in loads.values()) == int(h.total.sum())


def test_colocated_neurons_cost_no_hops(prof):
    topo = nm.Topology(prof)
    n = 4 * 200  # four cores of tile (0, 0)
    src = np.repeat(np.arange(n), 5)
    dst = np.random.default_rng(1).integers(0, n, src.size)
    key = np.unique(src * n + dst)
    src, dst = key // n, key % n
    place = np.arange(n) // 200  # cores 0..3 share tile 0
    assert (topo.core_tile[place] == 0).all()
    net = nm.Network(
        [nm.NeuronGroup("g", n, nm.LIF(v_th=0.5), place)],
        nm.SynapseList.from_arrays(src, dst, np.ones(src.size), n),
    )
    rep = nm.Simulator(net, prof, topo).run(n_steps=3, initial_output=np.ones(n))
    c = rep.counts
    assert c.packets > 0 and c.hops == 0 and c.inter_tile_packets == 0
    assert c.intra_tile_spikes == c.packets
    assert rep.energy.terms["hops_ew"] == rep.energy.terms["hops_ns"] == 0.0


def test_single_packet_latency_closed_form(prof):
    topo = nm.Topology(prof, 2, 1)
    t = prof.timing
    src = int(np.nonzero((topo.core_x == 1) & (topo.core_y == 0))[0][0])
    dst = int(np.nonzero((topo.core_x == 10) & (topo.core_y == 3))[0][0])
    # X: 1 -> 10 crosses the chip edge once (7 -> 8): 8 on-chip E-W hops + 1 chip hop
    h = topo.hops(np.array([src]), np.array([dst]))
    assert (int(h.ew[0]), int(h.ns[0]), int(h.chip[0])) == (8, 3, 1)
    closed = t.tile_spike_ps + 8 * t.hop_ew_ps + 3 * t.hop_ns_ps + t.chip_hop_ps
    assert int(topo.packet_latency_ps(np.array([src]), np.array([dst]))[0]) == closed
    assert int(nm.simulate_packets(topo, [src], [dst])[0]) == closed
    assert nm.analytic_network_time_ps(topo, np.array([src]), np.array([dst])) == (closed, 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_single_event_step_latency_in_simulator(prof, mode):
    """One event 0 -> 1 across the mesh: step time = L + synop + active update (+ barrier)."""
    topo = nm.Topology(prof)
    far = int(np.nonzero((topo.core_x == 3) & (topo.core_y == 2))[0][0])
    net = nm.Network(
        [nm.NeuronGroup("g", 2, nm.LIF(v_th=0.5), np.array([0, far]))],
        nm.SynapseList.from_arrays(np.array([0]), np.array([1]), np.array([1.0]), 2),
    )
    cfg = nm.SimConfig(idle_policy="touched_only", mode=mode)
    rep = nm.Simulator(net, prof, topo, cfg).run(n_steps=2, initial_output=np.array([1.0, 0.0]))
    t = prof.timing
    lat = t.tile_spike_ps + 3 * t.hop_ew_ps + 2 * t.hop_ns_ps
    busy = t.synop_ps + t.neuron_update_active_ps
    if mode == "sync":
        assert rep.step_latency_ps.tolist() == [lat + busy + t.barrier_ps, t.barrier_ps]
    else:
        assert rep.step_latency_ps.tolist() == [lat + busy, 0]
    assert rep.outputs[0, 1] == 1.0  # neuron 1 fired
    assert rep.latency_ps == int(rep.step_latency_ps.sum())


def test_two_packets_on_one_link_serialise(prof):
    topo = nm.Topology(prof)
    t = prof.timing
    arr = nm.simulate_packets(topo, [0, 0], [4, 4])  # same tile pair: share link (0,0)->(1,0)
    one = t.tile_spike_ps + t.hop_ew_ps
    assert sorted(arr.tolist()) == [one, one + t.link_packet_ps]
    assert nm.analytic_network_time_ps(topo, np.array([0, 0]), np.array([4, 4])) == (
        one + t.link_packet_ps,
        2,
    )


def test_detailed_agrees_with_analytic_at_low_load(prof):
    topo = nm.Topology(prof)
    rng = np.random.default_rng(3)
    exact = 0
    for _ in range(40):
        k = int(rng.integers(1, 6))
        s = rng.integers(0, topo.n_cores, k)
        d = rng.integers(0, topo.n_cores, k)
        detailed = int(nm.simulate_packets(topo, s, d).max())
        analytic, load = nm.analytic_network_time_ps(topo, s, d)
        assert analytic == pytest.approx(detailed, rel=0.05)
        if load <= 1:
            assert analytic == detailed
            exact += 1
    assert exact >= 10


def test_detailed_latency_monotone_in_load(prof):
    topo = nm.Topology(prof)
    rng = np.random.default_rng(5)
    s = rng.integers(0, topo.n_cores, 400)
    d = rng.integers(0, topo.n_cores, 400)
    prev = 0
    for k in (1, 5, 25, 100, 400):
        tnet = int(nm.simulate_packets(topo, s[:k], d[:k]).max())
        assert tnet >= prev
        prev = tnet
    # heavy load: queueing makes the network slower than the slowest lone packet
    assert prev > int(topo.packet_latency_ps(s, d).max())


def test_simulator_detailed_vs_analytic_low_load(prof):
    topo = nm.Topology(prof)
    rng = np.random.default_rng(6)
    n = 256
    src = np.repeat(np.arange(n), 3)
    dst = rng.integers(0, n, src.size)
    key = np.unique(src * n + dst)
    src, dst = key // n, key % n
    place = nm.core_order(topo)[np.arange(n) // 2]
    net = nm.Network(
        [nm.NeuronGroup("g", n, nm.ReLU(threshold=0.3), place)],
        nm.SynapseList.from_arrays(src, dst, rng.normal(0, 0.6, src.size), n),
    )
    prof2 = nm.load_preset("loihi2_est")
    init = np.where(rng.random(n) < 0.02, 1.0, 0.0)
    reps = [
        nm.Simulator(net, prof2, nm.Topology(prof2), nm.SimConfig(noc=m)).run(
            n_steps=4, initial_output=init
        )
        for m in ("analytic", "detailed")
    ]
    assert reps[0].counts.packets > 0
    np.testing.assert_array_equal(reps[0].outputs, reps[1].outputs)
    np.testing.assert_allclose(reps[0].step_latency_ps, reps[1].step_latency_ps, rtol=0.05)
    assert reps[1].counts.to_dict() == reps[0].counts.to_dict()


# ------------------------------------------------------------- boundaries of the NoC models
# (neuromorphic/noc.py as it is before issue 16 rebuilds it as an event-driven model)


def test_analytic_time_without_packets_and_its_integer_type(prof):
    topo = nm.Topology(prof)
    empty = np.array([], dtype=np.int64)
    assert nm.analytic_network_time_ps(topo, empty, empty) == (0, 0)
    t_net, load = nm.analytic_network_time_ps(topo, np.array([0, 0, 0]), np.array([4, 4, 4]))
    assert type(t_net) is int and type(load) is int
    one = prof.timing.tile_spike_ps + prof.timing.hop_ew_ps
    assert (t_net, load) == (one + 2 * prof.timing.link_packet_ps, 3)


def test_detailed_noc_counts_one_event_per_hop_and_reports_relative_arrivals(prof):
    """deliver() started at a later clock returns arrival times relative to its start, and
    n_events counts every link traversal (the sum of the packets' hop counts)."""
    import simpy

    topo = nm.Topology(prof, 2, 1)
    rng = np.random.default_rng(7)
    s = rng.integers(0, topo.n_cores, 6)
    d = rng.integers(0, topo.n_cores, 6)
    alone = nm.simulate_packets(topo, s, d)
    env = simpy.Environment()
    noc = nm.DetailedNoC(env, topo)
    assert noc.n_events == 0
    out = {}

    def body():
        yield env.timeout(123_457)
        out["first"] = yield env.process(noc.deliver(s, d))
        out["second"] = yield env.process(noc.deliver(s[:2], d[:2]))

    env.run(env.process(body()))
    assert out["first"].dtype == np.int64
    np.testing.assert_array_equal(out["first"], alone)
    np.testing.assert_array_equal(out["second"], nm.simulate_packets(topo, s[:2], d[:2]))
    hops = topo.hops(s, d).total
    assert noc.n_events == int(hops.sum()) + int(hops[:2].sum())


def test_detailed_noc_empty_batch_and_mismatched_lengths(prof):
    topo = nm.Topology(prof)
    arr = nm.simulate_packets(topo, [], [])
    assert arr.shape == (0,) and arr.dtype == np.int64
    with pytest.raises(ValueError):
        nm.simulate_packets(topo, [0, 1], [4])
