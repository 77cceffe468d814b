"""Per-inference start state and context: a run starts from the given neuron state, hands its
context to every update, and leaves nothing behind for the next run."""

from __future__ import annotations

import numpy as np
import pytest
from neuro_helpers import one_group_net

from rsgn import neuromorphic as nm

N = 6


def _accumulator(state, idx, x, ctx):
    """v <- v + x; emits v; logs (step, updated neurons) into the run's context."""
    state["v"][idx] += x
    ctx.context.append((ctx.step, idx.tolist()))
    return state["v"][idx]


def _sim() -> nm.Simulator:
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    src, dst = np.arange(N - 1), np.arange(1, N)  # a chain 0 -> 1 -> ... -> N-1
    model = nm.Callback(_accumulator, state={"v": 0.0}, name="acc")
    net = one_group_net(N, model, np.zeros(N, np.int64), src, dst, np.ones(N - 1))
    return nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="touched_only"))


def test_initial_state_and_context_are_per_run():
    sim = _sim()
    v0 = np.arange(N, dtype=np.float64)
    init = np.zeros(N)
    init[0] = 1.0
    log_a: list = []
    a = sim.run(n_steps=2, initial_output=init, initial_state={"g": {"v": v0}}, context=log_a)
    # step 0: neuron 1 receives 1 and starts from v = 1 -> 2; step 1: neuron 2 gets 2 -> 4
    assert log_a == [(0, [1]), (1, [2])]
    np.testing.assert_array_equal(a.outputs[0], [0, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(a.outputs[1], [0, 0, 4, 0, 0, 0])
    log_b: list = []
    b = sim.run(n_steps=2, initial_output=init, context=log_b)  # fresh state, own context
    assert log_b == log_a and len(log_a) == 2
    np.testing.assert_array_equal(b.outputs[1], [0, 0, 1, 0, 0, 0])
    assert a.trace_hash != b.trace_hash


def test_initial_state_errors_name_the_group_variable_and_shape():
    sim = _sim()
    with pytest.raises(nm.ConfigError, match="unknown group 'h'"):
        sim.run(n_steps=1, initial_state={"h": {"v": np.zeros(N)}}, context=[])
    with pytest.raises(nm.ConfigError, match="no state variable 'u'.*v"):
        sim.run(n_steps=1, initial_state={"g": {"u": np.zeros(N)}}, context=[])
    with pytest.raises(nm.ConfigError, match=r"expected shape \(6,\), got \(5,\)"):
        sim.run(n_steps=1, initial_state={"g": {"v": np.zeros(N - 1)}}, context=[])
