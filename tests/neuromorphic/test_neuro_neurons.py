"""The chip's neuron arithmetic (neuromorphic/neurons.py) in closed form: float and
bit-accurate fixed-point updates, thresholds exactly at the boundary, flooring shifts of
negative values, validation and the per-step random generator."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn import neuromorphic as nm


def _ctx(step: int = 0, group: int = 0, fixed: bool = False, seed: int = 1) -> nm.StepContext:
    return nm.StepContext(step, group, fixed, seed)


def test_relu_float_and_fixed_closed_forms():
    r = nm.ReLU(threshold=2.0, gain=3.0, shift=2)
    x = np.array([-5.0, 1.0, 2.0, 2.5, 10.0])
    np.testing.assert_array_equal(r.update_float({}, None, x, _ctx()), [0, 0, 0, 1.5, 24.0])
    xi = np.array([-5, 1, 2, 3, 10, 7], dtype=np.int64)
    # (max(x - 2, 0) * 3) >> 2: 0, 0, 0, 3 >> 2 = 0, 24 >> 2 = 6, 15 >> 2 = 3
    got = r.update_fixed({}, None, xi, _ctx(fixed=True))
    assert got.dtype == np.int64 and got.tolist() == [0, 0, 0, 0, 6, 3]
    assert r.graded and r.state_init == {} and r.name == "relu"
    r.validate(True)
    with pytest.raises(nm.ConfigError, match=r"relu\.threshold must be an integer"):
        nm.ReLU(threshold=0.5).validate(True)
    nm.ReLU(threshold=0.5).validate(False)  # floats are fine in float mode
    with pytest.raises(nm.ConfigError, match=r"relu\.gain must be an integer"):
        nm.ReLU(gain=1.5).validate(True)
    with pytest.raises(nm.ConfigError, match=r"relu\.shift must be >= 0, got -1"):
        nm.ReLU(shift=-1).validate(False)
    nm.ReLU(shift=0).validate(False)


def test_linear_float_and_fixed_floor_negative_values():
    lin = nm.Linear(gain=3.0, shift=1)
    np.testing.assert_array_equal(
        lin.update_float({}, None, np.array([-1.5, 2.0]), _ctx()), [-4.5, 6]
    )
    # arithmetic shift floors: (-3 * 3) >> 1 = -9 >> 1 = -5 (not -4)
    got = lin.update_fixed({}, None, np.array([-3, 5], dtype=np.int64), _ctx(fixed=True))
    assert got.tolist() == [-5, 7]
    assert lin.graded and lin.state_init == {}
    with pytest.raises(nm.ConfigError, match=r"linear\.gain must be an integer"):
        nm.Linear(gain=0.5).validate(True)
    nm.Linear(gain=0.5).validate(False)


def test_lif_float_closed_form_and_threshold_equality_fires():
    lif = nm.LIF(du=0.25, dv=0.5, v_th=1.0, bias=0.125)
    st = lif.init_state(3, fixed=False)
    assert {k: v.dtype for k, v in st.items()} == {"u": np.float64, "v": np.float64}
    idx = np.array([0, 2])
    # step 1: u = x, v = u + bias
    y = lif.update_float(st, idx, np.array([0.5, 0.875]), _ctx())
    assert y.dtype == np.float64 and y.tolist() == [0.0, 1.0]  # 0.875 + 0.125 = v_th: fires
    assert st["u"].tolist() == [0.5, 0.0, 0.875] and st["v"].tolist() == [0.625, 0.0, 0.0]
    # step 2: u = 0.5 * 0.75 + 0 = 0.375; v = 0.625 * 0.5 + 0.375 + 0.125 = 0.8125
    y = lif.update_float(st, idx[:1], np.array([0.0]), _ctx(step=1))
    assert y.tolist() == [0.0]
    assert st["u"][0] == 0.375 and st["v"][0] == 0.8125
    assert not lif.graded and lif.state_init == {"u": 0.0, "v": 0.0}


def test_lif_fixed_closed_form_with_12_bit_decays():
    """du_fx = round(du 4096): 0.25 -> 1024, 0.0625 -> 256 (DECAY_BITS = 12)."""
    lif = nm.LIF(du=0.25, dv=0.0625, v_th=100, bias=3)
    assert (lif.du_fx, lif.dv_fx) == (1024, 256)
    st = lif.init_state(2, fixed=True)
    assert st["u"].dtype == np.int64 and st["v"].dtype == np.int64
    st["u"][:] = [1000, -1000]
    st["v"][:] = [50, -7]
    y = lif.update_fixed(st, np.array([0, 1]), np.array([5, 2], dtype=np.int64), _ctx(fixed=True))
    # u = ((u * 3072) >> 12) + x: 750 + 5 = 755, floor(-750) + 2 = -748
    assert st["u"].tolist() == [755, -748]
    # v = ((v * 3840) >> 12) + u + bias: 46 + 755 + 3 = 804 >= 100 fires -> 0;
    # floor(-7 * 3840 / 4096) = floor(-6.5625) = -7: -7 - 748 + 3 = -752
    assert y.dtype == np.int64 and y.tolist() == [1, 0]
    assert st["v"].tolist() == [0, -752]
    # exactly at the threshold fires
    st = lif.init_state(1, fixed=True)
    assert lif.update_fixed(st, np.array([0]), np.array([97]), _ctx(fixed=True)).tolist() == [1]
    st = lif.init_state(1, fixed=True)
    assert lif.update_fixed(st, np.array([0]), np.array([96]), _ctx(fixed=True)).tolist() == [0]
    assert st["v"].tolist() == [99]


def test_lif_decay_rounding_and_parameter_checks():
    assert nm.LIF(du=1 / 3).du_fx == 1365 and nm.LIF(dv=2 / 3).dv_fx == 2731  # round, not floor
    assert nm.LIF(du=1.0, dv=0.0).du_fx == 4096
    for du, dv in [(-0.01, 0.0), (0.0, 1.01), (1.5, 0.5)]:
        with pytest.raises(nm.ConfigError, match="du and dv must lie in"):
            nm.LIF(du=du, dv=dv)
    nm.LIF(du=0.0, dv=1.0)
    with pytest.raises(nm.ConfigError, match=r"lif\.v_th must be an integer"):
        nm.LIF(v_th=0.5).validate(True)
    with pytest.raises(nm.ConfigError, match=r"lif\.bias must be an integer"):
        nm.LIF(bias=0.5).validate(True)
    nm.LIF(v_th=0.5, bias=0.5).validate(False)


def test_callback_model_and_fixed_point_refusals():
    def f(state, idx, x, ctx):
        state["acc"][idx] += x
        return state["acc"][idx] * 2

    cb = nm.Callback(f, state={"acc": 1.5}, graded=False, name="cb")
    st = cb.init_state(3, fixed=False)
    y = cb.update_float(st, np.array([1]), np.array([2.0]), _ctx())
    assert y.dtype == np.float64 and y.tolist() == [7.0] and st["acc"].tolist() == [1.5, 3.5, 1.5]
    assert not cb.graded
    cb.validate(False)
    with pytest.raises(nm.ConfigError, match="neuron model 'cb' has no fixed-point variant"):
        cb.validate(True)
    with pytest.raises(nm.ConfigError, match="neuron model 'cb' has no fixed-point variant"):
        cb.update_fixed(st, np.array([0]), np.array([1]), _ctx(fixed=True))
    cq = nm.Callback(f, update_fixed=lambda s, i, x, c: x * 3, state={"acc": 2})
    cq.validate(True)
    st = cq.init_state(2, fixed=True)
    assert st["acc"].dtype == np.int64 and st["acc"].tolist() == [2, 2]
    got = cq.update_fixed(st, np.array([0]), np.array([5]), _ctx(fixed=True))
    assert got.dtype == np.int64 and got.tolist() == [15]
    assert cq.graded


def test_base_model_without_fixed_variant_is_refused():
    class Half(nm.NeuronModel):
        name = "half"

        def update_float(self, state, idx, x, ctx):
            return x / 2

    h = Half()
    h.validate(False)
    with pytest.raises(nm.ConfigError, match="neuron model 'half' has no fixed-point variant"):
        h.validate(True)
    with pytest.raises(nm.ConfigError, match="no fixed-point variant"):
        h.update_fixed({}, np.array([0]), np.array([1]), _ctx())
    nm.ReLU().validate(True)  # ReLU has one


def test_step_context_rng_is_seeded_by_seed_step_and_group():
    a = _ctx(step=3, group=2, seed=9)
    assert a.rng is a.rng  # created once
    x = a.rng.random(4)
    y = _ctx(step=3, group=2, seed=9).rng.random(4)
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(np.random.default_rng([9, 3, 2]).random(4), x)
    for other in (_ctx(step=4, group=2, seed=9), _ctx(step=3, group=1, seed=9)):
        assert not np.array_equal(other.rng.random(4), x)
    c = nm.StepContext(1, 0, True, 5, context={"k": 1})
    assert c.context == {"k": 1} and c.fixed and c.seed == 5
    assert nm.StepContext(1, 0, False, 5).context is None


def test_default_parameters():
    """ReLU() is max(x, 0) with no shift; LIF() has no decay, threshold 1 and no bias: an input
    of 0.25 then silence integrates u = 0.25 into v = 0.25, 0.5, 0.75, 1.0 and fires at step 4."""
    relu = nm.ReLU()
    assert relu.update_float({}, None, np.array([-1.0, 0.5]), _ctx()).tolist() == [0.0, 0.5]
    assert relu.update_fixed({}, None, np.array([-2, 5]), _ctx(fixed=True)).tolist() == [0, 5]
    # the fixed floor is 0, not the threshold, also without a shift
    r = nm.ReLU(threshold=2, gain=3)
    assert r.update_fixed({}, None, np.array([1, 2, 4]), _ctx(fixed=True)).tolist() == [0, 0, 6]
    lif = nm.LIF()
    st = lif.init_state(1, fixed=False)
    spikes, vs = [], []
    for x in (0.25, 0.0, 0.0, 0.0):
        spikes.append(lif.update_float(st, np.array([0]), np.array([x]), _ctx())[0])
        vs.append(st["v"][0])
    assert spikes == [0.0, 0.0, 0.0, 1.0] and vs == [0.25, 0.5, 0.75, 0.0]
    assert st["u"][0] == 0.25
    assert nm.LIF(du=2 / 3).du_fx == 2731  # 2730.67 rounds up

    class Plain(nm.NeuronModel):
        def update_float(self, state, idx, x, ctx):
            return x

    assert Plain().graded and Plain().name == "neuron"


# ------------------------------------------------------------------ StepContext, needs_update
def _sctx(**kw):
    return nm.StepContext(2, 1, False, 9, **kw)


def test_step_context_defaults_and_last_step():
    ctx = _sctx()
    assert (ctx.step, ctx.group, ctx.fixed, ctx.seed, ctx.context) == (2, 1, False, 9, None)
    assert ctx.n_steps == 1 and ctx.n_cores == 1 and ctx.phases == []
    assert ctx.placement.dtype == np.int64 and ctx.placement.shape == (0,)
    assert not ctx.last  # step 2 of a one-step run
    assert _sctx(n_steps=3).last and not _sctx(n_steps=4).last
    place, phases = np.array([0, 1]), []
    ctx = _sctx(placement=place, phases=phases)
    assert ctx.placement is place and ctx.phases is phases


def test_phase_records_a_round_with_broadcast_packets():
    ctx = _sctx(n_cores=4)
    ph = ctx.phase(
        "select",
        compute={"synop": [1, 2, 3, 4]},
        src=[0, 3, -1],
        dst=[-1, 1, 2],
        packets=2,
        rx_ops=np.array([0, 1, 5]),
    )
    assert ctx.phases == [ph] and ph.name == "select"
    assert ph.compute["synop"].dtype == np.int64 and ph.compute["synop"].tolist() == [1, 2, 3, 4]
    assert ph.src.tolist() == [0, 3, -1] and ph.dst.tolist() == [-1, 1, 2]
    assert ph.packets.tolist() == [2, 2, 2] and ph.rx_ops.tolist() == [0, 1, 5]
    empty = ctx.phase("idle")
    assert empty.src.shape == empty.dst.shape == (0,) and empty.src.dtype == np.int64
    assert empty.compute == {} and empty.packets.shape == (0,)
    assert len(ctx.phases) == 2


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        (dict(compute={"flops": [1, 1, 1, 1]}), "unknown op kind"),
        (dict(compute={"synop": [1, 1, 1]}), "must have shape"),
        (dict(src=[0, 1], dst=[1]), "equal length"),
        (dict(src=[[0]], dst=[[1]]), "equal length"),
        (dict(src=[0, 4], dst=[0, 1]), r"core ids must lie in \[-1, 4\)"),
        (dict(src=[0, 1], dst=[4, 0]), "core ids"),
        (dict(src=[-2, 0], dst=[0, 1]), "core ids"),
        (dict(src=[0, 1], dst=[1, -2]), "core ids"),
        (dict(src=[0, 1], dst=[1, 2], packets=[1, 0]), "packets must be >= 1"),
        (dict(src=[0, 1], dst=[1, 0], rx_ops=[0, -1]), "rx_ops >= 0"),
    ],
)
def test_phase_refuses_bad_rounds(kw, msg):
    ctx = _sctx(n_cores=4)
    with pytest.raises(nm.ConfigError, match=msg):
        ctx.phase("bad", **kw)
    assert ctx.phases == []


def test_phase_boundaries_are_accepted():
    ctx = _sctx(n_cores=4)
    ph = ctx.phase("edge", src=[3, -1], dst=[-1, 3], packets=[1, 1], rx_ops=[0, 0])
    assert ph.src.tolist() == [3, -1] and ph.packets.tolist() == [1, 1]


def test_needs_update_default_none_and_lif_rule():
    """A neuron without input is idle by default; a LIF neuron must update while its current
    or potential is non-zero, and always with a bias."""
    from rsgn.neuromorphic.neurons import LIF, NeuronModel

    assert NeuronModel.needs_update(LIF(), {}, 3) is None
    assert NeuronModel.declares_compute is False
    st = {"u": np.array([0.0, 0.5, 0.0, 0.0]), "v": np.array([0.0, 0.0, -0.2, 0.0])}
    assert LIF().needs_update(st, 4).tolist() == [False, True, True, False]
    assert LIF(bias=0.1).needs_update(st, 4).tolist() == [True] * 4
    assert LIF(bias=-0.1).needs_update(st, 3).tolist() == [True] * 3


def test_phase_defaults_one_packet_and_no_receive_ops():
    ph = _sctx(n_cores=2).phase("x", src=[0, 1], dst=[1, 0])
    assert ph.packets.tolist() == [1, 1] and ph.rx_ops.tolist() == [0, 0]
