"""Optical presets: loading, provenance, validation errors, and the receiver chain the link
budget derives from them."""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from rsgn.optics import (
    PresetError,
    available_presets,
    enob_from_snr,
    laser_electrical_energy,
    load_preset,
    load_preset_file,
    propagation_delay,
    snr,
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
    assert math.isclose(b.node.extinction_ratio, 1000.0)
    assert math.isclose(b.node.angle_error, math.radians(0.1))
    assert math.isclose(b.detector.dark_current, 35e-9)
    assert math.isclose(b.encoder.symbol_rate, 10e9)
    assert math.isclose(b.laser.wavelength, 1550e-9)
    assert math.isclose(b.adc.energy_per_sample, 1.48e-12)
    assert b.provenance["adc.energy_per_sample"].given == "1.48 pJ"
    assert b.provenance["adc.energy_per_sample"].unit == "J"
    assert math.isclose(b.sbs.effective_area, 80e-12)
    # the SBS gain from one source's constants: g = g_B P_p L_eff / A_eff, L_eff with 0.2 dB/km
    alpha = 0.2 * math.log(10) / 10 / 1e3
    l_eff = (1 - math.exp(-alpha * 1000.0)) / alpha
    assert math.isclose(b.sbs.gain_exponent, 5e-11 * 5e-3 * l_eff / 80e-12, rel_tol=1e-12)
    assert b.sbs.gain_exponent < b.sbs.threshold_gain
    assert math.isclose(b.sbs.gain_per_watt, b.sbs.gain_exponent / 5e-3)


def test_receiver_chain_is_derived_from_the_link_budget() -> None:
    """The window holds two encoder sub-symbols, the noise bandwidth is 1/(2 t_int), a
    full-scale reading reaches exactly the target analogue SNR, the ADC full scale sits there
    and a channel's input carries it before its two elements' insertion loss."""
    b = load_preset("bench")
    assert math.isclose(b.window, 2 / 10e9) and math.isclose(b.noise_bandwidth, 2.5e9)
    p_det = b.detector_power()
    target = 10 ** (b.link.target_snr_db / 10)
    assert math.isclose(float(snr(p_det, b.noise_bandwidth, b.receiver_params())), target)
    assert float(snr(0.99 * p_det, b.noise_bandwidth, b.receiver_params())) < target
    det = b.detector_params()
    assert math.isclose(det.adc_full_scale, b.detector.responsivity * p_det)
    assert det.adc_bits == 8 and det.adc_enob == b.adc.enob
    assert math.isclose(b.channel_power(), p_det / 10 ** (-2 * 0.5 / 10))
    # the reading's effective bits: the link's SNR and the ADC's, as noise powers
    assert float(enob_from_snr(target)) > b.adc.enob - 0.1
    low = load_preset("lowpower")
    assert low.detector_power() < 0.1 * p_det  # 20 dB instead of 40.8 dB


def test_ideal_is_ideal() -> None:
    p = load_preset("ideal")
    assert p.node.extinction_ratio == math.inf and p.node.insertion_loss_db == 0.0
    assert p.adc.bits == math.inf and p.dac.bits == math.inf and p.laser.rin == -math.inf
    assert p.encoder.split_error == 0.0 and p.encoder.angle_error == 0.0
    assert p.detector.power == 0.0 and p.adc.energy_per_sample == 0.0
    assert not p.noise
    # only shot noise: the full-scale power is 2 q B SNR / R
    target = 10 ** (p.link.target_snr_db / 10)
    want = target * 2 * 1.602176634e-19 * p.noise_bandwidth / p.detector.responsivity
    assert math.isclose(p.detector_power(), want, rel_tol=1e-9)


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
            "link.target_snr_db",
            "value",
            "-1.0",
            r"link\.target_snr_db: value -1\.0 dB must be > 0 dB",
        ),
        ("node.extinction_ratio", "value", "-3.0", r"node\.extinction_ratio: .*>= 1"),
        ("node.extinction_ratio", "unit", '"dBm"', r"node\.extinction_ratio: unit 'dBm'"),
        ("node.channels_per_device", "value", "0.5", r"node\.channels_per_device: .*whole"),
        ("sbs.effective_area", "unit", '"cm^2"', r"sbs\.effective_area: unit 'cm\^2'"),
        ("encoder.symbol_rate", "value", "0.0", r"encoder\.symbol_rate: .*finite and > 0"),
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
            "logic.latency_per_op",
            "source",
            '""',
            r"logic\.latency_per_op: source must be a non-empty",
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
        "missing scope": text.replace(
            'scope = "one DAC conversion driving one encoder section"\n', ""
        ),
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


def test_energy_helpers() -> None:
    assert laser_electrical_energy(1e-3, 1.0, 0.2) == pytest.approx(5e-3)
    assert propagation_delay(0.3) == pytest.approx(1.0007e-9, rel=1e-4)  # ~1 ns per 30 cm
    with pytest.raises(ValueError):
        laser_electrical_energy(1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        propagation_delay(-1.0)
