"""Capacity limits: one-line errors naming the core and the limit."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn import neuromorphic as nm


def _net(n, src, dst, place):
    return nm.Network(
        [nm.NeuronGroup("g", n, nm.LIF(), np.asarray(place))],
        nm.SynapseList.from_arrays(np.asarray(src), np.asarray(dst), np.ones(len(src)), n),
    )


def _err(net, prof, chips=1):
    with pytest.raises(nm.CapacityError) as ei:
        nm.Simulator(net, prof, nm.Topology(prof, chips, 1))
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_too_many_neurons_on_a_core():
    prof = nm.load_preset("loihi")
    msg = _err(_net(1025, [], [], np.full(1025, 5)), prof)
    assert msg.startswith("core 5 (chip 0, tile (")
    assert "1025 neurons > max_neurons 1024" in msg and "loihi" in msg
    # exactly at the limit is fine
    nm.Simulator(_net(1024, [], [], np.full(1024, 5)), prof, nm.Topology(prof))


def test_fan_in_fan_out_and_synapse_memory():
    base = nm.load_preset("loihi")
    n = 20
    # 10 sources on core 0 -> 1 target on core 1: 10 fan-in axons on core 1
    src = np.arange(10)
    dst = np.full(10, 10)
    place = np.r_[np.zeros(10), np.ones(10)].astype(np.int64)
    prof = nm.override(base, {"core.max_axons_in": 9})
    assert "core 1 (chip 0, tile (0, 0)): 10 fan-in axons > max_axons_in 9" in _err(
        _net(n, src, dst, place), prof
    )
    # 1 source on core 0 -> targets on 5 cores: 5 fan-out axons on core 0
    place = np.r_[0, np.arange(1, 6), np.zeros(14)].astype(np.int64)
    prof = nm.override(base, {"core.max_axons_out": 4})
    msg = _err(_net(n, np.zeros(5, np.int64), np.arange(1, 6), place), prof)
    assert "core 0 (chip 0, tile (0, 0)): 5 fan-out axons > max_axons_out 4" in msg
    # synaptic memory: 3 bytes of 8-bit synapses hold 3 synapses
    prof = nm.override(base, {"core.syn_mem_bytes": 3})
    place = np.r_[np.zeros(10), np.full(10, 2)].astype(np.int64)
    msg = _err(_net(n, np.arange(4), np.full(4, 15), place), prof)
    assert "core 2" in msg and "4 synapses > synapse capacity" in msg and "3" in msg
    nm.Simulator(_net(n, np.arange(3), np.full(3, 15), place), prof, nm.Topology(prof))


def test_placement_outside_the_system_and_full_system():
    prof = nm.load_preset("loihi")
    place = np.zeros(4, dtype=np.int64)
    place[2] = 128
    msg = _err(_net(4, [], [], place), prof)
    assert "core 128" in msg and "128 cores" in msg
    # two chips hold it
    nm.Simulator(_net(4, [], [], place), prof, nm.Topology(prof, 2, 1))
    topo = nm.Topology(prof)
    with pytest.raises(nm.CapacityError, match="need 129 cores"):
        nm.place_sequential(129 * 1024, topo)
    # the default topology grows to the cores the placement needs
    sim = nm.Simulator(_net(4, [], [], place), prof)
    assert sim.topology.n_chips == 2


def test_graded_on_binary_chip_and_payload_width():
    prof = nm.load_preset("loihi")
    net = nm.Network(
        [nm.NeuronGroup("g", 3, nm.ReLU(), np.zeros(3, dtype=np.int64))],
        nm.SynapseList.from_arrays(np.array([0]), np.array([1]), np.array([1.0]), 3),
    )
    with pytest.raises(nm.ConfigError, match="binary spikes only.*group 'g' is graded"):
        nm.Simulator(net, prof)
    cfg = nm.SimConfig(payload=nm.PayloadCoding(bits=40))
    with pytest.raises(nm.ConfigError, match="payload bits 40 > chip max_payload_bits 32"):
        nm.Simulator(net, nm.load_preset("loihi2_est"), config=cfg)
    with pytest.raises(nm.ConfigError, match="SimConfig.idle_policy"):
        nm.Simulator(net, nm.load_preset("loihi2_est"), config=nm.SimConfig(idle_policy="x"))


def test_network_validation_errors():
    with pytest.raises(nm.NetworkError, match="duplicate synapse 0 -> 1"):
        nm.SynapseList.from_arrays(np.array([0, 0]), np.array([1, 1]), np.ones(2), 3)
    with pytest.raises(nm.NetworkError, match="dst index out of range"):
        nm.SynapseList.from_arrays(np.array([0]), np.array([3]), np.ones(1), 3)
    with pytest.raises(nm.NetworkError, match="NaN"):
        nm.SynapseList.from_arrays(np.array([0]), np.array([1]), np.array([np.nan]), 3)
    with pytest.raises(nm.NetworkError, match="placement shape"):
        nm.NeuronGroup("g", 3, nm.LIF(), np.zeros(2, dtype=np.int64))
