"""The Triton backend's fused step (``kernels.step``) against the reference decomposition
propagate -> inhibit -> select -> update of the torch backend (interpreter on CPU, tiny sizes)."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

pytest.importorskip("triton", reason="triton is not installed (pip install triton)")

from rsgn.backends import get_backend  # noqa: E402
from rsgn.backends.cost import CostLedger, load_energy_table  # noqa: E402
from rsgn.backends.triton_backend import TritonBackend  # noqa: E402
from rsgn.kernels import step as kstep  # noqa: E402
from rsgn.model import RSGN  # noqa: E402
from tests.conftest import small_cfg  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _setup(seed=0, n=50, inhibition=0.5, d=12, k_in=6, target=0.1, b=3):
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
    ref = get_backend("torch")
    with torch.no_grad():
        g = model.build_graph(ref)
        sp, sa = model.sparks(x)
        st = ref.ignite(
            sp, sa, g, sigma=cfg.sigma_ign, eps=cfg.eps_active, cap=cfg.k_active, method="radix"
        )
    st.h = torch.randn(*st.ids.shape, d, device=DEV) * st.valid.unsqueeze(-1)
    return model, g, st


def _step(be, model, g, st):
    cfg = model.cfg
    return be.step(
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
        method="radix",
    )


@pytest.mark.parametrize("seed,inhibition", [(0, 0.5), (1, 0.0), (2, 2.0)])
def test_fused_step_equals_decomposition(seed, inhibition):
    model, g, st = _setup(seed=seed, inhibition=inhibition)
    with torch.no_grad():
        ref = _step(get_backend("torch"), model, g, st)
        fus = _step(TritonBackend(), model, g, st)
    assert torch.equal(fus.valid, ref.valid) and torch.equal(fus.ids, ref.ids)
    assert ref.valid.any()
    torch.testing.assert_close(fus.alpha, ref.alpha, atol=2e-6, rtol=2e-5)
    torch.testing.assert_close(fus.h, ref.h, atol=2e-5, rtol=2e-5)


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
    with torch.no_grad():
        ref = _step(get_backend("torch"), model, g, st)
        base = _step(TritonBackend(), model, g, st)
        for switch in variant.split("+"):
            monkeypatch.setitem(kstep.TUNING, switch, True)
        monkeypatch.setitem(kstep.TUNING, "STORE_ROWS", rows)
        fus = _step(TritonBackend(), model, g, st)
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
        a = model(x, backend=TritonBackend(fused=True))
        b = model(x, backend=TritonBackend(fused=False))
    assert a.active_fraction_per_step == b.active_fraction_per_step
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)


def test_fused_step_gradients_match_reference():
    model, g, st = _setup(seed=5)
    leaves = {}
    for name, be in (("torch", get_backend("torch")), ("fused", TritonBackend())):
        model.zero_grad()
        h = st.h.clone().requires_grad_(True)
        alpha = st.alpha.clone().requires_grad_(True)
        g2 = model.build_graph(get_backend("torch"))  # w depends on the parameters
        st2 = type(st)(ids=st.ids, valid=st.valid, alpha=alpha, h=h)
        out = _step(be, model, g2, st2)
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
    st.valid = torch.zeros_like(st.valid)
    st.alpha = torch.zeros_like(st.alpha)
    with torch.no_grad():
        ref = _step(get_backend("torch"), model, g, st)
        fus = _step(TritonBackend(), model, g, st)
    assert not fus.valid.any() and not ref.valid.any()
    assert fus.h.abs().sum() == 0 and fus.alpha.abs().sum() == 0


def test_slot_map():
    ids = torch.tensor([[1, 2, 4], [0, 0, 0], [0, 1, 2]], device=DEV)
    valid = torch.tensor([[True] * 3, [False] * 3, [True] * 3], device=DEV)
    sm = kstep.slot_map(ids, valid, 5).cpu()
    assert sm.tolist() == [[-1, 0, 1, -1, 2], [-1] * 5, [0, 1, 2, -1, -1]]


def test_fused_step_counts_events_like_the_decomposition():
    model, g, st = _setup(seed=7)
    table = load_energy_table("electronic_45nm")
    counts = {}
    for name, be in (("torch", get_backend("torch")), ("fused", TritonBackend())):
        be.ledger = CostLedger(table)
        with torch.no_grad():
            _step(be, model, g, st)
        counts[name] = be.ledger.to_dict()
        be.ledger = None
    ref, fus = counts["torch"], counts["fused"]
    assert fus["counts"]["transcendental_fp32"] == ref["counts"]["transcendental_fp32"]
    # the fused step recomputes h~ for the winners and selects over all B x N scores
    assert fus["counts"]["mac_fp32"] > ref["counts"]["mac_fp32"]
    assert fus["counts"]["int_op_32b"] > ref["counts"]["int_op_32b"]


@pytest.mark.parametrize("b,n,k,eps", [(3, 37, 5, 0.0), (2, 2500, 40, 0.3), (4, 9, 20, -1.0)])
def test_multi_program_radix_topk_matches_reference(b, n, k, eps):
    from rsgn.backends.selection import mask_to_ids, radix_select_mask
    from rsgn.kernels.select import radix_topk_dense

    torch.manual_seed(n)
    s = torch.randint(-3, 4, (b, n)).float() / 4  # heavy ties, both signs
    s[0, :3] = float("-inf")
    s = s.to(DEV)
    width = min(k, n)
    ids, valid = radix_topk_dense(s, k, eps, width)
    ref_ids, ref_valid = mask_to_ids((radix_select_mask(s.cpu(), k) & (s.cpu() > eps)), width)
    assert torch.equal(valid.cpu(), ref_valid)
    assert torch.equal(torch.where(valid, ids, 0).cpu(), torch.where(ref_valid, ref_ids, 0))
