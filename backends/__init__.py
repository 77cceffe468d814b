"""Targets: the interface, the lazy registry, and one package per target."""

from rsgn.backends.base import (
    Backend,
    Capabilities,
    Measured,
    Modelled,
    NotAvailable,
    Program,
    Report,
    merge_reports,
)
from rsgn.backends.cost import CostLedger, load_energy_table
from rsgn.backends.options import TargetOptions
from rsgn.backends.registry import (
    availability,
    backend_class,
    default_name,
    get_backend,
    make_options,
    names,
    register,
)

__all__ = [
    "Backend",
    "Capabilities",
    "CostLedger",
    "Measured",
    "Modelled",
    "NotAvailable",
    "Program",
    "Report",
    "TargetOptions",
    "availability",
    "backend_class",
    "default_name",
    "get_backend",
    "load_energy_table",
    "make_options",
    "merge_reports",
    "names",
    "register",
]
