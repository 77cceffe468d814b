"""The neuromorphic backend: equality with torch, exact energy accounting, locality, capacity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rsgn.backends import get_backend, load_energy_table, names
from rsgn.backends.neuromorphic import NeuromorphicBackend, NeuromorphicProgram
from rsgn.errors import RsgnError
from rsgn.evaluate import evaluate
from rsgn.model import RSGN
from tests.conftest import small_cfg


def _model(**kw) -> RSGN:
    # the configuration these cost checks were calibrated on: the paper's 3-dimensional ball
    # (placement by hyperbolic locality) and mean initial state
    torch.manual_seed(0)
    return RSGN(8, 3, small_cfg(**{"d_space": 3, "init_state": "mean", **kw}))


def _x(b: int = 12) -> torch.Tensor:
    return torch.randn(b, 6, 8, generator=torch.Generator().manual_seed(1))


def _dynamic(rep) -> float:
    bd = rep.metrics["energy_breakdown_j"]
    return math.fsum(v for k, v in bd.items() if k not in ("static", "host"))


def test_registered_and_errors_name_the_known_values():
    assert "neuromorphic" in names()
    be = get_backend("neuromorphic", preset="spinnaker2")
    assert be.name == "neuromorphic" and be.preset_name == "spinnaker2"
    assert not be.capabilities().differentiable
    assert be.capabilities().metrics["energy_measured"].startswith("n/a:")
    with pytest.raises(RsgnError, match="unknown preset 'fantasy'.*loihi2_est"):
        get_backend("neuromorphic", preset="fantasy")
    with pytest.raises(RsgnError, match="unknown mode 'analog'.*float, fixed"):
        NeuromorphicBackend(mode="analog")
    with pytest.raises(RsgnError, match="binary spikes only"):
        NeuromorphicBackend(preset="truenorth").prepare(_model())
    with pytest.raises(RsgnError, match="prepare"):
        _model()(_x(2), backend=NeuromorphicBackend())


@pytest.mark.parametrize("kw", [{}, {"d_space": 8, "init_state": "attend"}])  # + the default
def test_float_mode_reproduces_torch(kw):
    m = _model(**kw)
    x = _x(16)
    with torch.no_grad():
        ref = m(x, backend=get_backend("torch")).logits
    logits, rep = NeuromorphicBackend().prepare(m)(x)
    rel = ((logits - ref).abs().amax(1) / ref.abs().amax(1)).max()
    assert float(rel) <= 1e-5
    assert torch.equal(logits.argmax(1), ref.argmax(1))
    assert rep.metrics["reference"]["prediction_agreement"] == 1.0
    assert rep.metrics["reference"]["max_rel_logit_error"] <= 1e-5
    assert 0 < rep.active_fraction <= 0.1 + 1e-9
    assert rep.metrics["event_counts"]["synops"] > 0


def test_idle_policy_changes_cost_not_outputs():
    m = _model()
    x = _x(6)
    out = {
        p: NeuromorphicBackend(idle_policy=p, reference=False).prepare(m)(x)
        for p in ("touched_only", "all")
    }
    assert torch.allclose(out["all"][0], out["touched_only"][0], atol=1e-6)
    c_all = out["all"][1].metrics["event_counts"]
    c_touch = out["touched_only"][1].metrics["event_counts"]
    assert c_touch["neuron_updates_idle"] == 0 < c_all["neuron_updates_idle"]
    assert c_all["neuron_updates_active"] == c_touch["neuron_updates_active"]


def test_energy_is_counted_events_times_constants_plus_static_times_latency():
    m = _model()
    be = NeuromorphicBackend(nodes_per_core=4, reference=False)
    prog = be.prepare(m)
    logits, rep = prog(_x(8))
    prof, c = be.profile, rep.metrics["event_counts"]
    e = prof.energy
    host = load_energy_table("electronic_45nm")
    lat_ps = round(sum(rep.metrics["latency_per_inference_s"]) * 1e12)
    want_chip = (
        c["synops"] * e.synop
        + c["neuron_updates_active"] * e.neuron_update_active
        + c["neuron_updates_idle"] * e.neuron_update_idle
        + c["packets"] * e.tile_spike
        + c["hops_ew"] * e.hop_ew
        + c["hops_ns"] * e.hop_ns
        + c["chip_hops"] * e.chip_hop
        + c["barriers"] * e.barrier
        + rep.metrics["projection_macs"] * e.synop
    ) * 1e-12
    want_static = e.static_power_mw * 1e-3 * prog.topology.n_chips * lat_ps * 1e-12
    counts = rep.ledger.totals()
    want_host = math.fsum(
        n * host.events[ev].joules() for ev, n in counts.items() if ev in host.events
    )
    total = rep.ledger.energy_j()
    assert total == pytest.approx(want_chip + want_static + want_host, rel=1e-9)
    bd = rep.metrics["energy_breakdown_j"]
    assert math.fsum(bd.values()) == pytest.approx(total, rel=1e-12)
    assert bd["static"] == pytest.approx(want_static, rel=1e-9)
    assert bd["hops"] > 0 and bd["synops"] > 0 and bd["neuron_update_active"] > 0
    consts = rep.ledger.to_dict()["constants"]
    assert consts["nm_synop"]["value"] == e.synop and "loihi2_est" in consts["nm_synop"]["source"]
    assert all(v["source"] and v["unit"] for v in consts.values())
    json.dumps(rep.to_dict())


def test_co_located_nodes_cost_no_hops_and_placement_is_local(monkeypatch):
    m = _model()
    x = _x(6)
    _, one_core = NeuromorphicBackend(nodes_per_core=64, reference=False).prepare(m)(x)
    assert one_core.metrics["mapping"]["cores_used"] == 1
    c = one_core.metrics["event_counts"]
    assert c["hops"] == 0 and c["inter_tile_packets"] == 0 and c["intra_tile_spikes"] > 0
    assert one_core.metrics["energy_breakdown_j"]["hops"] == 0.0

    spread = NeuromorphicBackend(nodes_per_core=4, reference=False)
    logits_local, local = spread.prepare(m)(x)
    assert local.metrics["mapping"]["cores_used"] == 16
    orig = NeuromorphicProgram._node_cores

    def shuffled(self, topo, per, split):
        cores = orig(self, topo, per, split)
        return cores[np.random.default_rng(0).permutation(len(cores))]

    monkeypatch.setattr(NeuromorphicProgram, "_node_cores", shuffled)
    logits_rand, rand = spread.prepare(m)(x)
    assert torch.allclose(logits_local, logits_rand, atol=1e-6)  # placement changes costs only
    assert local.metrics["event_counts"]["hops"] < 0.8 * rand.metrics["event_counts"]["hops"]


def test_dynamic_energy_roughly_halves_with_the_active_fraction():
    x = torch.randn(8, 6, 8, generator=torch.Generator().manual_seed(2))
    dyn = []
    for ta in (0.1, 0.05):
        torch.manual_seed(0)
        cfg = small_cfg(n_nodes=256, d_hidden=8, target_active=ta, d_space=3, init_state="mean")
        m = RSGN(8, 3, cfg)  # the configuration of _model
        _, rep = NeuromorphicBackend(reference=False).prepare(m)(x)
        dyn.append(_dynamic(rep))
    assert 0.4 <= dyn[1] / dyn[0] <= 0.65


def test_graded_8bit_and_fixed_modes_report_their_drop():
    m = _model()
    x = _x(16)
    _, q = NeuromorphicBackend(payload_bits=8).prepare(m)(x)
    ref = q.metrics["reference"]
    assert 0 < ref["max_rel_logit_error"] < 0.5
    assert ref["prediction_agreement"] >= 0.8
    assert q.metrics["payload_bits"] == 8 and q.metrics["payload_scale"] > 0
    y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(3))
    acc_t = evaluate(m, x, y, "torch")["accuracy"]
    acc_q = evaluate(m, x, y, NeuromorphicBackend(payload_bits=8))["accuracy"]
    assert abs(acc_t - acc_q) <= 1 - ref["prediction_agreement"] + 1e-9
    _, fx = NeuromorphicBackend(mode="fixed").prepare(m)(x)
    assert fx.metrics["reference"]["max_rel_logit_error"] < 0.05


def test_per_channel_payload_scales_and_calibration():
    m = _model()
    x = _x(16)
    prog = NeuromorphicBackend(payload_bits=8).prepare(m)
    bound = prog.chan_scale.copy()
    assert bound.shape == (17,) and bound[-1] == pytest.approx(1 / 127) and (bound > 0).all()
    _, q_bound = prog(x)
    cal = prog.calibrate(torch.randn(32, 6, 8, generator=torch.Generator().manual_seed(5)))
    assert (cal[:-1] < bound[:-1]).all()  # data are well inside the worst-case bound
    assert q_bound.metrics["payload_scales"] == pytest.approx(bound.tolist())
    _, q_cal = prog(x)
    err_b = q_bound.metrics["reference"]["max_rel_logit_error"]
    assert q_cal.metrics["reference"]["max_rel_logit_error"] < err_b
    with pytest.raises(RsgnError, match="payload width"):
        NeuromorphicBackend().prepare(m).calibrate(x)


def test_energy_split_is_dynamic_static_host_and_per_inference():
    m = _model()
    _, rep = NeuromorphicBackend(reference=False).prepare(m)(_x(5))
    split, bd = rep.metrics["energy_split_j"], rep.metrics["energy_breakdown_j"]
    assert math.fsum(split.values()) == pytest.approx(rep.ledger.energy_j(), rel=1e-12)
    assert split["dynamic"] == pytest.approx(_dynamic(rep), rel=1e-12)  # barrier is 0 here
    assert split["host"] == bd["host"] and split["static"] == bd["static"]
    per = rep.metrics["dynamic_energy_per_inference_j"]
    assert len(per) == 5 and math.fsum(per) == pytest.approx(split["dynamic"], rel=1e-9)


def test_sigma_delta_reports_events_saved():
    m = _model()
    _, rep = NeuromorphicBackend(payload_bits=8, sigma_delta=True, sd_threshold=2.0).prepare(m)(
        _x(8)
    )
    sd = rep.metrics["sigma_delta_events"]
    assert sd["plain"] > 0
    # ``events`` counts emissions of the simulated steps; ``plain`` also counts the initial
    # (ignition) emission, whose packets are routed in step 0.
    assert 0 < sd["saved"] < sd["plain"]
    assert rep.metrics["event_counts"]["events"] <= sd["plain"] - sd["saved"]
    assert "prediction_agreement" in rep.metrics["reference"]


def test_capacity_errors_name_the_model_and_preset():
    m = _model()
    one = {"node_split": 1}  # whole nodes only: the limits below need a split
    with pytest.raises(RsgnError, match=r"64 nodes x 17 compartments.*loihi2_est.*max_neurons"):
        NeuromorphicBackend(overrides={"core.max_neurons": 8}, **one).prepare(m)
    with pytest.raises(RsgnError, match=r"64 nodes.*does not fit preset loihi2_est.*fan-in"):
        NeuromorphicBackend(overrides={"core.max_axons_in": 4}).prepare(m)  # even split 17
    # one node per core still overflows: the message names the hub and the product
    g = m.build_graph(NeuromorphicBackend())
    deg = torch.bincount(g.in_idx[g.in_mask], minlength=g.n_nodes)
    hub, c = int(deg.argmax()), m.cfg.d_hidden + 1
    with pytest.raises(RsgnError) as exc:
        NeuromorphicBackend(
            overrides={"core.max_axons_out": int(deg.max()) * c - 1}, **one
        ).prepare(m)
    assert f"node {hub} has {int(deg.max())} out-neighbours: x {c} compartments" in str(exc.value)
    assert "node_split > 1" in str(exc.value)
    with pytest.raises(RsgnError, match=rf"in-neighbours x {c} compartments"):
        NeuromorphicBackend(overrides={"core.max_axons_in": 4 * c}, **one).prepare(m)
    with pytest.raises(RsgnError, match=r"node_split 18 > 17 compartments"):
        NeuromorphicBackend(node_split=18).prepare(m)
    with pytest.raises(RsgnError, match=r"node_split must be >= 1"):
        NeuromorphicBackend(node_split=0)
    with pytest.raises(RsgnError, match=r"does not fit preset loihi2_est"):
        NeuromorphicBackend(
            overrides={"chip.tiles_x": 1, "chip.tiles_y": 1}, chips=1, nodes_per_core=2
        ).prepare(m)


def test_deterministic_by_seed():
    m = _model()
    x = _x(6)
    a_logits, a = NeuromorphicBackend(seed=3, nodes_per_core=8).prepare(m)(x)
    b_logits, b = NeuromorphicBackend(seed=3, nodes_per_core=8).prepare(m)(x)
    assert torch.equal(a_logits, b_logits)
    assert a.metrics["trace_hashes"] == b.metrics["trace_hashes"]
    assert a.metrics["latency_per_inference_s"] == b.metrics["latency_per_inference_s"]
    assert len(set(a.metrics["trace_hashes"])) > 1  # different inputs, different traces


def test_evaluate_reports_latency_distribution_and_neurobench():
    m = _model()
    x, y = _x(10), torch.randint(0, 3, (10,))
    res = evaluate(m, x, y, "neuromorphic", batch_size=5, preset="loihi2_est")
    assert res["backend"] == "neuromorphic" and res["preset"] == "loihi2_est"
    assert isinstance(res["latency_s_per_sample"], float) and res["latency_s_per_sample"] > 0
    _, rep = NeuromorphicBackend().prepare(m)(x)
    stats = rep.metrics["latency_stats_s"]
    assert stats["min"] <= stats["p50"] <= stats["max"]
    assert len(rep.metrics["latency_per_inference_s"]) == 10
    nb = rep.metrics["neurobench"]
    assert 0 < nb["activation_sparsity"] < 1 and 0 < nb["connection_sparsity"] < 1
    assert nb["eff_macs"] > 0 and nb["dense_synops"] > nb["eff_macs"]
    json.dumps(res)


@pytest.mark.parametrize(
    "limit", [{"core.max_axons_out": "hub"}, {"core.max_neurons": 8}, {"core.max_axons_in": 80}]
)
def test_split_nodes_fit_where_whole_nodes_do_not_and_reproduce_torch(limit):
    """A node whose c compartments overflow a core (fan-out, neurons, fan-in) is split over
    the fewest cores (a power of two) that fit; outputs stay those of the reference."""
    m = _model()
    g = m.build_graph(NeuromorphicBackend())
    c = m.cfg.d_hidden + 1
    if limit.get("core.max_axons_out") == "hub":
        deg = torch.bincount(g.in_idx[g.in_mask], minlength=g.n_nodes)
        limit = {"core.max_axons_out": int(deg.max()) * c - 1}
    with pytest.raises(RsgnError, match="does not fit"):
        NeuromorphicBackend(overrides=limit, node_split=1).prepare(m)
    x = _x(6)
    with torch.no_grad():
        ref = m(x, backend=get_backend("torch")).logits
    prog = NeuromorphicBackend(overrides=limit).prepare(m)
    logits, rep = prog(x)
    split = rep.metrics["mapping"]["node_split"]
    assert split >= 2 and (split & (split - 1) == 0 or split == c)
    assert torch.allclose(logits, ref, rtol=1e-5, atol=1e-6)
    # every node's compartments sit on `split` distinct cores; each slice holds a contiguous run
    place = prog.network.placement.reshape(g.n_nodes, c)
    assert all(np.unique(row).size == split for row in place)
    assert rep.metrics["exchange_counts"]["packets"] > 0
    assert rep.metrics["energy_breakdown_j"]["exchange"] > 0


def test_split_exchange_is_counted_per_candidate_and_winner():
    """Three rounds per step: 3 values from each non-gate slice of every candidate, 3 back to
    every winner's non-gate slices, and the all-gather of h among a winner's state slices."""
    m = _model()
    x = _x(4)
    split = 2
    prog = NeuromorphicBackend(node_split=split, reference=False).prepare(m)
    logits, rep = prog(x)
    whole_logits, whole = NeuromorphicBackend(node_split=1, reference=False).prepare(m)(x)
    assert torch.allclose(logits, whole_logits, atol=1e-6)
    assert whole.metrics["exchange_counts"]["packets"] == 0
    assert whole.metrics["energy_breakdown_j"]["exchange"] == 0
    d = m.cfg.d_hidden
    sizes = prog.state_sizes
    assert sizes.sum() == d and sizes.size == split
    # replay the candidate and winner counts from the op records of the run
    with torch.no_grad():
        be = get_backend("torch")
        counts = {"cand": 0, "win": 0}

        class Count(type(be)):
            def update(self, cand, alpha, prev, ids, row, valid, *a, **k):
                counts["cand"] += int(cand.node.numel())
                counts["win"] += int(valid.sum())
                return super().update(cand, alpha, prev, ids, row, valid, *a, **k)

        m(x, backend=Count(), graph=prog.graph)
        n_cand, n_win = counts["cand"], counts["win"]
    gather = sum(int(sizes[a]) * (split - 1) for a in range(split) if sizes[a] > 0)
    want = 3 * (split - 1) * n_cand + 3 * (split - 1) * n_win + gather * n_win
    xc = rep.metrics["exchange_counts"]
    assert xc["packets"] == want == xc["ops"]
    e = prog.backend.profile.energy
    want_j = (
        xc["packets"] * e.tile_spike
        + xc["hops_ew"] * e.hop_ew
        + xc["hops_ns"] * e.hop_ns
        + xc["chip_hops"] * e.chip_hop
        + xc["ops"] * e.synop
    ) * 1e-12
    assert rep.metrics["energy_breakdown_j"]["exchange"] == pytest.approx(want_j, rel=1e-9)
    # the exchange takes time: split latency exceeds the chip's simulated latency by its rounds
    chip = sum(rep.metrics["chip_latency_per_inference_s"])
    assert sum(rep.metrics["latency_per_inference_s"]) > chip
