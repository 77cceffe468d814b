"""The Python API: the docstring examples of rsgn.api run (they are the documentation), and
each entry point returns its typed result."""

from __future__ import annotations

import doctest

import pytest
import torch

import rsgn
import rsgn.api
from rsgn.backends.base import Measured, Modelled
from rsgn.errors import RsgnError


def test_the_api_docstring_examples_run(tmp_path):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(rsgn.api, globs={"tmp": tmp_path}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 6


def test_api_entry_points_return_typed_results(tmp_path):
    cfg = rsgn.run_config(
        **{"model.n_nodes": 32, "model.d_hidden": 8, "model.k_in": 4, "train.epochs": 1},
        **{"data.n_samples": 60, "data.seq_len": 8},
    )
    data = rsgn.task("hierarchical", cfg)
    run = rsgn.train(cfg, data, out=tmp_path / "r", log=None)
    assert isinstance(run, rsgn.Run) and run.metrics["epochs"] == 1
    again = rsgn.load(tmp_path / "r")
    x = data.x_val[:5]
    torch.testing.assert_close(again.model(x).logits, run.model(x).logits)
    ev = rsgn.evaluate(run.model, data.x_val, data.y_val, target="neuromorphic", mode="float")
    assert isinstance(ev.report.latency, Modelled) and isinstance(ev.report.wall_time, Measured)
    cmp = rsgn.compare(run.model, x, data.y_val[:5], targets=["torch", "neuromorphic"])
    assert [r["target"] for r in cmp.rows] == ["torch", "neuromorphic"]
    assert "| row |" in cmp.table()
    files = cmp.write(tmp_path / "report")
    assert (tmp_path / "report" / "compare.json").is_file() and "pareto" in files
    names = {t["name"]: t for t in rsgn.targets()}
    assert names["torch"]["available"] and "electronic_45nm" in names["torch"]["presets"]
    with pytest.raises(RsgnError, match="unknown config key"):
        rsgn.run_config(**{"model.nodes": 3})
