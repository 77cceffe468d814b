"""Small fast versions of the paper's two tasks learn well above chance."""

import pytest
import torch

from rsgn.config import apply_overrides, load_config
from rsgn.data import make_task
from rsgn.train import train


@pytest.mark.slow
def test_hierarchical_learns_well_above_chance(tmp_path):
    cfg = apply_overrides(
        load_config(None),
        [
            "data.n_samples=1200",
            "train.epochs=4",
            "model.n_nodes=128",
            "model.d_hidden=64",
            "model.n_steps=3",
            "model.target_active=0.05",
        ],
    )
    ds = make_task("hierarchical", cfg.data, seed=0)
    m = train(cfg, ds, tmp_path / "h", log=None)
    assert m["accuracy"] > 3 * (1 / 20), m["accuracy"]  # chance is 5%
    assert m["active_fraction"] <= 0.05 + 1e-9


@pytest.mark.slow
def test_long_range_learns_well_above_chance(tmp_path):
    torch.manual_seed(0)
    cfg = apply_overrides(
        load_config(None),
        [
            "data.n_samples=900",
            "train.epochs=4",
            "model.n_nodes=128",
            "model.d_hidden=64",
            "model.n_steps=4",
            "data.seq_len=64",
        ],
    )
    ds = make_task("long-range", cfg.data, seed=0)
    m = train(cfg, ds, tmp_path / "l", log=None)
    assert m["accuracy"] > 0.5, m["accuracy"]  # chance is 10%
