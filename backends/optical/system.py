r"""The optical core as a system: what the preset's devices and the options' design choices make
of a model of N nodes (fan-out, link budget, device counts, precision), and the regimes it must
stay in.

The data path of one reading::

    CW laser (one per fan-out group and wavelength)
      -> polarisation-state generator (the encoder: three electro-optic sections, each driven by
         a DAC sample per symbol; a written state is two sub-symbols, the pure +n state with
         power w+ and the pure -n state with power w-, mixed in one window t_int = 2 / R_sym)
      -> 1 x F splitter tree (ceil(log2 F) stages), couplings [, demultiplexer with WDM]
      -> node channel i: retarder -> variable diattenuator (static settings on slow devices)
      -> photodiode + TIA integrating over t_int (noise bandwidth 1 / (2 t_int))
      -> ADC, one conversion per window -> electronics at the stated precision

**Link budget.** A full-scale reading gets the target analogue SNR: detector power
:math:`P_{det}` (:meth:`rsgn.optics.OpticalPreset.detector_power`); a beam reaches a channel
with :math:`P_{ch} = P_{det}/q_{ch}` (:math:`q_{ch}` the channel's peak transmittance, both
elements' insertion loss); one source feeds F channels through the encoder, the tree, the
couplings and (WDM) a demultiplexer:

.. math:: P_L = F\,P_{ch} / \big(T_{enc}\,T_{split}(F)\,T_{coupling}\,T_{demux}\big),
          \qquad T_{split}(F) = 10^{-L_s\lceil\log_2F\rceil/10}.

**Fan-out.** F channels per source: the ``fanout`` option, or (0) the largest F <= N whose
:math:`P_L` fits ``laser.max_power``; :math:`G = \lceil N/F\rceil` groups, each with its laser,
encoder and drive chain (DACs), writing the same state: F is the number of readings one
written state's conversions are spread over. For
``d_space > 3`` (planar pairs) every (beam, channel) pair is its own state: one encoder per
channel, DAC samples per reading, no fan-out of a written state (the light is still split from
the group's laser ahead of the encoders, with the same losses).

**Wavelengths.** W wavelengths carry W samples at once through the same node channels (W
lasers, encoders and DAC chains per group, W receivers and ADCs per channel behind a
demultiplexer). A retarder set for :math:`\lambda` shows :math:`\delta\,\Delta\lambda/\lambda`
of retardance error at an offset :math:`\Delta\lambda`; W is allowed while that error, for the
outermost channel of the grid and :math:`\delta = \pi`, stays within ``node.retardance_error``
(the error the simulation already draws).

**Precision.** The readings carry :math:`\mathrm{ENOB} = \mathrm{ENOB}(1/(1/\mathrm{SNR}_{link}
+ 1/\mathrm{SNR}_{ADC}))` effective bits; the electronics are costed at int8 when that is at
most 8 (``precision = 'auto'``), else fp32, or as the option says.

Every regime below is checked when the system is built; a violation is an RsgnError naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rsgn import optics
from rsgn.backends.torch import cost as electronic
from rsgn.errors import RsgnError

DRIVES = 3
"""Electro-optic sections (drives) per written state: two set its direction on the sphere, one its
power; the same three per node channel's static setting (two retarder axes, one rapidity)."""
SUBSYMBOLS = optics.presets.SUBSYMBOLS


def reading_enob(p: optics.OpticalPreset) -> float:
    r"""Effective bits of a full-scale reading: the link's analogue SNR and the ADC's
    :math:`6.02\,\mathrm{ENOB} + 1.76` dB added as noise powers."""
    snr_link = 10.0 ** (p.link.target_snr_db / 10.0)
    if math.isinf(p.adc.enob):
        return float(optics.enob_from_snr(snr_link))
    snr_adc = 10.0 ** (float(optics.sqnr_db(p.adc.enob)) / 10.0)
    return float(optics.enob_from_snr(1.0 / (1.0 / snr_link + 1.0 / snr_adc)))


def resolve_precision(name: str, p: optics.OpticalPreset) -> electronic.Precision:
    """The electronic precision: ``name``, or for 'auto' int8 when the readings carry <= 8
    effective bits (:func:`reading_enob`), else fp32."""
    if name == "auto":
        return electronic.INT8 if reading_enob(p) <= 8.0 else electronic.FP32
    return electronic.precision(name)


def check_timing(p: optics.OpticalPreset) -> None:
    """The symbol and window rates within the encoder, DAC, receiver and ADC ratings."""
    rate, window_rate = p.encoder.symbol_rate, 1.0 / p.window
    checks = (
        (rate <= 2.0 * p.encoder.bandwidth, "encoder.symbol_rate", "twice encoder.bandwidth"),
        (rate <= p.dac.max_sample_rate, "encoder.symbol_rate", "dac.max_sample_rate"),
        (window_rate <= p.adc.max_sample_rate, "the window rate", "adc.max_sample_rate"),
        (window_rate <= 2.0 * p.detector.bandwidth, "the window rate", "twice detector.bandwidth"),
    )
    for ok, what, limit in checks:
        if not ok:
            raise RsgnError(
                f"optical system outside its regime: {what} ({rate:.3g} Bd, windows of "
                f"{p.window:.3g} s) exceeds {limit}"
            )


def detector_power(p: optics.OpticalPreset) -> float:
    """:meth:`rsgn.optics.OpticalPreset.detector_power`, a RIN-capped target as RsgnError."""
    try:
        return p.detector_power()
    except ValueError as exc:
        raise RsgnError(f"optical link budget outside its regime: {exc}") from None


@dataclass(frozen=True)
class System:
    """The architecture of one program (module docstring). Powers in W, times in s."""

    preset: optics.OpticalPreset
    n_nodes: int
    planar: bool
    fanout: int
    """F: node channels fed by one source."""
    groups: int
    """G = ceil(N / F): sources (and encoders, non-planar) per wavelength."""
    wavelengths: int
    """W: samples carried at once on separate wavelengths."""
    channel_power: float
    """Optical power of an encoded beam at a channel's input (W)."""
    laser_power: float
    """Optical power of one source (W)."""
    link_transmittance: float
    """Source-to-channel transmittance of the link excluding the 1/F split itself."""
    precision: electronic.Precision
    enob: float
    """Effective bits of a full-scale reading."""

    # ------------------------------------------------------------------ device counts
    @property
    def lasers(self) -> int:
        return self.groups * self.wavelengths

    @property
    def encoders(self) -> int:
        """Polarisation-state generators: one per group, or one per channel for planar pairs."""
        return (self.n_nodes if self.planar else self.groups) * self.wavelengths

    @property
    def receivers(self) -> int:
        """Photodiode + TIA + ADC chains: one per channel and wavelength."""
        return self.n_nodes * self.wavelengths

    @property
    def node_devices(self) -> int:
        """Slow devices holding the node settings: each of the three drives of N channels."""
        per = int(self.preset.node.channels_per_device)
        return DRIVES * math.ceil(self.n_nodes / per)

    @property
    def window(self) -> float:
        return self.preset.window

    @property
    def laser_electrical_power(self) -> float:
        """Electrical power of one source (W)."""
        return optics.laser_electrical_energy(
            self.laser_power, 1.0, self.preset.laser.wall_plug_efficiency
        )

    def summary(self) -> dict[str, float | int | str]:
        """The architecture's figures for a report."""
        p = self.preset
        return {
            "symbol_rate_baud": p.encoder.symbol_rate,
            "window_s": self.window,
            "noise_bandwidth_hz": p.noise_bandwidth,
            "detector_full_scale_w": p.detector_power(),
            "channel_power_w": self.channel_power,
            "fanout": self.fanout,
            "groups": self.groups,
            "wavelengths": self.wavelengths,
            "laser_power_w": self.laser_power,
            "lasers": self.lasers,
            "encoders": self.encoders,
            "receivers": self.receivers,
            "node_devices": self.node_devices,
            "link_transmittance": self.link_transmittance,
            "reading_enob_bits": self.enob,
            "electronic_precision": self.precision.name,
            "planar_pairs": self.planar,
        }


def link_transmittance(p: optics.OpticalPreset, fanout: int, wavelengths: int) -> float:
    """Source-to-channel transmittance besides the 1/F split: encoder, tree stages, couplings,
    and the demultiplexer when W > 1."""
    demux = p.fanout.demux_loss_db if wavelengths > 1 else 0.0
    stages = optics.splitter_stages(fanout)
    return optics.db_transmittance(
        p.encoder.insertion_loss_db,
        p.fanout.stage_loss_db * stages,
        p.fanout.coupling_loss_db,
        demux,
    )


def laser_power(p: optics.OpticalPreset, fanout: int, wavelengths: int, p_ch: float) -> float:
    """Optical power one source needs to feed ``fanout`` channels with ``p_ch`` each (W)."""
    return fanout * p_ch / link_transmittance(p, fanout, wavelengths)


def check_wavelengths(p: optics.OpticalPreset, wavelengths: int) -> None:
    """W wavelengths within the node retarders' error budget (module docstring)."""
    if wavelengths == 1:
        return
    spacing = optics.wavelength_spacing(p.fanout.wdm_spacing, p.laser.wavelength)
    offset = 0.5 * (wavelengths - 1) * spacing
    err = float(optics.chromatic_retardance_error(math.pi, offset, p.laser.wavelength))
    if err > p.node.retardance_error:
        raise RsgnError(
            f"optical system outside its regime: {wavelengths} wavelengths on the "
            f"{p.fanout.wdm_spacing / 1e9:g} GHz grid give the outer channel a chromatic "
            f"retardance error of {err:.3g} rad, above node.retardance_error = "
            f"{p.node.retardance_error:.3g} rad"
        )


def build_system(
    p: optics.OpticalPreset,
    n_nodes: int,
    d_space: int,
    *,
    fanout: int = 0,
    wavelengths: int = 1,
    precision: str = "auto",
) -> System:
    """The architecture for N = ``n_nodes`` nodes of a ``d_space``-dimensional ball
    (module docstring); regime violations are RsgnErrors."""
    check_timing(p)
    check_wavelengths(p, wavelengths)
    p_ch = detector_power(p) / p.channel_transmittance
    if fanout > n_nodes:
        raise RsgnError(f"optical option fanout = {fanout} exceeds the {n_nodes} node channels")
    if fanout:
        f = fanout
        need = laser_power(p, f, wavelengths, p_ch)
        if need > p.laser.max_power:
            raise RsgnError(
                f"optical link budget outside its regime: fan-out {f} needs {need:.3g} W per "
                f"source, above laser.max_power = {p.laser.max_power:.3g} W"
            )
    else:  # the largest F that fits (the source power grows with F): bisection
        lo, hi = 1, n_nodes
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if laser_power(p, mid, wavelengths, p_ch) <= p.laser.max_power:
                lo = mid
            else:
                hi = mid - 1
        f = lo
        if laser_power(p, f, wavelengths, p_ch) > p.laser.max_power:
            raise RsgnError(
                "optical link budget outside its regime: one channel needs "
                f"{laser_power(p, 1, wavelengths, p_ch):.3g} W per source, above "
                f"laser.max_power = {p.laser.max_power:.3g} W"
            )
    return System(
        preset=p,
        n_nodes=n_nodes,
        planar=d_space > 3,
        fanout=f,
        groups=math.ceil(n_nodes / f),
        wavelengths=wavelengths,
        channel_power=p_ch,
        laser_power=laser_power(p, f, wavelengths, p_ch),
        link_transmittance=link_transmittance(p, f, wavelengths),
        precision=resolve_precision(precision, p),
        enob=reading_enob(p),
    )
