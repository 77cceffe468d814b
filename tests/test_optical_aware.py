"""The optical-aware target: differentiable surrogates of the optical core's distance readout
(its training table) and the program that evaluates a model through them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from rsgn import ops, optics
from rsgn.backends import get_backend
from rsgn.backends.optical_aware import (
    OpticalAwareBackend,
    OpticalAwareOptions,
    SurrogateReadout,
    ste_quantize,
)
from rsgn.backends.optical_aware import surrogate as sur
from rsgn.config import ModelConfig, RunConfig
from rsgn.data import make_task
from rsgn.evaluation import evaluate
from rsgn.model import RSGN


def _model(n_nodes: int = 64, seed: int = 0) -> RSGN:
    torch.manual_seed(seed)
    return RSGN(8, 5, ModelConfig(n_nodes=n_nodes, d_hidden=16, n_steps=2))


def _x(b: int = 16, t: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, 8, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_and_trains():
    be = get_backend("optical-aware")
    assert isinstance(be, OpticalAwareBackend)
    assert be.name == "optical-aware"
    caps = be.capabilities()
    assert caps.trains and isinstance(be.ops, ops.OpTable)
    assert be.options.preset == "bench" and be.options.noise_on and be.readout.noise
    assert caps.reference_tol is None
    ideal = get_backend("optical-aware", preset="ideal")
    assert ideal.options.preset == "ideal" and not ideal.readout.noise
    assert ideal.capabilities().reference_tol is not None


@pytest.mark.parametrize("options", [{"preset": "ideal"}, {"preset": "ideal", "noise": False}])
def test_ideal_noise_off_equals_torch(options):
    """The surrogate table without noise or extinction-ratio cap gives the torch target's
    training logits bit for bit and its gradients to float precision."""
    m = _model()
    x = _x()
    ref = m(x, ops_table=get_backend("torch", compile="eager").ops)
    out = m(x, ops_table=get_backend("optical-aware", **options).ops)
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
    ref = m(x).logits
    out = m(x, ops_table=get_backend("optical-aware", preset="bench", seed=3).ops).logits
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

    def logits(seed: int) -> torch.Tensor:
        return m(x, ops_table=get_backend("optical-aware", seed=seed).ops).logits

    a, b, c = logits(5), logits(5), logits(6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_program_evaluates_the_surrogate_model_per_sample():
    """The program: noise-free ideal = the torch target's logits; with bench noise each sample's
    noise is its own: the same logits evaluated in batches of 64 or 7, or interleaved with
    another program's calls; another seed, other noise."""
    m = _model()
    spec = m.export()
    x, y = _x(b=64), torch.randint(0, 5, (64,))
    ref, _ = get_backend("torch", compile="eager").prepare(spec)(x)
    ideal, rep = get_backend("optical-aware", preset="ideal").prepare(spec)(x)
    assert float((ideal - ref).abs().max() / ref.abs().max()) <= 1e-5
    assert len(rep.latency_per_inference) == 64 and rep.latency.value > 0
    table = rep.ledger.table.events
    want = sum(n * table[ev].joules() for ev, n in rep.ledger.totals().items())
    assert rep.energy.value == pytest.approx(want, rel=1e-12)
    be = get_backend("optical-aware", preset="bench", seed=2)
    runs = {bs: evaluate(spec, x, y, be, batch_size=bs, keep_logits=True) for bs in (64, 7)}
    assert torch.equal(runs[7].logits, runs[64].logits)
    totals = {bs: ev.report.ledger.totals() for bs, ev in runs.items()}
    for ev in ("mac_fp32", "transcendental_fp32"):  # (weights are read once per batch)
        assert totals[7][ev] == totals[64][ev], ev
    assert float((runs[64].logits - ref).abs().max()) > 1e-3  # the noise is there
    pa, pb = be.prepare(spec), be.prepare(_model(n_nodes=48, seed=1).export())
    parts = []
    for s in range(0, 64, 7):
        pb(x[s : s + 2])
        parts.append(pa(x[s : s + 7])[0])
    assert torch.equal(torch.cat(parts), runs[64].logits)
    other, _ = get_backend("optical-aware", preset="bench", seed=3).prepare(spec)(x)
    assert not torch.equal(other, runs[64].logits)


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
    rm = dataclasses.replace(SurrogateReadout.from_preset(p, True), step=0.0, extra_sd=0.0)
    n = 200_000
    s = torch.full((n,), power_w, dtype=torch.float64)
    est = rm.detect(s, _gen(0))
    det = p.detector_params()
    var_i = sum(
        v for k, v in optics.noise_variances(power_w, p.noise_bandwidth, det).items() if k != "adc"
    )
    var_p = float(var_i) / det.responsivity**2
    rel_se = math.sqrt(2.0 / n)  # sampling error of a variance estimate
    assert abs(float(est.var()) / var_p - 1.0) < 5 * rel_se
    assert abs(float(est.mean()) - power_w) < 5 * math.sqrt(var_p / n)


def test_full_receiver_matches_optics_sampler():
    """With ADC and ENOB noise the surrogate's statistics equal rsgn.optics.sample_photocurrent."""
    p = optics.load_preset("bench")
    rm, det = SurrogateReadout.from_preset(p, True), p.detector_params()
    n, power_w = 200_000, 5.3e-5
    est = rm.detect(torch.full((n,), power_w, dtype=torch.float64), _gen(1))
    ref = optics.estimate_power(
        optics.sample_photocurrent(
            np.full(n, power_w), p.noise_bandwidth, det, np.random.default_rng(2)
        ),
        det,
    )
    se_var = math.sqrt(2.0 / n) * ref.var()
    assert abs(float(est.var()) - ref.var()) < 6 * se_var
    assert abs(float(est.mean()) - ref.mean()) < 6 * math.sqrt(ref.var() / n)


def test_distance_noise_follows_the_inversion():
    """std(d^) = std(S^) / (sqrt(qr) I sinh d) to first order, at a distance where it is linear."""
    rm = get_backend("optical-aware", preset="bench").readout
    rm = dataclasses.replace(rm, step=0.0, extra_sd=0.0)
    d0, a_beam, r_node = 2.0, 0.5, 0.5
    n = 100_000
    d = torch.full((n,), d0, dtype=torch.float64, requires_grad=True)
    lnorm = rm.lorentz_norm(torch.tensor(a_beam, dtype=torch.float64))
    dh = rm.read_distance(d, lnorm, lnorm, torch.tensor(r_node), _gen(0))
    k = float(rm.scale(torch.tensor(r_node))) * float(lnorm)
    s = k * math.cosh(d0)
    sd_s = math.sqrt(float(rm.analog_variance(torch.tensor(rm.responsivity * s)))) / rm.responsivity
    expect = sd_s / (k * math.sinh(d0))
    assert abs(float(dh.detach().std()) / expect - 1.0) < 0.02
    assert abs(float(dh.detach().mean()) - d0) < 0.01 * expect + 5 * expect / math.sqrt(n)
    dh.sum().backward()
    assert torch.equal(d.grad, torch.ones(n, dtype=torch.float64))


def test_extinction_ratio_clips_node_radius():
    be = get_backend("optical-aware", preset="bench", noise=False)
    r_max = math.tanh(0.5 * math.log(1000.0) / 2.0)  # 30 dB
    assert be.readout.r_max == pytest.approx(r_max)
    x = torch.tensor([[0.99, 0.0, 0.0], [0.2, 0.1, 0.0]], requires_grad=True)
    a = 1.0 - (x.detach() ** 2).sum(-1)
    xc, ac = be.readout.clip_nodes(x, a)
    assert float(xc[0].detach().norm()) == pytest.approx(r_max, rel=1e-6)
    assert float(ac[0]) == pytest.approx(1.0 - r_max**2, rel=1e-6)
    assert torch.equal(xc[1], x[1].detach()) and float(ac[1]) == float(a[1])
    # bench without noise differs from torch only through the clip: a model whose nodes all lie
    # inside r_max gives the torch logits; with nodes outside, their channels read other
    # edge distances
    m = _model()
    with torch.no_grad():
        m.pos_v.mul_(0.5)
    xx = _x()
    assert float(m.positions()[0].detach().norm(dim=-1).max()) < r_max
    assert torch.equal(m(xx).logits, m(xx, ops_table=be.ops).logits)
    with torch.no_grad():
        m.pos_v.mul_(4.0)
        assert int((m.positions()[0].norm(dim=-1) > r_max).sum()) > 10
        assert not torch.allclose(m.build_graph().w, m.build_graph(be.ops).w)


def test_angle_error_rotation_statistics():
    be = get_backend("optical-aware", overrides="node.retardance_error=0,node.angle_error=0.02")
    rm = be.readout
    sd = rm.rot_channel
    assert sd == pytest.approx(math.sqrt(2) * 0.04)
    x = torch.tensor([[0.6, 0.0, 0.0]]).expand(50_000, 3).contiguous()
    xr = rm.rotate(x, sd, _gen(0))
    assert torch.allclose(xr.norm(dim=-1), torch.full((50_000,), 0.6), atol=1e-6)
    ang = torch.atan2(xr[:, 1:].norm(dim=-1), xr[:, 0])  # angle to the original direction
    # two perpendicular components of std sd: E[angle^2] = 2 sd^2 (small-angle)
    assert float((ang**2).mean()) == pytest.approx(2 * sd**2, rel=0.05)


def test_training_steps_on_optical_aware(tmp_path):
    from rsgn.config import apply_overrides
    from rsgn.training import train

    cfg = apply_overrides(
        RunConfig(),
        [
            "data.n_samples=60",
            "model.n_nodes=64",
            "model.n_steps=2",
            "model.d_hidden=16",
            "train.epochs=2",
            "train.min_steps=0",
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
    rm = get_backend("optical-aware", preset="bench", seed=5).readout
    g = m.build_graph()
    w = m.weights()
    s, sa = ops.spark_points(
        ops.encode(x, w.enc_w, w.enc_b), w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2,
        w.spark_scale,
    )  # fmt: skip
    ids = torch.randint(0, m.cfg.n_nodes, (x.shape[0], 4))
    d_ref = ops.token_distances(s, sa, g, ids)
    d_hw = sur.token_distances(s, sa, g, ids, readout=rm, gen=_gen(5))
    assert d_hw.shape == d_ref.shape == (x.shape[0], 4, x.shape[1])
    assert not torch.allclose(d_hw, d_ref)
    assert float((d_hw - d_ref).detach().abs().median()) < 0.5  # a readout error, small
    (gx_hw,) = torch.autograd.grad(d_hw.sum(), m.spark_scale, retain_graph=True)
    assert torch.isfinite(gx_hw) and gx_hw != 0


def test_options_are_typed():
    opts = OpticalAwareOptions(preset="lowpower", seed=2)
    assert opts.noise_on and not OpticalAwareOptions(preset="ideal").noise_on
    be = OpticalAwareBackend(opts)
    assert be.readout.r_max < get_backend("optical-aware").readout.r_max  # 20 dB < 30 dB


def test_written_beam_matches_the_core_encoder():
    """The surrogate's written state (drive grid of the sub-symbol powers, split error) has the
    core encoder's statistics: the DOP error p_written - p of both agree in mean and spread
    (pure drive quantisation and split error; angles off)."""
    from rsgn.backends.optical.readings import Receiver

    over = "encoder.angle_error=0,encoder.retardance_error=0,encoder.split_error=0.005,dac.bits=6"
    be = get_backend("optical-aware", preset="bench", overrides=over)
    rm = be.readout
    n = 20_000
    r = torch.rand(n, generator=_gen(0), dtype=torch.float64) * 0.95
    x = torch.stack([r, torch.zeros_like(r), torch.zeros_like(r)], -1)
    a = (1 - r) * (1 + r)
    xw, aw, lnorm, known = rm.write_beam(x, a, _gen(1))
    p = (2 * r / (1 + r * r)).numpy()

    def dop_of(radius):
        return 2 * radius / (1 + radius**2)

    err_s = dop_of(xw[:, 0].numpy()) - p
    rx = Receiver(be.options.load(), True, rm.power)
    s, kn = rx.write(p, np.tile([1.0, 0.0, 0.0], (n, 1)), np.random.default_rng(2))
    err_o = s[:, 1] / s[:, 0] - p
    assert abs(err_s.mean() - err_o.mean()) < 3e-4
    assert err_s.std() == pytest.approx(err_o.std(), rel=0.05)
    ratio_s = (lnorm / known).numpy()
    ratio_o = np.sqrt(np.clip(s[:, 0] ** 2 - s[:, 1] ** 2, 0, None)) / kn
    assert np.median(ratio_s) == pytest.approx(np.median(ratio_o), rel=0.01)
