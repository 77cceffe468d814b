"""Baseline classifiers for the paper's tables (spec §6), trainable with ``rsgn train --model``.

Every baseline maps a sequence ``x`` [B, T, d_in] to logits [B, C] with ``forward(x)``, counts
its parameters in closed form with ``param_formula(...)`` (same arguments as the constructor)
and rebuilds from ``model_args()`` via :func:`build_baseline`. Sizes default to the paper's:

==================== ======================= ============ ============ =====================
model                paper setting           paper count  this count   sizing
==================== ======================= ============ ============ =====================
transformer          hierarchical, 2 layers  403,348      403,348      d 128, FFN 512, fixed
                                                                       sinusoidal positions
transformer          long-range, 3 layers    600,330      600,330      same, ``n_layers=3``
sparse-transformer   hierarchical            403,348      403,348      same as transformer
lstm                 hierarchical            566,292      566,292      hidden 128 per direction
lstm                 long-range              563,722      563,722      same
mlp                  hierarchical            281,364      281,364      hidden 128, 128
moe                  (not in the paper)      --           407,188      8 experts of width 64,
                                                                       top-1: ~ transformer
conv                 (not in the paper)      --           11,604       width 5, 64 channels,
                                                                       max-pool over tokens
==================== ======================= ============ ============ =====================

The counts fix the sizes the paper leaves open: the Transformer has a 4x feed-forward width
(512), no learned positional table (sinusoidal, 0 parameters), no final LayerNorm and one linear
head d -> C (here on the mean-pooled tokens); the LSTM has 128 hidden units per direction and a
head 2 x 128 -> C (here on the final forward and backward states); the MLP's hidden layers are
128 wide. Pooling and dropout (0.1) leave the counts unchanged and are this package's choice.

The mixture-of-experts model is a Switch-style Transformer: every feed-forward block is replaced
by ``n_experts`` expert MLPs and a linear router that sends each token to its top-1 (or top-2)
experts; a load-balancing auxiliary loss (Fedus et al., 2021) ``E * sum_e f_e P_e`` keeps the
routing spread out. Its ``aux_loss`` (set by each forward) times ``aux_weight`` is added to the
cross-entropy in training (:meth:`Baseline.regulariser`).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from rsgn.errors import RsgnError
from rsgn.trainstep import TrainStep

DENSE_ACTIVE = "1.0: dense model, every parameter takes part in every input"


class Baseline(nn.Module):
    """Common interface: ``forward(x) -> logits``, ``model_args()``, ``n_params()``,
    ``param_formula(...)``, ``regulariser()`` and the measured ``active_fraction()``."""

    model_name: ClassVar[str] = ""
    active_fraction_definition: ClassVar[str] = DENSE_ACTIVE

    def __init__(self, **args: Any) -> None:
        super().__init__()
        self._args = dict(args)
        self.d_in = int(args["d_in"])
        self.n_classes = int(args["n_classes"])
        self.seq_len = int(args["seq_len"])
        self.aux_loss: torch.Tensor | None = None
        self.aux_weight = 0.0
        _check_positive(
            self.model_name, d_in=self.d_in, n_classes=self.n_classes, seq_len=self.seq_len
        )

    def model_args(self) -> dict[str, Any]:
        """Constructor arguments; ``build_baseline(model_name, **model_args())`` rebuilds it."""
        return dict(self._args)

    def n_params(self) -> int:
        """Trainable parameter count."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def regulariser(self) -> torch.Tensor | float:
        """What training adds to the cross-entropy: ``aux_weight * aux_loss`` (0 if none)."""
        if self.aux_loss is None or self.aux_weight == 0.0:
            return 0.0
        return self.aux_weight * self.aux_loss

    def active_fraction(self) -> float:
        """Fraction of the model's capacity used by the last forward (1.0 when dense)."""
        return 1.0

    # the training protocol (see rsgn.training): a baseline has no slow rules or annealing
    def train_step(
        self, x: torch.Tensor, ops_table: Any = None, lengths: torch.Tensor | None = None
    ) -> TrainStep:
        """Logits, the regulariser and the active fraction of one training batch."""
        logits = self(x, lengths)
        aux = None if self.aux_loss is None else float(self.aux_loss.detach())
        return TrainStep(logits, self.regulariser(), self.active_fraction(), aux_loss=aux)

    def begin_epoch(self, epoch: int, epochs: int) -> dict[str, float]:
        """Nothing to anneal."""
        return {}

    def after_batch(self, step: TrainStep, loss: float) -> dict[str, float]:
        """No slow rules."""
        return {}

    def epoch_end(self, ops_table: Any = None) -> dict[str, float]:
        """No slow rules."""
        return {}

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[2] != self.d_in:
            raise RsgnError(
                f"{self.model_name} expects input [B, T, {self.d_in}], got {list(x.shape)}"
            )


def _token_mask(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
    """[B, T] True on real steps (t < L_b); None without padding."""
    if lengths is None:
        return None
    return torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]


def _zero_padding(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x with padded steps set to 0 (unchanged without a mask)."""
    return x if mask is None else x * mask.unsqueeze(-1).to(x.dtype)


def _check_positive(model: str, **values: int) -> None:
    for k, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise RsgnError(f"{model}: {k} must be a positive integer, got {v!r}")


def _check_dropout(model: str, p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise RsgnError(f"{model}: dropout must be in [0, 1), got {p}")


def sinusoidal_positions(t: int, d: int) -> torch.Tensor:
    """Fixed sinusoidal positional encoding [t, d] (Vaswani et al.): 0 parameters."""
    pos = torch.arange(t, dtype=torch.float32)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * i / d)
    pe = torch.zeros(t, d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe


class _FFN(nn.Sequential):
    """Position-wise feed-forward d -> f -> d: 2 d f + f + d parameters."""

    def __init__(self, d: int, f: int, dropout: float) -> None:
        super().__init__(nn.Linear(d, f), nn.GELU(), nn.Dropout(dropout), nn.Linear(f, d))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Position-wise, so padded steps (``keep`` False) do not reach real ones."""
        return super().forward(x)


class _Block(nn.Module):
    """Post-LN encoder block (PyTorch's default layout): x = LN(x + MHA(x)); x = LN(x + FFN(x)).

    Parameters: attention 4 d^2 + 4 d (in-projection 3 d^2 + 3 d, out-projection d^2 + d), two
    LayerNorms 4 d, plus the feed-forward module's own.
    """

    def __init__(self, d: int, n_heads: int, ffn: nn.Module, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, n_heads, dropout=dropout, batch_first=True)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = ffn
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mask``: True where attention is blocked, [T, T] or per head [B n_heads, T, T];
        ``keep`` [B, T]: the real steps, handed to the feed-forward module (a MoE layer routes
        only those)."""
        a = self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]
        x = self.ln1(x + self.drop(a))
        return self.ln2(x + self.drop(self.ffn(x, keep)))


class _EncoderBase(Baseline):
    """Linear token embedding d_in -> d, fixed sinusoidal positions, ``n_layers`` blocks, mean
    pooling over tokens and a linear head d -> C."""

    def __init__(
        self,
        d_in: int,
        n_classes: int,
        seq_len: int,
        d: int,
        n_heads: int,
        n_layers: int,
        dropout: float,
        **extra: Any,
    ) -> None:
        super().__init__(
            d_in=d_in,
            n_classes=n_classes,
            seq_len=seq_len,
            d=d,
            n_heads=n_heads,
            n_layers=n_layers,
            dropout=dropout,
            **extra,
        )
        _check_positive(self.model_name, d=d, n_heads=n_heads, n_layers=n_layers)
        _check_dropout(self.model_name, dropout)
        if d % n_heads or d % 2:
            raise RsgnError(f"{self.model_name}: d ({d}) must be even and divisible by n_heads")
        self.d = d
        self.embed = nn.Linear(d_in, d)
        self.head = nn.Linear(d, n_classes)
        self.drop = nn.Dropout(dropout)
        self._pe: dict[tuple[int, str], torch.Tensor] = {}

    def _positions(self, t: int, device: torch.device) -> torch.Tensor:
        key = (t, str(device))
        if key not in self._pe:
            self._pe[key] = sinusoidal_positions(t, self.d).to(device)
        return self._pe[key]

    def _mask(self, t: int, device: torch.device) -> torch.Tensor | None:
        return None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, C]; with ``lengths``, padded keys are blocked in every attention (a
        padded query attends to itself only) and pooling is the mean over real steps."""
        self._check_input(x)
        t = x.shape[1]
        keep = _token_mask(x, lengths)
        h = self.drop(self.embed(x) + self._positions(t, x.device))
        mask = self._attn_mask(t, x.device, keep)
        for blk in self.blocks:
            h = blk(h, mask, keep)
        if keep is None:
            return self.head(h.mean(1))
        m = keep.unsqueeze(-1).to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1).clamp_min(1))

    def _attn_mask(
        self, t: int, device: torch.device, keep: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The model's [T, T] mask, and with padding the per-sample, per-head mask
        [B n_heads, T, T] that also blocks padded keys (the diagonal stays open so that no
        row is fully blocked)."""
        base = self._mask(t, device)
        if keep is None:
            return base
        blocked = ~keep[:, None, :].expand(-1, t, -1)
        if base is not None:
            blocked = blocked | base
        blocked = blocked & ~torch.eye(t, dtype=torch.bool, device=device)
        heads = self.blocks[0].attn.num_heads
        return blocked.repeat_interleave(heads, dim=0)

    @staticmethod
    def _common(d_in: int, n_classes: int, d: int, n_layers: int) -> int:
        """Embedding + head + attention and LayerNorms of every block."""
        return (d_in * d + d) + (d * n_classes + n_classes) + n_layers * (4 * d * d + 8 * d)


class Transformer(_EncoderBase):
    """Transformer encoder classifier (paper: 4 heads, d 128, 2 layers; 3 for long-range).

    Parameters (closed form, ``param_formula``)::

        (d_in d + d) + (d C + C) + L [4 d^2 + 4 d  +  4 d  +  2 d f + f + d]
          embedding     head          attention    2 LN       feed-forward

    with d = 128, f = 512, sinusoidal positions (0 parameters), no final LayerNorm:
    d_in 32, C 20, L 2 gives 403,348 and d_in 32, C 10, L 3 gives 600,330 (the paper's counts).
    """

    model_name = "transformer"

    def __init__(
        self,
        d_in: int,
        n_classes: int,
        seq_len: int,
        d: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(d_in, n_classes, seq_len, d, n_heads, n_layers, dropout, d_ff=d_ff)
        _check_positive(self.model_name, d_ff=d_ff)
        self.blocks = nn.ModuleList(
            _Block(d, n_heads, _FFN(d, d_ff, dropout), dropout) for _ in range(n_layers)
        )

    @classmethod
    def param_formula(
        cls,
        d_in: int,
        n_classes: int,
        seq_len: int = 0,
        d: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
    ) -> int:
        return cls._common(d_in, n_classes, d, n_layers) + n_layers * (2 * d * d_ff + d_ff + d)


def sparse_attention_mask(t: int, window: int = 5, stride: int = 4) -> torch.Tensor:
    """Boolean [t, t] mask, True where attention is *blocked*.

    Token i may attend to token j when j lies in the local window centred on i
    (|i - j| <= window // 2) or on i's stride lattice ((i - j) mod stride == 0), the fixed
    local + strided pattern of Child et al. (2019), used bidirectionally.
    """
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    allowed = ((i - j).abs() <= window // 2) | ((i - j) % stride == 0)
    return ~allowed


class SparseTransformer(Transformer):
    """Transformer whose attention is restricted to a fixed local window of 5 plus every 4th
    position (:func:`sparse_attention_mask`); the mask has no parameters, so the count is the
    Transformer's (403,348 for the hierarchical task, as in the paper)::

        (d_in d + d) + (d C + C) + L [4 d^2 + 8 d + 2 d f + f + d]
    """

    model_name = "sparse-transformer"

    def __init__(
        self,
        d_in: int,
        n_classes: int,
        seq_len: int,
        d: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
        window: int = 5,
        stride: int = 4,
    ) -> None:
        super().__init__(d_in, n_classes, seq_len, d, n_heads, n_layers, d_ff, dropout)
        _check_positive(self.model_name, window=window, stride=stride)
        self._args.update(window=window, stride=stride)
        self.window, self.stride = window, stride
        self._masks: dict[tuple[int, str], torch.Tensor] = {}

    def _mask(self, t: int, device: torch.device) -> torch.Tensor:
        key = (t, str(device))
        if key not in self._masks:
            self._masks[key] = sparse_attention_mask(t, self.window, self.stride).to(device)
        return self._masks[key]

    @classmethod
    def param_formula(
        cls,
        d_in: int,
        n_classes: int,
        seq_len: int = 0,
        d: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
        window: int = 5,
        stride: int = 4,
    ) -> int:
        return Transformer.param_formula(d_in, n_classes, seq_len, d, n_heads, n_layers, d_ff)


class BiLSTM(Baseline):
    """Bidirectional LSTM classifier (paper: 2 layers); the head reads the last layer's final
    forward and backward hidden states (2 H -> C).

    Parameters (PyTorch LSTM: 4 gates, input and hidden weights, two bias vectors)::

        2 [4 H (d_in + H) + 8 H]                 first layer, both directions
        + (L - 1) 2 [4 H (2 H + H) + 8 H]        further layers (input 2 H)
        + (2 H C + C)                            head

    H = 128, L = 2: 566,292 for d_in 32, C 20 and 563,722 for C 10 (the paper's counts).
    """

    model_name = "lstm"

    def __init__(
        self,
        d_in: int,
        n_classes: int,
        seq_len: int,
        hidden: int = 128,
        n_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(
            d_in=d_in,
            n_classes=n_classes,
            seq_len=seq_len,
            hidden=hidden,
            n_layers=n_layers,
            dropout=dropout,
        )
        _check_positive(self.model_name, hidden=hidden, n_layers=n_layers)
        _check_dropout(self.model_name, dropout)
        self.lstm = nn.LSTM(
            d_in,
            hidden,
            num_layers=n_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.head = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, C]; with ``lengths`` the sequences are packed, so each direction ends
        (forward) or starts (backward) at the sample's last real step."""
        self._check_input(x)
        if lengths is None:
            _, (h_n, _) = self.lstm(x)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu().clamp(1, x.shape[1]), batch_first=True, enforce_sorted=False
            )
            _, (h_n, _) = self.lstm(packed)
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=1))

    @classmethod
    def param_formula(
        cls,
        d_in: int,
        n_classes: int,
        seq_len: int = 0,
        hidden: int = 128,
        n_layers: int = 2,
        dropout: float = 0.1,
    ) -> int:
        h = hidden
        first = 2 * (4 * h * (d_in + h) + 8 * h)
        rest = (n_layers - 1) * 2 * (4 * h * (2 * h + h) + 8 * h)
        return first + rest + 2 * h * n_classes + n_classes


class MLP(Baseline):
    """MLP on the flattened sequence (paper: 2 hidden layers), ReLU and dropout between layers.

    Parameters::

        (T d_in h1 + h1) + (h1 h2 + h2) + (h2 C + C)

    h1 = h2 = 128, T 64, d_in 32, C 20: 281,364 (the paper's count). The input length is fixed
    at ``seq_len``.
    """

    model_name = "mlp"

    def __init__(
        self,
        d_in: int,
        n_classes: int,
        seq_len: int,
        hidden1: int = 128,
        hidden2: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(
            d_in=d_in,
            n_classes=n_classes,
            seq_len=seq_len,
            hidden1=hidden1,
            hidden2=hidden2,
            dropout=dropout,
        )
        _check_positive(self.model_name, hidden1=hidden1, hidden2=hidden2)
        _check_dropout(self.model_name, dropout)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(seq_len * d_in, hidden1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden1, hidden2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden2, n_classes),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, C] of the flattened sequence, padded steps (``lengths``) read as 0."""
        self._check_input(x)
        if x.shape[1] != self.seq_len:
            raise RsgnError(
                f"mlp was built for sequences of length {self.seq_len}, got {x.shape[1]}"
            )
        return self.net(_zero_padding(x, _token_mask(x, lengths)))

    @classmethod
    def param_formula(
        cls,
        d_in: int,
        n_classes: int,
        seq_len: int,
        hidden1: int = 128,
        hidden2: int = 128,
        dropout: float = 0.1,
    ) -> int:
        return (
            (seq_len * d_in * hidden1 + hidden1)
            + (hidden1 * hidden2 + hidden2)
            + (hidden2 * n_classes + n_classes)
        )


class ConvPool(Baseline):
    """One width-w convolution over tokens, GELU, max-pool over tokens, linear classifier:
    logits = W_s max_t GELU(E *_w x)_t + b_s. Not in the paper: it is exactly the RSGN's
    ``token_skip`` path alone (``encoder_width`` w, ``encoder_dim`` channels), the ablation
    point "RSGN removed".

    Parameters::

        (w d_in c + c) + (c C + C)

    w 5, c 64, d_in 32, C 20: 11,604.
    """

    model_name = "conv"

    def __init__(
        self, d_in: int, n_classes: int, seq_len: int, width: int = 5, channels: int = 64
    ) -> None:
        super().__init__(
            d_in=d_in, n_classes=n_classes, seq_len=seq_len, width=width, channels=channels
        )
        _check_positive(self.model_name, width=width, channels=channels)
        self.width = width
        self.conv = nn.Conv1d(d_in, channels, width)
        self.out = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, C]; padded steps (``lengths``) read as the zeros of the 'same' padding
        and are left out of the max."""
        self._check_input(x)
        keep = _token_mask(x, lengths)
        left = (self.width - 1) // 2
        xt = F.pad(_zero_padding(x, keep).transpose(1, 2), (left, self.width - 1 - left))
        e = F.gelu(self.conv(xt))  # [B, c, T]
        if keep is not None:
            e = e.masked_fill(~keep[:, None, :], float("-inf"))
        return self.out(e.amax(2))

    @classmethod
    def param_formula(
        cls, d_in: int, n_classes: int, seq_len: int, width: int = 5, channels: int = 64
    ) -> int:
        return (width * d_in * channels + channels) + (channels * n_classes + n_classes)


def load_balancing_loss(router_probs: torch.Tensor, expert_index: torch.Tensor) -> torch.Tensor:
    """Switch Transformer load-balancing loss ``E * sum_e f_e P_e``.

    ``router_probs`` [N, E] are the router's softmax probabilities, ``expert_index`` [N, k] the
    chosen experts; ``f_e`` is the fraction of the N k assignments that go to expert e and
    ``P_e`` the mean router probability of e. It is 1 for uniform routing (f = P = 1/E) and
    approaches E when every token goes to one expert with certainty.
    """
    n_exp = router_probs.shape[-1]
    counts = F.one_hot(expert_index.reshape(-1), n_exp).sum(0).to(router_probs.dtype)
    f = counts / expert_index.numel()
    p = router_probs.mean(0)
    return n_exp * (f * p).sum()


class MoELayer(nn.Module):
    """Token-routed mixture of expert MLPs (Switch / GShard style).

    A bias-free linear router scores the E experts per token; each token goes to its top-k
    experts (k = 1: weighted by the router probability, as in Switch; k = 2: by the two
    probabilities renormalised, as in GShard). In training each expert takes at most
    ``ceil(capacity_factor N k / E)`` of the N tokens (first choices first, then token order);
    the overflow is dropped (the residual carries it). Evaluation drops nothing, so results do
    not depend on the batch size. Parameters: router d E, experts E (2 d f + f + d).
    """

    def __init__(
        self,
        d: int,
        n_experts: int,
        d_expert: int,
        top_k: int,
        capacity_factor: float,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n_experts, self.top_k, self.capacity_factor = n_experts, top_k, capacity_factor
        self.router = nn.Linear(d, n_experts, bias=False)
        self.experts = nn.ModuleList(_FFN(d, d_expert, dropout) for _ in range(n_experts))
        self.aux_loss: torch.Tensor | None = None
        self.kept = 0
        self.tokens = 0
        self.load = torch.zeros(n_experts)

    def forward(self, h: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Route every token of h [B, T, d], or only the real ones (``keep`` [B, T]): padded
        tokens take no expert, no capacity and no part in the balancing loss (output 0)."""
        if keep is not None:
            out = torch.zeros_like(h)
            out[keep] = self._route(h[keep])
            return out
        return self._route(h)

    def _route(self, h: torch.Tensor) -> torch.Tensor:
        shape = h.shape
        x = h.reshape(-1, shape[-1])
        n, n_exp, k = x.shape[0], self.n_experts, self.top_k
        probs = torch.softmax(self.router(x).float(), dim=-1)
        gate, idx = probs.topk(k, dim=-1)  # [N, k]
        if k > 1:
            gate = gate / gate.sum(-1, keepdim=True)
        if self.training and self.capacity_factor > 0:
            cap = math.ceil(self.capacity_factor * n * k / n_exp)
            onehot = F.one_hot(idx.t().reshape(-1), n_exp)  # [k N, E], first choices first
            pos = (onehot.cumsum(0) * onehot).sum(-1) - 1
            keep = (pos < cap).view(k, n).t()
        else:
            keep = torch.ones_like(idx, dtype=torch.bool)
        out = torch.zeros_like(x)
        load = torch.zeros(n_exp)
        for e, expert in enumerate(self.experts):
            tok, slot = ((idx == e) & keep).nonzero(as_tuple=True)
            load[e] = tok.numel()
            if tok.numel() == 0:
                continue
            y = expert(x[tok]) * gate[tok, slot, None].to(x.dtype)
            out = out.index_add(0, tok, y)
        self.aux_loss = load_balancing_loss(probs, idx)
        self.kept, self.tokens = int(keep.sum()), n
        self.load = load / max(1, n)
        return out.view(shape)


class MoETransformer(_EncoderBase):
    """Mixture-of-experts Transformer (Switch style): the Transformer above with every
    feed-forward block replaced by a :class:`MoELayer` of ``n_experts`` experts of width
    ``d_expert``, top-1 (or top-2) routing and the load-balancing loss
    (:func:`load_balancing_loss`, mean over layers, weight ``aux_weight``).

    Parameters::

        (d_in d + d) + (d C + C) + L [4 d^2 + 8 d + d E + E (2 d f + f + d)]

    Defaults d 128, 4 heads, L 2, E 8, f 64, top-1: 407,188 parameters for d_in 32, C 20 (the
    Transformer's 403,348 plus the routers), with 1/8 of the expert capacity used per token.
    ``active_fraction()`` is the measured fraction of (token, expert) pairs evaluated,
    kept assignments / (tokens x E), averaged over layers: top_k / E without dropped tokens.
    """

    model_name = "moe"
    active_fraction_definition = (
        "fraction of expert capacity used per token: evaluated (token, expert) pairs / "
        "(tokens x n_experts), mean over MoE layers (top_k / n_experts when no token is dropped)"
    )

    def __init__(
        self,
        d_in: int,
        n_classes: int,
        seq_len: int,
        d: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        n_experts: int = 8,
        d_expert: int = 64,
        top_k: int = 1,
        capacity_factor: float = 1.25,
        aux_weight: float = 0.01,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(
            d_in,
            n_classes,
            seq_len,
            d,
            n_heads,
            n_layers,
            dropout,
            n_experts=n_experts,
            d_expert=d_expert,
            top_k=top_k,
            capacity_factor=capacity_factor,
            aux_weight=aux_weight,
        )
        _check_positive(self.model_name, n_experts=n_experts, d_expert=d_expert, top_k=top_k)
        if top_k > n_experts:
            raise RsgnError(f"moe: top_k ({top_k}) exceeds n_experts ({n_experts})")
        if capacity_factor < 0 or aux_weight < 0:
            raise RsgnError("moe: capacity_factor and aux_weight must be non-negative")
        self.aux_weight = float(aux_weight)
        self.moe = nn.ModuleList(
            MoELayer(d, n_experts, d_expert, top_k, capacity_factor, dropout)
            for _ in range(n_layers)
        )
        self.blocks = nn.ModuleList(_Block(d, n_heads, m, dropout) for m in self.moe)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        logits = super().forward(x, lengths)
        self.aux_loss = torch.stack([m.aux_loss for m in self.moe]).mean()
        return logits

    def active_fraction(self) -> float:
        fr = [m.kept / max(1, m.tokens * m.n_experts) for m in self.moe]
        return sum(fr) / len(fr)

    def expert_load(self) -> list[float]:
        """Per expert, the fraction of tokens it processed in the last forward (layer mean)."""
        return (torch.stack([m.load for m in self.moe]).mean(0)).tolist()

    @classmethod
    def param_formula(
        cls,
        d_in: int,
        n_classes: int,
        seq_len: int = 0,
        d: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        n_experts: int = 8,
        d_expert: int = 64,
        top_k: int = 1,
        capacity_factor: float = 1.25,
        aux_weight: float = 0.01,
        dropout: float = 0.1,
    ) -> int:
        experts = n_experts * (2 * d * d_expert + d_expert + d)
        return cls._common(d_in, n_classes, d, n_layers) + n_layers * (d * n_experts + experts)


MODEL_CLASSES: dict[str, type[Baseline]] = {
    c.model_name: c for c in (Transformer, SparseTransformer, BiLSTM, MLP, MoETransformer, ConvPool)
}
BASELINES: tuple[str, ...] = tuple(MODEL_CLASSES)

PAPER_KWARGS: dict[tuple[str, str], dict[str, Any]] = {
    ("transformer", "long-range"): {"n_layers": 3},
}
"""Non-default arguments the paper uses on a built-in task (the long-range Transformer has 3
layers); ``rsgn train --model NAME --task TASK`` applies them unless ``--model-arg`` overrides."""

PAPER_PARAMS: dict[tuple[str, str], int] = {
    ("transformer", "hierarchical"): 403_348,
    ("sparse-transformer", "hierarchical"): 403_348,
    ("lstm", "hierarchical"): 566_292,
    ("mlp", "hierarchical"): 281_364,
    ("transformer", "long-range"): 600_330,
    ("lstm", "long-range"): 563_722,
}
"""The paper's parameter counts (spec §6), all reproduced exactly at the default sizes."""

TASK_SHAPES: dict[str, tuple[int, int, int]] = {
    "hierarchical": (32, 20, 64),
    "long-range": (32, 10, 128),
}
"""(d_in, n_classes, seq_len) of the built-in tasks at the paper's settings."""


def paper_kwargs(name: str, task: str | None) -> dict[str, Any]:
    """The paper's non-default arguments for ``name`` on built-in ``task`` (else {})."""
    return dict(PAPER_KWARGS.get((name, task or ""), {}))


def _constructor_params(cls: type[Baseline]) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(cls.__init__).parameters)
    for fixed in ("self", "d_in", "n_classes", "seq_len"):
        params.pop(fixed, None)
    return params


def _unknown_model(name: str) -> RsgnError:
    return RsgnError(f"unknown model {name!r} (known: {', '.join(('rsgn', *BASELINES))})")


def build_baseline(name: str, d_in: int, n_classes: int, seq_len: int, **kw: Any) -> Baseline:
    """Build baseline ``name`` (one of :data:`BASELINES`); unknown names or arguments raise
    :class:`~rsgn.errors.RsgnError` listing the valid ones."""
    cls = MODEL_CLASSES.get(name)
    if cls is None:
        raise _unknown_model(name)
    allowed = _constructor_params(cls)
    for k in kw:
        if k not in allowed:
            raise RsgnError(
                f"{name} has no argument {k!r} (arguments: {', '.join(allowed) or 'none'})"
            )
    return cls(d_in=d_in, n_classes=n_classes, seq_len=seq_len, **kw)


def parse_model_args(name: str, items: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings into constructor arguments of baseline ``name``, converted to
    each argument's type (int, float, bool)."""
    cls = MODEL_CLASSES.get(name)
    if cls is None:
        raise _unknown_model(name)
    params = _constructor_params(cls)
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise RsgnError(f"--model-arg expects key=value, got {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in params:
            raise RsgnError(f"{name} has no argument {key!r} (arguments: {', '.join(params)})")
        kind = str(params[key].annotation)
        try:
            if kind == "int":
                out[key] = int(value)
            elif kind == "float":
                v = float(value)
                if not math.isfinite(v):
                    raise ValueError("expected a finite number")
                out[key] = v
            elif kind == "bool":
                if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError("expected a boolean")
                out[key] = value.lower() in ("true", "1", "yes", "on")
            else:
                out[key] = value
        except ValueError as exc:
            raise RsgnError(
                f"invalid value for {name} argument {key!r}: {value!r} ({exc})"
            ) from None
    return out


__all__ = [
    "BASELINES",
    "PAPER_KWARGS",
    "PAPER_PARAMS",
    "TASK_SHAPES",
    "Baseline",
    "BiLSTM",
    "ConvPool",
    "MLP",
    "MoELayer",
    "MoETransformer",
    "SparseTransformer",
    "Transformer",
    "build_baseline",
    "load_balancing_loss",
    "paper_kwargs",
    "parse_model_args",
    "sparse_attention_mask",
]
