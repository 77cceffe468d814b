"""Checkpoints and result files, written atomically.

A checkpoint holds the model name (``rsgn`` or a baseline of :mod:`rsgn.baselines`; files
without one are RSGN checkpoints), the weights, the model arguments, the full run config, the
package versions, and (while training) the optimiser/scheduler state for resuming. Files are written
to a temporary name in the same folder, flushed to disk and renamed over the target, so a
crash never leaves a half-written checkpoint and never destroys the previous one.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

import rsgn
from rsgn.config import RunConfig
from rsgn.errors import RsgnError

FORMAT = "rsgn-checkpoint"
FORMAT_VERSION = 1
CKPT_NAME = "checkpoint.pt"


def _file_mode() -> int:
    """The mode a new file gets under this process's umask (0o644 for the usual 022):
    ``mkstemp`` would leave 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename), with the file mode
    an ordinary write would give."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def versions() -> dict[str, str]:
    import numpy

    return {
        "rsgn": rsgn.__version__,
        "torch": str(torch.__version__),
        "numpy": str(numpy.__version__),
        "python": platform.python_version(),
    }


def model_name(model: torch.nn.Module) -> str:
    """``rsgn`` for the RSGN, else the baseline's ``model_name``."""
    return getattr(model, "model_name", None) or "rsgn"


def save_checkpoint(
    path: str | Path, model: torch.nn.Module, cfg: RunConfig, extra: dict[str, Any]
) -> None:
    """Atomically save model weights + args + config + versions + ``extra`` (training state)."""
    import io

    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_name(model),
        "model_args": model.model_args(),
        "config": cfg.to_dict(),
        "versions": versions(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run folder containing ``checkpoint.pt``."""
    p = Path(path)
    if p.is_dir():
        p = p / CKPT_NAME
    if not p.is_file():
        raise RsgnError(f"checkpoint not found: {p}")
    return p


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; a corrupt or incompatible file raises RsgnError."""
    p = resolve(path)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise RsgnError(f"checkpoint {p} is corrupt or unreadable ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RsgnError(f"{p} is not an rsgn checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise RsgnError(
            f"{p} has checkpoint format {payload.get('format_version')}, this rsgn reads "
            f"{FORMAT_VERSION}"
        )
    for key in ("model_args", "config", "state_dict"):
        if key not in payload:
            raise RsgnError(f"checkpoint {p} lacks '{key}'")
    return payload


# Model options added after checkpoints already existed, with the value that reproduces the
# model those checkpoints were saved from (a missing key must not take today's default).
_LEGACY_MODEL_KEYS = {
    "encoder_width": 0,
    "token_skip": False,
    "node_readout": False,
    "feature_dropout": 0.0,
}

# Training and data options added by issue 18, with the value that reproduces how earlier runs
# trained (no selection split, no early stop, epochs only, an evaluation per epoch): resuming
# an old run must not switch them on.
_LEGACY_SECTION_KEYS = {
    "train": {
        "min_steps": 0,
        "eval_interval": 0,
        "patience": 0,
        "augment_jitter": 0.0,
        "augment_scale": 0.0,
        "augment_shift": 0.0,
    },
    "data": {"select_fraction": 0.0, "znorm": False},
}

# Options removed in the v2 architecture (their ablation arms lost or nothing set them), with
# the value under which a saved model is today's model: a checkpoint at that value loads (the
# key is dropped), any other value is refused with a message naming the option.
REMOVED_MODEL_KEYS = {
    "position_code": False,
    "spark_context": 1,
    "node_code": 0,
    "readout_norm": False,
}
REMOVED_INIT_STATES = ("routed", "both", "max")


def _with_legacy_keys(config: dict, where: str = "checkpoint") -> dict:
    """The saved config with every later-added model option set to its pre-existing value and
    every removed option dropped (or refused when the saved model used it)."""
    config = {
        **config,
        **{
            sec: {**keys, **config[sec]}
            for sec, keys in _LEGACY_SECTION_KEYS.items()
            if isinstance(config.get(sec), dict) and not set(keys) & set(config[sec])
        },
    }
    model = config.get("model")
    if not isinstance(model, dict):
        return config
    model = {**_LEGACY_MODEL_KEYS, **model}
    for key, neutral in REMOVED_MODEL_KEYS.items():
        if key in model:
            value = model.pop(key)
            if value != neutral:
                raise RsgnError(
                    f"{where} uses model.{key} = {value!r}, an option removed in rsgn 0.2 (its "
                    "ablation lost); load it with rsgn 0.1"
                )
    if model.get("init_state") in REMOVED_INIT_STATES:
        raise RsgnError(
            f"{where} uses model.init_state = {model['init_state']!r}, removed in rsgn 0.2 (its "
            "ablation lost); load it with rsgn 0.1"
        )
    return {**config, "model": model}


def saved_config(config: dict, where: str = "checkpoint") -> RunConfig:
    """A saved run's config (a checkpoint's or ``metrics.json``'s ``config``) as today's
    RunConfig: options added since it was saved take the value that reproduces that run
    (:func:`_with_legacy_keys`; options whose default is the old behaviour, such as
    ``data.patch_len`` and ``data.time_channel``, their default)."""
    return RunConfig.from_dict(_with_legacy_keys(config, where), where=where)


def load_model(path: str | Path) -> tuple[torch.nn.Module, RunConfig, dict[str, Any]]:
    """Rebuild the model of a checkpoint (the RSGN or a baseline, by the recorded model name):
    returns (model, RunConfig, payload)."""
    payload = read_checkpoint(path)
    cfg = saved_config(payload["config"], str(path))
    name = payload.get("model", "rsgn")
    if name == "rsgn":
        from rsgn.model import RSGN

        model = RSGN(cfg=cfg.model, **payload["model_args"])
    else:
        from rsgn.baselines import build_baseline

        model = build_baseline(name, **payload["model_args"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RsgnError(f"checkpoint {path} does not match its model arguments: {first}") from None
    return model, cfg, payload
