"""Backends: the op interface, the lazy registry, and one adapter per target."""

from rsgn.backends.base import (
    ActiveState,
    Backend,
    Candidates,
    Capabilities,
    Graph,
    Program,
    Report,
)
from rsgn.backends.cost import CostLedger, load_energy_table
from rsgn.backends.registry import availability, default_name, get_backend, names, register

__all__ = [
    "ActiveState",
    "Backend",
    "Candidates",
    "Capabilities",
    "CostLedger",
    "Graph",
    "Program",
    "Report",
    "availability",
    "default_name",
    "get_backend",
    "load_energy_table",
    "names",
    "register",
]
