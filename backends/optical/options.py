"""Typed options of the optical target, the presets they name and the preset's constants.

A preset of the optical targets is an optics preset (the constants, with provenance, in
``rsgn/optics/presets/<name>.toml``), whose data also says whether its devices are noisy
(``[meta] noise``: ``ideal`` is the noise-free reference, ``bench`` and ``lowpower`` simulate
detector noise, device errors and quantisation); the option ``noise`` overrides it.
``preset_file`` replaces the constants by another TOML file of the same layout, ``overrides``
single constants (SI units), e.g. for sweeps:

    OpticalOptions(preset="bench", overrides="link.target_snr_db=30,adc.enob=5")

The offload map says which ops run on the optical core (:data:`OFFLOAD_MODES`); the design
choices of the system (:mod:`.system`): ``fanout``, ``wavelengths``, ``precision`` of the
electronics, ``schedule`` (what time the always-on devices are charged for) and ``reuse``
(inferences per node setting).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from rsgn import optics
from rsgn.backends.options import TargetOptions
from rsgn.errors import RsgnError

SCHEDULES = ("streaming", "single")
ATTEND = ("keep", "reread")
PRECISIONS = ("auto", "int8", "fp32")
OFFLOAD_MODES: dict[str, tuple[str, ...]] = {
    "graph": ("optical", "electronic"),
    "ignite": ("optical", "electronic"),
    "propagate": ("electronic", "eit", "sbs"),
}
"""The ops with more than one implementation on the hybrid core (inhibit, select, update and
readout are always electronic); the first choice of ``propagate`` keeps the model's function,
the optical activations (EIT, SBS) change it and are opt-in."""


def parse_overrides(text: str) -> dict[str, float]:
    """``"section.field=value,..."`` -> {``"section.field"``: value} (SI values; a one-line
    RsgnError names a malformed item or a value that is not a number)."""
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key.count(".") != 1:
            raise RsgnError(f"optics override {item!r}: expected section.field=value")
        try:
            out[key] = float(value)
        except ValueError:
            raise RsgnError(
                f"optics override {item!r}: {value.strip()!r} is not a number"
            ) from None
    return out


def apply_overrides(p: optics.OpticalPreset, changes: dict[str, float]) -> optics.OpticalPreset:
    """A copy of preset ``p`` with constants ``section.field`` set to SI values; their
    provenance says they were overridden. Each value must pass the field's own rule."""
    if not changes:
        return p
    prov = dict(p.provenance)
    sections: dict[str, dict[str, float]] = {}
    for key, val in changes.items():
        if key not in prov:
            raise RsgnError(f"optics override {key!r}: unknown constant (known: {', '.join(prov)})")
        sec, name = key.split(".")
        spec = {f.name: f for f in dataclasses.fields(getattr(p, sec))}[name]
        rule = spec.metadata.get("rule")
        if callable(rule) and not rule(val):
            raise RsgnError(f"optics override {key}={val:g}: out of range ({spec.metadata['doc']})")
        sections.setdefault(sec, {})[name] = val
        old = prov[key]
        prov[key] = dataclasses.replace(
            old,
            value=val,
            given=f"{val:g} {old.unit} (option override)",
            source=f"option override of preset {p.name!r} (was {old.given}): {old.source}",
        )
    kw = {s: dataclasses.replace(getattr(p, s), **f) for s, f in sections.items()}
    out = dataclasses.replace(p, provenance=prov, **kw)
    if out.adc.enob > out.adc.bits:
        raise RsgnError(f"optics overrides: adc.enob = {out.adc.enob} exceeds adc.bits")
    return out


def load_optics(preset: str, preset_file: str | None, overrides: str) -> optics.OpticalPreset:
    """The constants of preset ``preset`` (or of ``preset_file``) with ``overrides`` applied;
    any problem is a one-line RsgnError."""
    try:
        if preset_file is not None:
            p = optics.load_preset_file(preset_file)
        else:
            p = optics.load_preset(preset)
    except optics.PresetError as exc:
        raise RsgnError(str(exc)) from None
    return apply_overrides(p, parse_overrides(overrides))


@dataclass
class OpticsChoice(TargetOptions):
    """The options both optical targets share: the preset, its constants, noise and seed."""

    preset_file: str | None = None
    """An optics preset TOML (the packaged presets' layout) replacing the named preset (its
    constants and its noise default)."""
    overrides: str = ""
    """Constants overridden, ``section.field=value`` in SI units, comma-separated."""
    noise: bool | None = None
    """Detector noise and device errors; None: as the preset's data says (``[meta] noise``)."""
    seed: int = 0
    """Seeds every noise draw (static device errors at prepare, per-sample detector noise)."""
    device: str | None = None
    """Torch device of the electronic ops (cpu, cuda, cuda:N); None: where the spec is."""
    PRESETS: ClassVar[tuple[str, ...]] = tuple(optics.available_presets())

    def validate(self) -> None:
        super().validate()
        if self.seed < 0:
            raise RsgnError(f"{self.TARGET} option 'seed' must be >= 0, got {self.seed}")
        if self.device is not None and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise RsgnError(f"{self.TARGET} option 'device': {self.device!r} is not cpu or cuda")
        parse_overrides(self.overrides)

    @property
    def noise_on(self) -> bool:
        """The ``noise`` switch resolved: the option, else the preset's ``[meta] noise``."""
        return self.load().noise if self.noise is None else bool(self.noise)

    def load(self) -> optics.OpticalPreset:
        """The optics constants these options name (see :func:`load_optics`)."""
        return load_optics(self.preset, self.preset_file, self.overrides)


@dataclass
class OpticalOptions(OpticsChoice):
    """Options of the optical target."""

    preset: str = "ideal"
    graph: str = "optical"
    """The N K edge distances: read through the core once at prepare, or computed."""
    ignite: str = "optical"
    """The B T N spark-node distances of ignition (and 'attend'): read, or computed."""
    propagate: str = "electronic"
    """The node activation: the electronic sigmoid or an optical transfer (eit, sbs)."""
    fanout: int = 0
    """Node channels fed by one source and encoder; 0: the most the laser's power allows."""
    wavelengths: int = 1
    """Samples carried at once on separate wavelengths (WDM) through the same node channels."""
    precision: str = "auto"
    """Electronic datapath the cost model prices: auto (int8 when the readings carry <= 8
    effective bits, else fp32), int8 or fp32."""
    schedule: str = "streaming"
    """streaming: samples back to back, every always-on device charged for the time the
    inference occupies it; single: one inference at a time, charged for its whole latency."""
    reuse: int = 1_000_000
    """Inferences that reuse one setting of the node devices (their setting energy is spread
    over them)."""
    attend: str = "keep"
    """The 'attend' initial state's distances: keep (ignition's B T N readings stored in SRAM,
    the winners' read back) or reread (a second pass of the T spark states, the winners'
    channels converting: fresh noise, T more windows)."""
    TARGET: ClassVar[str] = "optical"

    def validate(self) -> None:
        super().validate()
        for op, modes in OFFLOAD_MODES.items():
            if getattr(self, op) not in modes:
                raise RsgnError(
                    f"optical option {op!r}: cannot run as {getattr(self, op)!r} "
                    f"(choices: {', '.join(modes)})"
                )
        for name, value, choices in (
            ("precision", self.precision, PRECISIONS),
            ("schedule", self.schedule, SCHEDULES),
            ("attend", self.attend, ATTEND),
        ):
            if value not in choices:
                raise RsgnError(
                    f"optical option {name!r}: {value!r} is not one of {', '.join(choices)}"
                )
        for name, value, low in (("fanout", self.fanout, 0), ("wavelengths", self.wavelengths, 1)):
            if value < low:
                raise RsgnError(f"optical option {name!r} must be >= {low}, got {value}")
        if self.reuse < 1:
            raise RsgnError(f"optical option 'reuse' must be >= 1, got {self.reuse}")

    @property
    def offload(self) -> dict[str, str]:
        """The offload map, op -> mode."""
        return {op: getattr(self, op) for op in OFFLOAD_MODES}
