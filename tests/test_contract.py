"""The contract every registered target and preset keeps (DESIGN §6, geoopt's manifold suite):

- a target whose capabilities promise agreement with the torch reference (``reference_tol``:
  ideal physics, float datapath) meets it, measured on the same inputs;
- every report carries, for each metric, exactly the kind its Capabilities promise, and
  figures that are not available say why;
- programs are re-entrant: two programs used interleaved give what each gives alone;
- results do not depend on the batch size;
- ``check`` refuses, before any work, what the target cannot run, with a one-line reason.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():  # before triton is imported anywhere in this process
    os.environ.setdefault("TRITON_INTERPRET", "1")

from rsgn.backends import get_backend, names  # noqa: E402
from rsgn.backends.base import Measured, Modelled, NotAvailable  # noqa: E402
from rsgn.backends.registry import backend_class  # noqa: E402
from rsgn.errors import RsgnError  # noqa: E402
from rsgn.model import RSGN  # noqa: E402
from tests.conftest import small_cfg  # noqa: E402


def _cases() -> list:
    out = []
    for name in names():
        try:
            cls = backend_class(name)
        except RsgnError:  # cannot be imported: its cases fail (a failure, not a skip)
            out.append(pytest.param(name, None, id=f"{name}:import"))
            continue
        for preset in cls.presets() or [None]:
            out.append(pytest.param(name, preset, id=f"{name}:{preset}"))
    return out


CASES = _cases()
KIND = {Measured: "measured", Modelled: "modelled", NotAvailable: "n/a"}


def _spec(seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = small_cfg(n_nodes=48, d_hidden=12, d_space=3, **kw)
    return RSGN(5, 4, cfg).export()


def _backend(name: str, preset: str | None):
    cls = backend_class(name)
    ok, why = cls.available()
    if not ok:
        pytest.skip(f"{name} is not available here: {why}")
    return get_backend(name, preset=preset)


def _ready(name: str, preset: str | None, *specs):
    """The target, or a skip when it is unavailable here or refuses (in ``check``, with a
    one-line reason) to run these models."""
    be = _backend(name, preset)
    for spec in specs:
        try:
            be.check(spec)
        except RsgnError as exc:
            msg = str(exc)
            assert msg and "\n" not in msg
            pytest.skip(f"{name}:{preset} refuses this RSGN before any work: {msg}")
    return be


@pytest.mark.parametrize("name,preset", CASES)
def test_agreement_with_torch_is_what_the_capabilities_promise(name, preset):
    spec = _spec()
    be = _ready(name, preset, spec)
    x = torch.randn(6, 7, 5)
    ref, _ = get_backend("torch", compile="eager").prepare(spec)(x)
    logits, _ = be.prepare(spec)(x)
    assert logits.shape == ref.shape and torch.isfinite(logits).all()
    tol = be.capabilities().reference_tol
    if tol is not None:
        rel = float((logits.double() - ref.double()).abs().max() / ref.abs().max())
        assert rel <= max(tol, 1e-12), (name, preset, rel, tol)


@pytest.mark.parametrize("name,preset", CASES)
def test_reports_carry_what_the_capabilities_promise(name, preset):
    spec = _spec()
    be = _ready(name, preset, spec)
    caps = be.capabilities()
    for key in ("latency", "latency_distribution", "energy", "energy_measured"):
        assert key in caps.metrics, (name, key)
    _, rep = be.prepare(spec)(torch.randn(5, 7, 5))
    assert rep.n_samples == 5 and rep.target == name
    assert isinstance(rep.wall_time, Measured) and rep.wall_time.value >= 0
    assert KIND[type(rep.latency)] == caps.kind("latency"), name
    assert KIND[type(rep.energy)] == caps.kind("energy"), name
    assert KIND[type(rep.energy_measured)] == caps.kind("energy_measured"), name
    dist = caps.kind("latency_distribution")
    if dist == "n/a":
        assert rep.latency_per_inference is None
    else:
        assert rep.latency_per_inference is not None and len(rep.latency_per_inference) == 5
    for m in (rep.latency, rep.energy, rep.energy_measured):
        if isinstance(m, NotAvailable):
            assert len(m.reason) > 3
    if isinstance(rep.energy, Modelled):  # energy = counted events x per-event energies
        table = rep.ledger.table.events
        want = sum(n * table[ev].joules() for ev, n in rep.ledger.totals().items())
        assert rep.energy.value == pytest.approx(want, rel=1e-12)
    assert len(rep.active_fraction_per_step) == spec.hyper.n_steps + 1


@pytest.mark.parametrize("name,preset", CASES)
def test_programs_are_reentrant(name, preset):
    a, b = _spec(0), _spec(1, inhibition_strength=0.2)
    be = _ready(name, preset, a, b)
    x1, x2 = torch.randn(3, 7, 5), torch.randn(4, 7, 5)
    pa, pb = be.prepare(a), be.prepare(b)
    inter = [pa(x1), pb(x2), pa(x2), pb(x1)]
    alone = [be.prepare(a)(x1), be.prepare(a)(x2)]
    alone_b = [be.prepare(b)(x2), be.prepare(b)(x1)]
    for (l1, r1), (l2, r2) in zip(
        [inter[0], inter[2], inter[1], inter[3]], alone + alone_b, strict=True
    ):
        assert torch.equal(l1, l2), name
        if r1.ledger is not None:
            assert r1.ledger.totals() == r2.ledger.totals(), name


@pytest.mark.parametrize("name,preset", CASES)
def test_results_do_not_depend_on_the_batch_size(name, preset):
    spec = _spec()
    be = _ready(name, preset, spec)
    x = torch.randn(6, 7, 5)
    prog = be.prepare(spec)
    whole, _ = prog(x)
    parts = torch.cat([prog(x[:2])[0], prog(x[2:5])[0], prog(x[5:])[0]])
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,preset", CASES)
def test_padded_steps_are_inert_on_every_target(name, preset):
    """``program(x, lengths)``: a padded sample gives its unpadded logits (targets whose
    measurement noise is on draw it from the sample's bytes, padding included, so they are
    only checked to run and stay finite)."""
    spec = _spec()
    be = _ready(name, preset, spec)
    g = torch.Generator().manual_seed(3)
    lengths = torch.tensor([7, 4, 1])
    x = torch.randn(3, 7, 5, generator=g)
    pad = torch.arange(7)[None, :] >= lengths[:, None]
    xp = torch.where(pad.unsqueeze(-1), 9.0 * torch.randn(3, 7, 5, generator=g), x)
    prog = be.prepare(spec)
    padded, rep = prog(xp, lengths=lengths)
    assert torch.isfinite(padded).all() and rep.n_samples == 3
    if be.capabilities().reference_tol is None:
        return
    for i, n in enumerate(lengths.tolist()):
        alone, _ = prog(x[i : i + 1, :n])
        torch.testing.assert_close(padded[i : i + 1], alone, rtol=1e-4, atol=1e-5)
