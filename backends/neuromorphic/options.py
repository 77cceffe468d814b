"""Typed options of the neuromorphic target (``--preset``, ``--backend-arg KEY=VALUE``).

The preset picks the chip (its constants, with provenance, live in
``rsgn/neuromorphic/presets/*.toml``); the other fields pick how the RSGN is coded and mapped
onto it. Every field is validated by :meth:`NeuromorphicOptions.validate` with an error that
names the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rsgn import neuromorphic as nm
from rsgn.backends.options import TargetOptions
from rsgn.errors import RsgnError

MODES = ("float", "fixed")
"""float: float64 datapath; fixed: the bit-accurate integer datapath (integer weights and
payloads, saturating accumulators)."""
SELECTIONS = ("exact", "local")
"""exact: the model's selection rule (radix, or stat) as rounds of reductions over the NoC;
local: a per-core k-WTA without communication (an approximation, its accuracy measured)."""


@dataclass
class NeuromorphicOptions(TargetOptions):
    """Options of the neuromorphic target.

    RSGN sends graded payloads, so the binary-spike presets (``loihi``, ``truenorth``) are
    listed (they are chips of the engine) but refused by ``check`` before any work.
    """

    preset: str = "loihi2_est"
    mode: str = "float"
    """``float`` or ``fixed`` (:data:`MODES`)."""
    payload_bits: int | None = None
    """Graded payload width b (>= 2); None: exact payloads in float mode, and in fixed mode
    ``accumulator_bits - weight_bits - 1 - ceil(log2(fan-in + 2))`` capped by the chip's
    ``max_payload_bits``."""
    payload_scale: float | None = None
    """One payload LSB (value units) for every channel; None: per channel from the data-free
    bound (see :mod:`.coding`), or ``Program.calibrate(x)``."""
    sigma_delta: bool = False
    """Send payload changes only (``|delta| > sd_threshold``)."""
    sd_threshold: float = 0.0
    """Sigma-delta threshold: value units with exact payloads, LSBs of the channel otherwise."""
    idle_policy: str = "touched_only"
    """Which compartments the chip updates each step: ``all``, ``active_cores`` or
    ``touched_only`` (``rsgn.neuromorphic.IDLE_POLICIES``)."""
    seed: int = 0
    """Seeds the simulator's per-step rng (the RSGN node program itself is deterministic)."""
    nodes_per_core: int | None = None
    """Fixed nodes per core; None: one hyperbolic neighbourhood or an even share of a chip,
    halved until the core limits hold (see :mod:`.mapping`)."""
    node_split: int | None = None
    """Cores each node's d + 1 compartments are split over (1 .. d + 1); None: 1, else the
    smallest power of two (then d + 1) at which the core limits hold."""
    chips: int | None = None
    """Fixed number of chips; None: as many as the placement needs."""
    overrides: str = ""
    """Preset constants to replace, ``"core.max_neurons=64,timing.hop_ew=5"`` (values in the
    preset's units; recorded with evidence ``estimate``)."""
    selection: str = "exact"
    """``exact`` or ``local`` (:data:`SELECTIONS`)."""
    select_bits: int = 4
    """Key bits resolved per reduction round of the exact selection (1 .. 16): 1 is a bisection
    (up to ~42 rounds of 1-packet messages), 4 sends up to 16 histogram bins per core and round
    (up to ~12 rounds)."""
    noc: str = "train"
    """Network timing: ``train`` (a step's packets per core pair as trains) or ``packet`` (every
    packet simulated; the reference the shortcut is validated against)."""
    buffer_packets: int | None = None
    """Router and receive-port buffer depth in packets (None: the preset's)."""
    noc_quantum_ns: float = 25.0
    """A flow crosses links without a SimPy event of its own while its head is less than this
    far ahead of the clock (0: one event per hop). 25 ns halves the events of a trained
    model's inference and moves its latency by 0.01 % (measured:
    ``studies/neuromorphic/noc_validation.py``)."""
    TARGET: ClassVar[str] = "neuromorphic"

    @classmethod
    def preset_names(cls) -> list[str]:
        return nm.list_presets()

    def override_values(self) -> dict[str, float]:
        """``overrides`` parsed into ``{"section.key": value}`` (RsgnError naming a bad item)."""
        out: dict[str, float] = {}
        for item in (s.strip() for s in self.overrides.split(",")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            try:
                if not sep:
                    raise ValueError("expected section.key=value")
                out[key.strip()] = float(value)
            except ValueError as exc:
                raise RsgnError(
                    f"neuromorphic option 'overrides': bad item {item!r} ({exc})"
                ) from None
        return out

    def profile(self) -> nm.HardwareProfile:
        """The chip: the preset with ``overrides`` applied (RsgnError naming a bad key)."""
        try:
            prof = nm.load_preset(self.preset)
            values = self.override_values()
            return nm.override(prof, values) if values else prof
        except nm.PresetError as exc:
            raise RsgnError(f"neuromorphic preset {self.preset}: {exc}") from None

    def validate(self) -> None:
        super().validate()
        if self.mode not in MODES:
            raise RsgnError(
                f"unknown mode {self.mode!r} for the neuromorphic target (known: "
                f"{', '.join(MODES)})"
            )
        if self.idle_policy not in nm.IDLE_POLICIES:
            raise RsgnError(
                f"unknown idle_policy {self.idle_policy!r} (known: {', '.join(nm.IDLE_POLICIES)})"
            )
        if self.payload_bits is not None and self.payload_bits < 2:
            raise RsgnError(f"payload_bits must be >= 2 (graded payloads), got {self.payload_bits}")
        for what in ("nodes_per_core", "node_split", "chips"):
            v = getattr(self, what)
            if v is not None and v < 1:
                raise RsgnError(f"{what} must be >= 1, got {v}")
        if self.selection not in SELECTIONS:
            raise RsgnError(
                f"unknown selection {self.selection!r} (known: {', '.join(SELECTIONS)})"
            )
        if not 1 <= self.select_bits <= 16:
            raise RsgnError(f"select_bits must lie in 1 .. 16, got {self.select_bits}")
        if self.noc not in nm.NOC_MODES:
            raise RsgnError(f"unknown noc {self.noc!r} (known: {', '.join(nm.NOC_MODES)})")
        if not self.noc_quantum_ns >= 0:
            raise RsgnError(f"noc_quantum_ns must be >= 0, got {self.noc_quantum_ns}")
        if self.buffer_packets is not None and self.buffer_packets < 1:
            raise RsgnError(f"buffer_packets must be >= 1, got {self.buffer_packets}")
        if self.payload_scale is not None and not self.payload_scale > 0:
            raise RsgnError(f"payload_scale must be > 0, got {self.payload_scale}")
        if not self.sd_threshold >= 0:
            raise RsgnError(f"sd_threshold must be >= 0, got {self.sd_threshold}")
        self.profile()

    @property
    def exact(self) -> bool:
        """Float datapath with exact payloads and no sigma-delta: the mode whose agreement with
        the torch reference is a float-precision promise."""
        return self.mode == "float" and self.payload_bits is None and not self.sigma_delta
