r"""The measured distances: what the core's detectors read and how a distance is recovered.

A beam (a spark, or for the graph a node's own state) is written by the polarisation-state
generator as two pure sub-symbols, +n with power :math:`w_+ P` and -n with :math:`w_- P`
(:math:`w_\pm = (1 \pm p)/2`), mixed in one detector window (:func:`rsgn.optics.encode_stokes`);
:math:`P` is the link budget's channel power (:meth:`rsgn.optics.OpticalPreset.channel_power`).
Channel :math:`i` reads one intensity

.. math:: S_0' = \sqrt{q_i r_i}\;I\;\cosh d_H,\qquad
          \hat d_H = \mathrm{arcosh}\!\big(\max(1,\ \hat S_0'/(\sqrt{q_i r_i}\,I))\big)

inverted with the Lorentz norm :math:`I = P (w_+ + w_-)\sqrt{1 - p^2}` of the state the drives
wrote (:func:`rsgn.optics.distance_from_readout`). With noise on (the switch covers every
non-ideality that varies per device or per sample):

* the drives are quantised to ``dac.bits`` (:func:`rsgn.optics.quantized_drive`: the written
  state is a grid point, both sub-symbols at least one level above dark so it stays partially
  polarised; its own, known, Lorentz norm is the one the readout divides by);
* each written state carries a power-split error :math:`\epsilon \sim N(0, \sigma^2)` between
  its sub-symbols (``encoder.split_error``; DOP :math:`p - 2\epsilon`, unknown to the readout),
  a retardance error (a retarder of retardance :math:`N(0,\sigma_\delta^2)` at a random azimuth)
  and a rotator of :math:`N(0,\sigma_\theta^2)` (``encoder.retardance_error``, ``angle_error``);
* every reading goes through :func:`rsgn.optics.sample_photocurrent` over the window's noise
  bandwidth :math:`1/(2t_{int})` (shot, dark, thermal, RIN, ADC quantisation at the ENOB, full
  scale at the full-scale reading) and is dark-subtracted.

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
PAIR_CHUNK = 1 << 20
"""Planar (beam, channel) pairs written and read at once (bounds the memory of a sample)."""


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
    """Beam writing and detection on one optics preset (``noise`` off: exact states and
    readings). ``power`` is the channel power P of a written state (W)."""

    preset: optics.OpticalPreset
    noise: bool
    power: float

    def lorentz_norm(self, a: np.ndarray) -> np.ndarray:
        r"""Lorentz norm of an exactly written state, :math:`I = P\sqrt{1-p^2} = P\,a/(2-a)`."""
        return self.power * a / (2.0 - a)

    def detect(self, power: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r"""Estimated optical power of readings ``power`` (W): :math:`(\hat I - I_d)/\mathcal R`
        with :math:`\hat I` from :func:`rsgn.optics.sample_photocurrent` (exact if noise is off).
        """
        if not self.noise:
            return power
        p = self.preset
        det = p.detector_params()
        i = optics.sample_photocurrent(np.maximum(power, 0.0), p.noise_bandwidth, det, rng)
        return optics.estimate_power(i, det)

    def write(
        self, dop: np.ndarray, direction: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Stokes vectors [..., 4] of the states written for (``dop``, unit ``direction``
        [..., 3]) and the Lorentz norms the readout divides by (module docstring). The two
        sub-symbols' incoherent sum is written in its closed form,
        :math:`S = P(w_+ + w_-)\,(1,\ (p_q - 2\epsilon)\hat n_q)`, the value of
        :func:`rsgn.optics.encode_stokes` (tested against it)."""
        p = self.preset.encoder
        dop = np.asarray(dop, dtype=np.float64)
        if not self.noise:
            s = np.concatenate([np.ones(dop.shape + (1,)), dop[..., None] * direction], -1)
            return self.power * s, self.power * np.sqrt(np.clip(1.0 - dop * dop, 0.0, None))
        dq, nq, total = optics.quantized_drive(dop, direction, self.preset.dac.bits, interior=True)
        known = self.power * total * np.sqrt(np.clip(1.0 - dq * dq, 0.0, None))
        shape = dq.shape
        written = dq
        if p.split_error > 0:
            lo, hi = -0.5 * (1.0 - dq), 0.5 * (1.0 + dq)  # neither sub-symbol below dark
            written = dq - 2.0 * np.clip(p.split_error * rng.standard_normal(shape), lo, hi)
        s0 = (self.power * total)[..., None]
        s = s0 * np.concatenate([np.ones(shape + (1,)), written[..., None] * nq], -1)
        if p.retardance_error > 0 or p.angle_error > 0:
            err = optics.perturbed_retarder(
                rng.uniform(0, math.pi, shape), np.zeros(shape), 0.0, p.retardance_error, rng
            )
            rot = optics.rotator(p.angle_error * rng.standard_normal(shape))
            s = optics.apply_mueller(rot @ err, s)
        return s, known

    def read(
        self,
        ch: Channels,
        beams: BallPoints,
        rng: np.random.Generator,
        node_idx: np.ndarray | None = None,
        beam_idx: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Detected intensities and the Lorentz norms they are inverted with.

        Beams have shape [M]. With ``node_idx`` None every beam is read by every channel
        (readings [M, N]); else beam ``beam_idx`` (default: the beams as given) is read by
        channel ``node_idx`` (broadcast together). A written state is fanned out to every
        channel that reads it (one write, one set of errors); in the planar mode (D > 3) each
        (beam, channel) pair is rotated into the plane of its two points (the node on
        :math:`S_1`) and written as its own state.
        """
        r, a, n = beams.r, beams.a, beams.n
        dop = 2.0 * r / (2.0 - a)
        if beam_idx is not None:
            if not ch.planar:
                s, known = self.write(dop, pad3(n), rng)
                reading = (s[beam_idx] * ch.row0[node_idx]).sum(-1)
                return self.detect(reading, rng), known[beam_idx]
            dop, n = dop[beam_idx], n[beam_idx]
        rows = ch.row0 if node_idx is None else ch.row0[node_idx]
        if not ch.planar:
            s, known = self.write(dop, pad3(n), rng)
            reading = s @ rows.T if node_idx is None else (s * rows).sum(-1)
            return self.detect(reading, rng), known
        if node_idx is None:  # every pair its own state: channel blocks bound the memory
            step = max(1, PAIR_CHUNK // max(1, n.shape[0]))
            parts = [
                self._planar(dop[..., None], n @ ch.n[j : j + step].T, rows[j : j + step], rng)
                for j in range(0, rows.shape[0], step)
            ]
            return tuple(np.concatenate(x, axis=-1) for x in zip(*parts, strict=True))
        return self._planar(dop, (n * ch.n[node_idx]).sum(-1), rows, rng)

    def _planar(
        self, dop: np.ndarray, c: np.ndarray, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Planar pairs: the state of DOP ``dop`` at angle arccos ``c`` from the node (on S_1),
        written and read by channel rows ``rows`` (broadcast)."""
        c = np.clip(c, -1.0, 1.0)
        dop, c = np.broadcast_arrays(dop, c)
        direction = np.stack([c, np.sqrt(1.0 - c * c), np.zeros_like(c)], -1)
        s, known = self.write(dop, direction, rng)
        reading = (s * rows).sum(-1)
        return self.detect(reading, rng), known


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
    lmin: np.ndarray
    """The Lorentz norm that reading is inverted with [N] (W)."""
    reads: np.ndarray
    """Every reading [T, N] (W)."""
    lnorm: np.ndarray
    """The Lorentz norm each reading is inverted with [T, N] (W)."""


def ignition_readings(
    rx: Receiver, ch: Channels, sparks: BallPoints, rng: np.random.Generator
) -> SampleIgnition:
    """Every spark beam of one sample (``sparks`` [T]) read by every channel."""
    read, lnorm = rx.read(ch, sparks, rng)  # [T, N], [T] (planar: [T, N] each)
    lnorm = np.broadcast_to(lnorm if lnorm.ndim == 2 else lnorm[:, None], read.shape)
    c = read / (ch.scale * lnorm)
    tok = np.argmin(c, axis=0)
    cols = np.arange(c.shape[1])
    return SampleIgnition(c[tok, cols], read[tok, cols], tok, lnorm[tok, cols], read, lnorm)


def pair_readings(
    rx: Receiver, ch: Channels, sparks: BallPoints, nodes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Distances [W, T] re-read from one sample's T spark beams by channels ``nodes`` [W]."""
    t = sparks.r.shape[0]
    node = np.broadcast_to(nodes[:, None], (nodes.shape[0], t))
    beam = np.broadcast_to(np.arange(t)[None, :], node.shape)
    read, lnorm = rx.read(ch, sparks, rng, node_idx=node, beam_idx=beam)
    return invert(read, lnorm, ch, node)
