"""The op definitions (rsgn/ops.py) and their sparse blocks (rsgn/sparse.py) against
brute-force loops over nodes, edges and tokens in float64, with boundaries: distances exactly
at the inhibition radius, alphas exactly at eps, ties in the select, empty active sets,
chunked ignition, even and odd encoder widths."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from rsgn import geometry as G
from rsgn import ops
from rsgn.sparse import edge_message_sum, gather_out_edges, out_csr, row_norm
from rsgn.state import ActiveState, Candidates

DT = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _graph(n: int = 7, k: int = 3, d: int = 2, seed: int = 0, radius: float = 1.2):
    """A small random graph (float64): some dead slots, one node without live in-edges."""
    g = _gen(seed)
    x, a = G.expmap0_with_conformal(torch.randn(n, d, generator=g, dtype=DT) * 0.8)
    in_idx = torch.randint(0, n, (n, k), generator=g)
    in_mask = torch.rand(n, k, generator=g) > 0.25
    in_mask[n - 1] = False  # a node nobody reaches
    in_mask[0] = True
    u = torch.randn(n, 4, generator=g, dtype=DT)
    v = torch.randn(n, 4, generator=g, dtype=DT)
    level = torch.randn(n, generator=g, dtype=DT)
    hebb = torch.randn(n, k, generator=g, dtype=DT) * 0.1
    gr = ops.graph(x, a, u, v, level, hebb, in_idx, in_mask, tau=0.7, inhibition_radius=radius)
    return gr, (u, v, level, hebb)


# ------------------------------------------------------------------------------ front end
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_token_conv_matches_a_loop_with_same_padding(width):
    g = _gen(width)
    x = torch.randn(2, 5, 3, generator=g, dtype=DT)
    w = torch.randn(4, 3, width, generator=g, dtype=DT)
    b = torch.randn(4, generator=g, dtype=DT)
    y = ops.token_conv(x, w, b)
    left = (width - 1) // 2
    want = torch.zeros(2, 5, 4, dtype=DT) + b
    for t in range(5):
        for u in range(width):
            src = t + u - left
            if 0 <= src < 5:
                want[:, t] += x[:, src] @ w[:, :, u].T
    assert y.shape == (2, 5, 4)
    assert torch.allclose(y, want, rtol=1e-12, atol=1e-12)
    assert torch.allclose(ops.encode(x, w, b), F.gelu(want), rtol=1e-12, atol=1e-12)


def test_encode_without_encoder_is_the_input():
    x = torch.randn(2, 5, 3)
    assert ops.encode(x, None, None) is x


def test_spark_points_closed_form():
    g = _gen(1)
    e = torch.randn(2, 5, 3, generator=g, dtype=DT)
    w1, b1 = torch.randn(8, 3, generator=g, dtype=DT), torch.randn(8, generator=g, dtype=DT)
    w2, b2 = torch.randn(2, 8, generator=g, dtype=DT), torch.randn(2, generator=g, dtype=DT)
    scale = torch.tensor(1.7, dtype=DT)
    s, a = ops.spark_points(e, w1, b1, w2, b2, scale)
    f = torch.tanh(F.gelu(e @ w1.T + b1) @ w2.T + b2)
    assert torch.allclose(s, G.expmap0(scale * f), rtol=1e-13)
    assert torch.allclose(a, 1 - (s * s).sum(-1), rtol=1e-10)


# ------------------------------------------------------------------------------ graph
def test_edge_distances_weights_and_csr_against_loops():
    gr, (u, v, level, hebb) = _graph()
    n, k = gr.in_idx.shape
    for i in range(n):
        for s in range(k):
            j = int(gr.in_idx[i, s])
            d = G.dist(gr.x[i], gr.x[j])
            got = float(ops.edge_distances(gr.x, gr.a, gr.in_idx)[i, s])
            assert got == pytest.approx(float(d), abs=1e-12)
            want = 0.0
            if gr.in_mask[i, s]:
                aff = float(u[i] @ v[j] + hebb[i, s])
                lvl = math.log1p(math.exp(float(level[i] - level[j]) + 1.0))
                want = lvl * math.exp(-float(d) / 0.7) / (1 + math.exp(-aff))
            assert gr.w[i, s].item() == pytest.approx(want, rel=1e-12, abs=1e-300)
    # the out-edge CSR lists, per source j, the flat slots i*K+s of its live out-edges
    for j in range(n):
        got = gr.out_edge[gr.out_ptr[j] : gr.out_ptr[j + 1]].tolist()
        want = [
            i * k + s
            for i in range(n)
            for s in range(k)
            if gr.in_mask[i, s] and gr.in_idx[i, s] == j
        ]
        assert got == want
    assert gr.out_ptr[0] == 0 and gr.out_ptr[-1] == int(gr.in_mask.sum())


def test_inhibition_slots_pack_neighbours_strictly_within_the_radius():
    d = torch.tensor([[0.5, 1.0, 0.2, 3.0], [1.0, 1.0, 1.0, 1.0], [0.9, 0.1, 0.3, 0.0]], dtype=DT)
    in_idx = torch.tensor([[4, 5, 6, 7], [1, 2, 3, 4], [9, 8, 7, 6]])
    in_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    idx, valid = ops.inhibition_slots(d, in_idx, in_mask, radius=1.0)
    # d == radius is outside; the dead slot with d = 0 is outside; order kept
    assert idx.shape == (3, 3)
    assert valid.tolist() == [[True, True, False], [False] * 3, [True, True, True]]
    assert idx[0, :2].tolist() == [4, 6] and idx[2].tolist() == [9, 8, 7]
    idx, valid = ops.inhibition_slots(d, in_idx, in_mask, radius=0.05)
    assert idx.shape == (3, 1) and not valid.any()  # at least one slot


def test_graph_bundles_its_parts():
    gr, (u, v, level, hebb) = _graph(radius=1.0)
    d = ops.edge_distances(gr.x, gr.a, gr.in_idx)
    w = ops.edge_weights(d, u, v, level, hebb, gr.in_idx, gr.in_mask, tau=0.7)
    assert torch.equal(gr.w, w)
    ii, iv = ops.inhibition_slots(d, gr.in_idx, gr.in_mask, radius=1.0)
    assert torch.equal(gr.inh_idx, ii) and torch.equal(gr.inh_valid, iv)
    ptr, oe = out_csr(gr.in_idx, gr.in_mask)
    assert torch.equal(gr.out_ptr, ptr) and torch.equal(gr.out_edge, oe)
    seen = []

    def dist(x, a, in_idx):
        seen.append(in_idx.shape)
        return ops.edge_distances(x, a, in_idx) * 2

    g2 = ops.graph(gr.x, gr.a, u, v, level, hebb, gr.in_idx, gr.in_mask, tau=0.7,
                   inhibition_radius=1.0, distances=dist)  # fmt: skip
    assert seen == [gr.in_idx.shape]
    assert torch.allclose(
        g2.w, ops.edge_weights(2 * d, u, v, level, hebb, gr.in_idx, gr.in_mask, tau=0.7)
    )


# ------------------------------------------------------------------------------ ignite
def _sparks(b: int = 2, t: int = 3, d: int = 2, seed: int = 3):
    return G.expmap0_with_conformal(torch.randn(b, t, d, generator=_gen(seed), dtype=DT) * 0.7)


@pytest.mark.parametrize(
    "chunk_elems,bt", [(1 << 24, (2, 3)), (6, (2, 3)), (1, (2, 3)), (7, (3, 2))]
)
def test_nearest_spark_is_the_min_over_tokens_in_any_chunking(monkeypatch, chunk_elems, bt):
    monkeypatch.setattr(ops, "_IGNITE_CHUNK_ELEMS", chunk_elems)
    gr, _ = _graph()
    s, sa = _sparks(*bt)
    dmin, tok = ops.nearest_spark(s, sa, gr.x, gr.a)
    delta = G.delta_from_parts(s.unsqueeze(2), gr.x, sa.unsqueeze(2), gr.a)  # [B, T, N]
    want, wtok = delta.min(1)
    assert torch.allclose(dmin, want, rtol=1e-10, atol=1e-15)
    assert torch.equal(tok, wtok)
    # a spark sitting on a node: delta exactly 0, never negative
    s2 = s.clone()
    s2[0, 1] = gr.x[2]
    sa2 = sa.clone()
    sa2[0, 1] = gr.a[2]
    dmin2, tok2 = ops.nearest_spark(s2, sa2, gr.x, gr.a)
    assert dmin2[0, 2].item() == pytest.approx(0.0, abs=1e-15) and tok2[0, 2] == 1
    assert (dmin2 >= 0).all()


def test_ignition_key_and_unknown_method():
    dmin = torch.tensor([[0.0, 1e-40, 1.0, math.e]])
    assert torch.equal(ops.ignition_key(dmin, "radix"), -dmin)
    st = ops.ignition_key(dmin, "stat")
    assert torch.allclose(st, torch.tensor([[30 * math.log(10)] * 2 + [0.0, -1.0]]), rtol=1e-6)
    for fn in (
        lambda: ops.ignition_key(dmin, "top"),
        lambda: ops.select_dense(dmin, 1, "top"),
        lambda: ops.select_rows(dmin[0], torch.zeros(4, dtype=torch.long), 1, 1, "top"),
    ):
        with pytest.raises(ValueError, match=r"unknown selection method 'top' \(radix, stat\)"):
            fn()  # fmt: skip


def test_select_dense_radix_and_stat():
    score = torch.tensor([[0.1, 0.9, 0.5, 0.9, -1.0], [3.0, 2.0, 1.0, 0.0, -1.0]])
    ids, valid = ops.select_dense(score, 2, "radix")
    assert ids.tolist() == [[1, 3], [0, 1]] and valid.all()
    ids, valid = ops.select_dense(score, 9, "radix")  # width = min(cap, N)
    assert ids.shape == (2, 5) and valid.all()
    s = torch.tensor([[1.0, 2.0, 2.0, 3.0, float("-inf"), float("-inf")]])
    ids, valid = ops.select_dense(s, 2, "stat")  # -inf: not a candidate (theta = mean = 2)
    assert ids[valid].tolist() == [1, 2, 3] and ids.shape == (1, 3)


def test_ignite_closed_form_with_the_eps_cut():
    gr, _ = _graph()
    s, sa = _sparks()
    sigma, cap = 0.9, 4
    dmin, tok = ops.nearest_spark(s, sa, gr.x, gr.a)
    d_all = 2 * torch.asinh(dmin.sqrt())
    alpha_all = torch.exp(-(d_all**2) / (2 * sigma**2))
    # eps exactly at the 2nd largest alpha of sample 0: that node is cut (alpha > eps)
    eps = float(alpha_all[0].sort(descending=True).values[1])
    st = ops.ignite(s, sa, gr, sigma=sigma, eps=eps, cap=cap, method="radix")
    assert st.ids.shape == (2, cap)
    for b in range(2):
        top = set(torch.topk(alpha_all[b], cap).indices.tolist())
        assert set(st.ids[b].tolist()) == top
        for w in range(cap):
            i = int(st.ids[b, w])
            assert st.token[b, w] == tok[b, i]
            keep = alpha_all[b, i].item() > eps
            assert bool(st.valid[b, w]) == keep
            want = alpha_all[b, i].item() if keep else 0.0
            assert st.alpha[b, w].item() == pytest.approx(want, rel=1e-9, abs=1e-300)
    assert int(st.valid[0].sum()) == 1


def test_token_distances_and_attend_closed_form():
    gr, _ = _graph()
    s, sa = _sparks()
    ids = torch.tensor([[0, 3], [6, 6]])
    d = ops.token_distances(s, sa, gr, ids)
    assert d.shape == (2, 2, 3)
    for b in range(2):
        for w in range(2):
            for t in range(3):
                want = G.dist(s[b, t], gr.x[ids[b, w]])
                assert d[b, w, t].item() == pytest.approx(want.item(), rel=1e-10)
    feats = torch.randn(2, 3, 5, generator=_gen(4), dtype=DT)
    m = ops.attend(feats, d, sigma=0.8)
    logits = -(d**2) / (2 * 0.8**2)
    pi = logits.exp() / logits.exp().sum(-1, keepdim=True)
    assert torch.allclose(m, torch.einsum("bwt,btf->bwf", pi, feats), rtol=1e-12)


# ------------------------------------------------------------------------------ one step
def _state(gr, b: int = 2, width: int = 3, dh: int = 4, seed: int = 5):
    g = _gen(seed)
    ids = torch.tensor([[0, 2, 5], [3, 0, 1]])[:b, :width]
    valid = torch.tensor([[True, True, False], [True, True, True]])[:b, :width]
    alpha = torch.rand(b, width, generator=g, dtype=DT) * valid
    h = torch.randn(b, width, dh, generator=g, dtype=DT) * valid.unsqueeze(-1)
    return ActiveState(ids=ids, valid=valid, alpha=alpha, h=h)


def _params(n: int, dh: int = 4, seed: int = 6):
    g = _gen(seed)
    return (
        torch.randn(dh, dh, generator=g, dtype=DT),
        torch.randn(dh, generator=g, dtype=DT),
        torch.randn(n, generator=g, dtype=DT),
        torch.randn(dh, generator=g, dtype=DT),
        torch.randn(dh, generator=g, dtype=DT),
    )


def _ref_propagate(st, gr, w_h, b_h, theta, gamma, temp):
    """Dense loops: candidates (b, i) in ascending order, h~, alpha, prev_row."""
    n, k = gr.in_idx.shape
    out = []
    for b in range(st.ids.shape[0]):
        act = {
            int(st.ids[b, s]): b * st.ids.shape[1] + s
            for s in range(st.ids.shape[1])
            if st.valid[b, s]
        }
        reached = {
            i
            for i in range(n)
            for s in range(k)
            if gr.in_mask[i, s] and int(gr.in_idx[i, s]) in act
        }
        for i in sorted(reached | set(act)):
            ht = b_h.clone()
            for s in range(k):
                j = int(gr.in_idx[i, s])
                if gr.in_mask[i, s] and j in act:
                    r = act[j]
                    hj = st.h.reshape(-1, st.h.shape[-1])[r]
                    ht = ht + gr.w[i, s] * st.alpha.reshape(-1)[r] * (w_h @ hj)
            a_prev = st.alpha.reshape(-1)[act[i]] if i in act else 0.0
            alpha = torch.sigmoid((a_prev + gamma * ht.norm() - theta[i]) / temp)
            out.append((b, i, ht, alpha, act.get(i, -1)))
    return out


def test_propagate_matches_dense_loops():
    gr, _ = _graph()
    st = _state(gr)
    w_h, b_h, theta, *_ = _params(gr.n_nodes)
    c = ops.propagate(st, gr, w_h, b_h, theta, gamma=0.7, temperature=0.4)
    ref = _ref_propagate(st, gr, w_h, b_h, theta, 0.7, 0.4)
    assert c.n_batch == 2
    assert c.batch.tolist() == [r[0] for r in ref] and c.node.tolist() == [r[1] for r in ref]
    assert torch.allclose(c.htilde, torch.stack([r[2] for r in ref]), rtol=1e-12, atol=1e-12)
    assert torch.allclose(c.alpha, torch.stack([r[3] for r in ref]), rtol=1e-12)
    assert c.prev_row.tolist() == [r[4] for r in ref]


def test_soft_threshold_closed_form():
    a = torch.tensor([0.2, 0.0], dtype=DT)
    h = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=DT)
    th = torch.tensor([1.0, -0.5], dtype=DT)
    got = ops.soft_threshold(a, h, th, gamma=0.5, temperature=0.25)
    want = [1 / (1 + math.exp(-(0.2 + 2.5 - 1.0) / 0.25)), 1 / (1 + math.exp(-0.5 / 0.25))]
    assert got.tolist() == pytest.approx(want, rel=1e-14)


def _cands(alpha, batch, node, n_batch=2, dh=3):
    m = len(alpha)
    return Candidates(
        batch=torch.tensor(batch), node=torch.tensor(node),
        htilde=torch.arange(m * dh, dtype=DT).reshape(m, dh) / 7 - 1,
        alpha=torch.tensor(alpha, dtype=DT), prev_row=torch.full((m,), -1), n_batch=n_batch,
    )  # fmt: skip


def test_inhibit_is_alpha_over_one_plus_beta_mean_of_candidate_neighbours():
    gr, _ = _graph(radius=3.0)
    alpha = [0.9, 0.5, 0.3, 0.8, 0.6, 0.4]
    c = _cands(alpha, [0, 0, 0, 1, 1, 1], [1, 4, 5, 2, 3, 6])
    # R(5) = {5, 6, 4} (6 is no candidate of sample 0), R(2) = {4} (no candidate of sample 1)
    assert gr.inh_idx[5][gr.inh_valid[5]].tolist() == [5, 6, 4]
    assert gr.inh_idx[2][gr.inh_valid[2]].tolist() == [4]
    got = ops.inhibit(c, gr, strength=0.6)
    for r in range(6):
        b, i = int(c.batch[r]), int(c.node[r])
        nb = [int(j) for j, ok in zip(gr.inh_idx[i], gr.inh_valid[i], strict=True) if ok]
        vals = []
        for j in nb:
            rows = [q for q in range(6) if int(c.batch[q]) == b and int(c.node[q]) == j]
            vals.append(alpha[rows[0]] if rows else 0.0)
        mean = sum(vals) / len(vals) if vals else 0.0
        assert got[r].item() == pytest.approx(alpha[r] / (1 + 0.6 * mean), rel=1e-13)
    assert ops.inhibit(c, gr, strength=0) is c.alpha
    assert (got < c.alpha).any() and (got <= c.alpha).all()


def test_select_top_cap_per_sample_ties_and_eps():
    #           sample 0 ------------------  sample 1 ---------
    node = [1, 2, 4, 5, 6, 0, 3, 6]
    batch = [0, 0, 0, 0, 0, 1, 1, 1]
    score = torch.tensor([0.5, 0.7, 0.5, 0.9, 0.2, 0.05, 0.3, 0.3], dtype=DT)
    ids, row, valid = ops.select(
        torch.tensor(batch), torch.tensor(node), score, 2, 7, cap=3, eps=0.05, method="radix"
    )
    # sample 0: 0.9 (5), 0.7 (2), 0.5 tie -> node 1 (lower row); packed in candidate order
    assert ids[0].tolist() == [1, 2, 5] and row[0].tolist() == [0, 1, 3] and valid[0].all()
    # sample 1: 0.05 is not > eps
    assert ids[1].tolist() == [3, 6, 0] and row[1].tolist() == [6, 7, -1]
    assert valid[1].tolist() == [True, True, False]
    ids, row, valid = ops.select(
        torch.tensor(batch), torch.tensor(node), score, 2, 7, cap=9, eps=0.0, method="radix"
    )
    assert ids.shape == (2, 7) and valid.sum(1).tolist() == [5, 3]
    ids, row, valid = ops.select(
        torch.tensor(batch), torch.tensor(node), score, 2, 7, cap=2, eps=0.0, method="stat"
    )
    assert ids.shape[1] == int(valid.sum(1).max()) >= 1
    assert set(ids[0][valid[0]].tolist()) <= {1, 2, 4, 5}
    ids, row, valid = ops.select(
        torch.tensor(batch), torch.tensor(node), score, 2, 7, cap=2, eps=5.0, method="stat"
    )
    assert ids.shape == (2, 1) and not valid.any() and row.tolist() == [[-1], [-1]]


def test_update_layer_norm_residual_and_the_empty_case():
    dh = 3
    c = _cands([0.9, 0.5, 0.3], [0, 0, 1], [1, 4, 2], dh=dh)
    c = Candidates(c.batch, c.node, c.htilde, c.alpha, torch.tensor([0, -1, 2]), 2)
    prev_h = torch.randn(2, 2, dh, generator=_gen(8), dtype=DT)
    prev = ActiveState(
        ids=torch.zeros(2, 2, dtype=torch.long),
        valid=torch.ones(2, 2, dtype=torch.bool),
        alpha=torch.ones(2, 2, dtype=DT),
        h=prev_h,
    )
    alpha = torch.tensor([0.8, 0.4, 0.6], dtype=DT)
    ids = torch.tensor([[1, 4], [2, 9]])
    row = torch.tensor([[0, 1], [2, -1]])
    valid = torch.tensor([[True, True], [True, False]])
    lw, lb = torch.tensor([1.0, 2.0, 0.5], dtype=DT), torch.tensor([0.1, 0.0, -0.2], dtype=DT)
    out = ops.update(c, alpha, prev, ids, row, valid, lw, lb)
    flat = prev_h.reshape(-1, dh)

    def ln(z):
        return (z - z.mean()) / torch.sqrt(z.var(unbiased=False) + 1e-5) * lw + lb

    assert torch.allclose(out.h[0, 0], ln(c.htilde[0] + flat[0]) * 0.8, rtol=1e-10)
    assert torch.allclose(out.h[0, 1], ln(c.htilde[1]) * 0.4, rtol=1e-10)
    assert torch.allclose(out.h[1, 0], ln(c.htilde[2] + flat[2]) * 0.6, rtol=1e-10)
    assert out.h[1, 1].abs().max() == 0 and out.alpha.tolist() == [[0.8, 0.4], [0.6, 0.0]]
    assert out.ids.tolist() == [[1, 4], [2, 0]] and torch.equal(out.valid, valid)
    empty = Candidates(
        torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
        torch.zeros(0, dh, dtype=DT), torch.zeros(0, dtype=DT), torch.zeros(0, dtype=torch.long), 2,
    )  # fmt: skip
    z = ops.update(empty, torch.zeros(0, dtype=DT), prev, ids, row, valid & False, lw, lb)
    assert z.h.shape == (2, 2, dh) and z.h.abs().max() == 0 and z.alpha.abs().max() == 0
    assert z.alpha.shape == (2, 2)
    # d = 1 and LayerNorm weights that sum to 0: still an all-silent state, and a gradient path
    e1 = Candidates(empty.batch, empty.node, torch.zeros(0, 1, dtype=DT), empty.alpha,
                    empty.prev_row, 2)  # fmt: skip
    lw1 = torch.tensor([0.0], dtype=DT, requires_grad=True)
    z1 = ops.update(e1, empty.alpha, prev, ids, row, valid & False, lw1, lb[:1])
    assert z1.h.shape == (2, 2, 1) and z1.alpha.abs().max() == 0
    z1.alpha.sum().backward()
    assert lw1.grad.tolist() == [0.0]


def test_step_is_propagate_inhibit_select_update():
    gr, _ = _graph(radius=1.5)
    st = _state(gr)
    w_h, b_h, theta, lw, lb = _params(gr.n_nodes)
    kw = dict(gamma=0.7, temperature=0.4)
    out = ops.step(st, gr, w_h, b_h, theta, lw, lb, inhibition=0.5, cap=3, eps=0.9,
                   method="radix", **kw)  # fmt: skip
    c = ops.propagate(st, gr, w_h, b_h, theta, **kw)
    alpha = ops.inhibit(c, gr, strength=0.5)
    ids, row, valid = ops.select(
        c.batch, c.node, alpha, 2, gr.n_nodes, cap=3, eps=0.9, method="radix"
    )
    want = ops.update(c, alpha, st, ids, row, valid, lw, lb)
    assert torch.equal(out.ids, want.ids) and torch.equal(out.valid, want.valid)
    assert torch.allclose(out.h, want.h) and torch.allclose(out.alpha, want.alpha)
    assert out.ids.shape == (2, 3) and valid.sum(1).tolist() == [2, 3]


def test_readout_and_node_readout_closed_form():
    g = _gen(9)
    st = ActiveState(
        ids=torch.tensor([[1, 3], [0, 2]]), valid=torch.tensor([[True, False], [True, True]]),
        alpha=torch.tensor([[0.5, 0.7], [2.0, 1.0]], dtype=DT),
        h=torch.randn(2, 2, 4, generator=g, dtype=DT),
    )  # fmt: skip
    w_o, b_o = torch.randn(3, 4, generator=g, dtype=DT), torch.randn(3, generator=g, dtype=DT)
    got = ops.readout(st, w_o, b_o)
    for b in range(2):
        pooled = st.alpha[b, 0] * st.h[b, 0] + st.alpha[b, 1] * st.h[b, 1]
        assert torch.allclose(got[b], w_o @ pooled + b_o, rtol=1e-13)
    r = torch.randn(4, 3, generator=g, dtype=DT)
    nr = ops.node_readout(st, r)
    assert torch.allclose(nr[0], 0.5 * r[1], rtol=1e-14)  # the invalid slot does not count
    assert torch.allclose(nr[1], 2.0 * r[0] + r[2], rtol=1e-14)


def test_make_table_routes_each_replacement():
    calls = []

    def tag(name, fn):
        def wrapped(*a, **k):
            calls.append(name)
            return fn(*a, **k)

        return wrapped

    t = ops.make_table(
        edge_distances=tag("edge_distances", ops.edge_distances),
        nearest_spark=tag("nearest_spark", ops.nearest_spark),
        select_dense=tag("select_dense", ops.select_dense),
        spark_distances=tag("spark_distances", ops.spark_distances),
        message_sum=tag("message_sum", edge_message_sum),
        soft_threshold=tag("soft_threshold", ops.soft_threshold),
        inhibit=tag("inhibit", ops.inhibit),
        select_rows=tag("select_rows", ops.select_rows),
        update=tag("update", ops.update),
    )
    gr0, (u, v, level, hebb) = _graph()
    gr = t.graph(
        gr0.x, gr0.a, u, v, level, hebb, gr0.in_idx, gr0.in_mask, tau=0.7, inhibition_radius=1.2
    )
    s, sa = _sparks()
    t.ignite(s, sa, gr, sigma=0.9, eps=0.0, cap=3, method="radix")
    w_h, b_h, theta, lw, lb = _params(gr.n_nodes)
    t.step(_state(gr), gr, w_h, b_h, theta, lw, lb, gamma=0.7, temperature=0.4, inhibition=0.5,
           cap=3, eps=0.0, method="radix")  # fmt: skip
    assert calls == [
        "edge_distances", "nearest_spark", "select_dense", "spark_distances", "message_sum",
        "soft_threshold", "inhibit", "select_rows", "update",
    ]  # fmt: skip
    fused = ops.make_table(fused_step=tag("fused", ops.step))
    assert fused.step.__name__ == "wrapped"
    assert ops.TABLE.readout is ops.readout and ops.TABLE.token_distances is ops.token_distances
    with pytest.raises(dataclasses.FrozenInstanceError):
        ops.TABLE.readout = ops.node_readout  # the shared reference table cannot be changed


# ------------------------------------------------------------------------------ sparse blocks
def test_gather_out_edges_and_message_sum_with_gradients():
    gr, _ = _graph()
    src = torch.tensor([0, 3, 6, 0])  # a node with no out-edges, a repeated source
    edges, owner = gather_out_edges(gr.out_ptr, gr.out_edge, src)
    want = [
        (e, q)
        for q, j in enumerate(src.tolist())
        for e in gr.out_edge[gr.out_ptr[j] : gr.out_ptr[j + 1]].tolist()
    ]
    assert list(zip(edges.tolist(), owner.tolist(), strict=True)) == want
    m = 5
    dst = torch.tensor([e % m for e, _ in want])
    counts = torch.bincount(owner, minlength=4)
    src_ptr = torch.zeros(5, dtype=torch.long)
    src_ptr[1:] = counts.cumsum(0)
    w = torch.rand(len(want), generator=_gen(10), dtype=DT, requires_grad=True)
    g = torch.randn(4, 3, generator=_gen(11), dtype=DT, requires_grad=True)
    bias = torch.randn(3, generator=_gen(12), dtype=DT, requires_grad=True)
    out = edge_message_sum(dst, src_ptr, w, g, bias, m)
    ref = bias.expand(m, 3).clone()
    for e in range(len(want)):
        ref = ref.index_add(0, dst[e : e + 1], (w[e] * g[owner[e]]).unsqueeze(0))
    assert torch.allclose(out, ref, rtol=1e-13)
    gw = torch.randn(m, 3, generator=_gen(13), dtype=DT)
    got = torch.autograd.grad((out * gw).sum(), (w, g, bias))
    exp = torch.autograd.grad((ref * gw).sum(), (w, g, bias))
    for a, b in zip(got, exp, strict=True):
        assert torch.allclose(a, b, rtol=1e-12)
    # no edges: bias rows only, zero gradients for w and g
    e0 = torch.zeros(0, dtype=torch.long)
    w0 = torch.zeros(0, dtype=DT, requires_grad=True)
    out0 = edge_message_sum(e0, torch.zeros(5, dtype=torch.long), w0, g, bias, 2)
    assert torch.allclose(out0, bias.expand(2, 3))
    gw0, gg0, gb0 = torch.autograd.grad(out0.sum(), (w0, g, bias))
    assert (
        gw0.shape == (0,)
        and gg0.abs().max() == 0
        and torch.equal(gb0, torch.full((3,), 2.0, dtype=DT))
    )


def test_row_norm_values_and_gradient_at_zero_rows():
    h = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]], dtype=DT, requires_grad=True)
    n = row_norm(h)
    assert n.tolist() == [5.0, 0.0, 1.0]
    (gh,) = torch.autograd.grad((n * torch.tensor([1.0, 2.0, 3.0], dtype=DT)).sum(), h)
    assert gh.flatten().tolist() == pytest.approx([0.6, 0.8, 0.0, 0.0, -3.0, 0.0], rel=1e-15)


# ------------------------------------------------------------------------------ masks
def _masked_batch(seed: int = 3):
    """x [3, 5, 4] float64 with lengths 5, 2, 1 (samples 1 and 2 padded)."""
    g = _gen(seed)
    x = torch.randn(3, 5, 4, generator=g, dtype=DT)
    lengths = torch.tensor([5, 2, 1])
    return x, lengths, ops.length_mask(lengths, 5)


def test_length_mask_marks_the_real_steps():
    assert ops.length_mask(None, 4) is None
    m = ops.length_mask(torch.tensor([3, 0, 4, 1]), 4)
    want = [[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert m.dtype == torch.bool and m.tolist() == [[bool(v) for v in r] for r in want]


@pytest.mark.parametrize("width", [None, 3])
def test_encode_with_a_mask_is_the_unpadded_sequence_then_zeros(width):
    """Real steps' features equal those of each sample's unpadded sequence (the encoder reads
    zeros past the end); padded steps' features are exactly 0."""
    x, lengths, m = _masked_batch()
    g = _gen(4)
    w = None if width is None else torch.randn(6, 4, width, generator=g, dtype=DT)
    b = None if width is None else torch.randn(6, generator=g, dtype=DT)
    x_noisy = torch.where(m.unsqueeze(-1), x, torch.full_like(x, 7.0))  # garbage in padding
    e = ops.encode(x_noisy, w, b, m)
    for i, n in enumerate(lengths.tolist()):
        alone = ops.encode(x[i : i + 1, :n], w, b)
        assert torch.allclose(e[i, :n], alone[0], rtol=0, atol=1e-12)
        assert (e[i, n:] == 0).all()
    assert torch.equal(ops.encode(x, w, b, None), ops.encode(x, w, b))


def test_mean_and_max_tokens_over_the_real_steps_only():
    x, lengths, m = _masked_batch()
    x = torch.where(m.unsqueeze(-1), x, torch.full_like(x, 50.0))  # padding would dominate
    mean, mx = ops.mean_tokens(x, m), ops.max_tokens(x, m)
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(mean[i], x[i, :n].mean(0), rtol=0, atol=1e-12)
        assert torch.equal(mx[i], x[i, :n].amax(0))
    assert torch.equal(ops.mean_tokens(x), x.mean(1))
    assert torch.equal(ops.max_tokens(x), x.amax(1))
    empty = torch.zeros(1, 5, dtype=torch.bool)  # no real step: 0, not a division by 0
    assert torch.equal(ops.mean_tokens(x[:1], empty), torch.zeros(1, 4, dtype=DT))


def test_attend_gives_padded_steps_zero_weight():
    """pi over the real steps only: a padded token that would win the softmax (distance 0)
    contributes nothing; the result is attend over the unpadded sequence."""
    x, lengths, m = _masked_batch()
    g = _gen(5)
    d = torch.rand(3, 2, 5, generator=g, dtype=DT) * 2 + 0.5
    d = torch.where(m.unsqueeze(1), d, torch.zeros_like(d))
    got = ops.attend(x, d, sigma=0.7, mask=m)
    for i, n in enumerate(lengths.tolist()):
        alone = ops.attend(x[i : i + 1, :n], d[i : i + 1, :, :n], sigma=0.7)
        assert torch.allclose(got[i], alone[0], rtol=0, atol=1e-12)
    logit = -d.pow(2) / (2 * 0.7**2)
    assert torch.allclose(ops.attend(x, d, sigma=0.7), torch.softmax(logit, -1) @ x, atol=1e-12)


def test_mask_sparks_replaces_padded_sparks_by_the_first():
    x, lengths, m = _masked_batch()
    sp = x[..., :3]
    sa = x[..., 3]
    assert ops.mask_sparks(sp, sa, None) == (sp, sa)
    got, got_a = ops.mask_sparks(sp, sa, m)
    for i, n in enumerate(lengths.tolist()):
        assert torch.equal(got[i, :n], sp[i, :n]) and torch.equal(got_a[i, :n], sa[i, :n])
        assert torch.equal(got[i, n:], sp[i, :1].expand(5 - n, 3))
        assert torch.equal(got_a[i, n:], sa[i, :1].expand(5 - n))
