"""Shared builders and plain-numpy reference computations for the neuromorphic tests."""

from __future__ import annotations

import numpy as np

from rsgn import neuromorphic as nm


def random_graph(
    n: int, fanout: int, seed: int, w_std: float = 0.5, integer: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random directed graph without duplicate edges: (src, dst, weight)."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n, dtype=np.int64), fanout)
    dst = rng.integers(0, n, src.size)
    key = np.unique(src * n + dst)
    src, dst = key // n, key % n
    if integer is not None:
        w = rng.integers(-integer, integer + 1, src.size).astype(np.int64)
    else:
        w = rng.normal(0.0, w_std, src.size)
    return src, dst, w


def dense(src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, n), dtype=w.dtype)
    out[src, dst] = w
    return out


def one_group_net(n, model, placement, src, dst, w) -> nm.Network:
    return nm.Network(
        [nm.NeuronGroup("g", n, model, placement)], nm.SynapseList.from_arrays(src, dst, w, n)
    )


def tile_xy(topo: nm.Topology, core: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global tile coordinates of cores, computed independently of Topology's arrays."""
    chip = topo.profile.chip
    core = np.asarray(core)
    chip_id = core // chip.cores_per_chip
    tile = (core % chip.cores_per_chip) // chip.cores_per_tile
    x = (chip_id % topo.chips_x) * chip.tiles_x + tile % chip.tiles_x
    y = (chip_id // topo.chips_x) * chip.tiles_y + tile // chip.tiles_x
    return x, y


def ref_relu(W, init, ext, steps, threshold, gain=1.0, bits=None, scale=1.0, sd=None):
    """Plain numpy run of a ReLU network (float), optional payload quantisation/sigma-delta.

    Returns the (steps, N) outputs and the per-step sent payload vectors (events).
    """
    n = W.shape[0]

    def q(y):
        if bits is None:
            return y
        hi = 2 ** (bits - 1) - 1
        return np.clip(np.rint(y / scale), -hi - 1, hi) * scale

    r = np.zeros(n)
    acc = np.zeros(n)

    def encode(y):
        nonlocal r
        qy = q(y)
        if sd is None:
            return qy
        d = qy - r
        m = np.abs(d) > sd
        r = np.where(m, qy, r)
        return np.where(m, d, 0.0)

    p = encode(np.zeros(n) if init is None else init)
    outs, sent = [], [p]
    for t in range(steps):
        xs = W.T @ p
        if sd is not None:
            acc = acc + xs
            x = acc.copy()
        else:
            x = xs
        if ext is not None:
            x = x + ext[t]
        y = gain * np.maximum(x - threshold, 0.0)
        outs.append(y)
        p = encode(y)
        sent.append(p)
    return np.array(outs), sent


def ref_lif(W, ext, steps, du, dv, v_th, bias):
    """Plain numpy float CUBA LIF network (binary spikes)."""
    n = W.shape[0]
    u, v, s = np.zeros(n), np.zeros(n), np.zeros(n)
    outs = []
    for t in range(steps):
        x = W.T @ s + (ext[t] if ext is not None else 0.0)
        u = u * (1 - du) + x
        v = v * (1 - dv) + u + bias
        s = (v >= v_th).astype(float)
        v = np.where(s > 0, 0.0, v)
        outs.append(s)
    return np.array(outs)
