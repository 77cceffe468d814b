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

A model may also

- name neurons that must update without input (:meth:`NeuronModel.needs_update`: a leaky
  neuron with a non-zero state, a bias), which the ``touched_only`` and ``active_cores``
  policies then update too;
- run a program that needs other cores' data within a step: it declares each communication
  round with :meth:`StepContext.phase` (compute on each core, then messages between cores or
  to and from the host); the timing pass replays the phases in order between the neuron updates
  and the emission, and the energy model charges them. Such a model sets
  ``declares_compute = True``: its updated compartments are then charged as accesses
  (``neuron_update_idle``) and its arithmetic as the declared instructions (``neuron_op``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = [
    "StepContext",
    "Phase",
    "NeuronModel",
    "ReLU",
    "Linear",
    "LIF",
    "Callback",
    "DECAY_BITS",
    "OPS",
]

DECAY_BITS = 12  # fixed-point decay constants are integers in [0, 2**12]
OPS = ("neuron_op", "synop", "graded_synop")
"""Kinds of declared compute, each with its per-op energy and time in the profile."""


@dataclass
class Phase:
    """One communication round a model declares within a step (see :meth:`StepContext.phase`).

    Attributes
    ----------
    name : str
        Traffic class (e.g. ``"select"``); counts and energies are reported per class.
    compute : dict[str, numpy.ndarray]
        Op kind (:data:`OPS`) -> per-core counts (n_cores,) done before the core sends.
    src, dst : numpy.ndarray
        Messages: source and destination core (-1: the host interface).
    packets : numpy.ndarray
        Packets per message.
    rx_ops : numpy.ndarray
        ``neuron_op`` instructions the receiver spends per message (e.g. accumulating it).
    """

    name: str
    compute: dict[str, np.ndarray]
    src: np.ndarray
    dst: np.ndarray
    packets: np.ndarray
    rx_ops: np.ndarray


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
    n_steps : int
        Steps of this run (``step == n_steps - 1`` is the last).
    placement : numpy.ndarray
        Core of every neuron of the group being updated (group-local index).
    n_cores : int
        Cores of the system (length of per-core arrays).
    phases : list[Phase]
        The phases declared so far in this step (appended by :meth:`phase`).
    """

    def __init__(
        self,
        step: int,
        group: int,
        fixed: bool,
        seed: int,
        context: object = None,
        *,
        n_steps: int = 1,
        placement: np.ndarray | None = None,
        n_cores: int = 1,
        phases: list[Phase] | None = None,
    ) -> None:
        self.step, self.group, self.fixed, self.seed = step, group, fixed, seed
        self.context = context
        self.n_steps = n_steps
        self.placement = placement if placement is not None else np.zeros(0, dtype=np.int64)
        self.n_cores = n_cores
        self.phases = phases if phases is not None else []
        self._rng: np.random.Generator | None = None

    @property
    def last(self) -> bool:
        """True in the run's last step."""
        return self.step == self.n_steps - 1

    def phase(
        self,
        name: str,
        *,
        compute: Mapping[str, np.ndarray] | None = None,
        src: np.ndarray | None = None,
        dst: np.ndarray | None = None,
        packets: np.ndarray | int = 1,
        rx_ops: np.ndarray | int = 0,
    ) -> Phase:
        """Declare a communication round of this step (module docstring).

        Parameters
        ----------
        name : str
            Traffic class it is reported under.
        compute : mapping op -> per-core counts, optional
            Work each core does before sending (ops of :data:`OPS`, arrays of length
            ``n_cores``).
        src, dst : int arrays, optional
            One entry per message: source and destination core (-1: the host).
        packets : int or int array
            Packets per message (one value each).
        rx_ops : int or int array
            ``neuron_op`` instructions the receiver spends per message.
        """
        comp = {}
        for op, v in (compute or {}).items():
            if op not in OPS:
                raise ConfigError(f"phase {name!r}: unknown op kind {op!r} (known: {OPS})")
            a = np.asarray(v, dtype=np.int64)
            if a.shape != (self.n_cores,):
                raise ConfigError(
                    f"phase {name!r}: compute[{op!r}] must have shape ({self.n_cores},), "
                    f"got {a.shape}"
                )
            comp[op] = a
        s = np.zeros(0, dtype=np.int64) if src is None else np.asarray(src, dtype=np.int64)
        d = np.zeros(0, dtype=np.int64) if dst is None else np.asarray(dst, dtype=np.int64)
        if s.shape != d.shape or s.ndim != 1:
            raise ConfigError(f"phase {name!r}: src and dst must be 1-D of equal length")
        if s.size and (s.max() >= self.n_cores or d.max() >= self.n_cores or s.min() < -1
                       or d.min() < -1):  # fmt: skip
            raise ConfigError(f"phase {name!r}: core ids must lie in [-1, {self.n_cores})")
        pk = np.broadcast_to(np.asarray(packets, dtype=np.int64), s.shape).copy()
        rx = np.broadcast_to(np.asarray(rx_ops, dtype=np.int64), s.shape).copy()
        if s.size and (pk.min() < 1 or rx.min() < 0):
            raise ConfigError(f"phase {name!r}: packets must be >= 1 and rx_ops >= 0")
        ph = Phase(name, comp, s, d, pk, rx)
        self.phases.append(ph)
        return ph

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
    declares_compute: bool = False
    """True for a programmable neuron that declares its instructions (:meth:`StepContext.phase`
    compute): its updates are charged as compartment accesses plus those instructions."""

    def needs_update(
        self, state: dict[str, np.ndarray], n: int, step: int = 0
    ) -> np.ndarray | None:
        """Mask (n,) of neurons that must update in ``step`` even without input (None: none).

        The default is None: a neuron without input is idle. The mask is not widened to whole
        update units (``Network.units``): a model names exactly the compartments it needs.
        """
        del state, n, step
        return None

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

    def needs_update(
        self, state: dict[str, np.ndarray], n: int, step: int = 0
    ) -> np.ndarray | None:
        """A LIF neuron with a non-zero current or potential, or a bias, evolves without
        input (leak, bias): it must update (SANA-FE's rule for its Loihi LIF, [Boyle2025])."""
        if self.bias != 0:
            return np.ones(n, dtype=bool)
        return (state["u"] != 0) | (state["v"] != 0)

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
