"""Exact hyperbolic kNN through a Euclidean k-d tree."""

import pytest
import torch

from rsgn import geometry as G
from rsgn.topology import knn_hyperbolic, knn_hyperbolic_bruteforce


@pytest.mark.parametrize("n,k,scale", [(50, 5, 0.5), (300, 16, 1.0), (400, 8, 2.5)])
def test_knn_matches_bruteforce(n, k, scale):
    v = torch.randn(n, 3) * scale
    x, a = G.expmap0_with_conformal(v)
    fast = knn_hyperbolic(x, a, k)
    slow = knn_hyperbolic_bruteforce(x, a, k)
    # same neighbour sets (order may differ only between exactly tied distances)
    assert (fast.sort(1).values == slow.sort(1).values).all()
    assert not (fast == torch.arange(n).unsqueeze(1)).any()


def test_knn_rejects_bad_k():
    x, a = G.expmap0_with_conformal(torch.randn(5, 3))
    with pytest.raises(ValueError):
        knn_hyperbolic(x, a, 5)
