"""Sigma-delta coding: saves events on converging signals, reconstruction within threshold."""

from __future__ import annotations

import numpy as np
import pytest
from neuro_helpers import dense, one_group_net, random_graph, ref_relu

from rsgn import neuromorphic as nm


@pytest.fixture(scope="module")
def prof():
    return nm.load_preset("loihi2_est")


def _relay_pair(prof, n, steps, ext_a, theta, bits=None, scale=1.0, policy="all"):
    """Group a (Linear relay of its external input) -> group b (Linear), one-to-one, w=1."""
    topo = nm.Topology(prof)
    src = np.arange(n)
    dst = n + np.arange(n)
    place = nm.place_sequential(2 * n, topo, per_core=32)
    net = nm.Network(
        [
            nm.NeuronGroup("a", n, nm.Linear(), place[:n]),
            nm.NeuronGroup("b", n, nm.Linear(), place[n:]),
        ],
        nm.SynapseList.from_arrays(src, dst, np.ones(n), 2 * n),
    )
    ext = np.zeros((steps, 2 * n))
    ext[:, :n] = ext_a
    cfg = nm.SimConfig(
        payload=nm.PayloadCoding(
            bits=bits, scale=scale, sigma_delta=theta is not None, threshold=theta or 0.0
        ),
        idle_policy=policy,
    )
    return nm.Simulator(net, prof, topo, cfg).run(ext)


def test_reconstruction_within_threshold_and_events_saved(prof):
    n, steps, theta = 64, 40, 0.05
    t = np.arange(steps)[:, None]
    phase = np.linspace(0, 1, n)[None, :]
    signal = np.exp(-t / 8.0) * np.sin(2 * np.pi * (t / 20.0 + phase)) + 1.0  # converges to 1
    sd = _relay_pair(prof, n, steps, signal, theta)
    plain = _relay_pair(prof, n, steps, signal, None)
    a, b = sd.outputs[:, :n], sd.outputs[:, n:]
    # receiver b at step t reconstructs sender a's output of step t-1 within theta
    err = np.abs(b[1:] - a[:-1])
    assert err.max() <= theta + 1e-12
    assert err.max() > 0  # it is a reconstruction, not a copy
    np.testing.assert_allclose(plain.outputs[1:, n:], plain.outputs[:-1, :n], atol=1e-12)
    # converged senders go silent: fewer events than plain coding, savings counted
    assert sd.counts.events < plain.counts.events
    assert sd.counts.sd_events_saved > 0
    assert sd.counts.sd_events_plain - sd.counts.sd_events_saved == sd.counts.events
    assert sd.counts.graded_synops < plain.counts.graded_synops
    assert sd.energy.dynamic_pj < plain.energy.dynamic_pj


def test_quantised_sigma_delta_bound(prof):
    """With b-bit payloads the reconstruction is within theta of the quantised output."""
    n, steps, theta, scale = 32, 25, 0.1, 1 / 16
    rng = np.random.default_rng(0)
    signal = np.cumsum(rng.normal(0, 0.05, (steps, n)), axis=0)
    rep = _relay_pair(prof, n, steps, signal, theta, bits=8, scale=scale)
    a, b = rep.outputs[:, :n], rep.outputs[:, n:]
    q = np.clip(np.rint(a / scale), -128, 127) * scale
    assert np.abs(b[1:] - q[:-1]).max() <= theta + 1e-12
    assert np.abs(b[1:] - a[:-1]).max() <= theta + scale / 2 + 1e-12


@pytest.mark.parametrize("policy", nm.IDLE_POLICIES)
def test_sigma_delta_network_matches_numpy(prof, policy):
    n, steps = 200, 8
    topo = nm.Topology(prof)
    src, dst, w = random_graph(n, 8, 1, w_std=0.4)
    rng = np.random.default_rng(2)
    init = np.where(rng.random(n) < 0.3, rng.random(n), 0.0)
    ext = np.zeros((steps, n))
    ext[:, :20] = 0.5  # constant drive on 20 neurons
    net = one_group_net(n, nm.ReLU(threshold=0.02), nm.place_sequential(n, topo, 40), src, dst, w)
    cfg = nm.SimConfig(
        payload=nm.PayloadCoding(sigma_delta=True, threshold=0.01), idle_policy=policy
    )
    rep = nm.Simulator(net, prof, topo, cfg).run(ext, initial_output=init)
    ref, sent = ref_relu(dense(src, dst, w, n), init, ext, steps, 0.02, sd=0.01)
    np.testing.assert_allclose(rep.outputs, ref, atol=1e-12)
    assert rep.counts.events == sum(int(np.count_nonzero(p)) for p in sent[1:])
