"""String -> target registry with lazy imports and an ``RSGN_BACKEND`` default.

``import rsgn`` imports no target: each entry names a module and class imported on first use,
so triton and simpy load only when their target is asked for. Options are the target's typed
``Options`` dataclass (``--preset`` and ``--backend-arg KEY=VALUE`` are validated against it).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from rsgn.backends.base import Backend
from rsgn.backends.options import TargetOptions
from rsgn.config import did_you_mean
from rsgn.errors import RsgnError


@dataclass(frozen=True)
class BackendEntry:
    name: str
    module: str
    cls: str


_REGISTRY: dict[str, BackendEntry] = {}


def register(name: str, module: str, cls: str) -> None:
    """Register a target by import path (imported lazily)."""
    _REGISTRY[name] = BackendEntry(name, module, cls)


register("torch", "rsgn.backends.torch", "TorchBackend")
register("triton", "rsgn.backends.triton", "TritonBackend")
register("optical", "rsgn.backends.optical", "OpticalBackend")
register("optical-aware", "rsgn.backends.optical_aware", "OpticalAwareBackend")
register("neuromorphic", "rsgn.backends.neuromorphic", "NeuromorphicBackend")


def names() -> list[str]:
    return sorted(_REGISTRY)


def default_name() -> str:
    """The target named by ``RSGN_BACKEND``, else ``torch``."""
    return os.environ.get("RSGN_BACKEND", "torch") or "torch"


def _entry(name: str) -> BackendEntry:
    if name not in _REGISTRY:
        raise RsgnError(
            f"unknown backend {name!r}{did_you_mean(name, _REGISTRY)} (known: {', '.join(names())})"
        )
    return _REGISTRY[name]


def backend_class(name: str) -> type[Backend]:
    e = _entry(name)
    try:
        return getattr(importlib.import_module(e.module), e.cls)
    except (ImportError, AttributeError) as exc:
        raise RsgnError(f"backend {name!r} is not available: {exc}") from None


def make_options(
    name: str,
    *,
    preset: str | None = None,
    items: list[str] | None = None,
    values: dict[str, Any] | None = None,
    flag: str = "--backend-arg",
) -> TargetOptions:
    """Target ``name``'s typed options: its defaults, then ``preset``, typed ``values`` and
    ``KEY=VALUE`` ``items``, validated (an unknown key or preset is an RsgnError naming it)."""
    opts = backend_class(name).Options()
    if preset is not None:
        opts = opts.replace(preset=preset)
    if values:
        opts = opts.replace(**values)
    if items:
        opts = opts.with_items(items, flag=flag)
    opts.validate()
    return opts


def get_backend(
    name: str | None = None,
    *,
    preset: str | None = None,
    options: TargetOptions | None = None,
    **values: Any,
) -> Backend:
    """The target called ``name`` (default: ``RSGN_BACKEND`` or ``torch``) with ``options``,
    or its defaults with ``preset`` and typed option ``values``."""
    name = name or default_name()
    cls = backend_class(name)
    ok, why = cls.available()
    if not ok:
        raise RsgnError(f"backend {name!r} is not available here: {why}")
    if options is None:
        options = make_options(name, preset=preset, values=values)
    elif preset is not None or values:
        raise RsgnError("pass either options or preset/option values, not both")
    return cls(options)


def availability() -> list[tuple[str, bool, str, str, list[str]]]:
    """(name, available, reason-if-not, summary, presets) for every registered target."""
    rows = []
    for n in names():
        try:
            cls = backend_class(n)
            ok, why = cls.available()
            summary, presets = cls.summary, cls.presets()
        except RsgnError as exc:
            ok, why, summary, presets = False, str(exc), "", []
        rows.append((n, ok, why, summary, presets))
    return rows
