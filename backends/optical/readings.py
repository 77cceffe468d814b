r"""The measured distances: what the core's detectors read and how a distance is recovered.

A beam (a spark, or for the graph a node's own state) of total power :math:`S_0 = P_{laser}` is
written by incoherent mixing of two pure SLM sub-frames (:func:`rsgn.optics.encode_poincare`);
channel :math:`i` reads one intensity

.. math:: S_0' = \sqrt{q_i r_i}\;I\;\cosh d_H,\qquad
          \hat d_H = \mathrm{arcosh}\!\big(\max(1,\ \hat S_0'/(\sqrt{q_i r_i}\,I))\big)

inverted with the known Lorentz norm :math:`I = P a/(2-a)` of the encoding
(:func:`rsgn.optics.distance_from_readout`). With noise on, every written beam carries an SLM
error (a retarder of retardance :math:`N(0,\sigma_\delta^2)` at a random azimuth, then a rotator
of :math:`N(0,\sigma_\theta^2)`) and every reading goes through
:func:`rsgn.optics.sample_photocurrent` (shot, dark, thermal, RIN, ADC quantisation at the ENOB)
and is dark-subtracted.

Three readings: the graph's :math:`N K` edge distances (:func:`edge_distances`, once at
prepare, noise from ``default_rng([seed, 1])``), ignition's :math:`T N` readings of one sample
(:func:`ignition_readings`) and a re-read of chosen (node, token) pairs
(:func:`pair_readings`). Detector noise of a sample is drawn from
``default_rng([seed, stream, digest of the sample's input])`` (:func:`sample_rng`), so a
sample's result depends neither on the batch it is in nor on the calls before.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from rsgn import optics
from rsgn.backends.optical.mapping import BallPoints, Channels, pad3

STREAM_GRAPH = 1
STREAM_IGNITE = 2
STREAM_REREAD = 3
STREAM_ACTIVATION = 4


def sample_digests(x: torch.Tensor) -> list[int]:
    """A 64-bit digest of each sample's input ``x[b]`` (its bytes, blake2b)."""
    xs = x.detach().cpu().contiguous().numpy()
    return [
        int.from_bytes(hashlib.blake2b(xs[b].tobytes(), digest_size=8).digest(), "little")
        for b in range(xs.shape[0])
    ]


def sample_rng(seed: int, stream: int, digest: int) -> np.random.Generator:
    """The noise stream ``stream`` of the sample with input digest ``digest``."""
    return np.random.default_rng([seed, stream, digest])


@dataclass(frozen=True)
class Receiver:
    """Beam writing and detection on one optics preset (``noise`` off: exact readings)."""

    preset: optics.OpticalPreset
    noise: bool

    @property
    def power(self) -> float:
        """Optical power of one written beam (W)."""
        return self.preset.laser.optical_power

    def lorentz_norm(self, a: np.ndarray) -> np.ndarray:
        r"""Known Lorentz norm of the encoding, :math:`I = P\sqrt{1-p^2} = P\,a/(2-a)`."""
        return self.power * a / (2.0 - a)

    def detect(self, power: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r"""Estimated optical power of readings ``power`` (W): :math:`(\hat I - I_d)/\mathcal R`
        with :math:`\hat I` from :func:`rsgn.optics.sample_photocurrent` (exact if noise is off).
        """
        if not self.noise:
            return power
        det = self.preset.detector_params()
        i = optics.sample_photocurrent(
            np.maximum(power, 0.0), self.preset.detector.bandwidth, det, rng
        )
        return optics.estimate_power(i, det)

    def encoder_errors(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SLM errors on written beams ``s`` [..., 4]: a retarder of retardance N(0, s_d^2) at
        a random azimuth, then a rotator of N(0, s_t^2) (none when noise is off)."""
        dev = self.preset.devices
        if not self.noise or (dev.retardance_error == 0 and dev.angle_error == 0):
            return s
        shape = s.shape[:-1]
        err = optics.perturbed_retarder(
            rng.uniform(0, math.pi, shape), np.zeros(shape), 0.0, dev.retardance_error, rng
        )
        rot = optics.rotator(dev.angle_error * rng.standard_normal(shape))
        return optics.apply_mueller(rot @ err, s)

    def read(
        self,
        ch: Channels,
        beams: BallPoints,
        rng: np.random.Generator,
        node_idx: np.ndarray | None = None,
        beam_idx: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Detected intensities and the beams' Lorentz norms.

        Beams have shape [M]. With ``node_idx`` None every beam is read by every channel
        (readings [M, N]); else beam ``beam_idx`` (default: the beams as given) is read by
        channel ``node_idx`` (broadcast together). A written beam carries one SLM error however
        many channels read it; in the planar mode (D > 3) each (beam, channel) pair is rotated
        into the plane of its two points (the node on :math:`S_1`) and written as its own pixel.
        """
        r, a, n = beams.r, beams.a, beams.n
        if beam_idx is not None:
            if not ch.planar:
                s = self.encoder_errors(
                    optics.encode_poincare(r[:, None] * pad3(n), self.power), rng
                )
                rows = ch.row0[node_idx]
                reading = (s[beam_idx] * rows).sum(-1)
                return self.detect(reading, rng), self.lorentz_norm(a[beam_idx])
            r, a, n = r[beam_idx], a[beam_idx], n[beam_idx]
        lnorm = self.lorentz_norm(a)
        rows = ch.row0 if node_idx is None else ch.row0[node_idx]
        if not ch.planar:
            s = self.encoder_errors(optics.encode_poincare(r[..., None] * pad3(n), self.power), rng)
            reading = s @ rows.T if node_idx is None else (s * rows).sum(-1)
            return self.detect(reading, rng), lnorm
        p = 2.0 * r / (2.0 - a)
        if node_idx is None:
            c, p = n @ ch.n.T, p[..., None]
        else:
            c = (n * ch.n[node_idx]).sum(-1)
        c = np.clip(c, -1.0, 1.0)
        pc, ps = np.broadcast_arrays(p * c, p * np.sqrt(1.0 - c * c))
        s = self.power * np.stack([np.ones_like(pc), pc, ps, np.zeros_like(pc)], -1)
        reading = (self.encoder_errors(s, rng) * rows).sum(-1)
        return self.detect(reading, rng), lnorm


def invert(read: np.ndarray, lnorm: np.ndarray, ch: Channels, node_idx: np.ndarray) -> np.ndarray:
    r"""Distances :math:`\mathrm{arcosh}\max(1, S_0'/(\sqrt{qr} I))` of readings by channels
    ``node_idx`` (broadcast with ``read``)."""
    return optics.distance_from_readout(read, lnorm, ch.q[node_idx], ch.rt[node_idx])


def edge_distances(
    rx: Receiver, ch: Channels, nodes: BallPoints, in_idx: np.ndarray, seed: int
) -> np.ndarray:
    """The graph's measured edge distances [N, K]: channel i reads beam j = ``in_idx[i, s]``
    (node j's state), noise from ``default_rng([seed, 1])``."""
    n = in_idx.shape[0]
    rng = np.random.default_rng([seed, STREAM_GRAPH])
    node = np.broadcast_to(np.arange(n)[:, None], in_idx.shape)
    read, lnorm = rx.read(ch, nodes, rng, node_idx=np.arange(n)[:, None], beam_idx=in_idx)
    return invert(read, lnorm, ch, node)


@dataclass(frozen=True)
class SampleIgnition:
    """One sample's ignition readings: per node the nearest spark by normalised reading."""

    cmin: np.ndarray
    r"""Smallest normalised reading :math:`\min_t S_0'/(\sqrt{qr} I_t)` [N] (= cosh d_min)."""
    rmin: np.ndarray
    """The reading it came from [N] (W)."""
    token: np.ndarray
    """Its token [N]."""
    reads: np.ndarray
    """Every reading [T, N] (W)."""
    lnorm: np.ndarray
    """Lorentz norm of each spark beam [T] (W)."""


def ignition_readings(
    rx: Receiver, ch: Channels, sparks: BallPoints, rng: np.random.Generator
) -> SampleIgnition:
    """Every spark beam of one sample (``sparks`` [T]) read by every channel."""
    read, lnorm = rx.read(ch, sparks, rng)  # [T, N], [T]
    c = read / (ch.scale * lnorm[:, None])
    tok = np.argmin(c, axis=0)
    cols = np.arange(c.shape[1])
    return SampleIgnition(c[tok, cols], read[tok, cols], tok, read, lnorm)


def pair_readings(
    rx: Receiver, ch: Channels, sparks: BallPoints, nodes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Distances [W, T] re-read from one sample's T spark beams by channels ``nodes`` [W]."""
    t = sparks.r.shape[0]
    node = np.broadcast_to(nodes[:, None], (nodes.shape[0], t))
    beam = np.broadcast_to(np.arange(t)[None, :], node.shape)
    read, lnorm = rx.read(ch, sparks, rng, node_idx=node, beam_idx=beam)
    return invert(read, lnorm, ch, node)
