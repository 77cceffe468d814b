"""Datasets: the paper's two synthetic benchmarks (seeded) and user data from ``.npz`` files.

Built-in tasks (spec §6 of the RSGN paper)
------------------------------------------
``hierarchical``  20 classes, length 64, 32 features, Gaussian noise 0.3, 5,000 samples.
    Level 1: each class owns 8 local 5-step patterns (amplitude 0.15); 2-4 of them are added at
    random positions. Level 2: 4 class markers (amplitude 0.10) near the quarter positions
    (jitter +-2). Level 3: a weak class-wide bias (amplitude 0.005) added to every position.
    The paper gives no amplitude for level 3; 0.005 keeps the task as hard as the paper's
    table says it is (measured, 40 epochs: a linear classifier on mean-pooled tokens reaches
    ~17% with no bias, 42% at 0.01 and 100% at 0.05, far above the paper's Transformer).
``long-range``    10 classes, length 128, 32 features, noise 0.3, 3,000 samples; the class
    pattern (amplitude 0.5, 8 steps) fills the first 8 and the last 8 positions.

User data: ``.npz`` with ``X`` float [n, T, F] and integer ``y`` [n]; optional ``X_val``/``y_val``,
otherwise a seeded 80/20 split; optional ``lengths`` [n] (and ``lengths_val``): sample i has
``lengths[i]`` real steps, the rest of its T steps is padding. Every problem (NaN/inf, wrong
rank, mismatched lengths, non-integer or negative labels) raises
:class:`~rsgn.errors.RsgnError` naming it.

Standard sets: ``aeon:NAME`` (:mod:`rsgn.aeon_data`), the classification sets bundled inside the
aeon package, with their official train/test split.

Splits (:class:`Dataset`): ``train`` trains; ``select`` (:func:`with_selection`, carved from the
training data) chooses the checkpoint and stops early; the reported split (``val`` or an aeon
set's ``test``) is only measured.
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rsgn.config import DataConfig
from rsgn.errors import RsgnError


@dataclass
class Dataset:
    """Three splits of X [n, T, F] float32, y [n] int64 and optional lengths [n] int64 (None:
    every step is real): ``train``, ``select`` (None until :func:`with_selection` carves it
    from the training data) and the reported split ``val``, named ``reported_split`` ('val',
    or 'test' for an official test split)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int
    len_train: torch.Tensor | None = None
    len_val: torch.Tensor | None = None
    x_select: torch.Tensor | None = None
    y_select: torch.Tensor | None = None
    len_select: torch.Tensor | None = None
    reported_split: str = "val"

    def splits(self) -> dict[str, int]:
        """Sample counts by split (the reported one under its own name)."""
        sel = 0 if self.y_select is None else len(self.y_select)
        return {"train": len(self.y_train), "select": sel, self.reported_split: len(self.y_val)}

    @property
    def d_in(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def seq_len(self) -> int:
        return int(self.x_train.shape[1])


TASKS = ("hierarchical", "long-range")


def hierarchical(
    n_samples: int = 5000,
    seq_len: int = 64,
    d: int = 32,
    n_classes: int = 20,
    noise: float = 0.3,
    seed: int = 0,
    global_amp: float = 0.005,
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's hierarchical classification task (see module docstring)."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((n_classes, 8, 5, d)) * 0.15  # level 1
    markers = rng.standard_normal((n_classes, 4, d)) * 0.10  # level 2
    bias = rng.standard_normal((n_classes, d)) * global_amp  # level 3
    y = rng.integers(0, n_classes, n_samples)
    x = rng.standard_normal((n_samples, seq_len, d)) * noise
    x += bias[y][:, None, :]
    for i in range(n_samples):
        c = y[i]
        for p in rng.choice(8, size=rng.integers(2, 5), replace=False):
            t0 = rng.integers(0, seq_len - 5 + 1)
            x[i, t0 : t0 + 5] += patterns[c, p]
        for q in range(4):
            pos = int(np.clip((q + 0.5) * seq_len / 4 + rng.integers(-2, 3), 0, seq_len - 1))
            x[i, pos] += markers[c, q]
    return x.astype(np.float32), y.astype(np.int64)


def long_range(
    n_samples: int = 3000,
    seq_len: int = 128,
    d: int = 32,
    n_classes: int = 10,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's long-range dependency task (see module docstring)."""
    if seq_len < 16:
        raise RsgnError(f"long-range task needs seq_len >= 16, got {seq_len}")
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((n_classes, 8, d)) * 0.5
    y = rng.integers(0, n_classes, n_samples)
    x = rng.standard_normal((n_samples, seq_len, d)) * noise
    x[:, :8] += patterns[y]
    x[:, -8:] += patterns[y]
    return x.astype(np.float32), y.astype(np.int64)


def split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random split into (x_train, y_train, x_val, y_val)."""
    n = len(y)
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_val < 1:
        raise RsgnError(f"too few samples ({n}) for a validation fraction of {val_fraction}")
    va, tr = perm[:n_val], perm[n_val:]
    return x[tr], y[tr], x[va], y[va]


def _take(t: torch.Tensor | None, idx: np.ndarray) -> torch.Tensor | None:
    return None if t is None else t[torch.from_numpy(idx)]


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified (keep, held) index arrays: from each class of n_c >= 2 samples
    max(1, round(fraction n_c)) are held out (at most n_c - 1), none from a class of one."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) >= 2:
            held.append(idx[: min(len(idx) - 1, max(1, round(fraction * len(idx))))])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(y)), out)
    return keep, out


def with_selection(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """``ds`` with a selection split carved from its training split (:func:`stratified_split`,
    seed ``seed``); unchanged when ``fraction`` is 0 or it already has one."""
    if fraction == 0 or ds.y_select is not None:
        return ds
    keep, held = stratified_split(ds.y_train.numpy(), fraction, seed)
    if len(held) == 0:
        raise RsgnError(
            f"{ds.name}: no class has two training samples, so no selection split can be "
            "carved (set data.select_fraction=0)"
        )
    return dataclasses.replace(
        ds,
        x_train=_take(ds.x_train, keep),
        y_train=_take(ds.y_train, keep),
        len_train=_take(ds.len_train, keep),
        x_select=_take(ds.x_train, held),
        y_select=_take(ds.y_train, held),
        len_select=_take(ds.len_train, held),
    )


def znormalise(
    x_train: np.ndarray, len_train: np.ndarray | None, *others: tuple[np.ndarray, np.ndarray | None]
) -> list[np.ndarray]:
    """Each channel c as (x - mu_c) / sd_c, mu and sd over the training split's real steps
    (sd 0 -> 1); padded steps stay 0. Returns the training array then ``others``' arrays."""
    mask = _steps_mask(x_train, len_train)
    vals = x_train[mask]  # [real steps, F]
    mu, sd = vals.mean(0), vals.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    out = []
    for x, lens in ((x_train, len_train), *others):
        m = _steps_mask(x, lens)[..., None]
        out.append(np.where(m, (x - mu) / sd, 0.0).astype(np.float32))
    return out


def _steps_mask(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    if lengths is None:
        return np.ones(x.shape[:2], dtype=bool)
    return np.arange(x.shape[1])[None, :] < lengths[:, None]


def tokenise(
    x: torch.Tensor, lengths: torch.Tensor | None, patch_len: int = 1, time_channel: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Tokens from steps. Patches: token t' = [x_{kt'}, ..., x_{kt'+k-1}] (k = ``patch_len``,
    k F features, padded steps and the fill of the last patch are 0), T' = ceil(T / k) tokens,
    and a series of L real steps has ceil(L / k) real tokens. Time channel: one more feature,
    the standardised token index tau_t' = (t' - (T' - 1) / 2) / sqrt((T'^2 - 1) / 12) (mean 0,
    variance 1 over t' = 0..T'-1; 0 when T' = 1) on real tokens, 0 on padding.
    Returns (tokens [n, T', k F (+1)], token lengths or None)."""
    n, t, f = x.shape
    if patch_len > 1:
        if lengths is not None:  # padded steps never leak into a real token
            x = x * (torch.arange(t)[None, :] < lengths[:, None]).unsqueeze(-1).to(x.dtype)
        t2 = -(-t // patch_len)
        x = F.pad(x, (0, 0, 0, t2 * patch_len - t)).reshape(n, t2, patch_len * f)
        if lengths is not None:
            lengths = (lengths + patch_len - 1) // patch_len
        t = t2
    if time_channel:
        tau = (torch.arange(t, dtype=torch.float64) - (t - 1) / 2) / max(t * t - 1, 1) ** 0.5
        tau = (tau * 12**0.5).to(x.dtype).view(1, t, 1).expand(n, t, 1)
        if lengths is not None:
            tau = tau * (torch.arange(t)[None, :] < lengths[:, None]).unsqueeze(-1)
        x = torch.cat([x, tau], 2)
    return x, lengths


def with_tokens(ds: Dataset, cfg: DataConfig) -> Dataset:
    """``ds`` with every split tokenised by ``cfg.patch_len`` and ``cfg.time_channel``
    (:func:`tokenise`); ``ds`` itself when both are off."""
    if cfg.patch_len == 1 and not cfg.time_channel:
        return ds
    out = {}
    for split in ("train", "select", "val"):
        x, lens = getattr(ds, f"x_{split}"), getattr(ds, f"len_{split}")
        if x is not None:
            out[f"x_{split}"], out[f"len_{split}"] = tokenise(
                x, lens, cfg.patch_len, cfg.time_channel
            )
    return dataclasses.replace(ds, **out)


def make_task(name: str, cfg: DataConfig | None = None, seed: int = 0) -> Dataset:
    """Build a built-in task (or ``aeon:NAME``, :func:`rsgn.aeon_data.load_aeon`); ``cfg``
    overrides sample count, length and noise, and tokenises (:func:`with_tokens`)."""
    cfg = cfg or DataConfig()
    if name.startswith("aeon:"):
        from rsgn.aeon_data import load_aeon

        return with_tokens(load_aeon(name.split(":", 1)[1], znorm=cfg.znorm), cfg)
    kw = {}
    if cfg.n_samples is not None:
        kw["n_samples"] = cfg.n_samples
    if cfg.seq_len is not None:
        kw["seq_len"] = cfg.seq_len
    if cfg.noise is not None:
        kw["noise"] = cfg.noise
    if name == "hierarchical":
        x, y = hierarchical(seed=seed, **kw)
        n_classes = 20
    elif name == "long-range":
        x, y = long_range(seed=seed, **kw)
        n_classes = 10
    else:
        raise RsgnError(f"unknown task {name!r} (known: {', '.join(TASKS)}, aeon:NAME)")
    xt, yt, xv, yv = split(x, y, cfg.val_fraction, seed)
    ds = Dataset(name, *map(torch.from_numpy, (xt, yt, xv, yv)), n_classes=n_classes)
    return with_tokens(ds, cfg)


def load_data(
    cfg: DataConfig,
    *,
    task: str | None = None,
    npz: str | Path | None = None,
    seed: int = 0,
    n_classes: int | None = None,
) -> Dataset:
    """The data set a run's ``data`` configuration describes: the built-in or ``aeon:`` task
    ``task`` (:func:`make_task`) or the user file ``npz`` (:func:`load_npz` with the config's
    ``val_fraction`` and ``znorm``), exactly one of them, tokenised by the config
    (:func:`with_tokens`). Every command that rebuilds a run's
    data (train, compare, sweep) goes through here, so a checkpoint is evaluated on data
    prepared as it was trained on."""
    if (task is None) == (npz is None):
        raise RsgnError("give exactly one of a task and an .npz file")
    if task is not None:
        return make_task(task, cfg, seed=seed)
    ds = load_npz(
        npz, seed=seed, val_fraction=cfg.val_fraction, n_classes=n_classes, znorm=cfg.znorm
    )
    return with_tokens(ds, cfg)


def _check_xy(x: np.ndarray, y: np.ndarray, xname: str, yname: str, path: Path) -> None:
    if x.ndim != 3:
        raise RsgnError(f"{path}: {xname} must have shape [n, T, F], got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise RsgnError(f"{path}: {xname} must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        bad = int((~np.isfinite(x)).sum())
        raise RsgnError(f"{path}: {xname} contains {bad} NaN or infinite values")
    if y.ndim != 1:
        raise RsgnError(f"{path}: {yname} must have shape [n], got {y.shape}")
    if len(y) != len(x):
        raise RsgnError(f"{path}: {xname} has {len(x)} samples but {yname} has {len(y)}")
    if len(y) == 0:
        raise RsgnError(f"{path}: {xname} is empty")
    if not np.issubdtype(y.dtype, np.integer):
        if (
            np.issubdtype(y.dtype, np.floating)
            and np.all(np.isfinite(y))
            and np.all(y == np.round(y))
        ):
            return
        raise RsgnError(f"{path}: {yname} must hold integer class labels, got dtype {y.dtype}")


def _check_lengths(arrays: dict, key: str, x: np.ndarray, p: Path) -> np.ndarray | None:
    if key not in arrays:
        return None
    lens = arrays[key]
    if lens.ndim != 1 or len(lens) != len(x):
        raise RsgnError(f"{p}: {key} must have shape [{len(x)}], got {lens.shape}")
    if not np.issubdtype(lens.dtype, np.integer):
        raise RsgnError(f"{p}: {key} must hold integers, got dtype {lens.dtype}")
    if len(lens) and (lens.min() < 1 or lens.max() > x.shape[1]):
        raise RsgnError(
            f"{p}: {key} must lie in [1, {x.shape[1]}] (the padded length), found "
            f"{int(lens.min())}..{int(lens.max())}"
        )
    return lens.astype(np.int64)


def load_npz(
    path: str | Path,
    seed: int = 0,
    val_fraction: float = 0.2,
    n_classes: int | None = None,
    znorm: bool = False,
) -> Dataset:
    """Load user data. ``n_classes`` (e.g. from a checkpoint) bounds the labels; ``znorm``
    normalises with the training split's statistics (:func:`znormalise`)."""
    p = Path(path)
    if not p.is_file():
        raise RsgnError(f"data file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise RsgnError(f"{p} is not a readable .npz file ({exc})") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise RsgnError(f"{p}: missing array '{key}' (found: {', '.join(arrays) or 'none'})")
    x, y = arrays["X"], arrays["y"]
    _check_xy(x, y, "X", "y", p)
    has_val = "X_val" in arrays or "y_val" in arrays
    if has_val:
        if not ("X_val" in arrays and "y_val" in arrays):
            raise RsgnError(f"{p}: X_val and y_val must be given together")
        xv, yv = arrays["X_val"], arrays["y_val"]
        _check_xy(xv, yv, "X_val", "y_val", p)
        if xv.shape[1:] != x.shape[1:]:
            raise RsgnError(
                f"{p}: X_val has shape {xv.shape[1:]} per sample but X has {x.shape[1:]}"
            )
    y = y.astype(np.int64)
    labels = [y] + ([arrays["y_val"].astype(np.int64)] if has_val else [])
    lo = min(int(v.min()) for v in labels)
    hi = max(int(v.max()) for v in labels)
    if lo < 0:
        raise RsgnError(f"{p}: labels must be non-negative, found {lo}")
    if n_classes is not None and hi >= n_classes:
        raise RsgnError(f"{p}: label {hi} is out of range for a model with {n_classes} classes")
    k = n_classes if n_classes is not None else hi + 1
    if k < 2:
        raise RsgnError(f"{p}: need at least 2 classes, labels span only {k}")
    x = x.astype(np.float32)
    lens = _check_lengths(arrays, "lengths", x, p)
    if "lengths_val" in arrays and not has_val:
        raise RsgnError(f"{p}: lengths_val needs X_val and y_val")
    if has_val:
        xt, yt, xv, yv = x, y, arrays["X_val"].astype(np.float32), arrays["y_val"].astype(np.int64)
        lt, lv = lens, _check_lengths(arrays, "lengths_val", xv, p)
        if (lt is None) != (lv is None):
            raise RsgnError(f"{p}: lengths and lengths_val must be given together")
    else:
        n = len(y)
        perm = np.random.default_rng(seed).permutation(n)
        xt, yt, xv, yv = split(x, y, val_fraction, seed)
        n_val = n - len(yt)
        lt = None if lens is None else lens[perm[n_val:]]
        lv = None if lens is None else lens[perm[:n_val]]
    if znorm:
        xt, xv = znormalise(xt, lt, (xv, lv))
    return Dataset(
        p.stem,
        *map(torch.from_numpy, (xt, yt, xv, yv)),
        n_classes=k,
        len_train=None if lt is None else torch.from_numpy(lt),
        len_val=None if lv is None else torch.from_numpy(lv),
    )


def check_features(ds: Dataset, d_in: int) -> None:
    """Refuse data whose feature width differs from the model's."""
    if ds.d_in != d_in:
        raise RsgnError(f"data has {ds.d_in} features per step but the model expects {d_in}")


MIN_VALIDATION = 10
"""Fewest validation samples a training accepts: below it, its accuracy says nothing."""


def check_trainable(ds: Dataset) -> list[str]:
    """Refuse data too small to validate on (fewer than :data:`MIN_VALIDATION` validation
    samples: an RsgnError); return warnings for what is legal but likely a mistake (class ids
    that never occur: labels {0, 1, 2, 7} make an 8-class model)."""
    n_val = len(ds.y_val)
    if n_val < MIN_VALIDATION:
        raise RsgnError(
            f"{ds.name}: {n_val} validation sample(s) is too few to validate on (need at least "
            f"{MIN_VALIDATION}): give more data, a larger data.val_fraction, or X_val / y_val"
        )
    seen = set(torch.cat([ds.y_train, ds.y_val]).unique().tolist())
    missing = [c for c in range(ds.n_classes) if c not in seen]
    if not missing:
        return []
    shown = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
    return [
        f"{ds.name}: class ids {shown} never occur in the labels, yet the model gets "
        f"{ds.n_classes} outputs (labels are used as class ids 0 .. max label); relabel to "
        "0 .. k-1 if that is not intended"
    ]
