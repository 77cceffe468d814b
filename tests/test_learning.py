"""Small fast versions of the paper's two tasks learn well above chance."""

import pytest

from rsgn.config import apply_overrides, load_config
from rsgn.data import make_task
from rsgn.training import train

SMALL = ["model.n_nodes=128", "model.d_hidden=64", "model.n_steps=3", "train.lr=3e-3",
         "train.min_steps=0"]  # fmt: skip


@pytest.mark.slow
def test_hierarchical_learns_well_above_chance(tmp_path):
    cfg = apply_overrides(load_config(None), [*SMALL, "data.n_samples=2000", "train.epochs=6"])
    ds = make_task("hierarchical", cfg.data, seed=0)
    m = train(cfg, ds, tmp_path / "h", log=None)
    assert m["accuracy"] > 2.5 * (1 / 20), m["accuracy"]  # chance is 5%
    assert m["active_fraction"] <= 0.05


@pytest.mark.slow
def test_long_range_learns_well_above_chance(tmp_path):
    cfg = apply_overrides(
        load_config(None), [*SMALL, "data.n_samples=900", "data.seq_len=64", "train.epochs=4"]
    )
    ds = make_task("long-range", cfg.data, seed=0)
    m = train(cfg, ds, tmp_path / "l", log=None)
    assert m["accuracy"] > 0.5, m["accuracy"]  # chance is 10%
    assert m["active_fraction"] <= 0.05
