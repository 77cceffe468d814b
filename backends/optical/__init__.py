"""The optical target: an RSGN on a simulated hybrid opto-electronic Poincaré core.

Modules: :mod:`.options` (typed options, presets), :mod:`.mapping` (nodes -> channels),
:mod:`.readings` (the measured distances), :mod:`.activation` (EIT/SBS activations),
:mod:`.calls` (one call's op table), :mod:`.cost` (events -> ledger, latency), :mod:`.target`
(Backend and Program), :mod:`.validation` (accuracy against torch over noise seeds).
"""

from rsgn.backends.optical.options import OFFLOAD_MODES, OpticalOptions
from rsgn.backends.optical.target import OpticalBackend, OpticalProgram

__all__ = ["OFFLOAD_MODES", "OpticalBackend", "OpticalOptions", "OpticalProgram"]
