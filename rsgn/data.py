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
otherwise a seeded 80/20 split. Every problem (NaN/inf, wrong rank, mismatched lengths,
non-integer or negative labels) raises :class:`~rsgn.errors.RsgnError` naming it.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rsgn.config import DataConfig
from rsgn.errors import RsgnError


@dataclass
class Dataset:
    """Train/validation tensors: X [n, T, F] float32, y [n] int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int

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


def make_task(name: str, cfg: DataConfig | None = None, seed: int = 0) -> Dataset:
    """Build a built-in task; ``cfg`` overrides sample count, length and noise."""
    cfg = cfg or DataConfig()
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
        raise RsgnError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    xt, yt, xv, yv = split(x, y, cfg.val_fraction, seed)
    return Dataset(name, *map(torch.from_numpy, (xt, yt, xv, yv)), n_classes=n_classes)


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


def load_npz(
    path: str | Path, seed: int = 0, val_fraction: float = 0.2, n_classes: int | None = None
) -> Dataset:
    """Load user data. ``n_classes`` (e.g. from a checkpoint) bounds the labels."""
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
    if has_val:
        xt, yt, xv, yv = x, y, arrays["X_val"].astype(np.float32), arrays["y_val"].astype(np.int64)
    else:
        xt, yt, xv, yv = split(x, y, val_fraction, seed)
    return Dataset(p.stem, *map(torch.from_numpy, (xt, yt, xv, yv)), n_classes=k)


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
