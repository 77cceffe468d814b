"""The one provenance schema of every preset file (electronic, optical, neuromorphic).

Each constant in a preset TOML is a table

    [section.name]
    value = 4.6                   # a number (or an integer count)
    unit = "pJ"                   # the unit the value is written in
    source = "[Horowitz2014] ..." # the original publication or datasheet, by bibliography key
    evidence = "datasheet"        # measured | datasheet | derived | estimate
    scope = "one fp32 multiply-accumulate, arithmetic only"

``source`` cites at least one key of the bibliography that ships with the package
(``docs/references.md``, keys in square brackets). ``derived`` means computed from cited figures
(the computation is in ``source``); ``estimate`` means no public figure exists and the value is
our assumption (``source`` says what it rests on).

This module depends on nothing else of rsgn, so the engines (``rsgn.optics``,
``rsgn.neuromorphic``) use it as well as the backends.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVIDENCE = ("measured", "datasheet", "derived", "estimate")
FIELDS = ("value", "unit", "source", "evidence", "scope")
_KEY = re.compile(r"\[([A-Za-z][A-Za-z0-9_+-]*\d{4}[a-z]?)\]")


class ProvenanceError(ValueError):
    """A preset entry that breaks the schema (the message names the entry)."""


@dataclass(frozen=True)
class Provenance:
    """A constant as written in a preset file."""

    value: float
    unit: str
    source: str
    evidence: str
    scope: str

    def citations(self) -> list[str]:
        """The bibliography keys cited in ``source``."""
        return cited_keys(self.source)


def cited_keys(text: str) -> list[str]:
    """Bibliography keys ``[Name2014]`` (letters then a year, optional suffix) in ``text``."""
    return _KEY.findall(text)


def check_entry(
    where: str, entry: Any, *, integer: bool = False, allow_infinite: bool = False
) -> Provenance:
    """Validate one preset table against the schema; ``where`` names it in errors.

    ``integer`` requires an integer value. The value must be finite unless ``allow_infinite``
    (an idealised preset may set e.g. an infinite extinction ratio); NaN is always refused.
    """
    if not isinstance(entry, Mapping):
        raise ProvenanceError(f"{where}: expected a table with {', '.join(FIELDS)}")
    missing = [k for k in FIELDS if k not in entry]
    if missing:
        raise ProvenanceError(f"{where}: missing {', '.join(missing)}")
    extra = sorted(set(entry) - set(FIELDS))
    if extra:
        raise ProvenanceError(f"{where}: unknown key(s) {', '.join(extra)}")
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProvenanceError(f"{where}: value must be a number, got {value!r}")
    if integer and not isinstance(value, int):
        raise ProvenanceError(f"{where}: value must be an integer, got {value!r}")
    if isinstance(value, float) and (
        math.isnan(value) or (math.isinf(value) and not allow_infinite)
    ):
        raise ProvenanceError(f"{where}: value must be finite, got {value!r}")
    for key in ("unit", "source", "evidence", "scope"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ProvenanceError(f"{where}: {key} must be a non-empty string")
    if entry["evidence"] not in EVIDENCE:
        raise ProvenanceError(
            f"{where}: evidence {entry['evidence']!r} is not one of {', '.join(EVIDENCE)}"
        )
    if not cited_keys(entry["source"]):
        raise ProvenanceError(
            f"{where}: source cites no bibliography key ([Author2014]) of docs/references.md"
        )
    return Provenance(
        value=value,
        unit=entry["unit"],
        source=entry["source"],
        evidence=entry["evidence"],
        scope=entry["scope"],
    )
