r"""Energy and latency of optical-core events, from a preset.

Per inference (optics-physics.md §8):

.. math::

    E = \frac{N_{ch} P_{opt} t_{int}}{\eta_{WPE}} + N_{frame} E_{SLM} + N_{mod} E_{mod}
        + N_{det} E_{PD+TIA} + N_{ADC} E_{ADC} + N_{DAC} E_{DAC} + N_{op} E_{op}

.. math::

    t = N_{frame} t_{SLM} + [N_{mod} > 0]\,t_{mod} + n_g L / c + t_{int} + [N_{ADC} > 0]\,t_{ADC}
        + \mathrm{depth}\cdot t_{op}

Latency assumes frames are written one after another, modulators settle in parallel, and all
detectors integrate and convert in parallel.  Each figure keeps the provenance of the constants
it used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .presets import Constant, OpticalPreset

__all__ = [
    "SPEED_OF_LIGHT",
    "EventCounts",
    "CostReport",
    "laser_electrical_energy",
    "propagation_delay",
    "event_table",
    "event_costs",
]

SPEED_OF_LIGHT = 299_792_458.0  # m/s (SI exact)


def laser_electrical_energy(
    optical_power: float, duration: float, wall_plug_efficiency: float
) -> float:
    r"""Electrical energy drawn by a laser: :math:`E = P_{opt}\,t / \eta_{WPE}` (J)."""
    if optical_power < 0 or duration < 0:
        raise ValueError("optical_power and duration must be >= 0")
    if not 0 < wall_plug_efficiency <= 1:
        raise ValueError("wall_plug_efficiency must lie in (0, 1]")
    return optical_power * duration / wall_plug_efficiency


def propagation_delay(path_length: float, group_index: float = 1.0) -> float:
    r"""Time of flight :math:`n_g L / c` (s); 30 cm of free space is about 1 ns."""
    if path_length < 0 or group_index < 1:
        raise ValueError("path_length must be >= 0 and group_index >= 1")
    return group_index * path_length / SPEED_OF_LIGHT


@dataclass(frozen=True)
class EventCounts:
    """Counted device events of one run (all non-negative).

    Attributes
    ----------
    channels : int
        Laser channels lit during the integration.
    integration_time : float
        Detector integration (exposure) time, s.
    slm_frames : int
        Encoder frames written (sequential).
    modulator_writes : int
        Fast modulator symbols (retarder/diattenuator settings).
    detector_samples : int
        Photodiode + TIA samples.
    adc_samples, dac_samples : int
        Conversions.
    logic_ops : int
        Electronic operations (energy).
    logic_depth : int
        Dependent electronic operations on the critical path (latency).
    """

    channels: int = 0
    integration_time: float = 0.0
    slm_frames: int = 0
    modulator_writes: int = 0
    detector_samples: int = 0
    adc_samples: int = 0
    dac_samples: int = 0
    logic_ops: int = 0
    logic_depth: int = 0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 0:
                raise ValueError(f"EventCounts.{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class CostReport:
    """Energy (J) and latency (s) broken down by event, with the constants used."""

    energy: dict[str, float]
    latency: dict[str, float]
    provenance: dict[str, Constant] = field(default_factory=dict)

    @property
    def total_energy(self) -> float:
        """Sum of the energy terms (J)."""
        return float(sum(self.energy.values()))

    @property
    def total_latency(self) -> float:
        """Sum of the latency terms (s)."""
        return float(sum(self.latency.values()))


def event_table(preset: OpticalPreset) -> dict[str, tuple[float, float]]:
    r"""Per-event (energy J, latency s) of a preset, for a backend's cost ledger.

    Keys: ``laser_per_watt_second`` (:math:`1/\eta_{WPE}`: electrical J per optical J),
    ``slm_frame``, ``modulator_write``, ``detector_sample``, ``adc_sample``, ``dac_sample``,
    ``logic_op``, ``propagation``.
    """
    p = preset
    return {
        "laser_per_watt_second": (1.0 / p.laser.wall_plug_efficiency, 0.0),
        "slm_frame": (p.encoder.write_energy, p.encoder.settle_time),
        "modulator_write": (p.modulator.energy_per_write, p.modulator.settle_time),
        "detector_sample": (p.detector.energy_per_sample, 0.0),
        "adc_sample": (p.adc.energy_per_sample, p.adc.latency),
        "dac_sample": (p.dac.energy_per_sample, 0.0),
        "logic_op": (p.logic.energy_per_op, p.logic.latency_per_op),
        "propagation": (
            0.0,
            propagation_delay(p.propagation.path_length, p.propagation.group_index),
        ),
    }


def event_costs(preset: OpticalPreset, counts: EventCounts) -> CostReport:
    """Energy and latency of ``counts`` under ``preset`` (formulas in the module docstring)."""
    p, c = preset, counts
    energy = {
        "laser": laser_electrical_energy(
            c.channels * p.laser.optical_power, c.integration_time, p.laser.wall_plug_efficiency
        ),
        "slm": c.slm_frames * p.encoder.write_energy,
        "modulator": c.modulator_writes * p.modulator.energy_per_write,
        "detector": c.detector_samples * p.detector.energy_per_sample,
        "adc": c.adc_samples * p.adc.energy_per_sample,
        "dac": c.dac_samples * p.dac.energy_per_sample,
        "logic": c.logic_ops * p.logic.energy_per_op,
    }
    latency = {
        "slm": c.slm_frames * p.encoder.settle_time,
        "modulator": p.modulator.settle_time if c.modulator_writes > 0 else 0.0,
        "propagation": propagation_delay(p.propagation.path_length, p.propagation.group_index),
        "integration": c.integration_time,
        "adc": p.adc.latency if c.adc_samples > 0 else 0.0,
        "logic": c.logic_depth * p.logic.latency_per_op,
    }
    keys = [
        "laser.wall_plug_efficiency",
        "laser.optical_power",
        "encoder.write_energy",
        "encoder.settle_time",
        "modulator.energy_per_write",
        "modulator.settle_time",
        "detector.energy_per_sample",
        "adc.energy_per_sample",
        "adc.latency",
        "dac.energy_per_sample",
        "logic.energy_per_op",
        "logic.latency_per_op",
        "propagation.path_length",
        "propagation.group_index",
    ]
    return CostReport(energy, latency, {k: p.provenance[k] for k in keys})
