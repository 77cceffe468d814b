"""The model options beyond the paper (token encoder, attend initial state, token skip path,
node readout, feature dropout): each changes the output, gradients reach its parameters, its
parameter count follows :meth:`RSGN.param_formula`, and the paper-faithful preset stays
runnable."""

import pytest
import torch
import torch.nn.functional as F

from rsgn import ops
from rsgn.config import CONFIG_PRESETS, ModelConfig, apply_overrides, load_config
from rsgn.errors import RsgnError
from rsgn.model import RSGN
from tests.conftest import small_cfg

OPTIONS = [
    {"encoder_width": 3, "encoder_dim": 6},
    {"encoder_width": 1, "encoder_dim": 5},
    {"init_state": "mean"},
    {"token_skip": True},
    {"encoder_width": 5, "encoder_dim": 7, "init_state": "mean", "token_skip": True},
    {"encoder_width": 2, "init_state": "mean", "node_readout": True},
    {"init_state": "attend"},
    {"encoder_width": 3, "encoder_dim": 6, "init_state": "attend", "node_readout": True},
    {"feature_dropout": 0.3, "node_readout": True},
]


@pytest.mark.parametrize("extras", OPTIONS)
def test_parameter_count_matches_the_formula(extras):
    for d_in, c in ((8, 3), (32, 20), (32, 10)):
        cfg = small_cfg(**extras)
        assert RSGN(d_in, c, cfg).n_params() == RSGN.param_formula(d_in, c, cfg)


def test_parameter_formula_for_the_option_sizes():
    """Each option adds exactly its documented parameters to the paper model."""
    base = RSGN.param_formula(32, 20, load_config("paper").model)
    paper = load_config("paper").model

    def plus(**kw):
        cfg = ModelConfig(**{**paper.__dict__, **kw})
        return RSGN(32, 20, cfg).n_params() - base

    assert plus(token_skip=True) == 32 * 20 + 20
    assert plus(init_state="attend") == 0
    assert plus(node_readout=True) == 256 * 20
    assert plus(feature_dropout=0.2) == 0
    # encoder 32 -> 64, width 5: w d_in F + F, and the spark MLP and W_init read F = 64 features
    assert plus(encoder_width=5, encoder_dim=64) == 5 * 32 * 64 + 64 + 32 * 12 + 32 * 128


@pytest.mark.parametrize("extras", OPTIONS)
def test_gradients_reach_every_parameter_with_each_option(extras):
    torch.manual_seed(1)
    m = RSGN(8, 3, small_cfg(**extras))
    out = m(torch.randn(6, 9, 8))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def _twin(extras_on: dict, extras_off: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of two models that share every common parameter (copied), on the same input."""
    torch.manual_seed(2)
    on = RSGN(8, 3, small_cfg(**extras_on))
    off = RSGN(8, 3, small_cfg(**extras_off))
    off.load_state_dict(
        {k: v for k, v in on.state_dict().items() if k in off.state_dict()}, strict=False
    )
    x = torch.randn(4, 10, 8)
    return on(x).logits, off(x).logits


def test_each_option_changes_the_output():
    # attend vs mean initial state: same parameters, different logits
    a, b = _twin({"init_state": "attend"}, {"init_state": "mean"})
    assert not torch.allclose(a, b)
    a, b = _twin({"token_skip": True}, {"token_skip": False})
    assert not torch.allclose(a, b)


def test_token_skip_adds_a_max_pool_path_after_the_readout():
    torch.manual_seed(3)
    m = RSGN(8, 3, small_cfg(encoder_width=3, encoder_dim=5, token_skip=True))
    x = torch.randn(4, 10, 8)
    with_skip = m(x).logits
    skip = m.w_skip(_features(m, x).amax(1))
    with torch.no_grad():
        m.w_skip.weight.zero_()
        m.w_skip.bias.zero_()
    assert torch.allclose(with_skip - skip, m(x).logits, atol=1e-6)


def test_node_readout_adds_each_final_active_nodes_class_vector():
    """logits += sum_{i in A} alpha_i R_i: R starts at zero (the readout is unchanged at
    initialisation) and a row of R moves the logits only through its node's activation."""
    torch.manual_seed(6)
    m = RSGN(8, 3, small_cfg(node_readout=True))
    x = torch.randn(4, 10, 8)
    out = m(x, record=True)
    base = out.logits
    with torch.no_grad():
        m.node_out.normal_()
    st_logits = m(x).logits
    assert not torch.allclose(st_logits, base)
    inactive = m.node_out.new_zeros(m.cfg.n_nodes, dtype=torch.bool)
    inactive[out.activity.sum(0) == 0] = True  # nodes never active in any step for any sample
    with torch.no_grad():
        m.node_out[inactive] = 100.0  # a node outside every final active set adds nothing
    torch.testing.assert_close(m(x).logits, st_logits)


def _features(m: RSGN, x: torch.Tensor) -> torch.Tensor:
    """The token features the sparks read, with the model's dropout in its mode."""
    w = m.weights()
    e = ops.encode(x, w.enc_w, w.enc_b)
    return F.dropout(e, m.cfg.feature_dropout, m.training)


def test_encoder_sees_local_context():
    """With a width-3 encoder, changing token t changes the features of t-1, t, t+1 only."""
    torch.manual_seed(4)
    m = RSGN(8, 3, small_cfg(encoder_width=3, encoder_dim=5))
    x = torch.randn(1, 10, 8)
    x2 = x.clone()
    x2[0, 4] += 1.0
    changed = (_features(m, x) - _features(m, x2)).abs().sum(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == [3, 4, 5]


def test_paper_preset_loads_by_name_and_overrides_apply():
    assert "paper" in CONFIG_PRESETS
    cfg = apply_overrides(load_config("paper"), ["model.n_nodes=128"])
    assert cfg.model.n_nodes == 128 and cfg.model.encoder_width == 0
    assert cfg.model.init_state == "mean" and not cfg.model.token_skip
    with pytest.raises(RsgnError, match="not found"):
        load_config("no-such-preset")


def test_option_validation_names_the_key():
    with pytest.raises(RsgnError, match="model.encoder_width"):
        ModelConfig(encoder_width=-1).validate()
    with pytest.raises(RsgnError, match="model.encoder_dim"):
        ModelConfig(encoder_dim=0).validate()
    for removed in ("routed", "both", "max"):  # options removed in v2 (their ablation lost)
        with pytest.raises(RsgnError, match="init_state"):
            ModelConfig(init_state=removed).validate()
    with pytest.raises(RsgnError, match="init_state"):
        ModelConfig(init_state="median").validate()
    for p in (-0.1, 1.0):
        with pytest.raises(RsgnError, match="model.feature_dropout"):
            ModelConfig(feature_dropout=p).validate()


def test_feature_dropout_acts_only_while_training():
    torch.manual_seed(5)
    m = RSGN(8, 3, small_cfg(encoder_width=3, encoder_dim=6, feature_dropout=0.5))
    x = torch.randn(4, 10, 8)
    m.eval()
    assert torch.equal(_features(m, x), _features(m, x))
    m.train()
    e = _features(m, x)
    assert (e == 0).float().mean() > 0.3  # about half the features are dropped (GELU > 0 else)


def test_checkpoint_from_before_the_new_options_still_loads(tmp_path):
    """A checkpoint saved before encoder_width / token_skip / node_code existed has no such keys:
    they must take the values of the model it was saved from, not today's defaults."""
    import torch as _torch

    from rsgn.checkpoint import load_model, save_checkpoint
    from rsgn.config import RunConfig

    cfg = RunConfig()
    cfg.model = ModelConfig(
        n_nodes=32, d_hidden=8, affinity_rank=4, k_in=4, encoder_width=0, token_skip=False
    )
    model = RSGN(5, 3, cfg.model)
    path = tmp_path / "old.pt"
    save_checkpoint(path, model, cfg, {})
    payload = _torch.load(path, weights_only=True)
    for key in ("encoder_width", "token_skip"):
        del payload["config"]["model"][key]
    _torch.save(payload, path)
    loaded, lcfg, _ = load_model(path)
    assert lcfg.model.encoder_width == 0 and not lcfg.model.token_skip
    x = _torch.randn(2, 6, 5)
    _torch.testing.assert_close(loaded(x).logits, model(x).logits)


@pytest.mark.parametrize(
    "key,value,loads",
    [
        ("position_code", False, True),
        ("spark_context", 1, True),
        ("node_code", 0, True),
        ("readout_norm", False, True),
        ("position_code", True, False),
        ("spark_context", 5, False),
        ("node_code", 3, False),
        ("readout_norm", True, False),
        ("init_state", "routed", False),
    ],
)
def test_checkpoint_with_a_removed_option_loads_at_its_neutral_value_else_refuses(
    tmp_path, key, value, loads
):
    """Options removed in v2: a checkpoint that has them at the value that makes it today's
    model loads; one that used them is refused with a message naming the option."""
    import torch as _torch

    from rsgn.checkpoint import load_model, save_checkpoint
    from rsgn.config import RunConfig

    cfg = RunConfig()
    cfg.model = small_cfg(n_nodes=32, d_hidden=8)
    model = RSGN(5, 3, cfg.model)
    path = tmp_path / "v1.pt"
    save_checkpoint(path, model, cfg, {})
    payload = _torch.load(path, weights_only=True)
    payload["config"]["model"][key] = value
    _torch.save(payload, path)
    if loads:
        loaded, _, _ = load_model(path)
        x = _torch.randn(2, 6, 5)
        _torch.testing.assert_close(loaded(x).logits, model(x).logits)
    else:
        with pytest.raises(RsgnError, match=f"model.{key} = .*removed"):
            load_model(path)


@pytest.mark.parametrize("init_state", ["attend", "mean"])
def test_front_end_and_readout_options_are_charged_to_the_ledger(init_state):
    """The encoder, spark MLP and initial states (op 'encode') and the readout options are
    counted: MACs from the layer sizes, per batch."""
    from rsgn.backends.registry import get_backend

    torch.manual_seed(7)
    cfg = small_cfg(
        encoder_width=3,
        encoder_dim=6,
        d_space=4,
        init_state=init_state,
        node_readout=True,
        token_skip=True,
    )
    m = RSGN(5, 3, cfg)
    b, t = 4, 9
    _, rep = get_backend("torch").prepare(m.export())(torch.randn(b, t, 5))
    enc = rep.ledger.counts["encode"]
    na = round(rep.active_fraction_per_step[0] * b * cfg.n_nodes)  # ignited nodes in all
    f, dsp, d, c = 6, 4, cfg.d_hidden, 3
    macs = b * t * (3 * 5 * f) + b * t * (f * 4 * dsp + 4 * dsp * dsp + dsp) + na * d
    if init_state == "attend":
        macs += na * t * f + na * f * d
        att = rep.ledger.counts["attend"]  # the exact distance of every (slot, token) pair
        width = min(cfg.k_active, cfg.n_nodes)  # the ignition's slots per sample
        assert att["mac_fp32"] == b * width * t * (dsp + 1)
        assert att["transcendental_fp32"] == b * width * t
    else:
        macs += b * f * d
    assert enc["mac_fp32"] == macs
    enc_params = sum(p.numel() for p in m.encoder.parameters())
    spark_params = sum(p.numel() for p in m.spark.parameters())
    assert enc["sram_word_32b"] == enc_params + spark_params + f * d + d
    na_out = round(rep.active_fraction_per_step[-1] * b * cfg.n_nodes)  # final active set
    read = rep.ledger.counts["readout"]
    # the readout's own (nv d + B C d) plus node_readout (|A| C) and the skip path (B F C)
    assert read["mac_fp32"] == na_out * d + b * c * d + na_out * c + b * f * c
    assert rep.ledger.energy_by_op()["encode"] > 0
