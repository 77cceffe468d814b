"""Shared fixtures: small models and data that keep the suite fast on 2 CPU cores."""

from __future__ import annotations

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
