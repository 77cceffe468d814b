"""Exact sort-free active-set selection and the statistical top-k it replaces."""

import math

import pytest
import torch

from rsgn.selection import (
    float_keys,
    mask_to_ids,
    radix_select_mask,
    radix_select_rows,
    segment_rank,
    statistical_mask,
    statistical_rows,
)


@pytest.mark.parametrize(
    "shape,k", [((3, 17), 5), ((4, 256), 13), ((2, 5000), 250), ((1, 7), 7), ((2, 9), 0)]
)
def test_radix_select_is_exact(shape, k):
    x = torch.randn(*shape)
    mask = radix_select_mask(x, k)
    assert (mask.sum(1) == min(k, shape[1])).all()
    if k:
        kth = torch.topk(x, k, dim=1).values[:, -1:]
        assert (x[mask].view(shape[0], -1) >= kth).all()
        assert ((x > kth) <= mask).all()


def test_radix_select_ties_go_to_lowest_index():
    x = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.5, 2.0]])
    mask = radix_select_mask(x, 2)
    assert mask.tolist() == [[False, True, True, False, False, False]]


def test_radix_select_handles_negatives_zeros_and_infinities():
    x = torch.tensor([[-0.0, 0.0, -1e-30, 1e-30, float("-inf"), -3.0, float("inf")]])
    mask = radix_select_mask(x, 3)  # key order is total: -0.0 sorts just below +0.0
    assert mask.tolist() == [[False, True, False, True, False, False, True]]
    assert radix_select_mask(-x, 2)[0, 4] and radix_select_mask(-x, 2)[0, 5]


def test_statistical_topk_is_close_on_gaussian_rows_and_wrong_on_skewed_ones():
    g = torch.Generator().manual_seed(1)
    gauss = torch.randn(8, 65536, generator=g)
    k = 3277
    ratio = statistical_mask(gauss, k).sum(1).float() / k
    assert ((ratio > 0.9) & (ratio < 1.1)).all()
    skewed = torch.exp(-torch.rand(8, 65536, generator=g) * 20)  # like exp(-d^2) ignition
    ratio_s = statistical_mask(skewed, k).sum(1).float() / k
    assert (ratio_s - 1).abs().min() > 0.2  # why it is not the default


def test_mask_to_ids_roundtrip():
    mask = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)
    ids, valid = mask_to_ids(mask)
    assert ids.tolist() == [[1, 2], [0, 0]] and valid.tolist() == [[True, True], [True, False]]


# ------------------------------------------------------------------ keys, near-ties, boundaries
def _reference_mask(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest of each row, ties to the lowest index (a stable descending sort)."""
    order = torch.sort(x, dim=1, descending=True, stable=True).indices[:, :k]
    mask = torch.zeros_like(x, dtype=torch.bool)
    return mask.scatter_(1, order, True)


def test_float_keys_closed_forms_and_total_order():
    vals = [float("-inf"), -3.0, -1.0, -1e-30, -0.0, 0.0, 1e-45, 1e-30, 1.0, 3.0, float("inf")]
    keys = float_keys(torch.tensor(vals))
    assert keys.dtype == torch.int64
    assert (keys[1:] > keys[:-1]).all()  # strictly increasing, -0.0 just below +0.0
    assert keys[5].item() == 0x80000000 and keys[4].item() == 0x7FFFFFFF
    assert keys[8].item() == 0xBF800000  # 1.0 = 0x3F800000 with the sign bit set
    assert keys[2].item() == 0xFFFFFFFF - 0xBF800000  # -1.0: all bits flipped
    assert keys[6].item() == 0x80000001  # the smallest subnormal


@pytest.mark.parametrize("n", [300, 5000])  # narrow (four 8-bit passes) and wide (12/12/8) rows
@pytest.mark.parametrize("span", [8, 20, 32])  # values differing only in the low `span` bits
def test_radix_select_one_ulp_near_ties(n, span):
    """Scores that differ only in their lowest bits (one-ulp neighbours, duplicates): the
    exact k-th key needs every histogram pass to be right."""
    g = torch.Generator().manual_seed(span + n)
    base = 0x3F800000 if span < 32 else 0
    bits = torch.randint(0, 1 << min(span, 30), (3, n), generator=g, dtype=torch.int64)
    if span == 32:
        bits = torch.randint(-(1 << 31), (1 << 31) - 0x800000, (3, n), generator=g)
    x = (base + bits).to(torch.int32).view(torch.float32)
    x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
    x[:, 7] = x[:, 3]  # an exact tie
    for k in (1, 37, n // 2, n - 1):
        assert torch.equal(radix_select_mask(x, k), _reference_mask(x, k)), k


def test_radix_select_rows_ragged_with_short_and_empty_rows():
    counts = [6, 0, 2, 9, 3]
    rows = torch.repeat_interleave(torch.arange(5), torch.tensor(counts))
    scores = torch.tensor(
        [5.0, 1.0, 5.0, 2.0, 0.5, 5.0] + [7.0, -7.0] + [3.0, 3.0, 1.0, 9.0, 3.0, 0.0, 3.0, 2.0, 3.0]
        + [-1.0, -2.0, -3.0]
    )  # fmt: skip
    mask = radix_select_rows(scores, rows, 5, 3)
    want = [True, False, True, False, False, True] + [True, True]
    want += [True, True, False, True, False, False, False, False, False] + [True] * 3
    assert mask.tolist() == want
    # k at least every row's count: everything; k = 0 or no entries: nothing
    assert radix_select_rows(scores, rows, 5, 9).all()
    assert not radix_select_rows(scores, rows, 5, 0).any()
    assert not radix_select_rows(scores, rows, 5, -2).any()
    empty = radix_select_rows(torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0, 3)
    assert empty.shape == (0,) and empty.dtype == torch.bool


def test_radix_select_all_equal_rows_take_the_lowest_indices():
    x = torch.full((2, 4500), 0.25)
    mask = radix_select_mask(x, 10)
    assert mask[:, :10].all() and not mask[:, 10:].any()


def test_radix_select_mask_rejects_non_2d():
    with pytest.raises(ValueError, match=r"\[B, n\]"):
        radix_select_mask(torch.zeros(5), 2)


def test_segment_rank_counts_within_each_row():
    flags = torch.tensor([1, 0, 1, 1, 1, 1, 0, 0, 1], dtype=torch.bool)
    rows = torch.tensor([0, 0, 0, 0, 2, 2, 2, 3, 3])
    counts = torch.tensor([4, 0, 3, 2])
    assert segment_rank(flags, rows, counts).tolist() == [1, 1, 2, 3, 1, 2, 2, 0, 1]


def _theta(vals: list[float], k: int) -> float:
    n = len(vals)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / n)
    q = min(max(1 - k / n, 1e-6), 1 - 1e-6)
    z = math.sqrt(2) * torch.erfinv(torch.tensor(2 * q - 1, dtype=torch.float64)).item()
    return mean + std * z


def test_statistical_rows_threshold_on_offset_rows_and_exact_ties():
    """Rows with non-zero means and different spreads; a row whose threshold is exactly one of
    its values (k = n/2: theta = mean) keeps that value (x >= theta)."""
    r0 = [100.0 + i for i in range(10)]
    r1 = [-50.0, -40.0, -30.0, -20.0, 0.0, 20.0, 60.0, 80.0]
    r2 = [1.0, 2.0, 2.0, 3.0]
    k = 2
    scores = torch.tensor(r0 + r1 + r2)
    rows = torch.repeat_interleave(torch.arange(4), torch.tensor([10, 8, 0, 4]))
    mask = statistical_rows(scores, rows, 4, k)
    want = [v >= _theta(r, k) for r in (r0, r1, r2) for v in r]
    assert mask.tolist() == want
    assert mask[-4:].tolist() == [False, True, True, True]  # theta = mean = 2 exactly
    assert mask.sum().item() == 3 + 2 + 3


def test_statistical_mask_uses_only_valid_entries_and_keeps_ties():
    x = torch.tensor([[1.0, 2.0, 2.0, 3.0, 1e6, -1e6], [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]])
    valid = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    mask = statistical_mask(x, 2, valid)
    assert mask[0].tolist() == [False, True, True, True, False, False]  # theta = mean = 2
    r1 = x[1].tolist()
    assert mask[1].tolist() == [v >= _theta(r1, 2) for v in r1]
    assert statistical_mask(x[1:], 2).tolist() == mask[1:].tolist()


def test_mask_to_ids_narrow_wide_and_empty():
    mask = torch.tensor([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    ids, valid = mask_to_ids(mask, width=2)  # narrower than a row's count: the first two
    assert ids.tolist() == [[1, 2], [0, 0], [0, 0]]
    assert valid.tolist() == [[True, True], [True, False], [False, False]]
    ids, valid = mask_to_ids(mask, width=4)
    assert ids.tolist() == [[1, 2, 4, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert valid.sum(1).tolist() == [3, 1, 0]
    ids, valid = mask_to_ids(torch.zeros(2, 3, dtype=torch.bool))
    assert ids.shape == (2, 1) and not valid.any()
    ids, valid = mask_to_ids(mask, width=0)  # at least one slot
    assert ids.shape == (3, 1) and valid[:, 0].tolist() == [True, True, False]


def _outlier_rows(n_zeros: int, value: float) -> list[float]:
    """n_zeros zeros and one outlier: its z-score is sqrt(n_zeros) * sign(value)."""
    return [0.0] * n_zeros + [value]


@pytest.mark.parametrize("stat", ["rows", "mask"])
def test_statistical_quantile_clamps_at_1e6_and_one_minus_1e6(stat):
    """k = 0 or k >= n puts Phi^-1 at its clamp, |z| = Phi^-1(1 - 1e-6) = 4.753. Outliers at
    z = +-sqrt(22) = 4.690 and +-sqrt(23) = 4.796 fall on either side of it (and of the
    4.611 a clamp at 2e-6 would give)."""
    rows_up = [_outlier_rows(22, 1.0), _outlier_rows(23, 1.0)]
    rows_down = [_outlier_rows(22, -1.0), _outlier_rows(23, -1.0)]

    def run(rows, k):
        if stat == "rows":
            scores = torch.tensor([v for r in rows for v in r])
            ids = torch.repeat_interleave(torch.arange(2), torch.tensor([len(r) for r in rows]))
            m = statistical_rows(scores, ids, 2, k)
            return [int(m[ids == i].sum()) for i in range(2)]
        x = torch.full((2, 24), 5.0)
        valid = torch.zeros(2, 24, dtype=torch.bool)
        for i, r in enumerate(rows):
            x[i, : len(r)] = torch.tensor(r)
            valid[i, : len(r)] = True
        return statistical_mask(x, k, valid).sum(1).tolist()

    assert run(rows_up, 0) == [0, 1]  # theta = mean + 4.753 std: only the 4.796 outlier
    assert run(rows_down, 30) == [23, 23]  # theta = mean - 4.753 std: both outliers kept
    assert run(rows_down, 23) == [23, 23]  # k = n of the first row: q = 0, clamped


@pytest.mark.parametrize("stat", ["rows", "mask"])
def test_statistical_single_entry_rows_keep_a_negative_value(stat):
    """A row of one entry: mean = x, var = 0, q = 1 - k clamped: theta = x, kept (x >= x)."""
    if stat == "rows":
        scores = torch.tensor([-3.0, 2.0, 4.0, -1.0])
        m = statistical_rows(scores, torch.tensor([0, 1, 1, 2]), 3, 1)
        assert m.tolist() == [True, False, True, True]
    else:
        x = torch.tensor([[-3.0, 7.0, 7.0], [-1.0, 2.0, -9.0]])
        valid = torch.tensor([[1, 0, 0], [1, 0, 0]], dtype=torch.bool)
        assert statistical_mask(x, 1, valid).tolist() == [
            [True, False, False],
            [True] + [False] * 2,
        ]


def test_statistical_mask_variance_ignores_invalid_entries():
    # row 1: valid 0, 1, 2, 2.3 (mean 1.325, std 0.904), k = 1: z = Phi^-1(0.75) = 0.674,
    # theta = 1.935: keeps 2 and 2.3; the two invalid entries counted as 1 each in the
    # variance would give theta = 2.099 and drop the 2
    x = torch.tensor([[0.0, 0.0, 0.0, 4.0, 9.0, 9.0], [0.0, 1.0, 2.0, 2.3, 2.6, 2.6]])
    valid = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    got = statistical_mask(x, 1, valid)
    assert got[0].tolist() == [False, False, False, True, False, False]
    assert got[1].tolist() == [False, False, True, True, False, False]
    assert _theta(x[1, :4].tolist(), 1) == pytest.approx(1.9346, abs=1e-4)
