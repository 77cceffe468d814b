r"""Hardware-aware training: the torch backend with differentiable surrogates of the optical core.

:class:`OpticalAwareBackend` is :class:`~rsgn.backends.torch_backend.TorchBackend` (differentiable,
same op sequence) except that the two ops the optical backend (:mod:`rsgn.backends.optical`) reads
optically, ``graph`` (the :math:`N K` edge distances) and ``ignite`` (the :math:`B T N`
spark-node distances), see the same non-idealities as on the core, with constants from the same
optics preset (:func:`rsgn.optics.load_preset`):

1. **Extinction-ratio cap.**  A node channel is a diattenuator of rapidity
   :math:`\eta = 2\,\mathrm{artanh}|x|`, capped at :math:`\eta_{max} = \tfrac12\ln ER`; the
   realised node is the position clipped to radius :math:`r_{max} = \tanh(\eta_{max}/2)`
   (differentiable radius clipping; :math:`a = 1 - r_{max}^2` there).  Beams are not clipped.
2. **Angle / retardance errors** (``noise`` on): a random small rotation of each channel's and
   each written beam's Stokes direction (norm kept, so :math:`a` is unchanged), Gaussian
   perpendicular displacement of per-component standard deviation
   :math:`\sqrt{\sigma_\delta^2 + k(2\sigma_\theta)^2}` (:math:`k = 2` for a channel: retarder and
   diattenuator azimuth; :math:`k = 1` for a beam: the SLM), the first-order effect of
   :func:`rsgn.optics.perturbed_retarder` and a rotator (an azimuth error turns the Stokes vector
   by :math:`2\,d\theta`).  Drawn afresh on every forward pass (the core draws them once per seed).
3. **Detected intensity** :math:`S = \sqrt{q r}\,I\cosh d` (W), :math:`\sqrt{qr} = q_{IL}
   e^{-\min(\eta,\eta_{max})}`, :math:`I = P\,a/(2-a)` the beam's Lorentz norm, then the receiver
   exactly as :func:`rsgn.optics.sample_photocurrent`: photocurrent :math:`\mathcal R S + I_d` plus
   Gaussian noise of variance shot + dark + thermal + RIN (:func:`rsgn.optics.noise_variances`),
   the nominal-N ADC (:func:`ste_quantize`, a straight-through estimator), the extra ADC noise
   that brings it to the ENOB, dark subtraction, and the known-norm inversion
   :math:`\hat d = \mathrm{arcosh}\max(1, \hat S/(\sqrt{qr}\,I))`; so the noise on :math:`d`
   follows from the intensity-to-distance inversion (amplified by :math:`1/\sinh d` and by small
   :math:`\sqrt{qr}\,I` near the boundary).

Gradients: the readout is straight-through, :math:`\hat d = d_c + \mathrm{sg}(\hat d - d_c)`, where
:math:`d_c` is the float32 distance between the clipped, rotated points: the forward value is the
noisy, quantised readout, the backward pass is that of :math:`d_c` (the quantiser's STE extended
to the whole readout, so that the :math:`1/\sinh\hat d` noise amplification never enters a
gradient).  Ignition picks, per node, the spark with the smallest *noisy* normalised reading and
the active set from those readings, as the core does.

With ``noise`` off and the ``ideal`` preset (infinite extinction ratio) every op is the torch op,
bit for bit.  The default preset is ``bench`` (``noise`` defaults to on unless the preset is
``ideal``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from rsgn import optics
from rsgn.backends.base import ActiveState, Capabilities, Graph
from rsgn.backends.optical import load_optical_preset
from rsgn.backends.torch_backend import TorchBackend
from rsgn.errors import RsgnError
from rsgn.geometry import dist_from_parts
from rsgn.optics.noise import ELEMENTARY_CHARGE

__all__ = ["OpticalAwareBackend", "ReadoutModel", "ste_quantize"]

_NOISY_CHUNK_ELEMS = 1 << 21  # (sample, token, node) readings per float64 chunk


def ste_quantize(x: torch.Tensor, step: float, levels: float) -> torch.Tensor:
    r"""Unipolar mid-tread quantiser :math:`\Delta\,\mathrm{clip}(\mathrm{round}(x/\Delta), 0,
    L-1)` (as :func:`rsgn.optics.quantize`) with a straight-through gradient (identity).

    ``step = 0`` or ``levels = inf`` returns ``x`` unchanged.
    """
    if step <= 0 or math.isinf(levels):
        return x
    q = step * torch.clamp(torch.round(x / step), 0.0, levels - 1.0)
    return x + (q - x).detach()


class ReadoutModel:
    r"""The receiver of one optics preset as torch operations (constants in SI units).

    ``detect(s, gen)`` maps optical powers ``s`` (W) to dark-subtracted power estimates (W) with
    the noise and quantisation of :func:`rsgn.optics.sample_photocurrent`.
    """

    def __init__(self, preset: optics.OpticalPreset) -> None:
        p = preset
        self.power = p.laser.optical_power
        self.responsivity = p.detector.responsivity
        self.dark = p.detector.dark_current
        self.bandwidth = p.detector.bandwidth
        det = p.detector_params()
        var = optics.noise_variances(0.0, self.bandwidth, det)
        self.var_const = float(var["dark"] + var["thermal"])  # A^2, signal-independent analogue
        self.shot_coeff = 2.0 * ELEMENTARY_CHARGE * self.bandwidth  # x photocurrent
        self.rin_coeff = (
            0.0 if math.isinf(p.laser.rin) else 10.0 ** (p.laser.rin / 10.0) * self.bandwidth
        )
        self.levels = 2.0**det.adc_bits
        self.step = 0.0 if math.isinf(det.adc_bits) else det.adc_full_scale / self.levels
        extra = det.adc_full_scale**2 / 12.0 * (4.0 ** (-det.adc_enob) - 4.0 ** (-det.adc_bits))
        self.extra_sd = math.sqrt(extra) if math.isfinite(extra) and extra > 0 else 0.0
        q_il = float(optics.insertion_transmittance(p.devices.insertion_loss_db))
        self.q_il = q_il
        self.eta_max = float(optics.max_rapidity(p.devices.extinction_ratio))
        self.r_max = math.tanh(self.eta_max / 2.0) if math.isfinite(self.eta_max) else 1.0
        s_d, s_t = p.devices.retardance_error, p.devices.angle_error
        self.rot_channel = math.sqrt(s_d**2 + 2.0 * (2.0 * s_t) ** 2)
        self.rot_beam = math.sqrt(s_d**2 + (2.0 * s_t) ** 2)

    def analog_variance(self, current: torch.Tensor) -> torch.Tensor:
        """Shot + dark + thermal + RIN photocurrent variance (A^2) at photocurrent ``current``."""
        c = current.clamp_min(0.0)
        return self.var_const + self.shot_coeff * c + self.rin_coeff * c * c

    def detect(self, s: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """Estimated optical power (W) of readings ``s`` (W): noise, ADC, dark subtraction."""
        i_sig = self.responsivity * s.clamp_min(0.0)
        sd = self.analog_variance(i_sig.detach()).sqrt()
        i = i_sig + self.dark + sd * _randn_like(s, gen)
        i = ste_quantize(i, self.step, self.levels)
        if self.extra_sd > 0:
            i = i + self.extra_sd * _randn_like(s, gen)
        return (i - self.dark) / self.responsivity

    def scale(self, r_node: torch.Tensor) -> torch.Tensor:
        r"""Channel transmission factor :math:`\sqrt{qr} = q_{IL}e^{-\min(\eta,\eta_{max})}`,
        :math:`\eta = 2\,\mathrm{artanh}\,r` (``r_node`` already clipped to :math:`r_{max}`)."""
        eta = 2.0 * torch.atanh(r_node.clamp(0.0, 1.0 - 1e-7))
        return self.q_il * torch.exp(-eta)

    def lorentz_norm(self, a: torch.Tensor) -> torch.Tensor:
        """Known Lorentz norm I = P a / (2 - a) of an encoded beam (W)."""
        return self.power * a / (2.0 - a)


def _randn_like(t: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    if gen is None:
        return torch.randn_like(t)
    return torch.randn(t.shape, generator=gen, dtype=t.dtype, device=gen.device).to(t.device)


class OpticalAwareBackend(TorchBackend):
    """Torch backend with the optical core's distance non-idealities as differentiable surrogates.

    Parameters
    ----------
    preset : optics preset name or TOML path (default ``'bench'``), or an
        :class:`rsgn.optics.OpticalPreset` object (e.g. with fields overridden).
    seed : seeds the surrogate's noise stream (a CPU ``torch.Generator``).
    device : torch device of the ops.
    noise : detector noise, quantisation and angle/retardance errors on/off (default: on unless
        the preset is ``ideal``); the extinction-ratio cap always applies.
    """

    name = "optical-aware"

    def __init__(
        self,
        preset: str | Path | optics.OpticalPreset | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        *,
        noise: bool | None = None,
    ) -> None:
        super().__init__(device=device)
        self.preset = load_optical_preset("bench" if preset is None else preset)
        if not isinstance(seed, int) or seed < 0:
            raise RsgnError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self.noise = (self.preset.name != "ideal") if noise is None else bool(noise)
        self.readout_model = ReadoutModel(self.preset)
        self.gen = torch.Generator().manual_seed(seed)

    def capabilities(self) -> Capabilities:
        caps = super().capabilities()
        caps.notes = (
            f"torch ops with surrogate optical distance readout (preset {self.preset.name!r}, "
            f"noise {'on' if self.noise else 'off'}): extinction-ratio radius clip, "
            "angle/retardance rotation, detector noise, straight-through ADC quantisation"
        )
        return caps

    # -------------------------------------------------------------------- surrogate parts
    def clip_nodes(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Node channel positions clipped to the extinction-ratio radius r_max (and their a)."""
        r_max = self.readout_model.r_max
        if r_max >= 1.0:
            return x, a
        r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        over = r > r_max
        xc = torch.where(over, x * (r_max / r.clamp_min(1e-30)), x)
        ac = torch.where(over.squeeze(-1), torch.full_like(a, 1.0 - r_max * r_max), a)
        return xc, ac

    def rotate(self, x: torch.Tensor, sd: float) -> torch.Tensor:
        """Small random rotation of each point's direction (norm kept): perpendicular Gaussian
        displacement of per-component std ``sd`` (rad), renormalised."""
        if not self.noise or sd == 0:
            return x
        xd = x.detach()
        r = torch.linalg.vector_norm(xd, dim=-1, keepdim=True)
        u = xd / r.clamp_min(1e-30)
        xi = _randn_like(xd, self.gen)
        xi = xi - (xi * u).sum(-1, keepdim=True) * u
        disp = sd * r * xi
        norm = torch.sqrt(1.0 + (sd * xi).pow(2).sum(-1, keepdim=True))
        return (x + disp) / norm

    def read_distance(
        self, d: torch.Tensor, a_beam: torch.Tensor, r_node: torch.Tensor
    ) -> torch.Tensor:
        r"""Straight-through noisy readout of distances ``d`` (beams' ``a``, nodes' clipped
        radius, broadcasting): value arcosh(max(1, S^/(sqrt(qr) I))), gradient that of ``d``."""
        if not self.noise:
            return d
        rm = self.readout_model
        with torch.no_grad():
            k = (rm.scale(r_node) * rm.lorentz_norm(a_beam)).double()
            s_hat = rm.detect(k * torch.cosh(d.detach().double()), self.gen)
            dh = torch.arccosh(torch.clamp(s_hat / k, min=1.0)).to(d.dtype)
        return d + (dh - d).detach()

    # -------------------------------------------------------------------- graph
    def edge_distances(
        self, x: torch.Tensor, a: torch.Tensor, in_idx: torch.Tensor
    ) -> torch.Tensor:
        """Optically read edge distances for the torch graph op: channel i (node i, clipped
        and rotated) reads beam j (node j's state, rotated), through the noisy readout."""
        if not self.noise and self.readout_model.r_max >= 1.0:
            return super().edge_distances(x, a, in_idx)
        xc, ac = self.clip_nodes(x, a)
        xc = self.rotate(xc, self.readout_model.rot_channel)
        xb = self.rotate(x, self.readout_model.rot_beam)
        d0 = dist_from_parts(xc.unsqueeze(1), xb[in_idx], ac.unsqueeze(1), a[in_idx])
        r_node = torch.linalg.vector_norm(xc.detach(), dim=-1)
        return self.read_distance(d0, a[in_idx].detach(), r_node.unsqueeze(1))

    def token_distances(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, graph: Graph, ids: torch.Tensor
    ) -> torch.Tensor:
        """The ``attend`` weights' distances [B, W, T] through the same surrogate readout as
        ignition (clipped, rotated channel and beam; straight-through noisy readout)."""
        if not self.noise and self.readout_model.r_max >= 1.0:
            return super().token_distances(sparks, spark_a, graph, ids)
        rm = self.readout_model
        xc, ac = self.clip_nodes(graph.x, graph.a)
        xc = self.rotate(xc, rm.rot_channel)
        sp_r = self.rotate(sparks, rm.rot_beam)
        p, ap = xc[ids], ac[ids]  # [B, W, D], [B, W]
        d0 = dist_from_parts(
            sp_r.unsqueeze(1), p.unsqueeze(2), spark_a.unsqueeze(1), ap.unsqueeze(2)
        )
        r_node = torch.linalg.vector_norm(p.detach(), dim=-1).unsqueeze(2)
        pairs = d0.numel()
        self.count("mac_fp32", pairs * (sparks.shape[-1] + 1))
        self.count("transcendental_fp32", pairs)
        self.count("sram_word_32b", ids.numel() * (sparks.shape[-1] + 1))
        return self.read_distance(d0, spark_a.detach().unsqueeze(1), r_node)

    # -------------------------------------------------------------------- ignite
    def ignite(
        self,
        sparks: torch.Tensor,
        spark_a: torch.Tensor,
        graph: Graph,
        *,
        sigma: float,
        eps: float,
        cap: int,
        method: str,
    ) -> ActiveState:
        r"""Ignition on surrogate optical readings: per node the spark with the smallest noisy
        normalised reading :math:`\hat c = \hat S/(\sqrt{qr}\,I)` (:math:`= \cosh d` noise-free),
        the active set by the torch selection on :math:`\delta = (\hat c - 1)/2`, then
        :math:`\alpha = \exp(-\hat d^2/2\sigma^2)` with the straight-through readout
        :math:`\hat d = d_c + \mathrm{sg}(\mathrm{arcosh}\,\hat c - d_c)`."""
        if not self.noise and self.readout_model.r_max >= 1.0:
            return super().ignite(
                sparks, spark_a, graph, sigma=sigma, eps=eps, cap=cap, method=method
            )
        self.count_op("ignite")
        rm = self.readout_model
        bsz, t, dsp = sparks.shape
        n = graph.n_nodes
        xc, ac = self.clip_nodes(graph.x, graph.a)
        xc = self.rotate(xc, rm.rot_channel)
        sp_r = self.rotate(sparks, rm.rot_beam)
        with torch.no_grad():
            chunk = max(1, _NOISY_CHUNK_ELEMS // max(1, bsz * t))
            cmin = torch.empty(bsz, n, device=sparks.device, dtype=torch.float64)
            tok = torch.empty(bsz, n, device=sparks.device, dtype=torch.int64)
            sp, sa = sp_r.detach(), spark_a.detach()
            s2 = (sp * sp).sum(-1, keepdim=True)
            xd, ad = xc.detach(), ac.detach()
            p2 = (xd * xd).sum(-1)
            k_node = rm.scale(torch.linalg.vector_norm(xd, dim=-1)).double()  # [N]
            k_beam = rm.lorentz_norm(sa.double())  # [B, T]
            for s0 in range(0, n, chunk):
                sl = slice(s0, s0 + chunk)
                num = torch.baddbmm(s2 + p2[sl], sp, xd[sl].T.expand(bsz, -1, -1), alpha=-2.0)
                delta = num.clamp_min_(0).double() / (sa.double().unsqueeze(2) * ad[sl].double())
                c = 1.0 + 2.0 * delta  # cosh d, [B, T, n_chunk]
                if self.noise:
                    kk = k_beam.unsqueeze(2) * k_node[sl]
                    c = rm.detect(kk * c, self.gen) / kk
                cmin[:, sl], tok[:, sl] = c.min(1)
            dproxy = (0.5 * (cmin.clamp_min(1.0) - 1.0)).to(sparks.dtype)
        key = -dproxy if method == "radix" else -torch.log(dproxy.clamp_min(1e-30))
        ids, valid = self._select_dense(key, cap, method)
        tsel = tok.gather(1, ids)
        bidx = torch.arange(bsz, device=sparks.device).unsqueeze(1)
        s_sel = sp_r[bidx, tsel]
        a_sel = spark_a.gather(1, tsel)
        d0 = dist_from_parts(s_sel, xc[ids], a_sel, ac[ids])
        if self.noise:
            dh = torch.arccosh(cmin.gather(1, ids).clamp_min(1.0)).to(d0.dtype)
            d = d0 + (dh - d0).detach()
        else:
            d = d0
        alpha = torch.exp(-(d * d) / (2 * sigma * sigma))
        valid = valid & (alpha.detach() > eps)
        alpha = alpha * valid
        self.count("mac_fp32", bsz * t * n * (dsp + 1))
        self.count("add_fp32", bsz * t * n)
        self.count("int_op_32b", bsz * n * 4)
        self.count("transcendental_fp32", ids.numel() * 3)
        self.count("sram_word_32b", bsz * t * (dsp + 1) + n * (dsp + 1))
        return ActiveState(ids=ids, valid=valid, alpha=alpha, token=tsel)
