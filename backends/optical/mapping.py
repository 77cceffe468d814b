r"""Mapping a model's nodes onto the core's readout channels (at ``prepare``, once).

A ball point :math:`x` (conformal factor :math:`a = 1-|x|^2`, direction :math:`\hat n`) is, in
Stokes space, :math:`S = S_0(1,\ p\hat n)` with degree of polarisation and Lorentz norm

.. math:: p = \frac{2|x|}{1+|x|^2} = \frac{2|x|}{2-a},\qquad I = S_0\sqrt{1-p^2} = S_0\frac{a}{2-a}.

Each node becomes a readout channel: a retarder that turns the node's Stokes axis onto
:math:`S_1`, then a linear diattenuator (:func:`rsgn.optics.readout_chain`) of rapidity
:math:`\eta = 2\,\mathrm{artanh}|x|` (node opposite the transmission axis), clipped to
:math:`\eta_{max} = \frac12\ln ER` by the extinction ratio (``node.extinction_ratio``) and
scaled by the insertion loss of both elements: :math:`q = 10^{-2 IL/10}`,
:math:`r = q e^{-2\min(\eta,\eta_{max})}` (``node.insertion_loss_db`` each). The calibration
knows q and r (the readout divides by :math:`\sqrt{qr}`). With noise on, every channel's
retarder has a retardance error (an extra retarder of retardance :math:`N(0,\sigma_\delta^2)`
at a random azimuth) and an azimuth error :math:`N(0,\sigma_\theta^2)`, its diattenuator an
azimuth error (``node.retardance_error``, ``node.angle_error``); these static errors are drawn
once per (seed, program) from ``numpy.random.default_rng([seed, 0])``: a closed-loop setting
leaves this residual, not a quantisation step.

One beam spans only :math:`H^3`: ``d_space <= 3`` embeds isometrically (zero padding); for
``d_space > 3`` (``planar``) each channel is programmed in its node's own frame (node on
:math:`S_1`) and every (beam, node) pair is rotated electronically into the plane of the two
points (:mod:`.readings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rsgn import optics


@dataclass(frozen=True)
class BallPoints:
    """Points of the Poincaré ball in float64: radius ``r``, conformal factor ``a`` (with
    r^2 + a = 1) and unit direction ``n`` [..., D]."""

    r: np.ndarray
    a: np.ndarray
    n: np.ndarray

    def sample(self, b: int) -> BallPoints:
        """The points of sample ``b`` (leading axis)."""
        return BallPoints(self.r[b], self.a[b], self.n[b])


def ball_parts(x: torch.Tensor, a: torch.Tensor) -> BallPoints:
    r"""float64 radius, conformal factor and unit direction of ball points given as (x, a).

    The model's conformal factor :math:`a = \mathrm{sech}^2|v|` is exact where :math:`1-|x|^2`
    cancels; so for :math:`a < 1/2` the radius is :math:`\sqrt{1-a}` and :math:`a` is kept, else
    :math:`a = 1 - |x|^2` from the float32 coordinates. Either way the point is consistent
    (:math:`r^2 + a = 1` in float64), as a physical state must be.
    """
    xx = x.detach().double().cpu().numpy()
    aa = a.detach().double().cpu().numpy()
    nx = np.linalg.norm(xx, axis=-1)
    near = aa < 0.5
    r = np.where(near, np.sqrt(np.clip(1.0 - aa, 0.0, 1.0)), nx)
    a64 = np.where(near, aa, 1.0 - nx * nx)
    e1 = np.zeros(xx.shape[-1])
    e1[0] = 1.0
    n = np.where(nx[..., None] > 0, xx / np.where(nx > 0, nx, 1.0)[..., None], e1)
    return BallPoints(r, a64, n)


def pad3(n: np.ndarray) -> np.ndarray:
    """Directions of dimension <= 3 embedded in the Stokes vector's three components."""
    d = n.shape[-1]
    if d == 3:
        return n
    return np.concatenate([n, np.zeros(n.shape[:-1] + (3 - d,))], axis=-1)


@dataclass(frozen=True)
class Channels:
    """The programmed readout channels, one per node, and what the readout inverts with."""

    row0: np.ndarray
    """First Mueller row of each realised channel [N, 4] (in the node frame if ``planar``)."""
    q: np.ndarray
    """Transmittance along the diattenuator's axis [N]."""
    rt: np.ndarray
    """Transmittance across it [N] (after the extinction-ratio clip)."""
    clipped: np.ndarray
    """Whether the extinction ratio capped the node's rapidity [N]."""
    n: np.ndarray
    """Node directions [N, D] (the planar reduction rotates each pair with them)."""
    planar: bool
    """d_space > 3: channels in their node frames, pairs reduced to a plane."""

    @property
    def scale(self) -> np.ndarray:
        r""":math:`\sqrt{q r}` per channel: a reading is :math:`\sqrt{qr}\,I\cosh d`."""
        return np.sqrt(self.q * self.rt)


def program_channels(
    nodes: BallPoints, preset: optics.OpticalPreset, *, noise: bool, seed: int
) -> Channels:
    """One readout channel per node, static errors drawn from ``default_rng([seed, 0])``
    when ``noise`` is on (see the module docstring)."""
    planar = nodes.n.shape[-1] > 3
    y = nodes.r[:, None] * (np.eye(3)[0] if planar else pad3(nodes.n))
    dev = preset.node
    loss_db = 2.0 * dev.insertion_loss_db  # retarder and diattenuator in series
    axis, q_max, r_nom = optics.diattenuator_for_node(y, optics.insertion_transmittance(loss_db))
    eta = optics.rapidity_from_transmittances(q_max, r_nom)
    q, rt = optics.device_transmittances(eta, dev.extinction_ratio, loss_db)
    clipped = eta > optics.max_rapidity(dev.extinction_ratio)
    if noise and (dev.retardance_error > 0 or dev.angle_error > 0):
        rng = np.random.default_rng([seed, 0])
        m_r = optics.readout_retarder(axis)
        n = axis.shape[0]
        err = optics.perturbed_retarder(
            rng.uniform(0, math.pi, n), np.zeros(n), 0.0, dev.retardance_error, rng
        )
        m_r = optics.rotate_element(err @ m_r, dev.angle_error * rng.standard_normal(n))
        m_d = optics.perturbed_diattenuator(np.zeros(n), q, rt, dev.angle_error, rng)
        chain = optics.compose(m_r, m_d)
    else:
        chain = optics.readout_chain(axis, q, rt)
    return Channels(chain[:, 0, :], q, rt, clipped, nodes.n, planar)
