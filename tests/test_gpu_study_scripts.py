"""The GPU study's scripts on the CPU: hits.py's work counts agree with the graph's own
out-degrees (the counts the GPU runbook's kernel variants are judged by), and step_bench.py
runs its code paths under the Triton interpreter (``--cpu-smoke``), so a lent GPU's minutes
are not spent finding a script's bugs."""

from __future__ import annotations

import json
import subprocess
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
    assert row["gathers"] == row["active_out_edges"] > 0
    assert row["slot_lookups_default"] == row["batch"] * 256 * 8  # every in-slot is live here
    assert row["activity_word_loads_mask"] == 256 * 8 * 2  # 64 samples: two 32-bit words
    assert 0 < row["gathers_single_hit"] < row["gathers"]
    assert 0 < row["update_gathers"] < row["gathers"]
    assert row["d_space"] == (3 if config == "paper" else 8)
    assert row["bytes_gather"] > row["bytes_min"] > 0


def test_row_hits_equal_a_push_along_the_out_edges(hits_module):
    """The pull count (in-slots with an active source) per (sample, node) equals a push from
    each active node along its out-edges in the graph's CSR (edge id i K + s lands on i)."""
    import torch
    from bench import model_config, step_setting

    from rsgn.model import RSGN

    torch.manual_seed(3)
    cfg = model_config(96, 5)
    model = RSGN(32, 20, cfg)
    _, graph, st, _, _ = step_setting(model, cfg, 3, "cpu")
    hits = hits_module.row_hits(graph, st)
    k = graph.in_idx.shape[1]
    push = torch.zeros_like(hits)
    for b in range(st.ids.shape[0]):
        for j in st.ids[b][st.valid[b]].tolist():
            for e in graph.out_edge[graph.out_ptr[j] : graph.out_ptr[j + 1]].tolist():
                if graph.in_mask.view(-1)[e]:
                    push[b, e // k] += 1
    assert int(push.sum()) > 0 and bool((push > 1).any())
    assert torch.equal(hits, push)


def test_step_bench_cpu_smoke_runs_every_variant(tmp_path):
    pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
    out = tmp_path / "step.json"
    args = ["--cpu-smoke", "--sizes", "96", "--ks", "4", "--batch", "3", "--repeats", "1"]
    args += ["--variants", "MASK", "MASK+STORE", "--config", "paper", "--out", str(out)]
    p = subprocess.run(
        [sys.executable, str(STUDY / "step_bench.py"), *args], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["config"] == "paper" and row["d_space"] == 3 and row["batch"] == 3
    assert row["ids_equal"]  # the fused step picks torch's winners, and so do the variants
    assert row["MASK_ids_equal_fused"] and row["MASK+STORE_ids_equal_fused"]
    assert row["max_abs_h_err"] < 1e-5 and row["MASK+STORE_max_abs_h_err"] < 1e-5
    for key in ("torch_s", "triton_fused_s", "triton_fused_MASK_s", "triton_fused_MASK+STORE_s"):
        assert isinstance(row[key], float) and row[key] > 0, key
    bad = subprocess.run(
        [sys.executable, str(STUDY / "step_bench.py"), "--variants", "NOPE"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "NOPE is not an off switch" in bad.stderr


def test_checkpoint_out_degrees_per_step(hits_module, tmp_path):
    """--ckpt: one active out-degree per step (the ignited set, then each step's winners),
    each between the graph's smallest and largest out-degree, for the trained model and an
    untrained one of the same config."""
    from rsgn.config import apply_overrides, load_config
    from rsgn.data import make_task
    from rsgn.training import train

    sets = ["data.n_samples=40", "train.epochs=1", "train.min_steps=0", "model.n_nodes=48",
            "model.n_steps=3"]  # fmt: skip
    cfg = apply_overrides(load_config(None), sets)
    train(cfg, make_task("hierarchical", cfg.data, seed=0), tmp_path / "run", log=None)
    res = hits_module.checkpoint_out_degrees(str(tmp_path / "run"), "hierarchical", samples=5)
    assert res["samples"] == 5 and res["n_nodes"] == 48
    for key in ("trained", "untrained"):
        steps = res[f"{key}_active_out_degree_by_step"]
        assert len(steps) == 3
        assert all(0 < d < 48 for d in steps)
        cover, jac = res[f"{key}_nodes_ever_active_by_step"], res[f"{key}_mean_jaccard_by_step"]
        assert len(cover) == len(jac) == 3
        assert all(0 < c <= 1 for c in cover) and all(0 <= j <= 1 for j in jac)
    assert res["untrained_graph_out_degree_mean"] == 16.0  # k in-edges per node, no sprouts


def test_active_set_overlap(hits_module):
    import torch

    ids = torch.tensor([[0, 1, 2], [0, 1, 3], [4, 0, 0]])
    ok = torch.tensor([[True, True, True], [True, True, True], [True, False, False]])
    cover, jac = hits_module.active_set_overlap(ids, ok, 6)
    assert cover == pytest.approx(5 / 6)  # node 5 is never active
    assert jac == pytest.approx((2 / 4 + 0 + 0) / 3)  # pairs (0,1), (0,2), (1,2)


def _no_interpreter_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}


def test_compile_check_compiles_the_fused_step_variants_for_sm90(tmp_path):
    """Every launch of the fused step (default, MASK, STORE, both; op by op too) and the PTX
    fast tanh compile for an H100 with ptxas, without a GPU."""
    pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
    out = tmp_path / "cc.json"
    p = subprocess.run(
        [sys.executable, str(STUDY / "compile_check.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=_no_interpreter_env(),
    )
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    res = json.loads(out.read_text())
    assert res["arch"] == "sm_90" and res["failed"] == 0 and res["compiled"] >= 15
    seen = {
        (r["kernel"].rsplit(".", 1)[1], tuple(sorted(r["constexprs"].items()))) for r in res["rows"]
    }
    scores = [dict(c) for k, c in seen if k == "_scores_kernel"]
    assert {(c["MASK"], c["STORE"]) for c in scores} == {(0, 0), (1, 0), (0, 1), (1, 1)}
    assert {dict(c)["FAST"] for k, c in seen if k == "_gate_fwd_kernel"} == {False, True}


def test_compile_check_reports_a_kernel_that_does_not_compile(tmp_path):
    """A kernel the interpreter runs but the compiler rejects (a loop-carried value that
    changes type inside a runtime loop) is reported with the compiler's error; the same
    kernel without the type change compiles."""
    pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
    (tmp_path / "broken_kernels.py").write_text(
        "import triton\nimport triton.language as tl\n\n\n@triton.jit\n"
        "def bad(x_ptr, n, WIDE: tl.constexpr):\n"
        "    o = tl.arange(0, 16)\n"
        "    acc = tl.load(x_ptr + o)\n"
        "    for i in range(n):\n"
        "        if WIDE:\n"
        "            acc = acc.to(tl.float64) + 1.0\n"
        "        else:\n"
        "            acc = acc + 1.0\n"
        "    tl.store(x_ptr + o, acc.to(tl.float32))\n"
    )
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import compile_check as c\n"
        "for wide in (True, False):\n"
        "    sig = {'x_ptr': '*fp32', 'n': 'i32', 'WIDE': 'constexpr'}\n"
        "    spec = {'module': 'broken_kernels', 'kernel': 'bad', 'options': {},\n"
        "            'signature': sig, 'constexprs': {'WIDE': wide}}\n"
        "    print(wide, c.compile_one(spec, 90))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(STUDY)],
        capture_output=True,
        text=True,
        env=_no_interpreter_env(),
    )
    assert p.returncode == 0, p.stderr[-2000:]
    lines = dict(ln.split(" ", 1) for ln in p.stdout.strip().splitlines())
    assert lines["False"] == "ok"
    assert lines["True"] != "ok" and "Error" in lines["True"]
