"""Typed hardware profiles with provenance, loaded from TOML presets.

A profile describes one chip family: its mesh (tiles, cores per tile), the capacity of a core,
per-event energies, per-event latencies and static power. Every constant in a preset file is a
table ``{value, unit, source, evidence, scope}``, the one schema of every preset file
(:func:`rsgn.provenance.check_entry`: evidence measured / datasheet / derived / estimate, and a
``source`` citing keys of ``docs/references.md``); the loader also checks the unit and the range of
each, and refuses unknown or missing keys with an error that names the key. Values set with
:func:`override` are the user's, not a publication's: their ``source`` need cite no key.

Units are fixed per key: energies in pJ, times in ns (converted to integer picoseconds, the
simulator's clock unit, so that distinct times never merge), static power in mW per chip,
memory in bytes, widths in bits, counts in ``count``.

Scope ``all-in`` on ``energy.synop`` (a measured total over the synaptic event rate, which
already contains updates, routing and leakage) forbids every other non-zero energy term:
adding them would count the same energy twice. Scope ``all-in dynamic`` (the measured total
minus the measured zero-activity power, over the event rate: TrueNorth) allows a non-zero
static power and nothing else.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

# rsgn.provenance: the one preset schema; it depends on nothing else of rsgn
from ..provenance import EVIDENCE, ProvenanceError, check_entry
from .errors import PresetError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "EVIDENCE_CLASSES",
    "Constant",
    "CoreSpec",
    "ChipSpec",
    "EnergyTable",
    "TimingTable",
    "HardwareProfile",
    "list_presets",
    "load_preset",
    "load_profile",
    "profile_from_dict",
    "override",
]

EVIDENCE_CLASSES = EVIDENCE  # measured, datasheet, derived, estimate (rsgn.provenance)

# key -> (unit, kind) ; kind "int+" = integer >= 1, "float0" = finite float >= 0
_SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "chip": {
        "tiles_x": ("count", "int+"),
        "tiles_y": ("count", "int+"),
        "cores_per_tile": ("count", "int+"),
    },
    "core": {
        "max_neurons": ("count", "int+"),
        "max_axons_in": ("count", "int+"),
        "max_axons_out": ("count", "int+"),
        "syn_mem_bytes": ("byte", "int+"),
        "synapse_bits": ("bit", "int+"),
        "weight_bits": ("bit", "int+"),
        "max_payload_bits": ("bit", "int+"),
        "accumulator_bits": ("bit", "int+"),
    },
    "noc": {
        "buffer_packets": ("count", "int+"),
    },
    "energy": {
        "synop": ("pJ", "float0"),
        "graded_synop": ("pJ", "float0"),
        "neuron_update_active": ("pJ", "float0"),
        "neuron_update_idle": ("pJ", "float0"),
        "neuron_op": ("pJ", "float0"),
        "spike_out": ("pJ", "float0"),
        "message_out": ("pJ", "float0"),
        "message_in": ("pJ", "float0"),
        "tile_spike": ("pJ", "float0"),
        "hop_ew": ("pJ", "float0"),
        "hop_ns": ("pJ", "float0"),
        "chip_hop": ("pJ", "float0"),
        "host_io": ("pJ", "float0"),
        "barrier": ("pJ", "float0"),
        "static_power": ("mW", "float0"),
    },
    "timing": {
        "synop": ("ns", "float0"),
        "graded_synop": ("ns", "float0"),
        "neuron_update_active": ("ns", "float0"),
        "neuron_update_idle": ("ns", "float0"),
        "neuron_op": ("ns", "float0"),
        "spike_out": ("ns", "float0"),
        "message_out": ("ns", "float0"),
        "message_in": ("ns", "float0"),
        "tile_spike": ("ns", "float0"),
        "hop_ew": ("ns", "float0"),
        "hop_ns": ("ns", "float0"),
        "chip_hop": ("ns", "float0"),
        "link_packet": ("ns", "float0"),
        "chip_link_packet": ("ns", "float0"),
        "host_io": ("ns", "float0"),
        "barrier": ("ns", "float0"),
        "barrier_hop": ("ns", "float0"),
        "min_step": ("ns", "float0"),
    },
}

_ALL_IN_ZERO = (
    "energy.graded_synop",
    "energy.neuron_update_active",
    "energy.neuron_update_idle",
    "energy.neuron_op",
    "energy.spike_out",
    "energy.message_out",
    "energy.message_in",
    "energy.tile_spike",
    "energy.hop_ew",
    "energy.hop_ns",
    "energy.chip_hop",
    "energy.barrier",
)
"""Terms that must be 0 when ``energy.synop`` is all-in (scope ``all-in``): the all-in figure
already contains them. Static power may be non-zero only when the all-in figure is the
*dynamic* part of a measured total (scope ``all-in dynamic``)."""


@dataclass(frozen=True)
class Constant:
    """One hardware constant with its provenance.

    Attributes
    ----------
    value : float
        The number, in ``unit``.
    unit : str
        ``pJ``, ``ns``, ``mW``, ``byte``, ``bit`` or ``count`` (fixed per key).
    source : str
        Where the number comes from: bibliography keys of ``docs/references.md`` (paper,
        table, or the derivation).
    evidence : str
        One of ``measured``, ``datasheet``, ``derived``, ``estimate``.
    scope : str
        What the number covers (``per-event``, ``all-in``, ``per chip`` ...).
    """

    value: float
    unit: str
    source: str
    evidence: str
    scope: str


@dataclass(frozen=True)
class CoreSpec:
    """Capacity of one neuro-core.

    Attributes
    ----------
    max_neurons : int
        Neurons (compartments) per core.
    max_axons_in : int
        Fan-in axons per core: distinct source neurons whose synapses end on the core.
    max_axons_out : int
        Fan-out axons per core: distinct (source neuron on the core, destination core) routes.
    syn_mem_bytes : int
        Synaptic memory per core; a core holds at most ``8 * syn_mem_bytes // synapse_bits``
        synapses (those whose destination neuron lives on the core).
    synapse_bits : int
        Bits of synaptic memory per stored synapse (weight plus index/format overhead).
    weight_bits : int
        Signed integer weight width in fixed-point mode.
    max_payload_bits : int
        Widest graded-spike payload (1 = binary spikes only).
    accumulator_bits : int
        Signed width of the dendritic accumulator in fixed-point mode (saturating).
    """

    max_neurons: int
    max_axons_in: int
    max_axons_out: int
    syn_mem_bytes: int
    synapse_bits: int
    weight_bits: int
    max_payload_bits: int
    accumulator_bits: int

    @property
    def max_synapses(self) -> int:
        """Synapses one core can store: ``8 * syn_mem_bytes // synapse_bits``."""
        return 8 * self.syn_mem_bytes // self.synapse_bits


@dataclass(frozen=True)
class ChipSpec:
    """One chip: a ``tiles_x`` x ``tiles_y`` mesh of tiles (routers), each with cores.

    Core ``k`` of a chip sits on tile ``k // cores_per_tile``; tile ``j`` is at
    ``(j % tiles_x, j // tiles_x)``.
    """

    tiles_x: int
    tiles_y: int
    cores_per_tile: int
    core: CoreSpec

    @property
    def tiles_per_chip(self) -> int:
        """``tiles_x * tiles_y``."""
        return self.tiles_x * self.tiles_y

    @property
    def cores_per_chip(self) -> int:
        """``tiles_x * tiles_y * cores_per_tile``."""
        return self.tiles_per_chip * self.cores_per_tile


@dataclass(frozen=True)
class NocSpec:
    """Network-on-chip resources beyond the per-hop constants.

    Attributes
    ----------
    buffer_packets : int
        Depth (packets) of the input buffer in front of every router output link and of every
        core's receive port; a full buffer stalls the link that feeds it (back-pressure).
    """

    buffer_packets: int


@dataclass(frozen=True)
class EnergyTable:
    """Per-event energies in pJ and static power in mW per chip.

    The run energy is
    ``E = sum_k count_k * e_k + static_power_mw * n_chips * latency_ps * 1e-3`` (pJ),
    since 1 mW x 1 ps = 1e-3 pJ.

    ``synop`` is one synaptic operation with a binary (spike) payload, ``graded_synop`` one
    with a graded payload (a multiply-accumulate); ``neuron_op`` one microcode instruction of a
    programmable neuron (a model's declared compute); ``spike_out`` the soma generating one
    output event; ``message_out`` / ``message_in`` the sending / receiving core's work per
    packet; ``tile_spike`` a packet's router traversal; ``host_io`` one value crossing the
    host interface.
    """

    synop: float
    graded_synop: float
    neuron_update_active: float
    neuron_update_idle: float
    neuron_op: float
    spike_out: float
    message_out: float
    message_in: float
    tile_spike: float
    hop_ew: float
    hop_ns: float
    chip_hop: float
    host_io: float
    barrier: float
    static_power_mw: float


@dataclass(frozen=True)
class TimingTable:
    """Per-event latencies in integer picoseconds (converted from the preset's ns).

    ``link_packet_ps`` is an on-chip link's serialisation time per packet (its occupancy),
    ``chip_link_packet_ps`` that of a chip-to-chip link; a hop's uncontended latency
    ``hop_*_ps`` includes it. ``message_out_ps`` is the sending core's time per packet (its
    output port serialises its packets), ``message_in_ps`` the receiving core's time per packet
    before its synaptic operations. The barrier takes ``barrier_ps + 2 * (hops *
    barrier_hop_ps + chip hops * chip_hop_ps)`` from the farthest used tile to the barrier root
    (:meth:`~rsgn.neuromorphic.topology.Topology.barrier_ps`). ``min_step_ps`` is a floor on
    the step time (a real-time tick such as TrueNorth's 1 ms).
    """

    synop_ps: int
    graded_synop_ps: int
    neuron_update_active_ps: int
    neuron_update_idle_ps: int
    neuron_op_ps: int
    spike_out_ps: int
    message_out_ps: int
    message_in_ps: int
    tile_spike_ps: int
    hop_ew_ps: int
    hop_ns_ps: int
    chip_hop_ps: int
    link_packet_ps: int
    chip_link_packet_ps: int
    host_io_ps: int
    barrier_ps: int
    barrier_hop_ps: int
    min_step_ps: int


@dataclass(frozen=True)
class HardwareProfile:
    """A chip family: mesh, core capacity, energies, timings and every constant's provenance.

    Attributes
    ----------
    name, description : str
    chip : ChipSpec
    energy : EnergyTable
    timing : TimingTable
    constants : Mapping[str, Constant]
        Provenance keyed ``"section.key"`` (e.g. ``"energy.synop"``).
    """

    name: str
    description: str
    chip: ChipSpec
    noc: NocSpec
    energy: EnergyTable
    timing: TimingTable
    constants: Mapping[str, Constant] = field(repr=False)

    @property
    def all_in(self) -> bool:
        """True when ``energy.synop`` has scope ``all-in`` (no other dynamic terms)."""
        return self.constants["energy.synop"].scope.strip().lower().startswith("all-in")

    @property
    def all_in_dynamic(self) -> bool:
        """True when the all-in ``energy.synop`` is the dynamic part of a measured total
        (scope ``all-in dynamic``): static power is then a separate, non-zero term."""
        return self.constants["energy.synop"].scope.strip().lower().startswith("all-in dynamic")

    def evidence_summary(self) -> dict[str, int]:
        """Number of constants per evidence class."""
        out = {e: 0 for e in EVIDENCE_CLASSES}
        for c in self.constants.values():
            out[c.evidence] += 1
        return out

    def provenance(self) -> dict[str, dict[str, Any]]:
        """Every constant as a plain dict (for JSON reports)."""
        return {k: dataclasses.asdict(c) for k, c in sorted(self.constants.items())}


def _ns_to_ps(ns: float) -> int:
    return int(round(ns * 1000.0))


def _check_value(key: str, value: Any, unit: str, kind: str) -> int | float:
    """The loader's own checks of one value (range, integer counts); returns it typed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PresetError(f"{key}: value must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise PresetError(f"{key}: value must be finite, got {value!r}")
    if kind == "int+":
        if float(value) != int(value) or int(value) < 1:
            raise PresetError(f"{key}: value must be an integer >= 1, got {value!r}")
        return int(value)
    if float(value) < 0:
        raise PresetError(f"{key}: value must be >= 0, got {value!r}")
    return float(value)


def _check_constant(key: str, raw: Any, unit: str, kind: str) -> Constant:
    try:
        prov = check_entry(key, raw)
    except ProvenanceError as exc:
        raise PresetError(str(exc)) from None
    value = _check_value(key, prov.value, unit, kind)
    if prov.unit != unit:
        raise PresetError(f"{key}: unit must be '{unit}', got {prov.unit!r}")
    return Constant(value, unit, prov.source, prov.evidence, prov.scope)


def profile_from_dict(data: Mapping[str, Any], name: str | None = None) -> HardwareProfile:
    """Build and validate a :class:`HardwareProfile` from a parsed TOML mapping.

    Raises
    ------
    PresetError
        Naming the offending key (unknown, missing, wrong unit, out of range, bad evidence, a
        source citing no bibliography key, or an all-in synaptic energy combined with non-zero
        extra terms).
    """
    top = set(data) - {"name", "description", *_SCHEMA}
    if top:
        raise PresetError(f"unknown key(s) in profile: {', '.join(sorted(top))}")
    pname = str(data.get("name", name or "custom"))
    desc = str(data.get("description", ""))
    consts: dict[str, Constant] = {}
    for section, keys in _SCHEMA.items():
        sec = data.get(section)
        if not isinstance(sec, Mapping):
            raise PresetError(f"{section}: missing section")
        unknown = sorted(set(sec) - set(keys))
        if unknown:
            raise PresetError(f"{section}.{unknown[0]}: unknown key")
        for key, (unit, kind) in keys.items():
            full = f"{section}.{key}"
            if key not in sec:
                raise PresetError(f"{full}: missing key")
            consts[full] = _check_constant(full, sec[key], unit, kind)
    return _build_profile(pname, desc, consts)


def _build_profile(pname: str, desc: str, consts: dict[str, Constant]) -> HardwareProfile:
    """The profile of checked constants, after the checks that involve several of them."""
    v = {k: c.value for k, c in consts.items()}
    core = CoreSpec(
        **{k: int(v[f"core.{k}"]) for k in _SCHEMA["core"]},
    )
    if core.weight_bits < 2:
        raise PresetError("core.weight_bits: value must be >= 2 (signed weights)")
    chip = ChipSpec(
        int(v["chip.tiles_x"]), int(v["chip.tiles_y"]), int(v["chip.cores_per_tile"]), core
    )
    noc = NocSpec(buffer_packets=int(v["noc.buffer_packets"]))
    e = {k: v[f"energy.{k}"] for k in _SCHEMA["energy"] if k != "static_power"}
    energy = EnergyTable(**e, static_power_mw=v["energy.static_power"])
    timing = TimingTable(**{f"{k}_ps": _ns_to_ps(v[f"timing.{k}"]) for k in _SCHEMA["timing"]})
    for hop, link in (
        ("hop_ew_ps", "link_packet"),
        ("hop_ns_ps", "link_packet"),
        ("chip_hop_ps", "chip_link_packet"),
    ):
        if getattr(timing, hop) < getattr(timing, f"{link}_ps"):
            raise PresetError(
                f"timing.{hop[:-3]}: hop latency must be >= timing.{link} "
                "(a hop includes its link serialisation)"
            )
    prof = HardwareProfile(pname, desc, chip, noc, energy, timing, consts)
    if prof.all_in:
        zero = _ALL_IN_ZERO + (() if prof.all_in_dynamic else ("energy.static_power",))
        for key in zero:
            if consts[key].value != 0.0:
                raise PresetError(
                    f"{key}: must be 0 when energy.synop has scope "
                    f"'{consts['energy.synop'].scope.split(';')[0]}' (double counting)"
                )
    return prof


def _preset_dir() -> Any:
    return resources.files("rsgn.neuromorphic").joinpath("presets")


def list_presets() -> list[str]:
    """Names of the packaged presets (``presets/*.toml``), sorted."""
    names = [p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".toml")]
    return sorted(names)


def load_preset(name: str) -> HardwareProfile:
    """Load a packaged hardware preset by name.

    Parameters
    ----------
    name : str
        One of :func:`list_presets` (``loihi``, ``loihi2_est``, ``spinnaker2``, ``truenorth``).

    Raises
    ------
    PresetError
        ``unknown neuromorphic preset 'x'; known: ...`` or an invalid value naming its key.
    """
    known = list_presets()
    key = name.strip().lower()
    if key not in known:
        raise PresetError(f"unknown neuromorphic preset {name!r}; known: {', '.join(known)}")
    text = _preset_dir().joinpath(f"{key}.toml").read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"preset {key}: invalid TOML: {exc}") from None
    return profile_from_dict(data, name=key)


def load_profile(path: str | Path) -> HardwareProfile:
    """Load a user hardware profile from a TOML file with the preset schema."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{p}: invalid TOML: {exc}") from None
    return profile_from_dict(data, name=p.stem)


def override(
    profile: HardwareProfile, values: Mapping[str, float], *, source: str = "user override"
) -> HardwareProfile:
    """Return a copy of ``profile`` with some constants replaced (evidence ``estimate``).

    The new values pass the loader's unit and range checks; their ``source`` is the user's
    note and need not cite a bibliography key.

    Parameters
    ----------
    profile : HardwareProfile
    values : Mapping[str, float]
        ``{"section.key": value}`` in the preset's unit (e.g. ``{"timing.hop_ew": 5.0}`` ns).
    source : str
        Provenance recorded for the new values.
    """
    if not isinstance(source, str) or not source.strip():
        raise PresetError("override: source must be a non-empty string")
    consts = dict(profile.constants)
    for full, val in values.items():
        if full not in consts:
            raise PresetError(f"{full}: unknown key")
        section, key = full.split(".", 1)
        unit, kind = _SCHEMA[section][key]
        value = _check_value(full, val, unit, kind)
        consts[full] = Constant(value, unit, source, "estimate", consts[full].scope)
    return _build_profile(profile.name, profile.description, consts)
