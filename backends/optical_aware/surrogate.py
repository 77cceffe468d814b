r"""Differentiable surrogates of the optical core's distance readout, as torch functions.

The ops the optical target reads optically, ``graph`` (the :math:`N K` edge distances),
``ignite`` (the :math:`B T N` spark-node distances) and the ``attend`` initial state's
:math:`B W T` distances, see the core's non-idealities with constants from the same optics
preset:

1. **Extinction-ratio cap.** A node channel is a diattenuator of rapidity
   :math:`\eta = 2\,\mathrm{artanh}|x|`, capped at :math:`\eta_{max} = \tfrac12\ln ER`; the
   realised node is the position clipped to radius :math:`r_{max} = \tanh(\eta_{max}/2)`
   (:meth:`SurrogateReadout.clip_nodes`; :math:`a = 1 - r_{max}^2` there). Beams are not clipped.
2. **Angle / retardance errors** (noise on): a random small rotation of each channel's and
   each written beam's Stokes direction (norm kept, so :math:`a` is unchanged), Gaussian
   perpendicular displacement of per-component standard deviation
   :math:`\sqrt{\sigma_\delta^2 + k(2\sigma_\theta)^2}` (:math:`k = 2` for a channel: retarder and
   diattenuator azimuth, ``node`` errors; :math:`k = 1` for a beam: the encoder's errors), the
   first-order effect of :func:`rsgn.optics.perturbed_retarder` and a rotator (an azimuth error
   turns the Stokes vector by :math:`2\,d\theta`). Drawn afresh on every call (the core draws
   the channels' once per seed).
3. **The written state** (noise on, :meth:`SurrogateReadout.write_beam`): the drives quantise
   the sub-symbol powers :math:`w_\pm = (1\pm p)/2` to ``dac.bits`` exactly as
   :func:`rsgn.optics.quantized_drive` (straight-through), the direction quantisation enters as
   the uniform error of its grid, :math:`\Delta/\sqrt{12}` added to the beam's rotation, and a
   power-split error :math:`\epsilon \sim N(0, \sigma^2)` moves the DOP to :math:`p_q - 2\epsilon`;
   the readout divides by the quantised state's known norm, not by the split state's.
4. **Detected intensity** :math:`S = \sqrt{q r}\,I\cosh d` (W), :math:`\sqrt{qr} = q_{IL}
   e^{-\min(\eta,\eta_{max})}` (:math:`q_{IL}` both elements' insertion loss),
   :math:`I = P(w_+ + w_-)\sqrt{1 - p^2}` the written state's Lorentz norm (:math:`P` the link
   budget's channel power), then the receiver exactly as
   :func:`rsgn.optics.sample_photocurrent` over the window's noise bandwidth: photocurrent
   :math:`\mathcal R S + I_d` plus Gaussian noise of variance shot + dark + thermal + RIN
   (:func:`rsgn.optics.noise_variances`), the nominal-N ADC (:func:`ste_quantize`, a
   straight-through estimator), the extra ADC noise that brings it to the ENOB, dark
   subtraction, and the known-norm inversion :math:`\hat d = \mathrm{arcosh}\max(1, \hat S/
   (\sqrt{qr}\,I_{known}))`; so the noise on :math:`d` follows from the intensity-to-distance
   inversion (amplified by :math:`1/\sinh d` and by small :math:`\sqrt{qr}\,I` near the boundary).

Gradients: the readout is straight-through, :math:`\hat d = d_c + \mathrm{sg}(\hat d - d_c)`, where
:math:`d_c` is the float32 distance between the clipped, rotated points: the forward value is the
noisy, quantised readout, the backward pass is that of :math:`d_c` (the quantiser's STE extended
to the whole readout, so that the :math:`1/\sinh\hat d` noise amplification never enters a
gradient). Ignition picks, per node, the spark with the smallest *noisy* normalised reading and
the active set from those readings, as the core does.

With noise off every surrogate is the reference op on the clipped nodes; with the ``ideal``
preset (infinite extinction ratio) nothing is clipped. Noise comes from the torch Generator the
table is built with (:func:`surrogate_table`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial

import torch

from rsgn import ops, optics
from rsgn.errors import RsgnError
from rsgn.geometry import dist_from_parts
from rsgn.optics.noise import ELEMENTARY_CHARGE
from rsgn.state import ActiveState, Graph

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


def randn_like(t: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Standard normals shaped like ``t`` from ``gen`` (drawn on the generator's device)."""
    if gen is None:
        return torch.randn_like(t)
    return torch.randn(t.shape, generator=gen, dtype=t.dtype, device=gen.device).to(t.device)


@dataclass(frozen=True)
class SurrogateReadout:
    r"""The receiver and devices of one optics preset as torch operations (SI constants).

    :meth:`detect` maps optical powers (W) to dark-subtracted power estimates (W) with the noise
    and quantisation of :func:`rsgn.optics.sample_photocurrent`.
    """

    noise: bool
    """Detector noise, quantisation and angle/retardance errors on (the ER cap always applies)."""
    power: float
    responsivity: float
    dark: float
    var_const: float
    """Signal-independent analogue variance, dark + thermal (A^2)."""
    shot_coeff: float
    """Shot-noise variance per ampere of photocurrent, 2 e B (A)."""
    rin_coeff: float
    """RIN variance per squared ampere, 10^(RIN/10) B."""
    levels: float
    step: float
    """ADC step (A); 0 without quantisation."""
    extra_sd: float
    """Extra ADC noise bringing the nominal bits to the ENOB (A)."""
    q_il: float
    r_max: float
    rot_channel: float
    rot_beam: float
    """Per-component rotation of a written beam: encoder errors and the direction grid."""
    dac_levels: float
    """2^b - 1 levels of the sub-symbol power drive (inf: exact drives)."""
    split_sd: float
    """Std of the power-split error of a written state."""

    @classmethod
    def from_preset(cls, p: optics.OpticalPreset, noise: bool) -> SurrogateReadout:
        try:
            power = p.channel_power()
        except ValueError as exc:
            raise RsgnError(f"optical link budget outside its regime: {exc}") from None
        det = p.detector_params()
        bw = p.noise_bandwidth
        var = optics.noise_variances(0.0, bw, det)
        extra = det.adc_full_scale**2 / 12.0 * (4.0 ** (-det.adc_enob) - 4.0 ** (-det.adc_bits))
        eta_max = float(optics.max_rapidity(p.node.extinction_ratio))
        s_d, s_t = p.node.retardance_error, p.node.angle_error
        e_d, e_t = p.encoder.retardance_error, p.encoder.angle_error
        bits = p.dac.bits
        grid = 0.0 if math.isinf(bits) else (2 * math.pi / 2**bits) ** 2 + (math.pi / 2**bits) ** 2
        return cls(
            noise=noise,
            power=power,
            responsivity=p.detector.responsivity,
            dark=p.detector.dark_current,
            var_const=float(var["dark"] + var["thermal"]),
            shot_coeff=2.0 * ELEMENTARY_CHARGE * bw,
            rin_coeff=0.0 if math.isinf(p.laser.rin) else 10.0 ** (p.laser.rin / 10.0) * bw,
            levels=2.0**det.adc_bits,
            step=0.0 if math.isinf(det.adc_bits) else det.adc_full_scale / 2.0**det.adc_bits,
            extra_sd=math.sqrt(extra) if math.isfinite(extra) and extra > 0 else 0.0,
            q_il=p.channel_transmittance,
            r_max=math.tanh(eta_max / 2.0) if math.isfinite(eta_max) else 1.0,
            rot_channel=math.sqrt(s_d**2 + 2.0 * (2.0 * s_t) ** 2),
            rot_beam=math.sqrt(e_d**2 + (2.0 * e_t) ** 2 + grid / 24.0),
            dac_levels=2.0**bits - 1.0,
            split_sd=p.encoder.split_error,
        )

    # ---------------------------------------------------------------------------- receiver
    def analog_variance(self, current: torch.Tensor) -> torch.Tensor:
        """Shot + dark + thermal + RIN photocurrent variance (A^2) at photocurrent ``current``."""
        c = current.clamp_min(0.0)
        return self.var_const + self.shot_coeff * c + self.rin_coeff * c * c

    def detect(self, s: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """Estimated optical power (W) of readings ``s`` (W): noise, ADC, dark subtraction."""
        i_sig = self.responsivity * s.clamp_min(0.0)
        sd = self.analog_variance(i_sig.detach()).sqrt()
        i = i_sig + self.dark + sd * randn_like(s, gen)
        i = ste_quantize(i, self.step, self.levels)
        if self.extra_sd > 0:
            i = i + self.extra_sd * randn_like(s, gen)
        return (i - self.dark) / self.responsivity

    def scale(self, r_node: torch.Tensor) -> torch.Tensor:
        r"""Channel transmission factor :math:`\sqrt{qr} = q_{IL}e^{-\min(\eta,\eta_{max})}`,
        :math:`\eta = 2\,\mathrm{artanh}\,r` (``r_node`` already clipped to :math:`r_{max}`)."""
        eta = 2.0 * torch.atanh(r_node.clamp(0.0, 1.0 - 1e-7))
        return self.q_il * torch.exp(-eta)

    def lorentz_norm(self, a: torch.Tensor) -> torch.Tensor:
        """Lorentz norm I = P a / (2 - a) of an exactly written beam (W)."""
        return self.power * a / (2.0 - a)

    def write_beam(
        self, x: torch.Tensor, a: torch.Tensor, gen: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""The state written for beams ``x`` (conformal factors ``a``): its ball point and
        conformal factor, its Lorentz norm and the norm the readout divides by (W). Noise off:
        the beam itself, both norms :math:`P a/(2-a)`. Noise on: rotated (encoder errors and the
        direction grid), power drives quantised, split error (module docstring); the radial
        change is straight-through."""
        if not self.noise:
            lnorm = self.lorentz_norm(a.detach())
            return x, a, lnorm, lnorm
        xr = self.rotate(x, self.rot_beam, gen)
        with torch.no_grad():
            ad = a.detach().double()
            r = torch.sqrt((1.0 - ad).clamp_min(0.0))
            p = 2.0 * r / (2.0 - ad)
            if math.isfinite(self.dac_levels):
                lv = self.dac_levels  # both codes >= 1 (as the core's interior drive)
                w_plus = torch.round(0.5 * (1.0 + p) * lv).clamp(1.0, lv) / lv
                w_minus = torch.round(0.5 * (1.0 - p) * lv).clamp(1.0, lv) / lv
                total = w_plus + w_minus
                pq = (w_plus - w_minus) / total.clamp_min(1e-30)
            else:
                total, pq = torch.ones_like(p), p
            eps = torch.zeros_like(p)
            if self.split_sd > 0:
                eps = (self.split_sd * randn_like(p, gen)).clamp(-0.5 * (1 - pq), 0.5 * (1 + pq))
            pw = (pq - 2.0 * eps).clamp(-1.0, 1.0)  # a split beyond p/2 flips the state
            c_known = torch.sqrt((1.0 - pq * pq).clamp_min(0.0))
            c_act = torch.sqrt((1.0 - pw * pw).clamp_min(0.0))
            known = self.power * total * c_known
            actual = self.power * total * c_act
            rw = pw / (1.0 + c_act)  # Poincare radius of DOP pw
            aw = ((1.0 - rw) * (1.0 + rw)).clamp_min(1e-12)  # a dark sub-symbol: pure state
            scale = torch.where(r > 0, rw / r.clamp_min(1e-30), torch.ones_like(r))
        xw = xr - xr.detach() + xr.detach() * scale.unsqueeze(-1).to(x.dtype)  # value exact
        aw = a - a.detach() + aw.to(a.dtype).clamp_min(1e-12)
        return xw, aw, actual, known

    # ---------------------------------------------------------------------------- devices
    def clip_nodes(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Node channel positions clipped to the extinction-ratio radius r_max (and their a)."""
        if self.r_max >= 1.0:
            return x, a
        r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        over = r > self.r_max
        xc = torch.where(over, x * (self.r_max / r.clamp_min(1e-30)), x)
        ac = torch.where(over.squeeze(-1), torch.full_like(a, 1.0 - self.r_max**2), a)
        return xc, ac

    def rotate(self, x: torch.Tensor, sd: float, gen: torch.Generator | None) -> torch.Tensor:
        """Small random rotation of each point's direction (norm kept): perpendicular Gaussian
        displacement of per-component std ``sd`` (rad), renormalised (noise off: ``x``)."""
        if not self.noise or sd == 0:
            return x
        xd = x.detach()
        r = torch.linalg.vector_norm(xd, dim=-1, keepdim=True)
        u = xd / r.clamp_min(1e-30)
        xi = randn_like(xd, gen)
        xi = xi - (xi * u).sum(-1, keepdim=True) * u
        norm = torch.sqrt(1.0 + (sd * xi).pow(2).sum(-1, keepdim=True))
        return (x + sd * r * xi) / norm

    def read_distance(
        self,
        d: torch.Tensor,
        lnorm: torch.Tensor,
        known: torch.Tensor,
        r_node: torch.Tensor,
        gen: torch.Generator | None,
    ) -> torch.Tensor:
        r"""Straight-through noisy readout of distances ``d`` (beams' Lorentz norm and the norm
        the readout divides by, nodes' clipped radius, broadcasting): value
        arcosh(max(1, S^/(sqrt(qr) I_known))), gradient that of ``d``."""
        if not self.noise:
            return d
        with torch.no_grad():
            k = self.scale(r_node).double()
            s_hat = self.detect(k * lnorm.double() * torch.cosh(d.detach().double()), gen)
            dh = torch.arccosh(torch.clamp(s_hat / (k * known.double()), min=1.0)).to(d.dtype)
        return d + (dh - d).detach()


# ------------------------------------------------------------------------------ the ops
def edge_distances(
    x: torch.Tensor,
    a: torch.Tensor,
    in_idx: torch.Tensor,
    *,
    readout: SurrogateReadout,
    gen: torch.Generator | None,
) -> torch.Tensor:
    """Surrogate edge distances [N, K]: channel i (node i, clipped and rotated) reads beam j
    (node j's state, rotated), through the noisy readout."""
    xc, ac = readout.clip_nodes(x, a)
    xc = readout.rotate(xc, readout.rot_channel, gen)
    xb, ab, lnorm, known = readout.write_beam(x, a, gen)
    d0 = dist_from_parts(xc.unsqueeze(1), xb[in_idx], ac.unsqueeze(1), ab[in_idx])
    r_node = torch.linalg.vector_norm(xc.detach(), dim=-1)
    return readout.read_distance(d0, lnorm[in_idx], known[in_idx], r_node.unsqueeze(1), gen)


def token_distances(
    sparks: torch.Tensor,
    spark_a: torch.Tensor,
    graph: Graph,
    ids: torch.Tensor,
    *,
    readout: SurrogateReadout,
    gen: torch.Generator | None,
) -> torch.Tensor:
    """The 'attend' weights' distances [B, W, T] through the same surrogate readout as
    ignition (clipped, rotated channel and beam; straight-through noisy readout)."""
    xc, ac = readout.clip_nodes(graph.x, graph.a)
    xc = readout.rotate(xc, readout.rot_channel, gen)
    sp_w, sa_w, lnorm, known = readout.write_beam(sparks, spark_a, gen)
    p, ap = xc[ids], ac[ids]  # [B, W, D], [B, W]
    d0 = dist_from_parts(sp_w.unsqueeze(1), p.unsqueeze(2), sa_w.unsqueeze(1), ap.unsqueeze(2))
    r_node = torch.linalg.vector_norm(p.detach(), dim=-1).unsqueeze(2)
    return readout.read_distance(d0, lnorm.unsqueeze(1), known.unsqueeze(1), r_node, gen)


class _NoisyIgnition:
    """The primitives of one surrogate ignition: noisy readings select, the same readings
    give the straight-through distances (local to one :func:`ignite` call)."""

    def __init__(
        self,
        readout: SurrogateReadout,
        gen: torch.Generator | None,
        lnorm: torch.Tensor,
        known: torch.Tensor,
    ) -> None:
        self.readout, self.gen = readout, gen
        self.lnorm, self.known = lnorm.double(), known.double()  # written sparks' norms [B, T]
        self.cmin: torch.Tensor | None = None
        self.ids: torch.Tensor | None = None

    @torch.no_grad()
    def nearest(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Per node the spark of smallest noisy normalised reading :math:`\hat c = \hat S /
        (\sqrt{qr} I_{known})` (= cosh d noise-free) and its proxy delta = (c - 1)/2: [B, N]
        each."""
        rm = self.readout
        bsz, t, _ = sparks.shape
        n = x.shape[0]
        chunk = max(1, _NOISY_CHUNK_ELEMS // max(1, bsz * t))
        cmin = torch.empty(bsz, n, device=sparks.device, dtype=torch.float64)
        tok = torch.empty(bsz, n, device=sparks.device, dtype=torch.int64)
        sp, sa = sparks.detach(), spark_a.detach()
        s2 = (sp * sp).sum(-1, keepdim=True)
        xd, ad = x.detach(), a.detach()
        p2 = (xd * xd).sum(-1)
        k_node = rm.scale(torch.linalg.vector_norm(xd, dim=-1)).double()  # [N]
        for s0 in range(0, n, chunk):
            sl = slice(s0, s0 + chunk)
            num = torch.baddbmm(s2 + p2[sl], sp, xd[sl].T.expand(bsz, -1, -1), alpha=-2.0)
            delta = num.clamp_min_(0).double() / (sa.double().unsqueeze(2) * ad[sl].double())
            reading = self.lnorm.unsqueeze(2) * k_node[sl] * (1.0 + 2.0 * delta)
            c = rm.detect(reading, self.gen) / (self.known.unsqueeze(2) * k_node[sl])  # cosh d
            cmin[:, sl], tok[:, sl] = c.min(1)
        self.cmin = cmin
        return (0.5 * (cmin.clamp_min(1.0) - 1.0)).to(sparks.dtype), tok

    def select(self, score: torch.Tensor, cap: int, method: str) -> tuple[torch.Tensor, ...]:
        """:func:`rsgn.ops.select_dense`, keeping the selected ids."""
        ids, valid = ops.select_dense(score, cap, method)
        self.ids = ids
        return ids, valid

    def distances(
        self, s_sel: torch.Tensor, a_sel: torch.Tensor, x_sel: torch.Tensor, a_nodes: torch.Tensor
    ) -> torch.Tensor:
        r""":math:`\hat d = d_c + \mathrm{sg}(\mathrm{arcosh}\,\hat c - d_c)` of the selected
        readings, :math:`d_c` the exact distance of the clipped, rotated points."""
        d0 = ops.spark_distances(s_sel, a_sel, x_sel, a_nodes)
        dh = torch.arccosh(self.cmin.gather(1, self.ids).clamp_min(1.0)).to(d0.dtype)
        return d0 + (dh - d0).detach()


def ignite(
    sparks: torch.Tensor,
    spark_a: torch.Tensor,
    graph: Graph,
    *,
    sigma: float,
    eps: float,
    cap: int,
    method: str,
    readout: SurrogateReadout,
    gen: torch.Generator | None,
) -> ActiveState:
    r""":func:`rsgn.ops.ignite` on the surrogate readings: nodes clipped and rotated, sparks
    written (:meth:`SurrogateReadout.write_beam`); with noise, the active set from the noisy
    normalised readings and
    :math:`\alpha = \exp(-\hat d^2/2\sigma^2)` with the straight-through readout of the same
    readings (:class:`_NoisyIgnition`); without, the reference ignition of the clipped nodes."""
    xc, ac = readout.clip_nodes(graph.x, graph.a)
    kw = dict(sigma=sigma, eps=eps, cap=cap, method=method)
    if not readout.noise:
        return ops.ignite(sparks, spark_a, dataclasses.replace(graph, x=xc, a=ac), **kw)
    xc = readout.rotate(xc, readout.rot_channel, gen)
    sp_w, sa_w, lnorm, known = readout.write_beam(sparks, spark_a, gen)
    call = _NoisyIgnition(readout, gen, lnorm, known)
    g = dataclasses.replace(graph, x=xc, a=ac)
    return ops.ignite(
        sp_w, sa_w, g, nearest=call.nearest, select=call.select, distances=call.distances, **kw
    )


def surrogate_table(readout: SurrogateReadout, gen: torch.Generator | None) -> ops.OpTable:
    """The reference composition with the surrogate distances (``edge_distances``,
    ``token_distances``) and the surrogate ignition, drawing noise from ``gen``."""
    kw = dict(readout=readout, gen=gen)
    table = ops.make_table(
        edge_distances=partial(edge_distances, **kw), token_distances=partial(token_distances, **kw)
    )
    return dataclasses.replace(table, ignite=partial(ignite, **kw))
