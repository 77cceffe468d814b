r"""The RSGN node program: what the chip computes each step, in numpy float64.

This is the neuromorphic target's own implementation of a propagation step; it calls nothing
of :mod:`rsgn.ops`, torch or another target (tests compare it with the definition). For the
candidates C of one sample (the nodes that received an event: in the active set A or reached
from it), given their decoded inputs m_i = sum_{j -> i in A} w_ji g_j and the gate's
alpha_prev_i (alpha_i(t-1) if i was active, else 0):

    h~_i    = m_i + b_h                                                      input + bias
    a_i     = sigmoid((alpha_prev_i + gamma |h~_i| - theta_i) / T)           soft threshold
    a_i    <- a_i / (1 + beta mean_{j in R(i)} a_j)   (a_j = 0 off C)        inhibition
    A'      = top-cap of a over C (ties to the lower node id), a > eps       k-winners
    h_i     = LN(h~_i + h_i(t-1)) a_i                 on A'                  update
    g_i     = a_i W_h h_i                             on A'                  payload projection

R(i) are the in-neighbours of i within the inhibition radius (the graph's ``inh_idx`` /
``inh_valid``). The k-winners are the exact radix selection of the definition (the same
order-preserving 32-bit keys of the float32 score, ties to the lower node id): on the chip they
are found by bisection over the key space with one global count reduction per round
(:func:`k_winners`), whose round count the cost model charges; ``stat`` is the statistical
threshold mean + std Phi^-1(1 - k/n) from one reduction of (count, sum, sum of squares).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

LN_EPS = 1e-5
"""LayerNorm epsilon (that of ``torch.nn.LayerNorm``, the definition's)."""
KEY_BITS = 32


@dataclass(frozen=True)
class NodeParams:
    """The node program's constants (float64), read from the spec and its graph once
    (:func:`.mapping.node_params`)."""

    w_h: np.ndarray
    """[d, d] payload projection W_h."""
    b_h: np.ndarray
    theta: np.ndarray
    """[N] thresholds."""
    ln_w: np.ndarray
    ln_b: np.ndarray
    inh_idx: np.ndarray
    """[N, K_inh] inhibition neighbourhoods R(i)."""
    inh_valid: np.ndarray
    gamma: float
    temperature: float
    inhibition: float
    cap: int
    eps: float
    method: str

    @property
    def n_nodes(self) -> int:
        return int(self.theta.shape[0])

    @property
    def d(self) -> int:
        return int(self.b_h.shape[0])


# ------------------------------------------------------------------------------ arithmetic
def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), evaluated without overflow."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def soft_threshold(
    alpha_prev: np.ndarray,
    htilde: np.ndarray,
    theta: np.ndarray,
    *,
    gamma: float,
    temperature: float,
) -> np.ndarray:
    """a = sigmoid((alpha_prev + gamma |h~| - theta) / T), per row of h~ [M, d]."""
    norm = np.sqrt(np.einsum("md,md->m", htilde, htilde))
    return sigmoid((alpha_prev + gamma * norm - theta) / temperature)


def inhibit(
    nodes: np.ndarray,
    alpha: np.ndarray,
    inh_idx: np.ndarray,
    inh_valid: np.ndarray,
    *,
    strength: float,
) -> np.ndarray:
    """a_i / (1 + beta mean_{j in R(i)} a_j) over the candidates ``nodes`` (sorted ids), with
    a_j = 0 for a neighbour that is not a candidate; mean over |R(i)| (at least 1)."""
    if strength == 0 or nodes.size == 0:
        return alpha
    nb = inh_idx[nodes]
    valid = inh_valid[nodes]
    pos = np.minimum(np.searchsorted(nodes, nb), nodes.size - 1)
    vals = np.where(valid & (nodes[pos] == nb), alpha[pos], 0.0)
    mean = vals.sum(1) / np.maximum(valid.sum(1), 1)
    return alpha / (1.0 + strength * mean)


def layer_norm(v: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(v - mean) / sqrt(var + eps) weight + bias over the last axis (biased variance)."""
    mu = v.mean(-1, keepdims=True)
    c = v - mu
    var = (c * c).mean(-1, keepdims=True)
    return c / np.sqrt(var + LN_EPS) * weight + bias


def update(
    htilde: np.ndarray,
    h_prev: np.ndarray,
    alpha: np.ndarray,
    ln_w: np.ndarray,
    ln_b: np.ndarray,
) -> np.ndarray:
    """h = LN(h~ + h_prev) a (h_prev = 0 for a node that was not active)."""
    return layer_norm(htilde + h_prev, ln_w, ln_b) * alpha[:, None]


def project(h: np.ndarray, alpha: np.ndarray, w_h: np.ndarray) -> np.ndarray:
    """The payloads a node sends, g = a W_h h  [M, d] (d^2 MACs per node)."""
    return alpha[:, None] * (h @ w_h.T)


# ------------------------------------------------------------------------------ selection
def float_keys(score: np.ndarray) -> np.ndarray:
    """Order-preserving unsigned 32-bit keys (as int64) of float32(score): the integer order
    of the keys is the float order (negatives' bits flipped, non-negatives' sign bit set)."""
    u = np.ascontiguousarray(score, dtype=np.float32).view(np.uint32).astype(np.int64)
    return np.where(u >= 0x80000000, 0xFFFFFFFF - u, u | 0x80000000)


@dataclass(frozen=True)
class Selection:
    """The winners among a sample's candidates and what finding them took on the chip."""

    winners: np.ndarray
    """Mask over the candidates."""
    rounds: int
    """Global reduction rounds (each: every core holding candidates sends its partial to a
    root core, which broadcasts the next trial threshold)."""
    values: int
    """Values each core sends per round (1 count; 3 for ``stat``: count, sum, sum of squares)."""


def k_winners(keys: np.ndarray, ids: np.ndarray, k: int, n_ids: int) -> tuple[np.ndarray, int]:
    """Exactly min(k, m) winners of the largest ``keys`` (ties at the k-th key to the lower
    ``ids``) and the reduction rounds a chip needs to find them by bisection.

    Round 1 counts the candidates (all win when m <= k). Then bisection over the 32-bit key
    space: a round counts the keys >= the trial threshold tau, and the search stops when that
    count is k (at most 32 rounds). If it ends on a key value v with count(> v) < k <
    count(>= v), the r = k - count(> v) winners among the ties are the r lowest ids: a
    bisection over ids counting the ties below a trial id, until the count is r (at most
    ceil(log2 n_ids) rounds). The result is the definition's radix select."""
    m = keys.size
    if k <= 0:
        return np.zeros(m, dtype=bool), 1
    if m <= k:
        return np.ones(m, dtype=bool), 1
    rounds = 1
    lo, hi = 0, 1 << KEY_BITS  # count(keys >= lo) > k >= ... > count(keys >= hi) = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        c = int(np.count_nonzero(keys >= mid))
        rounds += 1
        if c == k:
            return keys >= mid, rounds
        if c > k:
            lo = mid
        else:
            hi = mid
    above, tie = keys > lo, keys == lo
    need = k - int(np.count_nonzero(above))
    lo_i, hi_i = 0, n_ids  # count(tie & ids < lo_i) < need < count(tie & ids < hi_i)
    while True:
        mid = (lo_i + hi_i) // 2
        below = tie & (ids < mid)
        c = int(np.count_nonzero(below))
        rounds += 1
        if c == need:
            return above | below, rounds
        if c < need:
            lo_i = mid
        else:
            hi_i = mid


def statistical_winners(score32: np.ndarray, k: int) -> np.ndarray:
    """Statistical top-k: x >= mean(x) + std(x) Phi^-1(1 - k/n) (biased std, the quantile
    clamped to [1e-6, 1 - 1e-6]), x = the float32 scores in float64."""
    x = score32.astype(np.float64)
    n = max(1, x.size)
    mean = x.sum() / n
    var = ((x - mean) ** 2).sum() / n
    q = min(max(1.0 - k / n, 1e-6), 1.0 - 1e-6)
    return x >= mean + np.sqrt(var) * NormalDist().inv_cdf(q)


def select(
    score: np.ndarray, ids: np.ndarray, *, cap: int, eps: float, method: str, n_nodes: int
) -> Selection:
    """A' = top-``cap`` of ``score`` over the candidates ``ids`` (sorted), keeping score > eps,
    on the float32 scores as the definition (``rsgn.ops.select``): ``radix`` exactly
    min(cap, |C|) before the eps cut, ties to the lower id; ``stat`` the statistical
    threshold."""
    s32 = np.asarray(score, dtype=np.float32)
    if method == "radix":
        win, rounds = k_winners(float_keys(s32), ids, cap, n_nodes)
        values = 1
    elif method == "stat":
        win, rounds, values = statistical_winners(s32, cap), 1, 3
    else:
        raise ValueError(f"unknown selection method {method!r} (radix, stat)")
    return Selection(win & (s32 > np.float32(eps)), rounds, values)


# ------------------------------------------------------------------------------ one step
@dataclass(frozen=True)
class StepResult:
    """One step of one sample: the candidates' inhibited scores, the winners, their new
    states and payloads."""

    score: np.ndarray
    selection: Selection
    h: np.ndarray
    """[|A'|, d] the winners' new states."""
    alpha: np.ndarray
    """[|A'|] the winners' activations."""
    g: np.ndarray
    """[|A'|, d] the payloads they send."""

    @property
    def winners(self) -> np.ndarray:
        return self.selection.winners


def node_step(
    p: NodeParams,
    nodes: np.ndarray,
    m: np.ndarray,
    alpha_prev: np.ndarray,
    h_prev: np.ndarray,
    cap: int,
) -> StepResult:
    """The node program over the candidates ``nodes`` (sorted ids) of one sample with inputs
    ``m`` [M, d], gate inputs ``alpha_prev`` [M] and states ``h_prev`` [M, d] (module
    docstring); ``cap`` slots are free for winners."""
    htilde = m + p.b_h
    a = soft_threshold(alpha_prev, htilde, p.theta[nodes], gamma=p.gamma, temperature=p.temperature)
    a = inhibit(nodes, a, p.inh_idx, p.inh_valid, strength=p.inhibition)
    sel = select(a, nodes, cap=cap, eps=p.eps, method=p.method, n_nodes=p.n_nodes)
    w = sel.winners
    h = update(htilde[w], h_prev[w], a[w], p.ln_w, p.ln_b)
    return StepResult(score=a, selection=sel, h=h, alpha=a[w], g=project(h, a[w], p.w_h))
