"""Functional equivalence of the simulator with plain numpy computations of the same network."""

from __future__ import annotations

import numpy as np
import pytest
from neuro_helpers import dense, one_group_net, random_graph, ref_lif, ref_relu

from rsgn import neuromorphic as nm

N, FAN, T = 300, 12, 6


@pytest.fixture(scope="module")
def prof():
    return nm.load_preset("loihi2_est")


@pytest.fixture(scope="module")
def topo(prof):
    return nm.Topology(prof)


def _relu_setup(seed):
    src, dst, w = random_graph(N, FAN, seed, w_std=0.4)
    rng = np.random.default_rng(seed + 1)
    init = np.where(rng.random(N) < 0.2, rng.random(N), 0.0)
    ext = np.where(rng.random((T, N)) < 0.05, rng.normal(0, 1, (T, N)), 0.0)
    return src, dst, w, init, ext


@pytest.mark.parametrize("policy", nm.IDLE_POLICIES)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_float_relu_matches_numpy(prof, topo, policy, mode):
    src, dst, w, init, ext = _relu_setup(0)
    place = nm.place_sequential(N, topo, per_core=40)
    net = one_group_net(N, nm.ReLU(threshold=0.05, gain=0.9), place, src, dst, w)
    sim = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy=policy, mode=mode))
    rep = sim.run(ext, initial_output=init)
    ref, _ = ref_relu(dense(src, dst, w, N), init, ext, T, 0.05, 0.9)
    assert (ref != 0).any(axis=1).all()  # activity reaches every step
    np.testing.assert_allclose(rep.outputs, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rep.final_output, ref[-1], rtol=0, atol=1e-12)


def test_float_lif_matches_numpy(topo):
    prof = nm.load_preset("loihi")
    topo = nm.Topology(prof)
    src, dst, w = random_graph(N, FAN, 3, w_std=0.6)
    rng = np.random.default_rng(4)
    ext = rng.random((T * 3, N)) * 0.5
    place = nm.place_sequential(N, topo, per_core=50)
    net = one_group_net(N, nm.LIF(du=0.2, dv=0.1, v_th=1.0, bias=0.05), place, src, dst, w)
    rep = nm.Simulator(net, prof, topo).run(ext)
    ref = ref_lif(dense(src, dst, w, N), ext, T * 3, 0.2, 0.1, 1.0, 0.05)
    assert ref.sum() > 50
    np.testing.assert_array_equal(rep.outputs, ref)
    assert rep.neurobench.eff_acs > 0 and rep.neurobench.eff_macs == 0


def test_two_groups_mixed_models(prof, topo):
    """A graded input group feeding a ReLU group: group offsets and per-group models."""
    na, nb = 50, 120
    rng = np.random.default_rng(7)
    src = np.repeat(np.arange(na), 10)
    dst = na + rng.integers(0, nb, src.size)
    key = np.unique(src * (na + nb) + dst)
    src, dst = key // (na + nb), key % (na + nb)
    w = rng.normal(0, 1, src.size)
    pa = nm.place_sequential(na, topo, per_core=25)
    pb = nm.place_sequential(nb, topo, per_core=25, first=2)
    net = nm.Network(
        [
            nm.NeuronGroup("in", na, nm.Linear(gain=2.0), pa),
            nm.NeuronGroup("hid", nb, nm.ReLU(threshold=0.1), pb),
        ],
        nm.SynapseList.from_arrays(src, dst, w, na + nb),
    )
    ext = np.zeros((2, na + nb))
    ext[0, :na] = rng.random(na)
    rep = nm.Simulator(net, prof, topo).run(ext)
    W = dense(src, dst, w, na + nb)
    y_in = 2.0 * ext[0, :na]
    expect = np.maximum(W[:na, na:].T @ y_in - 0.1, 0.0)
    np.testing.assert_allclose(rep.outputs[0, :na], y_in, atol=1e-12)
    np.testing.assert_allclose(rep.outputs[1, na:], expect, atol=1e-12)
    assert net.group("hid") == slice(na, na + nb)
    with pytest.raises(nm.NetworkError, match="unknown group"):
        net.group("nope")


def test_quantised_payload_error_bound(prof, topo):
    """b-bit payloads: one-layer input error <= sum_i |w_ij| * scale / 2."""
    na, nb = 80, 40
    rng = np.random.default_rng(11)
    src = np.repeat(np.arange(na), nb)
    dst = na + np.tile(np.arange(nb), na)
    w = rng.normal(0, 1, src.size)
    place = nm.place_sequential(na + nb, topo, per_core=30)
    net = nm.Network(
        [
            nm.NeuronGroup("a", na, nm.Linear(), place[:na]),
            nm.NeuronGroup("b", nb, nm.Linear(), place[na:]),
        ],
        nm.SynapseList.from_arrays(src, dst, w, na + nb),
    )
    scale = 1 / 32
    cfg = nm.SimConfig(payload=nm.PayloadCoding(bits=8, scale=scale))
    ext = np.zeros((2, na + nb))
    ext[0, :na] = rng.uniform(-3, 3, na)
    rep = nm.Simulator(net, prof, topo, cfg).run(ext)
    W = dense(src, dst, w, na + nb)[:na, na:]
    exact = W.T @ ext[0, :na]
    err = np.abs(rep.outputs[1, na:] - exact)
    bound = np.abs(W).sum(axis=0) * scale / 2
    assert np.all(err <= bound + 1e-12)
    assert err.max() > 0  # quantisation is really applied
    # the reference quantiser gives the same numbers
    q = np.clip(np.rint(ext[0, :na] / scale), -128, 127) * scale
    np.testing.assert_allclose(rep.outputs[1, na:], W.T @ q, atol=1e-12)


def test_callable_ext_input_matches_array(prof, topo):
    src, dst, w, init, ext = _relu_setup(5)
    place = nm.place_sequential(N, topo, per_core=40)
    net = one_group_net(N, nm.ReLU(threshold=0.05), place, src, dst, w)
    sim = nm.Simulator(net, prof, topo)

    def sparse_ext(t):
        idx = np.nonzero(ext[t])[0]
        return idx, ext[t, idx]

    a = sim.run(ext, initial_output=init)
    b = sim.run(sparse_ext, n_steps=T, initial_output=init)
    c = sim.run(lambda t: ext[t], n_steps=T, initial_output=init)
    assert a.trace_hash == b.trace_hash == c.trace_hash
    np.testing.assert_array_equal(a.outputs, b.outputs)
    with pytest.raises(nm.ConfigError, match="n_steps is required"):
        sim.run(sparse_ext)
    with pytest.raises(nm.ConfigError, match="ext_input: expected shape"):
        sim.run(ext[:, :10])
    with pytest.raises(nm.ConfigError, match="NaN"):
        sim.run(np.full((2, N), np.nan))
    quiet = nm.Simulator(net, prof, topo, nm.SimConfig(record="none"))
    r = quiet.run(ext, initial_output=init)
    assert r.outputs is None
    np.testing.assert_allclose(r.final_output, a.final_output, atol=1e-12)
