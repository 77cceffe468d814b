"""Typed target options: one dataclass per target, with a preset, loadable from TOML and from
``--backend-arg KEY=VALUE`` / ``--preset NAME``, validated field by field.

A target's options are what aihwkit calls an ``rpu_config``: they pick the preset (the
hardware constants, with provenance) and the simulation choices (coding mode, noise,
offload map...). Unknown keys and wrongly typed values are one-line errors naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from rsgn.config import convert_value, did_you_mean
from rsgn.errors import RsgnError


@dataclass
class TargetOptions:
    """Base of every target's options: ``preset`` names the target's hardware preset."""

    preset: str = ""
    PRESETS: ClassVar[tuple[str, ...]] = ()
    """Preset names this target ships (subclasses list theirs, or override preset_names)."""
    TARGET: ClassVar[str] = "target"

    @classmethod
    def preset_names(cls) -> list[str]:
        return list(cls.PRESETS)

    @classmethod
    def field_types(cls) -> dict[str, str]:
        """Option name -> its type as written (e.g. ``'int | None'``)."""
        return {f.name: str(f.type) for f in fields(cls)}

    def validate(self) -> None:
        """Raise an RsgnError naming the first invalid option (subclasses extend)."""
        names = self.preset_names()
        if names and self.preset not in names:
            raise RsgnError(
                f"unknown preset {self.preset!r} for {self.TARGET} (known: {', '.join(names)})"
                f"{did_you_mean(self.preset, names)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "options") -> TargetOptions:
        """Options from a mapping of typed values (TOML), validated."""
        opts = cls()
        for key, value in values.items():
            opts = opts._set(key, value, from_string=False, where=where)
        opts.validate()
        return opts

    @classmethod
    def from_toml(cls, path: str | Path) -> TargetOptions:
        """Options from a TOML file of ``key = value`` lines (an ``[options]`` table or the
        top level)."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RsgnError(f"cannot read target options {p}: {exc}") from None
        return cls.from_dict(data.get("options", data), where=str(p))

    def with_items(self, items: list[str], *, flag: str = "--backend-arg") -> TargetOptions:
        """A copy with ``KEY=VALUE`` strings applied (values parsed by the field's type)."""
        opts = self
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise RsgnError(f"{flag} expects KEY=VALUE, got {item!r}")
            opts = opts._set(key, value.strip(), from_string=True, where=f"{flag} {item!r}")
        opts.validate()
        return opts

    def replace(self, **values: Any) -> TargetOptions:
        """A copy with typed ``values`` set (unknown names are errors), validated."""
        opts = self
        for key, value in values.items():
            opts = opts._set(key, value, from_string=False, where=f"option {key!r}")
        opts.validate()
        return opts

    def _set(self, key: str, value: Any, *, from_string: bool, where: str) -> TargetOptions:
        types = self.field_types()
        if key not in types:
            raise RsgnError(
                f"{where}: {self.TARGET} has no option {key!r}{did_you_mean(key, types)} "
                f"(options: {', '.join(types)})"
            )
        try:
            converted = convert_value(value, types[key], from_string)
        except (TypeError, ValueError) as exc:
            raise RsgnError(f"{where}: invalid value {value!r} for {key!r} ({exc})") from None
        return dataclasses.replace(self, **{key: converted})
