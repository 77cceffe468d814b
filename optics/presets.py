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
linear; insertion loss and RIN stay in dB and dB/Hz) and returns a frozen :class:`OpticalPreset`
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
from .noise import DetectorParams

__all__ = [
    "EVIDENCE",
    "PresetError",
    "Constant",
    "LaserPreset",
    "EncoderPreset",
    "ModulatorPreset",
    "DetectorPreset",
    "AdcPreset",
    "DacPreset",
    "DevicePreset",
    "PropagationPreset",
    "LogicPreset",
    "EitPreset",
    "SbsPreset",
    "OpticalPreset",
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


_RULE_TEXT: dict[Callable[[float], bool], str] = {
    _nonneg: "must be >= 0",
    _pos: "must be > 0",
    _finite_pos: "must be finite and > 0",
    _unit_interval: "must lie in (0, 1]",
    _er: "must be >= 1 (>= 0 dB): an extinction ratio below 1 is not a polariser",
    _rin: "must be negative (dB/Hz) or -inf",
    _bits: "must be an integer >= 1 or inf",
    _ge1: "must be >= 1",
}


def _q(unit: str, rule: Callable[[float], bool], doc: str) -> Any:
    return field(metadata={"unit": unit, "rule": rule, "doc": doc})


@dataclass(frozen=True)
class LaserPreset:
    """Source laser."""

    wall_plug_efficiency: float = _q("1", _unit_interval, "optical power out / electrical power in")
    optical_power: float = _q("W", _finite_pos, "optical power per channel (W)")
    rin: float = _q("dB/Hz", _rin, "relative intensity noise (dB/Hz)")


@dataclass(frozen=True)
class EncoderPreset:
    """SLM (or polarisation modulator array) that writes the input states."""

    write_energy: float = _q("J", _nonneg, "electrical energy per frame write (J)")
    settle_time: float = _q("s", _nonneg, "frame settle/refresh time (s)")


@dataclass(frozen=True)
class ModulatorPreset:
    """Fast modulator setting one retarder/diattenuator value (one symbol)."""

    energy_per_write: float = _q("J", _nonneg, "energy per symbol (J)")
    settle_time: float = _q("s", _nonneg, "time per symbol (s)")


@dataclass(frozen=True)
class DetectorPreset:
    """Photodiode plus transimpedance amplifier."""

    responsivity: float = _q("A/W", _finite_pos, "A/W")
    dark_current: float = _q("A", _nonneg, "A")
    load_resistance: float = _q("ohm", _pos, "load or TIA feedback resistance (ohm)")
    temperature: float = _q("K", _nonneg, "K")
    bandwidth: float = _q("Hz", _finite_pos, "noise bandwidth (Hz)")
    energy_per_sample: float = _q("J", _nonneg, "photodiode + TIA energy per sample (J)")


@dataclass(frozen=True)
class AdcPreset:
    """Analogue-to-digital converter after the TIA."""

    bits: float = _q("bit", _bits, "nominal resolution")
    enob: float = _q("bit", _pos, "effective number of bits (<= bits)")
    energy_per_sample: float = _q("J", _nonneg, "J per conversion")
    full_scale_power: float = _q("W", _finite_pos, "optical power at ADC full scale (W)")
    latency: float = _q("s", _nonneg, "conversion + pipeline latency (s)")


@dataclass(frozen=True)
class DacPreset:
    """Digital-to-analogue converter driving modulators."""

    energy_per_sample: float = _q("J", _nonneg, "J per conversion")


@dataclass(frozen=True)
class DevicePreset:
    """Polarisation-element non-idealities."""

    extinction_ratio: float = _q("1", _er, "polariser/diattenuator extinction ratio q/r (linear)")
    insertion_loss_db: float = _q("dB", _nonneg, "insertion loss per element (dB)")
    retardance_error: float = _q("rad", _nonneg, "std of retardance error (rad)")
    angle_error: float = _q("rad", _nonneg, "std of azimuth error (rad)")


@dataclass(frozen=True)
class PropagationPreset:
    """Optical path."""

    path_length: float = _q("m", _nonneg, "source-to-detector path (m)")
    group_index: float = _q("1", _ge1, "group index (1 for free space)")


@dataclass(frozen=True)
class LogicPreset:
    """Electronic logic (per digital operation after the ADC)."""

    energy_per_op: float = _q("J", _nonneg, "J per operation")
    latency_per_op: float = _q("s", _nonneg, "s per dependent operation")


@dataclass(frozen=True)
class EitPreset:
    """EIT activation :math:`T = \\exp(-OD/(1 + P_c/P_{sat}))`."""

    optical_depth: float = _q("1", _nonneg, "resonant optical depth OD")
    saturation_power: float = _q("W", _finite_pos, "P_sat (W)")


@dataclass(frozen=True)
class SbsPreset:
    """SBS amplifier activation (phenomenological, see :mod:`rsgn.optics.nonlinear`)."""

    small_signal_gain: float = _q("1", _ge1, "small-signal gain e^g (linear)")
    pump_power: float = _q("W", _finite_pos, "pump power (W)")

    @property
    def gain_per_watt(self) -> float:
        """:math:`G_B = \\ln(G_0)/P_p` (1/W), the argument of
        :func:`rsgn.optics.nonlinear.sbs_gain`.
        """
        return math.log(self.small_signal_gain) / self.pump_power


_SECTIONS: dict[str, type] = {
    "laser": LaserPreset,
    "encoder": EncoderPreset,
    "modulator": ModulatorPreset,
    "detector": DetectorPreset,
    "adc": AdcPreset,
    "dac": DacPreset,
    "devices": DevicePreset,
    "propagation": PropagationPreset,
    "logic": LogicPreset,
    "eit": EitPreset,
    "sbs": SbsPreset,
}


@dataclass(frozen=True)
class OpticalPreset:
    """A complete, validated optical hardware preset (all values SI; see module docstring)."""

    name: str
    description: str
    noise: bool
    """Whether the preset's devices are noisy: detector noise and device errors are simulated
    unless a target option says otherwise (``[meta] noise``, default true; the ideal core:
    false)."""
    laser: LaserPreset
    encoder: EncoderPreset
    modulator: ModulatorPreset
    detector: DetectorPreset
    adc: AdcPreset
    dac: DacPreset
    devices: DevicePreset
    propagation: PropagationPreset
    logic: LogicPreset
    eit: EitPreset
    sbs: SbsPreset
    provenance: Mapping[str, Constant]

    def detector_params(self) -> DetectorParams:
        """The receiver chain as :class:`rsgn.optics.noise.DetectorParams` (ADC full scale in A)."""
        return DetectorParams(
            responsivity=self.detector.responsivity,
            dark_current=self.detector.dark_current,
            load_resistance=self.detector.load_resistance,
            temperature=self.detector.temperature,
            rin_db_per_hz=self.laser.rin,
            adc_bits=self.adc.bits,
            adc_enob=self.adc.enob,
            adc_full_scale=self.detector.responsivity * self.adc.full_scale_power,
        )


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
