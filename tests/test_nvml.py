"""Measured GPU energy: the NVML meter reads the total-energy counter before and after a call;
a counter that does not advance or a missing NVML is n/a with the reason, never 0. (A fake
NVML module stands in for the driver: no GPU here.)"""

from __future__ import annotations

import torch

from rsgn.backends import get_backend
from rsgn.backends.base import Measured, NotAvailable
from rsgn.backends.torch.nvml import EnergyMeter


class FakeNvml:
    def __init__(self, readings_mj):
        self.readings = list(readings_mj)
        self.inited = False

    def nvmlInit(self):
        self.inited = True

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


def test_meter_reports_the_counter_difference_in_joules():
    fake = FakeNvml([1000, 1000, 3500])  # probe, start, end (mJ)
    with EnergyMeter(0, nvml=fake) as m:
        pass
    r = m.result()
    assert fake.inited and isinstance(r, Measured) and r.value == 2.5 and r.unit == "J"


def test_a_counter_that_does_not_advance_is_na_with_the_reason():
    with EnergyMeter(0, nvml=FakeNvml([7, 7, 7])) as m:
        pass
    r = m.result()
    assert isinstance(r, NotAvailable) and "did not advance" in r.reason


def test_on_the_cpu_the_torch_target_says_why_it_has_no_measured_energy():
    be = get_backend("torch")
    assert isinstance(be.capabilities().metrics["energy_measured"], NotAvailable)
    from rsgn.model import RSGN
    from tests.conftest import small_cfg

    _, rep = be.prepare(RSGN(4, 3, small_cfg()).export())(torch.randn(2, 5, 4))
    assert isinstance(rep.energy_measured, NotAvailable) and "CPU" in rep.energy_measured.reason
