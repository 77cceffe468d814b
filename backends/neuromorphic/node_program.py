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
are found by rounds of histogram reductions over the NoC (:func:`radix_select`: ``bits`` bits
of the key per round, each core sends its histogram to a root core, which broadcasts the bin
holding the k-th key); ``stat`` is the statistical threshold mean + std Phi^-1(1 - k/n) from
one reduction of (count, sum, sum of squares); ``local`` a per-core k-WTA without any
communication (:func:`local_k_wta`), an approximation whose accuracy is measured. The
instruction counts of each part (``*_ops``) are what the chip program charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

LN_EPS = 1e-5
"""LayerNorm epsilon (that of ``torch.nn.LayerNorm``, the definition's)."""
KEY_BITS = 32

# Instruction counts of the node program (neuron-program / microcode instructions, each charged
# at the preset's ``neuron_op`` energy and time). A multiply, an add or a compare is one
# instruction; a square root, a division or an exponential is a routine of OP_SQRT / OP_DIV /
# OP_EXP instructions (an estimate: ~8 multiply-adds of a Newton or polynomial evaluation).
OP_SQRT = 8
OP_DIV = 8
OP_EXP = 8
OP_HIST = 2
"""Per key per selection round: extract the digit and increment its bin."""


def threshold_ops(d: int) -> int:
    """Soft threshold of one candidate: h~ = m + b (d adds), |h~|^2 (d multiply-adds), a
    square root, (alpha_prev + gamma |h~| - theta) / T (3), the sigmoid (an exponential, an
    add and a division), the 32-bit key (1)."""
    return 2 * d + OP_SQRT + 3 + OP_EXP + 1 + OP_DIV + 1


def inhibit_ops(n_neighbours: np.ndarray) -> np.ndarray:
    """Inhibition of one candidate: |R(i)| adds, the mean (a division), 1 + beta mean (2) and
    the division of alpha."""
    return n_neighbours + 2 * OP_DIV + 2


def update_ops(d: int) -> int:
    """LayerNorm update of one winner: v = h~ + h_prev (d), the mean (d adds, a division),
    centring (d), the variance (d multiply-adds, a division), 1/sqrt(var + eps) (a square root
    and a division), normalise (d), the affine map (d multiply-adds), times alpha (d)."""
    return 6 * d + 3 * OP_DIV + OP_SQRT + 1


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
class Round:
    """One reduction round of a distributed selection: every core holding candidates sends
    the non-zero bins of its histogram of ``digit`` over the candidates ``in_play`` (at least
    one packet) to the root core, which adds them and broadcasts one packet (the decision)
    back to each of those cores."""

    in_play: np.ndarray
    """Mask over the candidates this round's histogram counts."""
    digit: np.ndarray
    """[M] each candidate's bin (meaningful where ``in_play``)."""
    n_bins: int


@dataclass(frozen=True)
class Selection:
    """The winners among a sample's candidates and the rounds a chip needed to find them."""

    winners: np.ndarray
    """Mask over the candidates."""
    rounds: list[Round]
    """Global reduction rounds ([] for the local per-core k-WTA)."""
    local_ops: int = 0
    """Neuron-program instructions of a purely local selection (per-core k-WTA)."""


def _count_round(m: int) -> Round:
    return Round(np.ones(m, dtype=bool), np.zeros(m, dtype=np.int64), 1)


def radix_select(keys: np.ndarray, ids: np.ndarray, k: int, n_ids: int, bits: int = 4) -> Selection:
    """Exactly min(k, m) winners of the largest ``keys`` (ties at the k-th key to the lower
    ``ids``): the definition's radix select, as a chip runs it over the NoC.

    Round 1 counts the candidates (all win when m <= k). Then ``bits`` bits of the 32-bit
    keys per round, from the most significant: each round histograms the digit of the keys
    still in play (those that share the prefix found so far); the root finds the bin holding
    the k-th largest key and broadcasts it. It stops early when the keys at or above a bin
    boundary number exactly k. If the k-th key is tied, the remaining winners among the ties
    are the lowest ids: the same rounds over the ids' digits (lowest bins first)."""
    m = keys.size
    rounds = [_count_round(m)]
    if k <= 0:
        return Selection(np.zeros(m, dtype=bool), rounds)
    if m <= k:
        return Selection(np.ones(m, dtype=bool), rounds)
    need = k
    above = np.zeros(m, dtype=bool)
    in_play = np.ones(m, dtype=bool)
    done = 0
    while done < KEY_BITS:
        b = min(bits, KEY_BITS - done)
        digit = (keys >> (KEY_BITS - done - b)) & ((1 << b) - 1)
        rounds.append(Round(in_play.copy(), digit, 1 << b))
        hist = np.bincount(digit[in_play], minlength=1 << b)
        ge = np.cumsum(hist[::-1])[::-1]  # ge[j]: keys in play with digit >= j
        hit = np.nonzero(ge == need)[0]
        if hit.size:
            return Selection(above | (in_play & (digit >= hit.max())), rounds)
        j = int(np.nonzero(ge >= need)[0].max())
        above |= in_play & (digit > j)
        need -= int(ge[j] - hist[j])
        in_play &= digit == j
        done += b
    id_bits = max(1, int(n_ids - 1).bit_length())
    done = 0
    while True:
        b = min(bits, id_bits - done)
        digit = (ids >> (id_bits - done - b)) & ((1 << b) - 1)
        rounds.append(Round(in_play.copy(), digit, 1 << b))
        hist = np.bincount(digit[in_play], minlength=1 << b)
        le = np.cumsum(hist)  # le[j]: ties in play with digit <= j
        hit = np.nonzero(le == need)[0]
        if hit.size:
            return Selection(above | (in_play & (digit <= hit.min())), rounds)
        j = int(np.nonzero(le >= need)[0].min())
        above |= in_play & (digit < j)
        need -= int(le[j] - hist[j])
        in_play &= digit == j
        done += b


def local_k_wta(
    keys: np.ndarray, ids: np.ndarray, cores: np.ndarray, quota: np.ndarray
) -> Selection:
    """Per-core k-WTA: each core keeps its ``quota[core]`` largest keys among its own
    candidates (ties to the lower id), with no communication; an approximation of the global
    selection (its accuracy is measured against the exact one). Its cost: a local radix
    select, 4 histogram passes of OP_HIST instructions per candidate."""
    win = np.zeros(keys.size, dtype=bool)
    order = np.lexsort((ids, -keys, cores))
    c_sorted = cores[order]
    starts = np.searchsorted(c_sorted, np.unique(c_sorted))
    rank = np.arange(keys.size) - np.repeat(starts, np.diff(np.append(starts, keys.size)))
    win[order] = rank < quota[c_sorted]
    return Selection(win, [], local_ops=4 * OP_HIST * int(keys.size))


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
    score: np.ndarray,
    ids: np.ndarray,
    *,
    cap: int,
    eps: float,
    method: str,
    n_nodes: int,
    bits: int = 4,
    cores: np.ndarray | None = None,
    quota: np.ndarray | None = None,
) -> Selection:
    """A' = top-``cap`` of ``score`` over the candidates ``ids`` (sorted), keeping score > eps,
    on the float32 scores as the definition (``rsgn.ops.select``): ``radix`` exactly
    min(cap, |C|) before the eps cut, ties to the lower id (:func:`radix_select`, ``bits``
    per round); ``stat`` the statistical threshold (one round of count, sum and sum of
    squares); ``local`` the per-core k-WTA (``cores`` of the candidates, ``quota`` per core)."""
    s32 = np.asarray(score, dtype=np.float32)
    if method == "radix":
        sel = radix_select(float_keys(s32), ids, cap, n_nodes, bits)
    elif method == "stat":
        m = s32.size
        rnd = Round(np.ones(m, dtype=bool), np.arange(m) % 3, 3)  # 3 values per core
        sel = Selection(statistical_winners(s32, cap), [rnd])
    elif method == "local":
        sel = local_k_wta(float_keys(s32), ids, cores, quota)
    else:
        raise ValueError(f"unknown selection method {method!r} (radix, stat, local)")
    return Selection(sel.winners & (s32 > np.float32(eps)), sel.rounds, sel.local_ops)


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
