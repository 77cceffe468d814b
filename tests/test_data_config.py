"""Built-in tasks, user .npz data and typed configs, with every bad-input case."""

import numpy as np
import pytest
import torch

from rsgn.config import DataConfig, ModelConfig, RunConfig, apply_overrides, load_config
from rsgn.data import hierarchical, load_npz, long_range, make_task
from rsgn.errors import RsgnError


def test_tasks_have_the_paper_shapes_and_are_seeded():
    x, y = hierarchical(n_samples=50)
    assert x.shape == (50, 64, 32) and x.dtype == np.float32 and y.max() < 20
    x2, y2 = hierarchical(n_samples=50)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, _ = hierarchical(n_samples=50, seed=1)
    assert not np.array_equal(x, x3)
    xl, yl = long_range(n_samples=40)
    assert xl.shape == (40, 128, 32) and yl.max() < 10


def test_long_range_class_lives_at_both_ends():
    x, y = long_range(n_samples=400, noise=0.0)
    a = x[y == y[0]]
    assert np.allclose(a[:, :8], a[0, :8]) and np.allclose(a[:, -8:], a[0, :8])
    assert np.allclose(a[:, 8:-8], 0)


def test_make_task_split_and_overrides():
    ds = make_task("hierarchical", DataConfig(n_samples=100, seq_len=20))
    assert len(ds.y_train) == 80 and len(ds.y_val) == 20 and ds.seq_len == 20
    with pytest.raises(RsgnError, match="unknown task"):
        make_task("imagenet")


def _npz(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return p


def test_npz_roundtrip_with_and_without_validation(tmp_path):
    x = np.random.randn(30, 5, 4).astype(np.float32)
    y = np.arange(30) % 3
    ds = load_npz(_npz(tmp_path, X=x, y=y))
    assert len(ds.y_train) == 24 and ds.n_classes == 3 and ds.d_in == 4
    ds2 = load_npz(_npz(tmp_path, X=x, y=y, X_val=x[:4], y_val=y[:4]))
    assert len(ds2.y_train) == 30 and len(ds2.y_val) == 4


@pytest.mark.parametrize(
    "arrays,msg",
    [
        (dict(X=np.full((4, 3, 2), np.nan), y=np.zeros(4, int)), "NaN or infinite"),
        (dict(X=np.ones((4, 3)), y=np.zeros(4, int)), r"shape \[n, T, F\]"),
        (dict(X=np.ones((4, 3, 2)), y=np.zeros((4, 1), int)), r"shape \[n\]"),
        (dict(X=np.ones((4, 3, 2)), y=np.zeros(5, int)), "4 samples but y has 5"),
        (dict(X=np.ones((4, 3, 2)), y=np.array([0, 1.5, 1, 0])), "integer class labels"),
        (dict(X=np.ones((4, 3, 2)), y=np.array([0, -1, 1, 0])), "non-negative"),
        (dict(X=np.ones((4, 3, 2))), "missing array 'y'"),
        (
            dict(
                X=np.ones((4, 3, 2)),
                y=np.array([0, 1, 0, 1]),
                X_val=np.ones((2, 3, 5)),
                y_val=np.array([0, 1]),
            ),
            "X_val has shape",
        ),
    ],
)
def test_bad_npz_inputs_are_named(tmp_path, arrays, msg):
    with pytest.raises(RsgnError, match=msg):
        load_npz(_npz(tmp_path, **arrays))


def test_labels_out_of_range_for_a_model(tmp_path):
    p = _npz(tmp_path, X=np.ones((4, 3, 2)), y=np.array([0, 1, 7, 1]))
    with pytest.raises(RsgnError, match="label 7 is out of range"):
        load_npz(p, n_classes=3)


def test_corrupt_or_missing_npz(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RsgnError, match="not a readable .npz"):
        load_npz(bad)
    with pytest.raises(RsgnError, match="not found"):
        load_npz(tmp_path / "missing.npz")


def test_config_toml_overrides_and_validation(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[model]\nn_nodes = 128\nselection = 'stat'\n[train]\nepochs = 3\n")
    cfg = load_config(p)
    assert cfg.model.n_nodes == 128 and cfg.model.selection == "stat" and cfg.train.epochs == 3
    cfg2 = apply_overrides(cfg, ["model.k_in=8", "lr=0.01", "hebbian=false", "data.noise=0.1"])
    assert cfg2.model.k_in == 8 and cfg2.train.lr == 0.01 and cfg2.model.hebbian is False
    assert cfg.model.k_in == 16  # the original is untouched
    assert RunConfig.from_dict(cfg2.to_dict()).to_dict() == cfg2.to_dict()


@pytest.mark.parametrize(
    "override,msg",
    [
        (["model.n_nodez=3"], "unknown config key 'model.n_nodez'"),
        (["bogus=1"], "unknown config key 'bogus'"),
        (["model.n_nodes=abc"], "invalid value for 'model.n_nodes'"),
        (["model.target_active=0"], "model.target_active must be in"),
        (["model.k_in=300"], "model.k_in .* must be smaller"),
        (["model.selection=sorted"], "choose from radix, stat"),
        (["train.lr=-1"], "train.lr must be positive"),
        (["model.tau=nan"], "invalid value for 'model.tau'"),
        (["noequals"], "expects key=value"),
        (["data.patch_len=0"], "data.patch_len must be at least 1"),
        (["data.patch_len=1.5"], "invalid value for 'data.patch_len'"),
    ],
)
def test_bad_config_values_are_named(override, msg):
    with pytest.raises(RsgnError, match=msg):
        apply_overrides(RunConfig(), override)


def test_bad_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[model\n")
    with pytest.raises(RsgnError, match="not valid TOML"):
        load_config(p)
    p.write_text("[modle]\nx=1\n")
    with pytest.raises(RsgnError, match="unknown section"):
        load_config(p)
    with pytest.raises(RsgnError, match="not found"):
        load_config(tmp_path / "none.toml")


def test_k_active_rounds_down():
    assert ModelConfig(n_nodes=256, target_active=0.05).k_active == 12
    assert ModelConfig(n_nodes=100, target_active=0.01).k_active == 1


def test_tokenise_patches_and_time_channel_by_hand():
    """Patches of k steps (the last zero-filled), ceil(L / k) real tokens, padded steps never
    inside a real token, and the time channel (standardised token index), 0 on padding."""
    from rsgn.data import tokenise

    x = torch.arange(2 * 5 * 2, dtype=torch.float32).view(2, 5, 2) + 1  # no zeros anywhere
    lens = torch.tensor([5, 3])
    tok, tl = tokenise(x, lens, 2, True)
    assert tok.shape == (2, 3, 5) and tl.tolist() == [3, 2]
    r = 1.5**0.5  # T' = 3: tau = (t' - 1) / sqrt(8 / 12)
    want0 = [[1, 2, 3, 4, -r], [5, 6, 7, 8, 0], [9, 10, 0, 0, r]]
    want1 = [[11, 12, 13, 14, -r], [15, 16, 0, 0, 0], [0, 0, 0, 0, 0]]  # steps 3, 4: padding
    assert torch.allclose(tok, torch.tensor([want0, want1]))
    tau = tokenise(torch.zeros(1, 7, 1), None, 1, True)[0][0, :, 1]
    assert float(tau.mean()) == pytest.approx(0, abs=1e-6)
    assert float(tau.var(unbiased=False)) == pytest.approx(1, rel=1e-5)
    assert tokenise(torch.zeros(1, 1, 1), None, 1, True)[0][0, 0, 1] == 0  # T' = 1
    same, none = tokenise(x, None, 1, False)
    assert same is x and none is None
    assert tokenise(x, None, 5, False)[0].shape == (2, 1, 10)  # k = T: one token
    assert tokenise(x, None, 7, False)[0][0, 0, 10:].abs().sum() == 0  # k > T: zero fill


def test_tokens_reach_every_split_and_the_cli(tmp_path, npz, capsys):
    """data.patch_len / data.time_channel tokenise train, select and reported splits alike,
    on built-in tasks and .npz files; a run trains and compares on them (d_in = k F + 1)."""
    import json

    from rsgn.cli import main
    from rsgn.data import load_data, with_selection

    cfg = DataConfig(n_samples=40, seq_len=9, patch_len=4, time_channel=True)
    ds = with_selection(make_task("hierarchical", cfg), 0.25, seed=0)
    assert ds.x_train.shape[1:] == ds.x_val.shape[1:] == ds.x_select.shape[1:] == (3, 129)
    plain = make_task("hierarchical", DataConfig(n_samples=40, seq_len=9))
    assert torch.equal(ds.x_val[:, 0, :32], plain.x_val[:, 0])
    tok = load_data(DataConfig(patch_len=2, time_channel=True), npz=npz)
    assert tok.d_in == 11 and tok.seq_len == 3  # 6 steps of 5 features
    out = tmp_path / "run"
    small = ["--set", "model.n_nodes=32", "--set", "model.d_hidden=8", "--set", "model.k_in=4",
             "--set", "model.affinity_rank=4", "--set", "model.n_steps=2",
             "--set", "train.min_steps=0", "--set", "train.eval_interval=0"]  # fmt: skip
    argv = ["train", "--data", str(npz), "--epochs", "1", "--out", str(out), "--quiet", *small]
    assert main([*argv, "--set", "data.patch_len=2", "--set", "data.time_channel=true"]) == 0
    capsys.readouterr()
    rep = tmp_path / "c"
    assert main(["compare", "--ckpt", str(out), "--data", str(npz), "--backends", "torch",
                 "--out", str(rep)]) == 0  # fmt: skip
    assert json.loads((rep / "compare.json").read_text())["rows"][0]["status"] == "ok"
