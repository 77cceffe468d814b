"""NeuroBench metrics as the ``neurobench`` package (2.3.0) computes them: its own metric
classes run on the same layers, inputs and outputs as the simulator (duck-typed hooks in
place of its torch forward hooks), and on the RSGN's parameters (footprint)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsgn import neuromorphic as nm
from rsgn.backends import get_backend
from rsgn.backends.neuromorphic.neurobench import footprint_bytes
from rsgn.model import RSGN
from tests.conftest import small_cfg

nbw = pytest.importorskip("neurobench.metrics.workload", reason="neurobench not installed")
nbs = pytest.importorskip("neurobench.metrics.static", reason="neurobench not installed")


class _Hook:
    """What SynapticOperations reads from a connection hook: the layer, its inputs (one entry
    per call), and a removable torch hook."""

    class _Handle:
        def remove(self) -> None:
            pass

    def __init__(self, layer: torch.nn.Module, inputs: list[torch.Tensor]) -> None:
        self.layer, self.inputs, self.hook = layer, inputs, self._Handle()

    def register_hook(self) -> None:
        pass


class _Acts:
    def __init__(self, outputs: list[torch.Tensor]) -> None:
        self.activation_outputs = outputs


class _Model:
    def __init__(self, net, connection_hooks=(), activation_hooks=()) -> None:
        self.net = net
        self.connection_hooks = list(connection_hooks)
        self.activation_hooks = list(activation_hooks)

    def __net__(self):
        return self.net


def _two_layers(hidden_model: nm.NeuronModel, seed: int):
    """inputs (graded relays of their external input) -> hidden (``hidden_model``) -> out
    (ReLU), dense weight matrices with zeros stored as synapses."""
    rng = np.random.default_rng(seed)
    n_in, n_h, n_out = 20, 30, 10
    w1 = rng.normal(0, 0.6, (n_in, n_h)) * (rng.random((n_in, n_h)) < 0.7)
    w2 = rng.normal(0, 0.6, (n_h, n_out)) * (rng.random((n_h, n_out)) < 0.5)
    n = n_in + n_h + n_out
    s1, d1 = np.meshgrid(np.arange(n_in), n_in + np.arange(n_h), indexing="ij")
    s2, d2 = np.meshgrid(n_in + np.arange(n_h), n_in + n_h + np.arange(n_out), indexing="ij")
    src = np.concatenate([s1.ravel(), s2.ravel()])
    dst = np.concatenate([d1.ravel(), d2.ravel()])
    w = np.concatenate([w1.ravel(), w2.ravel()])
    prof = nm.load_preset("loihi2_est")
    topo = nm.Topology(prof)
    place = nm.place_sequential(n, topo, per_core=16)
    net = nm.Network(
        [
            nm.NeuronGroup("in", n_in, nm.Linear(), place[:n_in]),
            nm.NeuronGroup("hid", n_h, hidden_model, place[n_in : n_in + n_h]),
            nm.NeuronGroup("out", n_out, nm.ReLU(threshold=0.1), place[n_in + n_h :]),
        ],
        nm.SynapseList.from_arrays(src, dst, w, n),  # zeros stored: NeuroBench counts them
    )
    steps = 6
    ext = np.zeros((steps, n))
    ext[:, :n_in] = np.where(rng.random((steps, n_in)) < 0.5, rng.normal(0, 1, (steps, n_in)), 0)
    rep = nm.Simulator(net, prof, topo, nm.SimConfig(idle_policy="all")).run(ext)
    l1 = torch.nn.Linear(n_in, n_h, bias=False)
    l2 = torch.nn.Linear(n_h, n_out, bias=False)
    with torch.no_grad():
        l1.weight.copy_(torch.from_numpy(w1.T))
        l2.weight.copy_(torch.from_numpy(w2.T))
    return rep, (l1, l2), (n_in, n_h, n_out)


@pytest.mark.parametrize("hidden", ["relu", "lif"])
def test_synaptic_ops_match_neurobench(hidden):
    """Effective MACs / ACs (decided by the input values, per layer and call) and Dense
    (every weight of every call) of the simulator against NeuroBench's SynapticOperations on
    the same layers and the same per-step layer inputs (the payloads each group emitted)."""
    model = nm.ReLU(threshold=0.05) if hidden == "relu" else nm.LIF(du=0.5, dv=0.5, v_th=0.3)
    rep, (l1, l2), (n_in, n_h, _) = _two_layers(model, 1)
    outs = torch.from_numpy(rep.outputs).float()  # [steps, N]: each step's outputs = payloads
    inputs1 = [outs[t, :n_in].unsqueeze(0) for t in range(len(outs))]
    inputs2 = [outs[t, n_in : n_in + n_h].unsqueeze(0) for t in range(len(outs))]
    ops = nbw.SynapticOperations()
    net = torch.nn.Sequential(l1, l2)
    got = ops(_Model(net, [_Hook(l1, inputs1), _Hook(l2, inputs2)]), None, (torch.zeros(1),))
    nb = rep.neurobench
    print(hidden, got, nb)
    assert nb.eff_macs == got["Effective_MACs"] and nb.eff_acs == got["Effective_ACs"]
    assert nb.dense_synops == got["Dense"]
    if hidden == "lif":  # binary spikes feed layer 2: ACs; graded inputs feed layer 1: MACs
        assert nb.eff_acs > 0 and nb.eff_macs > 0
    else:
        assert nb.eff_acs == 0


def test_activation_and_connection_sparsity_and_footprint_match_neurobench():
    rep, (l1, l2), _ = _two_layers(nm.ReLU(threshold=0.05), 2)
    net = torch.nn.Sequential(l1, l2)
    outs = [torch.from_numpy(rep.outputs[t]) for t in range(len(rep.outputs))]
    act = nbw.ActivationSparsity()(_Model(net, activation_hooks=[_Acts(outs)]), None, None)
    assert rep.neurobench.activation_sparsity == pytest.approx(act, abs=1e-12)
    assert rep.neurobench.connection_sparsity == pytest.approx(
        nbs.ConnectionSparsity()(_Model(net)),
        abs=1e-3,  # NeuroBench rounds to 3 decimals
    )
    assert rep.neurobench.footprint_bytes == nbs.Footprint()(_Model(net))


def test_rsgn_footprint_is_neurobenchs_for_the_models_parameters():
    """The RSGN's footprint: every tensor the inference reads (the spec), numel x element
    size, as NeuroBench's Footprint counts a module holding exactly those tensors."""
    torch.manual_seed(0)
    spec = RSGN(8, 3, small_cfg()).export()
    holder = torch.nn.Module()
    for name, t in vars(spec.weights).items():
        if t is None:
            continue
        if t.is_floating_point():
            holder.register_parameter(name, torch.nn.Parameter(t.clone()))
        else:
            holder.register_buffer(name, t.clone())
    want = nbs.Footprint()(_Model(holder))
    assert footprint_bytes(spec) == want
    x = torch.randn(3, 6, 8, generator=torch.Generator().manual_seed(1))
    _, rep = get_backend("neuromorphic").prepare(spec)(x)
    nb = rep.details["neurobench"]
    assert nb["footprint_bytes"] == want
    # per projection: the d channel layers (N x N) and W_h (applied to every node) per emission
    hp = spec.hyper
    n, d = hp.n_nodes, hp.d_hidden
    assert nb["dense_synops"] == hp.n_steps * (d * n * n + n * d * d)
    assert 0.8 < nb["connection_sparsity"] < 1.0  # the in-edge graph's sparsity, not 0.9998
