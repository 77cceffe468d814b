"""Energy accounting, count invariants, linearity and NeuroBench parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from neuro_helpers import one_group_net, random_graph, tile_xy

from rsgn import neuromorphic as nm

N, FAN, T = 400, 10, 5


def _run(preset, policy="all", chips=(1, 1), seed=0, p_init=0.15, per_core=None):
    prof = nm.load_preset(preset)
    if per_core is None:
        per_core = 8 if preset == "truenorth" else 37  # TrueNorth: 256 axons in and out per core
    topo = nm.Topology(prof, *chips)
    src, dst, w = random_graph(N, FAN, seed, w_std=0.5)
    rng = np.random.default_rng(seed + 5)
    init = np.where(rng.random(N) < p_init, rng.random(N), 0.0)
    # spread the neurons over every chip: neuron i on core (i * stride) mod n_cores
    slots = nm.core_order(topo)[(np.arange(N) // per_core) * 47 % topo.n_cores]
    model = nm.ReLU(threshold=0.05) if prof.chip.core.max_payload_bits > 1 else None
    if model is None:
        model = nm.LIF(du=0.1, dv=0.1, v_th=0.5)
        init = (init > 0).astype(float)
    net = one_group_net(N, model, slots, src, dst, w)
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy=policy))
    return sim, sim.run(n_steps=T, initial_output=init), init


def _expected_total(rep, prof, n_chips):
    """The energy formula written out from the counts (no phases in these networks)."""
    e, c = prof.energy, rep.counts
    pk = c.intra_tile_spikes + c.inter_tile_packets
    b = c.barrier_traffic
    return math.fsum(
        [
            c.synops * e.synop,
            c.graded_synops * e.graded_synop,
            c.neuron_updates_active * e.neuron_update_active,
            c.neuron_updates_idle * e.neuron_update_idle,
            c.events * e.spike_out,
            pk * (e.message_out + e.tile_spike + e.message_in),
            c.hops_ew * e.hop_ew,
            c.hops_ns * e.hop_ns,
            c.chip_hops * e.chip_hop,
            b.packets * e.tile_spike + b.hops_ew * e.hop_ew + b.hops_ns * e.hop_ns,
            b.chip_hops * e.chip_hop,
            c.barriers * e.barrier,
            e.static_power_mw * n_chips * rep.latency_ps * 1e-3,
        ]
    )


@pytest.mark.parametrize("preset", ["loihi", "loihi2_est", "spinnaker2", "truenorth"])
@pytest.mark.parametrize("policy", nm.IDLE_POLICIES)
def test_energy_is_counts_times_constants(preset, policy):
    sim, rep, _ = _run(preset, policy, chips=(2, 1))
    prof = sim.profile
    c = rep.counts
    assert c.synops + c.graded_synops > 0 and c.packets > 0
    assert rep.energy.total_pj == pytest.approx(_expected_total(rep, prof, 2), rel=1e-12)
    assert math.fsum(rep.energy.terms.values()) == rep.energy.total_pj
    assert math.fsum(rep.energy.by_class.values()) == pytest.approx(rep.energy.total_pj, 1e-12)
    assert tuple(rep.energy.terms) == nm.ENERGY_TERMS
    assert rep.energy.terms["static"] == prof.energy.static_power_mw * 2 * rep.latency_ps * 1e-3
    if prof.all_in:  # all-in dynamic: synaptic events and static power only
        assert rep.energy.dynamic_pj == (c.synops + c.graded_synops) * prof.energy.synop


def test_counts_match_independent_computation():
    sim, rep, init = _run("loihi2_est", "all", chips=(2, 2))
    net, topo = sim.network, sim.topology
    syn = net.synapses
    fan = syn.fanout()
    # events routed: initial ones plus those of every step (the last step's too)
    sent = [init] + [rep.outputs[t] for t in range(T)]
    synops = sum(int(fan[y != 0].sum()) for y in sent)
    assert rep.counts.graded_synops == synops and rep.counts.synops == 0  # ReLU: graded
    # packets: one per (event, distinct destination core); hops: Manhattan distances
    pk_src, pk_dst = [], []
    for y in sent:
        for i in np.nonzero(y)[0]:
            cores = np.unique(net.placement[syn.dst[syn.indptr[i] : syn.indptr[i + 1]]])
            pk_src += [net.placement[i]] * len(cores)
            pk_dst += list(cores)
    xs, ys = tile_xy(topo, np.array(pk_src))
    xd, yd = tile_xy(topo, np.array(pk_dst))
    manhattan = np.abs(xs - xd) + np.abs(ys - yd)
    assert rep.counts.packets == len(pk_src)
    assert rep.counts.hops == int(manhattan.sum())
    assert rep.counts.intra_tile_spikes == int((manhattan == 0).sum())
    assert rep.counts.chip_hops > 0  # 2x2 chips: some packets cross chips
    assert rep.counts.neuron_updates_active + rep.counts.neuron_updates_idle == N * T
    assert rep.counts.barriers == T + 1  # the delivery step of initial_output, then T steps
    assert rep.counts.events == sum(int(np.count_nonzero(y)) for y in sent[1:])


def test_zero_input_costs_only_idle_updates_and_static():
    prof = nm.load_preset("loihi")
    topo = nm.Topology(prof)
    src, dst, w = random_graph(N, FAN, 1)
    net = one_group_net(N, nm.LIF(v_th=1.0), nm.place_sequential(N, topo, 100), src, dst, w)
    rep = nm.Simulator(net, prof, topo).run(n_steps=T)
    t = rep.energy.terms
    assert rep.counts.synops == rep.counts.packets == rep.counts.neuron_updates_active == 0
    assert t["neuron_update_idle"] == N * T * prof.energy.neuron_update_idle
    assert t["static"] > 0
    # only idle updates and the barrier tokens (the 4 cores share tile 0: none)
    assert rep.energy.dynamic_pj == t["neuron_update_idle"]
    tm = prof.timing
    assert rep.latency_ps == T * (100 * tm.neuron_update_idle_ps + tm.barrier_ps)


def _feedforward(active_idx, n_in=400, k=8, seed=3):
    """Inputs -> disjoint blocks of k ReLU targets, random placement; touched-only policy."""
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    rng = np.random.default_rng(seed)
    n = n_in * (k + 1)
    src = np.repeat(np.arange(n_in), k)
    dst = n_in + np.arange(n_in * k)
    w = rng.uniform(0.5, 1.0, src.size)
    place = rng.permutation(nm.place_sequential(n, topo, per_core=64))
    net = nm.Network(
        [
            nm.NeuronGroup("in", n_in, nm.Linear(), place[:n_in]),
            nm.NeuronGroup("out", n - n_in, nm.ReLU(), place[n_in:]),
        ],
        nm.SynapseList.from_arrays(src, dst, w, n),
    )
    ext = np.zeros((2, n))
    ext[0, active_idx] = 1.0
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only"))
    return sim.run(ext)


def test_dynamic_energy_linear_in_activity():
    rng = np.random.default_rng(0)
    full = rng.permutation(400)[:300]
    half = full[:150]
    e_full = _feedforward(full).energy
    e_half = _feedforward(half).energy
    d_full, d_half = (e.dynamic_pj - e.by_class["barrier"] for e in (e_full, e_half))
    assert d_half == pytest.approx(0.5 * d_full, rel=0.05)
    # synaptic ops, spikes and neuron updates are exactly proportional
    for term in ("graded_synops", "spike_out", "neuron_update_active"):
        assert e_half.terms[term] * 2 == pytest.approx(e_full.terms[term], rel=1e-12), term


def test_neurobench_parity_with_binarised_matmul():
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    src, dst, w = random_graph(N, FAN, 9)
    w[::4] = 0.0  # explicit zero weights: stored, counted by Dense, skipped by Eff
    net = one_group_net(N, nm.ReLU(threshold=0.1), nm.place_sequential(N, topo, 50), src, dst, w)
    rng = np.random.default_rng(2)
    init = np.where(rng.random(N) < 0.3, rng.random(N), 0.0)
    rep = nm.Simulator(net, prof, topo).run(n_steps=T, initial_output=init)
    nb = rep.neurobench
    W = np.zeros((N, N))
    W[src, dst] = w
    # every emission is routed (init and the T steps'); graded values: MACs
    sent = [init] + [rep.outputs[t] for t in range(T)]
    eff = sum(float((W != 0).astype(float).T @ (y != 0).astype(float) @ np.ones(N)) for y in sent)
    assert nb.eff_macs == eff and nb.eff_acs == 0
    assert nb.dense_synops == T * N * N
    assert nb.activation_sparsity == pytest.approx(1 - np.count_nonzero(rep.outputs) / (N * T))
    assert nb.connection_sparsity == pytest.approx((W == 0).sum() / W.size)
    assert nb.footprint_bytes == 4 * src.size  # stored weights (zeros too) as float32


def test_batch_latency_distribution():
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    src, dst, w = random_graph(N, FAN, 4)
    net = one_group_net(N, nm.ReLU(threshold=0.05), nm.place_sequential(N, topo, 50), src, dst, w)
    rng = np.random.default_rng(8)
    inits = np.where(rng.random((6, N)) < rng.uniform(0.02, 0.4, (6, 1)), rng.random((6, N)), 0)
    batch = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only")).run_batch(
        initial_outputs=inits, n_steps=4
    )
    lat = batch.latencies_ps
    assert lat.shape == (6,) and len(set(lat.tolist())) > 1
    st = batch.latency_stats()
    assert st["min_ns"] <= st["p50_ns"] <= st["p95_ns"] <= st["max_ns"]
    assert st["mean_ns"] == pytest.approx(lat.mean() / 1000)
    for r in batch.reports:
        assert r.latency_ps == int(r.step_latency_ps.sum())
    d = batch.to_dict()
    assert d["n"] == 6 and d["neurobench"]["dense_synops"] == 4 * N * N


def test_truenorth_static_plus_dynamic_calibration():
    """20 Hz firing, 128 synapses per neuron: 42 mW static + 11.2 pJ per synaptic event for
    4096 cores gives the 72 mW measured [Merolla2014]."""
    prof = nm.load_preset("truenorth")
    topo = nm.Topology(prof)
    n = 256
    src = np.repeat(np.arange(n), 128)
    dst = (src + np.tile(np.arange(1, 129), n)) % n
    fire = nm.Callback(
        lambda state, idx, x, ctx: ((idx % 50) == ctx.step).astype(float), graded=False
    )
    net = one_group_net(n, fire, np.zeros(n, dtype=np.int64), src, dst, np.ones(src.size))
    rep = nm.Simulator(net, prof, topo).run(n_steps=51)
    # every neuron fires once in ticks 0..49 of 1 ms: 20 Hz
    assert rep.counts.synops == n * 128
    dynamic_mw = rep.energy.dynamic_pj / 50e9 * 1e3 * 4096  # pJ / ps = W; 50 ms = 50e9 ps
    static_mw = rep.energy.terms["static"] / 51e9 * 1e3  # one chip over the 51 ticks
    assert static_mw == pytest.approx(42.0)
    assert dynamic_mw == pytest.approx(4096 * 256 * 20 * 128 * 11.2e-12 * 1e3, rel=1e-9)
    assert dynamic_mw + static_mw == pytest.approx(72.0, rel=0.01)  # measured, Merolla'14
    assert rep.latency_ps == 51 * 10**9


def test_idle_policy_orders_cost_and_keeps_relu_outputs():
    """Sparse activity: all >= active_cores >= touched_only in updates, energy and time."""
    reps = {p: _run("loihi2_est", p, seed=2, p_init=0.01, per_core=4)[1] for p in nm.IDLE_POLICIES}
    a, c, t = reps["all"], reps["active_cores"], reps["touched_only"]
    for x, y in ((a, c), (c, t)):
        assert x.counts.neuron_updates_idle > y.counts.neuron_updates_idle
        assert x.energy.dynamic_pj > y.energy.dynamic_pj
        assert x.latency_ps >= y.latency_ps
    assert t.counts.neuron_updates_idle == 0
    # ReLU(threshold >= 0) with zero input is a no-op: skipping is exact
    np.testing.assert_allclose(a.outputs, t.outputs, atol=1e-12)
    assert a.counts.graded_synops == c.counts.graded_synops == t.counts.graded_synops


def test_bench_events_runs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "studies" / "neuromorphic" / "bench_events.py"
    spec = importlib.util.spec_from_file_location("bench_events", path)
    bench_events = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_events)

    rate = bench_events.main(["--neurons", "4096", "--steps", "3", "--repeats", "1"])
    assert rate > 0
