"""Training: AdamW + cosine schedule + gradient clipping (fast), Hebbian rules (slow),
temperature annealing, per-epoch checkpoints for resuming, and ``metrics.json``.

Generalisation (:mod:`rsgn.generalise`, on by default for every model): a selection split
carved from the training data chooses the checkpoint (the reported split never chooses
anything), early stopping, a minimum number of optimiser steps, weight decay and optional
time-series augmentation; ``--config paper`` trains as the paper did.

The same loop trains the baselines of :mod:`rsgn.baselines` (``model_name``): same optimiser,
schedule, clipping, data order, progress lines, checkpoints and resume, without backend,
Hebbian rules or temperature; the MoE's load-balancing loss is added to the cross-entropy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import torch
import torch.nn.functional as F

from rsgn.backends import get_backend
from rsgn.checkpoint import (
    CKPT_NAME,
    atomic_write_json,
    load_model,
    read_checkpoint,
    save_checkpoint,
    versions,
)
from rsgn.config import RunConfig, default_lr
from rsgn.data import Dataset, check_features, with_selection
from rsgn.errors import RsgnError
from rsgn.evaluation import check_baseline_backend, evaluate
from rsgn.generalise import Selector, augment, augments, plan_schedule
from rsgn.model import RSGN
from rsgn.progress import progress


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RsgnError(f"train.device is {name!r} but no CUDA GPU is available")
    return torch.device(name)


def _make_optim(model: torch.nn.Module, cfg: RunConfig, steps_total: int, lr: float):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.train.weight_decay)
    if cfg.train.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps_total))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


LOCK_NAME = ".rsgn-train.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.rsgn-train.lock`` (created exclusively, holding this process's pid) while a
    training writes into ``out``: a second training of the same folder (a resumed study next to
    an unfinished one) fails with a one-line error instead of interleaving checkpoints. A lock
    whose process is gone is taken over. Removes the lock, and ``out`` if this call created it
    and it stayed empty."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = -1
            if pid > 0 and pid != os.getpid() and _pid_alive(pid):
                raise RsgnError(
                    f"{out} is being trained by process {pid} (lock {lock}): wait for it or "
                    "stop it first"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise RsgnError(f"could not take the lock {lock}")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()


@contextlib.contextmanager
def _deterministic(on: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(True)`` for the block when ``on`` and not already
    set by the caller; switched off again afterwards."""
    if not on or torch.are_deterministic_algorithms_enabled():
        yield
        return
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False)


def train(
    cfg: RunConfig,
    ds: Dataset,
    out_dir: str | Path,
    *,
    backend: str | None = None,
    preset: str | None = None,
    resume: bool = False,
    log: TextIO | None = sys.stderr,
    model: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train a model on ``ds``; write ``out_dir/checkpoint.pt`` and ``out_dir/metrics.json``.

    ``model`` is ``rsgn`` (default) or a name in :data:`rsgn.baselines.BASELINES`, built with
    ``model_kwargs``. Refuses to overwrite an existing run unless ``resume`` is set; with
    ``resume`` it continues from the last completed epoch (same data order, optimiser and
    schedule) of the checkpoint's own model and config: ``cfg`` must equal the saved config
    except for a longer ``train.epochs``, which extends the run (:func:`resume_config`), and
    ``ds`` must be the data the run was trained on; a complete run returns its metrics
    untouched. Holds :func:`run_lock` on ``out_dir`` throughout.
    """
    out = Path(out_dir)
    with (
        run_lock(out),
        _deterministic(cfg.train.deterministic and resolve_device(cfg.train.device).type == "cpu"),
    ):
        return _train(cfg, ds, out, backend, preset, resume, log, model, model_kwargs)


def data_fingerprint(ds: Dataset) -> str:
    """SHA-256 (16 hex digits) of the data set's tensors: what a run was trained on."""
    h = hashlib.sha256()
    for t in (ds.x_train, ds.y_train, ds.x_val, ds.y_val):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def resume_config(saved: RunConfig, requested: RunConfig, where: str) -> RunConfig:
    """The config a resumed run continues with: the saved run's own, unchanged, except a
    longer ``train.epochs`` (the run is extended). Any other difference is an RsgnError that
    names every changed key: ``--resume`` continues the same run, it does not start another."""
    old, new = saved.to_dict(), requested.to_dict()
    changed = [
        f"{sec}.{key} ({old[sec][key]!r} -> {new[sec][key]!r})"
        for sec in old
        for key in old[sec]
        if old[sec][key] != new[sec][key]
        and not ((sec, key) == ("train", "epochs") and new[sec][key] > old[sec][key])
    ]
    if changed:
        raise RsgnError(
            f"{where} is a run with other settings: {', '.join(changed)}; --resume continues "
            "the same run (only a longer --epochs may extend it): start another run with a "
            "new --out"
        )
    out = RunConfig.from_dict(old, where=where)
    out.train.epochs = requested.train.epochs
    return out


def _extend_schedule(sched: Any, total_steps: int, done: int) -> None:
    """Stretch a resumed cosine schedule to ``total_steps``: the learning rate continues from
    the cosine of the new length at step ``done`` (it rises back from the end of the shorter
    schedule)."""
    if not isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR):
        return
    sched.T_max = max(1, total_steps)
    for g, base in zip(sched.optimizer.param_groups, sched.base_lrs, strict=True):
        g["lr"] = sched.eta_min + (base - sched.eta_min) * 0.5 * (
            1 + math.cos(math.pi * done / sched.T_max)
        )
    sched._last_lr = [g["lr"] for g in sched.optimizer.param_groups]


def _resolve_ops(name: str, backend: str | None, preset: str | None) -> tuple[Any, Any]:
    """The op table a model trains with and the target it is validated on: the RSGN trains
    with a differentiable target's ``ops`` (and is validated on that target with its
    options); baselines on plain torch."""
    if name != "rsgn":
        check_baseline_backend(backend, preset)
        return None, "torch"
    be = get_backend(backend, preset=preset)
    if be.ops is None:
        raise RsgnError(f"backend {be.name!r} is not differentiable: train on torch or triton")
    return be.ops, be


def _build(name: str, ds: Dataset, cfg: RunConfig, model_kwargs: dict[str, Any] | None):
    from rsgn.baselines import build_baseline

    if name == "rsgn":
        if model_kwargs:
            raise RsgnError("model arguments apply to baselines; set RSGN options with model.KEY")
        return RSGN(ds.d_in, ds.n_classes, cfg.model)
    return build_baseline(name, ds.d_in, ds.n_classes, ds.seq_len, **(model_kwargs or {}))


def _train(cfg, ds, out_dir, backend, preset, resume, log, model, model_kwargs) -> dict[str, Any]:
    """:func:`train`'s body, inside the run lock and the deterministic-algorithms context."""
    from rsgn.baselines import BASELINES

    out = Path(out_dir)
    ckpt_path = out / CKPT_NAME
    resuming = resume and ckpt_path.exists()
    if resuming:
        saved = _saved_model_name(ckpt_path)
        if model is not None and model != saved:
            raise RsgnError(f"{out} holds a {saved!r} run: --model {model} does not match it")
        name = saved
    else:
        name = model or "rsgn"
    if name != "rsgn" and name not in BASELINES:
        raise RsgnError(f"unknown model {name!r} (known: {', '.join(('rsgn', *BASELINES))})")
    ops_table, target = _resolve_ops(name, backend, preset)
    device = resolve_device(cfg.train.device)
    history: list[dict[str, Any]] = []
    start_epoch, train_seconds, n_steps_done = 0, 0.0, 0

    if ckpt_path.exists() and not resume:
        raise RsgnError(
            f"{out} already holds a run: pass --resume to continue it or choose another --out"
        )
    fingerprint = data_fingerprint(ds)  # the data as given, before the selection split
    if resuming:
        # the same run: other settings are refused, a longer --epochs extends it
        net, saved_cfg, payload = load_model(ckpt_path)
        cfg = resume_config(saved_cfg, cfg, str(out))
        saved_data = payload.get("data", {}).get("fingerprint")
        if saved_data is not None and saved_data != data_fingerprint(ds):
            raise RsgnError(
                f"{out} was trained on other data than {ds.name!r}: --resume continues the same "
                "run on the same data (evaluate on other data with rsgn eval)"
            )
        check_features(ds, net.d_in)
        net.to(device)
        ds = with_selection(ds, cfg.data.select_fraction, cfg.train.seed)
        plan = plan_schedule(len(ds.y_train), cfg.train)
        lr = cfg.train.lr if cfg.train.lr is not None else default_lr(name)
        opt, sched = _make_optim(net, cfg, plan.total_steps, lr)
        start_epoch = int(payload.get("epoch", 0))
        history = list(payload.get("history", []))
        train_seconds = float(payload.get("train_seconds", 0.0))
        n_steps_done = int(payload.get("train_steps", 0))
        if "optimizer" in payload:
            opt.load_state_dict(payload["optimizer"])
            sched.load_state_dict(payload["scheduler"])
            saved_plan = plan_schedule(len(ds.y_train), saved_cfg.train)
            if plan.total_steps > saved_plan.total_steps:
                _extend_schedule(sched, plan.total_steps, n_steps_done)
        done = start_epoch >= plan.epochs or bool(payload.get("stopped_early", False))
        if done and (out / "metrics.json").is_file():
            if log:
                print(f"{out} is complete ({start_epoch} epochs): nothing to do", file=log)
            return json.loads((out / "metrics.json").read_text())
        if isinstance(payload.get("rng_state"), torch.Tensor):  # absent in older checkpoints
            torch.set_rng_state(payload["rng_state"])
        if device.type == "cuda" and isinstance(payload.get("cuda_rng_state"), torch.Tensor):
            torch.cuda.set_rng_state(payload["cuda_rng_state"], device)
        if log:
            print(f"resuming {out} at epoch {start_epoch}/{plan.epochs}", file=log)
    else:
        torch.manual_seed(cfg.train.seed)
        net = _build(name, ds, cfg, model_kwargs).to(device)
        ds = with_selection(ds, cfg.data.select_fraction, cfg.train.seed)
        plan = plan_schedule(len(ds.y_train), cfg.train)
        lr = cfg.train.lr if cfg.train.lr is not None else default_lr(name)
        opt, sched = _make_optim(net, cfg, plan.total_steps, lr)
        payload = {}

    selector = Selector(cfg.train.patience, cfg.train.min_steps)
    selector.load(payload.get("selection", {}))
    last_eval_step = int(payload.get("last_eval_step", 0))
    stopped = bool(payload.get("stopped_early", False))
    epoch = start_epoch
    while epoch < plan.epochs and not stopped:
        net.train()
        annealed = net.begin_epoch(epoch, plan.epochs)
        t_epoch = time.perf_counter()
        rec, n_steps_done = _run_epoch(
            net, opt, sched, ds, cfg, epoch, ops_table, n_steps_done, plan.epochs, log is not None
        )
        slow = net.epoch_end(ops_table)
        epoch_time = time.perf_counter() - t_epoch
        train_seconds += epoch_time
        epoch += 1
        rec = {"epoch": epoch, "step": n_steps_done, **rec}
        due = n_steps_done - last_eval_step >= cfg.train.eval_interval or epoch == plan.epochs
        if due:
            last_eval_step = n_steps_done
            rec.update(_evaluate_splits(net, ds, target, cfg))
            if ds.y_select is not None:
                selector.update(
                    net, rec["select_accuracy"], rec["select_loss"], epoch, n_steps_done
                )
                stopped = selector.should_stop(n_steps_done)
        rec.update({**annealed, "seconds": epoch_time, **{f"slow_{k}": v for k, v in slow.items()}})
        history.append(rec)
        if log:
            _log_epoch(log, rec, plan.epochs, annealed)
        state = {
            "epoch": epoch,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "history": history,
            "train_seconds": train_seconds,
            "train_steps": n_steps_done,
            "complete": epoch == plan.epochs or stopped,
            "selection": selector.state(),
            "last_eval_step": last_eval_step,
            "stopped_early": stopped,
            "data": {"name": ds.name, "fingerprint": fingerprint},
            # the global generator (dropout masks, Hebbian sprouting): a resumed run
            # draws what the uninterrupted one would have drawn
            "rng_state": torch.get_rng_state(),
            **(
                {"cuda_rng_state": torch.cuda.get_rng_state(device)}
                if device.type == "cuda"
                else {}
            ),
        }
        save_checkpoint(ckpt_path, net, cfg, state)

    if ds.y_select is not None and selector.best_weights is not None:
        # the reported model is the selected one: the checkpoint holds its weights
        selector.restore(net)
        saved = read_checkpoint(ckpt_path)
        keep = {k: v for k, v in saved.items() if k not in _CHECKPOINT_OWN}
        save_checkpoint(ckpt_path, net, cfg, {**keep, "restored_best": True})
    final = evaluate(
        net, ds.x_val, ds.y_val, target, batch_size=cfg.train.eval_batch_size, lengths=ds.len_val
    )
    metrics = {
        "task": ds.name,
        "model": name,
        "backend": target if isinstance(target, str) else target.name,
        "accuracy": final.accuracy,
        "val_loss": final.loss,
        "reported_split": ds.reported_split,
        "splits": ds.splits(),
        "selection": _selection_summary(selector, ds, history, stopped),
        "params": net.n_params(),
        "active_fraction": final.active_fraction,
        "active_fraction_per_step": final.report.active_fraction_per_step,
        "energy_per_inference": final.report.to_dict().get("energy_per_inference"),
        "seconds_per_step": train_seconds / max(1, n_steps_done),
        "train_seconds": train_seconds,
        "epochs": cfg.train.epochs,
        "epochs_planned": plan.epochs,
        "epochs_run": len(history),
        "train_steps": n_steps_done,
        "lr": lr,
        "n_train": len(ds.y_train),
        "n_select": ds.splits()["select"],
        "n_val": len(ds.y_val),
        "history": history,
        "config": cfg.to_dict(),
        "versions": versions(),
        "model_args": net.model_args(),
        **final.extra,
    }
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def _run_epoch(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    ds: Dataset,
    cfg: RunConfig,
    epoch: int,
    ops_table: Any,
    n_steps: int,
    epochs: int,
    show_progress: bool,
) -> tuple[dict[str, float], int]:
    """One pass over the training split in a seeded order (augmented when asked): the
    epoch's training figures and the updated step count."""
    device = next(net.parameters()).device
    tc = cfg.train
    xt, yt = ds.x_train.to(device), ds.y_train.to(device)
    lt = None if ds.len_train is None else ds.len_train.to(device)
    gen = torch.Generator().manual_seed(tc.seed * 100003 + epoch)
    perm = torch.randperm(len(yt), generator=gen).to(device)
    aug_gen = (
        torch.Generator().manual_seed(tc.seed * 100003 + epoch + 7_777_777)
        if augments(tc)
        else None
    )
    loss_sum, correct, seen, frac_sum, aux_sum, n_aux = 0.0, 0, 0, 0.0, 0.0, 0
    starts = range(0, len(yt), tc.batch_size)
    desc = f"epoch {epoch + 1}/{epochs}"
    for s in progress(starts, total=len(starts), desc=desc, show=show_progress):
        idx = perm[s : s + tc.batch_size]
        xb, yb = xt[idx], yt[idx]
        lb = None if lt is None else lt[idx]
        if aug_gen is not None:
            xb, lb = augment(xb, lb, tc, aug_gen)
        step = net.train_step(xb, ops_table) if lb is None else net.train_step(xb, ops_table, lb)
        loss = F.cross_entropy(step.logits, yb)
        objective = loss + step.regulariser
        if not torch.isfinite(objective):
            raise RsgnError(f"training diverged at epoch {epoch + 1}: loss is {loss.item()}")
        opt.zero_grad(set_to_none=True)
        objective.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
        opt.step()
        sched.step()
        net.after_batch(step, loss.item())
        loss_sum += loss.item() * len(yb)
        correct += int((step.logits.argmax(1) == yb).sum())
        seen += len(yb)
        frac_sum += step.active_fraction * len(yb)
        if step.aux_loss is not None:
            aux_sum, n_aux = aux_sum + step.aux_loss * len(yb), n_aux + len(yb)
        n_steps += 1
    rec = {
        "train_loss": loss_sum / seen,
        "train_accuracy": correct / seen,
        "train_active_fraction": frac_sum / seen,
    }
    if n_aux:
        rec["train_aux_loss"] = aux_sum / n_aux
    return rec, n_steps


def _evaluate_splits(net: torch.nn.Module, ds: Dataset, target: Any, cfg: RunConfig) -> dict:
    """The selection split's figures (chooses the model) and the reported split's (recorded
    only, under the ``val_`` keys)."""
    bs = cfg.train.eval_batch_size
    rec: dict[str, float] = {}
    if ds.y_select is not None:
        sel = evaluate(net, ds.x_select, ds.y_select, target, batch_size=bs, lengths=ds.len_select)
        rec.update(select_accuracy=sel.accuracy, select_loss=sel.loss)
    val = evaluate(net, ds.x_val, ds.y_val, target, batch_size=bs, lengths=ds.len_val)
    rec.update(
        val_accuracy=val.accuracy, val_loss=val.loss, val_active_fraction=val.active_fraction
    )
    return rec


def _selection_summary(
    selector: Selector, ds: Dataset, history: list[dict[str, Any]], stopped: bool
) -> dict[str, Any]:
    """How the reported model was chosen: on the selection split (its best evaluation) or,
    without one, the last epoch."""
    if ds.y_select is None:
        return {"by": "last epoch (no selection split)", "epoch": len(history)}
    return {
        "by": "selection split: accuracy, ties to the lower loss",
        "epoch": selector.best_epoch,
        "step": selector.best_step,
        "select_accuracy": None if selector.best is None else selector.best[0],
        "select_loss": None if selector.best is None else -selector.best[1],
        "stopped_early": stopped,
    }


def _log_epoch(log: TextIO, rec: dict[str, Any], epochs: int, annealed: dict) -> None:
    t_part = f"  T {annealed['temperature']:.2f}" if "temperature" in annealed else ""
    ev = ""
    if "select_accuracy" in rec:
        ev += f"  select {rec['select_accuracy']:.3f}"
    if "val_accuracy" in rec:
        ev += f"  val {rec['val_accuracy']:.3f}  active {rec['val_active_fraction']:.3%}"
    print(
        f"epoch {rec['epoch']:3d}/{epochs}  loss {rec['train_loss']:.4f}  "
        f"train {rec['train_accuracy']:.3f}{ev}{t_part}  {rec['seconds']:.1f}s",
        file=log,
        flush=True,
    )


_CHECKPOINT_OWN = ("format", "format_version", "model", "model_args", "config", "versions",
                   "state_dict")  # fmt: skip
"""Keys :func:`rsgn.checkpoint.save_checkpoint` writes itself."""


def _saved_model_name(ckpt_path: Path) -> str:
    """The model name recorded in a checkpoint (``rsgn`` for files that predate the field)."""
    return str(read_checkpoint(ckpt_path).get("model", "rsgn"))
