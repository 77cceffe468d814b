"""Each slow Hebbian rule has its effect."""

import torch

from rsgn import geometry as G
from rsgn.model import RSGN
from tests.conftest import small_cfg


def test_homeostasis_moves_activity_to_target():
    cfg = small_cfg(
        target_active=1.0,
        homeostasis_target=0.1,
        homeostasis_lr=0.5,
        hebb_affinity=False,
        hebb_sprout=False,
        hebb_drift=False,
        hebb_prune=False,
    )
    m = RSGN(8, 3, cfg)
    x = torch.randn(32, 6, 8)
    with torch.no_grad():
        before = m(x, record=True).activity.mean().item()
        for _ in range(40):
            out = m(x, record=True)
            m.hebbian_step(out.activity, loss=1.0)
        after = m(x, record=True).activity.mean().item()
    assert before > 0.2
    assert abs(after - 0.1) < abs(before - 0.1) / 3, (before, after)


def test_affinity_follows_reward_and_decays():
    cfg = small_cfg(
        hebb_homeostasis=False,
        hebb_sprout=False,
        hebb_drift=False,
        reward="neg_loss",
        hebb_lr=1.0,
        affinity_decay=0.5,
    )
    m = RSGN(8, 3, cfg)
    act = torch.zeros(4, cfg.n_nodes)
    i, j = 0, int(m.in_idx[0, 0])
    act[:, i] = 1.0
    act[:, j] = 1.0
    m.hebbian_step(act, loss=2.0)  # R = -2: co-active pair weakened
    assert m.hebb[0, 0] == -2.0
    assert (m.hebb[1:] == 0).all() or m.hebb.abs().sum() == m.hebb[m.in_idx == j].abs().sum() + 2
    m.cfg.hebb_lr = 0.0
    m.hebbian_step(act, loss=2.0)
    assert m.hebb[0, 0] == -1.0  # decay lambda = 0.5


def test_pruning_removes_weak_edges_after_patience():
    cfg = small_cfg(prune_threshold=10.0, prune_patience=2)  # every edge is "weak"
    m = RSGN(8, 3, cfg)
    e0 = int(m.in_mask.sum())
    m.epoch_end()
    assert int(m.in_mask.sum()) == e0  # patience not yet reached
    m.epoch_end()
    assert int(m.in_mask.sum()) == 0 and m.pruned_keys.numel() == e0
    m.refresh_topology()
    assert int(m.in_mask.sum()) == 0  # pruned pairs stay dead after a refresh


def test_sprouting_adds_edges_between_correlated_unconnected_nodes():
    cfg = small_cfg(hebb_affinity=False, hebb_homeostasis=False, hebb_drift=False)
    m = RSGN(8, 3, cfg)
    n = cfg.n_nodes
    connected = torch.zeros(n, n, dtype=torch.bool)
    connected[torch.arange(n).unsqueeze(1).expand_as(m.in_idx)[m.in_mask], m.in_idx[m.in_mask]] = (
        True
    )
    i, j = next(
        (a, b)
        for a in range(n)
        for b in range(n)
        if a != b and not connected[a, b] and not connected[b, a]
    )
    signal = torch.rand(32)
    act = torch.rand(32, n) * 0.01
    act[:, i] = signal
    act[:, j] = signal * 0.9 + 0.001
    e0 = int(m.in_mask.sum())
    stats = m.hebbian_step(act, loss=1.0)
    assert stats["sprouted"] >= 2 and int(m.in_mask.sum()) > e0
    assert (m.in_idx[i][m.in_mask[i]] == j).any() and (m.in_idx[j][m.in_mask[j]] == i).any()


def test_drift_moves_coactive_nodes_closer():
    cfg = small_cfg(hebb_affinity=False, hebb_homeostasis=False, hebb_sprout=False, drift_lr=0.2)
    m = RSGN(8, 3, cfg)
    i, j = 0, int(m.in_idx[0, 0])
    act = torch.zeros(8, cfg.n_nodes)
    act[:, i] = 1.0
    act[:, j] = 1.0

    def d():
        x, a = m.positions()
        return G.dist_from_parts(x[i], x[j], a[i], a[j]).item()

    before = d()
    other = m.pos_v[5].clone() if 5 not in (i, j) else m.pos_v[6].clone()
    m.hebbian_step(act, loss=1.0)
    assert d() < before * 0.95
    assert torch.equal(other, m.pos_v[5] if 5 not in (i, j) else m.pos_v[6])  # idle nodes stay


def test_hebbian_off_changes_nothing():
    m = RSGN(8, 3, small_cfg(hebbian=False))
    state = {k: v.clone() for k, v in m.state_dict().items()}
    m.hebbian_step(torch.rand(4, 64), loss=1.0)
    for k, v in m.state_dict().items():
        assert torch.equal(state[k].nan_to_num(-7), v.nan_to_num(-7)), k


def test_refresh_never_duplicates_an_edge():
    """A sprouted edge that later becomes a k-nearest neighbour is not kept twice."""
    cfg = small_cfg(hebb_affinity=False, hebb_homeostasis=False, hebb_drift=False)
    m = RSGN(8, 3, cfg)
    k = cfg.k_in
    i, j = 0, int(m.in_idx[0, 0])  # j is already a kNN neighbour of i
    m.in_idx[i, k] = j  # force the same pair into a sprout slot
    m.in_mask[i, k] = True
    m.refresh_topology()
    for r in range(cfg.n_nodes):
        live = m.in_idx[r][m.in_mask[r]]
        assert live.unique().numel() == live.numel(), r
