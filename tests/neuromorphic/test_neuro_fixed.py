"""Fixed-point (bit-accurate integer) mode against integer numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from neuro_helpers import dense, one_group_net, random_graph

from rsgn import neuromorphic as nm

N, FAN, T = 250, 10, 12


def _sat(v, bits):
    hi = 2 ** (bits - 1) - 1
    return np.clip(v, -hi - 1, hi)


def test_fixed_lif_bit_exact():
    prof = nm.load_preset("loihi")
    topo = nm.Topology(prof)
    src, dst, w = random_graph(N, FAN, 0, integer=100)
    rng = np.random.default_rng(1)
    ext = rng.integers(-50, 400, (T, N))
    du, dv, vth, bias = 0.1, 0.05, 1000, 7
    model = nm.LIF(du=du, dv=dv, v_th=vth, bias=bias)
    net = one_group_net(N, model, nm.place_sequential(N, topo, 64), src, dst, w)
    rep = nm.Simulator(net, prof, topo, nm.SimConfig(precision="fixed")).run(ext)
    # integer reference
    W = dense(src, dst, w, N).astype(np.int64)
    du_fx, dv_fx = round(du * 4096), round(dv * 4096)
    u = np.zeros(N, np.int64)
    v = np.zeros(N, np.int64)
    s = np.zeros(N, np.int64)
    out = []
    for t in range(T):
        x = _sat(W.T @ s + ext[t], 24)
        u = ((u * (4096 - du_fx)) >> 12) + x
        v = ((v * (4096 - dv_fx)) >> 12) + u + bias
        s = (v >= vth).astype(np.int64)
        v[s == 1] = 0
        out.append(s)
    out = np.array(out)
    assert rep.outputs.dtype == np.int64
    assert 0 < out.sum() < out.size and (u < 0).any()  # spikes and negative (floored) state
    np.testing.assert_array_equal(rep.outputs, out)
    np.testing.assert_array_equal(net.groups[0].model.init_state(3, True)["v"], [0, 0, 0])


@pytest.mark.parametrize("sigma_delta", [False, True])
def test_fixed_relu_graded_bit_exact(sigma_delta):
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    src, dst, w = random_graph(N, FAN, 2, integer=60)
    rng = np.random.default_rng(3)
    ext = np.where(rng.random((T, N)) < 0.1, rng.integers(-300, 3000, (T, N)), 0)
    bits, acc_bits, shift, gain, theta = 8, prof.chip.core.accumulator_bits, 4, 3, 20
    thr = 2
    cfg = nm.SimConfig(
        precision="fixed",
        payload=nm.PayloadCoding(bits=bits, sigma_delta=sigma_delta, threshold=thr),
    )
    model = nm.ReLU(threshold=theta, gain=gain, shift=shift)
    net = one_group_net(N, model, nm.place_sequential(N, topo, 64), src, dst, w)
    rep = nm.Simulator(net, prof, topo, cfg).run(ext)
    W = dense(src, dst, w, N).astype(np.int64)
    r = np.zeros(N, np.int64)
    acc = np.zeros(N, np.int64)
    p = np.zeros(N, np.int64)
    out = []
    saturated = False
    for t in range(T):
        xs = W.T @ p
        if sigma_delta:
            acc = _sat(acc + xs, acc_bits)
            x = _sat(acc + ext[t], acc_bits)
        else:
            x = _sat(xs + ext[t], acc_bits)
        y = (np.maximum(x - theta, 0) * gain) >> shift
        out.append(y)
        q = _sat(y, bits)
        saturated |= bool((q != y).any())
        if sigma_delta:
            d = q - r
            m = np.abs(d) > thr
            r = np.where(m, q, r)
            p = np.where(m, d, 0)
        else:
            p = q
    out = np.array(out)
    assert saturated and out.any()
    np.testing.assert_array_equal(rep.outputs, out)


def test_fixed_close_to_float():
    """Fixed weights w_int = w / s and shifted outputs approximate the float network."""
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    n = 200
    src, dst, w = random_graph(n, 8, 4, w_std=0.3)
    w_int, s = nm.quantize_weights(w, 8)
    assert np.abs(w_int).max() == 127 and np.abs(w_int * s - w).max() <= s / 2 + 1e-15
    rng = np.random.default_rng(5)
    x0 = np.where(rng.random(n) < 0.3, rng.random(n), 0.0)
    place = nm.place_sequential(n, topo, 50)
    f_net = one_group_net(n, nm.Linear(), place, src, dst, w_int * s)
    rep_f = nm.Simulator(f_net, prof, topo).run(n_steps=1, initial_output=x0)
    scale_in = 2**10
    q_net = one_group_net(n, nm.Linear(), place, src, dst, w_int)
    cfg = nm.SimConfig(precision="fixed", payload=nm.PayloadCoding(bits=16))
    rep_q = nm.Simulator(q_net, prof, topo, cfg).run(
        n_steps=1, initial_output=np.rint(x0 * scale_in).astype(np.int64)
    )
    approx = rep_q.outputs[0] * s / scale_in
    # inputs are rounded to 1/scale_in: error <= sum_i |w_ij| / (2 scale_in)
    bound = np.abs(dense(src, dst, w_int * s, n)).sum(axis=0) / (2 * scale_in)
    err = np.abs(approx - rep_f.outputs[0])
    assert np.all(err <= bound + 1e-12) and err.max() > 0


def test_fixed_rejects_bad_weights_and_models():
    prof = nm.load_preset("loihi")
    topo = nm.Topology(prof)
    src, dst, w = random_graph(50, 4, 0)
    place = np.zeros(50, dtype=np.int64)
    cfg = nm.SimConfig(precision="fixed")
    net = one_group_net(50, nm.LIF(), place, src, dst, w)
    with pytest.raises(nm.NetworkError, match="integer weights"):
        nm.Simulator(net, prof, topo, cfg)
    net = one_group_net(50, nm.LIF(), place, src, dst, np.full(src.size, 300))
    with pytest.raises(nm.NetworkError, match="8-bit signed range.*core.weight_bits"):
        nm.Simulator(net, prof, topo, cfg)
    net = one_group_net(50, nm.LIF(v_th=0.5), place, src, dst, np.ones(src.size, np.int64))
    with pytest.raises(nm.ConfigError, match="lif.v_th must be an integer"):
        nm.Simulator(net, prof, topo, cfg)
    cb = nm.Callback(lambda st, idx, x, ctx: x, graded=False)
    net = one_group_net(50, cb, place, src, dst, np.ones(src.size, np.int64))
    with pytest.raises(nm.ConfigError, match="no fixed-point variant"):
        nm.Simulator(net, prof, topo, cfg)
