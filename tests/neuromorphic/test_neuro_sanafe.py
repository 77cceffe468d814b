"""The simulator against SANA-FE (``sanafe`` 2.2.9, a test oracle only) on two small networks
of ``studies/neuromorphic/sanafe/run.py``: same spikes, same packets, energy per step within
10 % and latency per step within 20 % (the study's table has all twelve)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from rsgn import neuromorphic as nm

pytest.importorskip("sanafe", reason="sanafe (the SANA-FE oracle) is not installed")

RUN = Path(__file__).resolve().parents[2] / "studies" / "neuromorphic" / "sanafe" / "run.py"


def _study():
    spec = importlib.util.spec_from_file_location("sanafe_study", RUN)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["sanafe_study"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["small-dense", "hot-16"])
def test_energy_and_latency_per_step_within_targets(name):
    study = _study()
    spec = next(s for s in study.NETWORKS if s.name == name)
    row = study.compare(spec, nm.load_preset("loihi"))
    print(name, row["energy_error"], row["latency_error"])
    assert row["same_spikes"] and row["packets_per_step"] == row["sanafe_packets_per_step"]
    assert abs(row["energy_error"]) < 0.10
    assert abs(row["latency_error"]) < 0.20
