"""The triton target's fused step (``kernels.step``) against the reference decomposition
propagate -> inhibit -> select -> update of :mod:`rsgn.ops` (interpreter on CPU, tiny sizes),
and its cost model: the torch target's ledger plus exactly the recomputation of h~."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

pytest.importorskip("triton", reason="triton is not installed (pip install triton)")

from rsgn import ops  # noqa: E402
from rsgn.backends import get_backend  # noqa: E402
from rsgn.backends.cost import CostLedger, load_energy_table  # noqa: E402
from rsgn.backends.torch import cost as electronic  # noqa: E402
from rsgn.backends.triton import cost as triton_cost  # noqa: E402
from rsgn.backends.triton.fused import fused_applies, graph_tables  # noqa: E402
from rsgn.backends.triton.primitives import kernel_table  # noqa: E402
from rsgn.forward import Trace, forward  # noqa: E402
from rsgn.kernels import step as kstep  # noqa: E402
from rsgn.model import RSGN  # noqa: E402
from rsgn.state import ActiveState  # noqa: E402
from tests.conftest import small_cfg  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
REF = ops.TABLE


def _setup(seed=0, n=50, inhibition=0.5, d=12, k_in=6, target=0.1, b=3):
    """A model, its graph (reference distances) and the ignited state with random h."""
    torch.manual_seed(seed)
    cfg = small_cfg(
        n_nodes=n,
        d_hidden=d,
        k_in=k_in,
        n_steps=1,
        hebbian=False,
        target_active=target,
        inhibition_strength=inhibition,
    )
    model = RSGN(5, 3, cfg).to(DEV)
    x = torch.randn(b, 7, 5, device=DEV)
    w = model.weights()
    with torch.no_grad():
        g = model.build_graph()
        feats = ops.encode(x, w.enc_w, w.enc_b)
        sp, sa = ops.spark_points(
            feats, w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2, w.spark_scale
        )
        st = REF.ignite(
            sp, sa, g, sigma=cfg.sigma_ign, eps=cfg.eps_active, cap=cfg.k_active, method="radix"
        )
    h = torch.randn(*st.ids.shape, d, device=DEV) * st.valid.unsqueeze(-1)
    return model, g, dataclasses.replace(st, h=h)


def _step(table, model, g, st, method="radix"):
    cfg = model.cfg
    return table.step(
        st,
        g,
        model.w_h.weight,
        model.w_h.bias,
        model.theta,
        model.ln.weight,
        model.ln.bias,
        gamma=cfg.gamma,
        temperature=0.7,
        inhibition=cfg.inhibition_strength,
        cap=cfg.k_active,
        eps=cfg.eps_active,
        method=method,
    )


@pytest.mark.parametrize(
    "seed,inhibition,n,d,k_in,b",
    [
        (0, 0.5, 50, 12, 6, 3),
        (1, 0.0, 50, 12, 6, 3),
        (2, 2.0, 50, 12, 6, 3),
        (3, 0.5, 37, 13, 5, 5),
    ],
)  # the last: odd N, d, K and B
def test_fused_step_equals_decomposition(seed, inhibition, n, d, k_in, b):
    model, g, st = _setup(seed=seed, inhibition=inhibition, n=n, d=d, k_in=k_in, b=b)
    with torch.no_grad():
        ref = _step(REF, model, g, st)
        fus = _step(kernel_table(), model, g, st)
    assert torch.equal(fus.valid, ref.valid) and torch.equal(fus.ids, ref.ids)
    assert ref.valid.any()
    torch.testing.assert_close(fus.alpha, ref.alpha, atol=2e-6, rtol=2e-5)
    torch.testing.assert_close(fus.h, ref.h, atol=2e-5, rtol=2e-5)


def test_fused_step_with_bound_tables_equals_per_step_tables():
    """A program binds the graph's tables once; the training table computes them per step:
    the same step either way, and tables of another graph are refused."""
    model, g, st = _setup(seed=8)
    with torch.no_grad():
        free = _step(kernel_table(), model, g, st)
        bound = _step(kernel_table(tables=graph_tables(g)), model, g, st)
        assert torch.equal(free.ids, bound.ids) and torch.equal(free.h, bound.h)
        other = model.build_graph()
        src, inh = graph_tables(other)
        with pytest.raises(ValueError, match="graph tables"):
            _step(kernel_table(tables=(src[:, :-1], inh)), model, g, st)
    assert set(vars(g)) == {f.name for f in dataclasses.fields(g)}  # nothing cached on it


@pytest.mark.parametrize(
    "b,variant,rows",
    [(3, "MASK", 4), (35, "MASK", 4), (3, "STORE", 4), (35, "MASK+STORE", 4), (3, "STORE", 0.3)],
)  # one and two 32-sample activity words; a store too small for every reached row
def test_scores_kernel_variants_give_the_same_step(b, variant, rows, monkeypatch):
    """``TUNING["MASK"]`` (the source-activity prefilter) changes which slot lookups happen,
    ``TUNING["STORE"]`` whether the update recomputes a winner's message sum or loads the one
    the scores kernel kept (rows past the store's capacity recompute): neither changes the
    result, bit for bit (winners, gates, states)."""
    model, g, st = _setup(seed=5, b=b)
    table = kernel_table()
    with torch.no_grad():
        ref = _step(REF, model, g, st)
        base = _step(table, model, g, st)
        for switch in variant.split("+"):
            monkeypatch.setitem(kstep.TUNING, switch, True)
        monkeypatch.setitem(kstep.TUNING, "STORE_ROWS", rows)
        fus = _step(table, model, g, st)
    assert torch.equal(fus.ids, ref.ids) and torch.equal(fus.valid, ref.valid)
    assert torch.equal(fus.ids, base.ids)
    assert torch.equal(fus.alpha, base.alpha) and torch.equal(fus.h, base.h)
    torch.testing.assert_close(fus.h, ref.h, atol=2e-5, rtol=2e-5)
    slots = kstep.slot_map(st.ids, st.valid, g.n_nodes)
    if "MASK" in variant:
        words = kstep.activity_words(slots)
        assert words.shape == (g.n_nodes, -(-b // 32))
        for bb in range(b):
            bit = (words[:, bb // 32] >> (bb % 32)) & 1
            assert torch.equal(bit.bool(), slots[bb] >= 0)
    if "STORE" in variant:  # the store holds each reached row once, up to its capacity
        src, _ = kstep.graph_tables(g.in_idx, g.in_mask, g.inh_idx, g.inh_valid)
        msg = (st.alpha.unsqueeze(-1) * (st.h @ model.w_h.weight.T)).reshape(-1, st.h.shape[-1])
        args = (src, g.w, slots, msg, st.alpha, model.w_h.bias, model.theta)
        with torch.no_grad():
            *_, hits, kept = kstep.scores(*args, 1.0, 0.7, 0.5, count=True)
        pos, buf, cap = kept
        assert cap == max(1, min(g.n_nodes, int(rows * st.ids.shape[1])))
        for bb in range(b):
            reached = int((hits[bb] > 0).sum())
            got = pos[bb][pos[bb] >= 0]
            assert len(got) == min(reached, cap) and len(set(got.tolist())) == len(got)
            assert bool((hits[bb][pos[bb] >= 0] > 0).all())
        if rows < 1:
            assert any(int((hits[bb] > 0).sum()) > cap for bb in range(b))  # some overflow


def test_fused_and_unfused_triton_agree_over_steps():
    torch.manual_seed(4)
    cfg = small_cfg(n_nodes=61, n_steps=3, hebbian=False, d_hidden=10)
    model = RSGN(5, 3, cfg).to(DEV)
    x = torch.randn(2, 9, 5, device=DEV)
    with torch.no_grad():
        a = model(x, ops_table=kernel_table(fused=True))
        b = model(x, ops_table=kernel_table(fused=False))
    assert a.active_fraction_per_step == b.active_fraction_per_step
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed,n,d,b", [(5, 50, 12, 3), (9, 37, 13, 5)])
def test_fused_step_gradients_match_reference(seed, n, d, b):
    model, g, st = _setup(seed=seed, n=n, d=d, b=b)
    leaves = {}
    for name, table in (("torch", REF), ("fused", kernel_table())):
        model.zero_grad()
        h = st.h.clone().requires_grad_(True)
        alpha = st.alpha.clone().requires_grad_(True)
        g2 = model.build_graph()  # w depends on the parameters
        st2 = ActiveState(ids=st.ids, valid=st.valid, alpha=alpha, h=h)
        out = _step(table, model, g2, st2)
        (out.h.square().sum() + (out.alpha * 3).sum()).backward()
        leaves[name] = [h.grad, alpha.grad] + [
            p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for p in model.parameters()
        ]
    for r, f in zip(leaves["torch"], leaves["fused"], strict=True):
        torch.testing.assert_close(f, r, atol=1e-5, rtol=1e-4)
    assert any(t.abs().sum() > 0 for t in leaves["torch"])


def test_silent_state_gives_empty_step():
    model, g, st = _setup(seed=6)
    st = dataclasses.replace(st, valid=torch.zeros_like(st.valid), alpha=torch.zeros_like(st.alpha))
    with torch.no_grad():
        ref = _step(REF, model, g, st)
        fus = _step(kernel_table(), model, g, st)
    assert not fus.valid.any() and not ref.valid.any()
    assert fus.h.abs().sum() == 0 and fus.alpha.abs().sum() == 0


def test_fused_step_falls_back_for_stat_and_float64():
    """Statistical selection and float64 states take the same table's op-by-op step (bit for
    bit the unfused table's result)."""
    assert fused_applies("radix", torch.float32)
    assert not fused_applies("stat", torch.float32) and not fused_applies("radix", torch.float64)
    model, g, st = _setup(seed=7)
    with torch.no_grad():
        fus = _step(kernel_table(), model, g, st, "stat")
        ref = _step(kernel_table(fused=False), model, g, st, "stat")
        assert torch.equal(fus.ids, ref.ids) and torch.equal(fus.h, ref.h)
        model.double()
        g64 = model.build_graph()
        st64 = dataclasses.replace(st, alpha=st.alpha.double(), h=st.h.double())
        fus = _step(kernel_table(), model, g64, st64)
        ref = _step(kernel_table(fused=False), model, g64, st64)
    assert fus.h.dtype == torch.float64 and ref.valid.any()
    assert torch.equal(fus.ids, ref.ids) and torch.equal(fus.h, ref.h)


def test_slot_map():
    ids = torch.tensor([[1, 2, 4], [0, 0, 0], [0, 1, 2]], device=DEV)
    valid = torch.tensor([[True] * 3, [False] * 3, [True] * 3], device=DEV)
    sm = kstep.slot_map(ids, valid, 5).cpu()
    assert sm.tolist() == [[-1, 0, 1, -1, 2], [-1] * 5, [0, 1, 2, -1, -1]]


# ------------------------------------------------------------------------------ cost model
def _brute_force_recompute(graph, states) -> list[int]:
    """Per step: live in-edges j -> i with j active before the step and i a winner after it,
    counted by loops over the winners' in-slots."""
    out = []
    for (ids0, ok0), (ids1, ok1) in zip(states, states[1:], strict=False):
        total = 0
        for b in range(ids0.shape[0]):
            sources = set(ids0[b][ok0[b]].tolist())
            for i in ids1[b][ok1[b]].tolist():
                for s in range(graph.in_idx.shape[1]):
                    j = int(graph.in_idx[i, s])
                    total += bool(graph.in_mask[i, s]) and j in sources
        out.append(total)
    return out


def _model(seed=11, **kw):
    torch.manual_seed(seed)
    cfg = small_cfg(n_nodes=48, n_steps=2, hebbian=False, d_space=3, init_state="mean", **kw)
    return RSGN(5, 3, cfg).to(DEV), torch.randn(3, 6, 5, device=DEV)


def test_ledger_is_the_torch_targets_plus_the_recompute_term_and_a_dense_select():
    model, x = _model()
    spec = model.export()
    d = spec.hyper.d_hidden
    _, r_torch = get_backend("torch").prepare(spec)(x)
    _, r_fused = get_backend("triton").prepare(spec)(x)
    _, r_plain = get_backend("triton", fused=False).prepare(spec)(x)
    assert r_fused.details["fused_step"] and not r_plain.details["fused_step"]
    assert r_fused.active_fraction_per_step == r_torch.active_fraction_per_step
    trace = Trace()
    with torch.no_grad():
        graph = model.build_graph()
        forward(spec.weights, spec.hyper, x, REF, graph=graph, trace=trace)
    recompute = _brute_force_recompute(graph, trace.states)
    assert len(recompute) == spec.hyper.n_steps and sum(recompute) > 0
    assert r_fused.details["recomputed_in_edges_per_step"] == recompute
    ref = r_torch.ledger.to_dict()["counts_by_op"]
    fus = r_fused.ledger.to_dict()["counts_by_op"]
    assert r_plain.ledger.to_dict()["counts_by_op"] == ref  # op by op: the electronic model
    assert fus.keys() == ref.keys()
    b, n_nodes, steps = x.shape[0], spec.hyper.n_nodes, spec.hyper.n_steps
    for op, events in ref.items():
        assert fus[op].keys() == events.keys(), op
        for ev, n in events.items():
            if (op, ev) == ("select", "int_op_32b"):  # the fused step selects over all B N
                assert fus[op][ev] == 8 * b * n_nodes * steps, (op, ev)
                continue
            extra = sum(recompute) * d if (op, ev) == ("propagate", "mac_fp32") else 0
            assert fus[op][ev] == n + extra, (op, ev)
    # energy = counted events x per-event energies
    table = load_energy_table("electronic_45nm")
    want = sum(n * table.events[ev].joules() for ev, n in r_fused.ledger.totals().items())
    assert r_fused.energy.value == pytest.approx(want, rel=1e-12)
    assert r_fused.energy.value > r_torch.energy.value


def test_charge_run_adds_recompute_only_when_fused():
    model, x = _model(seed=12)
    spec = model.export()
    trace = Trace()
    with torch.no_grad():
        graph = model.build_graph()
        forward(spec.weights, spec.hyper, x, REF, graph=graph, trace=trace)
    table = load_energy_table("electronic_45nm")
    ref, plain, fused = CostLedger(table), CostLedger(table), CostLedger(table)
    electronic.charge_run(ref, spec, graph, trace)
    assert triton_cost.charge_run(plain, spec, graph, trace, fused=False) == []
    edges = triton_cost.charge_run(fused, spec, graph, trace, fused=True)
    assert edges == _brute_force_recompute(graph, trace.states)
    assert plain.to_dict()["counts_by_op"] == ref.to_dict()["counts_by_op"]
    mac = fused.counts["propagate"]["mac_fp32"] - ref.counts["propagate"]["mac_fp32"]
    assert mac == sum(edges) * spec.hyper.d_hidden
    n_sel = x.shape[0] * spec.hyper.n_nodes * spec.hyper.n_steps
    assert fused.counts["select"]["int_op_32b"] == 8 * n_sel


@pytest.mark.parametrize("b,n,k,eps", [(3, 37, 5, 0.0), (2, 2500, 40, 0.3), (4, 9, 20, -1.0)])
def test_multi_program_radix_topk_matches_reference(b, n, k, eps):
    from rsgn.kernels.select import radix_topk_dense
    from rsgn.selection import mask_to_ids, radix_select_mask

    torch.manual_seed(n)
    s = torch.randint(-3, 4, (b, n)).float() / 4  # heavy ties, both signs
    s[0, :3] = float("-inf")
    s = s.to(DEV)
    width = min(k, n)
    ids, valid = radix_topk_dense(s, k, eps, width)
    ref_ids, ref_valid = mask_to_ids((radix_select_mask(s.cpu(), k) & (s.cpu() > eps)), width)
    assert torch.equal(valid.cpu(), ref_valid)
    assert torch.equal(torch.where(valid, ids, 0).cpu(), torch.where(ref_valid, ref_ids, 0))
