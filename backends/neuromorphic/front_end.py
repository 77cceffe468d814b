r"""The chip's front end, ignition, initial states and readout, in numpy float64.

The neuromorphic target's own implementation of what :func:`rsgn.forward.forward` does before
and after the propagation steps; it calls nothing of torch or :mod:`rsgn.ops` (tests compare
it with them). One sample at a time (x [T, F_in]):

    e_t    = GELU(conv_w(x))_t  (token encoder, 'same' padding)  or  x_t       front end
    s_t    = expmap0(s tanh(W_2 GELU(W_1 e_t + b_1) + b_2)),  a_t = 1/cosh^2|v_t|
    delta_i = min_t |s_t - p_i|^2 / (a_t a_i)                                   ignition
    A(0)   = top-cap of -delta (exact k-winners, ties to the lower id), alpha > eps
    alpha_i = exp(-d_i^2 / (2 sigma^2)),  d_i = 2 asinh(sqrt(delta_i))
    h_i(0) = alpha_i (W_init m_i + b_init),  m_i = sum_t softmax_t(-d_ti^2/2 sigma^2) e_t
             ('attend')  or  m = mean_t e_t ('mean')
    logits = W_o sum_{i in A} alpha_i h_i + b_o [+ sum alpha_i R_i] [+ W_s max_t e_t + b_s]

Each function also returns its operation counts (:class:`OpCount`: multiply-accumulates on the
graded synaptic datapath, and neuron-program instructions, :mod:`.node_program` op costs), which
the chip program charges to the core that runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from rsgn.backends.neuromorphic.node_program import OP_DIV, OP_EXP, OP_SQRT

MAX_TANGENT_NORM = math.atanh(0.999)
"""The tangent-norm clamp of the model's expmap0 (points within radius 0.999)."""
NORM_FLOOR = 1e-15
OP_GELU = 2 * OP_EXP + 4
"""Instructions of one GELU: an erf evaluation (a polynomial/exponential routine, counted as
two exponentials) and 4 multiply-adds."""
OP_TANH = OP_EXP + OP_DIV + 2
OP_ASINH = OP_SQRT + OP_EXP + 3


@dataclass(frozen=True)
class FrontParams:
    """The front end's, ignition's, initial state's and readout's constants (float64)."""

    enc_w: np.ndarray | None
    """[F, F_in, w] encoder convolution, or None (raw tokens)."""
    enc_b: np.ndarray | None
    spark_w1: np.ndarray
    spark_b1: np.ndarray
    spark_w2: np.ndarray
    spark_b2: np.ndarray
    spark_scale: float
    init_w: np.ndarray
    init_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    node_out: np.ndarray | None
    skip_w: np.ndarray | None
    skip_b: np.ndarray | None
    pos: np.ndarray
    """[N, D] node positions p_i."""
    conf: np.ndarray
    """[N] conformal factors a_i = 1 - |p_i|^2 (exact, from the tangent parametrisation)."""
    sigma: float
    eps: float
    cap: int
    init_state: str
    method: str

    @property
    def n_features(self) -> int:
        return int(self.init_w.shape[1])


@dataclass
class OpCount:
    """Operations of one piece of work: graded MACs and neuron-program instructions."""

    macs: int = 0
    ops: int = 0

    def __iadd__(self, other: OpCount) -> OpCount:
        self.macs += other.macs
        self.ops += other.ops
        return self


def gelu(v: np.ndarray) -> np.ndarray:
    """GELU(v) = v (1 + erf(v / sqrt 2)) / 2 (the exact form, torch's default)."""
    return 0.5 * v * (1.0 + erf(v / math.sqrt(2.0)))


def encode(x: np.ndarray, p: FrontParams) -> np.ndarray:
    """Token features e [T, F]: GELU of a width-w 'same' convolution, or the tokens."""
    if p.enc_w is None:
        return x.astype(np.float64)
    f_out, f_in, w = p.enc_w.shape
    t = x.shape[0]
    left = (w - 1) // 2
    xp = np.zeros((t + w - 1, f_in))
    xp[left : left + t] = x
    win = np.stack([xp[u : u + t] for u in range(w)], axis=2)  # [T, F_in, w]
    y = np.einsum("tiu,oiu->to", win, p.enc_w) + p.enc_b
    return gelu(y)


def token_ops(p: FrontParams) -> OpCount:
    """The front end's work for one token on the core that owns it: the encoder (every
    channel's convolution and GELU), the spark MLP (F -> 4D -> D with GELU and tanh) and
    expmap0."""
    h, f = p.spark_w1.shape
    d_sp = p.spark_w2.shape[0]
    macs = h * f + d_sp * h
    ops = h * (1 + OP_GELU) + d_sp * (2 + OP_TANH) + OP_SQRT + OP_TANH + OP_DIV + 8
    if p.enc_w is not None:
        f_out, f_in, w = p.enc_w.shape
        macs += f_out * f_in * w
        ops += f_out * (1 + OP_GELU)
    return OpCount(macs=macs, ops=ops)


def conv_halo(p: FrontParams) -> int:
    """Tokens beyond its own block a core needs for the encoder's 'same' convolution."""
    return 0 if p.enc_w is None else int(p.enc_w.shape[2]) - 1


def sparks(e: np.ndarray, p: FrontParams) -> tuple[np.ndarray, np.ndarray]:
    """Spark points s [T, D] and conformal factors a [T] (the spark MLP F -> 4D -> D, then
    expmap0 with its tangent-norm clamp)."""
    hid = gelu(e @ p.spark_w1.T + p.spark_b1)
    f = np.tanh(hid @ p.spark_w2.T + p.spark_b2)
    v = p.spark_scale * f
    n = np.sqrt((v * v).sum(-1, keepdims=True))
    n_safe = np.maximum(n, NORM_FLOOR)
    n_c = np.minimum(n_safe, MAX_TANGENT_NORM)
    scale = np.where(n_safe < 1e-4, 1.0 - n_c * n_c / 3.0, np.tanh(n_c) / n_safe)
    s = v * scale
    a = 1.0 / np.cosh(n_c[:, 0]) ** 2
    return s, a


def spark_deltas(s: np.ndarray, a_s: np.ndarray, pos: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """delta_ti = |s_t - p_i|^2 / (a_t a_i) for every token and node in ``pos`` [T, M]."""
    diff = s[:, None, :] - pos[None, :, :]
    return (diff * diff).sum(-1) / (a_s[:, None] * conf[None, :])


def delta_ops(n_tokens: int, n_nodes: int, d_space: int) -> OpCount:
    """One delta per (token, node): D multiply-accumulates of (s - p)^2 and a division; the
    minimum over tokens: one compare each."""
    return OpCount(macs=n_tokens * n_nodes * d_space, ops=n_tokens * n_nodes * (OP_DIV + 2))


def alpha0(delta: np.ndarray, sigma: float) -> np.ndarray:
    """alpha = exp(-d^2 / (2 sigma^2)), d = 2 asinh(sqrt(delta))."""
    d = 2.0 * np.arcsinh(np.sqrt(delta))
    return np.exp(-(d * d) / (2.0 * sigma * sigma))


ALPHA0_OPS = OP_SQRT + OP_ASINH + OP_EXP + 4


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax (max-subtracted)."""
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def initial_state(
    e: np.ndarray, d_tok: np.ndarray, alpha: np.ndarray, p: FrontParams
) -> tuple[np.ndarray, OpCount, OpCount]:
    """h(0) [W, d] of the ignited nodes (alpha [W]; ``d_tok`` [W, T] their hyperbolic
    distances to every spark, used by 'attend'), and the work on the nodes' cores and on the
    root core ('mean': the root computes W_init mean_t e_t once)."""
    t, f = e.shape
    d = p.init_w.shape[0]
    w = alpha.size
    if p.init_state == "attend":
        pi = softmax_rows(-(d_tok * d_tok) / (2.0 * p.sigma * p.sigma))
        m = pi @ e
        h0 = m @ p.init_w.T + p.init_b
        node = OpCount(
            macs=w * (t * f + f * d),
            ops=w * (t * (OP_EXP + 3) + OP_DIV + t + 2 * d),
        )
        return alpha[:, None] * h0, node, OpCount()
    m = e.mean(0)
    h0 = m @ p.init_w.T + p.init_b
    root = OpCount(macs=f * d, ops=t * f + OP_DIV + d)
    return alpha[:, None] * h0[None, :], OpCount(ops=w * d), root


def pooled(alpha: np.ndarray, h: np.ndarray) -> np.ndarray:
    """sum_i alpha_i h_i [d] of a set of active nodes."""
    return (alpha[:, None] * h).sum(0)


def readout(
    pool: np.ndarray, node_sum: np.ndarray | None, e: np.ndarray, p: FrontParams
) -> tuple[np.ndarray, OpCount]:
    """logits [C] at the root from the reduced pool [d] (+ sum alpha_i R_i [C]) and the token
    features (skip path), and the root's work."""
    logits = p.out_w @ pool + p.out_b
    c, d = p.out_w.shape
    ops = OpCount(macs=c * d, ops=c)
    if node_sum is not None:
        logits = logits + node_sum
        ops.ops += c
    if p.skip_w is not None:  # the max over tokens: on the token cores (chip_program)
        logits = logits + p.skip_w @ e.max(0) + p.skip_b
        f = e.shape[1]
        ops += OpCount(macs=c * f, ops=2 * c)
    return logits, ops
