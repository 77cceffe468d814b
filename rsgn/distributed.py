"""Data-parallel training over several processes: torch.distributed with
``DistributedDataParallel`` (gloo on the CPU, NCCL on CUDA GPUs).

Launch
------
``rsgn train ... --nproc N`` spawns N worker processes on this machine (:func:`spawn`); or
``torchrun --nproc-per-node N -m rsgn.cli train ...`` starts them (one process per rank, the
usual ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` environment: :func:`from_env`).
Each rank computes with ``max(1, cores // N)`` threads unless ``OMP_NUM_THREADS`` is set.

What a run does across ranks (:mod:`rsgn.training` calls these)
---------------------------------------------------------------
- Data: every rank draws the same permutation per epoch; each global batch of
  ``train.batch_size`` samples is cut into N contiguous shards (:func:`shard`), rank r takes
  shard r. A rank whose shard would be empty (a last batch smaller than N) runs one sample
  with loss weight 0.
- Gradients: DDP averages them; each rank's loss is ``sum_local CE / n_global * N``, so the
  average is the global batch's mean cross-entropy, as in one process.
- Slow rules (Hebbian affinity, homeostasis, sprouting, drift; pruning and the topology refresh
  at the epoch end): every rank runs them on the *global* statistics, the recorded activity of
  every sample all-gathered in rank order (:func:`gather_step`) and the global mean loss, so
  ``hebb``, ``theta``, the edge lists, ``pos_v`` and the pruning state follow the same
  arithmetic on every rank. At each epoch end a digest of the parameters and buffers is
  all-gathered (:func:`sync_state`); if any rank differs (not expected: the test checks it),
  rank 0's state is broadcast and the epoch record counts it.
- Rank 0 alone evaluates, logs, and writes the checkpoint (atomically) and ``metrics.json``;
  resuming reads that one checkpoint on every rank.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from rsgn.errors import RsgnError
from rsgn.trainstep import TrainStep


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run."""

    rank: int
    world: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def backend_for(device: torch.device) -> str:
    """The collective backend for a device: NCCL on CUDA, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    """The device of a rank: ``cuda:local_rank`` for CUDA runs, the CPU otherwise."""
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RsgnError(
                f"rank {local_rank} needs GPU {local_rank} but {torch.cuda.device_count()} "
                "are visible: use --nproc at most the GPU count"
            )
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init(rank: int, world: int, device: torch.device, init_method: str) -> DistContext:
    """Join the process group (gloo or NCCL by ``device``) and return this rank's context."""
    dev = rank_device(device, _local_rank(rank))
    backend = backend_for(dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)
    return DistContext(rank=rank, world=world, device=dev, backend=backend)


def _local_rank(rank: int) -> int:
    return int(os.environ.get("LOCAL_RANK", rank))


def from_env(device: torch.device) -> DistContext | None:
    """The context of a torchrun-launched rank (``WORLD_SIZE`` > 1 in the environment), joined
    through ``env://``; None in a plain single-process run."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    if dist.is_initialized():
        return DistContext(
            rank=dist.get_rank(),
            world=dist.get_world_size(),
            device=rank_device(device, _local_rank(dist.get_rank())),
            backend=dist.get_backend(),
        )
    _threads_per_rank(int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    return init(int(os.environ["RANK"]), world, device, "env://")


def shutdown() -> None:
    """Leave the process group (if joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _threads_per_rank(nproc: int) -> None:
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))


def free_port() -> int:
    """A free TCP port on localhost for the rendezvous of :func:`spawn`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, nproc: int, port: int, device: str, fn: Callable, args: tuple) -> None:
    _threads_per_rank(nproc)
    ctx = init(rank, nproc, torch.device(device), f"tcp://127.0.0.1:{port}")
    try:
        fn(ctx, *args)
    finally:
        shutdown()


def spawn(nproc: int, device: torch.device, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(ctx, *args)`` in ``nproc`` fresh processes (spawned, not forked), one per rank,
    joined over localhost; an exception in a rank is an RsgnError carrying its last line."""
    import torch.multiprocessing as mp

    if nproc < 1:
        raise RsgnError(f"--nproc must be at least 1, got {nproc}")
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise RsgnError(
            f"--nproc {nproc} on CUDA needs {nproc} GPUs ({torch.cuda.device_count()} visible)"
        )
    try:
        mp.spawn(_worker, args=(nproc, free_port(), str(device), fn, args), nprocs=nproc)
    except mp.ProcessRaisedException as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else "a rank failed"
        if "RsgnError: " in last:
            last = last.split("RsgnError: ", 1)[1]
        raise RsgnError(f"data-parallel training failed: {last}") from None
    except mp.ProcessExitedException as exc:
        raise RsgnError(f"data-parallel training failed: {exc}") from None


# ------------------------------------------------------------------------------ one batch
def shard(idx: torch.Tensor, ctx: DistContext | None) -> tuple[torch.Tensor, float]:
    """This rank's samples of a global batch ``idx`` and its loss weight (its share of the
    global mean times the world size: 1.0 in one process). Shards are contiguous and differ
    in size by at most one; an empty shard takes the batch's first sample with weight 0."""
    if ctx is None:
        return idx, 1.0
    part = torch.tensor_split(idx, ctx.world)[ctx.rank]
    if part.numel() == 0:
        return idx[:1], 0.0
    return part, part.numel() * ctx.world / idx.numel()


class StepModule(nn.Module):
    """What DDP wraps: ``forward(x, ops_table)`` is the model's ``train_step``, returning its
    tensors (logits, regulariser) so DDP sees every output that reaches a parameter; the
    whole :class:`~rsgn.trainstep.TrainStep` is kept in ``last``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.last: TrainStep | None = None

    def forward(
        self, x: torch.Tensor, ops_table: Any, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        step = self.net.train_step(x, ops_table, lengths)
        self.last = step
        reg = step.regulariser
        return (step.logits, reg) if isinstance(reg, torch.Tensor) else (step.logits,)


def stepper(net: nn.Module, ctx: DistContext | None, *, all_used: bool) -> Callable:
    """``x, ops_table[, lengths] -> TrainStep``: the model's own ``train_step`` in one process, else
    through DistributedDataParallel (buffers are kept consistent by the slow rules on global
    statistics, not broadcast: DDP would send stale copies of the ones the rules replace).
    ``all_used``: every parameter gets a gradient every batch (the RSGN), so DDP need not
    search the graph for unused ones (the mixture of experts' idle experts)."""
    if ctx is None:
        return net.train_step
    from torch.nn.parallel import DistributedDataParallel as DDP

    module = StepModule(net)
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    ddp = DDP(
        module, device_ids=ids, forward_sync_buffers=False, find_unused_parameters=not all_used
    )

    def run(x: torch.Tensor, ops_table: Any, lengths: torch.Tensor | None = None) -> TrainStep:
        out = ddp(x, ops_table, lengths)
        last = module.last
        assert last is not None
        return dataclasses.replace(
            last, logits=out[0], regulariser=out[1] if len(out) > 1 else last.regulariser
        )

    return run


def batch_loss(
    ce: torch.Tensor, weight: float, ctx: DistContext | None
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """From per-sample cross-entropies ``ce`` of this rank's shard: (the loss this rank
    back-propagates, the global batch's mean loss, this rank's CE sum). One process: the plain
    mean. DDP: ``sum ce / n_global * world`` (0 for a weight-0 shard), whose average over
    ranks is the global mean."""
    local_sum = ce.sum() * (1.0 if weight > 0 else 0.0)
    if ctx is None:
        loss = ce.mean()
        return loss, float(loss.detach()), local_sum.detach()
    t = torch.stack([local_sum.detach(), torch.tensor(float(ce.numel() if weight > 0 else 0))])
    t = t.to(ctx.device)
    dist.all_reduce(t)
    n_global = float(t[1])
    loss = local_sum * (ctx.world / n_global)
    return loss, float(t[0]) / n_global, local_sum.detach()


def gather_step(step: TrainStep, weight: float, ctx: DistContext | None) -> TrainStep:
    """The step the slow rules read: this rank's in one process; in DDP its ``activity`` is
    every rank's recorded activity [B_global, N], all-gathered in rank order (a weight-0
    shard contributes no rows)."""
    if ctx is None or step.activity is None:
        return step
    act = step.activity.detach()
    n = torch.tensor([act.shape[0] if weight > 0 else 0], device=act.device)
    counts = [torch.zeros_like(n) for _ in range(ctx.world)]
    dist.all_gather(counts, n)
    rows = max(int(c) for c in counts)
    pad = torch.zeros(rows, act.shape[1], device=act.device, dtype=act.dtype)
    pad[: int(n)] = act[: int(n)]
    parts = [torch.empty_like(pad) for _ in range(ctx.world)]
    dist.all_gather(parts, pad)
    full = torch.cat([p[: int(c)] for p, c in zip(parts, counts, strict=True)])
    return dataclasses.replace(step, activity=full)


def all_sum(values: list[float], ctx: DistContext | None) -> list[float]:
    """Element-wise sum over ranks of a few numbers (epoch statistics)."""
    if ctx is None:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def all_true(flag: bool, ctx: DistContext | None) -> bool:
    """True when ``flag`` holds on every rank."""
    if ctx is None:
        return flag
    t = torch.tensor([0 if flag else 1], device=ctx.device)
    dist.all_reduce(t)
    return int(t) == 0


# ------------------------------------------------------------------------------ consistency
def state_digest(net: nn.Module) -> str:
    """SHA-256 (16 hex digits) of every parameter and buffer of ``net``, names included."""
    h = hashlib.sha256()
    for name, t in list(net.named_parameters()) + list(net.named_buffers()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def sync_state(net: nn.Module, ctx: DistContext | None) -> dict[str, Any]:
    """Check that every rank holds the same parameters and buffers (the slow rules' state
    included); if not, copy rank 0's to all. Returns ``{"rank_digests": [...],
    "resynced": 0 | 1}`` for the epoch record ({} in one process)."""
    if ctx is None:
        return {}
    mine = state_digest(net)
    digests: list[str | None] = [None] * ctx.world
    dist.all_gather_object(digests, mine)
    if len(set(digests)) == 1:
        return {"rank_digests": digests, "resynced": 0}
    state = [net.state_dict() if ctx.is_main else None]
    dist.broadcast_object_list(state, src=0)
    net.load_state_dict({k: v.to(ctx.device) for k, v in state[0].items()})
    return {"rank_digests": digests, "resynced": 1}


def barrier(ctx: DistContext | None) -> None:
    if ctx is not None:
        dist.barrier()
