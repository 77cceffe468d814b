"""studies/cpu_compiled/profile_step.py: the propagation work it counts (active nodes, pushed
out-edges, candidates) against a count written out node by node."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from rsgn import ops
from rsgn.config import ModelConfig
from rsgn.forward import Trace, build_graph, forward
from rsgn.model import RSGN

PY = Path(__file__).resolve().parents[1] / "studies" / "cpu_compiled" / "profile_step.py"


@pytest.fixture(scope="module")
def prof():
    spec = importlib.util.spec_from_file_location("cpu_compiled_profile_step", PY)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_propagation_work_matches_a_node_by_node_count(prof) -> None:
    torch.manual_seed(3)
    cfg = ModelConfig(n_nodes=48, d_hidden=16, n_steps=3, target_active=0.1, hebbian=False)
    model = RSGN(4, 3, cfg)
    x = torch.randn(5, 7, 4)
    got = prof.propagation_work(model, x, ops.TABLE)

    w, hp = model.weights(), model.hyper()
    g = build_graph(w, hp)
    tr = Trace()
    with torch.no_grad():
        forward(w, hp, x, graph=g, trace=tr)
    k = g.in_idx.shape[1]
    out = {j: [] for j in range(48)}  # j -> destinations of its live out-edges
    for i in range(48):
        for q in range(k):
            if g.in_mask[i, q]:
                out[int(g.in_idx[i, q])].append(i)
    act, edges, cand = [], [], []
    assert len(tr.states) == 4  # ignition + 3 steps: the 3 steps read states 0..2
    for ids, valid in tr.states[:-1]:
        for b in range(5):
            a = [int(j) for j, v in zip(ids[b], valid[b], strict=True) if v]
            act.append(len(a))
            edges.append(sum(len(out[j]) for j in a))
            cand.append(len(set(a).union(*[out[j] for j in a])))
    assert got["nodes"] == 48
    assert got["active"] == pytest.approx(sum(act) / len(act))
    assert got["pushed_edges"] == pytest.approx(sum(edges) / len(edges))
    assert got["candidates"] == pytest.approx(sum(cand) / len(cand))
    assert got["mean_out_degree"] == pytest.approx(sum(len(v) for v in out.values()) / 48)
    assert got["active_out_degree"] == pytest.approx(got["pushed_edges"] / got["active"])
    assert 0 < got["active"] <= got["candidates"] <= 48
