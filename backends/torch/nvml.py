"""Measured GPU energy from NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules since the driver loaded; Volta and newer), read before and after a call.

Optional: needs a CUDA device and the ``nvidia-ml-py`` package (``pip install 'rsgn[gpu]'``).
The counter updates about every 100 ms on current GPUs, so a call shorter than that may read
0 mJ: the meter then reports n/a with that reason instead of a false zero. The figure is the
whole board's energy over the call (idle power included), not the model's share.
"""

from __future__ import annotations

import time
from typing import Any

from rsgn.backends.base import Measured, NotAvailable


def _load_nvml() -> Any:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    return pynvml


class EnergyMeter:
    """``with EnergyMeter(index) as m: ...`` then ``m.result()``: Measured joules of GPU
    ``index`` over the block, or NotAvailable(reason)."""

    def __init__(self, index: int, nvml: Any = None) -> None:
        self.nvml = nvml if nvml is not None else _load_nvml()
        self.reason = ""
        self.handle = None
        self.start_mj = self.end_mj = 0
        self.seconds = 0.0
        if self.nvml is None:
            self.reason = "NVML is not installed (pip install nvidia-ml-py)"
            return
        try:
            self.nvml.nvmlInit()
            self.handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
            self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except Exception as exc:  # NVMLError subclasses, driver without the counter
            self.handle = None
            self.reason = f"NVML energy counter unavailable on GPU {index}: {exc}"

    def __enter__(self) -> EnergyMeter:
        if self.handle is not None:
            self.start_mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self.handle is not None:
            self.end_mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)

    def result(self) -> Measured | NotAvailable:
        """The block's energy in J, or why there is none."""
        if self.handle is None:
            return NotAvailable(self.reason)
        delta = self.end_mj - self.start_mj
        if delta <= 0:
            return NotAvailable(
                f"the NVML energy counter did not advance over {self.seconds * 1e3:.1f} ms "
                "(it updates about every 100 ms): use larger batches"
            )
        return Measured(delta * 1e-3, "J", "NVML total-energy counter, whole board, per call")


def available() -> bool:
    """Whether NVML is importable here (a CUDA device is checked by the caller)."""
    return _load_nvml() is not None
