"""Shared fixtures: small models and data that keep the suite fast on 2 CPU cores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsgn.config import ModelConfig


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def small_cfg(**kw) -> ModelConfig:
    base = dict(
        n_nodes=64, d_hidden=16, affinity_rank=8, k_in=8, k_sprout=2, n_steps=3, target_active=0.1
    )
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture
def npz(tmp_path):
    """A small learnable .npz data set: 60 samples of 6 tokens x 5 features, 3 classes (the
    class is written into the first token)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 6, 5)).astype(np.float32)
    y = (np.arange(60) % 3).astype(np.int64)
    x[np.arange(60), 0, y] += 3.0
    p = tmp_path / "data.npz"
    np.savez(p, X=x, y=y)
    return p
