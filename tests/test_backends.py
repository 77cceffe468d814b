"""The backend interface, the lazy registry, the cost ledger and the import direction."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rsgn.backends import get_backend, load_energy_table, names
from rsgn.backends.cost import CostLedger
from rsgn.errors import RsgnError
from rsgn.evaluate import evaluate
from rsgn.model import RSGN
from tests.conftest import small_cfg

ROOT = Path(__file__).resolve().parents[1]


def test_import_rsgn_imports_neither_triton_nor_simpy():
    code = (
        "import sys, rsgn, rsgn.backends, rsgn.model, rsgn.cli; "
        "print([m for m in ('triton', 'simpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _imports(folder: str) -> set[str]:
    mods = set()
    for f in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                mods.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods.add(node.module)
    return mods


@pytest.mark.parametrize("folder", ["kernels", "optics", "neuromorphic"])
def test_engines_know_nothing_of_the_model_or_backends(folder):
    bad = {
        m
        for m in _imports(folder)
        if m.startswith(("rsgn.model", "rsgn.backends", "rsgn.train", "rsgn.cli"))
    }
    assert not bad, bad


def test_model_imports_only_geometry_and_the_interface():
    mods = {m for m in _imports("rsgn") if m.startswith("rsgn.backends")}
    model_mods = set()
    for node in ast.walk(ast.parse((ROOT / "rsgn" / "model.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rsgn."):
            model_mods.add(node.module)
    assert model_mods <= {
        "rsgn.geometry",
        "rsgn.backends.base",
        "rsgn.backends.registry",
        "rsgn.config",
        "rsgn.topology",
        "rsgn",
    }, model_mods
    assert mods  # the package does use the interface somewhere


def test_registry_and_unknown_backend_message(monkeypatch):
    assert "torch" in names()
    with pytest.raises(RsgnError, match="unknown backend 'nope' \\(known: .*torch"):
        get_backend("nope")
    monkeypatch.setenv("RSGN_BACKEND", "torch")
    assert get_backend().name == "torch"
    monkeypatch.setenv("RSGN_BACKEND", "nope")
    with pytest.raises(RsgnError):
        get_backend()


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


def test_every_energy_constant_has_provenance():
    for ev, c in load_energy_table().events.items():
        assert c.source and c.unit and c.kind and c.value >= 0, ev


def test_program_report_is_complete_and_consistent():
    torch.manual_seed(0)
    m = RSGN(8, 3, small_cfg())
    x, y = torch.randn(10, 6, 8), torch.randint(0, 3, (10,))
    res = evaluate(m, x, y, "torch", batch_size=4)
    assert 0 <= res["accuracy"] <= 1 and res["n_samples"] == 10
    assert 0 < res["active_fraction"] <= 0.1 + 1e-9
    cost = res["cost"]
    e = sum(n * load_energy_table().events[ev].joules() for ev, n in cost["counts"].items())
    assert cost["energy_j"] == pytest.approx(e, rel=1e-9)
    assert cost["energy_j_per_inference"] == pytest.approx(e / 10, rel=1e-9)
    assert all("source" in c for c in cost["constants"].values())
    metrics = res["capabilities"]["metrics"]
    assert metrics["energy_measured"].startswith("n/a:")  # never a silent zero
    json.dumps(res)  # machine-readable


def test_program_logits_equal_the_model_forward():
    m = RSGN(8, 3, small_cfg())
    x = torch.randn(5, 6, 8)
    program = get_backend("torch").prepare(m)
    logits, rep = program(x)
    with torch.no_grad():
        assert torch.allclose(logits, m(x).logits, atol=1e-6)
    assert rep.n_samples == 5 and isinstance(rep.latency_s, float)


def test_unknown_preset_is_named():
    with pytest.raises(RsgnError, match="unknown preset 'fantasy'.*electronic_45nm"):
        get_backend("torch", preset="fantasy")
    assert get_backend("torch", preset="electronic_45nm").energy_table_name == "electronic_45nm"


def test_malloc_tuning_applies_on_linux_and_can_be_turned_off(monkeypatch):
    from rsgn.malloc_tuning import tune_malloc

    monkeypatch.setenv("RSGN_NO_MALLOC_TUNING", "1")
    assert tune_malloc() is False
    monkeypatch.delenv("RSGN_NO_MALLOC_TUNING")
    assert tune_malloc() is sys.platform.startswith("linux")


def test_row_norm_matches_vector_norm_values_and_gradients():
    from rsgn.backends.torch_backend import row_norm

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
