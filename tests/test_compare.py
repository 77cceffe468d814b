"""``rsgn compare``: one tiny checkpoint on torch, optical (ideal), neuromorphic (float) and
Triton under the interpreter gives a complete report; unavailable backends are skipped with the
reason; bad flags are one-line errors."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

if not torch.cuda.is_available():  # before triton is imported anywhere in this process
    os.environ.setdefault("TRITON_INTERPRET", "1")

from rsgn.cli import main  # noqa: E402
from rsgn.compare import COLUMNS, NUMERIC, compare, pareto_front, run_compare  # noqa: E402
from rsgn.config import apply_overrides, load_config  # noqa: E402
from rsgn.data import make_task  # noqa: E402
from rsgn.train import train  # noqa: E402

TINY = [
    "model.n_nodes=32",
    "model.d_hidden=8",
    "model.affinity_rank=4",
    "model.k_in=4",
    "model.k_sprout=1",
    "model.n_steps=2",
    "model.target_active=0.25",
    "train.epochs=1",
    "train.batch_size=16",
    "data.n_samples=40",
    "data.seq_len=8",
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = apply_overrides(load_config(None), TINY)
    ds = make_task("hierarchical", cfg.data, seed=cfg.train.seed)
    out = tmp_path_factory.mktemp("cmp") / "run"
    train(cfg, ds, out, log=None)
    return out


def _is_na(v) -> bool:
    return isinstance(v, str) and v.startswith("n/a: ") and len(v) > len("n/a: ") + 3


def _check_complete(row):
    assert list(row) == list(COLUMNS)
    for col in NUMERIC:
        v = row[col]
        assert isinstance(v, float) or _is_na(v), (row["backend"], col, v)


def test_report_is_complete_and_written(ckpt, tmp_path):
    out = tmp_path / "report"
    report, files = run_compare(
        ckpt,
        task="hierarchical",
        data=None,
        backends="torch,optical,neuromorphic",
        presets=["optical=ideal", "neuromorphic=loihi2_est"],
        out=out,
        limit=8,
        batch_size=4,
    )
    rows = {r["backend"]: r for r in report["rows"]}
    assert list(rows) == ["torch", "optical", "neuromorphic"]
    for r in rows.values():
        assert r["status"] == "ok" and r["n_samples"] == 8
        _check_complete(r)
        assert r["energy_j_per_inference"] > 0 and r["events_per_inference"] > 0
        assert 0 < r["active_fraction"] <= 0.25
        assert _is_na(r["energy_measured"])  # simulated / no power counter: says why
        bd = r["energy_breakdown_j_per_inference"]
        assert sum(bd.values()) == pytest.approx(r["energy_j_per_inference"], rel=1e-9)
    assert rows["optical"]["preset"] == "ideal"
    assert rows["neuromorphic"]["preset"] == "loihi2_est"
    # the torch reference cannot agree with itself: n/a with a reason, not 1 or 0
    assert rows["torch"]["agreement"] == "n/a: torch is the reference"
    for name in ("optical", "neuromorphic"):  # ideal optics / float chip reproduce torch
        assert rows[name]["agreement"] == 1.0
        assert rows[name]["max_abs_logit_err"] < 1e-4
        assert rows[name]["mean_abs_logit_err"] <= rows[name]["max_abs_logit_err"]
    # a per-inference latency distribution only from the chip model; labelled kinds
    nm = rows["neuromorphic"]
    assert 0 < nm["latency_p50_s"] <= nm["latency_p99_s"]
    assert nm["latency_kind"].startswith("modelled")
    assert _is_na(rows["torch"]["latency_p50_s"]) and "per batch" in rows["torch"]["latency_p50_s"]
    assert rows["torch"]["latency_kind"].startswith("measured")
    assert rows["optical"]["latency_kind"].startswith("modelled")
    assert rows["torch"]["latency_s_per_inference"] > 0
    # files
    for key in ("json", "csv", "table", "energy_breakdown", "pareto"):
        assert os.path.getsize(files[key]) > 0, key
    for key in ("energy_breakdown", "pareto"):
        with open(files[key], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(open(files["json"]).read())
    assert [r["backend"] for r in saved["rows"]] == list(rows)
    with open(files["csv"]) as f:
        csv_rows = list(csv.DictReader(f))
    assert list(csv_rows[0]) == list(COLUMNS) and len(csv_rows) == 3
    assert csv_rows[0]["agreement"] == "n/a: torch is the reference"
    assert float(csv_rows[1]["agreement"]) == 1.0
    assert "| backend |" in open(files["table"]).read()


def test_triton_under_the_interpreter(ckpt, tmp_path):
    pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set")
    report, _ = run_compare(
        ckpt,
        task="hierarchical",
        data=None,
        backends="torch,triton",
        presets=[],
        out=tmp_path / "r",
        limit=4,
        batch_size=4,
    )
    tr = report["rows"][1]
    assert tr["backend"] == "triton" and tr["status"] == "ok"
    _check_complete(tr)
    assert tr["agreement"] == 1.0 and tr["max_abs_logit_err"] < 1e-4
    if not torch.cuda.is_available():
        assert report["triton_interpret"] is True
        assert any("interpreter" in n for n in report["notes"])


def test_unavailable_and_not_asked_for_are_skipped_with_reason(ckpt, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: triton is available")
    from rsgn.checkpoint import load_model

    model, cfg, _ = load_model(ckpt)
    ds = make_task("hierarchical", cfg.data, seed=0)
    x, y = ds.x_val[:4], ds.y_val[:4]
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    rep = compare(model, x, y, ["optical", "triton"], batch_size=4)
    rows = {r["backend"]: r for r in rep["rows"]}
    assert list(rows) == ["torch", "optical", "triton"]  # torch added as the reference
    assert any("reference" in n for n in rep["notes"])
    assert rows["triton"]["status"].startswith("skipped: ") and "CUDA" in rows["triton"]["status"]
    for col in NUMERIC:
        assert _is_na(rows["triton"][col])
    # interpreter allowed by the environment, but triton not listed explicitly: skipped
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    rep = compare(model, x, y, ["torch", "triton"], explicit=False, batch_size=4)
    st = rep["rows"][1]["status"]
    assert st.startswith("skipped: ") and "explicitly" in st


def test_cli_compare_and_errors(ckpt, tmp_path, capsys):
    out = tmp_path / "c"
    rc = main(
        [
            "compare",
            "--ckpt",
            str(ckpt),
            "--task",
            "hierarchical",
            "--backends",
            "torch,optical",
            "--limit",
            "4",
            "--batch-size",
            "4",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "optical" in printed and (out / "compare.csv").is_file()
    for argv, needle in (
        (["--backends", "torch,nope"], "nope"),
        (["--backends", "torch", "--preset", "optical=bench"], "optical"),
        (["--backends", "torch,optical", "--preset", "optical=nosuch"], "nosuch"),
        (["--limit", "0"], "--limit"),
    ):
        rc = main(
            [
                "compare",
                "--ckpt",
                str(ckpt),
                "--task",
                "hierarchical",
                "--out",
                str(tmp_path / "e"),
                *argv,
            ]
        )
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith("rsgn: error: ") and needle in err, (argv, err)
        assert len(err.splitlines()) == 1


def test_backend_args_reach_the_backend_and_bad_ones_are_one_line_errors(ckpt, tmp_path, capsys):
    """``--backend-arg BACKEND.KEY=VALUE`` (compare) and ``KEY=VALUE`` (eval) set constructor
    options: a node split of 3 shows in the neuromorphic mapping; unknown keys list the
    options."""
    base = ["--ckpt", str(ckpt), "--task", "hierarchical"]
    out = tmp_path / "c"
    argv = [*base, "--backends", "torch,neuromorphic", "--limit", "4", "--out", str(out)]
    assert main(["compare", *argv, "--backend-arg", "neuromorphic.node_split=3"]) == 0
    capsys.readouterr()
    rep = json.loads((out / "compare.json").read_text())
    nm = rep["backends"]["neuromorphic"]
    assert nm["options"] == {"node_split": 3}
    metrics = nm["evaluation"]["backend_metrics"]  # one batch: one dict
    assert metrics["mapping"]["node_split"] == 3
    f = tmp_path / "eval.json"
    ev = [*base, "--backend", "neuromorphic", "--backend-arg", "node_split=2", "--out", str(f)]
    assert main(["eval", *ev]) == 0
    capsys.readouterr()
    assert '"node_split": 2' in f.read_text()
    for cmd, args, needle in (
        ("compare", ["--backends", "torch", "--backend-arg", "optical.x=1"], "not in --backends"),
        ("compare", ["--backends", "torch", "--backend-arg", "torch=1"], "BACKEND.KEY=VALUE"),
        (
            "compare",
            ["--backends", "torch,neuromorphic", "--backend-arg", "neuromorphic.nodesplit=2"],
            "has no option 'nodesplit' (options: mode, payload_bits",
        ),
        ("eval", ["--backend", "neuromorphic", "--backend-arg", "node_split=0"], "node_split"),
        ("eval", ["--backend", "neuromorphic", "--backend-arg", "node_split"], "KEY=VALUE"),
        ("eval", ["--backend", "neuromorphic", "--backend-arg", "seed=abc"], "neuromorphic"),
    ):
        rc = main([cmd, *base, "--out", str(tmp_path / "e"), *args])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith("rsgn: error: ") and needle in err, (args, err)
        assert len(err.splitlines()) == 1


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.55), (0.5, 0.4), (1.0, 0.4)]
    assert pareto_front(pts) == [0, 1, 3]
