"""Cost ledger: counted events, per-event energies with provenance, energy breakdown.

Energy of a run is modelled as

    E = sum_events count(event) * e(event)

where each per-event energy ``e`` is a :class:`Constant` read from a preset TOML file that
carries its value, unit, source, evidence (measured / datasheet / derived / estimate) and scope
(the schema of :mod:`rsgn.provenance`; ``source`` cites keys of ``docs/references.md``).
The ledger also keeps counts per op so a report can say where the energy went.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from rsgn.errors import RsgnError
from rsgn.provenance import EVIDENCE, ProvenanceError, check_entry

_UNIT_TO_J = {"fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9, "uJ": 1e-6, "mJ": 1e-3, "J": 1.0}


@dataclass(frozen=True)
class Constant:
    """A physical or hardware constant with provenance.

    ``evidence`` is one of :data:`rsgn.provenance.EVIDENCE` (measured, datasheet, derived,
    estimate).
    """

    value: float
    unit: str
    source: str
    evidence: str
    scope: str = ""

    def joules(self) -> float:
        if self.unit not in _UNIT_TO_J:
            raise RsgnError(f"unit {self.unit!r} is not an energy unit ({', '.join(_UNIT_TO_J)})")
        return self.value * _UNIT_TO_J[self.unit]


@dataclass
class EnergyTable:
    name: str
    events: dict[str, Constant]
    meta: dict[str, Any] = field(default_factory=dict)


_KINDS = EVIDENCE  # the evidence classes of a constant (rsgn.provenance)


def load_energy_table(name: str = "electronic_45nm") -> EnergyTable:
    """Load a per-event energy table from ``rsgn/presets/<name>.toml``."""
    files = resources.files("rsgn.presets")
    known = sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))
    if name not in known:
        raise RsgnError(f"unknown preset {name!r} for this backend (known: {', '.join(known)})")
    data = tomllib.loads((files / f"{name}.toml").read_text())
    events = {}
    for ev, d in data.get("events", {}).items():
        try:
            p = check_entry(f"preset {name}: event {ev}", d)
        except ProvenanceError as exc:
            raise RsgnError(str(exc)) from None
        if not p.value >= 0:
            raise RsgnError(f"preset {name}: event {ev} has negative energy {p.value}")
        events[ev] = Constant(float(p.value), p.unit, p.source, p.evidence, p.scope)
    return EnergyTable(name=name, events=events, meta=data.get("meta", {}))


class CostLedger:
    """Counts of costed events, grouped by op, and their modelled energy."""

    def __init__(self, table: EnergyTable | None = None) -> None:
        self.table = table
        self.counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._op = "other"

    def op(self, name: str) -> CostLedger:
        """Set the op that following ``add`` calls are charged to."""
        self._op = name
        return self

    def add(self, event: str, n: float) -> None:
        if self.table is not None and event not in self.table.events:
            raise KeyError(f"event {event!r} has no energy in preset {self.table.name}")
        self.counts[self._op][event] += float(n)

    def merge(self, other: CostLedger) -> None:
        for op, evs in other.counts.items():
            for ev, n in evs.items():
                self.counts[op][ev] += n

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for evs in self.counts.values():
            for ev, n in evs.items():
                out[ev] += n
        return dict(out)

    def energy_j(self) -> float:
        """Total modelled energy: sum over events of count x per-event energy (J)."""
        return sum(self.energy_by_op().values())

    def energy_by_op(self) -> dict[str, float]:
        if self.table is None:
            return {}
        return {
            op: sum(n * self.table.events[ev].joules() for ev, n in evs.items())
            for op, evs in self.counts.items()
        }

    def energy_by_event(self) -> dict[str, float]:
        if self.table is None:
            return {}
        return {ev: n * self.table.events[ev].joules() for ev, n in self.totals().items()}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "counts_by_op": {op: dict(evs) for op, evs in self.counts.items()},
            "counts": self.totals(),
        }
        if self.table is None:
            d["energy_j"] = "n/a: no energy table"
        else:
            d["energy_table"] = self.table.name
            d["energy_j"] = self.energy_j()
            d["energy_j_by_op"] = self.energy_by_op()
            d["energy_j_by_event"] = self.energy_by_event()
            d["constants"] = {
                ev: asdict(self.table.events[ev]) for ev in self.totals() if ev in self.table.events
            }
        return d
