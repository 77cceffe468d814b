"""One provenance schema for every preset file, and the bibliography that ships with them.

Every constant of every preset TOML shipped in ``rsgn.presets``, ``rsgn.optics`` and
``rsgn.neuromorphic`` passes :func:`rsgn.provenance.check_entry`; every bibliography key cited
in those files is an entry of ``docs/references.md``, and every entry there is cited.
"""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from rsgn.config import CONFIG_PRESETS
from rsgn.provenance import EVIDENCE, FIELDS, Provenance, ProvenanceError, check_entry, cited_keys

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "docs" / "references.md"
# (installed package, folder of its preset files); paper.toml and paper-training.toml are run
# configs, not constants
PRESET_DIRS = (("rsgn.presets", ""), ("rsgn.optics", "presets"), ("rsgn.neuromorphic", "presets"))
NOT_PRESETS = {f"{name}.toml" for name in CONFIG_PRESETS}  # run configs (rsgn.config)
# constants per file of each family (a file that loses or gains tables must say so here)
N_CONSTANTS = {"rsgn.presets": 11, "rsgn.optics": 54, "rsgn.neuromorphic": 45}
ENTRY = re.compile(r"^- \[([^\]]+)\]", re.M)


def _preset_files() -> list[tuple[str, str, str]]:
    """(package, file name, text) of every shipped preset file."""
    out = []
    for pkg, sub in PRESET_DIRS:
        folder = resources.files(pkg)
        if sub:
            folder = folder.joinpath(sub)
        for f in sorted(folder.iterdir(), key=lambda f: f.name):
            if f.name.endswith(".toml") and f.name not in NOT_PRESETS:
                out.append((pkg, f.name, f.read_text(encoding="utf-8")))
    return out


PRESETS = _preset_files()
IDS = [f"{pkg}/{name}" for pkg, name, _ in PRESETS]


def _constants(data: dict, prefix: str = ""):
    """Every constant table (one with any schema field) as (dotted name, table)."""
    for key, val in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(val, dict):
            if set(val) & set(FIELDS):
                yield name, val
            else:
                yield from _constants(val, name)


def _bibliography() -> list[str]:
    return ENTRY.findall(REFERENCES.read_text(encoding="utf-8"))


def test_every_family_ships_presets():
    assert {pkg for pkg, _, _ in PRESETS} == {pkg for pkg, _ in PRESET_DIRS}
    assert len(PRESETS) == 8, IDS


@pytest.mark.parametrize(("pkg", "name", "text"), PRESETS, ids=IDS)
def test_every_constant_passes_the_schema(pkg, name, text):
    consts = list(_constants(tomllib.loads(text)))
    assert len(consts) == N_CONSTANTS[pkg], name
    for key, entry in consts:
        # only the optical loader accepts infinities (the ideal preset's idealisations)
        p = check_entry(f"{name}: {key}", entry, allow_infinite=pkg == "rsgn.optics")
        assert isinstance(p, Provenance) and p.citations(), key
        if math.isinf(p.value):
            assert p.evidence == "estimate", f"{name}: {key} is an idealisation"


@pytest.mark.parametrize(("pkg", "name", "text"), PRESETS, ids=IDS)
def test_sources_cite_only_bibliography_keys(pkg, name, text):
    known = set(_bibliography())
    missing = sorted(set(cited_keys(text)) - known)
    assert not missing, f"{name} cites keys missing from docs/references.md: {missing}"
    for legacy in ("REF §", "shared/reference", "/work/", "optics-physics.md"):
        assert legacy not in text, f"{name} still points outside the repository: {legacy!r}"
    for key, entry in _constants(tomllib.loads(text)):
        for token in re.findall(r"\[[^\]]*\]", entry["source"]):
            assert cited_keys(token) == [token[1:-1]], f"{name}: {key}: {token} is not one key"


def test_bibliography_is_well_formed_and_sorted():
    keys = _bibliography()
    assert keys, "docs/references.md lists no entries"
    assert len(keys) == len(set(keys)), "duplicate keys"
    assert keys == sorted(keys, key=str.lower), "entries are not sorted by key"
    for key in keys:
        assert cited_keys(f"[{key}]") == [key], f"{key} is not a key like [Davies2018]"


def test_every_bibliography_entry_is_cited():
    cited = {k for _, _, text in PRESETS for k in cited_keys(text)}
    docs = [p for p in (ROOT / "docs").rglob("*.md") if p != REFERENCES]
    docs += [ROOT / "README.md"]
    in_docs = {k for p in docs if p.exists() for k in cited_keys(p.read_text(encoding="utf-8"))}
    uncited = [k for k in _bibliography() if k not in cited | in_docs]
    assert not uncited, f"entries of docs/references.md cited nowhere: {uncited}"


def test_loaders_expose_the_files_evidence():
    from rsgn import neuromorphic as nm
    from rsgn import optics

    for pkg, name, text in PRESETS:
        raw = dict(_constants(tomllib.loads(text)))
        stem = name[: -len(".toml")]
        if pkg == "rsgn.optics":
            got = {k: c.evidence for k, c in optics.load_preset(stem).provenance.items()}
        elif pkg == "rsgn.neuromorphic":
            got = {k: c.evidence for k, c in nm.load_preset(stem).constants.items()}
        else:
            continue  # the electronic table: test_energy_table_uses_the_schema
        assert got == {k: e["evidence"] for k, e in raw.items()}, name
        assert set(got.values()) <= set(EVIDENCE)


def test_energy_table_uses_the_schema(tmp_path, monkeypatch):
    from rsgn.backends import cost
    from rsgn.errors import RsgnError

    table = cost.load_energy_table("electronic_45nm")
    assert {c.evidence for c in table.events.values()} <= set(EVIDENCE)
    assert table.events["mac_fp32"].evidence == "derived"
    assert "[Horowitz2014]" in table.events["mac_fp32"].source

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[events.mac_fp32]\nvalue = 4.6\nunit = "pJ"\nsource = "Horowitz 2014"\n'
        'evidence = "derived"\nscope = "one MAC"\n'
    )

    class _Files:
        @staticmethod
        def files(_pkg):
            return tmp_path

    monkeypatch.setattr(cost, "resources", _Files)
    with pytest.raises(RsgnError, match="event mac_fp32: source cites no bibliography key"):
        cost.load_energy_table("bad")


def test_optical_and_neuromorphic_loaders_refuse_an_uncited_constant(tmp_path):
    from rsgn import neuromorphic as nm
    from rsgn import optics

    text = resources.files("rsgn.optics").joinpath("presets", "bench.toml").read_text()
    f = tmp_path / "uncited.toml"
    old = '"[Kovalev2007]: threshold exponential gain'
    assert old in text
    f.write_text(text.replace(old, '"threshold exponential gain'))
    with pytest.raises(optics.PresetError, match=r"sbs\.threshold_gain: source cites no"):
        optics.load_preset_file(f)

    text = resources.files("rsgn.neuromorphic").joinpath("presets", "truenorth.toml").read_text()
    f.write_text(text.replace('"1 kHz (1 ms) tick [Merolla2014]"', '"1 kHz tick"'))
    with pytest.raises(nm.PresetError, match=r"timing\.min_step: source cites no"):
        nm.load_profile(f)


GOOD = {
    "value": 4.6,
    "unit": "pJ",
    "source": "[Horowitz2014]: 32-bit FP mult 3.7 pJ + add 0.9 pJ",
    "evidence": "derived",
    "scope": "one fp32 MAC",
}


def test_check_entry_accepts_a_good_entry():
    p = check_entry("events.mac_fp32", dict(GOOD))
    assert p == Provenance(4.6, "pJ", GOOD["source"], "derived", "one fp32 MAC")
    assert p.citations() == ["Horowitz2014"]
    assert cited_keys("[Davies2018a] and [Merolla2014]; not [S4] nor [Davies 2018]") == [
        "Davies2018a",
        "Merolla2014",
    ]
    assert check_entry("x", {**GOOD, "value": math.inf}, allow_infinite=True).value == math.inf
    assert check_entry("n", {**GOOD, "value": 3}, integer=True).value == 3


def _without(key):
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(
    ("entry", "kwargs", "match"),
    [
        (_without("evidence"), {}, "missing evidence"),
        (_without("source"), {}, "missing source"),
        ({**GOOD, "kind": "derived"}, {}, "unknown key"),
        ({**GOOD, "evidence": "assumed"}, {}, "evidence 'assumed' is not one of"),
        ({**GOOD, "evidence": "simulated"}, {}, "evidence 'simulated' is not one of"),
        ({**GOOD, "source": "Horowitz, ISSCC 2014"}, {}, "source cites no bibliography key"),
        ({**GOOD, "source": "REF §8 [S4]"}, {}, "source cites no bibliography key"),
        ({**GOOD, "value": math.inf}, {}, "value must be finite"),
        ({**GOOD, "value": -math.inf}, {}, "value must be finite"),
        ({**GOOD, "value": math.nan}, {}, "value must be finite"),
        ({**GOOD, "value": math.nan}, {"allow_infinite": True}, "value must be finite"),
        ({**GOOD, "value": True}, {}, "value must be a number"),
        ({**GOOD, "value": "4.6"}, {}, "value must be a number"),
        ({**GOOD, "value": 4.5}, {"integer": True}, "value must be an integer"),
        ({**GOOD, "scope": "  "}, {}, "scope must be a non-empty string"),
        ("4.6 pJ", {}, "expected a table"),
    ],
)
def test_check_entry_rejects_naming_the_entry(entry, kwargs, match):
    where = "presets/chip.toml: energy.synop"
    with pytest.raises(ProvenanceError, match=re.escape(match)) as exc:
        check_entry(where, entry, **kwargs)
    assert str(exc.value).startswith(f"{where}: ")
    assert isinstance(exc.value, ValueError)
