"""The optical-aware backend: differentiable surrogates of the optical core's distance readout."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from rsgn import optics
from rsgn.backends import get_backend
from rsgn.backends.optical_aware import OpticalAwareBackend, ReadoutModel, ste_quantize
from rsgn.backends.torch_backend import TorchBackend
from rsgn.config import ModelConfig, RunConfig
from rsgn.data import make_task
from rsgn.model import RSGN


def _model(n_nodes: int = 64, seed: int = 0) -> RSGN:
    torch.manual_seed(seed)
    return RSGN(8, 5, ModelConfig(n_nodes=n_nodes, d_hidden=16, n_steps=2))


def _x(b: int = 16, t: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, 8, generator=torch.Generator().manual_seed(seed))


def test_registered_and_differentiable():
    be = get_backend("optical-aware")
    assert isinstance(be, OpticalAwareBackend)
    assert be.name == "optical-aware"
    assert be.capabilities().differentiable
    assert be.preset.name == "bench" and be.noise
    assert get_backend("optical-aware", preset="ideal").preset.name == "ideal"


def test_ideal_noise_off_equals_torch_exactly():
    m = _model()
    x = _x()
    ref = m(x, backend=TorchBackend())
    out = m(x, backend=OpticalAwareBackend("ideal", noise=False))
    assert torch.equal(ref.logits, out.logits)
    assert ref.active_fraction_per_step == out.active_fraction_per_step
    g_ref = torch.autograd.grad(ref.logits.sum(), list(m.parameters()), allow_unused=True)
    g_out = torch.autograd.grad(out.logits.sum(), list(m.parameters()), allow_unused=True)
    # gradients: equal to float precision (multithreaded sparse kernels may sum in another
    # order from one call to the next, so bit-equality is not guaranteed even torch vs torch)
    for a, b in zip(g_ref, g_out, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), (a - b).abs().max()


def test_bench_noise_changes_logits_and_gradients_are_finite_nonzero():
    m = _model()
    x = _x()
    ref = m(x, backend=TorchBackend()).logits
    out = m(x, backend=OpticalAwareBackend("bench", seed=3)).logits
    assert not torch.allclose(out, ref)
    loss = torch.nn.functional.cross_entropy(out, torch.arange(16) % 5)
    loss.backward()
    for name in ("pos_v", "aff_u", "spark_scale"):
        g = getattr(m, name).grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name
    for p in m.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


def test_seeded_noise_is_reproducible():
    m = _model()
    x = _x()
    a = m(x, backend=OpticalAwareBackend("bench", seed=5)).logits
    b = m(x, backend=OpticalAwareBackend("bench", seed=5)).logits
    c = m(x, backend=OpticalAwareBackend("bench", seed=6)).logits
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ste_quantize_forward_and_gradient():
    x = torch.tensor([-0.3, 0.04, 0.26, 0.49, 0.51, 7.0], requires_grad=True)
    q = ste_quantize(x, 0.1, 16)
    expect = optics.quantize(x.detach().numpy().astype(np.float64), 1.6, 4)
    assert np.allclose(q.detach().numpy(), expect, atol=1e-6)
    assert torch.allclose(q.detach(), torch.tensor([0.0, 0.0, 0.3, 0.5, 0.5, 1.5]))
    (q * torch.arange(6.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(6.0))
    y = torch.tensor([0.123], requires_grad=True)
    assert ste_quantize(y, 0.0, math.inf) is y


@pytest.mark.parametrize("power_w", [2e-5, 3e-4])
def test_intensity_noise_matches_preset_variance(power_w):
    """Without the ADC: estimated power has the preset's shot + dark + thermal + RIN variance."""
    p = optics.load_preset("bench")
    rm = ReadoutModel(p)
    rm.step, rm.extra_sd = 0.0, 0.0  # analogue noise only
    n = 200_000
    s = torch.full((n,), power_w, dtype=torch.float64)
    est = rm.detect(s, torch.Generator().manual_seed(0))
    det = p.detector_params()
    var_i = sum(
        v
        for k, v in optics.noise_variances(power_w, p.detector.bandwidth, det).items()
        if k != "adc"
    )
    var_p = float(var_i) / det.responsivity**2
    rel_se = math.sqrt(2.0 / n)  # sampling error of a variance estimate
    assert abs(float(est.var()) / var_p - 1.0) < 5 * rel_se
    assert abs(float(est.mean()) - power_w) < 5 * math.sqrt(var_p / n)


def test_full_receiver_matches_optics_sampler():
    """With ADC and ENOB noise the surrogate's statistics equal rsgn.optics.sample_photocurrent."""
    p = optics.load_preset("bench")
    rm, det = ReadoutModel(p), p.detector_params()
    n, power_w = 200_000, 5.3e-5
    est = rm.detect(
        torch.full((n,), power_w, dtype=torch.float64), torch.Generator().manual_seed(1)
    )
    ref = optics.estimate_power(
        optics.sample_photocurrent(
            np.full(n, power_w), p.detector.bandwidth, det, np.random.default_rng(2)
        ),
        det,
    )
    se_var = math.sqrt(2.0 / n) * ref.var()
    assert abs(float(est.var()) - ref.var()) < 6 * se_var
    assert abs(float(est.mean()) - ref.mean()) < 6 * math.sqrt(ref.var() / n)


def test_distance_noise_follows_the_inversion():
    """std(d^) = std(S^) / (sqrt(qr) I sinh d) to first order, at a distance where it is linear."""
    be = OpticalAwareBackend("bench", seed=0)
    rm = be.readout_model
    rm.step, rm.extra_sd = 0.0, 0.0
    d0, a_beam, r_node = 2.0, 0.5, 0.5
    n = 100_000
    d = torch.full((n,), d0, dtype=torch.float64, requires_grad=True)
    dh = be.read_distance(d, torch.tensor(a_beam, dtype=torch.float64), torch.tensor(r_node))
    k = float(rm.scale(torch.tensor(r_node))) * float(rm.lorentz_norm(torch.tensor(a_beam)))
    s = k * math.cosh(d0)
    sd_s = math.sqrt(float(rm.analog_variance(torch.tensor(rm.responsivity * s)))) / rm.responsivity
    expect = sd_s / (k * math.sinh(d0))
    assert abs(float(dh.detach().std()) / expect - 1.0) < 0.02
    assert abs(float(dh.detach().mean()) - d0) < 0.01 * expect + 5 * expect / math.sqrt(n)
    dh.sum().backward()
    assert torch.equal(d.grad, torch.ones(n, dtype=torch.float64))


def test_extinction_ratio_clips_node_radius():
    be = OpticalAwareBackend("bench", noise=False)
    r_max = math.tanh(0.5 * math.log(1000.0) / 2.0)  # 30 dB
    assert be.readout_model.r_max == pytest.approx(r_max)
    x = torch.tensor([[0.99, 0.0, 0.0], [0.2, 0.1, 0.0]], requires_grad=True)
    a = 1.0 - (x.detach() ** 2).sum(-1)
    xc, ac = be.clip_nodes(x, a)
    assert float(xc[0].detach().norm()) == pytest.approx(r_max, rel=1e-6)
    assert float(ac[0]) == pytest.approx(1.0 - r_max**2, rel=1e-6)
    assert torch.equal(xc[1], x[1].detach()) and float(ac[1]) == float(a[1])
    # bench without noise differs from torch only through the clip: a model whose nodes all lie
    # inside r_max gives the torch logits
    m = _model()
    with torch.no_grad():
        m.pos_v.mul_(0.5)
    xx = _x()
    assert float(m.positions()[0].detach().norm(dim=-1).max()) < r_max
    assert torch.equal(m(xx, backend=TorchBackend()).logits, m(xx, backend=be).logits)


def test_angle_error_rotation_statistics():
    p = optics.load_preset("bench")
    big = dataclasses.replace(
        p, devices=dataclasses.replace(p.devices, retardance_error=0.0, angle_error=0.02)
    )
    be = OpticalAwareBackend(big, seed=0)
    sd = be.readout_model.rot_channel
    assert sd == pytest.approx(math.sqrt(2) * 0.04)
    x = torch.tensor([[0.6, 0.0, 0.0]]).expand(50_000, 3).contiguous()
    xr = be.rotate(x, sd)
    assert torch.allclose(xr.norm(dim=-1), torch.full((50_000,), 0.6), atol=1e-6)
    ang = torch.atan2(xr[:, 1:].norm(dim=-1), xr[:, 0])  # angle to the original direction
    # two perpendicular components of std sd: E[angle^2] = 2 sd^2 (small-angle)
    assert float((ang**2).mean()) == pytest.approx(2 * sd**2, rel=0.05)


def test_training_steps_on_optical_aware(tmp_path):
    from rsgn.config import apply_overrides
    from rsgn.train import train

    cfg = apply_overrides(
        RunConfig(),
        [
            "data.n_samples=60",
            "model.n_nodes=64",
            "model.n_steps=2",
            "model.d_hidden=16",
            "train.epochs=2",
            "train.batch_size=16",
        ],
    )
    ds = make_task("hierarchical", cfg.data, seed=0)
    m = train(cfg, ds, tmp_path / "run", backend="optical-aware", log=None)
    assert m["backend"] == "optical-aware"
    assert all(math.isfinite(h["train_loss"]) for h in m["history"])
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_attend_distances_go_through_the_noisy_readout_straight_through():
    """The 'attend' weights' distances: noisy values at bench, the exact distances' gradient."""
    m = _model()
    assert m.cfg.init_state == "attend"
    x = _x()
    be = OpticalAwareBackend("bench", seed=5)
    exact = TorchBackend()
    g = m.build_graph(exact)
    s, sa = m.sparks(x)
    ids = torch.randint(0, m.cfg.n_nodes, (x.shape[0], 4))
    d_ref = exact.token_distances(s, sa, g, ids)
    d_hw = be.token_distances(s, sa, g, ids)
    assert d_hw.shape == d_ref.shape == (x.shape[0], 4, x.shape[1])
    assert not torch.allclose(d_hw, d_ref)
    assert float((d_hw - d_ref).detach().abs().median()) < 0.5  # a readout error, small
    (gx_hw,) = torch.autograd.grad(d_hw.sum(), m.spark_scale, retain_graph=True)
    assert torch.isfinite(gx_hw) and gx_hw != 0
