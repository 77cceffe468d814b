"""The neuromorphic target: the whole inference on the chip (host: I/O only), measured against
torch; exact energy accounting; the distributed and the local k-winners; locality, capacity,
coding modes, split nodes and re-entrancy."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rsgn import ops
from rsgn.backends import get_backend, names
from rsgn.backends.base import Measured, Modelled, NotAvailable
from rsgn.backends.neuromorphic import NeuromorphicBackend, NeuromorphicOptions, cost, mapping
from rsgn.backends.neuromorphic.node_program import select as chip_select
from rsgn.errors import RsgnError
from rsgn.evaluation import evaluate
from rsgn.forward import Trace, forward
from rsgn.model import RSGN
from rsgn.plots import OP_ORDER
from tests.conftest import small_cfg

PACKAGE = Path(__file__).resolve().parents[1] / "backends" / "neuromorphic"
REL_TOL = 1e-5
"""Float mode with exact payloads vs the torch target: max_b |logits_b - ref_b|_inf /
|ref_b|_inf (float64 chip arithmetic against the float32 reference; measured ~1e-7)."""
PAPER = {"d_space": 3, "init_state": "mean", "encoder_width": 0}
"""The paper configuration (``rsgn/presets/paper.toml``) at a small size."""


def _spec(seed: int = 0, **kw):
    torch.manual_seed(seed)
    return RSGN(8, 3, small_cfg(**{"d_space": 3, "init_state": "mean", **kw})).export()


def _trained_like(seed: int = 0, **kw):
    """A small model with per-node thresholds spread as training leaves them."""
    torch.manual_seed(seed)
    m = RSGN(8, 3, small_cfg(**kw))
    with torch.no_grad():
        m.theta.add_(0.05 * torch.randn(m.theta.shape))
    return m.export()


def _x(b: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 6, 8, generator=torch.Generator().manual_seed(seed))


def _be(**kw) -> NeuromorphicBackend:
    return get_backend("neuromorphic", **kw)


def _torch(spec, x) -> torch.Tensor:
    return get_backend("torch", compile="eager").prepare(spec)(x)[0]


def _agreement(logits: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Measured agreement of a run with the torch reference on the same inputs."""
    diff = (logits.double() - ref.double()).abs().amax(1)
    return {
        "max_abs": float(diff.max()),
        "max_rel": float((diff / ref.double().abs().amax(1)).max()),
        "agreement": float((logits.argmax(1) == ref.argmax(1)).float().mean()),
    }


# ------------------------------------------------------------------------------ interface
def test_registered_options_validated_and_binary_presets_refused_before_any_work():
    assert "neuromorphic" in names()
    be = _be(preset="spinnaker2")
    assert be.name == "neuromorphic" and be.options.preset == "spinnaker2"
    caps = be.capabilities()
    assert not caps.trains and caps.kind("latency") == "modelled"
    assert caps.kind("latency_distribution") == "modelled"
    assert isinstance(caps.metrics["energy_measured"], NotAvailable)
    assert caps.reference_tol is not None  # float mode, exact payloads, exact selection
    assert _be(payload_bits=8).capabilities().reference_tol is None
    assert _be(selection="local").capabilities().reference_tol is None
    with pytest.raises(RsgnError, match="unknown preset 'fantasy'.*loihi2_est"):
        _be(preset="fantasy")
    with pytest.raises(RsgnError, match="unknown mode 'analog'.*float, fixed"):
        _be(mode="analog")
    with pytest.raises(RsgnError, match="idle_policy"):
        _be(idle_policy="sometimes")
    with pytest.raises(RsgnError, match="payload_bits must be >= 2"):
        _be(payload_bits=1)
    with pytest.raises(RsgnError, match="core.nope"):
        _be(overrides="core.nope=3")
    with pytest.raises(RsgnError, match="unknown selection 'global'.*exact, local"):
        _be(selection="global")
    with pytest.raises(RsgnError, match="select_bits must lie in 1 .. 16"):
        _be(select_bits=0)
    with pytest.raises(RsgnError, match="unknown noc 'analytic'.*train, packet"):
        _be(noc="analytic")
    with pytest.raises(RsgnError, match="has no option 'nodesplit'.*node_split"):
        NeuromorphicOptions().with_items(["nodesplit=2"])
    opts = NeuromorphicOptions().with_items(["node_split=2", "mode=fixed", "payload_bits=none"])
    assert (opts.node_split, opts.mode, opts.payload_bits) == (2, "fixed", None)
    spec = _spec()
    for preset in ("loihi", "truenorth"):  # binary spikes: check refuses, naming the preset
        with pytest.raises(RsgnError, match=f"preset {preset} sends binary spikes only"):
            _be(preset=preset).check(spec)
        with pytest.raises(RsgnError, match="binary spikes only"):
            _be(preset=preset).prepare(spec)
    with pytest.raises(RsgnError, match="payload_bits 40 > preset loihi2_est"):
        _be(payload_bits=40).check(spec)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return mods


def test_the_package_owns_its_computation():
    """The chip path (node program, front end, chip program, its phases) imports neither torch
    nor the reference ops; no module imports another target or derives from a backend; the
    host computes nothing of the inference."""
    allowed = {"__future__", "dataclasses", "statistics", "math", "numpy", "scipy.special"}
    assert _imports(PACKAGE / "node_program.py") <= allowed
    for f in ("front_end.py", "chip_program.py", "traffic.py"):
        mods = _imports(PACKAGE / f)
        assert not any(m == "torch" or m.startswith("torch.") for m in mods), f
        assert not mods & {"rsgn.ops", "rsgn.forward", "rsgn.geometry"}, (f, mods)
    assert not (PACKAGE / "host.py").exists()
    for f in PACKAGE.glob("*.py"):
        tree = ast.parse(f.read_text())
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module:
                assert n.module != "rsgn.ops", f.name
                if n.module.startswith("rsgn.backends.") and n.module != "rsgn.backends.base":
                    assert n.module.startswith(
                        ("rsgn.backends.neuromorphic", "rsgn.backends.cost",
                         "rsgn.backends.options")
                    ), (f.name, n.module)  # fmt: skip
            if isinstance(n, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in n.bases}
                assert not bases & {"TorchBackend", "TorchProgram"}, (f.name, n.name)


def test_a_call_runs_without_the_reference_ops(monkeypatch):
    """Every op of the definition raises during the call: the chip computes the front end,
    ignition, propagation and readout itself, and its report charges the host only the
    input and output I/O."""
    spec, x = _spec(), _x(4)
    prog = _be().prepare(spec)  # prepare compiles the graph (edge weights, positions)
    ref = _torch(spec, x)

    def boom(*a, **k):
        raise AssertionError("the reference ops were called on the chip path")

    for name in ("encode", "spark_points", "ignite", "attend", "propagate", "inhibit",
                 "select", "update", "readout", "node_readout", "step"):  # fmt: skip
        monkeypatch.setattr(ops, name, boom)
    logits, rep = prog(x)
    assert _agreement(logits, ref)["agreement"] == 1.0
    by_op = rep.ledger.counts
    assert all(ev.startswith("nm_") for evs in by_op.values() for ev in evs)
    # the tokens (6 x 8 values per sample) go to the cores that own them, with the
    # convolution's halo (4 tokens) for each block of tokens
    cores = np.unique(prog.layout.gate_cores).size
    blocks = min(cores, 6)
    assert 4 * 6 * 8 <= by_op["input"]["nm_host_io"] <= 4 * 8 * (6 + 4 * blocks)
    n_classes = 3
    assert rep.details["event_counts"]["phases"]["io_out"]["host_out"] == 4 * n_classes
    assert rep.details["energy_breakdown_j"]["host_io"] > 0


# ------------------------------------------------------------------------------ selection
@pytest.mark.parametrize("method,bits", [("radix", 1), ("radix", 4), ("radix", 8), ("stat", 4)])
def test_chip_selection_picks_the_winners_of_ops_select(method, bits):
    """The chip's distributed radix select (``bits`` key bits per reduction round) and the
    statistical rule against the definition on random scores with many ties."""
    rng = np.random.default_rng(0)
    rounds = []
    for trial in range(100):
        n, bsz = int(rng.integers(10, 300)), 5
        cap = int(rng.integers(1, 40))
        rows, nodes, scores = [], [], []
        for b in range(bsz):
            m = int(rng.integers(0, n + 1))
            nodes.append(np.sort(rng.choice(n, m, replace=False)))
            levels = rng.choice([3, 10, 1000])  # few distinct values: ties at the k-th score
            s = np.round(rng.random(m) * levels) / levels if trial % 4 else rng.random(m)
            s[rng.random(m) < 0.1] = -0.0 if trial % 2 else 0.0
            scores.append(s.astype(np.float32))
            rows.append(np.full(m, b))
        ids, _, valid = ops.select(
            torch.from_numpy(np.concatenate(rows)).long(),
            torch.from_numpy(np.concatenate(nodes)).long(),
            torch.from_numpy(np.concatenate(scores)),
            bsz,
            n,
            cap=cap,
            eps=0.05,
            method=method,
        )
        for b in range(bsz):
            sel = chip_select(
                scores[b], nodes[b], cap=cap, eps=0.05, method=method, n_nodes=n, bits=bits
            )
            want = sorted(ids[b][valid[b]].tolist())
            assert sorted(nodes[b][sel.winners].tolist()) == want, (trial, b)
            rounds.append(len(sel.rounds))
    if method == "radix":  # a count round, <= 32/bits key rounds, <= log2(N)/bits id rounds
        assert 1 <= min(rounds) and max(rounds) <= 1 + math.ceil(32 / bits) + math.ceil(9 / bits)
        assert max(rounds) > 32 // bits
    else:
        assert set(rounds) == {1}


def test_local_k_wta_keeps_each_cores_quota_and_sends_nothing():
    """The per-core k-WTA: no selection traffic, at most ceil(cap x share) winners per core,
    the winners being each core's best; its agreement with the exact selection is measured."""
    spec, x = _trained_like(0, n_nodes=128), _x(12, 3)
    exact = _be(nodes_per_core=16).prepare(spec)
    local = _be(nodes_per_core=16, selection="local").prepare(spec)
    le, re = exact(x)
    ll, rl = local(x)
    assert rl.details["packets_by_class"].get("select", 0) == 0
    assert re.details["packets_by_class"]["select"] > 0
    assert rl.details["energy_breakdown_j"]["selection"] > 0  # the local select's instructions
    gate = local.layout.gate_cores
    quota = -(-spec.hyper.cap * np.bincount(gate, minlength=gate.max() + 1) // 128)
    for inf in local.run_chip(x[:3]):
        for s in inf.log.steps.values():
            assert (np.bincount(gate[s.winners], minlength=quota.size) <= quota).all()
    ref = _torch(spec, x)
    a_exact, a_local = _agreement(le, ref), _agreement(ll, ref)
    print("exact selection:", a_exact, "local k-WTA:", a_local)
    assert a_exact["agreement"] == 1.0
    assert a_local["max_rel"] > a_exact["max_rel"]  # an approximation, and it shows


# ------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("config", ["default", "paper"])
def test_float_mode_agrees_with_the_torch_target(config, seed):
    """Measured: the chip's logits (front end, ignition, propagation, readout all on the chip)
    against the torch target's on the same inputs, small models with per-node thresholds."""
    kw = {} if config == "default" else PAPER
    spec, x = _trained_like(seed, **kw), _x(16, seed + 10)
    logits, rep = _be().prepare(spec)(x)
    a = _agreement(logits, _torch(spec, x))
    print(f"{config} seed {seed}: {a}")
    assert a["max_rel"] <= REL_TOL and a["agreement"] == 1.0
    assert 0 < rep.active_fraction <= 0.1 + 1e-9
    assert rep.details["event_counts"]["graded_synops"] > 0


@pytest.mark.parametrize("config", ["default", "paper"])
def test_padded_steps_are_inert_on_the_chip_and_cost_nothing(config):
    """``program(x, lengths)``: the host streams only the L_b real tokens, so the chip's
    logits match the definition with the mask (``rsgn.forward(..., lengths=...)``: the
    encoder, ignition, initial state and skip path all run on the chip's front end), padding
    (here large values) changes nothing, and a padded sample costs what its unpadded run does."""
    kw = {} if config == "default" else PAPER
    spec = _trained_like(3, **kw)
    g = torch.Generator().manual_seed(5)
    lengths = torch.tensor([6, 3, 1, 5])
    x = torch.randn(4, 6, 8, generator=g)
    pad = torch.arange(6)[None, :] >= lengths[:, None]
    xp = torch.where(pad.unsqueeze(-1), 50.0 * torch.randn(4, 6, 8, generator=g), x)
    prog = _be().prepare(spec)
    logits, rep = prog(xp, lengths=lengths)
    ref = forward(spec.weights, spec.hyper, xp, ops.TABLE, lengths=lengths).logits
    a = _agreement(logits, ref)
    print(f"{config} padded vs forward(lengths): {a}")
    assert a["max_rel"] <= REL_TOL and a["agreement"] == 1.0
    # unmasked, the large padding matters (samples whose sparks ignite nothing: the chip reads
    # out the empty set at once, as the definition's logits b_o + skip)
    unmasked, _ = prog(xp)
    assert not torch.allclose(unmasked, logits)
    a = _agreement(unmasked, forward(spec.weights, spec.hyper, xp, ops.TABLE).logits)
    assert a["max_rel"] <= REL_TOL and a["agreement"] == 1.0
    for i, n in enumerate(lengths.tolist()):
        alone, _ = prog(x[i : i + 1, :n])
        assert torch.equal(logits[i : i + 1], alone)
        one, _ = prog(xp[i : i + 1], lengths=lengths[i : i + 1])
        assert one.shape == alone.shape
    totals = [prog(x[i : i + 1, :n])[1].ledger.energy_j() for i, n in enumerate(lengths.tolist())]
    assert rep.ledger.energy_j() == pytest.approx(sum(totals), rel=1e-9)
    if config == "default":  # here nothing ignites: the empty set is read out at once
        far, frep = prog(50.0 * x)
        assert frep.active_fraction == 0.0
        a = _agreement(far, forward(spec.weights, spec.hyper, 50.0 * x, ops.TABLE).logits)
        assert a["max_rel"] <= REL_TOL and a["agreement"] == 1.0
    with pytest.raises(RsgnError, match="lengths must lie in"):
        prog(xp, lengths=torch.tensor([6, 0, 1, 5]))
    with pytest.raises(RsgnError, match="entries for a batch of 4"):
        prog(xp, lengths=torch.tensor([6, 3]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float_mode_on_untrained_models_differs_only_at_float32_ties(seed):
    """Untrained default models (one theta for every node) give many candidates scores within
    a float32 ulp of each other: the float32 reference ties them (lowest ids win), the float64
    chip orders them. Measured: predictions agree; at the first step where a sample's winners
    differ, every swapped node's reference score is within 4 float32 ulps of the k-th score."""
    torch.manual_seed(seed)
    spec = RSGN(8, 3, small_cfg()).export()
    x = _x(16, seed + 10)
    prog = _be().prepare(spec)
    logits, _ = prog(x)
    trace, scores = Trace(), []

    def inhibit(cand, graph, *, strength):
        a = ops.inhibit(cand, graph, strength=strength)
        scores.append((cand.batch, cand.node, a))
        return a

    ref = forward(spec.weights, spec.hyper, x, ops.make_table(inhibit=inhibit), trace=trace)
    infs = prog.run_chip(x)
    a = _agreement(logits, ref.logits)
    flips = 0
    for b in range(len(x)):
        ids0, valid0 = trace.states[0]
        assert set(ids0[b][valid0[b]].tolist()) == set(infs[b].log.emitted[0].tolist())
        for t in range(spec.hyper.n_steps):
            ids, valid = trace.states[t + 1]
            want = set(ids[b][valid[b]].tolist())
            got = set(infs[b].log.steps[t].winners.tolist())
            if want == got:
                continue
            flips += 1
            cb, cn, s = scores[t]
            nodes, sc = cn[cb == b].numpy(), s[cb == b].numpy()
            kth = np.float32(np.sort(sc)[::-1][min(sc.size, spec.hyper.cap) - 1])
            for i in want ^ got:
                assert abs(sc[nodes == i][0] - kth) <= 4 * np.spacing(kth), (b, t, i)
            break
    print(f"untrained default seed {seed}: {a}, samples with a float32-tie flip: {flips}")
    assert a["agreement"] == 1.0
    if flips == 0:
        assert a["max_rel"] <= REL_TOL


def test_paper_config_untrained_agrees_and_stat_selection_runs_on_the_chip():
    for kw in (PAPER, {**PAPER, "selection": "stat"}):
        spec, x = _spec(1, **kw), _x(12, 4)
        logits, rep = _be().prepare(spec)(x)
        a = _agreement(logits, _torch(spec, x))
        print(kw.get("selection", "radix"), a)
        assert a["max_rel"] <= REL_TOL and a["agreement"] == 1.0
        rounds = rep.details["select_rounds"]
        stat = kw.get("selection") == "stat"
        # stat: one round at ignition and one per step
        assert all(r == spec.hyper.n_steps + 1 for r in rounds) == stat


def test_programs_are_reentrant_and_calls_independent():
    """Interleaved programs give what each gives alone; a call sets nothing on the program."""
    sa, sb = _spec(0), _spec(1, inhibition_strength=0.2)
    x1, x2 = _x(3, 5), _x(4, 6)
    be = _be(payload_bits=8, sigma_delta=True, sd_threshold=1.0)
    pa, pb = be.prepare(sa), be.prepare(sb)
    before = dict(vars(pa))
    inter = [pa(x1), pb(x2), pa(x2), pb(x1)]
    assert vars(pa).keys() == before.keys() and all(vars(pa)[k] is v for k, v in before.items())
    alone = [be.prepare(sa)(x1), be.prepare(sb)(x2), be.prepare(sa)(x2), be.prepare(sb)(x1)]
    for (l1, r1), (l2, r2) in zip(inter, alone, strict=True):
        assert torch.equal(l1, l2)
        assert r1.ledger.totals() == r2.ledger.totals()
        assert r1.details["trace_hashes"] == r2.details["trace_hashes"]
    # a sample's result does not depend on the batch it ran in
    whole, _ = pa(torch.cat([x1, x2]))
    assert torch.equal(whole, torch.cat([pa(x1)[0], pa(x2)[0]]))


# ------------------------------------------------------------------------------ costs
def test_idle_policy_changes_cost_not_outputs():
    spec, x = _spec(), _x(6)
    out = {p: _be(idle_policy=p).prepare(spec)(x) for p in ("touched_only", "all")}
    assert torch.equal(out["all"][0], out["touched_only"][0])
    c_all = out["all"][1].details["event_counts"]
    c_touch = out["touched_only"][1].details["event_counts"]
    assert c_all["neuron_updates_idle"] > c_touch["neuron_updates_idle"]
    assert c_all["graded_synops"] == c_touch["graded_synops"]


def test_energy_is_counted_events_times_constants_plus_static_times_latency():
    spec = _spec()
    prog = _be(nodes_per_core=4).prepare(spec)
    _, rep = prog(_x(8))
    e = prog.profile.energy
    table = {
        "nm_synop": e.synop,
        "nm_graded_synop": e.graded_synop,
        "nm_neuron_update_active": e.neuron_update_active,
        "nm_neuron_update_idle": e.neuron_update_idle,
        "nm_neuron_op": e.neuron_op,
        "nm_spike_out": e.spike_out,
        "nm_message_out": e.message_out,
        "nm_message_in": e.message_in,
        "nm_tile_spike": e.tile_spike,
        "nm_hop_ew": e.hop_ew,
        "nm_hop_ns": e.hop_ns,
        "nm_chip_hop": e.chip_hop,
        "nm_host_io": e.host_io,
        "nm_barrier": e.barrier,
        "nm_static": e.static_power_mw * 1e-3,
    }
    counts = rep.ledger.totals()
    assert set(counts) <= set(table)
    want = math.fsum(n * table[ev] for ev, n in counts.items()) * 1e-12
    total = rep.ledger.energy_j()
    assert total == pytest.approx(want, rel=1e-12)
    # the ledger's counts are the simulator's: every packet pays send, router and receive
    c = rep.details["event_counts"]
    pk = c["packets"] + sum(p["packets"] for p in c["phases"].values())
    host_in = sum(p["host_in"] for p in c["phases"].values())
    assert counts["nm_message_out"] == pk - host_in
    assert counts["nm_tile_spike"] == pk + c["barrier_traffic"]["packets"]
    lat_ps = round(sum(rep.latency_per_inference) * 1e12)
    n_chips = prog.layout.topology.n_chips
    assert counts["nm_static"] == pytest.approx(n_chips * lat_ps, rel=1e-9)
    assert isinstance(rep.energy, Modelled) and rep.energy.value == pytest.approx(total)
    ops_seen = set(rep.ledger.counts)
    assert ops_seen >= {"input", "encode", "ignite", "propagate", "select", "update", "readout",
                        "sync", "static"}  # fmt: skip
    assert ops_seen <= set(OP_ORDER)  # the vocabulary every target shares
    bd = rep.details["energy_breakdown_j"]
    assert set(bd) == set(cost.PARTS)
    assert math.fsum(bd.values()) == pytest.approx(total, rel=1e-12)
    for part in (
        "synaptic",
        "neuron_program",
        "projection",
        "selection",
        "noc",
        "static",
        "host_io",
        "front_end",
        "ignition",
        "initial_state",
        "readout",
        "barrier",
    ):
        assert bd[part] > 0, part  # fmt: skip
    consts = rep.ledger.to_dict()["constants"]
    assert consts["nm_synop"]["value"] == e.synop and "loihi2_est" in consts["nm_synop"]["source"]
    assert all(v["source"] and v["unit"] for v in consts.values())
    json.dumps(rep.to_dict())


def test_report_names_simulation_events_noc_messages_and_each_part():
    spec = _spec()
    _, rep = _be(nodes_per_core=4).prepare(spec)(_x(3))
    d = rep.details
    assert d["sim_events"] > 0 and d["noc_messages"] > 0 and d["flows"] > 0
    assert d["noc_messages"] <= sum(d["packets_by_class"].values())
    assert d["packets_by_class"]["select"] > 0 and d["packets_by_class"]["spikes"] > 0
    assert len(d["step_latency_s"]) == spec.hyper.n_steps + 2


def test_latency_is_modelled_per_inference_and_wall_time_measured():
    spec = _spec()
    _, rep = _be().prepare(spec)(_x(5))
    assert isinstance(rep.latency, Modelled) and rep.latency.unit == "s"
    assert isinstance(rep.wall_time, Measured) and rep.wall_time.value > 0
    lat = rep.latency_per_inference
    assert len(lat) == 5 and rep.latency.value == pytest.approx(float(np.mean(lat)))
    steps = rep.details["step_latency_s"]
    assert float(np.mean(lat)) == pytest.approx(sum(steps), rel=1e-9)
    assert len(rep.active_fraction_per_step) == spec.hyper.n_steps + 1


def test_co_located_nodes_cost_no_hops_and_placement_is_local(monkeypatch):
    spec, x = _spec(), _x(6)
    _, one_core = _be(nodes_per_core=64).prepare(spec)(x)
    assert one_core.details["mapping"]["cores_used"] == 1
    c = one_core.details["event_counts"]
    assert c["hops"] == 0 and c["inter_tile_packets"] == 0 and c["intra_tile_spikes"] > 0
    assert one_core.details["packets_by_class"]["select"] == 0  # the root is the only core
    assert one_core.details["noc_messages"] == 8 * 6 * 6 + 6 * 3  # host I/O only
    spread = _be(nodes_per_core=4)
    logits_local, local = spread.prepare(spec)(x)
    assert local.details["mapping"]["cores_used"] == 16
    orig = mapping.node_cores

    def shuffled(coords, topo, per, split):
        cores = orig(coords, topo, per, split)
        return cores[np.random.default_rng(0).permutation(len(cores))]

    monkeypatch.setattr(mapping, "node_cores", shuffled)
    logits_rand, rand = spread.prepare(spec)(x)
    assert torch.equal(logits_local, logits_rand)  # placement changes costs only
    assert local.details["event_counts"]["hops"] < 0.8 * rand.details["event_counts"]["hops"]


def test_dynamic_energy_roughly_halves_with_the_active_fraction():
    """Spike traffic, synaptic ops, projections and the node program scale with the active
    set; the front end and the ignition distances do not (they are per input): the
    propagation's dynamic energy roughly halves."""
    x = torch.randn(8, 6, 8, generator=torch.Generator().manual_seed(2))
    dyn = []
    for ta in (0.1, 0.05):
        torch.manual_seed(0)
        cfg = small_cfg(n_nodes=256, d_hidden=8, target_active=ta, d_space=3, init_state="mean")
        spec = RSGN(8, 3, cfg).export()
        _, rep = _be().prepare(spec)(x)
        bd = rep.details["energy_breakdown_j"]
        dyn.append(bd["synaptic"] + bd["projection"] + bd["neuron_program"])
    print("propagation dynamic energy ratio at half the active fraction:", dyn[1] / dyn[0])
    assert 0.4 <= dyn[1] / dyn[0] <= 0.65


def test_energy_split_is_dynamic_static_host_and_per_inference():
    _, rep = _be().prepare(_spec())(_x(5))
    split, bd = rep.details["energy_split_j"], rep.details["energy_breakdown_j"]
    assert math.fsum(split.values()) == pytest.approx(rep.ledger.energy_j(), rel=1e-12)
    assert split["host_io"] == bd["host_io"] and split["static"] == bd["static"]
    per = rep.details["dynamic_energy_per_inference_j"]
    assert len(per) == 5 and math.fsum(per) == pytest.approx(split["dynamic"], rel=1e-9)


# ------------------------------------------------------------------------------ coding modes
def test_graded_8bit_and_fixed_modes_run_and_report_their_drop():
    spec, x = _trained_like(0, d_space=3, init_state="mean"), _x(16)
    ref = _torch(spec, x)
    q, _ = _be(payload_bits=8).prepare(spec)(x)
    a = _agreement(q, ref)
    print("8-bit payloads (bound LSBs):", a)
    assert 0 < a["max_rel"] < 0.5 and a["agreement"] >= 0.8
    y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(3))
    acc_t = evaluate(spec, x, y, "torch").accuracy
    res = evaluate(spec, x, y, _be(payload_bits=8))
    assert res.report.details["payload_bits"] == 8 and res.report.details["payload_scale"] > 0
    assert abs(acc_t - res.accuracy) <= 1 - a["agreement"] + 1e-9
    fx, rep = _be(mode="fixed").prepare(spec)(x)
    a = _agreement(fx, ref)
    print(f"fixed (bit-accurate, {rep.details['payload_bits']}-bit payloads):", a)
    assert a["max_rel"] < 0.05 and rep.details["mode"] == "fixed"


def test_per_channel_payload_scales_and_calibration_by_the_chip_program():
    spec, x = _spec(), _x(16)
    ref = _torch(spec, x)
    prog = _be(payload_bits=8).prepare(spec)
    bound = prog.payload_scales
    assert bound.shape == (17,) and bound[-1] == pytest.approx(1 / 127) and (bound > 0).all()
    q_bound, r_bound = prog(x)
    cal = prog.calibrate(torch.randn(32, 6, 8, generator=torch.Generator().manual_seed(5)))
    assert np.array_equal(prog.payload_scales, bound)  # calibrate returns a new program
    scales = cal.payload_scales
    assert (scales[:-1] < bound[:-1]).all() and scales[-1] == bound[-1]
    assert r_bound.details["payload_scales"] == pytest.approx(bound.tolist())
    q_cal, r_cal = cal(x)
    assert r_cal.details["payload_scales"] == pytest.approx(scales.tolist())
    e_b, e_c = _agreement(q_bound, ref)["max_rel"], _agreement(q_cal, ref)["max_rel"]
    print(f"8-bit max rel logit error: bound LSBs {e_b:.3g}, calibrated {e_c:.3g}")
    assert e_c < e_b
    with pytest.raises(RsgnError, match="payload width"):
        _be().prepare(spec).calibrate(x)


def test_sigma_delta_reports_events_saved():
    spec, x = _spec(), _x(8)
    logits, rep = _be(payload_bits=8, sigma_delta=True, sd_threshold=2.0).prepare(spec)(x)
    sd = rep.details["sigma_delta_events"]
    assert sd["plain"] > 0
    assert 0 < sd["saved"] < sd["plain"]
    assert rep.details["event_counts"]["events"] == sd["plain"] - sd["saved"]
    print("sigma-delta 8-bit thr 2 LSB:", _agreement(logits, _torch(spec, x)))


# ------------------------------------------------------------------------------ mapping
def test_capacity_errors_name_the_model_and_preset():
    spec = _spec()
    one = {"node_split": 1}  # whole nodes only: the limits below need a split
    with pytest.raises(RsgnError, match=r"64 nodes x 17 compartments.*loihi2_est.*max_neurons"):
        _be(overrides="core.max_neurons=8", **one).prepare(spec)
    with pytest.raises(RsgnError, match=r"64 nodes.*does not fit preset loihi2_est.*fan-in"):
        _be(overrides="core.max_axons_in=4").prepare(spec)  # even split 17
    g = get_backend("torch").prepare(spec).graph
    deg = torch.bincount(g.in_idx[g.in_mask], minlength=g.n_nodes)
    hub, c = int(deg.argmax()), spec.hyper.d_hidden + 1
    d = spec.hyper.d_hidden
    with pytest.raises(RsgnError) as exc:
        _be(overrides=f"core.max_axons_out={int(deg.max()) * d - 1}", **one).prepare(spec)
    assert f"node {hub} has {int(deg.max())} out-neighbours" in str(exc.value)
    assert "node_split > 1" in str(exc.value)
    with pytest.raises(RsgnError, match=r"in-neighbours x"):
        _be(overrides=f"core.max_axons_in={2 * d}", **one).prepare(spec)
    with pytest.raises(RsgnError, match=rf"node_split 18 > {c} compartments"):
        _be(node_split=18).check(spec)
    with pytest.raises(RsgnError, match=r"node_split must be >= 1"):
        _be(node_split=0)
    with pytest.raises(RsgnError, match=r"does not fit preset loihi2_est"):
        _be(overrides="chip.tiles_x=1,chip.tiles_y=1", chips=1, nodes_per_core=2).prepare(spec)


def test_deterministic_by_seed():
    spec, x = _spec(), _x(6)
    a_logits, a = _be(seed=3, nodes_per_core=8).prepare(spec)(x)
    b_logits, b = _be(seed=3, nodes_per_core=8).prepare(spec)(x)
    assert torch.equal(a_logits, b_logits)
    assert a.details["trace_hashes"] == b.details["trace_hashes"]
    assert a.latency_per_inference == b.latency_per_inference
    assert len(set(a.details["trace_hashes"])) > 1  # different inputs, different traces


def test_evaluate_reports_latency_distribution_and_neurobench():
    spec = _spec()
    x, y = _x(10), torch.randint(0, 3, (10,))
    res = evaluate(spec, x, y, "neuromorphic", batch_size=5, preset="loihi2_est")
    d = res.to_dict()
    assert d["target"] == "neuromorphic" and d["preset"] == "loihi2_est"
    assert d["latency"]["kind"] == "modelled" and d["latency"]["value"] > 0
    assert len(res.report.latency_per_inference) == 10
    _, rep = _be().prepare(spec)(x)
    stats = rep.details["latency_stats_s"]
    assert stats["min"] <= stats["p50"] <= stats["max"]
    nb = rep.details["neurobench"]
    assert 0 < nb["activation_sparsity"] < 1 and 0 < nb["connection_sparsity"] < 1
    assert nb["eff_macs"] > 0 and nb["dense_synops"] > nb["eff_macs"] and nb["eff_acs"] == 0
    json.dumps(d)


@pytest.mark.parametrize(
    "limit", ["core.max_axons_out=hub", "core.max_neurons=8", "core.max_axons_in=64"]
)
def test_split_nodes_fit_where_whole_nodes_do_not_and_agree_with_torch(limit):
    """A node whose compartments overflow a core (fan-out, neurons, fan-in) is split over the
    fewest cores (a power of two) that fit; the logits stay those of the reference."""
    spec = _trained_like(0, d_space=3, init_state="mean")
    c, d = spec.hyper.d_hidden + 1, spec.hyper.d_hidden
    if limit.endswith("hub"):
        g = get_backend("torch").prepare(spec).graph
        deg = torch.bincount(g.in_idx[g.in_mask], minlength=g.n_nodes)
        limit = f"core.max_axons_out={int(deg.max()) * d - 1}"
    with pytest.raises(RsgnError, match="does not fit"):
        _be(overrides=limit, node_split=1).prepare(spec)
    x = _x(6)
    prog = _be(overrides=limit).prepare(spec)
    logits, rep = prog(x)
    split = rep.details["mapping"]["node_split"]
    assert split >= 2 and (split & (split - 1) == 0 or split == c)
    assert _agreement(logits, _torch(spec, x))["max_rel"] <= REL_TOL
    place = prog.layout.placement.reshape(spec.hyper.n_nodes, c)
    assert all(np.unique(row).size == split for row in place)
    assert rep.details["packets_by_class"]["exchange"] > 0


def test_split_exchange_is_counted_per_candidate_and_winner():
    """Three rounds per step: 3 values from each state slice of every candidate, 3 back to
    every winner's state slices, and the all-gather of h among an emitting node's state
    slices; the split changes costs and time, not the logits."""
    spec, x = _spec(), _x(4)
    split = 2
    prog = _be(node_split=split).prepare(spec)
    logits, rep = prog(x)
    whole_logits, whole = _be(node_split=1).prepare(spec)(x)
    assert torch.equal(logits, whole_logits)
    assert whole.details["packets_by_class"].get("exchange", 0) == 0
    sizes = prog.layout.state_sizes
    assert sizes.sum() == spec.hyper.d_hidden and sizes.size == split
    infs = prog.run_chip(x)
    n_cand = sum(s.candidates.size for inf in infs for s in inf.log.steps.values())
    n_win = sum(s.winners.size for inf in infs for s in inf.log.steps.values())
    n_emit = sum(e.size for inf in infs for e in inf.log.emitted)
    gather = sum(int(sizes[a]) * (split - 1) for a in range(split) if sizes[a] > 0)
    state_slices = int((sizes[: split - 1] > 0).sum())
    want = 3 * state_slices * n_cand + 3 * state_slices * n_win + gather * n_emit
    xc = rep.details["event_counts"]["phases"]["exchange"]
    assert xc["packets"] == want
    assert rep.details["energy_breakdown_j"]["noc"] > whole.details["energy_breakdown_j"]["noc"]
    # twice the cores share the work: the split can be faster despite its exchange
    print(
        "latency whole / split:", sum(whole.latency_per_inference) / sum(rep.latency_per_inference)
    )
