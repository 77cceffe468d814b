"""Optical presets: loading, provenance, validation errors, and the energy/latency ledger."""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from rsgn.optics import (
    EventCounts,
    PresetError,
    available_presets,
    event_costs,
    event_table,
    laser_electrical_energy,
    load_preset,
    load_preset_file,
    propagation_delay,
)
from rsgn.optics.presets import EVIDENCE


def test_packaged_presets() -> None:
    names = available_presets()
    assert {"ideal", "bench"} <= set(names)
    for name in names:
        p = load_preset(name)
        assert p.name == name
        for key, const in p.provenance.items():
            assert const.evidence in EVIDENCE, key
            assert const.source.strip() and const.scope.strip(), key


def test_every_toml_constant_has_provenance() -> None:
    for name in available_presets():
        text = resources.files("rsgn.optics").joinpath("presets", f"{name}.toml").read_text()
        data = tomllib.loads(text)
        n = 0
        for section, table in data.items():
            if section == "meta":
                continue
            for key, entry in table.items():
                assert set(entry) == {"value", "unit", "source", "evidence", "scope"}, (
                    f"{name}:{section}.{key}"
                )
                n += 1
        assert n == len(load_preset(name).provenance)


def test_bench_values_in_si() -> None:
    b = load_preset("bench")
    assert math.isclose(b.devices.extinction_ratio, 1000.0)
    assert math.isclose(b.devices.angle_error, math.radians(0.1))
    assert math.isclose(b.detector.dark_current, 35e-9)
    assert math.isclose(b.adc.energy_per_sample, 1.48e-12)
    assert b.provenance["adc.energy_per_sample"].given == "1.48 pJ"
    assert b.provenance["adc.energy_per_sample"].unit == "J"
    assert math.isclose(b.sbs.gain_per_watt, math.log(100.0) / 2.29e-3)
    det = b.detector_params()
    assert math.isclose(det.adc_full_scale, 1e-3) and det.adc_bits == 8


def test_ideal_is_ideal() -> None:
    p = load_preset("ideal")
    assert p.devices.extinction_ratio == math.inf
    assert p.adc.bits == math.inf and p.laser.rin == -math.inf
    report = event_costs(
        p, EventCounts(channels=4, integration_time=1e-9, adc_samples=4, logic_ops=10)
    )
    assert report.energy["laser"] == pytest.approx(4e-3 * 1e-9)
    assert report.energy["adc"] == 0.0 and report.energy["logic"] == 0.0


def test_unknown_preset_lists_known() -> None:
    with pytest.raises(PresetError) as exc:
        load_preset("nope")
    msg = str(exc.value)
    assert "'nope'" in msg and "bench" in msg and "ideal" in msg and "\n" not in msg


def _bench_text() -> str:
    return resources.files("rsgn.optics").joinpath("presets", "bench.toml").read_text()


def _edit(text: str, table: str, field: str, new: str) -> str:
    pattern = rf"(\[{re.escape(table)}\]\n(?:.*\n)*?){field} = .*\n"
    out, n = re.subn(pattern, rf"\g<1>{field} = {new}\n", text, count=1)
    assert n == 1
    return out


@pytest.mark.parametrize(
    "table, field, new, expect",
    [
        (
            "laser.optical_power",
            "value",
            "-1.0",
            r"laser\.optical_power: value -1\.0 mW must be finite and > 0",
        ),
        ("devices.extinction_ratio", "value", "-3.0", r"devices\.extinction_ratio: .*>= 1"),
        ("devices.extinction_ratio", "unit", '"dBm"', r"devices\.extinction_ratio: unit 'dBm'"),
        (
            "detector.dark_current",
            "value",
            "-2",
            r"detector\.dark_current: value -2 nA must be >= 0",
        ),
        ("laser.wall_plug_efficiency", "value", "1.5", r"laser\.wall_plug_efficiency: .*\(0, 1\]"),
        ("adc.enob", "value", "9.0", r"adc\.enob = 9\.0 must not exceed adc\.bits"),
        ("adc.bits", "value", "7.5", r"adc\.bits: .*integer"),
        (
            "adc.energy_per_sample",
            "evidence",
            '"guessed"',
            r"adc\.energy_per_sample: evidence 'guessed' is not one of",
        ),
        (
            "adc.energy_per_sample",
            "source",
            '"a figure from somewhere"',
            r"adc\.energy_per_sample: source cites no bibliography key",
        ),
        (
            "adc.energy_per_sample",
            "value",
            '"fast"',
            r"adc\.energy_per_sample: value must be a number, got 'fast'",
        ),
        ("laser.rin", "value", "5.0", r"laser\.rin: .*negative"),
        (
            "logic.energy_per_op",
            "source",
            '""',
            r"logic\.energy_per_op: source must be a non-empty",
        ),
    ],
)
def test_bad_values_name_key(tmp_path: Path, table: str, field: str, new: str, expect: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(_edit(_bench_text(), table, field, new))
    with pytest.raises(PresetError, match=r"^bad\.toml: " + expect) as exc:
        load_preset_file(f)
    assert "\n" not in str(exc.value)


def test_structural_errors(tmp_path: Path) -> None:
    text = _bench_text()
    cases = {
        "unknown key laser.colour": text.replace(
            "[laser.rin]",
            '[laser.colour]\nvalue = 1\nunit = "1"\nsource = "[X2020]"\nevidence = "estimate"\n'
            'scope = "x"\n\n[laser.rin]',
        ),
        "missing key adc.latency": re.sub(r"\[adc\.latency\]\n(.*\n){5}", "", text),
        "unknown section [optics]": text
        + '\n[optics.x]\nvalue = 1\nunit = "1"\nsource = "[X2020]"\nevidence = "estimate"\n'
        'scope = "s"\n',
        "missing scope": text.replace('scope = "one DAC conversion driving a modulator"\n', ""),
        "invalid TOML": text + "\n[[[",
        "missing [meta]": text.replace('[meta]\nname = "bench"', '[meta]\ntitle = "bench"'),
    }
    for expect, body in cases.items():
        f = tmp_path / "p.toml"
        f.write_text(body)
        with pytest.raises(PresetError, match=re.escape(expect)):
            load_preset_file(f)
    with pytest.raises(PresetError, match="cannot read"):
        load_preset_file(tmp_path / "missing.toml")


def test_energy_is_counts_times_event_energy() -> None:
    b = load_preset("bench")
    c = EventCounts(
        channels=8,
        integration_time=2e-9,
        slm_frames=3,
        modulator_writes=40,
        detector_samples=64,
        adc_samples=64,
        dac_samples=40,
        logic_ops=1000,
        logic_depth=12,
    )
    r = event_costs(b, c)
    table = event_table(b)
    expected = (
        8 * b.laser.optical_power * 2e-9 * table["laser_per_watt_second"][0]
        + 3 * table["slm_frame"][0]
        + 40 * table["modulator_write"][0]
        + 64 * table["detector_sample"][0]
        + 64 * table["adc_sample"][0]
        + 40 * table["dac_sample"][0]
        + 1000 * table["logic_op"][0]
    )
    assert r.total_energy == pytest.approx(expected, rel=1e-12)
    assert r.energy["adc"] == pytest.approx(64 * 1.48e-12)
    assert r.energy["laser"] == pytest.approx(8 * 1e-3 * 2e-9 / 0.166)
    latency = 3 * 1e-3 + 25e-12 + 0.3 / 299_792_458.0 + 2e-9 + 1e-9 + 12 * 1e-9
    assert r.total_latency == pytest.approx(latency, rel=1e-12)
    assert r.provenance["adc.energy_per_sample"].source.startswith("[LighteningTransformer2024]")


def test_energy_helpers() -> None:
    assert laser_electrical_energy(1e-3, 1.0, 0.2) == pytest.approx(5e-3)
    assert propagation_delay(0.3) == pytest.approx(1.0007e-9, rel=1e-4)  # ~1 ns per 30 cm
    with pytest.raises(ValueError):
        laser_electrical_energy(1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        EventCounts(adc_samples=-1)
