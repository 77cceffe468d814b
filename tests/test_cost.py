"""The cost ledger (backends/cost.py) and the electronic cost model (backends/torch/cost.py):
units, provenance checks, counts per op, merges, reports, and every charge formula in closed
form on sizes chosen so that no two of them coincide."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from rsgn.backends import cost
from rsgn.backends.cost import Constant, CostLedger, EnergyTable
from rsgn.backends.torch import cost as ec
from rsgn.errors import RsgnError
from rsgn.forward import Trace, build_graph, forward
from rsgn.model import RSGN
from rsgn.state import Graph
from tests.conftest import small_cfg

GOOD = (
    '[events.{ev}]\nvalue = {v}\nunit = "{u}"\nsource = "[Horowitz2014]: test"\n'
    'evidence = "derived"\nscope = "test"\n'
)


def _table(**energies: tuple[float, str]) -> EnergyTable:
    return EnergyTable(
        "t", {ev: Constant(v, u, "[Horowitz2014]", "derived") for ev, (v, u) in energies.items()}
    )


# ------------------------------------------------------------------------------ the ledger
@pytest.mark.parametrize(
    "unit,factor",
    [("fJ", 1e-15), ("pJ", 1e-12), ("nJ", 1e-9), ("uJ", 1e-6), ("mJ", 1e-3), ("J", 1.0)],
)
def test_constant_joules_in_every_unit(unit, factor):
    assert Constant(2.5, unit, "s", "derived").joules() == pytest.approx(
        2.5 * factor, rel=1e-15, abs=0
    )


def test_constant_rejects_a_non_energy_unit_and_is_immutable():
    c = Constant(1.0, "eV", "s", "estimate")
    assert c.scope == ""
    with pytest.raises(RsgnError, match=r"unit 'eV' is not an energy unit \(fJ, pJ, nJ"):
        c.joules()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.value = 2.0  # type: ignore[misc]


def _files(monkeypatch, tmp_path, text: str, name: str = "t") -> None:
    (tmp_path / f"{name}.toml").write_text(text)

    class _Files:
        @staticmethod
        def files(_pkg):
            return tmp_path

    monkeypatch.setattr(cost, "resources", _Files)


def test_load_energy_table_reads_values_units_meta_and_accepts_zero(monkeypatch, tmp_path):
    text = (
        '[meta]\nname = "t"\n'
        + GOOD.format(ev="a", v=0, u="pJ")
        + GOOD.format(ev="b", v=3.5, u="nJ")
    )
    (tmp_path / "other.txt").write_text("not a preset")
    _files(monkeypatch, tmp_path, text)
    t = cost.load_energy_table("t")
    assert t.name == "t" and t.meta == {"name": "t"}
    assert t.events["a"] == Constant(0.0, "pJ", "[Horowitz2014]: test", "derived", "test")
    assert isinstance(t.events["a"].value, float)
    assert t.events["b"].joules() == pytest.approx(3.5e-9, rel=1e-15, abs=0)
    with pytest.raises(RsgnError, match=r"unknown preset 'other' for this backend \(known: t\)"):
        cost.load_energy_table("other")


def test_load_energy_table_refuses_negative_energy(monkeypatch, tmp_path):
    _files(monkeypatch, tmp_path, GOOD.format(ev="a", v=-1e-3, u="pJ"))
    with pytest.raises(RsgnError, match="preset t: event a has negative energy -0.001"):
        cost.load_energy_table("t")


def test_the_electronic_table_has_the_events_the_model_charges():
    t = ec.electronic_table()
    assert t.name == "electronic_45nm" and t.meta["name"] == "electronic_45nm"
    assert set(t.events) == {
        "mac_fp32", "add_fp32", "transcendental_fp32", "int_op_32b", "sram_word_32b",
        "dram_word_32b", "mac_int8", "add_int8", "transcendental_int8", "sram_word_8b",
        "dram_word_8b",
    }  # fmt: skip
    assert t.events["mac_fp32"].joules() == pytest.approx(4.6e-12, rel=1e-15, abs=0)


def test_ledger_counts_by_op_totals_energy_and_report():
    led = CostLedger(_table(mac=(2.0, "pJ"), add=(0.0, "pJ"), dram=(1.0, "nJ")))
    led.add("mac", 3)  # before any op: charged to 'other'
    assert led.op("x") is led
    led.add("mac", 2)
    led.add("add", 7)  # a zero-energy event still counts
    led.op("y").add("mac", 0.5)
    led.add("dram", 4)
    assert {op: dict(e) for op, e in led.counts.items()} == {
        "other": {"mac": 3.0},
        "x": {"mac": 2.0, "add": 7.0},
        "y": {"mac": 0.5, "dram": 4.0},
    }
    assert led.totals() == {"mac": 5.5, "add": 7.0, "dram": 4.0}
    by_op = led.energy_by_op()
    assert by_op == pytest.approx({"other": 6e-12, "x": 4e-12, "y": 1e-12 + 4e-9}, rel=1e-12, abs=0)
    by_ev = led.energy_by_event()
    assert by_ev == pytest.approx({"mac": 11e-12, "add": 0.0, "dram": 4e-9}, rel=1e-12, abs=0)
    assert led.energy_j() == pytest.approx(11e-12 + 4e-9, rel=1e-12, abs=0)
    d = led.to_dict()
    assert set(d) == {
        "counts_by_op", "counts", "energy_table", "energy_j", "energy_j_by_op",
        "energy_j_by_event", "constants",
    }  # fmt: skip
    assert d["counts_by_op"]["x"] == {"mac": 2.0, "add": 7.0}
    assert d["counts"] == led.totals() and d["energy_table"] == "t"
    assert d["energy_j"] == led.energy_j() and d["energy_j_by_op"] == by_op
    assert d["energy_j_by_event"] == by_ev
    assert d["constants"]["dram"] == {
        "value": 1.0, "unit": "nJ", "source": "[Horowitz2014]", "evidence": "derived", "scope": "",
    }  # fmt: skip
    assert set(d["constants"]) == {"mac", "add", "dram"}


def test_ledger_refuses_an_event_without_energy_and_works_without_a_table():
    led = CostLedger(_table(mac=(1.0, "pJ")))
    with pytest.raises(KeyError, match="event 'sram' has no energy in preset t"):
        led.add("sram", 1)
    free = CostLedger()
    free.op("p").add("anything", 2)
    assert free.totals() == {"anything": 2.0}
    assert free.energy_by_op() == {} and free.energy_by_event() == {}
    d = free.to_dict()
    assert d["energy_j"] == "n/a: no energy table"
    assert set(d) == {"counts_by_op", "counts", "energy_j"}


def test_ledger_merge_adds_counts_per_op():
    a = CostLedger()
    a.op("x").add("mac", 1)
    b = CostLedger()
    b.op("x").add("mac", 2)
    b.add("add", 5)
    b.op("z").add("mac", 4)
    a.merge(b)
    a.merge(b)
    assert {op: dict(e) for op, e in a.counts.items()} == {
        "x": {"mac": 5.0, "add": 10.0},
        "z": {"mac": 8.0},
    }
    assert {op: dict(e) for op, e in b.counts.items()} == {
        "x": {"mac": 2.0, "add": 5.0},
        "z": {"mac": 4.0},
    }


# ------------------------------------------------------------------------------ the cost model
# sizes: d_in 7, F (encoder channels) 11, D 3, d 13, r 5, C 4, w 3, N 40
def _spec(**kw):
    base = dict(
        n_nodes=40, d_hidden=13, d_space=3, affinity_rank=5, k_in=6, n_steps=2,
        encoder_width=3, encoder_dim=11, target_active=0.2,
    )  # fmt: skip
    base.update(kw)
    return RSGN(7, 4, small_cfg(**base)).export()


def _counts(led: CostLedger, op: str) -> dict[str, float]:
    return dict(led.counts.get(op, {}))


def test_charge_graph_closed_form():
    led = CostLedger(ec.electronic_table())
    ec.charge_graph(led, _spec(), 100)
    assert _counts(led, "graph") == {
        "mac_fp32": 100 * (5 + 3), "transcendental_fp32": 400, "sram_word_32b": 100 * (5 + 3 + 2)
    }  # fmt: skip


@pytest.mark.parametrize("enc,init", [(3, "attend"), (0, "mean")])
def test_charge_encode_closed_form(enc, init):
    spec = _spec(encoder_width=enc, init_state=init)
    b, t, lit = 2, 9, 17
    f = 11 if enc else 7
    led = CostLedger(ec.electronic_table())
    ec.charge_encode(led, spec, b, t, lit)
    mac = b * t * (f * 12 + 12 * 3 + 3) + lit * 13
    trans = b * t * (12 + 3 + 2)
    add = 0
    if enc:
        mac += b * t * 3 * 7 * f
        trans += b * t * f
    if init == "mean":
        mac += b * f * 13
        add += b * t * f
    else:
        mac += lit * t * f + lit * f * 13
        trans += lit * t
    got = _counts(led, "encode")
    assert got == {
        "mac_fp32": mac,
        "add_fp32": add,
        "transcendental_fp32": trans,
        "sram_word_32b": spec.weights.front_end_params(),
    }


def test_charge_ignite_attend_and_step_ops_closed_form():
    spec = _spec()
    led = CostLedger(ec.electronic_table())
    ec.charge_ignite(led, spec, 2, 9, 5)
    assert _counts(led, "ignite") == {
        "mac_fp32": 2 * 9 * 40 * 4,
        "add_fp32": 2 * 9 * 40,
        "int_op_32b": 2 * 40 * 4,
        "transcendental_fp32": 2 * 5 * 3,
        "sram_word_32b": 2 * 9 * 4 + 40 * 4,
    }
    ec.charge_attend(led, spec, 2, 9, 5)
    assert _counts(led, "attend") == {
        "mac_fp32": 90 * 4, "transcendental_fp32": 90, "sram_word_32b": 2 * 5 * 4
    }  # fmt: skip
    s = ec.StepSizes(sources=3, edges=17, candidates=11, winners=5)
    ec.charge_propagate(led, 13, s)
    assert _counts(led, "propagate") == {
        "mac_fp32": 3 * 169 + 17 * 13 + 11 * 13,
        "sram_word_32b": 17 * 15 + 3 * 13 + 169,
        "int_op_32b": 17 * 4,
        "transcendental_fp32": 22,
    }
    ec.charge_inhibit(led, 11, 6, 0.0)
    assert _counts(led, "inhibit") == {}
    ec.charge_inhibit(led, 11, 6, 0.5)
    assert _counts(led, "inhibit") == {"add_fp32": 11 * 8, "sram_word_32b": 66}
    ec.charge_select(led, 11)
    assert _counts(led, "select") == {"int_op_32b": 88}
    ec.charge_update(led, 13, 5)
    assert _counts(led, "update") == {"add_fp32": 5 * 13 * 6, "sram_word_32b": 5 * 13 * 3}
    ec.charge_input(led, spec, 2, 9)
    assert _counts(led, "input") == {"dram_word_32b": 2 * 9 * 7}


@pytest.mark.parametrize("node_readout,skip", [(False, False), (True, True)])
def test_charge_readout_closed_form(node_readout, skip):
    spec = _spec(node_readout=node_readout, token_skip=skip)
    led = CostLedger(ec.electronic_table())
    ec.charge_readout(led, spec, 2, 9, 6)
    want = {"mac_fp32": 6 * 13 + 2 * 4 * 13, "sram_word_32b": 6 * 13 + 4 * 13}
    if node_readout:
        want["mac_fp32"] += 6 * 4
        want["sram_word_32b"] += 6 * 4
    if skip:
        want["add_fp32"] = 2 * 9 * 11
        want["mac_fp32"] += 2 * 11 * 4
        want["sram_word_32b"] += 11 * 4 + 4
    assert _counts(led, "readout") == want


def _tiny_graph() -> Graph:
    """5 nodes, K = 2 slots: in-edges j -> i listed per node i (-1: dead slot)."""
    ins = [[1, 2], [0, -1], [0, 1], [4, -1], [-1, -1]]
    in_idx = torch.tensor([[max(j, 0) for j in row] for row in ins])
    in_mask = torch.tensor([[j >= 0 for j in row] for row in ins])
    from rsgn.sparse import out_csr

    ptr, out_edge = out_csr(in_idx, in_mask)
    z = torch.zeros(5)
    return Graph(
        x=torch.zeros(5, 2), a=z + 1, in_idx=in_idx, in_mask=in_mask, w=in_mask.float(),
        out_ptr=ptr, out_edge=out_edge, inh_idx=in_idx, inh_valid=in_mask,
    )  # fmt: skip


def test_step_sizes_count_sources_edges_candidates_and_winners():
    g = _tiny_graph()
    # sample 0: active {0, 4}; sample 1: active {1}, one padding slot (valid False, id 3)
    ids = torch.tensor([[0, 4], [1, 3]])
    valid = torch.tensor([[True, True], [True, False]])
    after = (ids, torch.tensor([[True, False], [True, True]]))
    s = ec.step_sizes(g, (ids, valid), after)
    # out-edges: 0 -> {1, 2}, 4 -> {3}, 1 -> {0, 2}; candidates: sample 0 {0,1,2,3,4},
    # sample 1 {0, 1, 2} (the padding slot's node 3 and its edge 3 -> nothing are not counted)
    assert s == ec.StepSizes(sources=3, edges=5, candidates=8, winners=3)
    empty = ec.step_sizes(g, (ids, torch.zeros_like(valid)), (ids, torch.zeros_like(valid)))
    assert empty == ec.StepSizes(0, 0, 0, 0)


def _brute_sizes(g: Graph, before, after) -> ec.StepSizes:
    ids, valid = before
    src = edges = 0
    cands = set()
    for b in range(ids.shape[0]):
        for s in range(ids.shape[1]):
            if not valid[b, s]:
                continue
            j = int(ids[b, s])
            src += 1
            cands.add((b, j))
            for i in range(g.n_nodes):
                for k in range(g.in_idx.shape[1]):
                    if g.in_mask[i, k] and int(g.in_idx[i, k]) == j:
                        edges += 1
                        cands.add((b, i))
    return ec.StepSizes(src, edges, len(cands), int(after[1].sum()))


@pytest.mark.parametrize("init", ["attend", "mean"])
def test_charge_run_is_the_sum_of_its_charges(init):
    spec = _spec(init_state=init, inhibition_strength=0.3)
    hp, w = spec.hyper, spec.weights
    g = build_graph(w, hp)
    trace = Trace()
    x = torch.randn(3, 5, 7)
    with torch.no_grad():
        forward(w, hp, x, graph=g, trace=trace)
    led = CostLedger(ec.electronic_table())
    sizes = ec.charge_run(led, spec, g, trace)
    assert len(sizes) == hp.n_steps
    for a, b, s in zip(trace.states[:-1], trace.states[1:], sizes, strict=True):
        assert s == _brute_sizes(g, a, b)
    want = CostLedger(ec.electronic_table())
    ids0, valid0 = trace.states[0]
    ec.charge_encode(want, spec, 3, 5, int(valid0.sum()))
    ec.charge_ignite(want, spec, 3, 5, ids0.shape[1])
    if init == "attend":
        ec.charge_attend(want, spec, 3, 5, ids0.shape[1])
    for s in sizes:
        ec.charge_propagate(want, 13, s)
        ec.charge_inhibit(want, s.candidates, g.inh_idx.shape[1], 0.3)
        ec.charge_select(want, s.candidates)
        ec.charge_update(want, 13, s.winners)
    ec.charge_readout(want, spec, 3, 5, int(trace.states[-1][1].sum()))
    ec.charge_input(want, spec, 3, 5)
    assert {op: dict(e) for op, e in led.counts.items()} == {
        op: dict(e) for op, e in want.counts.items()
    }
    assert ("attend" in led.counts) == (init == "attend")
    assert "graph" not in led.counts
    assert math.isclose(led.energy_j(), want.energy_j(), rel_tol=1e-12)
    only = CostLedger(ec.electronic_table())
    ec.charge_run(only, spec, g, trace, ops=("select", "input"))
    assert set(only.counts) == {"select", "input"}
    assert only.counts["select"] == want.counts["select"]
    assert ec.ELECTRONIC_OPS == (
        "input", "encode", "ignite", "attend", "propagate", "inhibit", "select", "update",
        "readout",
    )  # fmt: skip
