"""The optical target: an RSGN on a simulated hybrid opto-electronic Poincaré core.

Modules: :mod:`.options` (typed options, presets), :mod:`.system` (the architecture: fan-out,
link budget, device counts, precision, regimes), :mod:`.mapping` (nodes -> channels),
:mod:`.readings` (written states and the measured distances), :mod:`.activation` (EIT/SBS
activations in their regimes), :mod:`.calls` (one call's op table), :mod:`.cost` (events ->
ledger, latency), :mod:`.target` (Backend and Program), :mod:`.validation` (accuracy against
torch over noise seeds). ``docs/optical-system.md`` describes the system.
"""

from rsgn.backends.optical.options import OFFLOAD_MODES, OpticalOptions
from rsgn.backends.optical.target import OpticalBackend, OpticalProgram

__all__ = ["OFFLOAD_MODES", "OpticalBackend", "OpticalOptions", "OpticalProgram"]
