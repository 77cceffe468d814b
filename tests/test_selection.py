"""Exact sort-free active-set selection and the statistical top-k it replaces."""

import pytest
import torch

from rsgn.selection import mask_to_ids, radix_select_mask, statistical_mask


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
