r"""The optical backend: a trained RSGN on a simulated hybrid opto-electronic Poincaré core.

Physics comes from :mod:`rsgn.optics` (numpy, float64); the electronic parts are the torch
reference ops (:class:`~rsgn.backends.torch_backend.TorchBackend`), which this backend calls.

Mapping (``prepare``)
---------------------
A ball point :math:`x` (conformal factor :math:`a = 1-|x|^2`, direction :math:`\hat n`) is, in
Stokes space, :math:`S = S_0(1,\ p\hat n)` with degree of polarisation and Lorentz norm

.. math:: p = \frac{2|x|}{1+|x|^2} = \frac{2|x|}{2-a},\qquad I = S_0\sqrt{1-p^2} = S_0\frac{a}{2-a}.

* **Nodes** become readout channels: a retarder that turns the node's Stokes axis onto
  :math:`S_1` followed by a linear diattenuator (:func:`rsgn.optics.readout_chain`) with
  rapidity :math:`\eta = 2\,\mathrm{artanh}|x|` (node opposite the transmission axis,
  :func:`rsgn.optics.diattenuator_for_node`), clipped to :math:`\eta_{max} = \frac12\ln ER` by the
  extinction ratio and scaled by the insertion loss: :math:`q = 10^{-IL/10}`,
  :math:`r = q e^{-2\min(\eta,\eta_{max})}`.  Channels are static: they are written once
  (modulator + DAC events, the *programming* cost) and reused by every inference.
* **Sparks** (and, for the graph, source nodes) become partially polarised beams of total power
  :math:`S_0 = P_{laser}` made by incoherent mixing of two pure SLM sub-frames
  (:func:`rsgn.optics.encode_poincare`; two ``slm_frame`` events per written state).
* **Distances** come from one detected intensity per (beam, channel):

  .. math:: S_0' = \sqrt{qr}\;I\;\cosh d_H,\qquad
            d_H = \mathrm{arcosh}\!\big(\max(1,\ \hat S_0'/(\sqrt{qr}\,I))\big)

  inverted with the known Lorentz norm of the encoding (:func:`rsgn.optics.distance_from_readout`).
  The ``graph`` op reads its :math:`N K` edge distances this way (once, at prepare); ``ignite``
  reads all :math:`B T N` spark-node intensities, takes the smallest normalised reading
  :math:`\min_t S_0'/(\sqrt{qr} I_t)` per node (monotone in distance), picks the active set with
  the electronic ``select`` op and inverts only the selected readings. The ``attend`` initial
  state (``token_distances``) reuses ignition's readings of the :math:`B W T` (winner, spark)
  pairs, kept in SRAM (op ``attend``), so its weights carry the same detector noise.
* One beam spans only :math:`H^3`: ``d_space <= 3`` embeds isometrically (zero padding).  For
  ``d_space > 3`` each (beam, node) pair is rotated electronically into the plane spanned by the
  two points (an isometry: :math:`d_H` depends only on the radii and the angle), costing
  :math:`D` MACs per pair, and the beam is written in that node's frame.

Activations: with ``offload['propagate'] = 'eit'`` or ``'sbs'`` the node nonlinearity
:math:`\sigma(z)`, :math:`z = (\alpha_i + \gamma|\tilde h_i| - \theta_i)/T`, is replaced by the
optical transfer function on a log-power encoding :math:`P = P_{ref}e^{\kappa z + c}`, with
:math:`c, \kappa` set so that :math:`f(0) = 1/2` and :math:`f'(0) = 1/4` like the sigmoid:

* EIT: :math:`f = (T - e^{-OD})/(1 - e^{-OD})`, :math:`T = \exp(-OD/(1 + P_c/P_{sat}))`;
* SBS: :math:`f = G(P_s) P_s / (P_s + P_p)` (saturating Brillouin amplifier, pump :math:`P_p`).

Noise (``noise=True``; default on for every preset except ``ideal``, the noise-free reference):
every reading goes through :func:`rsgn.optics.sample_photocurrent` (shot, dark, thermal, RIN, ADC
quantisation with ENOB) and is dark-subtracted; every channel's retarder has a Gaussian retardance
error (an extra retarder of retardance :math:`N(0,\sigma_\delta^2)` at a random azimuth) and
azimuth error :math:`N(0,\sigma_\theta^2)`, its diattenuator an azimuth error; every written
beam gets the same retarder errors (SLM).  Static errors are drawn once per (seed, program);
detector noise is fresh on every call, from ``numpy.random.default_rng([seed, 2, call])``.

Costs
-----
Energy :math:`E = \sum_e n_e\,\epsilon_e` over a :class:`~rsgn.backends.cost.CostLedger` whose
table holds the 45 nm electronic events (``electronic_45nm``) and the optical events built from
the optics preset (each a :class:`~rsgn.backends.cost.Constant` with its source):

* ``laser_pulse`` :math:`= P_{laser}\,t_{int}/\eta_{WPE}`, one channel lit for one integration
  :math:`t_{int} = 1/(2B)`; ``slm_frame``, ``modulator_write``, ``dac_sample``,
  ``detector_sample`` (PD + TIA), ``adc_sample``;
* ``eit_coupling_pulse`` :math:`= P_{sat}e^{c}\,t_{int}/\eta_{WPE}` and ``sbs_pump_pulse``
  :math:`= P_p\,t_{int}/\eta_{WPE}` for optical activations.

Latency is modelled per inference as a critical path (samples run one after another):
``ignite`` = :math:`T(2t_{SLM} + t_{int}) + t_{prop} + t_{ADC}`; an optical activation =
:math:`t_{mod} + t_{prop} + t_{int} + t_{ADC}`; each electronic op = its dependent-operation depth
(:math:`\lceil\log_2\rceil` reduction trees, fully parallel lanes) :math:`\times\ t_{logic}`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from rsgn import optics
from rsgn.backends.base import ActiveState, Candidates, Capabilities, Graph, Program, Report
from rsgn.backends.cost import Constant, CostLedger, EnergyTable, load_energy_table
from rsgn.backends.torch_backend import TorchBackend, TorchProgram, out_csr
from rsgn.errors import RsgnError

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.model import RSGN

__all__ = [
    "DEFAULT_OFFLOAD",
    "OFFLOAD_MODES",
    "OpticalBackend",
    "OpticalProgram",
    "accuracy_vs_torch",
    "build_energy_table",
    "load_optical_preset",
    "resolve_offload",
]

OFFLOAD_MODES: dict[str, tuple[str, ...]] = {
    "graph": ("optical", "electronic"),
    "ignite": ("optical", "electronic"),
    "propagate": ("electronic", "eit", "sbs"),
    "inhibit": ("electronic",),
    "select": ("electronic",),
    "update": ("electronic",),
    "readout": ("electronic",),
}
"""Which implementations each op has on the hybrid core (first = electronic or optical default)."""

DEFAULT_OFFLOAD: dict[str, str] = {
    "graph": "optical",
    "ignite": "optical",
    "propagate": "electronic",
    "inhibit": "electronic",
    "select": "electronic",
    "update": "electronic",
    "readout": "electronic",
}
"""Distances optical, everything else electronic (the optical activations change the model's
function, so they are opt-in)."""

OPTICAL_EVENTS = (
    "laser_pulse",
    "slm_frame",
    "modulator_write",
    "dac_sample",
    "detector_sample",
    "adc_sample",
    "eit_coupling_pulse",
    "sbs_pump_pulse",
)

_CHUNK_ELEMS = 1 << 19  # (beam, channel) readings simulated per numpy chunk
_KEEP_READINGS = 1 << 25  # ignition keeps its B T N readings (for 'attend') up to this many
_Z_CLIP = 30.0  # range of the log-power encoding of the pre-activation (|z| beyond: saturated)


# ------------------------------------------------------------------------------ configuration
def resolve_offload(offload: dict[str, str] | None) -> dict[str, str]:
    """The complete offload map: :data:`DEFAULT_OFFLOAD` updated by ``offload``.

    Raises RsgnError (one line) for an unknown op or a mode the op does not have.
    """
    out = dict(DEFAULT_OFFLOAD)
    for op, mode in (offload or {}).items():
        if op not in OFFLOAD_MODES:
            raise RsgnError(f"offload map: unknown op {op!r} (ops: {', '.join(OFFLOAD_MODES)})")
        if mode not in OFFLOAD_MODES[op]:
            raise RsgnError(
                f"offload map: op {op!r} cannot run as {mode!r} "
                f"(choices: {', '.join(OFFLOAD_MODES[op])})"
            )
        out[op] = mode
    return out


def load_optical_preset(preset: str | Path | optics.OpticalPreset | None) -> optics.OpticalPreset:
    """A packaged optics preset by name (default ``'ideal'``), a preset TOML file by path, or an
    :class:`rsgn.optics.OpticalPreset` object (returned as is, e.g. one with fields overridden).

    Any problem (unknown name, unreadable file, invalid value, wrong type) is an RsgnError with a
    one-line message.
    """
    if isinstance(preset, optics.OpticalPreset):
        return preset
    if preset is not None and not isinstance(preset, str | Path):
        raise RsgnError(
            f"optical preset must be a name, a TOML path or an OpticalPreset, got "
            f"{type(preset).__name__}"
        )
    name = "ideal" if preset is None else preset
    try:
        if isinstance(name, Path) or str(name).endswith(".toml") or "/" in str(name):
            return optics.load_preset_file(name)
        return optics.load_preset(str(name))
    except optics.PresetError as exc:
        raise RsgnError(str(exc)) from None


def integration_time(preset: optics.OpticalPreset) -> float:
    r"""Detector integration time :math:`t_{int} = 1/(2B)` (integrate-and-dump of bandwidth B)."""
    return 1.0 / (2.0 * preset.detector.bandwidth)


def _const(preset: optics.OpticalPreset, key: str, value: float | None = None) -> Constant:
    c = preset.provenance[key]
    return Constant(
        value=c.value if value is None else value,
        unit="J",
        source=f"optics preset {preset.name!r} {key} = {c.given}: {c.source}",
        kind=c.kind,
        scope=c.scope,
    )


def build_energy_table(
    preset: optics.OpticalPreset, electronic: str = "electronic_45nm", eit_midpoint: float = 0.0
) -> EnergyTable:
    r"""Per-event energies of the hybrid core: the electronic table plus the optical events.

    ``laser_pulse`` :math:`= P\,t_{int}/\eta_{WPE}`; ``eit_coupling_pulse``
    :math:`= P_{sat}e^{c}\,t_{int}/\eta_{WPE}` with :math:`c` = ``eit_midpoint`` (the coupling
    power at the activation's midpoint); ``sbs_pump_pulse`` :math:`= P_p\,t_{int}/\eta_{WPE}`.
    Every constant keeps the preset's source and kind.
    """
    base = load_energy_table(electronic)
    p = preset
    t_int = integration_time(p)
    wpe = p.laser.wall_plug_efficiency
    bw = p.provenance["detector.bandwidth"].given
    eta = p.provenance["laser.wall_plug_efficiency"].given

    def pulse(key: str, power: float, what: str) -> Constant:
        c = p.provenance[key]
        return Constant(
            value=power * t_int / wpe,
            unit="J",
            source=(
                f"derived from optics preset {p.name!r}: {key} = {c.given} x t_int "
                f"(1/(2B), B = {bw}) / wall-plug efficiency {eta}; {c.source}"
            ),
            kind="derived",
            scope=f"electrical laser energy of {what} during one detector integration",
        )

    events = dict(base.events)
    events.update(
        {
            "laser_pulse": pulse("laser.optical_power", p.laser.optical_power, "one channel"),
            "slm_frame": _const(p, "encoder.write_energy"),
            "modulator_write": _const(p, "modulator.energy_per_write"),
            "dac_sample": _const(p, "dac.energy_per_sample"),
            "detector_sample": _const(p, "detector.energy_per_sample"),
            "adc_sample": _const(p, "adc.energy_per_sample"),
            "eit_coupling_pulse": pulse(
                "eit.saturation_power",
                p.eit.saturation_power * math.exp(eit_midpoint),
                "the EIT coupling beam at the activation midpoint",
            ),
            "sbs_pump_pulse": pulse("sbs.pump_power", p.sbs.pump_power, "the Brillouin pump"),
        }
    )
    meta = {"electronic": electronic, "optical_preset": p.name, "t_int_s": t_int}
    return EnergyTable(name=f"{electronic}+optical:{p.name}", events=events, meta=meta)


# ------------------------------------------------------------------------------ geometry parts
def ball_parts(x: torch.Tensor, a: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""float64 radius, conformal factor and unit direction of ball points given as (x, a).

    The model's conformal factor :math:`a = \mathrm{sech}^2|v|` is exact where :math:`1-|x|^2`
    cancels; so for :math:`a < 1/2` the radius is :math:`\sqrt{1-a}` and :math:`a` is kept, else
    :math:`a = 1 - |x|^2` from the float32 coordinates.  Either way the point is consistent
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
    return r, a64, n


def _pad3(n: np.ndarray) -> np.ndarray:
    d = n.shape[-1]
    if d == 3:
        return n
    return np.concatenate([n, np.zeros(n.shape[:-1] + (3 - d,))], axis=-1)


def beam_stokes(r: np.ndarray, a: np.ndarray, n3: np.ndarray, power: float) -> np.ndarray:
    r"""Stokes vector :math:`P(1,\ p\hat n)`, :math:`p = 2r/(2-a)`, of the encoded state
    (:func:`rsgn.optics.encode_poincare` with total power ``power``)."""
    return optics.encode_poincare(r[..., None] * n3, s0=power)


def lorentz_norm(a: np.ndarray, power: float) -> np.ndarray:
    r"""Known Lorentz norm of the encoding, :math:`I = P\sqrt{1-p^2} = P\,a/(2-a)` (exact)."""
    return power * a / (2.0 - a)


@dataclass
class NodeOptics:
    """The programmed readout channels (one per node) and what the readout needs to invert."""

    x: torch.Tensor
    """The position tensor these channels were programmed from (identity-checked on reuse)."""
    r: np.ndarray
    a: np.ndarray
    n: np.ndarray
    row0: np.ndarray
    """First Mueller row of each realised channel [N, 4] (in the node frame if ``planar``)."""
    q: np.ndarray
    rt: np.ndarray
    clipped: np.ndarray
    planar: bool


# ------------------------------------------------------------------------------ activations
@dataclass(frozen=True)
class LogPowerActivation:
    r"""An optical transfer function :math:`g(u)` on the log-power axis, calibrated to
    :math:`f(z) = g(\kappa z + c)` with :math:`f(0) = 1/2`, :math:`f'(0) = 1/4`."""

    kind: str
    kappa: float
    offset: float
    preset: optics.OpticalPreset

    @staticmethod
    def transfer(kind: str, u: np.ndarray, preset: optics.OpticalPreset) -> np.ndarray:
        """Normalised output in [0, 1] at log power ``u`` (see module docstring)."""
        if kind == "eit":
            od, ps = preset.eit.optical_depth, preset.eit.saturation_power
            t = optics.eit_transmission(ps * np.exp(u), od, ps)
            floor = math.exp(-od)
            return (t - floor) / (1.0 - floor)
        pp = preset.sbs.pump_power
        sig = pp * np.exp(u)
        return optics.sbs_amplifier(sig, pp, preset.sbs.gain_per_watt) / (sig + pp)

    @classmethod
    def calibrate(cls, kind: str, preset: optics.OpticalPreset) -> LogPowerActivation:
        """Bisection for :math:`g(c) = 1/2`, then :math:`\\kappa = 1/(4 g'(c))` (central diff)."""
        if kind == "eit" and preset.eit.optical_depth <= 0:
            raise RsgnError("EIT activation needs eit.optical_depth > 0 in the optics preset")
        lo, hi = -60.0, 60.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if cls.transfer(kind, np.array(mid), preset) < 0.5:
                lo = mid
            else:
                hi = mid
        c = 0.5 * (lo + hi)
        h = 1e-4
        slope = float(
            cls.transfer(kind, np.array(c + h), preset)
            - cls.transfer(kind, np.array(c - h), preset)
        ) / (2 * h)
        if not slope > 0:
            raise RsgnError(f"{kind} activation: transfer function is flat at its midpoint")
        return cls(kind, 0.25 / slope, c, preset)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        u = self.kappa * np.clip(z, -_Z_CLIP, _Z_CLIP) + self.offset
        return self.transfer(self.kind, u, self.preset)


def _log2(n: float) -> int:
    return int(math.ceil(math.log2(max(2.0, float(n)))))


# ------------------------------------------------------------------------------ backend
class OpticalBackend(TorchBackend):
    """Hybrid opto-electronic Poincaré core (see the module docstring).

    Parameters
    ----------
    preset : optics preset name (``'ideal'``, ``'bench'``, ``'lowpower'``, ...), path of a preset
        TOML file, or an :class:`rsgn.optics.OpticalPreset` object.
    device : torch device of the electronic ops (the optics run in numpy on the CPU).
    seed : seeds every noise draw (static device errors and per-call detector noise).
    offload : op -> mode overrides of :data:`DEFAULT_OFFLOAD` (modes in :data:`OFFLOAD_MODES`).
    noise : detector noise and device errors on/off; default on unless the preset is ``ideal``.
    reference : run the torch backend alongside each batch and report the agreement.

    ``graph`` and ``ignite`` are overridden as whole ops, not through the torch backend's
    ``edge_distances`` / ``nearest_spark`` / ``spark_distances`` hooks: the optical ops count
    different events (laser, SLM, detector, ADC instead of the distance MACs), and ignition
    inverts the *selected* noisy readings, which ``spark_distances`` (no node or token ids) cannot
    find again.
    """

    name = "optical"

    def __init__(
        self,
        preset: str | Path | optics.OpticalPreset | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
        offload: dict[str, str] | None = None,
        *,
        noise: bool | None = None,
        reference: bool = True,
    ) -> None:
        super().__init__(device=device)
        self.preset = load_optical_preset(preset)
        self.preset_name = self.preset.name
        self.offload = resolve_offload(offload)
        if not isinstance(seed, int) or seed < 0:
            raise RsgnError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self.noise = (self.preset.name != "ideal") if noise is None else bool(noise)
        self.reference = reference
        self.det = self.preset.detector_params()
        self.t_int = integration_time(self.preset)
        mode = self.offload["propagate"]
        self.activation = (
            LogPowerActivation.calibrate(mode, self.preset) if mode in ("eit", "sbs") else None
        )
        eit_mid = self.activation.offset if self.activation and mode == "eit" else 0.0
        self.table = build_energy_table(self.preset, self.energy_table_name, eit_mid)
        self.nodes: NodeOptics | None = None
        self._ignition: tuple[torch.Tensor, np.ndarray, np.ndarray] | None = None
        self.rng: np.random.Generator | None = None
        self.latency: dict[str, float] | None = None
        self._free_calls = 0
        self.last_graph_distances: torch.Tensor | None = None

    def capabilities(self) -> Capabilities:
        act = self.offload["propagate"]
        return Capabilities(
            differentiable=False,
            devices=("cpu", "cuda") if torch.cuda.is_available() else ("cpu",),
            metrics={
                "accuracy": "measured",
                "active_fraction": "measured",
                "agreement_with_torch": "measured (torch reference run on the same batch)",
                "distance_error": "measured (optical vs float32 geometry, graph edges)",
                "energy_modelled": (
                    "modelled (counted events x per-event energy: electronic_45nm for the "
                    f"electronics, optics preset {self.preset.name!r} for laser/SLM/modulator/"
                    "detector/ADC/DAC)"
                ),
                "latency": "modelled (critical path from the preset's device times; not wall time)",
                "energy_measured": "n/a: simulated hardware has no power counter",
                "latency_measured": "n/a: simulated hardware; simulation wall time is in metrics",
                "gradients": "n/a: numpy physics, not differentiable",
                "activation": (
                    f"optical {act.upper()} transfer function"
                    if act != "electronic"
                    else "electronic sigmoid (torch reference)"
                ),
            },
            notes=(
                f"preset {self.preset.name!r}, noise {'on' if self.noise else 'off'}, offload "
                + ", ".join(f"{k}={v}" for k, v in self.offload.items())
            ),
        )

    # -------------------------------------------------------------------- bookkeeping
    def _rng(self) -> np.random.Generator:
        if self.rng is None:  # ops used outside a program: a fresh, seeded stream per call
            self.rng = np.random.default_rng([self.seed, 3, self._free_calls])
            self._free_calls += 1
        return self.rng

    def _lat(self, part: str, seconds: float) -> None:
        if self.latency is not None:
            self.latency[part] += seconds

    def _electronic(self, depth: int) -> None:
        self._lat("electronic", depth * self.preset.logic.latency_per_op)

    def _detect(self, power: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r"""Estimated optical power of readings ``power`` (W): :math:`(\hat I - I_d)/\mathcal R`
        with :math:`\hat I` from :func:`rsgn.optics.sample_photocurrent` (exact if noise is off).
        """
        if not self.noise:
            return power
        i = optics.sample_photocurrent(
            np.maximum(power, 0.0), self.preset.detector.bandwidth, self.det, rng
        )
        return optics.estimate_power(i, self.det)

    def _encoder_errors(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SLM errors on written beams: a retarder of retardance N(0, s_d^2) at a random
        azimuth, then a rotator of N(0, s_t^2) (no-op when noise is off or errors are 0)."""
        dev = self.preset.devices
        if not self.noise or (dev.retardance_error == 0 and dev.angle_error == 0):
            return s
        shape = s.shape[:-1]
        err = optics.perturbed_retarder(
            rng.uniform(0, math.pi, shape), np.zeros(shape), 0.0, dev.retardance_error, rng
        )
        rot = optics.rotator(dev.angle_error * rng.standard_normal(shape))
        return optics.apply_mueller(rot @ err, s)

    # -------------------------------------------------------------------- node channels
    def program_nodes(self, x: torch.Tensor, a: torch.Tensor) -> NodeOptics:
        """Write one readout channel per node (modulator + DAC events, op ``program``).

        Static device errors come from ``default_rng([seed, 0])``, so a seed fixes the device.
        """
        r, a64, n = ball_parts(x, a)
        planar = x.shape[-1] > 3
        y = r[:, None] * (np.eye(3)[0] if planar else _pad3(n))
        axis, q_max, r_nom = optics.diattenuator_for_node(
            y, optics.insertion_transmittance(self.preset.devices.insertion_loss_db)
        )
        eta = optics.rapidity_from_transmittances(q_max, r_nom)
        q, rt = optics.device_transmittances(
            eta, self.preset.devices.extinction_ratio, self.preset.devices.insertion_loss_db
        )
        eta_max = optics.max_rapidity(self.preset.devices.extinction_ratio)
        clipped = eta > eta_max
        dev = self.preset.devices
        if self.noise and (dev.retardance_error > 0 or dev.angle_error > 0):
            rng = np.random.default_rng([self.seed, 0])
            m_r = optics.readout_retarder(axis)
            nn_ = axis.shape[0]
            err = optics.perturbed_retarder(
                rng.uniform(0, math.pi, nn_), np.zeros(nn_), 0.0, dev.retardance_error, rng
            )
            m_r = optics.rotate_element(err @ m_r, dev.angle_error * rng.standard_normal(nn_))
            m_d = optics.perturbed_diattenuator(np.zeros(nn_), q, rt, dev.angle_error, rng)
            chain = optics.compose(m_r, m_d)
        else:
            chain = optics.readout_chain(axis, q, rt)
        nn_ = x.shape[0]
        self.count_op("program")
        self.count("modulator_write", 3 * nn_)  # retarder axis (2) + diattenuator rapidity (1)
        self.count("dac_sample", 3 * nn_)
        self.count("transcendental_fp32", 4 * nn_)  # artanh, exp, two angles per channel
        self._lat("modulator", self.preset.modulator.settle_time)
        self.nodes = NodeOptics(x, r, a64, n, chain[:, 0, :], q, rt, clipped, planar)
        return self.nodes

    def _nodes_for(self, x: torch.Tensor, a: torch.Tensor) -> NodeOptics:
        if self.nodes is not None and self.nodes.x is x:
            return self.nodes
        return self.program_nodes(x, a)

    def _readings(
        self,
        nodes: NodeOptics,
        r: np.ndarray,
        a: np.ndarray,
        n: np.ndarray,
        rng: np.random.Generator,
        node_idx: np.ndarray | None = None,
        beam_idx: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Detected intensities (noisy if noise is on) and the beams' Lorentz norms.

        Beams are the states (r, a, n) of shape [M] (+ [D]).  With ``node_idx`` None every beam
        is read by every channel (readings [M, N]); else beam ``beam_idx`` (default: the beams
        as given) is read by channel ``node_idx`` (broadcast together).  A written beam carries
        one encoder error however many channels read it; in the planar mode (D > 3) each
        (beam, channel) pair is its own written pixel.
        """
        power = self.preset.laser.optical_power
        if beam_idx is not None:
            if not nodes.planar:
                s = self._encoder_errors(beam_stokes(r, a, _pad3(n), power), rng)[beam_idx]
                rows = nodes.row0[node_idx]
                return self._detect((s * rows).sum(-1), rng), lorentz_norm(a[beam_idx], power)
            r, a, n = r[beam_idx], a[beam_idx], n[beam_idx]
        lnorm = lorentz_norm(a, power)
        rows = nodes.row0 if node_idx is None else nodes.row0[node_idx]
        if not nodes.planar:
            s = self._encoder_errors(beam_stokes(r, a, _pad3(n), power), rng)
            reading = s @ rows.T if node_idx is None else (s * rows).sum(-1)
            return self._detect(reading, rng), lnorm
        # rotate each (beam, node) pair into the plane of the two points: node on the S_1 axis
        p = 2.0 * r / (2.0 - a)
        if node_idx is None:
            c, p = n @ nodes.n.T, p[..., None]
        else:
            c = (n * nodes.n[node_idx]).sum(-1)
        c = np.clip(c, -1.0, 1.0)
        pc, ps = np.broadcast_arrays(p * c, p * np.sqrt(1.0 - c * c))
        s = power * np.stack([np.ones_like(pc), pc, ps, np.zeros_like(pc)], -1)
        reading = (self._encoder_errors(s, rng) * rows).sum(-1)
        return self._detect(reading, rng), lnorm

    # -------------------------------------------------------------------- graph
    def graph(
        self,
        x: torch.Tensor,
        a: torch.Tensor,
        u: torch.Tensor,
        v: torch.Tensor,
        level: torch.Tensor,
        hebb: torch.Tensor,
        in_idx: torch.Tensor,
        in_mask: torch.Tensor,
        *,
        tau: float,
        inhibition_radius: float,
    ) -> Graph:
        r"""Edge weights with optically read distances (offload ``graph = 'optical'``):

        d_ij = arcosh(S0'_ij / (sqrt(q_i r_i) I_j)) with beam j (node j's state) read by channel i;
        w_ji = sigmoid(u_i . v_j + hebb_ij) exp(-d_ij/tau) softplus(l_i - l_j + 1) on live slots.
        """
        if self.offload["graph"] != "optical":
            out = super().graph(
                x,
                a,
                u,
                v,
                level,
                hebb,
                in_idx,
                in_mask,
                tau=tau,
                inhibition_radius=inhibition_radius,
            )
            self._electronic(_log2(u.shape[1]) + 4)
            return out
        nodes = self._nodes_for(x, a)
        self.count_op("graph")
        n, k = in_idx.shape
        idx = in_idx.cpu().numpy()
        rng = np.random.default_rng([self.seed, 1])
        read, lnorm = self._readings(
            nodes, nodes.r, nodes.a, nodes.n, rng, node_idx=np.arange(n)[:, None], beam_idx=idx
        )
        d64 = optics.distance_from_readout(read, lnorm, nodes.q[:, None], nodes.rt[:, None])
        d = torch.as_tensor(d64, dtype=x.dtype, device=x.device)
        aff = (u.unsqueeze(1) * v[in_idx]).sum(-1) + hebb
        lvl = F.softplus(level.unsqueeze(1) - level[in_idx] + 1.0)
        w = torch.sigmoid(aff) * torch.exp(-d / tau) * lvl * in_mask
        ptr, out_edge = out_csr(in_idx, in_mask)
        inh = in_mask & (d < inhibition_radius)
        k_inh = max(1, int(inh.sum(1).max()))
        first = torch.argsort((~inh).to(torch.int8), dim=1, stable=True)[:, :k_inh]
        e = n * k
        dsp = x.shape[1]
        self.count("slm_frame", 2 * n)  # each node's state written once (two sub-frames)
        self.count("laser_pulse", e)
        self.count("detector_sample", e)
        self.count("adc_sample", e)
        self.count("mac_fp32", e * (u.shape[1] + (dsp if nodes.planar else 0)) + n * (dsp + 2))
        self.count("transcendental_fp32", e * 4)  # arcosh, sigmoid, exp, softplus
        self.count("add_fp32", e * 3)
        self.count("sram_word_32b", e * (u.shape[1] + 2))
        self._lat("slm", 2 * n * self.preset.encoder.settle_time)
        self._lat("integration", n * self.t_int)
        self._lat(
            "propagation",
            optics.propagation_delay(
                self.preset.propagation.path_length, self.preset.propagation.group_index
            ),
        )
        self._lat("adc", self.preset.adc.latency)
        self._electronic(_log2(u.shape[1]) + 5)
        self.last_graph_distances = d
        return Graph(
            x=x,
            a=a,
            in_idx=in_idx,
            in_mask=in_mask,
            w=w,
            out_ptr=ptr,
            out_edge=out_edge,
            inh_idx=in_idx.gather(1, first),
            inh_valid=inh.gather(1, first),
        )

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
        r"""Optical ignition (offload ``ignite = 'optical'``).

        Every spark beam s_t is read by every node channel i; per node the smallest normalised
        reading c_i = min_t S0'_ti / (sqrt(q_i r_i) I_t) = cosh min_t d_H(s_t, p_i) picks the
        nearest spark t*; the exact selection of the torch op keeps the ``cap`` nodes with the
        smallest proxy delta = sinh^2(d/2) = (c - 1)/2 (same keys: -delta for ``radix``,
        -log delta for ``stat``); for them
        d = arcosh(c) and alpha = exp(-d^2 / (2 sigma^2)) (alpha <= eps: inactive).
        """
        if self.offload["ignite"] != "optical":
            st = super().ignite(
                sparks, spark_a, graph, sigma=sigma, eps=eps, cap=cap, method=method
            )
            self._electronic(_log2(sparks.shape[1]) + _log2(graph.n_nodes) * 4 + 4)
            return st
        nodes = self._nodes_for(graph.x, graph.a)
        rng = self._rng()
        bsz, t, dsp = sparks.shape
        n = graph.n_nodes
        r, a, nv = ball_parts(sparks, spark_a)
        scale = np.sqrt(nodes.q * nodes.rt)  # [N]
        cmin = np.empty((bsz, n))
        rmin = np.empty((bsz, n))
        tok = np.empty((bsz, n), dtype=np.int64)
        chunk = max(1, _CHUNK_ELEMS // max(1, t * n))
        keep = bsz * t * n <= _KEEP_READINGS
        reads = np.empty((bsz, t, n)) if keep else None
        lnorms = np.empty((bsz, t)) if keep else None
        for b0 in range(0, bsz, chunk):
            sl = slice(b0, b0 + chunk)
            read, lnorm = self._readings(nodes, r[sl], a[sl], nv[sl], rng)  # [b, T, N]
            if keep:
                reads[sl], lnorms[sl] = read, lnorm
            c = read / (scale * lnorm[..., None])
            ti = np.argmin(c, axis=1)  # [b, N]
            tok[sl] = ti
            cmin[sl] = np.take_along_axis(c, ti[:, None, :], 1)[:, 0]
            rmin[sl] = np.take_along_axis(read, ti[:, None, :], 1)[:, 0]
        # the selection keys of the torch op on the proxy delta = sinh^2(d/2) = (c - 1)/2
        delta = torch.as_tensor(0.5 * (np.maximum(cmin, 1.0) - 1.0), dtype=sparks.dtype)
        key = -delta if method == "radix" else -torch.log(delta.clamp_min(1e-30))
        self.count_op("ignite")
        ids, valid = self._select_dense(key.to(sparks.device), cap, method)
        dev = sparks.device
        idn = ids.cpu().numpy()
        tsel = np.take_along_axis(tok, idn, 1)
        rsel = np.take_along_axis(rmin, idn, 1)
        lsel = lorentz_norm(np.take_along_axis(a, tsel, 1), self.preset.laser.optical_power)
        d64 = optics.distance_from_readout(rsel, lsel, nodes.q[idn], nodes.rt[idn])
        d = torch.as_tensor(d64, dtype=sparks.dtype, device=dev)
        alpha = torch.exp(-(d * d) / (2 * sigma * sigma))
        valid = valid & (alpha > eps)
        alpha = alpha * valid
        e = bsz * t * n
        w = ids.numel()
        self.count("slm_frame", 2 * bsz * t)
        self.count("laser_pulse", e)
        self.count("detector_sample", e)
        self.count("adc_sample", e)
        self.count("mac_fp32", bsz * t * (dsp + 2) + (e * dsp if nodes.planar else 0) + 2 * w)
        self.count("transcendental_fp32", bsz * t * 2 + 2 * w)  # encoding sqrt/div; arcosh, exp
        self.count("add_fp32", 2 * e)  # normalise + min over tokens
        self.count("int_op_32b", bsz * n * 4)  # histogram select passes + compare
        self.count("sram_word_32b", bsz * t * (dsp + 1) + 2 * w)
        s = self.preset
        self._lat("slm", t * 2 * s.encoder.settle_time)
        self._lat("integration", t * self.t_int)
        self._lat(
            "propagation",
            optics.propagation_delay(s.propagation.path_length, s.propagation.group_index),
        )
        self._lat("adc", s.adc.latency)
        self._electronic(_log2(t) + 4 * _log2(n) + 4)
        tsel_t = torch.as_tensor(tsel, device=dev)
        self._ignition = (sparks, reads, lnorms) if keep else None
        return ActiveState(ids=ids, valid=valid, alpha=alpha, token=tsel_t)

    def token_distances(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, graph: Graph, ids: torch.Tensor
    ) -> torch.Tensor:
        r"""Measured d_H(s_t, p_i) [B, W, T] for the ``attend`` initial state (offload
        ``ignite = 'optical'``): ignition already detected every (spark, channel) intensity, so
        the winners' B W T readings are kept from it (op ``attend``: B T N SRAM writes of the
        digitised readings, B W T reads, one arcosh each) and inverted like ignition's,
        d = arcosh(S0' / (sqrt(qr) I)). Beyond ``_KEEP_READINGS`` readings per batch the
        simulator does not keep them and re-reads the pairs instead (a second optical pass:
        2 T SLM frames and B W T pulses, detections and ADC samples, fresh noise)."""
        if self.offload["ignite"] != "optical":
            return super().token_distances(sparks, spark_a, graph, ids)
        nodes = self._nodes_for(graph.x, graph.a)
        bsz, t, dsp = sparks.shape
        w = ids.shape[1]
        n = graph.n_nodes
        e = bsz * w * t
        node = np.broadcast_to(ids.cpu().numpy()[:, :, None], (bsz, w, t))
        kept = self._ignition
        if kept is not None and kept[0] is sparks:
            _, reads, lnorms = kept
            bi = np.arange(bsz)[:, None, None]
            ti = np.arange(t)[None, None, :]
            read = reads[bi, ti, node]
            lnorm = np.broadcast_to(lnorms[:, None, :], (bsz, w, t))
            self.count("sram_word_32b", bsz * t * n + e)
        else:
            rng = self._rng()
            r, a, nv = ball_parts(sparks, spark_a)
            beam = np.broadcast_to(
                (np.arange(bsz)[:, None] * t + np.arange(t))[:, None, :], (bsz, w, t)
            )
            read, lnorm = self._readings(
                nodes, r.reshape(-1), a.reshape(-1), nv.reshape(bsz * t, -1), rng, node, beam
            )
            self.count("slm_frame", 2 * bsz * t)
            self.count("laser_pulse", e)
            self.count("detector_sample", e)
            self.count("adc_sample", e)
            self.count("mac_fp32", bsz * t * (dsp + 2) + (e * dsp if nodes.planar else 0))
            self.count("transcendental_fp32", bsz * t * 2)  # beam encoding
            s = self.preset
            self._lat("slm", t * 2 * s.encoder.settle_time)
            self._lat("integration", t * self.t_int)
            self._lat("adc", s.adc.latency)
        d64 = optics.distance_from_readout(read, lnorm, nodes.q[node], nodes.rt[node])
        self.count("mac_fp32", e)  # normalisation by sqrt(q r) I
        self.count("transcendental_fp32", e)  # arcosh
        return torch.as_tensor(d64, dtype=sparks.dtype, device=sparks.device)

    # -------------------------------------------------------------------- propagate
    def propagate(
        self,
        state: ActiveState,
        graph: Graph,
        w_h: torch.Tensor,
        b_h: torch.Tensor,
        theta: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
    ) -> Candidates:
        r"""The torch op; with offload ``'eit'``/``'sbs'`` the activation is optical:

        z = (alpha_prev + gamma |h~| - theta)/T,  alpha' = f(z) measured by a detector,
        f the calibrated transfer function (module docstring).
        """
        cand = super().propagate(
            state, graph, w_h, b_h, theta, gamma=gamma, temperature=temperature
        )
        d = w_h.shape[0]
        k = graph.in_idx.shape[1]
        self._electronic(2 * _log2(d) + _log2(k) + 3)
        if self.activation is None:
            return cand
        m = cand.alpha.shape[0]
        prev = torch.where(
            cand.prev_row >= 0,
            state.alpha.reshape(-1)[cand.prev_row.clamp_min(0)],
            torch.zeros_like(cand.alpha),
        )
        norm = torch.linalg.vector_norm(cand.htilde, dim=-1)
        z = ((prev + gamma * norm - theta[cand.node]) / temperature).double().cpu().numpy()
        fs = self.preset.adc.full_scale_power
        f = self._detect(self.activation(z) * fs, self._rng()) / fs
        cand.alpha = torch.as_tensor(
            np.maximum(f, 0.0), dtype=cand.alpha.dtype, device=cand.alpha.device
        )
        self.count("dac_sample", m)
        self.count("laser_pulse", m)
        self.count("detector_sample", m)
        self.count("adc_sample", m)
        self.count("eit_coupling_pulse" if self.activation.kind == "eit" else "sbs_pump_pulse", m)
        s = self.preset
        self._lat("modulator", s.modulator.settle_time)
        self._lat("integration", self.t_int)
        self._lat(
            "propagation",
            optics.propagation_delay(s.propagation.path_length, s.propagation.group_index),
        )
        self._lat("adc", s.adc.latency)
        return cand

    # -------------------------------------------------------------------- electronic ops
    def inhibit(self, cand: Candidates, graph: Graph, *, strength: float) -> torch.Tensor:
        """The torch op (electronic), plus its latency depth ceil(log2 K_inh) + 2."""
        out = super().inhibit(cand, graph, strength=strength)
        self._electronic(_log2(graph.inh_idx.shape[1]) + 2)
        return out

    def select(
        self,
        batch: torch.Tensor,
        node: torch.Tensor,
        score: torch.Tensor,
        n_batch: int,
        n_nodes: int,
        *,
        cap: int,
        eps: float,
        method: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The torch op (electronic radix select), plus its latency depth 4 ceil(log2 N)."""
        out = super().select(batch, node, score, n_batch, n_nodes, cap=cap, eps=eps, method=method)
        self._electronic(4 * _log2(n_nodes))
        return out

    def update(
        self,
        cand: Candidates,
        alpha: torch.Tensor,
        prev: ActiveState,
        ids: torch.Tensor,
        row: torch.Tensor,
        valid: torch.Tensor,
        ln_weight: torch.Tensor,
        ln_bias: torch.Tensor,
    ) -> ActiveState:
        """The torch op (electronic LayerNorm), plus its latency depth 2 ceil(log2 d) + 4."""
        out = super().update(cand, alpha, prev, ids, row, valid, ln_weight, ln_bias)
        self._electronic(2 * _log2(ln_weight.shape[0]) + 4)
        return out

    def readout(
        self, state: ActiveState, w_o: torch.Tensor, b_o: torch.Tensor, *, normalise: bool
    ) -> torch.Tensor:
        """The torch op (electronic), plus its latency depth ceil(log2 W) + ceil(log2 d) + 1."""
        out = super().readout(state, w_o, b_o, normalise=normalise)
        self._electronic(_log2(state.ids.shape[1]) + _log2(w_o.shape[1]) + 1)
        return out

    # -------------------------------------------------------------------- mapping
    def prepare(self, model: RSGN) -> OpticalProgram:
        return OpticalProgram(self, model)


def _split_by_domain(ledger: CostLedger) -> dict[str, float]:
    by_ev = ledger.energy_by_event()
    opt = sum(v for k, v in by_ev.items() if k in OPTICAL_EVENTS)
    return {"optical": opt, "electronic": sum(by_ev.values()) - opt}


class OpticalProgram(TorchProgram):
    """A model programmed onto the optical core: node channels written and the graph read once
    (the *programming* cost, reported separately), then ``program(x) -> (logits, Report)``."""

    def __init__(self, backend: OpticalBackend, model: RSGN) -> None:
        backend.nodes = None
        self.programming = CostLedger(backend.table)
        backend.ledger = self.programming
        backend.latency = defaultdict(float)
        try:
            super().__init__(backend, model)
            if backend.offload["graph"] != "optical" and backend.offload["ignite"] == "optical":
                backend.program_nodes(self.graph.x, self.graph.a)
        finally:
            backend.ledger = None
            self.programming_latency = dict(backend.latency)
            backend.latency = None
        self.table = backend.table
        self.reference = (
            TorchBackend(device=self.device).prepare(model) if backend.reference else None
        )
        self.calls = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, Report]:
        be: OpticalBackend = self.backend  # type: ignore[assignment]
        be.rng = np.random.default_rng([be.seed, 2, self.calls])
        be.latency = defaultdict(float)
        self.calls += 1
        try:
            logits, rep = super().__call__(x)
            lat = dict(be.latency)
        finally:
            be.rng, be.latency = None, None
        n = rep.n_samples
        per_inf = sum(lat.values())
        energy = rep.ledger.energy_j()
        metrics: dict[str, Any] = {
            "preset": be.preset.name,
            "noise": be.noise,
            "seed": be.seed,
            "offload": dict(be.offload),
            "simulation_wall_s": rep.latency_s,
            "energy_j_per_inference": energy / max(1, n),
            "energy_j_by_domain_per_inference": {
                k: v / max(1, n) for k, v in _split_by_domain(rep.ledger).items()
            },
            "latency_s_per_inference": per_inf,
            "latency_s_per_inference_by_part": lat,
            "latency_model": "samples in sequence; optical frames in sequence per token; "
            "electronics fully parallel, one logic.latency_per_op per dependent level",
            "latency_constants": {
                k: asdict(be.preset.provenance[k])
                for k in (
                    "encoder.settle_time",
                    "modulator.settle_time",
                    "detector.bandwidth",
                    "adc.latency",
                    "propagation.path_length",
                    "logic.latency_per_op",
                )
            },
            "programming": {
                "energy_j": self.programming.energy_j(),
                "energy_j_by_event": self.programming.energy_by_event(),
                "counts": self.programming.totals(),
                "latency_s": sum(self.programming_latency.values()),
            },
        }
        if be.nodes is not None:
            metrics["nodes_clipped_by_extinction_ratio"] = int(be.nodes.clipped.sum())
        if self.reference is not None:
            ref, _ = self.reference(x)
            ref = ref.to(logits.device)
            err = float((logits - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
            metrics["agreement_with_torch"] = float(
                (logits.argmax(1) == ref.argmax(1)).float().mean()
            )
            metrics["max_rel_logit_err_vs_torch"] = err
        rep.latency_s = per_inf * n
        rep.metrics.update(metrics)
        return logits, rep


# ------------------------------------------------------------------------------ validation
def accuracy_vs_torch(
    model: RSGN,
    x: torch.Tensor,
    y: torch.Tensor,
    preset: str | Path | optics.OpticalPreset = "bench",
    seeds: int | list[int] = 5,
    *,
    offload: dict[str, str] | None = None,
    noise: bool | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    r"""Accuracy drop of the optical core against the torch reference over noise seeds.

    For each seed s: acc_s on the optical backend, agreement_s = fraction of predictions equal to
    torch's.  drop_s = acc_torch - acc_s; the report gives mean(drop) and its 95% confidence
    interval mean +- t_{0.975, n-1} sd / sqrt(n) (Student t over seeds; zero width for one seed
    or identical drops).
    """
    from scipy import stats

    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise RsgnError("accuracy_vs_torch needs at least one seed")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise RsgnError(
            f"x and y must hold the same, non-zero number of samples: {x.shape[0]}, {y.shape[0]}"
        )

    def run(program: Program) -> torch.Tensor:
        preds = []
        for s in range(0, x.shape[0], batch_size):
            logits, _ = program(x[s : s + batch_size])
            preds.append(logits.argmax(1).cpu())
        return torch.cat(preds)

    ref = run(TorchBackend().prepare(model))
    y = y.cpu()
    acc_ref = float((ref == y).float().mean())
    accs, agrees = [], []
    for s in seed_list:
        be = OpticalBackend(preset, seed=s, offload=offload, noise=noise, reference=False)
        pred = run(be.prepare(model))
        accs.append(float((pred == y).float().mean()))
        agrees.append(float((pred == ref).float().mean()))
    drops = np.array([acc_ref - a for a in accs])
    mean = float(drops.mean())
    if len(drops) > 1 and drops.std(ddof=1) > 0:
        half = float(stats.t.ppf(0.975, len(drops) - 1) * drops.std(ddof=1) / math.sqrt(len(drops)))
    else:
        half = 0.0
    return {
        "preset": preset.name if isinstance(preset, optics.OpticalPreset) else str(preset),
        "seeds": seed_list,
        "n_samples": int(x.shape[0]),
        "torch_accuracy": acc_ref,
        "optical_accuracy": accs,
        "agreement_with_torch": agrees,
        "accuracy_drop_mean": mean,
        "accuracy_drop_ci95": (mean - half, mean + half),
    }
