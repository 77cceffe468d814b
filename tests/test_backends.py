"""The target interface, the lazy registry, typed options and reports, the cost ledger, and
the import rules of DESIGN §1 and §3."""

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rsgn.backends import get_backend, load_energy_table, make_options, names
from rsgn.backends.base import (
    Backend,
    Measured,
    Modelled,
    NotAvailable,
    Report,
    merge_reports,
    metric_dict,
)
from rsgn.backends.cost import CostLedger
from rsgn.errors import RsgnError
from rsgn.evaluation import evaluate
from rsgn.model import RSGN
from tests.conftest import small_cfg

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("rsgn", "backends", "kernels", "optics", "neuromorphic")


def test_import_rsgn_imports_neither_triton_nor_simpy():
    code = (
        "import sys, rsgn, rsgn.backends, rsgn.model, rsgn.cli, rsgn.ops; "
        "print([m for m in ('triton', 'simpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _imports(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
    return mods


def _folder_imports(folder: str) -> set[str]:
    return {m for f in (ROOT / folder).rglob("*.py") for m in _imports(f)}


@pytest.mark.parametrize("folder", ["kernels", "optics", "neuromorphic"])
def test_engines_know_nothing_of_the_model_or_backends(folder):
    bad = {
        m
        for m in _folder_imports(folder)
        if m.startswith(("rsgn.model", "rsgn.backends", "rsgn.training", "rsgn.cli", "rsgn.ops"))
    }
    assert not bad, bad


def test_no_module_imports_a_bare_top_level_folder_name():
    """The library folders install under rsgn (rsgn.kernels, ...); the bare names resolve only
    by accident (the repository root on sys.path) and are taken on PyPI."""
    bare = {"kernels", "optics", "backends", "neuromorphic"}
    bad = []
    for folder in (*PACKAGE_DIRS, "tests", "studies"):
        for f in (ROOT / folder).rglob("*.py"):
            hits = {m for m in _imports(f) if m.split(".")[0] in bare}
            if hits:
                bad.append((str(f.relative_to(ROOT)), sorted(hits)))
    assert not bad, bad


def test_model_imports_only_geometry_the_ops_and_the_spec():
    model_mods = {m for m in _imports(ROOT / "rsgn" / "model.py") if m.startswith("rsgn")}
    assert model_mods <= {
        "rsgn",
        "rsgn.config",
        "rsgn.forward",
        "rsgn.geometry",
        "rsgn.ops",
        "rsgn.spec",
        "rsgn.state",
        "rsgn.topology",
        "rsgn.trainstep",
    }, model_mods


def test_no_target_derives_from_another_and_none_reads_the_model():
    """Composition, not inheritance (DESIGN §3): every Backend subclass derives from Backend
    itself; no target module imports rsgn.model (targets read the ModelSpec)."""
    from rsgn.backends.registry import backend_class

    for name in names():
        try:
            cls = backend_class(name)
        except RsgnError:
            continue
        assert cls.__bases__ == (Backend,), (name, cls.__bases__)
    for f in (ROOT / "backends").rglob("*.py"):
        assert "rsgn.model" not in _imports(f), f
        assert "(TorchBackend)" not in f.read_text(), f


def test_registry_and_unknown_backend_message(monkeypatch):
    assert "torch" in names()
    with pytest.raises(RsgnError, match="unknown backend 'nope'.*known: .*torch"):
        get_backend("nope")
    with pytest.raises(RsgnError, match="did you mean 'torch'"):
        get_backend("trch")
    monkeypatch.setenv("RSGN_BACKEND", "torch")
    assert get_backend().name == "torch"
    monkeypatch.setenv("RSGN_BACKEND", "nope")
    with pytest.raises(RsgnError):
        get_backend()


def test_typed_options_validate_keys_values_and_presets():
    opts = make_options("torch", items=["device=cpu"])
    assert opts.device == "cpu" and opts.preset == "electronic_45nm"
    with pytest.raises(RsgnError, match="has no option 'devise' \\(did you mean 'device'\\?\\)"):
        make_options("torch", items=["devise=cpu"])
    with pytest.raises(RsgnError, match="KEY=VALUE"):
        make_options("torch", items=["device"])
    with pytest.raises(RsgnError, match="unknown preset 'fantasy'.*electronic_45nm"):
        get_backend("torch", preset="fantasy")
    with pytest.raises(RsgnError, match="has no option 'colour'"):
        get_backend("torch", colour="red")
    assert get_backend("torch", preset="electronic_45nm").options.preset == "electronic_45nm"


def test_options_load_from_toml(tmp_path):
    from rsgn.backends.torch import TorchOptions

    p = tmp_path / "o.toml"
    p.write_text('[options]\ndevice = "cpu"\n')
    assert TorchOptions.from_toml(p).device == "cpu"
    p.write_text("[options]\ndevice = 3\n")
    with pytest.raises(RsgnError, match="device"):
        TorchOptions.from_toml(p)


def test_energy_equals_counted_events_times_per_event_energy():
    table = load_energy_table()
    led = CostLedger(table)
    led.op("a").add("mac_fp32", 10)
    led.op("b").add("sram_word_32b", 3)
    led.op("a").add("sram_word_32b", 2)
    want = 10 * table.events["mac_fp32"].joules() + 5 * table.events["sram_word_32b"].joules()
    assert led.energy_j() == pytest.approx(want, rel=1e-12)
    assert sum(led.energy_by_op().values()) == pytest.approx(want, rel=1e-12)
    with pytest.raises(KeyError):
        led.add("unknown_event", 1)


def test_typed_metrics_and_na_needs_a_reason():
    assert metric_dict(Measured(1.0, "s", "wall clock"))["kind"] == "measured"
    assert metric_dict(Modelled(2.0, "J", "m", ("src",)))["kind"] == "modelled"
    assert metric_dict(NotAvailable("no counter")) == {"kind": "n/a", "reason": "no counter"}
    with pytest.raises(ValueError):
        NotAvailable(" ")


def test_torch_report_is_typed_complete_and_consistent():
    torch.manual_seed(0)
    m = RSGN(8, 3, small_cfg())
    x, y = torch.randn(10, 6, 8), torch.randint(0, 3, (10,))
    ev = evaluate(m, x, y, "torch", batch_size=4)
    rep = ev.report
    assert 0 <= ev.accuracy <= 1 and rep.n_samples == 10
    assert 0 < ev.active_fraction <= 0.1 + 1e-9
    assert isinstance(rep.latency, Measured) and isinstance(rep.wall_time, Measured)
    assert isinstance(rep.energy, Modelled) and isinstance(rep.energy_measured, NotAvailable)
    table = load_energy_table()
    e = sum(n * table.events[ev_].joules() for ev_, n in rep.ledger.totals().items())
    assert rep.energy.value == pytest.approx(e, rel=1e-12)
    assert rep.energy_per_inference.value == pytest.approx(e / 10, rel=1e-12)
    assert len(rep.details["per_batch"]) == 3  # batches of 4, 4, 2
    json.dumps(ev.to_dict())  # machine-readable


def test_merged_report_sums_counts_and_weights_fractions():
    torch.manual_seed(0)
    m = RSGN(8, 3, small_cfg())
    prog = get_backend("torch").prepare(m.export())
    x = torch.randn(7, 6, 8)
    reps = [prog(x[:3])[1], prog(x[3:])[1]]
    merged = merge_reports(reps)
    whole = prog(x)[1]
    assert merged.n_samples == 7
    parts = [r.ledger.totals() for r in reps]
    assert merged.ledger.totals() == {k: parts[0].get(k, 0) + parts[1].get(k, 0) for k in parts[0]}
    # per-sample work is the same split or whole; weights are read once per batch
    assert merged.ledger.totals()["mac_fp32"] == whole.ledger.totals()["mac_fp32"]
    assert merged.ledger.totals()["sram_word_32b"] > whole.ledger.totals()["sram_word_32b"]
    assert merged.active_fraction_per_step == pytest.approx(whole.active_fraction_per_step)
    assert merged.wall_time.value == pytest.approx(sum(r.wall_time.value for r in reps))


def test_program_logits_equal_the_model_forward_and_ignore_later_training():
    m = RSGN(8, 3, small_cfg())
    x = torch.randn(5, 6, 8)
    program = get_backend("torch").prepare(m.export())
    logits, rep = program(x)
    with torch.no_grad():
        want = m(x).logits
        assert torch.equal(logits, want)
        m.w_o.weight.add_(1.0)  # the spec is a frozen snapshot
    assert torch.equal(program(x)[0], want)
    assert rep.n_samples == 5 and isinstance(rep, Report)


def test_spec_is_frozen_and_device_agnostic():
    spec = RSGN(8, 3, small_cfg()).export()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.hyper.n_steps = 2  # type: ignore[misc]
    assert not spec.weights.h_w.requires_grad
    assert spec.to("cpu").weights.h_w.device.type == "cpu"


def test_malloc_tuning_applies_on_linux_and_can_be_turned_off(monkeypatch):
    from rsgn.malloc_tuning import tune_malloc

    monkeypatch.setenv("RSGN_NO_MALLOC_TUNING", "1")
    assert tune_malloc() is False
    monkeypatch.delenv("RSGN_NO_MALLOC_TUNING")
    assert tune_malloc() is sys.platform.startswith("linux")


def test_row_norm_matches_vector_norm_values_and_gradients():
    from rsgn.sparse import row_norm

    torch.manual_seed(0)
    h = torch.randn(37, 11, dtype=torch.float64)
    h[5] = 0.0  # the subgradient at the origin is 0, as vector_norm's
    w = torch.randn(37, dtype=torch.float64)
    a, b = h.clone().requires_grad_(), h.clone().requires_grad_()
    na, nb = row_norm(a), torch.linalg.vector_norm(b, dim=-1)
    assert torch.equal(na, nb)
    (na * w).sum().backward()
    (nb * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=0)
    assert torch.all(a.grad[5] == 0)
    assert torch.autograd.gradcheck(
        row_norm, (torch.randn(6, 4, dtype=torch.float64, requires_grad=True),)
    )
