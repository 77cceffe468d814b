"""``rsgn compare``: one tiny checkpoint on torch, optical (ideal and bench in one report),
neuromorphic (float) and Triton under the interpreter gives a complete report read from typed
values; unavailable or emulated targets are skipped with the reason; a failed row makes the
command exit non-zero; an earlier report is never overwritten; bad flags are one-line
errors before any work."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

if not torch.cuda.is_available():  # before triton is imported anywhere in this process
    os.environ.setdefault("TRITON_INTERPRET", "1")

from rsgn.cli import main  # noqa: E402
from rsgn.comparison import (  # noqa: E402
    COLUMNS,
    NUMERIC,
    RowSpec,
    compare,
    new_report_dir,
    pareto_front,
    parse_rows,
    run_compare,
)
from rsgn.config import apply_overrides, load_config  # noqa: E402
from rsgn.data import make_task  # noqa: E402
from rsgn.errors import RsgnError  # noqa: E402
from rsgn.training import train  # noqa: E402

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
    # the training these checks were written against (paper-training: epochs only, no
    # selection split, no augmentation); the 32-sample model trained with issue 18's default
    # training has a near-tied winner on one sample where triton's and torch's logits differ
    # by 0.0099 (predictions identical; measured)
    cfg = apply_overrides(load_config("paper-training"), TINY)
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
        assert isinstance(v, float) or _is_na(v), (row["row"], col, v)


def _run(ckpt, backends: str, out, limit: int):
    return run_compare(
        ckpt,
        task="hierarchical",
        data=None,
        backends=backends,
        presets=[],
        out=out,
        limit=limit,
        batch_size=4,
    )


def test_report_is_complete_and_written(ckpt, tmp_path):
    out = tmp_path / "report"
    report, files = _run(ckpt, "torch,optical:ideal,optical:bench,neuromorphic:loihi2_est", out, 8)
    rows = {r["row"]: r for r in report["rows"]}
    assert list(rows) == [
        "torch:electronic_45nm",
        "optical:ideal",
        "optical:bench",
        "neuromorphic:loihi2_est",
    ]
    for r in rows.values():
        assert r["status"] == "ok" and r["n_samples"] == 8
        _check_complete(r)
        assert r["energy_j_per_inference"] > 0 and r["events_per_inference"] > 0
        assert 0 < r["active_fraction"] <= 0.25
        assert _is_na(r["energy_measured_j_per_inference"])  # no power counter: says why
        bd = r["energy_breakdown_j_per_inference"]
        assert sum(bd.values()) == pytest.approx(r["energy_j_per_inference"], rel=1e-9)
        assert r["wall_time_s"] > 0
    torch_row = rows["torch:electronic_45nm"]
    assert torch_row["agreement"].startswith("n/a: ")  # the reference: n/a, not 1 or 0
    for name in ("optical:ideal", "neuromorphic:loihi2_est"):  # ideal optics, float chip
        assert rows[name]["agreement"] == 1.0
        assert rows[name]["mean_abs_logit_err"] <= rows[name]["max_abs_logit_err"]
    assert rows["optical:ideal"]["max_abs_logit_err"] < 1e-4
    # the float64 chip separates scores the float32 reference rounds into ties (this one-epoch
    # model's thresholds are nearly equal), so a few near-tied winners differ: small logit
    # errors, same predictions (tests/test_neuromorphic_backend.py measures it exactly)
    assert rows["neuromorphic:loihi2_est"]["max_abs_logit_err"] < 0.1
    # two presets of one target in one report, really different
    assert rows["optical:bench"]["energy_j_per_inference"] != pytest.approx(
        rows["optical:ideal"]["energy_j_per_inference"]
    )
    nm = rows["neuromorphic:loihi2_est"]
    assert 0 < nm["latency_p50_s"] <= nm["latency_p99_s"]
    assert nm["latency_kind"].startswith("modelled")
    assert _is_na(torch_row["latency_p50_s"])
    assert torch_row["latency_kind"].startswith("measured")
    assert rows["optical:ideal"]["latency_kind"].startswith("modelled")
    for key in ("json", "csv", "table", "batches", "energy_breakdown", "latency", "pareto"):
        assert os.path.getsize(files[key]) > 0, key
    for key in ("energy_breakdown", "latency", "pareto"):
        with open(files[key], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(open(files["json"]).read())
    assert [r["row"] for r in saved["rows"]] == list(rows)
    with open(files["csv"]) as f:
        csv_rows = list(csv.DictReader(f))
    assert list(csv_rows[0]) == list(COLUMNS) and len(csv_rows) == 4
    assert float(csv_rows[1]["agreement"]) == 1.0
    assert "| row |" in open(files["table"]).read()
    # a second report goes next to the first, never over it
    _, files2 = _run(ckpt, "torch", out, 4)
    assert os.path.dirname(files2["json"]).endswith("report-2")
    assert json.loads(open(files["json"]).read())["rows"] == saved["rows"]


def test_triton_under_the_interpreter(ckpt, tmp_path):
    pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set")
    report, _ = _run(ckpt, "torch,triton", tmp_path / "r", 4)
    tr = report["rows"][1]
    assert tr["target"] == "triton" and tr["status"] == "ok"
    _check_complete(tr)
    assert tr["agreement"] == 1.0 and tr["max_abs_logit_err"] < 1e-4
    if not torch.cuda.is_available():
        assert "interpreter" in tr["latency_kind"] and "CUDA" not in tr["latency_kind"]
        assert any("interpreter" in n for n in report["notes"])


def test_unavailable_and_emulated_not_asked_for_are_skipped_with_reason(ckpt, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: triton is available")
    from rsgn.checkpoint import load_model

    model, cfg, _ = load_model(ckpt)
    ds = make_task("hierarchical", cfg.data, seed=0)
    x, y = ds.x_val[:4], ds.y_val[:4]
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    rep = compare(model, x, y, [RowSpec("optical"), RowSpec("triton")], batch_size=4)
    rows = {r["target"]: r for r in rep["rows"]}
    assert list(rows) == ["torch", "optical", "triton"]  # torch added as the reference
    assert any("reference" in n for n in rep["notes"])
    assert rows["triton"]["status"].startswith("skipped: ") and "CUDA" in rows["triton"]["status"]
    for col in NUMERIC:
        assert _is_na(rows["triton"][col])
    # the interpreter is allowed by the environment, but triton was not listed: skipped
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    rep = compare(model, x, y, [RowSpec("torch"), RowSpec("triton")], explicit=False)
    st = rep["rows"][1]["status"]
    assert st.startswith("skipped: ") and "listed" in st


def test_a_target_that_cannot_run_the_model_is_refused_before_any_work(ckpt):
    from rsgn.checkpoint import load_model

    model, _, _ = load_model(ckpt)
    x, y = torch.randn(2, 8, 4), torch.zeros(2, dtype=torch.long)
    with pytest.raises(RsgnError, match="loihi") as ei:
        compare(model, x, y, [RowSpec("torch"), RowSpec("neuromorphic", "loihi")])
    assert "\n" not in str(ei.value)


def test_a_failed_row_exits_non_zero(ckpt, tmp_path, capsys, monkeypatch):
    from rsgn.backends.optical import OpticalBackend

    def boom(self, spec):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(OpticalBackend, "prepare", boom)
    argv = ["compare", "--ckpt", str(ckpt), "--task", "hierarchical", "--limit", "4"]
    rc = main([*argv, "--backends", "torch,optical", "--out", str(tmp_path / "f")])
    out, err = capsys.readouterr()
    assert rc == 1 and "failed" in err and "optical" in err
    rep = json.loads((tmp_path / "f" / "compare.json").read_text())
    assert rep["rows"][1]["status"] == "failed: simulated failure"
    assert not out.lstrip().startswith("{")  # stdout is the table, the JSON is in the file


def test_cli_compare_and_errors(ckpt, tmp_path, capsys):
    out = tmp_path / "c"
    argv = ["compare", "--ckpt", str(ckpt), "--task", "hierarchical"]
    rc = main([*argv, "--backends", "torch,optical", "--limit", "4", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "optical" in printed and (out / "compare.csv").is_file()
    (tmp_path / "file").write_text("x")
    for args, needle in (
        (["--backends", "torch,nope"], "nope"),
        (["--backends", "torch,optcal"], "did you mean 'optical'"),
        (["--backends", "torch", "--preset", "optical=bench"], "optical"),
        (["--backends", "torch,optical:nosuch"], "nosuch"),
        (["--backends", "torch,optical", "--preset", "optical=nosuch"], "nosuch"),
        (["--limit", "0"], "--limit"),
        (["--out", str(tmp_path / "file")], "is a file"),
    ):
        rc = main([*argv, "--out", str(tmp_path / "e"), *args])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith("rsgn: error: ") and needle in err, (args, err)
        assert len(err.splitlines()) == 1


def test_target_args_reach_the_target_and_bad_ones_are_one_line_errors(ckpt, tmp_path, capsys):
    """``--backend-arg TARGET.KEY=VALUE`` (compare) and ``KEY=VALUE`` (eval) set typed
    options: a node split of 3 shows in the neuromorphic mapping; unknown keys list them."""
    base = ["--ckpt", str(ckpt), "--task", "hierarchical"]
    out = tmp_path / "c"
    argv = [*base, "--backends", "torch,neuromorphic", "--limit", "4", "--out", str(out)]
    assert main(["compare", *argv, "--backend-arg", "neuromorphic.node_split=3"]) == 0
    capsys.readouterr()
    rep = json.loads((out / "compare.json").read_text())
    nm = next(v for k, v in rep["targets"].items() if k.startswith("neuromorphic"))
    assert nm["options"]["node_split"] == 3
    assert '"node_split": 3' in (out / "batches.json").read_text()
    f = tmp_path / "eval.json"
    ev = [*base, "--backend", "neuromorphic", "--backend-arg", "node_split=2", "--out", str(f)]
    assert main(["eval", *ev]) == 0
    capsys.readouterr()
    assert '"node_split": 2' in f.read_text()
    for cmd, args, needle in (
        ("compare", ["--backends", "torch", "--backend-arg", "optical.x=1"], "not in --backends"),
        ("compare", ["--backends", "torch", "--backend-arg", "torch=1"], "TARGET.KEY=VALUE"),
        (
            "compare",
            ["--backends", "torch,neuromorphic", "--backend-arg", "neuromorphic.nodesplit=2"],
            "has no option 'nodesplit' (did you mean 'node_split'?)",
        ),
        ("eval", ["--backend", "neuromorphic", "--backend-arg", "node_split=0"], "node_split"),
        ("eval", ["--backend", "neuromorphic", "--backend-arg", "node_split"], "KEY=VALUE"),
        ("eval", ["--backend", "neuromorphic", "--backend-arg", "seed=abc"], "seed"),
    ):
        rc = main([cmd, *base, "--out", str(tmp_path / "e"), *args])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith("rsgn: error: ") and needle in err, (args, err)
        assert len(err.splitlines()) == 1


def test_a_baseline_sits_beside_the_rsgn_on_the_same_cost_model(ckpt, tmp_path, capsys):
    cfg = apply_overrides(load_config(None), TINY)
    ds = make_task("hierarchical", cfg.data, seed=cfg.train.seed)
    base = tmp_path / "tr"
    kw = {"d": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16}
    train(cfg, ds, base, log=None, model="transformer", model_kwargs=kw)
    out = tmp_path / "c"
    argv = ["compare", "--ckpt", str(ckpt), "--task", "hierarchical", "--backends", "torch"]
    assert main([*argv, "--baseline", str(base), "--limit", "6", "--out", str(out)]) == 0
    capsys.readouterr()
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["row"] for r in rows] == ["torch:electronic_45nm", "transformer (baseline)"]
    rsgn_row, tr_row = rows
    assert tr_row["status"] == "ok" and tr_row["n_samples"] == 6
    assert tr_row["agreement"].startswith("n/a: a baseline")
    for r in rows:
        assert r["energy_j_per_inference"] > 0 and r["energy_kind"].startswith("modelled")
    # the same per-event constants: the Transformer's events are MACs of its layers
    assert tr_row["events_per_inference"] > 0
    bad = main([*argv, "--baseline", str(ckpt), "--out", str(tmp_path / "e")])
    assert bad == 2 and "is an RSGN run" in capsys.readouterr().err


def test_rows_parse_target_preset_pairs():
    rows, explicit = parse_rows("torch,optical:ideal,optical:bench", [])
    assert explicit and [r.label for r in rows] == ["torch", "optical:ideal", "optical:bench"]
    rows, explicit = parse_rows(None, ["optical=bench"])
    assert not explicit and RowSpec("optical", "bench") in rows


def test_new_report_dir_never_reuses_a_full_folder(tmp_path):
    a = tmp_path / "r"
    assert new_report_dir(a) == a
    a.mkdir()
    assert new_report_dir(a) == a  # empty: usable
    (a / "compare.json").write_text("{}")
    assert new_report_dir(a) == tmp_path / "r-2"


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.55), (0.5, 0.4), (1.0, 0.4)]
    assert pareto_front(pts) == [0, 1, 3]
