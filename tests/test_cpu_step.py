"""The torch target's compiled CPU path (numba kernels, ``compile='numba'``) against the
definition, :mod:`rsgn.ops`: forward values, every gradient and the exact winners, over odd
shapes (Liger-style: shapes x tolerances, forward and backward)."""

from __future__ import annotations

import pytest
import torch

from rsgn import ops
from rsgn.backends import get_backend
from rsgn.backends.torch import compiled
from rsgn.config import ModelConfig
from rsgn.errors import RsgnError
from rsgn.forward import build_graph
from rsgn.model import RSGN
from rsgn.state import ActiveState

# (n_nodes, d_hidden, d_space, k_in, k_sprout, target_active, inhibition, radius, batch)
SHAPES = [
    (37, 7, 3, 5, 1, 0.2, 0.5, 3.0, 3),  # odd everything, wide inhibition neighbourhoods
    (64, 16, 8, 8, 2, 0.1, 0.0, 0.3, 5),  # no inhibition
    (50, 33, 4, 6, 0, 0.5, 1.5, 2.0, 4),  # no sprout slots, a large cap
    (129, 12, 3, 16, 4, 0.03, 0.5, 1.0, 2),  # cap 3, most nodes reached
    (20, 5, 2, 4, 3, 1.0, 0.7, 4.0, 1),  # cap = N (every candidate wins)
]
STEP_TOL = dict(rtol=1e-4, atol=2e-5)


def _model(n, d, dsp, k_in, k_sp, frac, beta, radius, seed=0) -> RSGN:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        n_nodes=n,
        d_hidden=d,
        d_space=dsp,
        k_in=k_in,
        k_sprout=k_sp,
        target_active=frac,
        inhibition_strength=beta,
        inhibition_radius=radius,
        init_radius=0.6,
        affinity_rank=4,
        encoder_dim=6,
        n_steps=3,
        hebbian=False,
    )
    return RSGN(5, 3, cfg)


def _ignited(m: RSGN, bsz: int, seed: int = 1):
    """The graph and an ignited state with random (differentiable) alpha and h."""
    torch.manual_seed(seed)
    w, hp = m.weights(), m.hyper()
    g = build_graph(w, hp)
    dt = m.pos_v.dtype
    x = torch.randn(bsz, 7, 5, dtype=dt)
    feats = ops.encode(x, w.enc_w, w.enc_b)
    sp, sa = ops.spark_points(feats, w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2, w.spark_scale)
    st = ops.TABLE.ignite(
        sp, sa, g, sigma=hp.sigma_ign, eps=hp.eps_active, cap=hp.cap, method="radix"
    )
    valid = st.valid.clone()
    valid[0, ::2] = False  # holes in the active set
    if bsz > 2:
        valid[-1] = False  # a silent sample
    alpha = (torch.rand(valid.shape, dtype=dt) * valid).requires_grad_()
    h = (torch.randn(*valid.shape, hp.d_hidden, dtype=dt) * valid.unsqueeze(-1)).requires_grad_()
    return g, hp, st.ids, valid, alpha, h


def _steps(m, g, hp, ids, valid, alpha, h, step_fn, n_steps=3):
    st = ActiveState(ids=ids, valid=valid, alpha=alpha, h=h)
    w = m.weights()
    out = []
    for _ in range(n_steps):
        st = step_fn(
            st,
            g,
            w.h_w,
            w.h_b,
            w.theta,
            w.ln_w,
            w.ln_b,
            gamma=hp.gamma,
            temperature=hp.temperature,
            inhibition=hp.inhibition_strength,
            cap=hp.cap,
            eps=hp.eps_active,
            method="radix",
        )
        out.append(st)
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=[f"N{s[0]}-d{s[1]}-B{s[-1]}" for s in SHAPES])
def test_fused_step_matches_the_reference_forward_winners_and_every_gradient(shape):
    *cfg, bsz = shape
    m = _model(*cfg)
    g, hp, ids, valid, alpha, h = _ignited(m, bsz)
    w = m.weights()
    wrt = [alpha, h, w.h_w, w.h_b, w.theta, w.ln_w, w.ln_b, m.pos_v, m.aff_u, m.aff_v, m.level]
    torch.manual_seed(2)
    results = {}
    for name, fn in (("ref", ops.step), ("numba", compiled.fused_step)):
        outs = _steps(m, g, hp, ids, valid, alpha, h, fn)
        if name == "ref":
            gh = [torch.randn_like(o.h) for o in outs]
            ga = [torch.randn_like(o.alpha) for o in outs]
        terms = zip(outs, gh, ga, strict=True)
        loss = sum((o.h * a).sum() + (o.alpha * b).sum() for o, a, b in terms)
        grads = torch.autograd.grad(loss, wrt, retain_graph=True, allow_unused=True)
        results[name] = (outs, grads)
    for r, c in zip(results["ref"][0], results["numba"][0], strict=True):
        assert torch.equal(r.ids, c.ids) and torch.equal(r.valid, c.valid)  # exact winners
        torch.testing.assert_close(c.h, r.h, **STEP_TOL)
        torch.testing.assert_close(c.alpha, r.alpha, **STEP_TOL)
    names = ["alpha", "h", "W_h", "b_h", "theta", "ln_w", "ln_b", "pos_v", "aff_u", "aff_v", "lvl"]
    for name, r, c in zip(names, results["ref"][1], results["numba"][1], strict=True):
        if r is None:
            assert c is None or not c.any(), name
            continue
        scale = max(1.0, float(r.abs().max()))
        torch.testing.assert_close(c, r, rtol=1e-4, atol=2e-5 * scale, msg=name)


def test_fused_step_gradient_reaches_the_inhibition_neighbours():
    """With inhibition the losers next to a winner get a gradient through the mean of R(i);
    without it, only the winners' own thresholds do."""
    m = _model(37, 7, 3, 5, 1, 0.2, 0.5, 3.0)
    g, hp, ids, valid, alpha, h = _ignited(m, 3)
    assert g.inh_valid.sum(1).max() > 1
    out = _steps(m, g, hp, ids, valid, alpha, h, compiled.fused_step, n_steps=1)[0]
    (gt,) = torch.autograd.grad(out.alpha.sum(), [m.theta])
    winners = set(out.ids[out.valid].tolist())
    assert set(gt.nonzero().flatten().tolist()) - winners  # losers in R(winners) too


@pytest.mark.parametrize("n,cap", [(1, 1), (17, 3), (64, 64), (300, 7), (5000, 250)])
def test_ignition_select_is_the_exact_radix_select_with_ties_to_the_lower_index(n, cap):
    torch.manual_seed(n)
    score = torch.randn(6, n)
    score[1] = 0.25  # a row of ties
    score[2, ::3] = score[2, 0]  # ties at and around the k-th value
    score[3, : n // 2] = float("-inf")
    want = ops.select_dense(score, cap, "radix")
    got = compiled.select_dense(score, cap, "radix")
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("n,t,dim", [(1, 1, 2), (33, 5, 3), (300, 17, 8), (700, 64, 5)])
def test_nearest_spark_matches_the_reference(n, t, dim):
    torch.manual_seed(t)
    sp = torch.randn(4, t, dim) * 0.3
    sa = 1 - (sp * sp).sum(-1)
    x = torch.randn(n, dim) * 0.3
    a = 1 - (x * x).sum(-1)
    dref, tref = ops.nearest_spark(sp, sa, x, a)
    d, tok = compiled.nearest_spark(sp, sa, x, a)
    torch.testing.assert_close(d, dref, rtol=2e-5, atol=1e-7)
    assert (tok == tref).float().mean() > 0.99  # argmin ties to float rounding aside


def test_model_forward_and_every_parameter_gradient_match_the_definition():
    m = _model(64, 16, 8, 8, 2, 0.1, 0.5, 1.0)
    x = torch.randn(6, 7, 5)
    y = torch.randint(0, 3, (6,))
    res = {}
    for name, table in (("ref", ops.TABLE), ("numba", compiled.compiled_table())):
        m.zero_grad()
        out = m(x, ops_table=table)
        torch.nn.functional.cross_entropy(out.logits, y).backward()
        res[name] = (out, {k: p.grad.clone() for k, p in m.named_parameters()})
    (ro, rg), (co, cg) = res["ref"], res["numba"]
    torch.testing.assert_close(co.logits, ro.logits, rtol=1e-5, atol=1e-6)
    assert co.active_fraction_per_step == ro.active_fraction_per_step
    for k in rg:
        scale = max(1.0, float(rg[k].abs().max()))
        torch.testing.assert_close(cg[k], rg[k], rtol=1e-4, atol=1e-5 * scale, msg=k)


def test_results_do_not_depend_on_the_thread_count():
    import numba

    m = _model(37, 7, 3, 5, 1, 0.2, 0.5, 3.0)
    g, hp, ids, valid, alpha, h = _ignited(m, 4)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            torch.set_num_threads(threads)
            out = _steps(m, g, hp, ids, valid, alpha, h, compiled.fused_step)[-1]
            grads = torch.autograd.grad(
                out.h.sum() + out.alpha.sum(), [alpha, h, m.theta, m.pos_v], retain_graph=True
            )
            runs.append((out.h, out.alpha, *grads))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)


def test_kernels_fall_back_to_the_definition_where_they_do_not_apply():
    m = _model(37, 7, 3, 5, 1, 0.2, 0.5, 3.0).double()
    g, hp, ids, valid, alpha, h = _ignited(m, 3)
    ref = _steps(m, g, hp, ids, valid, alpha, h, ops.step)[-1]
    got = _steps(m, g, hp, ids, valid, alpha, h, compiled.fused_step)[-1]  # float64
    assert torch.equal(ref.h, got.h)
    assert not compiled.fused_applies("stat", h.float())
    assert compiled.fused_applies("radix", h.float())
    score = torch.randn(3, 40)
    for a, b in zip(
        compiled.select_dense(score, 5, "stat"), ops.select_dense(score, 5, "stat"), strict=True
    ):
        assert torch.equal(a, b)


def test_torch_target_compile_option_is_typed_and_the_default_promises_its_tolerance():
    assert get_backend("torch").options.compile == "numba"
    assert get_backend("torch", compile="eager").ops is ops.TABLE
    assert get_backend("torch", compile="eager").capabilities().reference_tol == 0.0
    assert get_backend("torch").capabilities().reference_tol == pytest.approx(1e-5)
    with pytest.raises(RsgnError, match="'compile': 'inductor' is not one of numba, eager"):
        get_backend("torch", compile="inductor")
    spec = _model(64, 16, 8, 8, 2, 0.1, 0.5, 1.0).export()
    x = torch.randn(9, 7, 5)
    eager, _ = get_backend("torch", compile="eager").prepare(spec)(x)
    fast, rep = get_backend("torch").prepare(spec)(x)
    rel = float((fast - eager).abs().max() / eager.abs().max())
    assert rel <= get_backend("torch").capabilities().reference_tol
    assert (
        rep.ledger.totals()
        == get_backend("torch", compile="eager").prepare(spec)(x)[1].ledger.totals()
    )
