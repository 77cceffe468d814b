"""Typed, validated run configuration: ``[model]``, ``[train]`` and ``[data]`` sections.

Configs load from TOML (``load_config``) and take ``--set key=value`` overrides
(``apply_overrides``), where ``key`` is ``section.field`` or a bare field name that is unique
across sections. Unknown keys and out-of-range values raise :class:`~rsgn.errors.RsgnError`
naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rsgn.errors import RsgnError


@dataclass
class ModelConfig:
    """Architecture and fast/slow dynamics of the sparse RSGN.

    The defaults go beyond the paper where marked (token encoder, ignition-weighted initial
    states ``init_state = 'attend'``, D = 8, d = 96, r = 16: 41,085 parameters on the
    hierarchical task); ``load_config("paper")`` (``rsgn/presets/paper.toml``,
    ``--config paper``) is the paper-faithful configuration. The token skip path is an option,
    off by default: it bypasses the sparse dynamics."""

    n_nodes: int = 256
    d_hidden: int = 96
    """Node state width d (paper: 128; the paper preset keeps it)."""
    d_space: int = 8
    """Dimension D of the Poincaré ball (paper: 3; the paper preset keeps it). The spark MLP is
    F -> 4D -> D, so D also sets its hidden width."""
    n_steps: int = 5
    affinity_rank: int = 16
    """Rank r of the learned affinities a_ij = u_i . v_j (paper: 32)."""
    k_in: int = 16
    """In-edges kept per node: its k nearest neighbours in hyperbolic distance."""
    k_sprout: int = 4
    """Extra in-edge slots per node that sprouting can fill."""
    tau: float = 1.0
    """Distance temperature in w_ji = sigmoid(a_ij) exp(-d_ij / tau) softplus(l_i - l_j + 1)."""
    sigma_ign: float = 0.4
    eps_active: float = 0.01
    gamma: float = 0.1
    target_active: float = 0.05
    """Cap on the fraction of nodes active per step (exact k-winners); paper code: 1.0."""
    inhibition_radius: float = 0.3
    """Hyperbolic radius of the inhibition neighbourhood."""
    inhibition_strength: float = 0.5
    """beta in alpha_i <- alpha_i / (1 + beta * mean_{j in R(i)} alpha_j)."""
    temperature_start: float = 2.0
    temperature_end: float = 0.5
    spark_scale_init: float = 0.7
    encoder_width: int = 5
    """Token encoder: 0 (the paper) feeds raw tokens to the sparks and W_init; w >= 1 first
    maps each token to e_t = GELU(b + sum_u W_u x_{t+u-floor(w/2)}) (a width-w convolution,
    'same' padding, d_in -> encoder_dim, w d_in encoder_dim + encoder_dim parameters), and the
    sparks and the initial node states read e_t instead of x_t."""
    encoder_dim: int = 64
    """Channels of the token encoder (used only when encoder_width > 0)."""
    token_skip: bool = False
    """Add a skip path W_s max_t e_t (max-pool of the encoder features over tokens, or of the
    raw tokens without an encoder) to the logits after the readout (F C + C parameters). The
    path bypasses the RSGN's sparse dynamics, so it is off by default;
    the study's ablation reports the RSGN with and without it and the path alone (paper: off)."""
    theta_init: float = 0.5
    init_radius: float = 1.0
    """Std of the tangent-space node positions at initialisation (before expmap0)."""
    init_state: str = "attend"
    """'mean': the paper's mean over all tokens (of the features e_t, see encoder_width);
    'attend': the token features weighted by a softmax over tokens of the ignition Gaussian,
    softmax_t(-d_H(s_t, p_i)^2 / 2 sigma^2), so the tokens that lit node i route their features
    into it (same parameters for both)."""
    selection: str = "radix"
    """Active-set cap: 'radix' (exact, sort-free histogram select) or 'stat' (statistical
    top-k: mean + std * Phi^-1(1 - k/n); approximate, for near-Gaussian scores only)."""
    node_readout: bool = False
    """Add sum_{i in A} alpha_i R_i to the logits: a learned class vector R_i per node, read
    through the final active set A (N C parameters), so the readout sees which nodes are
    active, not only their states (paper: off)."""
    feature_dropout: float = 0.0
    """Dropout probability on the token features e_t during training (paper: 0)."""
    # slow Hebbian rules
    hebbian: bool = True
    hebb_affinity: bool = True
    hebb_homeostasis: bool = True
    hebb_prune: bool = True
    hebb_sprout: bool = True
    hebb_drift: bool = True
    hebb_lr: float = 0.01
    affinity_decay: float = 0.995
    homeostasis_lr: float = 0.01
    homeostasis_target: float | None = None
    """rho in theta_i += eta_theta (abar_i - rho); None uses target_active (paper: 0.1)."""
    prune_threshold: float = 0.01
    prune_patience: int = 3
    sprout_threshold: float = 0.9
    drift_lr: float = 0.01
    reward: str = "advantage"
    """Hebbian reward R: 'neg_loss' (paper, R = -loss) or 'advantage' (R = baseline - loss)."""

    _choices = {
        "init_state": ("attend", "mean"),
        "selection": ("radix", "stat"),
        "reward": ("advantage", "neg_loss"),
    }

    def validate(self) -> None:
        _positive_int(self, "n_nodes", "d_hidden", "d_space", "n_steps", "affinity_rank", "k_in")
        _positive_int(self, "encoder_dim")
        _nonneg_int(self, "encoder_width")
        _nonneg_int(self, "k_sprout", "prune_patience")
        _positive_float(self, "tau", "sigma_ign", "temperature_start", "temperature_end")
        _positive_float(self, "spark_scale_init", "init_radius", "inhibition_radius")
        _nonneg_float(self, "gamma", "inhibition_strength", "hebb_lr", "homeostasis_lr")
        _nonneg_float(self, "drift_lr", "prune_threshold")
        if not 0.0 <= self.feature_dropout < 1.0:
            raise RsgnError(f"model.feature_dropout must be in [0, 1), got {self.feature_dropout}")
        _unit_interval(self, "eps_active", "affinity_decay", "sprout_threshold")
        if self.homeostasis_target is not None and not 0 <= self.homeostasis_target <= 1:
            raise RsgnError(
                f"model.homeostasis_target must be in [0, 1], got {self.homeostasis_target}"
            )
        if not 0.0 < self.target_active <= 1.0:
            raise RsgnError(f"model.target_active must be in (0, 1], got {self.target_active}")
        if self.n_nodes < 2:
            raise RsgnError(f"model.n_nodes must be at least 2, got {self.n_nodes}")
        if self.k_in >= self.n_nodes:
            raise RsgnError(
                f"model.k_in ({self.k_in}) must be smaller than model.n_nodes ({self.n_nodes})"
            )
        _check_choices(self, "model")

    @property
    def k_active(self) -> int:
        """Active-set capacity per sample: floor(target_active * n_nodes) (at least 1), so the
        measured active fraction never exceeds the target."""
        return max(1, math.floor(self.target_active * self.n_nodes + 1e-9))


RSGN_LR = 3e-3
"""Default AdamW learning rate of the RSGN (measured on the hierarchical task, 50 epochs, seed 0,
default model: 41.2% validation accuracy at 3e-3, 30.5% at 1e-3; see :func:`default_lr`)."""
PAPER_LR = 1e-3
"""The paper's AdamW learning rate: the default for the baselines and the ``paper`` preset."""


def default_lr(model: str) -> float:
    """The learning rate ``train.lr = None`` resolves to: RSGN_LR for ``rsgn``, PAPER_LR for
    the baselines (trained as in the paper)."""
    return RSGN_LR if model == "rsgn" else PAPER_LR


@dataclass
class TrainConfig:
    """Fast learning (paper: AdamW 1e-3, wd 1e-4, cosine, batch 64, 50 epochs, clip 1.0)."""

    epochs: int = 50
    batch_size: int = 64
    lr: float | None = None
    """AdamW learning rate; None: the model's default (:func:`default_lr`: 3e-3 for the RSGN,
    the paper's 1e-3 for the baselines)."""
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    schedule: str = "cosine"
    seed: int = 0
    device: str = "cpu"
    eval_batch_size: int = 256
    deterministic: bool = True
    """Bit-reproducible CPU training for a given seed: while :func:`rsgn.training.train` runs,
    ``torch.use_deterministic_algorithms(True)`` (with more than one CPU thread the
    accumulating index backward otherwise sums in thread order, so two runs of one seed
    differed in the last bits and, after a few epochs, in accuracy). Time per step of the
    default model over 2 epochs (2-thread CPU, three runs each): 0.133-0.148 s without,
    0.121-0.141 s with, no measurable cost. Not applied on CUDA, where the Triton kernels'
    atomics and cuBLAS are not bit-reproducible anyway."""

    min_steps: int = 500
    """Minimum number of optimiser steps: the run lasts max(epochs, ceil(min_steps /
    steps_per_epoch)) epochs, and the cosine schedule spans them, so a small training set
    (36 samples: one step per epoch) still trains long enough (paper: 0, epochs only)."""
    eval_interval: int = 50
    """Optimiser steps between evaluations (of the selection split, which chooses the model,
    and of the reported split, which is only recorded): an evaluation follows the first epoch
    that ends at least this many steps after the last one, and the last epoch; 0 evaluates
    after every epoch (paper)."""
    patience: int = 20
    """Early stopping: stop once this many evaluations in a row have not improved the
    selection split's score (accuracy, ties broken by the lower loss) and at least min_steps
    steps are done; the best evaluation's weights are restored either way. 0: no early stop
    (the run still ends on the best checkpoint when data.select_fraction > 0)."""
    augment_jitter: float = 0.2
    """Time-series augmentation, training batches only: x_bt += sigma eps_bt, eps ~ N(0, 1)
    on real steps (sigma in the data's units; 0: off; paper: 0)."""
    augment_scale: float = 0.1
    """Augmentation: x_btc *= 1 + s eps_bc, one factor per sample and channel, eps ~ N(0, 1)
    (0: off; paper: 0)."""
    augment_shift: float = 0.0625
    """Augmentation: shift each training sequence of L real steps by k ~ U{-K..K} steps,
    K = floor(shift L) (a fraction of its length; 1/16: +-4 steps at L = 64): k > 0 prepends k
    zero steps (what passes the end is dropped), k < 0 drops the first |k| steps (at least one
    real step stays); the lengths follow (0: off; paper: 0)."""

    _choices = {"schedule": ("cosine", "constant")}

    def validate(self) -> None:
        _positive_int(self, "epochs", "batch_size", "eval_batch_size")
        if self.lr is not None:
            _positive_float(self, "lr")
        _nonneg_float(self, "weight_decay", "grad_clip", "augment_jitter", "augment_scale")
        _nonneg_int(self, "seed", "min_steps", "eval_interval", "patience")
        if not 0.0 <= self.augment_shift < 1.0:
            raise RsgnError(f"train.augment_shift must be in [0, 1), got {self.augment_shift}")
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise RsgnError(f"train.device must be cpu, cuda, cuda:N or auto, got {self.device!r}")
        _check_choices(self, "train")


@dataclass
class DataConfig:
    """Built-in task generator overrides (None keeps the paper's value) and the splits.

    Three splits: ``train`` (the optimiser's), ``select`` (carved from the training data by
    ``select_fraction``: chooses the checkpoint and stops early) and the reported split
    (``val``: the 20% held out of a task or an .npz; ``test``: an aeon set's official test
    split), which never chooses anything."""

    n_samples: int | None = None
    seq_len: int | None = None
    noise: float | None = None
    val_fraction: float = 0.2
    select_fraction: float = 0.2
    """Fraction of the training data held out, stratified by class and seeded by train.seed,
    as the selection split (at least one sample of each class with two or more); 0: none, the
    last epoch's weights are the result (paper)."""
    znorm: bool = False
    """Z-normalise each channel with the mean and std of the training split's real steps (the
    same statistics for every split; padding stays 0). Applies to .npz and aeon data."""
    patch_len: int = 1
    """Steps per token: every ``patch_len`` consecutive steps (after z-normalisation) become
    one token of patch_len x F features, T' = ceil(T / patch_len) tokens
    (:func:`rsgn.data.tokenise`); 1: one token per step (the paper)."""
    time_channel: bool = False
    """Append each token's position as one more feature, the standardised index
    tau_t = (t - (T' - 1) / 2) / sqrt((T'^2 - 1) / 12) (mean 0, variance 1 over the tokens; 0 on
    padding): lets the ignition and the pooled initial state see where in the series a
    pattern is."""

    def validate(self) -> None:
        if not 0.0 <= self.select_fraction < 1.0:
            raise RsgnError(f"data.select_fraction must be in [0, 1), got {self.select_fraction}")
        if self.n_samples is not None and self.n_samples < 10:
            raise RsgnError(f"data.n_samples must be at least 10, got {self.n_samples}")
        if self.seq_len is not None and self.seq_len < 1:
            raise RsgnError(f"data.seq_len must be positive, got {self.seq_len}")
        if self.noise is not None and (self.noise < 0 or not math.isfinite(self.noise)):
            raise RsgnError(f"data.noise must be a finite non-negative number, got {self.noise}")
        if not 0.0 < self.val_fraction < 1.0:
            raise RsgnError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if isinstance(self.patch_len, bool) or not isinstance(self.patch_len, int):
            raise RsgnError(f"data.patch_len must be an integer, got {self.patch_len!r}")
        if self.patch_len < 1:
            raise RsgnError(f"data.patch_len must be at least 1, got {self.patch_len}")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> RunConfig:
        self.model.validate()
        self.train.validate()
        self.data.validate()
        if self.train.patience > 0 and self.data.select_fraction == 0:
            raise RsgnError(
                "train.patience > 0 needs a selection split (data.select_fraction > 0): early "
                "stopping never looks at the reported split"
            )
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {s: _section_dict(getattr(self, s)) for s in _SECTIONS}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "config") -> RunConfig:
        cfg = cls()
        for sec, values in d.items():
            if sec not in _SECTIONS:
                raise RsgnError(f"{where}: unknown section [{sec}] (known: {', '.join(_SECTIONS)})")
            if not isinstance(values, dict):
                raise RsgnError(f"{where}: [{sec}] must be a table")
            for k, v in values.items():
                _set_field(getattr(cfg, sec), sec, k, v, from_string=False)
        return cfg.validate()


_SECTIONS = ("model", "train", "data")


def _section_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _field_types(obj: Any) -> dict[str, Any]:
    return {f.name: f.type for f in fields(obj)}


def _set_field(obj: Any, sec: str, key: str, value: Any, *, from_string: bool) -> None:
    types = _field_types(obj)
    if key not in types:
        raise RsgnError(f"unknown config key '{sec}.{key}'{did_you_mean(key, types)}")
    ftype = str(types[key])
    try:
        converted = convert_value(value, ftype, from_string)
    except (TypeError, ValueError) as exc:
        raise RsgnError(f"invalid value for '{sec}.{key}': {value!r} ({exc})") from None
    setattr(obj, key, converted)


def convert_value(value: Any, ftype: str, from_string: bool) -> Any:
    """``value`` as the dataclass field type ``ftype`` (``bool``, ``int``, ``float``, ``str``,
    optionally ``| None``); strings from the command line are parsed when ``from_string``.
    Raises ValueError / TypeError naming what was expected."""
    optional = "None" in ftype
    base = ftype.replace(" | None", "").strip()
    if optional and (value is None or (from_string and str(value).lower() in ("none", "null"))):
        return None
    if base == "bool":
        if isinstance(value, bool):
            return value
        if from_string and str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if from_string and str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError("expected a boolean")
    if base == "int":
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if from_string:
            return int(str(value))
        raise ValueError("expected an integer")
    if base == "float":
        if isinstance(value, bool):
            raise ValueError("expected a number")
        v = float(value) if (from_string or isinstance(value, (int, float))) else None
        if v is None:
            raise ValueError("expected a number")
        if not math.isfinite(v):
            raise ValueError("expected a finite number")
        return v
    if base == "str":
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    raise TypeError(f"unsupported field type {ftype}")


def did_you_mean(word: str, known: Any) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` to ``word``, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_choices(obj: Any, sec: str) -> None:
    for key, allowed in obj._choices.items():
        if getattr(obj, key) not in allowed:
            raise RsgnError(
                f"invalid value for '{sec}.{key}': {getattr(obj, key)!r} "
                f"(choose from {', '.join(allowed)})"
            )


def _positive_int(obj: Any, *names: str) -> None:
    for n in names:
        if getattr(obj, n) <= 0:
            raise RsgnError(f"{_sec(obj)}.{n} must be a positive integer, got {getattr(obj, n)}")


def _nonneg_int(obj: Any, *names: str) -> None:
    for n in names:
        if getattr(obj, n) < 0:
            raise RsgnError(f"{_sec(obj)}.{n} must be non-negative, got {getattr(obj, n)}")


def _positive_float(obj: Any, *names: str) -> None:
    for n in names:
        if not getattr(obj, n) > 0:
            raise RsgnError(f"{_sec(obj)}.{n} must be positive, got {getattr(obj, n)}")


def _nonneg_float(obj: Any, *names: str) -> None:
    for n in names:
        if not getattr(obj, n) >= 0:
            raise RsgnError(f"{_sec(obj)}.{n} must be non-negative, got {getattr(obj, n)}")


def _unit_interval(obj: Any, *names: str) -> None:
    for n in names:
        if not 0.0 <= getattr(obj, n) <= 1.0:
            raise RsgnError(f"{_sec(obj)}.{n} must be in [0, 1], got {getattr(obj, n)}")


def _sec(obj: Any) -> str:
    return {ModelConfig: "model", TrainConfig: "train", DataConfig: "data"}[type(obj)]


CONFIG_PRESETS = ("paper", "paper-training")
"""Named run configs shipped in ``rsgn/presets/NAME.toml``: ``paper`` is the paper-faithful
RSGN (per-token sparks, mean initial state, 41,672 parameters on the hierarchical task) trained
as the paper trained; ``paper-training`` is the default RSGN trained that way (epochs only, no
selection split: how every training ran before issue 18)."""


def preset_path(name: str) -> Path:
    """Path of the shipped config preset ``name`` (see :data:`CONFIG_PRESETS`)."""
    if name not in CONFIG_PRESETS:
        raise RsgnError(f"unknown config preset {name!r} (known: {', '.join(CONFIG_PRESETS)})")
    return Path(__file__).parent / "presets" / f"{name}.toml"


def load_config(path: str | Path | None) -> RunConfig:
    """Read a TOML config (sections [model], [train], [data]); ``None`` gives the defaults.

    ``path`` may also name a shipped preset (``paper``) when no such file exists."""
    if path is None:
        return RunConfig().validate()
    p = Path(path)
    if not p.is_file() and str(path) in CONFIG_PRESETS:
        p = preset_path(str(path))
    if not p.is_file():
        raise RsgnError(f"config file not found: {p}")
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RsgnError(f"config file {p} is not valid TOML: {exc}") from None
    return RunConfig.from_dict(data, where=str(p))


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``key=value`` strings; ``key`` is ``section.field`` or a unique bare field name."""
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model),
        train=dataclasses.replace(cfg.train),
        data=dataclasses.replace(cfg.data),
    )
    for item in overrides:
        if "=" not in item:
            raise RsgnError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if "." in key:
            sec, name = key.split(".", 1)
            if sec not in _SECTIONS:
                raise RsgnError(f"unknown config key '{key}' (sections: {', '.join(_SECTIONS)})")
        else:
            owners = [s for s in _SECTIONS if key in _field_types(getattr(cfg, s))]
            if not owners:
                every = [f for s in _SECTIONS for f in _field_types(getattr(cfg, s))]
                raise RsgnError(f"unknown config key '{key}'{did_you_mean(key, every)}")
            if len(owners) > 1:
                raise RsgnError(f"ambiguous config key '{key}': use one of {owners}")
            sec, name = owners[0], key
        _set_field(getattr(cfg, sec), sec, name, value.strip(), from_string=True)
    return cfg.validate()
