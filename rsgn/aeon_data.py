"""Standard classification sets bundled inside the aeon package (``--task aeon:NAME``).

Only the ``.ts`` files shipped in aeon's wheel (``aeon/datasets/data/NAME/NAME_TRAIN.ts`` and
``NAME_TEST.ts``) are read: nothing is downloaded. The official train/test split is kept: the
test split is the :class:`~rsgn.data.Dataset`'s reported split (``reported_split = 'test'``).
A set of unequal-length series is zero-padded to its longest series, with ``lengths`` per
sample. Labels are the sorted distinct training labels, numbered 0..C-1.

aeon is an optional dependency (``pip install 'rsgn[data]'``); without it, or for a set that
aeon does not ship, the loader raises :class:`~rsgn.errors.RsgnError` naming the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rsgn.data import Dataset, znormalise
from rsgn.errors import RsgnError


def aeon_data_dir() -> Path:
    """The folder of the data sets bundled with the installed aeon."""
    try:
        import aeon.datasets
    except ImportError:
        raise RsgnError(
            "aeon:NAME data sets need the aeon package: pip install 'rsgn[data]'"
        ) from None
    return Path(aeon.datasets.__file__).parent / "data"


def bundled_sets() -> list[str]:
    """Names of the bundled sets that have both a ``_TRAIN.ts`` and a ``_TEST.ts`` file."""
    root = aeon_data_dir()
    return sorted(
        p.name
        for p in root.iterdir()
        if (p / f"{p.name}_TRAIN.ts").is_file() and (p / f"{p.name}_TEST.ts").is_file()
    )


def _read(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Series as [T_i, C] float arrays and their string labels."""
    from aeon.datasets import load_from_ts_file

    x, y = load_from_ts_file(str(path))
    series = [np.asarray(s, dtype=np.float64).T for s in x]  # [C, T] -> [T, C]
    return series, np.asarray(y).astype(str)


def pad(series: list[np.ndarray], t: int) -> tuple[np.ndarray, np.ndarray]:
    """Series [T_i, C] zero-padded to [n, t, C] float32, and their lengths [n] int64."""
    lens = np.array([len(s) for s in series], dtype=np.int64)
    out = np.zeros((len(series), t, series[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(series):
        out[i, : len(s)] = s
    return out, lens


def load_aeon(name: str, *, znorm: bool = False) -> Dataset:
    """Bundled aeon set ``name`` with its official train/test split; ``znorm`` normalises each
    channel with the training split's statistics (:func:`rsgn.data.znormalise`). ``lengths``
    are kept only when the series differ in length."""
    root = aeon_data_dir()
    train, test = root / name / f"{name}_TRAIN.ts", root / name / f"{name}_TEST.ts"
    if not (train.is_file() and test.is_file()):
        raise RsgnError(
            f"aeon:{name} is not bundled with the installed aeon (bundled: "
            f"{', '.join(bundled_sets())}); nothing is downloaded"
        )
    s_tr, lab_tr = _read(train)
    s_te, lab_te = _read(test)
    classes = sorted(set(lab_tr))
    unknown = sorted(set(lab_te) - set(classes))
    if unknown:
        raise RsgnError(f"aeon:{name}: test labels {unknown} do not occur in the training split")
    if len(classes) < 2:
        raise RsgnError(f"aeon:{name}: need at least 2 classes, found {len(classes)}")
    for s in s_tr + s_te:
        if not np.all(np.isfinite(s)):
            raise RsgnError(f"aeon:{name} has missing values, which rsgn does not handle")
    t = max(len(s) for s in s_tr + s_te)
    xt, lt = pad(s_tr, t)
    xv, lv = pad(s_te, t)
    ragged = bool((lt != t).any() or (lv != t).any())
    if znorm:
        xt, xv = znormalise(xt, lt, (xv, lv))
    code = {c: i for i, c in enumerate(classes)}
    yt = np.array([code[c] for c in lab_tr], dtype=np.int64)
    yv = np.array([code[c] for c in lab_te], dtype=np.int64)
    return Dataset(
        f"aeon:{name}",
        *map(torch.from_numpy, (xt, yt, xv, yv)),
        n_classes=len(classes),
        len_train=torch.from_numpy(lt) if ragged else None,
        len_val=torch.from_numpy(lv) if ragged else None,
        reported_split="test",
    )
