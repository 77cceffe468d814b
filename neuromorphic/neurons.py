"""Neuron models: what a neuron computes, with a float and a bit-accurate fixed-point variant.

Following lava's Process/ProcessModel split, a :class:`NeuronModel` declares a neuron's state
and dynamics once, and implements them twice: ``update_float`` (float64) and ``update_fixed``
(int64, exact integer arithmetic with arithmetic right shifts). The simulator picks one by
``SimConfig.precision``.

Every update is a vectorised numpy callback over the neurons being updated this step::

    y[idx] = update(state, idx, x[idx], ctx)

``x`` is the neuron's synaptic input this step (sum of weight x payload over received events,
plus the external input; in sigma-delta mode the running reconstruction of that sum). The
callback mutates ``state[name][idx]`` in place and returns the outputs ``y`` for ``idx``
(0 means silent). Binary models (``graded = False``) return 0 or 1; graded models return the
value to transmit (quantised to the payload width by the simulator).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import numpy as np

from .errors import ConfigError

__all__ = ["StepContext", "NeuronModel", "ReLU", "Linear", "LIF", "Callback", "DECAY_BITS"]

DECAY_BITS = 12  # fixed-point decay constants are integers in [0, 2**12]


class StepContext:
    """What an update callback may need besides state and input.

    Attributes
    ----------
    step : int
        Algorithmic time step (0-based).
    group : int
        Index of the neuron group being updated.
    fixed : bool
        True in fixed-point mode.
    rng : numpy.random.Generator
        Created on first use, seeded from ``(seed, step, group)``; the only allowed source of
        randomness, so a run is a deterministic function of its seed.
    context : object or None
        The ``context`` passed to :meth:`Simulator.run` for this inference (None if none):
        per-inference scratch a model may read and write (counters, logs of what it did).
        The simulator never reads it, so a model whose only per-run data lives in its state
        arrays and in ``context`` keeps every run independent.
    """

    def __init__(
        self, step: int, group: int, fixed: bool, seed: int, context: object = None
    ) -> None:
        self.step, self.group, self.fixed, self.seed = step, group, fixed, seed
        self.context = context
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, self.step, self.group])
        return self._rng


class NeuronModel(ABC):
    """Abstract neuron dynamics with float and fixed-point implementations.

    Attributes
    ----------
    name : str
    graded : bool
        True: emits graded payloads (NeuroBench counts their synaptic ops as MACs).
        False: emits binary spikes (counted as ACs).
    state_init : Mapping[str, float]
        State variables and their initial values.
    """

    name: str = "neuron"
    graded: bool = True
    state_init: Mapping[str, float] = {}

    def init_state(self, n: int, fixed: bool) -> dict[str, np.ndarray]:
        """Fresh state arrays (int64 when ``fixed``, else float64) of length ``n``."""
        dtype = np.int64 if fixed else np.float64
        return {k: np.full(n, v, dtype=dtype) for k, v in self.state_init.items()}

    def validate(self, fixed: bool) -> None:
        """Raise :class:`ConfigError` if the model cannot run in the requested precision.

        The default refuses fixed-point mode when ``update_fixed`` is not implemented.
        """
        if fixed and type(self).update_fixed is NeuronModel.update_fixed:
            raise ConfigError(f"neuron model '{self.name}' has no fixed-point variant")

    @abstractmethod
    def update_float(
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        """Float64 update of neurons ``idx`` with input ``x``; returns their outputs."""

    def update_fixed(
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        """Int64 update of neurons ``idx`` with integer input ``x``; returns integer outputs."""
        raise ConfigError(f"neuron model '{self.name}' has no fixed-point variant")


def _require_int(model: str, **params: float) -> None:
    for k, v in params.items():
        if float(v) != int(v):
            raise ConfigError(f"{model}.{k} must be an integer in fixed-point mode, got {v!r}")


class ReLU(NeuronModel):
    """Stateless graded soft-threshold neuron.

    Float: ``y = gain * max(x - threshold, 0)``.
    Fixed: ``y = (max(x - threshold, 0) * gain) >> shift`` (integers; arithmetic shift), so the
    fixed output approximates the float one of gain ``gain / 2**shift``.
    ``y(0) = 0`` for ``threshold >= 0``: untouched neurons stay silent, which makes the
    ``touched_only`` idle policy exact for this model.
    """

    def __init__(
        self, threshold: float = 0.0, gain: float = 1.0, shift: int = 0, name: str = "relu"
    ) -> None:
        self.threshold, self.gain, self.shift, self.name = threshold, gain, int(shift), name
        self.graded = True
        self.state_init = {}

    def validate(self, fixed: bool) -> None:
        if fixed:
            _require_int(self.name, threshold=self.threshold, gain=self.gain)
        if self.shift < 0:
            raise ConfigError(f"{self.name}.shift must be >= 0, got {self.shift}")

    def update_float(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        return self.gain * np.maximum(x - self.threshold, 0.0)

    def update_fixed(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        return (np.maximum(x - int(self.threshold), 0) * int(self.gain)) >> self.shift


class Linear(NeuronModel):
    """Stateless graded relay: float ``y = gain * x``; fixed ``y = (x * gain) >> shift``."""

    def __init__(self, gain: float = 1.0, shift: int = 0, name: str = "linear") -> None:
        self.gain, self.shift, self.name = gain, int(shift), name
        self.graded = True
        self.state_init = {}

    def validate(self, fixed: bool) -> None:
        if fixed:
            _require_int(self.name, gain=self.gain)

    def update_float(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        return self.gain * x

    def update_fixed(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        return (x * int(self.gain)) >> self.shift


class LIF(NeuronModel):
    """Current-based leaky integrate-and-fire neuron with binary spikes (Loihi-style CUBA).

    Float::

        u <- u * (1 - du) + x
        v <- v * (1 - dv) + u + bias
        s  = v >= v_th ;  v[s] <- 0 ;  y = s

    Fixed (12-bit decays ``du_fx = round(du * 4096)``, integer ``v_th`` and ``bias``)::

        u <- ((u * (4096 - du_fx)) >> 12) + x
        v <- ((v * (4096 - dv_fx)) >> 12) + u + bias
        s  = v >= v_th ;  v[s] <- 0 ;  y = s

    ``>>`` is the arithmetic (flooring) right shift of int64.
    """

    def __init__(
        self,
        du: float = 0.0,
        dv: float = 0.0,
        v_th: float = 1.0,
        bias: float = 0.0,
        name: str = "lif",
    ) -> None:
        if not (0.0 <= du <= 1.0 and 0.0 <= dv <= 1.0):
            raise ConfigError(f"{name}: du and dv must lie in [0, 1], got du={du}, dv={dv}")
        self.du, self.dv, self.v_th, self.bias, self.name = du, dv, v_th, bias, name
        self.graded = False
        self.state_init = {"u": 0.0, "v": 0.0}

    @property
    def du_fx(self) -> int:
        """``round(du * 2**12)``."""
        return int(round(self.du * (1 << DECAY_BITS)))

    @property
    def dv_fx(self) -> int:
        """``round(dv * 2**12)``."""
        return int(round(self.dv * (1 << DECAY_BITS)))

    def validate(self, fixed: bool) -> None:
        if fixed:
            _require_int(self.name, v_th=self.v_th, bias=self.bias)

    def update_float(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        u = state["u"][idx] * (1.0 - self.du) + x
        v = state["v"][idx] * (1.0 - self.dv) + u + self.bias
        s = v >= self.v_th
        v[s] = 0.0
        state["u"][idx] = u
        state["v"][idx] = v
        return s.astype(np.float64)

    def update_fixed(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        one = 1 << DECAY_BITS
        u = ((state["u"][idx] * (one - self.du_fx)) >> DECAY_BITS) + x
        v = ((state["v"][idx] * (one - self.dv_fx)) >> DECAY_BITS) + u + int(self.bias)
        s = v >= int(self.v_th)
        v[s] = 0
        state["u"][idx] = u
        state["v"][idx] = v
        return s.astype(np.int64)


UpdateFn = Callable[[dict, np.ndarray, np.ndarray, StepContext], np.ndarray]


class Callback(NeuronModel):
    """A user-defined model from vectorised numpy callbacks.

    Parameters
    ----------
    update_float : callable
        ``f(state, idx, x, ctx) -> y`` in float64; mutate ``state[k][idx]`` in place.
    update_fixed : callable, optional
        The same in int64 (bit-accurate); without it fixed-point runs are refused.
    state : Mapping[str, float], optional
        State variables and initial values.
    graded : bool
        Graded payloads (True) or binary spikes (False; outputs must be 0 or 1).
    name : str
    """

    def __init__(
        self,
        update_float: UpdateFn,
        update_fixed: UpdateFn | None = None,
        state: Mapping[str, float] | None = None,
        graded: bool = True,
        name: str = "callback",
    ) -> None:
        self._f, self._q = update_float, update_fixed
        self.state_init = dict(state or {})
        self.graded, self.name = bool(graded), name

    def validate(self, fixed: bool) -> None:
        if fixed and self._q is None:
            raise ConfigError(f"neuron model '{self.name}' has no fixed-point variant")

    def update_float(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        return np.asarray(self._f(state, idx, x, ctx), dtype=np.float64)

    def update_fixed(  # noqa: D102
        self, state: dict[str, np.ndarray], idx: np.ndarray, x: np.ndarray, ctx: StepContext
    ) -> np.ndarray:
        if self._q is None:
            return super().update_fixed(state, idx, x, ctx)
        return np.asarray(self._q(state, idx, x, ctx), dtype=np.int64)
