"""The sparse model: parameter count, real sparsity, agreement with a dense computation of the
same sparse model, determinism, and that no N x N tensor is formed."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from rsgn import geometry as G
from rsgn.config import ModelConfig, load_config
from rsgn.model import RSGN
from tests.conftest import small_cfg


def test_paper_parameter_counts():
    paper = load_config("paper").model  # the paper-faithful preset
    assert RSGN(32, 20, paper).n_params() == 41_672  # hierarchical (spec §1, §6)
    assert RSGN(32, 10, paper).n_params() == 40_382  # long-range
    assert RSGN.param_formula(32, 20, paper) == 41_672


def test_default_configuration_fits_the_parameter_budget():
    """The package default (beyond the paper) stays within issue 3's 45,000 parameters."""
    for c in (20, 10):
        n = RSGN(32, c, ModelConfig()).n_params()
        assert n == RSGN.param_formula(32, c, ModelConfig()) and n <= 45_000


def test_active_fraction_is_capped_and_near_target():
    cfg = ModelConfig(n_nodes=200, target_active=0.05, hebbian=False)
    m = RSGN(32, 20, cfg)
    out = m(torch.randn(16, 20, 32))
    cap = cfg.k_active / cfg.n_nodes
    assert all(f <= cap + 1e-9 for f in out.active_fraction_per_step)
    assert out.active_fraction_per_step[-1] > 0.5 * cap  # the cap binds: real activity
    assert cap <= 0.055


def test_positions_stay_inside_the_ball_even_with_huge_parameters():
    m = RSGN(8, 3, small_cfg())
    with torch.no_grad():
        m.pos_v.mul_(1e3)
    x, a = m.positions()
    assert (x.norm(dim=-1) < 1).all() and (a > 0).all()
    assert torch.isfinite(m(torch.randn(2, 5, 8)).logits).all()


def _top(score: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest scores per row, ties broken toward the lower index."""
    return torch.sort(score, dim=1, descending=True, stable=True).indices[:, :k]


def _dense_reference(m: RSGN, x: torch.Tensor) -> torch.Tensor:
    """The same sparse model computed densely: [B, N] activations, [B, N, d] states, an N x N
    weight matrix holding only the k-in-edges, and a stable sort for the cap (ties, e.g. alphas
    saturated at 1, go to the lower node id)."""
    cfg = m.cfg
    n, cap, eps = cfg.n_nodes, cfg.k_active, cfg.eps_active
    p, a = m.positions()
    w_full = torch.zeros(n, n, dtype=x.dtype)
    rows = torch.arange(n).unsqueeze(1).expand_as(m.in_idx)
    d_e = G.dist_from_parts(p.unsqueeze(1), p[m.in_idx], a.unsqueeze(1), a[m.in_idx])
    w_e = (
        torch.sigmoid((m.aff_u.unsqueeze(1) * m.aff_v[m.in_idx]).sum(-1) + m.hebb)
        * torch.exp(-d_e / cfg.tau)
        * F.softplus(m.level.unsqueeze(1) - m.level[m.in_idx] + 1)
    )
    w_full[rows[m.in_mask], m.in_idx[m.in_mask]] = w_e[m.in_mask]  # w_full[i, j]: j -> i
    inh = torch.zeros(n, n, dtype=torch.bool)
    inh[rows[m.in_mask], m.in_idx[m.in_mask]] = (d_e < cfg.inhibition_radius)[m.in_mask]

    e = x if m.encoder is None else F.gelu(m.encoder(x))  # token features (raw tokens without)
    s, sa = G.expmap0_with_conformal(m.spark_scale * m.spark(e))
    d_sn = G.dist_from_parts(s.unsqueeze(2), p, sa.unsqueeze(2), a)  # [B, T, N]
    dmin = d_sn.min(1).values
    alpha = torch.exp(-(dmin**2) / (2 * cfg.sigma_ign**2))
    keep = torch.zeros_like(alpha, dtype=torch.bool).scatter(1, _top(alpha, cap), True)
    keep &= alpha > eps
    alpha = alpha * keep
    if cfg.init_state == "attend":  # every node attends; only the ignited ones are kept
        h0 = m.w_init(torch.softmax(-(d_sn.transpose(1, 2) ** 2) / (2 * cfg.sigma_ign**2), -1) @ e)
    else:
        h0 = m.w_init(e.mean(1)).unsqueeze(1)
    h = alpha.unsqueeze(-1) * h0
    for _ in range(cfg.n_steps):
        g = alpha.unsqueeze(-1) * (h @ m.w_h.weight.T)
        reached = (keep.to(x.dtype) @ (w_full != 0).to(x.dtype).T > 0) | keep
        ht = torch.einsum("ij,bjd->bid", w_full, g) + m.w_h.bias
        a_new = torch.sigmoid(
            (alpha + cfg.gamma * ht.norm(dim=-1) - m.theta) / float(m.temperature)
        )
        a_new = a_new * reached
        nb_cnt = inh.sum(1).clamp_min(1)
        mean = (a_new @ inh.to(x.dtype).T) / nb_cnt
        a_new = a_new / (1 + cfg.inhibition_strength * mean) * reached
        score = torch.where(reached, a_new, torch.full_like(a_new, -1.0))
        sel = torch.zeros_like(keep).scatter(1, _top(score, cap), True)
        sel &= reached & (a_new > eps)
        h = F.layer_norm(ht + h, (ht.shape[-1],), m.ln.weight, m.ln.bias) * (a_new * sel).unsqueeze(
            -1
        )
        alpha, keep = a_new * sel, sel
    pooled = (alpha.unsqueeze(-1) * h).sum(1)
    logits = pooled @ m.w_o.weight.T + m.w_o.bias
    if m.node_out is not None:
        logits = logits + alpha @ m.node_out
    if m.w_skip is not None:
        logits = logits + m.w_skip(e.amax(1))
    return logits


@pytest.mark.parametrize(
    "init_state,extras",
    [
        ("mean", {}),
        ("mean", {"encoder_width": 3, "encoder_dim": 5, "token_skip": True}),
        ("mean", {"encoder_width": 2, "encoder_dim": 4, "node_readout": True}),
        ("mean", {"token_skip": True, "d_space": 2}),
        ("attend", {}),
        ("attend", {"encoder_width": 3, "encoder_dim": 5, "node_readout": True, "d_space": 4}),
    ],
)
def test_sparse_propagation_matches_dense_computation(init_state, extras):
    torch.manual_seed(3)
    # the paper's sparks and readout unless a case sets the options beyond the paper (the
    # default config's seed-3 instance has a near-tie below the radix select's resolution)
    cfg = small_cfg(
        n_nodes=48,
        d_hidden=12,
        target_active=0.15,
        inhibition_strength=0.7,
        **{"encoder_width": 0, "token_skip": False, "d_space": 3, **extras},
        init_state=init_state,
    )
    m = RSGN(6, 4, cfg).double()
    x = torch.randn(5, 7, 6, dtype=torch.float64)
    sparse = m(x).logits
    dense = _dense_reference(m, x)
    assert torch.allclose(sparse, dense, atol=1e-10, rtol=1e-9), (sparse - dense).abs().max()


def test_gradients_reach_every_parameter_and_are_finite():
    m = RSGN(8, 3, small_cfg())
    out = m(torch.randn(6, 9, 8))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_determinism_for_a_fixed_seed():
    def run():
        torch.manual_seed(7)
        m = RSGN(8, 3, small_cfg())
        return m(torch.randn(4, 6, 8)).logits

    assert torch.equal(run(), run())


class _MaxNumel(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.max = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and not t.is_sparse and t.layout == torch.strided:
                self.max = max(self.max, t.numel())
        return out


def test_no_n_by_n_tensor_in_the_sparse_path():
    n = 4096
    m = RSGN(
        4,
        3,
        ModelConfig(
            n_nodes=n,
            d_hidden=8,
            d_space=3,
            affinity_rank=4,
            n_steps=2,
            target_active=0.01,
            hebbian=False,
        ),
    )
    x = torch.randn(2, 3, 4)
    with _MaxNumel() as mode:
        F.cross_entropy(m(x).logits, torch.tensor([0, 1])).backward()
    # the largest tensors are O(N k max(r, D)) edge gathers (here 4096 x 20 x 4): linear in N
    assert mode.max <= 100 * n < n * n // 40, mode.max


def test_temperature_annealing_is_cosine_from_start_to_end():
    m = RSGN(4, 2, small_cfg(temperature_start=2.0, temperature_end=0.5))
    ts = [m.set_temperature_for_epoch(e, 5) for e in range(5)]
    assert ts[0] == pytest.approx(2.0) and ts[-1] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(ts, ts[1:], strict=False))


def test_statistical_selection_runs_and_keeps_activity_sparse():
    """The approximate cap: counts vary around the target, never the whole network."""
    cfg = ModelConfig(n_nodes=400, target_active=0.05, selection="stat", hebbian=False)
    m = RSGN(8, 3, cfg)
    out = m(torch.randn(8, 12, 8))
    assert torch.isfinite(out.logits).all()
    assert 0 < max(out.active_fraction_per_step) < 0.5
