"""Variable-length .npz data, the aeon loader on a bundled set, and the real-data study's quick
mode end to end."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rsgn.data import load_npz, make_task, znormalise
from rsgn.errors import RsgnError

ROOT = Path(__file__).resolve().parents[1]


def test_npz_lengths(tmp_path) -> None:
    x = np.random.default_rng(0).standard_normal((20, 8, 3)).astype(np.float32)
    y = np.arange(20) % 2
    lens = np.arange(20) % 8 + 1
    np.savez(tmp_path / "d.npz", X=x, y=y, lengths=lens)
    ds = load_npz(tmp_path / "d.npz", seed=1, val_fraction=0.25)
    assert ds.len_train is not None and len(ds.len_train) == 15 and len(ds.len_val) == 5
    # each sample keeps its own length through the seeded split
    for xs, ls in ((ds.x_train, ds.len_train), (ds.x_val, ds.len_val)):
        for xi, li in zip(xs, ls, strict=True):
            j = int(np.flatnonzero((x == xi.numpy()).all(axis=(1, 2)))[0])
            assert li == lens[j]
    np.savez(tmp_path / "bad.npz", X=x, y=y, lengths=lens + 1)
    with pytest.raises(RsgnError, match=r"lengths must lie in \[1, 8\]"):
        load_npz(tmp_path / "bad.npz")


def test_znormalise_uses_training_statistics_of_real_steps() -> None:
    x = np.zeros((2, 4, 1), dtype=np.float32)
    x[0, :4, 0] = [1, 2, 3, 4]
    x[1, :2, 0] = [5, 6]
    lens = np.array([4, 2])
    xt, xo = znormalise(x, lens, (x.copy(), lens))
    real = np.array([1, 2, 3, 4, 5, 6.0])
    assert xt[0, 0, 0] == pytest.approx((1 - real.mean()) / real.std())
    assert np.all(xt[1, 2:] == 0)  # padding stays 0
    assert np.array_equal(xt, xo)


@pytest.mark.skipif(importlib.util.find_spec("aeon") is None, reason="aeon not installed")
def test_aeon_loader_on_a_bundled_set() -> None:
    ds = make_task("aeon:JapaneseVowels")
    assert ds.name == "aeon:JapaneseVowels" and ds.reported_split == "test"
    assert (len(ds.y_train), len(ds.y_val), ds.d_in, ds.n_classes) == (270, 370, 12, 9)
    assert ds.seq_len == 29 and int(ds.len_train.min()) == 7  # ragged: padded, with lengths
    pad = torch.arange(29)[None, :] >= ds.len_train[:, None]
    assert torch.all(ds.x_train[pad] == 0)
    from rsgn.config import DataConfig

    z = make_task("aeon:JapaneseVowels", DataConfig(znorm=True))
    real = z.x_train[~pad]
    assert torch.allclose(real.mean(0), torch.zeros(12), atol=1e-4)
    assert torch.allclose(real.std(0, unbiased=False), torch.ones(12), atol=1e-3)
    with pytest.raises(RsgnError, match="not bundled"):
        make_task("aeon:NoSuchSet")


def _load_study():
    path = ROOT / "studies" / "real_data" / "run.py"
    spec = importlib.util.spec_from_file_location("real_data_run", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("aeon") is None, reason="aeon not installed")
def test_real_data_study_quick_mode(tmp_path) -> None:
    """The quick mode end to end (two of its models, 1-NN; MiniRocket's numba compile would
    take minutes on a fresh machine): trains, reuses finished runs, writes the tables."""
    study = _load_study()
    args = ["--quick", "--models", "rsgn,mlp", "--no-minirocket", "--out", str(tmp_path / "q"),
            "--runs", str(tmp_path / "runs")]  # fmt: skip
    assert study.main(args) == 0
    res = json.loads((tmp_path / "q" / "results.json").read_text())
    assert res["meta"]["ran"] == 2 and not res["failed"]
    agg = res["aggregate"]
    assert set(agg) == {"BasicMotions/rsgn", "BasicMotions/mlp", "BasicMotions/1nn"}
    assert agg["BasicMotions/rsgn"]["energy_per_inference_j"] > 0
    assert agg["BasicMotions/rsgn"]["active_fraction"] <= 0.05
    assert agg["BasicMotions/1nn"]["accuracy"] > 0.5  # 1-NN is far above chance (0.25)
    run = res["runs"][0]
    assert run["splits"]["test"] == 40 and run["splits"]["train"] + run["splits"]["select"] == 40
    assert "| RSGN (default) |" in (tmp_path / "q" / "tables.md").read_text()
    assert study.main(args) == 0  # a second invocation reuses the runs
    assert json.loads((tmp_path / "q" / "results.json").read_text())["meta"]["reused"] == 2


@pytest.mark.skipif(importlib.util.find_spec("aeon") is None, reason="aeon not installed")
def test_screen_scores_on_the_selection_split_and_never_prints_the_test_split(
    tmp_path, monkeypatch, capsys
) -> None:
    """studies/real_data/screen/screen.py: one tiny training per (variant, seed), the pooled
    selection-split accuracy per variant; the test split's accuracy is never printed."""
    path = ROOT / "studies" / "real_data" / "screen" / "screen.py"
    spec = importlib.util.spec_from_file_location("real_data_screen", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tiny = "train.epochs=1;train.min_steps=2;train.eval_interval=1;train.patience=0"
    # seeds 2 and 4: their 1-NN selection scores (0.5, 0.375) differ from seeds 3 and 5's
    argv = ["screen.py", "BasicMotions", "--seeds", "2,4", "--runs", str(tmp_path / "r"),
            "--out", str(tmp_path / "s.json"), "--variant", f"a={tiny}",
            "--variant", f"b={tiny};train.augment_jitter=0"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    assert mod.main() == 0
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "s.json").read_text())
    ref, rows = rows[:2], rows[2:]
    assert [(r["variant"], r["seed"]) for r in rows] == [("a", 2), ("a", 4), ("b", 2), ("b", 4)]
    # the bar: 1-NN Euclidean on the same splits, checked against a numpy 1-NN
    from rsgn.aeon_data import load_aeon
    from rsgn.data import stratified_split

    ds = load_aeon("BasicMotions", znorm=True)
    x, y = ds.x_train.numpy().reshape(len(ds.y_train), -1), ds.y_train.numpy()
    for r in ref:
        keep, held = stratified_split(y, 0.2, r["seed"])
        d = ((x[held][:, None] - x[keep][None]) ** 2).sum(-1)
        assert r["select_last5"] == pytest.approx(float((y[keep][d.argmin(1)] == y[held]).mean()))
        assert r["variant"] == "1-NN Euclidean (reference)" and r["n_select"] == len(held) == 8
    assert "| 1-NN Euclidean (reference) |" in out
    assert all(r["n_select"] == 8 and 0 <= r["select_last5"] <= 1 for r in rows)
    assert rows[2]["overrides"][-1] == "train.augment_jitter=0"
    assert "| a |" in out and "| b |" in out
    assert "val_acc" not in out and "test" not in out
    assert not any(k.startswith(("val", "test")) for r in rows for k in r)


def test_study_rows_configure_what_their_titles_say() -> None:
    """rsgn-tokens: no augmentation, 4-step patches and the time channel; the default row
    keeps the package default; every row z-normalises."""
    study = _load_study()
    spec = study.RunSpec("ArrowHead", "rsgn-tokens", 1, ())
    cfg = study.run_config(spec)
    assert (cfg.data.patch_len, cfg.data.time_channel, cfg.data.znorm) == (4, True, True)
    assert cfg.train.augment_jitter == cfg.train.augment_scale == cfg.train.augment_shift == 0
    assert cfg.train.seed == 1
    base = study.run_config(study.RunSpec("ArrowHead", "rsgn", 1, ()))
    assert (base.data.patch_len, base.data.time_channel) == (1, False)
    assert base.train.augment_jitter > 0
    noaug = study.run_config(study.RunSpec("ArrowHead", "rsgn-noaug", 1, ()))
    assert noaug.data.patch_len == 1 and noaug.train.augment_jitter == 0
    assert cfg.model.feature_dropout == noaug.model.feature_dropout == 0.0
    drop = study.run_config(study.RunSpec("ArrowHead", "rsgn-tokens-drop", 1, ()))
    assert drop.model.feature_dropout == 0.2 and drop.data.patch_len == 4
    assert drop.data.time_channel and drop.train.augment_shift == 0


def test_runs_saved_before_an_option_existed_are_still_this_studys(tmp_path) -> None:
    """A metrics.json written before data.patch_len / data.time_channel existed (its config
    lacks them) is the study's run: the saved config is read as today's (rsgn.checkpoint.
    saved_config), not compared key by key; a run with another setting is refused."""
    study = _load_study()
    spec = study.RunSpec("GunPoint", "rsgn-noaug", 0, ())
    cfg = study.run_config(spec).to_dict()
    old = {**cfg, "data": {k: v for k, v in cfg["data"].items()
                           if k not in ("patch_len", "time_channel")}}  # fmt: skip
    metrics = {"config": old, "accuracy": 0.9, "params": 1, "active_fraction": 0.05,
               "train_steps": 500, "epochs_run": 50, "selection": {"epoch": 3},
               "splits": {"train": 40, "select": 10, "test": 150}, "train_seconds": 1.0,
               "seconds_per_step": 0.01}  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert study.load_run(spec, tmp_path)["accuracy"] == 0.9
    metrics["config"] = {**cfg, "data": {**cfg["data"], "patch_len": 4}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SystemExit, match="config differs"):
        study.load_run(spec, tmp_path)
