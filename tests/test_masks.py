"""Padded steps are inert: with ``lengths``, a padded batch gives the logits of the unpadded
sequences (RSGN on every op path, each baseline), whatever the padding holds."""

from __future__ import annotations

import pytest
import torch

from rsgn import ops
from rsgn.baselines import BASELINES, build_baseline
from rsgn.config import ModelConfig, load_config
from rsgn.evaluation import evaluate
from rsgn.model import RSGN

D_IN, C, T = 6, 3, 12
LENS = (12, 7, 3, 1)


def _padded(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """A batch padded with large garbage, its lengths, and the unpadded sequences."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENS), T, D_IN, generator=g)
    lengths = torch.tensor(LENS)
    garbage = 5.0 * torch.randn(len(LENS), T, D_IN, generator=g)
    pad = torch.arange(T)[None, :] >= lengths[:, None]
    xp = torch.where(pad.unsqueeze(-1), garbage, x)
    return xp, lengths, [x[i : i + 1, :n] for i, n in enumerate(LENS)]


RSGN_CONFIGS = {
    "default": ModelConfig(n_nodes=64, k_in=8),
    "paper": load_config("paper").model,
    "skip+mean": ModelConfig(n_nodes=64, k_in=8, token_skip=True, init_state="mean"),
}


@pytest.mark.parametrize("name", list(RSGN_CONFIGS))
def test_rsgn_padded_steps_are_inert(name: str) -> None:
    torch.manual_seed(0)
    cfg = RSGN_CONFIGS[name]
    if name == "paper":
        cfg = ModelConfig(**{**cfg.__dict__, "n_nodes": 64, "k_in": 8})
    model = RSGN(D_IN, C, cfg).eval()
    xp, lengths, singles = _padded()
    with torch.no_grad():
        padded = model(xp, lengths=lengths)
        full = model(xp)
        for i, xi in enumerate(singles):
            ref = model(xi).logits[0]
            assert torch.allclose(padded.logits[i], ref, atol=1e-5, rtol=1e-5), (name, i)
    # without lengths the garbage counts: the mask is what makes it inert
    assert not torch.allclose(full.logits[1:], padded.logits[1:], atol=1e-3)


def test_rsgn_padded_sparks_never_ignite() -> None:
    """The ignited set and alpha(0) of a padded sample are those of its real tokens."""
    torch.manual_seed(1)
    model = RSGN(D_IN, C, ModelConfig(n_nodes=64, k_in=8)).eval()
    xp, lengths, singles = _padded(1)
    w, hp = model.weights(), model.hyper()
    g = model.build_graph()
    mask = ops.length_mask(lengths, T)
    with torch.no_grad():
        feats = ops.encode(xp, w.enc_w, w.enc_b, mask)
        sp, sa = ops.mask_sparks(
            *ops.spark_points(feats, w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2, w.spark_scale),
            mask,
        )
        st = ops.ignite(
            sp, sa, g, sigma=hp.sigma_ign, eps=hp.eps_active, cap=hp.cap, method=hp.selection
        )
        for i, xi in enumerate(singles):
            fi = ops.encode(xi, w.enc_w, w.enc_b)
            s1 = ops.spark_points(fi, w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2, w.spark_scale)
            ref = ops.ignite(
                *s1, g, sigma=hp.sigma_ign, eps=hp.eps_active, cap=hp.cap, method=hp.selection
            )
            got = dict(
                zip(st.ids[i][st.valid[i]].tolist(), st.alpha[i][st.valid[i]].tolist(), strict=True)
            )
            want = dict(
                zip(
                    ref.ids[0][ref.valid[0]].tolist(),
                    ref.alpha[0][ref.valid[0]].tolist(),
                    strict=True,
                )
            )
            assert got.keys() == want.keys()
            assert all(abs(got[k] - want[k]) < 1e-5 for k in got)  # fmt: skip


def test_rsgn_target_program_takes_lengths() -> None:
    """Evaluation through the torch target honours the lengths (same logits as unpadded)."""
    torch.manual_seed(2)
    model = RSGN(D_IN, C, ModelConfig(n_nodes=64, k_in=8)).eval()
    xp, lengths, singles = _padded(2)
    y = torch.zeros(len(LENS), dtype=torch.int64)
    ev = evaluate(model, xp, y, "torch", lengths=lengths, keep_logits=True)
    with torch.no_grad():
        ref = torch.cat([model(xi).logits for xi in singles])
    assert torch.allclose(ev.logits, ref, atol=1e-5)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_padded_steps_are_inert(name: str) -> None:
    torch.manual_seed(0)
    small = {"transformer": {"d": 16, "n_heads": 2, "d_ff": 32},
             "sparse-transformer": {"d": 16, "n_heads": 2, "d_ff": 32},
             "moe": {"d": 16, "n_heads": 2, "d_expert": 8, "n_experts": 4},
             "lstm": {"hidden": 8}, "mlp": {}, "conv": {"channels": 8}}[name]  # fmt: skip
    model = build_baseline(name, D_IN, C, T, **small).eval()
    xp, lengths, singles = _padded()
    with torch.no_grad():
        padded = model(xp, lengths)
        if name == "mlp":  # fixed length: padding reads as zeros, whatever it holds
            zeroed = xp * (torch.arange(T)[None, :, None] < lengths[:, None, None])
            assert torch.allclose(padded, model(zeroed), atol=1e-6)
        else:
            for i, xi in enumerate(singles):
                assert torch.allclose(padded[i], model(xi)[0], atol=1e-5), (name, i)
        assert not torch.allclose(padded[1:], model(xp)[1:], atol=1e-4)


def test_moe_routes_only_real_tokens() -> None:
    torch.manual_seed(0)
    model = build_baseline("moe", D_IN, C, T, d=16, n_heads=2, d_expert=8, n_experts=4).eval()
    xp, lengths, _ = _padded()
    with torch.no_grad():
        model(xp, lengths)
    assert all(m.tokens == int(lengths.sum()) for m in model.moe)


def test_training_step_backpropagates_through_masks() -> None:
    """Gradients stay finite with padding (no fully blocked attention row)."""
    for name in ("sparse-transformer", "moe"):
        model = build_baseline(name, D_IN, C, T, d=16, n_heads=2)
        xp, lengths, _ = _padded()
        step = model.train_step(xp, None, lengths)
        step.logits.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
