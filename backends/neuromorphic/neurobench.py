r"""NeuroBench metrics of the RSGN on the chip, per inference, with NeuroBench's definitions
(``neurobench`` 2.3.0: ``SynapticOperations``, ``ActivationSparsity``, ``ConnectionSparsity``,
``Footprint``; checked against the package in ``tests/test_neuromorphic_neurobench.py``).

Layers (each call of a layer counts; one call per emission):

- message layers: channel k of the messages, ``N x N`` dense weights (the in-edge graph), called
  once per emission (ignition's and every propagation step's but the last: ``n_steps`` calls).
  Effective ops are the simulator's value-based count (:class:`rsgn.neuromorphic.Layer`): the
  non-zero payloads times their non-zero-weight fan-out, MACs when a call's input vector holds
  any value outside {-1, 0, 1} (graded payloads), ACs otherwise.
- the W_h projection: a ``d x d`` linear layer applied to every node (dense: ``N d^2`` per
  call), effective only on the emitting nodes (their h is graded and generically non-zero:
  ``nnz(W_h)`` MACs each).

``dense_synops`` and ``eff_macs`` / ``eff_acs`` sum those layers; the front end's, initial
state's and readout's dense layers run once per inference on the root or gate cores and are
reported as MACs of the chip program (``front_macs``), not as synaptic operations of the
spiking network. ``activation_sparsity`` = zero node activations over all nodes and steps (the
ignited set and every step's: 1 - the mean active fraction). ``connection_sparsity`` = zero
weights over the dense weights of those layers. ``footprint_bytes`` = the model's parameters
and buffers, numel x element size of every tensor the inference reads (the spec), as
NeuroBench's ``Footprint`` counts a torch module's.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from rsgn.spec import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.backends.neuromorphic.program import Inference, NeuromorphicProgram


def footprint_bytes(spec: ModelSpec) -> int:
    """Bytes of every tensor of the spec: sum of numel x element size (NeuroBench's
    ``Footprint`` of a module holding exactly these parameters and buffers)."""
    total = 0
    for f in dataclasses.fields(spec.weights):
        t = getattr(spec.weights, f.name)
        if t is not None:
            total += int(t.numel()) * int(t.element_size())
    return total


def metrics(prog: NeuromorphicProgram, infs: list[Inference]) -> dict[str, Any]:
    """NeuroBench metrics per inference, averaged over ``infs`` (module docstring)."""
    hp = prog.spec.hyper
    n, d, s = hp.n_nodes, hp.d_hidden, hp.n_steps
    w_h = prog.params.w_h
    nnz_wh = int(np.count_nonzero(w_h))
    nnz_msg = int(np.count_nonzero(prog.synapses.msg_w))
    dense_msg = d * n * n
    dense = s * (dense_msg + n * d * d)
    rows = []
    for inf in infs:
        nb = inf.run.neurobench
        emitted = sum(int(e.size) for e in inf.log.emitted)
        proj = emitted * nnz_wh
        act = inf.log.active_counts
        rows.append(
            {
                "dense_synops": float(dense),
                "eff_macs": float(nb.eff_macs + proj),
                "eff_acs": float(nb.eff_acs),
                "eff_macs_messages": float(nb.eff_macs),
                "eff_macs_projection": float(proj),
                "activation_sparsity": 1.0 - sum(act) / (len(act) * n),
            }
        )
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}
    zeros = (dense_msg - nnz_msg) + (d * d - nnz_wh)
    out["connection_sparsity"] = zeros / (dense_msg + d * d)
    out["footprint_bytes"] = footprint_bytes(prog.spec)
    return out
