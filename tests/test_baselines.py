"""Baselines: parameter counts (closed form and the paper's), learning, MoE routing and
load-balancing, the sparse attention pattern, and the CLI train -> eval round trip."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
import torch.nn.functional as F

from rsgn.baselines import (
    BASELINES,
    MODEL_CLASSES,
    PAPER_PARAMS,
    TASK_SHAPES,
    MoELayer,
    build_baseline,
    load_balancing_loss,
    paper_kwargs,
    parse_model_args,
    sparse_attention_mask,
)
from rsgn.cli import main
from rsgn.errors import RsgnError

SMALL = {
    "transformer": {"d": 16, "n_heads": 2, "n_layers": 1, "d_ff": 24, "dropout": 0.0},
    "sparse-transformer": {"d": 16, "n_heads": 2, "n_layers": 1, "d_ff": 24, "dropout": 0.0},
    "lstm": {"hidden": 8, "n_layers": 2, "dropout": 0.0},
    "mlp": {"hidden1": 16, "hidden2": 8, "dropout": 0.0},
    "moe": {"d": 16, "n_heads": 2, "n_layers": 1, "n_experts": 4, "d_expert": 8, "dropout": 0.0},
    "conv": {"width": 3, "channels": 8},
}
ODD = {
    "transformer": {"d": 12, "n_heads": 3, "n_layers": 3, "d_ff": 7},
    "sparse-transformer": {"d": 8, "n_heads": 1, "n_layers": 2, "d_ff": 5, "window": 3},
    "lstm": {"hidden": 5, "n_layers": 3},
    "mlp": {"hidden1": 7, "hidden2": 3},
    "moe": {"d": 8, "n_heads": 2, "n_layers": 3, "n_experts": 3, "d_expert": 5, "top_k": 2},
    "conv": {"width": 4, "channels": 5},
}


def test_every_baseline_is_covered():
    assert set(BASELINES) == set(SMALL) == set(ODD)


@pytest.mark.parametrize(("name", "task"), sorted(PAPER_PARAMS))
def test_paper_sizes_reproduce_the_papers_parameter_counts(name, task):
    d_in, n_classes, seq_len = TASK_SHAPES[task]
    model = build_baseline(name, d_in, n_classes, seq_len, **paper_kwargs(name, task))
    formula = MODEL_CLASSES[name].param_formula(**model.model_args())
    assert model.n_params() == formula == PAPER_PARAMS[(name, task)]


@pytest.mark.parametrize("name", BASELINES)
def test_param_count_matches_closed_form(name):
    for d_in, n_classes, seq_len, kw in [(32, 20, 64, {}), (5, 3, 6, ODD[name])]:
        model = build_baseline(name, d_in, n_classes, seq_len, **kw)
        assert model.n_params() == MODEL_CLASSES[name].param_formula(**model.model_args())


def test_moe_default_size_is_close_to_the_transformer():
    moe = build_baseline("moe", 32, 20, 64)
    tr = build_baseline("transformer", 32, 20, 64)
    assert moe.n_params() == 407_188
    assert abs(moe.n_params() - tr.n_params()) / tr.n_params() < 0.01


def _toy(n=24, t=6, d=5, c=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, t, d, generator=g)
    y = torch.arange(n) % c
    x[torch.arange(n), 2, y] += 2.0
    return x, y


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_learns_a_tiny_batch(name):
    torch.manual_seed(0)
    x, y = _toy()
    model = build_baseline(name, 5, 3, 6, **SMALL[name])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        logits = model(x)
        assert logits.shape == (24, 3)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        (loss + model.regulariser()).backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_load_balancing_loss_is_minimal_for_uniform_routing():
    n, e = 64, 8
    uniform = load_balancing_loss(torch.full((n, e), 1.0 / e), (torch.arange(n) % e)[:, None])
    collapsed_p = torch.zeros(n, e)
    collapsed_p[:, 0] = 1.0
    collapsed = load_balancing_loss(collapsed_p, torch.zeros(n, 1, dtype=torch.long))
    skew = torch.softmax(torch.randn(n, e) * 3, dim=1)
    skewed = load_balancing_loss(skew, skew.argmax(1, keepdim=True))
    assert uniform.item() == pytest.approx(1.0)
    assert collapsed.item() == pytest.approx(float(e))
    assert 1.0 < skewed.item() < e
    # top-2 assignments: uniform spread is still 1
    idx2 = torch.stack([torch.arange(n) % e, (torch.arange(n) + 1) % e], dim=1)
    assert load_balancing_loss(torch.full((n, e), 1.0 / e), idx2).item() == pytest.approx(1.0)


def test_moe_routing_aux_gradient_and_active_fraction():
    torch.manual_seed(0)
    layer = MoELayer(8, n_experts=4, d_expert=6, top_k=2, capacity_factor=0.5, dropout=0.0)
    h = torch.randn(3, 10, 8)
    layer.train()
    out = layer(h)
    assert out.shape == h.shape
    # capacity ceil(0.5 * 30 * 2 / 4) = 8 per expert: at most 32 of the 60 assignments kept
    assert layer.kept <= 32 and layer.tokens == 30
    layer.aux_loss.backward()
    assert layer.router.weight.grad is not None and layer.router.weight.grad.abs().sum() > 0
    layer.eval()
    layer(h)
    assert layer.kept == 60  # no dropping in evaluation
    model = build_baseline("moe", 8, 3, 10, **{**SMALL["moe"], "d": 8, "top_k": 2})
    model.eval()
    model(torch.randn(2, 10, 8))
    assert model.active_fraction() == pytest.approx(2 / 4)
    assert sum(model.expert_load()) == pytest.approx(2.0)  # each token counted at 2 experts
    assert 0.0 < model.aux_loss.item() <= 4.0 + 1e-6  # E sum_e f_e P_e <= E max_e P_e <= E


def test_sparse_attention_pattern_and_its_effect():
    m = sparse_attention_mask(12, window=5, stride=4)
    allowed0 = set(torch.nonzero(~m[0]).flatten().tolist())
    assert allowed0 == {0, 1, 2, 4, 8}
    allowed6 = set(torch.nonzero(~m[6]).flatten().tolist())
    assert allowed6 == {2, 4, 5, 6, 7, 8, 10}
    # with one layer, token 0's representation ignores a blocked token (3) but not a visible one
    torch.manual_seed(0)
    model = build_baseline("sparse-transformer", 5, 3, 12, **SMALL["sparse-transformer"]).eval()
    seen = {}
    model.blocks[0].register_forward_hook(lambda _m, _i, o: seen.__setitem__("h", o.detach()))
    x = torch.randn(1, 12, 5)
    model(x)
    base = seen["h"][0, 0].clone()
    x3 = x.clone()
    x3[0, 3] += 5.0
    model(x3)
    assert torch.allclose(seen["h"][0, 0], base, atol=1e-6)
    x4 = x.clone()
    x4[0, 4] += 5.0
    model(x4)
    assert not torch.allclose(seen["h"][0, 0], base, atol=1e-3)


def test_bad_arguments_and_inputs_raise_rsgn_errors():
    with pytest.raises(RsgnError, match="known: rsgn, transformer"):
        build_baseline("gpt", 4, 2, 8)
    with pytest.raises(RsgnError, match="no argument 'widht'"):
        build_baseline("mlp", 4, 2, 8, widht=3)
    with pytest.raises(RsgnError, match="divisible"):
        build_baseline("transformer", 4, 2, 8, d=10, n_heads=4)
    with pytest.raises(RsgnError, match="top_k"):
        build_baseline("moe", 4, 2, 8, n_experts=2, top_k=3)
    with pytest.raises(RsgnError, match="length 8"):
        build_baseline("mlp", 4, 2, 8)(torch.zeros(1, 9, 4))
    assert parse_model_args("moe", ["top_k=2", "aux_weight=0.1"]) == {"top_k": 2, "aux_weight": 0.1}
    with pytest.raises(RsgnError, match="invalid value"):
        parse_model_args("lstm", ["hidden=big"])


def test_cli_applies_the_papers_sizes_on_built_in_tasks():
    from rsgn.cli import _model_kwargs

    def ns(model, task, *items):
        return argparse.Namespace(model=model, task=task, model_args=list(items))

    assert _model_kwargs(ns("transformer", "long-range")) == {"n_layers": 3}
    assert _model_kwargs(ns("transformer", "hierarchical")) == {}
    assert _model_kwargs(ns("transformer", "long-range", "n_layers=2")) == {"n_layers": 2}
    assert _model_kwargs(ns(None, None)) is None


TINY_TR = ["--model-arg", "d=16", "--model-arg", "n_heads=2", "--model-arg", "d_ff=16"]
EPOCHS_ONLY = ["--set", "train.min_steps=0", "--set", "train.eval_interval=0"]


def test_cli_train_eval_roundtrip_for_a_baseline(tmp_path, npz, capsys):
    from rsgn.checkpoint import read_checkpoint

    out = tmp_path / "tr"
    args = ["train", "--data", str(npz), "--model", "transformer", "--out", str(out), "--quiet"]
    assert (
        main([*args, "--epochs", "2", "--set", "train.batch_size=16", *TINY_TR, *EPOCHS_ONLY]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    m = json.loads((out / "metrics.json").read_text())
    assert summary["model"] == m["model"] == "transformer"
    assert m["params"] == MODEL_CLASSES["transformer"].param_formula(**m["model_args"])
    assert m["active_fraction"] == 1.0 and "dense" in m["active_fraction_definition"]
    assert m["seconds_per_step"] > 0 and [h["epoch"] for h in m["history"]] == [1, 2]
    assert read_checkpoint(out)["model"] == "transformer"
    assert main(["eval", "--ckpt", str(out), "--data", str(npz)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["accuracy"] == pytest.approx(m["accuracy"])
    assert res["energy"]["kind"] == "modelled" and res["energy"]["value"] > 0
    assert "flop_counter" in res["energy"]["model"]
    assert res["model"] == "transformer" and res["params"] == m["params"]


def test_baseline_resume_keeps_the_runs_model(tmp_path, npz, capsys):
    from rsgn.config import apply_overrides, load_config
    from rsgn.data import load_npz
    from rsgn.training import train

    cfg = apply_overrides(
        load_config(None),
        ["train.epochs=2", "train.batch_size=16", "train.min_steps=0", "train.eval_interval=0"],
    )
    ds = load_npz(npz)
    kw = {"n_experts": 2, "d_expert": 4, "d": 8, "n_heads": 2, "n_layers": 1}

    import rsgn.training as T

    orig = T.save_checkpoint

    class Stop(Exception):
        pass

    def crash_after_first(*a, **k):
        orig(*a, **k)
        raise Stop

    T.save_checkpoint = crash_after_first
    try:
        with pytest.raises(Stop):
            train(cfg, ds, tmp_path / "m", log=None, model="moe", model_kwargs=kw)
    finally:
        T.save_checkpoint = orig
    m = train(cfg, ds, tmp_path / "m", log=None, resume=True)
    assert m["model"] == "moe" and [h["epoch"] for h in m["history"]] == [1, 2]
    assert all("train_aux_loss" in h for h in m["history"])
    assert 0 < m["active_fraction"] <= 0.5 and "expert" in m["active_fraction_definition"]
    with pytest.raises(RsgnError, match="does not match"):
        train(cfg, ds, tmp_path / "m", log=None, resume=True, model="rsgn")


@pytest.mark.parametrize(
    ("extra", "msg"),
    [
        (["--model", "resnet"], "unknown model 'resnet' (known: rsgn, transformer"),
        (["--model", "lstm", "--model-arg", "depth=3"], "no argument 'depth'"),
        (["--model-arg", "n_layers=3"], "--model-arg applies to baselines"),
        (["--model", "mlp", "--backend", "optical"], "baselines run on torch only"),
    ],
)
def test_cli_model_errors_are_one_line(tmp_path, npz, capsys, extra, msg):
    out = tmp_path / "bad"
    assert main(["train", "--data", str(npz), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("rsgn: error:") and msg in lines[0], err
    assert not out.exists()


def test_baseline_macs_are_counted_by_the_flop_counter_and_match_the_closed_forms():
    """Transformer: per layer 4 T d^2 (QKV + output) + 2 T^2 d (scores, weighted sum) +
    2 T d d_ff (FFN), plus T d_in d (input) and d C (head); bidirectional 2-layer LSTM: per
    layer and direction T 4h (in + h), plus 2h C; both through the fused CPU kernels
    (multi-head attention fast path, oneDNN LSTM) the stock flop counter does not know."""
    from rsgn.backends.torch.baseline_cost import count_module

    b, t, d_in, c = 3, 16, 8, 5
    x = torch.randn(b, t, d_in)
    tr = build_baseline("transformer", d_in, c, t, d=32, n_heads=4, n_layers=2, d_ff=64).eval()
    with torch.no_grad():
        _, counts = count_module(tr, x)
    d, ff = 32, 64
    per_layer = 4 * t * d * d + 2 * t * t * d + 2 * t * d * ff
    assert counts["mac_fp32"] == b * (t * d_in * d + 2 * per_layer + d * c)
    assert counts["dram_word_32b"] == x.numel()
    assert counts["sram_word_32b"] > tr.n_params()  # every weight once + activations
    lstm = build_baseline("lstm", d_in, c, t, hidden=16, n_layers=2).eval()
    with torch.no_grad():
        _, counts = count_module(lstm, x)
    h = 16
    per_dir = t * 4 * h * (d_in + h) + t * 4 * h * (2 * h + h)  # layer 1 and layer 2 inputs
    assert counts["mac_fp32"] == b * (2 * per_dir + 2 * h * c)
    assert counts["transcendental_fp32"] >= b * 2 * 2 * t * 5 * h  # 3 sigmoid + 2 tanh gates


def test_baseline_energy_is_counted_events_times_the_rsgn_electronic_constants():
    from rsgn.backends import load_energy_table
    from rsgn.evaluation import evaluate

    torch.manual_seed(0)
    m = build_baseline("mlp", 5, 3, 6)
    x, y = torch.randn(10, 6, 5), torch.randint(0, 3, (10,))
    ev = evaluate(m, x, y, batch_size=4)
    table = load_energy_table("electronic_45nm")
    want = sum(n * table.events[e].joules() for e, n in ev.report.ledger.totals().items())
    assert ev.report.energy.value == pytest.approx(want, rel=1e-12) and want > 0
    assert set(ev.report.ledger.counts) == {"input", "propagate"}
    assert ev.report.ledger.totals()["dram_word_32b"] == x.numel()
