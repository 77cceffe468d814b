"""studies/gpu_kernels/hits.py: the fused step's work counts agree with the graph's own
out-degrees (the counts the GPU runbook's kernel variants are judged by)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parents[1] / "studies" / "gpu_kernels"


@pytest.fixture
def hits_module(monkeypatch):
    monkeypatch.syspath_prepend(str(STUDY))
    for name in ("hits", "step_bench"):
        sys.modules.pop(name, None)
    import hits

    return hits


@pytest.mark.parametrize("config", [None, "paper"])
def test_hit_counts_match_the_active_out_degrees(hits_module, config):
    row = hits_module.count(256, 8, "cpu", config)
    # every active in-edge of a row is an out-edge of an active state, and back
    assert row["gathers"] == row["active_out_edges"]
    assert row["gathers"] == row["slot_lookups_mask"] > 0
    assert row["slot_lookups_default"] == row["batch"] * 256 * 8  # every in-slot is live here
    assert row["activity_word_loads_mask"] == 256 * 8 * 2  # 64 samples: two 32-bit words
    assert sum(row["rows_by_hits"].values()) == pytest.approx(1.0)
    assert row["mean_hits_per_row"] == pytest.approx(row["gathers"] / row["rows"])
    assert 0 < row["gathers_single_hit"] <= row["gathers"]
    assert row["rows_by_hits"]["1"] * row["rows"] == pytest.approx(row["gathers_single_hit"])
    assert row["d_space"] == (3 if config == "paper" else 8)
    assert row["bytes_gather"] > row["bytes_min"] > 0
