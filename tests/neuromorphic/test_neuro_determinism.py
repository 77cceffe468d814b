"""Determinism: same seed, same trace hash; a different seed changes a stochastic run."""

from __future__ import annotations

import numpy as np
from neuro_helpers import one_group_net, random_graph

from rsgn import neuromorphic as nm


def _noisy(state, idx, x, ctx):
    return np.maximum(x + ctx.rng.normal(0.0, 0.2, idx.size) - 0.3, 0.0)


def _sim(seed, noc="train", mode="sync"):
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    n = 300
    src, dst, w = random_graph(n, 8, 0)
    net = one_group_net(
        n, nm.Callback(_noisy, name="noisy"), nm.place_sequential(n, topo, 40), src, dst, w
    )
    return nm.Simulator(net, prof, topo, nm.SimConfig(seed=seed, noc=noc, mode=mode))


def test_same_seed_same_trace_hash():
    init = np.random.default_rng(1).random(300) * 0.5
    a = _sim(7).run(n_steps=5, initial_output=init)
    b = _sim(7).run(n_steps=5, initial_output=init)
    c = _sim(7).run(n_steps=5, initial_output=init)
    assert a.trace_hash == b.trace_hash == c.trace_hash
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert a.counts.to_dict() == b.counts.to_dict() and a.latency_ps == b.latency_ps
    assert a.energy.total_pj == b.energy.total_pj
    d = _sim(8).run(n_steps=5, initial_output=init)
    assert d.trace_hash != a.trace_hash
    assert not np.array_equal(d.outputs, a.outputs)


def test_packet_and_async_runs_are_deterministic():
    init = np.random.default_rng(2).random(300) * 0.5
    for kw in ({"noc": "packet"}, {"mode": "async"}):
        a = _sim(3, **kw).run(n_steps=3, initial_output=init)
        b = _sim(3, **kw).run(n_steps=3, initial_output=init)
        assert a.trace_hash == b.trace_hash and a.latency_ps == b.latency_ps


def test_report_serialises():
    import json

    rep = _sim(1).run(n_steps=2, initial_output=np.full(300, 0.4))
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["trace_hash"] == rep.trace_hash and len(d["trace_hash"]) == 64
    assert set(d["energy_pj"]) >= set(nm.ENERGY_TERMS) | {"total_pj"}
    assert d["provenance_summary"]["estimate"] == 44
    assert d["counts"]["sim_events"] > 0 and d["counts"]["noc_messages"] > 0
    assert set(d["energy_pj"]["by_class"]) == {"updates", "spikes", "barrier", "static"}
