"""The in-place mutation runner (tools/mutation.py) on a toy module: the mutants it makes, the
outcomes it reports, equivalence marks, and that the original file is back after a run, an
interrupted run and a hard-killed one."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "rsgn_mutation_tool", Path(__file__).resolve().parents[1] / "tools" / "mutation.py"
)
mt = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = mt  # dataclasses look their module up there
_SPEC.loader.exec_module(mt)

TOY = '''"""A toy module."""
LIMIT = 2.0


def clip(x, hi):
    """Docstrings and annotations are never mutated."""
    return min(x, hi)


def below(x: "int", lo):
    return x < lo and not x == -1  # pragma: no mutate
'''

TOY_TEST = """from toy import below, clip


def test_toy():
    assert clip(5, 3) == 3 and clip(1, 3) == 1
    assert below(1, 2) and not below(3, 2)
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy.py").write_text(TOY)
    (tmp_path / "test_toy.py").write_text(TOY_TEST)
    study = tmp_path / "study"
    study.mkdir()
    monkeypatch.setattr(mt, "ROOT", tmp_path)
    monkeypatch.setattr(mt, "EQUIVALENT", study / "equivalent.toml")
    monkeypatch.setattr(mt, "RESULTS", study / "results")
    monkeypatch.setattr(mt, "BACKUPS", study / ".backup")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_collect_makes_each_kind_of_mutant_once(toy):
    keys = {m.key: m.kind for m in mt.collect(toy / "toy.py")}
    assert keys == {
        "<module>: 2.0 -> 4.0 #0": "constant",
        "clip: min(x, hi) -> max(x, hi) #0": "call",
        # the line marked "pragma: no mutate" is skipped
    }
    src = (toy / "toy.py").read_text().replace("  # pragma: no mutate", "")
    (toy / "toy.py").write_text(src)
    kinds = sorted(m.kind for m in mt.collect(toy / "toy.py"))
    assert kinds == ["boolean", "call", "comparison", "comparison", "comparison", "constant",
                     "constant", "unary", "unary"]  # fmt: skip


RUN_TOY = """def below(x, lo):
    return x < lo


def unused(x):
    return x + 1
"""


def test_real_run_kills_and_keeps_mutants_and_restores_the_file(toy):
    """Forked pytest runs for real: `<` -> `>=` fails the toy test, `<` -> `<=` passes it (the
    test never probes x == lo), and unused() is never executed (no run needed)."""
    (toy / "toy.py").write_text(RUN_TOY)
    (toy / "test_toy.py").write_text(
        "from toy import below\n\n\ndef test_toy():\n    assert below(1, 2) and not below(3, 2)\n"
    )
    s = mt.mutate_module("toy.py", {"tests": ["test_toy.py"]}, label="t", timeout=60)
    out = {m["key"]: m["outcome"] for m in s["mutant_list"]}
    assert out == {
        "below: x < lo -> x <= lo #0": "survived",
        "below: x < lo -> x >= lo #0": "killed",
        "unused: x + 1 -> x - 1 #0": "no coverage",
        "unused: 1 -> 2 #0": "no coverage",
    }
    assert (s["mutants"], s["killed"], s["survived"], s["no_coverage"]) == (4, 1, 3, 2)
    assert (toy / "toy.py").read_text() == RUN_TOY
    assert not any(mt.BACKUPS.iterdir())
    saved = json.loads((mt.RESULTS / "t" / "toy.json").read_text())
    assert "| toy.py | 4 | 1 | 3 (2 unrun) | 0 | 0 | 25.0% |" in mt.table([saved])
    listed = mt.survivors(saved)
    assert "`x < lo` -> `x <= lo` in below" in listed and "`x >= lo`" not in listed
    assert "`x + 1` -> `x - 1` in unused (never executed by the tests)" in listed


def test_equivalence_marks_timeouts_and_carried_kills(toy, monkeypatch):
    """Outcomes from a stand-in for the forked run: a marked survivor counts as equivalent, a
    marked mutant that is killed is flagged, a timeout counts as detected, and --since
    carries an earlier run's kills without running them."""
    (toy / "toy.py").write_text(RUN_TOY)
    mt.EQUIVALENT.write_text(
        '[[equivalent]]\nmodule = "toy.py"\nkey = "below: x < lo -> x <= lo #0"\n'
        'reason = "never probed at x == lo"\n'
        '[[equivalent]]\nmodule = "toy.py"\nkey = "below: x < lo -> x >= lo #0"\nreason = "wrong"\n'
        '[[equivalent]]\nmodule = "toy.py"\nkey = "gone: 1 -> 2 #0"\nreason = "stale"\n'
    )
    ran = []

    def fake(args, timeout, log, target, trace_file=None):
        src = target.read_text()
        if trace_file is not None:
            trace_file.write_text("[1, 2, 5, 6]")
            return "pass", 0.1
        ran.append(src)
        if "x <= lo" in src:
            return "pass", 0.1
        return ("timeout" if "x - 1" in src else "fail"), 0.1

    monkeypatch.setattr(mt, "run_pytest", fake)
    cfg = {"tests": ["test_toy.py"]}
    s = mt.mutate_module("toy.py", cfg, label="before", timeout=5)
    out = {m["key"]: (m["outcome"], m["reason"]) for m in s["mutant_list"]}
    assert out["below: x < lo -> x <= lo #0"] == ("equivalent", "never probed at x == lo")
    assert out["below: x < lo -> x >= lo #0"][0] == "killed"
    assert out["below: x < lo -> x >= lo #0"][1].startswith("marked equivalent")
    assert out["unused: x + 1 -> x - 1 #0"][0] == "timed out"
    assert (s["killed"], s["timed_out"], s["equivalent"]) == (2, 1, 1)
    assert s["score"] == 1.0 and s["stale_equivalent_marks"] == ["gone: 1 -> 2 #0"]
    assert "stale mark" in mt.survivors(s) and "remove the mark" in mt.survivors(s)
    ran.clear()
    again = mt.mutate_module("toy.py", cfg, label="after", timeout=5, since="before")
    assert len(ran) == 1 and "x <= lo" in ran[0]  # only the mutant not killed before runs
    assert again["carried"] == 3 and again["carried_from"] == "before"
    (toy / "toy.py").write_text(RUN_TOY + "\n")
    with pytest.raises(SystemExit, match="changed since run 'before'"):
        mt.mutate_module("toy.py", cfg, label="after", since="before")


def test_interrupted_run_restores_and_a_leftover_backup_is_put_back(toy, monkeypatch):
    src = (toy / "toy.py").read_text()
    calls = []

    def interrupt(args, timeout, log, target, trace_file=None):
        calls.append(target.read_text())
        if trace_file is not None:
            trace_file.write_text(json.dumps(list(range(1, 20))))
            return "pass", 0.1
        if len(calls) == 3:
            raise KeyboardInterrupt
        return "fail", 0.1

    monkeypatch.setattr(mt, "run_pytest", interrupt)
    with pytest.raises(KeyboardInterrupt):
        mt.mutate_module("toy.py", {"tests": ["test_toy.py"]}, label="t")
    assert calls[2] != src  # the mutant was in place when the run was interrupted
    assert (toy / "toy.py").read_text() == src
    # a hard kill leaves the mutant and the backup: the next start puts the original back
    mt.BACKUPS.mkdir(exist_ok=True)
    (mt.BACKUPS / "toy.py").write_text(src)
    (toy / "toy.py").write_text(src.replace("min(x, hi)", "max(x, hi)"))
    r = mt._Restorer(toy / "toy.py")
    assert (toy / "toy.py").read_text() == src and r.original == src.encode()
    r.close()
    assert not (mt.BACKUPS / "toy.py").exists()


def test_report_applies_todays_equivalence_marks_to_older_runs(toy):
    old = mt.summarise("toy.py", [], 0.0, 0.0, ["test_toy.py"], [])
    old["mutant_list"] = [
        {"key": "f: a -> b #0", "outcome": "survived", "reason": ""},
        {"key": "f: c -> d #0", "outcome": "killed", "reason": ""},
        {"key": "f: e -> f #0", "outcome": "no coverage", "reason": ""},
    ]
    r = mt.remark(old, {"f: a -> b #0": "why"})
    assert (r["killed"], r["survived"], r["no_coverage"], r["equivalent"]) == (1, 1, 1, 1)
    assert r["score"] == 0.5 and r["mutant_list"][0]["reason"] == "why"
    assert old["mutant_list"][0]["outcome"] == "survived"  # the saved run is not changed
