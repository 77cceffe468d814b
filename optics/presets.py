"""Named hardware presets for the optical core, loaded from TOML with provenance.

Each preset is ``presets/<name>.toml`` inside this package (found with :mod:`importlib.resources`).
Every constant is a table::

    [detector.dark_current]
    value = 35
    unit = "nA"          # any SI prefix of the field's unit, or an accepted alternative
    source = "[Key2025]: ..."  # cites keys of docs/references.md
    evidence = "estimate"      # measured | datasheet | derived | estimate
    scope = "..."        # what the number covers

The provenance fields follow the one schema of every preset file, :mod:`rsgn.provenance`
(checked with :func:`rsgn.provenance.check_entry`; an idealised preset may use ``inf``).

:func:`load_preset` converts every value to SI (J, W, s, A, Hz, m, ohm, K, rad; extinction ratio
linear; insertion losses, the target SNR, RIN and fibre loss stay in dB, dB/Hz and dB/km;
areas in m^2) and returns a frozen :class:`OpticalPreset`
whose sections are typed dataclasses of plain floats; ``preset.provenance["adc.enob"]`` gives
the :class:`Constant` (value, SI unit, source, evidence, scope, and the value as written).

Any problem raises :class:`PresetError` (a ``ValueError``) with a one-line message that names
the unknown preset (and lists the known ones) or the file, key and bad value.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

# rsgn.provenance: the one preset schema; it depends on nothing else of rsgn
from ..provenance import EVIDENCE, ProvenanceError, check_entry
from .link import required_power
from .noise import DetectorParams

__all__ = [
    "EVIDENCE",
    "PresetError",
    "Constant",
    "LaserPreset",
    "EncoderPreset",
    "DacPreset",
    "FanoutPreset",
    "NodePreset",
    "DetectorPreset",
    "AdcPreset",
    "LinkPreset",
    "PropagationPreset",
    "LogicPreset",
    "EitPreset",
    "SbsPreset",
    "OpticalPreset",
    "SUBSYMBOLS",
    "available_presets",
    "load_preset",
    "load_preset_file",
]


_PREFIX = {
    "f": 1e-15,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}
_PREFIXABLE = ("J", "W", "s", "A", "Hz", "m", "ohm", "V")


class PresetError(ValueError):
    """An unknown preset or an invalid preset file; the message is one line."""


@dataclass(frozen=True)
class Constant:
    """One preset constant with provenance.

    Attributes
    ----------
    value : float
        Value in SI (``unit``).
    unit : str
        SI unit of ``value`` (``"1"`` for dimensionless).
    source, evidence, scope : str
        Citation (bibliography keys of ``docs/references.md``), one of :data:`EVIDENCE`
        (measured, datasheet, derived, estimate), and what the number covers.
    given : str
        The value and unit as written in the TOML file.
    """

    value: float
    unit: str
    source: str
    evidence: str
    scope: str
    given: str


def _convert(unit: str, si: str, value: float) -> float | None:
    """Value in SI unit ``si`` or None if ``unit`` is not accepted for it."""
    if unit == si:
        return value
    if si == "rad" and unit == "deg":
        return math.radians(value)
    if si == "1" and unit == "dB":
        return 10.0 ** (value / 10.0)
    if si == "m^2" and unit == "um^2":
        return value * 1e-12
    if si in _PREFIXABLE and unit.endswith(si):
        prefix = unit[: -len(si)]
        if prefix in _PREFIX:
            return value * _PREFIX[prefix]
    return None


def _nonneg(x: float) -> bool:
    return x >= 0


def _pos(x: float) -> bool:
    return x > 0


def _finite_pos(x: float) -> bool:
    return 0 < x < math.inf


def _unit_interval(x: float) -> bool:
    return 0 < x <= 1


def _er(x: float) -> bool:
    return x >= 1


def _rin(x: float) -> bool:
    return x < 0


def _bits(x: float) -> bool:
    return x >= 1 and (math.isinf(x) or x == int(x))


def _ge1(x: float) -> bool:
    return x >= 1


def _count(x: float) -> bool:
    return x >= 1 and x == int(x) and math.isfinite(x)


def _positive_db(x: float) -> bool:
    return x > 0


_RULE_TEXT: dict[Callable[[float], bool], str] = {
    _nonneg: "must be >= 0",
    _pos: "must be > 0",
    _finite_pos: "must be finite and > 0",
    _unit_interval: "must lie in (0, 1]",
    _er: "must be >= 1 (>= 0 dB): an extinction ratio below 1 is not a polariser",
    _rin: "must be negative (dB/Hz) or -inf",
    _bits: "must be an integer >= 1 or inf",
    _ge1: "must be >= 1",
    _count: "must be a whole number >= 1",
    _positive_db: "must be > 0 dB",
}


def _q(unit: str, rule: Callable[[float], bool], doc: str) -> Any:
    return field(metadata={"unit": unit, "rule": rule, "doc": doc})


@dataclass(frozen=True)
class LaserPreset:
    """Continuous-wave source laser (one per fan-out group and wavelength)."""

    wall_plug_efficiency: float = _q("1", _unit_interval, "optical power out / electrical power in")
    rin: float = _q("dB/Hz", _rin, "relative intensity noise (dB/Hz)")
    max_power: float = _q("W", _pos, "largest optical output of one source (W)")
    wavelength: float = _q("m", _finite_pos, "operating wavelength (m)")


@dataclass(frozen=True)
class EncoderPreset:
    """Fast polarisation-state generator writing the streamed inputs, one state per window of
    two sub-symbols (each driven by three electro-optic sections)."""

    symbol_rate: float = _q("Hz", _finite_pos, "drive symbols per second (Bd)")
    bandwidth: float = _q("Hz", _pos, "electro-optic bandwidth of one section (Hz)")
    energy_per_symbol: float = _q("J", _nonneg, "energy of one section for one symbol (J)")
    insertion_loss_db: float = _q("dB", _nonneg, "optical loss through the generator (dB)")
    split_error: float = _q("1", _nonneg, "std of the power-split error of the two sub-symbols")
    retardance_error: float = _q("rad", _nonneg, "std of the retardance error of a written state")
    angle_error: float = _q("rad", _nonneg, "std of the azimuth error of a written state (rad)")


@dataclass(frozen=True)
class DacPreset:
    """Digital-to-analogue converter driving the encoder's sections."""

    bits: float = _q("bit", _bits, "resolution of one drive sample")
    energy_per_sample: float = _q("J", _nonneg, "J per conversion")
    max_sample_rate: float = _q("Hz", _pos, "highest conversion rate (S/s)")


@dataclass(frozen=True)
class FanoutPreset:
    """Splitting one encoded beam to F node channels, and the link's other losses."""

    stage_loss_db: float = _q("dB", _nonneg, "excess loss of one 1 x 2 splitter stage (dB)")
    coupling_loss_db: float = _q("dB", _nonneg, "coupling losses between encoder and detector (dB)")
    demux_loss_db: float = _q("dB", _nonneg, "wavelength demultiplexer loss, WDM only (dB)")
    wdm_spacing: float = _q("Hz", _finite_pos, "frequency spacing of WDM channels (Hz)")


@dataclass(frozen=True)
class NodePreset:
    """Static node channels: a retarder and a variable diattenuator per node, set once per model
    on slow devices (each device holds ``channels_per_device`` channels' settings of one of the
    three drives: two for the retarder axis, one for the rapidity)."""

    extinction_ratio: float = _q("1", _er, "diattenuator extinction ratio q/r (linear)")
    insertion_loss_db: float = _q("dB", _nonneg, "insertion loss of each of the 2 elements (dB)")
    retardance_error: float = _q("rad", _nonneg, "std of the retardance error of a set retarder")
    angle_error: float = _q("rad", _nonneg, "std of the azimuth error of a set element (rad)")
    channels_per_device: float = _q("1", _count, "channel settings one device holds")
    holding_power: float = _q("W", _nonneg, "power one device draws while holding (W)")
    settle_time: float = _q("s", _nonneg, "time to write and settle a device (s)")


@dataclass(frozen=True)
class DetectorPreset:
    """Photodiode plus transimpedance amplifier, one per channel (and wavelength)."""

    responsivity: float = _q("A/W", _finite_pos, "A/W")
    dark_current: float = _q("A", _nonneg, "A")
    load_resistance: float = _q("ohm", _pos, "load or TIA-equivalent resistance (ohm)")
    temperature: float = _q("K", _nonneg, "K")
    bandwidth: float = _q("Hz", _pos, "bandwidth of the receiver front end (Hz)")
    power: float = _q("W", _nonneg, "power of one receiver while on (W)")


@dataclass(frozen=True)
class AdcPreset:
    """Analogue-to-digital converter after the TIA, one per channel (and wavelength)."""

    bits: float = _q("bit", _bits, "nominal resolution")
    enob: float = _q("bit", _pos, "effective number of bits (<= bits)")
    energy_per_sample: float = _q("J", _nonneg, "J per conversion")
    max_sample_rate: float = _q("Hz", _pos, "highest conversion rate (S/s)")
    latency: float = _q("s", _nonneg, "conversion + pipeline latency (s)")


@dataclass(frozen=True)
class LinkPreset:
    """The link budget's target: the analogue SNR of a full-scale reading."""

    target_snr_db: float = _q("dB", _positive_db, "analogue SNR of a full-scale reading (dB)")


@dataclass(frozen=True)
class PropagationPreset:
    """Optical path."""

    path_length: float = _q("m", _nonneg, "source-to-detector path (m)")
    group_index: float = _q("1", _ge1, "group index (1 for free space)")


@dataclass(frozen=True)
class LogicPreset:
    """Electronic logic timing (energies: the electronic cost model)."""

    latency_per_op: float = _q("s", _nonneg, "s per dependent operation")


@dataclass(frozen=True)
class EitPreset:
    """EIT activation :math:`T = \\exp(-OD/(1 + P_c/P_{sat}))` in cold atoms."""

    optical_depth: float = _q("1", _nonneg, "resonant optical depth OD")
    saturation_power: float = _q("W", _finite_pos, "P_sat (W)")
    probe_power: float = _q("W", _finite_pos, "probe power per activation (W)")
    response_time: float = _q("s", _pos, "response time of the atomic medium (s)")
    apparatus_power: float = _q("W", _nonneg, "power of the cold-atom apparatus (W)")
    receiver_resistance: float = _q("ohm", _pos, "feedback resistance of the probe receiver")


@dataclass(frozen=True)
class SbsPreset:
    """SBS activation in a silica fibre (the depleted-pump amplifier of
    :mod:`rsgn.optics.nonlinear`)."""

    gain_coefficient: float = _q("m/W", _finite_pos, "Brillouin gain coefficient g_B (m/W)")
    effective_area: float = _q("m^2", _finite_pos, "effective mode area A_eff (m^2)")
    fibre_loss: float = _q("dB/km", _nonneg, "fibre attenuation (dB/km)")
    fibre_length: float = _q("m", _finite_pos, "fibre length L (m)")
    group_index: float = _q("1", _ge1, "group index of the fibre")
    pump_power: float = _q("W", _finite_pos, "Brillouin pump power per activation (W)")
    phonon_lifetime: float = _q("s", _pos, "acoustic phonon lifetime T_B (s)")
    threshold_gain: float = _q("1", _pos, "exponential gain g_B P L_eff / A_eff at threshold")

    @property
    def effective_length(self) -> float:
        r""":math:`L_{eff} = (1 - e^{-\alpha L})/\alpha` (m), :math:`\alpha` the fibre loss
        (1/m)."""
        alpha = self.fibre_loss * math.log(10.0) / 10.0 / 1e3
        return self.fibre_length if alpha == 0 else -math.expm1(-alpha * self.fibre_length) / alpha

    @property
    def gain_exponent(self) -> float:
        r"""Small-signal exponent :math:`g = g_B P_p L_{eff}/A_{eff}` (:math:`e^g` the gain)."""
        return self.gain_coefficient * self.pump_power * self.effective_length / self.effective_area

    @property
    def gain_per_watt(self) -> float:
        r""":math:`G_B = g/P_p = g_B L_{eff}/A_{eff}` (1/W), the argument of
        :func:`rsgn.optics.nonlinear.sbs_gain`."""
        return self.gain_exponent / self.pump_power


_SECTIONS: dict[str, type] = {
    "laser": LaserPreset,
    "encoder": EncoderPreset,
    "dac": DacPreset,
    "fanout": FanoutPreset,
    "node": NodePreset,
    "detector": DetectorPreset,
    "adc": AdcPreset,
    "link": LinkPreset,
    "propagation": PropagationPreset,
    "logic": LogicPreset,
    "eit": EitPreset,
    "sbs": SbsPreset,
}

SUBSYMBOLS = 2
"""Sub-symbols per written state: the two pure, orthogonal sub-frames mixed in one window."""


@dataclass(frozen=True)
class OpticalPreset:
    """A complete, validated optical hardware preset (all values SI; see module docstring).

    Besides the constants, the receiver chain the link budget derives from them
    (:meth:`window`, :meth:`noise_bandwidth`, :meth:`detector_power`, :meth:`channel_power`,
    :meth:`detector_params`): every reading integrates one window of two encoder sub-symbols,
    and the detector power is the least that gives a full-scale reading the target SNR.
    """

    name: str
    description: str
    noise: bool
    """Whether the preset's devices are noisy: detector noise, device errors and quantisation are
    simulated unless a target option says otherwise (``[meta] noise``, default true; the ideal
    core: false)."""
    laser: LaserPreset
    encoder: EncoderPreset
    dac: DacPreset
    fanout: FanoutPreset
    node: NodePreset
    detector: DetectorPreset
    adc: AdcPreset
    link: LinkPreset
    propagation: PropagationPreset
    logic: LogicPreset
    eit: EitPreset
    sbs: SbsPreset
    provenance: Mapping[str, Constant]

    # ------------------------------------------------------------------ derived receiver chain
    @property
    def window(self) -> float:
        r"""Integration window of one reading, :math:`t_{int} = 2/R_{sym}` (two sub-symbols)."""
        return SUBSYMBOLS / self.encoder.symbol_rate

    @property
    def noise_bandwidth(self) -> float:
        r"""Equivalent noise bandwidth of integrate-and-dump over the window,
        :math:`1/(2t_{int})`."""
        return 0.5 / self.window

    @property
    def channel_transmittance(self) -> float:
        r"""Peak transmittance of a node channel, :math:`q = 10^{-2 IL/10}` (retarder and
        diattenuator along its high-transmission axis)."""
        return 10.0 ** (-2.0 * self.node.insertion_loss_db / 10.0)

    def receiver_params(self, full_scale_power: float = math.inf) -> DetectorParams:
        """The receiver chain as :class:`DetectorParams` with the ADC full scale at
        ``full_scale_power`` (W; inf: no ADC)."""
        adc = math.isfinite(full_scale_power)
        return DetectorParams(
            responsivity=self.detector.responsivity,
            dark_current=self.detector.dark_current,
            load_resistance=self.detector.load_resistance,
            temperature=self.detector.temperature,
            rin_db_per_hz=self.laser.rin,
            adc_bits=self.adc.bits if adc else math.inf,
            adc_enob=self.adc.enob if adc else math.inf,
            adc_full_scale=self.detector.responsivity * full_scale_power if adc else 1.0,
        )

    def detector_power(self) -> float:
        """Optical power (W) of a full-scale reading: the least with the target analogue SNR
        over the noise bandwidth (:func:`rsgn.optics.link.required_power`); a ValueError names
        a target RIN makes unreachable."""
        snr = 10.0 ** (self.link.target_snr_db / 10.0)
        return required_power(snr, self.noise_bandwidth, self.receiver_params())

    def channel_power(self) -> float:
        """Optical power (W) of an encoded beam at a node channel's input: a full-scale reading
        after the channel's peak transmittance."""
        return self.detector_power() / self.channel_transmittance

    def detector_params(self) -> DetectorParams:
        """The receiver chain with the ADC full scale at the full-scale reading."""
        return self.receiver_params(self.detector_power())


def _preset_dir() -> Any:
    return resources.files(__package__).joinpath("presets")


def available_presets() -> list[str]:
    """Names of the packaged presets (TOML files under ``presets/``), sorted."""
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> OpticalPreset:
    """Load and validate the packaged preset ``name`` (e.g. ``"ideal"``, ``"bench"``).

    Raises
    ------
    PresetError
        Unknown name (the message lists the known presets) or an invalid file.
    """
    known = available_presets()
    if name not in known:
        raise PresetError(f"unknown optical preset {name!r}; known presets: {', '.join(known)}")
    res = _preset_dir().joinpath(f"{name}.toml")
    return _parse(res.read_text(encoding="utf-8"), f"{name}.toml")


def load_preset_file(path: str | Path) -> OpticalPreset:
    """Load and validate a preset from any TOML file with the packaged presets' layout."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PresetError(f"cannot read optical preset file {str(p)!r}: {exc.strerror}") from None
    return _parse(text, p.name)


def _parse(text: str, where: str) -> OpticalPreset:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{where}: invalid TOML: {exc}") from None
    meta = data.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise PresetError(f"{where}: missing [meta] table with a string 'name'")
    extra_meta = set(meta) - {"name", "description", "noise"}
    if extra_meta:
        raise PresetError(f"{where}: unknown key meta.{sorted(extra_meta)[0]}")
    unknown = set(data) - set(_SECTIONS) - {"meta"}
    if unknown:
        raise PresetError(
            f"{where}: unknown section [{sorted(unknown)[0]}]; known: {', '.join(_SECTIONS)}"
        )
    provenance: dict[str, Constant] = {}
    sections: dict[str, Any] = {}
    for sec_name, cls in _SECTIONS.items():
        table = data.get(sec_name)
        if not isinstance(table, dict):
            raise PresetError(f"{where}: missing section [{sec_name}]")
        specs = {f.name: f.metadata for f in fields(cls)}
        extra = set(table) - set(specs)
        if extra:
            raise PresetError(
                f"{where}: unknown key {sec_name}.{sorted(extra)[0]}; known: {', '.join(specs)}"
            )
        values = {}
        for key, spec in specs.items():
            path = f"{sec_name}.{key}"
            if key not in table:
                raise PresetError(f"{where}: missing key {path}")
            const = _constant(table[key], spec, f"{where}: {path}")
            values[key] = const.value
            provenance[path] = const
        sections[sec_name] = cls(**values)
    adc = sections["adc"]
    if adc.enob > adc.bits:
        raise PresetError(f"{where}: adc.enob = {adc.enob} must not exceed adc.bits = {adc.bits}")
    return OpticalPreset(
        name=meta["name"],
        description=str(meta.get("description", "")),
        noise=_meta_bool(meta, "noise", True, where),
        provenance=MappingProxyType(provenance),
        **sections,
    )


def _meta_bool(meta: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = meta.get(key, default)
    if not isinstance(value, bool):
        raise PresetError(f"{where}: meta.{key} must be true or false, got {value!r}")
    return value


def _constant(entry: Any, spec: Mapping[str, Any], where: str) -> Constant:
    try:  # the common schema; infinities are allowed, the field's rule decides where
        prov = check_entry(where, entry, allow_infinite=True)
    except ProvenanceError as exc:
        raise PresetError(str(exc)) from None
    value, unit = prov.value, prov.unit
    si = spec["unit"]
    converted = _convert(unit, si, float(value))
    if converted is None:
        raise PresetError(f"{where}: unit {unit!r} cannot be converted to {si!r}")
    rule = spec["rule"]
    if not rule(converted):
        raise PresetError(f"{where}: value {value!r} {unit} {_RULE_TEXT[rule]}")
    return Constant(
        value=converted,
        unit=si,
        source=prov.source,
        evidence=prov.evidence,
        scope=prov.scope,
        given=f"{value} {unit}",
    )
