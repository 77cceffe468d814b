"""String -> backend registry with lazy imports and an ``RSGN_BACKEND`` default.

``import rsgn`` imports no backend module: each entry names a module and class that are
imported on first use, so triton and simpy load only when their backend is asked for.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass

from rsgn.backends.base import Backend
from rsgn.errors import RsgnError


@dataclass(frozen=True)
class BackendEntry:
    name: str
    module: str
    cls: str
    summary: str


_REGISTRY: dict[str, BackendEntry] = {}


def register(name: str, module: str, cls: str, summary: str) -> None:
    """Register a backend by import path (imported lazily)."""
    _REGISTRY[name] = BackendEntry(name, module, cls, summary)


register(
    "torch",
    "rsgn.backends.torch_backend",
    "TorchBackend",
    "PyTorch reference (CPU/CUDA), differentiable; the definition of every op",
)
register(
    "triton",
    "rsgn.backends.triton_backend",
    "TritonBackend",
    "Triton kernels for the hot ops (CUDA, or the CPU interpreter with TRITON_INTERPRET=1)",
)
register(
    "optical",
    "rsgn.backends.optical",
    "OpticalBackend",
    "simulated opto-electronic Poincare core (optics presets ideal, bench, lowpower); "
    "not differentiable",
)
register(
    "optical-aware",
    "rsgn.backends.optical_aware",
    "OpticalAwareBackend",
    "torch with differentiable optical non-idealities in the loop (hardware-aware training)",
)
register(
    "neuromorphic",
    "rsgn.backends.neuromorphic",
    "NeuromorphicBackend",
    "simulated event-driven chip (SimPy): latency, energy breakdown, NeuroBench",
)


def names() -> list[str]:
    return sorted(_REGISTRY)


def default_name() -> str:
    """The backend named by ``RSGN_BACKEND``, else ``torch``."""
    return os.environ.get("RSGN_BACKEND", "torch") or "torch"


def _entry(name: str) -> BackendEntry:
    if name not in _REGISTRY:
        raise RsgnError(f"unknown backend {name!r} (known: {', '.join(names())})")
    return _REGISTRY[name]


def backend_class(name: str) -> type[Backend]:
    e = _entry(name)
    try:
        mod = importlib.import_module(e.module)
    except ImportError as exc:
        raise RsgnError(f"backend {name!r} is not available: {exc}") from None
    return getattr(mod, e.cls)


def backend_options(name: str) -> list[str]:
    """The keyword options of backend ``name``'s constructor (``preset`` and ``device`` have
    their own flags and are not listed)."""
    sig = inspect.signature(backend_class(name).__init__)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    skip = {"self", "preset", "device"}
    return [p.name for p in sig.parameters.values() if p.kind in kinds and p.name not in skip]


def parse_option_value(text: str) -> bool | int | float | str | None:
    """``true``/``false``/``none`` (any case), an int, a float, else the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def parse_backend_options(name: str, items: list[str], flag: str = "--backend-arg") -> dict:
    """``KEY=VALUE`` strings -> constructor keywords of backend ``name``, checked by name."""
    known = backend_options(name)
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RsgnError(f"{flag} expects KEY=VALUE, got {item!r}")
        if key not in known:
            raise RsgnError(
                f"{flag} {item!r}: backend {name!r} has no option {key!r} (options: "
                f"{', '.join(known) or 'none'})"
            )
        out[key] = parse_option_value(value)
    return out


def get_backend(name: str | None = None, *, preset: str | None = None, **kwargs) -> Backend:
    """Instantiate the backend called ``name`` (default: ``RSGN_BACKEND`` or ``torch``).

    ``preset`` names the backend's hardware/energy preset (each backend lists its own; an
    unknown one is an RsgnError naming the known presets).
    """
    name = name or default_name()
    cls = backend_class(name)
    ok, why = cls.available()
    if not ok:
        raise RsgnError(f"backend {name!r} is not available here: {why}")
    if preset is not None:
        kwargs["preset"] = preset
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a mistyped option from the command line
        raise RsgnError(f"backend {name!r}: {exc}") from None


def availability() -> list[tuple[str, bool, str, str]]:
    """(name, available, reason-if-not, summary) for every registered backend."""
    rows = []
    for n in names():
        e = _REGISTRY[n]
        try:
            ok, why = backend_class(n).available()
        except RsgnError as exc:
            ok, why = False, str(exc)
        rows.append((n, ok, why, e.summary))
    return rows
