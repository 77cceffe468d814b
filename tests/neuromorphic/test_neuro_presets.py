"""Hardware presets: packaging, provenance, validation errors naming the key."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from rsgn import neuromorphic as nm
from rsgn.neuromorphic.profile import tomllib  # tomllib, or tomli on Python 3.10

PRESETS = ["loihi", "loihi2_est", "spinnaker2", "truenorth"]


def _raw(name):
    text = resources.files("rsgn.neuromorphic").joinpath(f"presets/{name}.toml").read_text()
    return tomllib.loads(text)


def test_presets_are_packaged_and_typed():
    assert nm.list_presets() == PRESETS
    for name in PRESETS:
        p = nm.load_preset(name)
        assert isinstance(p, nm.HardwareProfile) and p.name == name
        assert isinstance(p.chip.core.max_neurons, int)
        assert isinstance(p.timing.hop_ew_ps, int) and isinstance(p.energy.synop, float)
        assert len(p.constants) == 45
        for key, c in p.constants.items():
            assert c.evidence in nm.EVIDENCE_CLASSES, key
            assert c.source.strip() and c.scope.strip(), key
        assert sum(p.evidence_summary().values()) == 45
        # every preset has a static power, or says why it has none
        sp = p.constants["energy.static_power"]
        assert sp.value > 0 or "not modelled" in sp.source.lower(), name
    assert nm.load_preset(" Loihi ").name == "loihi"


def test_loihi_table2_values():
    p = nm.load_preset("loihi")
    e, t = p.energy, p.timing
    assert (e.synop, e.neuron_update_active, e.neuron_update_idle) == (23.6, 81.0, 52.0)
    assert (e.tile_spike, e.hop_ew, e.hop_ns) == (1.7, 3.0, 4.0)
    assert (t.synop_ps, t.tile_spike_ps, t.hop_ew_ps, t.hop_ns_ps) == (3500, 2100, 4100, 6500)
    assert p.chip.cores_per_chip == 128 and p.chip.core.max_neurons == 1024
    assert p.constants["energy.synop"].unit == "pJ"
    assert not p.all_in
    # the per-message costs of SANA-FE's Loihi model
    assert (e.message_out, e.spike_out, t.message_in_ps, t.message_out_ps) == (
        111.0,
        69.3,
        16000,
        5100,
    )
    # barrier: 113 ns for one tile, 17.6 ns per hop of the gather and release waves
    assert (t.barrier_ps, t.barrier_hop_ps) == (113_000, 17_600)
    tn = nm.load_preset("truenorth")
    assert tn.all_in and tn.all_in_dynamic and tn.timing.min_step_ps == 10**9
    # static + dynamic split: 42 mW at zero activity, (72 - 42) mW over the event rate
    rate = 4096 * 256 * 20 * 128
    assert tn.energy.static_power_mw == 42.0
    assert tn.energy.synop == pytest.approx(30e-3 / rate * 1e12, abs=0.05)
    assert tn.constants["energy.synop"].evidence == "derived"
    l2 = nm.load_preset("loihi2_est")
    assert l2.chip.cores_per_chip == 128 and (l2.chip.tiles_x, l2.chip.tiles_y) == (16, 8)
    assert l2.chip.core.syn_mem_bytes == 128 * 1024  # 128 KB per core, its source's figure
    assert l2.energy.graded_synop > l2.energy.synop  # a graded op adds a multiply
    assert all(c.evidence in ("estimate", "derived") for c in l2.constants.values())
    s2 = nm.load_preset("spinnaker2")
    assert "28 nm" in s2.constants["energy.synop"].source


def test_unknown_preset_lists_known_ones():
    with pytest.raises(nm.PresetError) as ei:
        nm.load_preset("loihi3")
    msg = str(ei.value)
    assert "\n" not in msg and "'loihi3'" in msg
    assert "known: loihi, loihi2_est, spinnaker2, truenorth" in msg


@pytest.mark.parametrize(
    "section,key,field,value,match",
    [
        ("energy", "synop", "value", -1.0, "energy.synop: value must be >= 0"),
        ("energy", "synop", "unit", "nJ", "energy.synop: unit must be 'pJ'"),
        ("timing", "hop_ew", "value", "fast", "timing.hop_ew: value must be a number"),
        ("core", "max_neurons", "value", 10.5, "core.max_neurons: value must be an integer"),
        ("chip", "tiles_x", "value", 0, "chip.tiles_x: value must be an integer >= 1"),
        ("energy", "hop_ns", "evidence", "guess", "energy.hop_ns: evidence 'guess' is not one of"),
        (
            "energy",
            "hop_ns",
            "source",
            "Davies 2018",
            "energy.hop_ns: source cites no bibliography",
        ),
        ("energy", "hop_ns", "source", "", "energy.hop_ns: source must be a non-empty"),
        ("timing", "hop_ns", "value", 0.1, "timing.hop_ns: hop latency must be >= "),
    ],
)
def test_invalid_values_name_the_key(section, key, field, value, match):
    data = _raw("loihi")
    data[section][key][field] = value
    with pytest.raises(nm.PresetError, match=match):
        nm.profile_from_dict(data)


def test_missing_unknown_keys_and_all_in_double_counting(tmp_path: Path):
    data = _raw("loihi")
    del data["energy"]["hop_ew"]
    with pytest.raises(nm.PresetError, match=r"^energy.hop_ew: missing key$"):
        nm.profile_from_dict(data)
    data = _raw("loihi")
    data["energy"]["teleport"] = dict(data["energy"]["synop"])
    with pytest.raises(nm.PresetError, match="energy.teleport: unknown key"):
        nm.profile_from_dict(data)
    data = _raw("truenorth")
    data["energy"]["hop_ew"]["value"] = 2.3
    with pytest.raises(nm.PresetError, match="energy.hop_ew: must be 0 when energy.synop"):
        nm.profile_from_dict(data)
    data = _raw("truenorth")  # an all-in (not all-in dynamic) figure forbids static power
    data["energy"]["synop"]["scope"] = "all-in; per synaptic event"
    with pytest.raises(nm.PresetError, match="energy.static_power: must be 0"):
        nm.profile_from_dict(data)
    bad = tmp_path / "mine.toml"
    bad.write_text("name = 'x'\n[chip\n")
    with pytest.raises(nm.PresetError, match="invalid TOML"):
        nm.load_profile(bad)


def test_override_and_user_profile_file(tmp_path: Path):
    p = nm.override(nm.load_preset("loihi"), {"timing.hop_ew": 5.0, "energy.synop": 10.0})
    assert p.timing.hop_ew_ps == 5000 and p.energy.synop == 10.0
    assert p.constants["energy.synop"].evidence == "estimate"
    assert p.constants["energy.synop"].source == "user override"
    with pytest.raises(nm.PresetError, match="energy.nope: unknown key"):
        nm.override(p, {"energy.nope": 1.0})
    src = resources.files("rsgn.neuromorphic").joinpath("presets/loihi.toml").read_text()
    f = tmp_path / "mychip.toml"
    f.write_text(src.replace('name = "loihi"', 'name = "mychip"'))
    assert nm.load_profile(f).name == "mychip"


def test_package_imports_nothing_of_rsgn_or_torch():
    # the one exception is rsgn.provenance, the preset schema, which depends on nothing of rsgn
    pkg = Path(nm.__file__).parent
    allowed = {"numpy", "simpy", "scipy", "tomli"} | set(sys.stdlib_module_names)
    for f in sorted(pkg.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            elif isinstance(node, ast.ImportFrom) and node.level >= 2:
                mods = ["rsgn." + (node.module or "")]  # relative import out of the package
            else:
                continue
            for m in mods:
                assert m.split(".")[0] in allowed or m == "rsgn.provenance", f"{f.name} imports {m}"
    code = "import sys, rsgn.neuromorphic; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_place_by_coordinates_keeps_neighbours_close():
    prof = nm.load_preset("loihi")
    topo = nm.Topology(prof)
    rng = np.random.default_rng(0)
    xy = rng.random((4096, 2))
    place = nm.place_by_coordinates(xy, topo, per_core=64)
    assert np.bincount(place).max() == 64
    # nearest geometric neighbours sit on nearer tiles than random pairs
    d2 = (xy[:200, None, :] - xy[None, :, :]) ** 2
    nn = np.argsort(d2.sum(-1), axis=1)[:, 1]
    hop_nn = topo.hops(place[:200], place[nn]).total.mean()
    hop_rand = topo.hops(place[:200], place[rng.integers(0, 4096, 200)]).total.mean()
    assert hop_nn < 0.3 * hop_rand
