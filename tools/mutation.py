"""In-place mutation testing of one rsgn module against its own test files.

    python tools/mutation.py rsgn/geometry.py            # one module (tests from modules.toml)
    python tools/mutation.py --all                       # every module of modules.toml
    python tools/mutation.py rsgn/geometry.py --list     # the mutants, without running them
    python tools/mutation.py rsgn/geometry.py --survivors  # rerun only last run's survivors
    python tools/mutation.py rsgn/geometry.py --since before  # take run "before"'s kills as
                                                          # killed, run the rest
    python tools/mutation.py --report                    # before/after tables of results/

Why in place, not mutmut / cosmic-ray: ``rsgn.backends``, ``rsgn.optics`` and
``rsgn.neuromorphic`` are installed through setuptools ``package-dir`` from the top-level
folders ``backends/``, ``optics/``, ``neuromorphic/``. mutmut 3 writes mutants into a copied
tree (``mutants/``) and puts that on ``sys.path``; the editable install's finder still maps
``rsgn.optics`` to ``optics/`` of the checkout, so the tests import the unmutated file (mutmut
3.8.1 on ``optics/stokes.py``: "could not find any test case for any mutant", all 316 "not
checked"; ``studies/test_strength/mutmut_check.md``). A mutant written over the real file is
what the import system sees.

What is mutated (``ast``, one change per mutant, the rest of the file byte-identical):

- arithmetic   ``+ - * / // % ** & | ^ << >>`` (and augmented ``+=`` ...) to a neighbour
- unary        ``-x``, ``not x``, ``~x`` lose their operator
- comparison   each of ``< <= > >=`` to its boundary twin and its negation; ``== !=``,
  ``is``/``is not``, ``in``/``not in`` to the other
- boolean      ``and`` <-> ``or``
- constant     ``True`` <-> ``False``; int n -> n + 1; float 0.0 -> 1.0, f -> 2 f
- call name    ``min``/``max``, ``clamp_min``/``clamp_max``, ``sum``/``mean``, ``any``/``all``,
  ``floor``/``ceil``, ``sin``/``cos``, ``exp``/``expm1``, ... (``CALL_SWAPS``)

Not mutated: strings, docstrings, annotations, f-strings, lines marked ``# pragma: no mutate``.

Each mutant is written over the module (the original is kept in a backup file first and put back
after each mutant, on Ctrl-C, on an exception and, after a hard kill, at the next start), then
one pytest run of the module's own test files (``-x -q -p no:cacheprovider``) runs in a forked
child of a process that has already imported torch/numpy/scipy (so each run costs only its
tests), with a timeout. Bytecode caching is off, so a stale ``.pyc`` can never stand in for a
mutant. Outcomes: killed (a test failed or the mutant did not import), survived, timed out,
equivalent (survived and listed, with a reason, in ``equivalent.toml``), no coverage (the
mutated statement never runs under the tests: a survivor found without running pytest).

Score = (killed + timed out) / (mutants - equivalent).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import signal
import sys
import time
import tomllib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "test_strength"
CONFIG = STUDY / "modules.toml"
EQUIVALENT = STUDY / "equivalent.toml"
RESULTS = STUDY / "results"
BACKUPS = STUDY / ".backup"

PRELOAD = ("numpy", "scipy", "scipy.special", "scipy.linalg", "torch", "simpy", "pytest")

BIN_SWAPS: dict[type, list[type]] = {
    ast.Add: [ast.Sub],
    ast.Sub: [ast.Add],
    ast.Mult: [ast.Div],
    ast.Div: [ast.Mult],
    ast.FloorDiv: [ast.Div],
    ast.Mod: [ast.FloorDiv],
    ast.Pow: [ast.Mult],
    ast.BitAnd: [ast.BitOr],
    ast.BitOr: [ast.BitAnd],
    ast.BitXor: [ast.BitOr],
    ast.LShift: [ast.RShift],
    ast.RShift: [ast.LShift],
}
BIN_SYM = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
}
CMP_SWAPS: dict[type, list[type]] = {
    ast.Lt: [ast.LtE, ast.GtE],
    ast.LtE: [ast.Lt, ast.Gt],
    ast.Gt: [ast.GtE, ast.LtE],
    ast.GtE: [ast.Gt, ast.Lt],
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
}
CMP_SYM = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
CMP_RE = {
    ast.Lt: r"<(?!=)",
    ast.LtE: r"<=",
    ast.Gt: r">(?!=)",
    ast.GtE: r">=",
    ast.Eq: r"==",
    ast.NotEq: r"!=",
    ast.Is: r"\bis\b",
    ast.IsNot: r"\bis\s+not\b",
    ast.In: r"\bin\b",
    ast.NotIn: r"\bnot\s+in\b",
}
UNARY_RE = {ast.USub: r"-", ast.UAdd: r"\+", ast.Not: r"\bnot\b\s*", ast.Invert: r"~"}
CALL_SWAPS = {
    "min": "max",
    "max": "min",
    "minimum": "maximum",
    "maximum": "minimum",
    "amin": "amax",
    "amax": "amin",
    "argmin": "argmax",
    "argmax": "argmin",
    "clamp_min": "clamp_max",
    "clamp_max": "clamp_min",
    "sum": "mean",
    "mean": "sum",
    "any": "all",
    "all": "any",
    "floor": "ceil",
    "ceil": "floor",
    "sin": "cos",
    "cos": "sin",
    "sinh": "cosh",
    "cosh": "sinh",
    "tanh": "sinh",
    "atanh": "asinh",
    "asinh": "atanh",
    "arctanh": "arcsinh",
    "arcsinh": "arctanh",
    "exp": "expm1",
    "expm1": "exp",
    "log": "log1p",
    "log1p": "log",
    "sqrt": "square",
    "cumsum": "cumprod",
    "abs": "negative",
    "isfinite": "isinf",
    "zeros": "ones",
    "ones": "zeros",
    "zeros_like": "ones_like",
    "ones_like": "zeros_like",
    "float": "int",
    "int": "float",
    "round": "int",
}


@dataclass
class Mutant:
    """One single-point change of the module's source (byte offsets into the file)."""

    key: str  # stable id: "<qualname>: <original> -> <mutant> #<k>"
    line: int
    kind: str
    qualname: str
    original: str
    mutated: str
    start: int
    end: int
    replacement: str
    stmt_lines: tuple[int, int]
    outcome: str = ""
    seconds: float = 0.0
    reason: str = ""
    carried: bool = False  # outcome taken from an earlier run (--since), not run again


# --------------------------------------------------------------------------- mutant generation


class _Collector(ast.NodeVisitor):
    def __init__(self, src: bytes) -> None:
        self.src = src
        self.lines = src.split(b"\n")
        self.offsets = [0]
        for ln in self.lines[:-1]:
            self.offsets.append(self.offsets[-1] + len(ln) + 1)
        self.out: list[Mutant] = []
        self.scope: list[str] = []
        self.stmt: tuple[int, int] = (0, 0)
        self.skip_lines = {i + 1 for i, ln in enumerate(self.lines) if b"pragma: no mutate" in ln}

    # positions -------------------------------------------------------------
    def pos(self, lineno: int, col: int) -> int:
        return self.offsets[lineno - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.pos(node.lineno, node.col_offset),
            self.pos(node.end_lineno, node.end_col_offset),
        )

    def text(self, a: int, b: int) -> str:
        return self.src[a:b].decode()

    # bookkeeping -------------------------------------------------------------
    def add(self, node: ast.AST, kind: str, a: int, b: int, new: str) -> None:
        if node.lineno in self.skip_lines:
            return
        na, nb = self.span(node)
        original = self.text(na, nb)
        mutated = self.text(na, a) + new + self.text(b, nb)
        self.out.append(
            Mutant(
                key="",
                line=node.lineno,
                kind=kind,
                qualname=".".join(self.scope) or "<module>",
                original=" ".join(original.split()),
                mutated=" ".join(mutated.split()),
                start=a,
                end=b,
                replacement=new,
                stmt_lines=self.stmt,
            )
        )

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt):
            outer = self.stmt
            self.stmt = (node.lineno, node.end_lineno or node.lineno)
            self._visit_fields(node)
            self.stmt = outer
        else:
            self._visit_fields(node)

    def _visit_fields(self, node: ast.AST) -> None:
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns", "type_comment"):
                continue  # annotations are never evaluated (from __future__ import annotations)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def _scoped(self, node: ast.AST) -> None:
        self.scope.append(node.name)
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # docstring
        outer = self.stmt
        self.stmt = (node.lineno, node.end_lineno or node.lineno)
        for d in node.decorator_list:
            self.visit(d)
        if not isinstance(node, ast.ClassDef):
            self.visit(node.args)
        else:
            for b in node.bases + node.keywords:
                self.visit(b)
        self.stmt = outer
        for st in body:
            self.visit(st)
        self.scope.pop()

    visit_FunctionDef = _scoped
    visit_AsyncFunctionDef = _scoped
    visit_ClassDef = _scoped

    def visit_Module(self, node: ast.Module) -> None:
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        for st in body:
            if isinstance(st, ast.ImportFrom | ast.Import):
                continue
            self.visit(st)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # f-strings: positions inside are unreliable and they only format messages

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # attribute docstrings
        self.generic_visit(node)

    # operators -------------------------------------------------------------
    def _gap_replace(self, node, left, right, pattern: str, new: str, kind: str) -> None:
        a = self.span(left)[1]
        b = self.span(right)[0]
        gap = self.text(a, b)
        m = re.search(pattern, gap)
        if m is None:
            return
        s = a + len(gap[: m.start()].encode())
        e = a + len(gap[: m.end()].encode())
        self.add(node, kind, s, e, new)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        for new in BIN_SWAPS.get(type(node.op), []):
            self._gap_replace(
                node, node.left, node.right, re.escape(BIN_SYM[type(node.op)]), BIN_SYM[new],
                "arithmetic",
            )  # fmt: skip
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        outer = self.stmt
        self.stmt = (node.lineno, node.end_lineno or node.lineno)
        for new in BIN_SWAPS.get(type(node.op), []):
            self._gap_replace(
                node, node.target, node.value, re.escape(BIN_SYM[type(node.op)] + "="),
                BIN_SYM[new] + "=", "arithmetic",
            )  # fmt: skip
        self._visit_fields(node)
        self.stmt = outer

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        a = self.span(node)[0]
        b = self.span(node.operand)[0]
        gap = self.text(a, b)
        m = re.search(UNARY_RE[type(node.op)], gap)
        if m is not None:
            s = a + len(gap[: m.start()].encode())
            e = a + len(gap[: m.end()].encode())
            self.add(node, "unary", s, e, "")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        lefts = [node.left, *node.comparators[:-1]]
        for op, left, right in zip(node.ops, lefts, node.comparators, strict=True):
            for new in CMP_SWAPS[type(op)]:
                self._gap_replace(node, left, right, CMP_RE[type(op)], CMP_SYM[new], "comparison")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        word, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        for left, right in zip(node.values[:-1], node.values[1:], strict=True):
            self._gap_replace(node, left, right, rf"\b{word}\b", new, "boolean")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        v = node.value
        if isinstance(v, bool):
            new = repr(not v)
        elif isinstance(v, int):
            new = repr(v + 1)
        elif isinstance(v, float):
            new = "1.0" if v == 0.0 else repr(2.0 * v)
        else:
            return
        a, b = self.span(node)
        self.add(node, "constant", a, b, new)

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        if name in CALL_SWAPS:
            a, b = self.span(f)
            self.add(node, "call", b - len(name.encode()), b, CALL_SWAPS[name])
        self.generic_visit(node)


def collect(path: Path) -> list[Mutant]:
    """Every mutant of the file at ``path``, with stable keys."""
    src = path.read_bytes()
    col = _Collector(src)
    col.visit(ast.parse(src))
    seen: Counter[str] = Counter()
    for m in col.out:
        base = f"{m.qualname}: {m.original} -> {m.mutated}"
        m.key = f"{base} #{seen[base]}"
        seen[base] += 1
    for m in col.out:  # every mutant must still parse
        ast.parse(src[: m.start] + m.replacement.encode() + src[m.end :])
    return col.out


# --------------------------------------------------------------------------- running


class _Restorer:
    """Keep a backup of the module; put the original back after each mutant and on any exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        rel = path.relative_to(ROOT).as_posix().replace("/", "__")
        BACKUPS.mkdir(parents=True, exist_ok=True)
        self.backup = BACKUPS / rel
        if self.backup.exists():  # a previous run died hard: its mutant may still be in place
            if self.backup.read_bytes() != path.read_bytes():
                path.write_bytes(self.backup.read_bytes())
                print(f"restored {path} from a backup left by an interrupted run", file=sys.stderr)
        self.original = path.read_bytes()
        self.backup.write_bytes(self.original)

    def write(self, data: bytes) -> None:
        self.path.write_bytes(data)

    def restore(self) -> None:
        if self.path.read_bytes() != self.original:
            self.path.write_bytes(self.original)

    def close(self) -> None:
        self.restore()
        self.backup.unlink(missing_ok=True)


def _run_child(args: list[str], log: Path, trace_file: Path | None, target: Path) -> int:
    """In the forked child: run pytest (optionally recording executed lines of ``target``)."""
    os.setpgrp()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(fd, "w", buffering=1)  # noqa: SIM115 - lives until _exit
    sys.dont_write_bytecode = True
    import pytest

    if trace_file is None:
        return int(pytest.main(args))
    real = os.path.realpath(target)
    hits: set[int] = set()

    def local(frame, event, arg):
        if event == "line":
            hits.add(frame.f_lineno)
        return local

    mine: dict[str, bool] = {}

    def glob(frame, event, arg):
        name = frame.f_code.co_filename
        hit = mine.get(name)
        if hit is None:
            hit = mine[name] = os.path.realpath(name) == real
        if hit:
            hits.add(frame.f_lineno)
            return local
        return None

    sys.settrace(glob)
    import threading

    threading.settrace(glob)
    try:
        code = int(pytest.main(args))
    finally:
        sys.settrace(None)
    trace_file.write_text(json.dumps(sorted(hits)))
    return code


def run_pytest(
    args: list[str], timeout: float, log: Path, target: Path, trace_file: Path | None = None
) -> tuple[str, float]:
    """Fork, run pytest in the child, wait up to ``timeout``: ('pass'|'fail'|'timeout', secs)."""
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            code = _run_child(args, log, trace_file, target)
        except BaseException:  # noqa: BLE001 - anything in the child is a failed run
            code = 3
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)  # also in the parent, so a kill right after the fork finds the group
    except OSError:
        pass
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                code = os.waitstatus_to_exitcode(status)
                return ("pass" if code == 0 else "fail"), time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                return "timeout", time.monotonic() - t0
            time.sleep(0.02)
    finally:  # timeout, Ctrl-C or SIGTERM: end the child's whole process group
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def warm_up_pytest() -> None:
    """Run pytest once in this process on an empty test outside the repository, so that each
    forked child finds pytest's plugins already loaded (the first ``pytest.main`` of a process
    costs seconds; later ones a fraction of that). Imports nothing of the package under test."""
    import tempfile

    import pytest

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "test_warm_up.py").write_text("def test_nothing():\n    pass\n")
        with open(os.devnull, "w") as null:
            out, err = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = null
            try:
                pytest.main([d, "-q", "-p", "no:cacheprovider"])
            finally:
                sys.stdout, sys.stderr = out, err


def load_config() -> dict:
    return tomllib.loads(CONFIG.read_text())["modules"]


def load_equivalent() -> dict[str, dict[str, str]]:
    """{module: {key: reason}} from equivalent.toml."""
    out: dict[str, dict[str, str]] = {}
    if EQUIVALENT.exists():
        for e in tomllib.loads(EQUIVALENT.read_text()).get("equivalent", []):
            out.setdefault(e["module"], {})[e["key"]] = e["reason"]
    return out


def result_path(module: str, label: str) -> Path:
    return RESULTS / label / (module.replace("/", "__").removesuffix(".py") + ".json")


def carried_over(module: str, cfg: dict, since: str) -> dict[str, str]:
    """{key: outcome} of the mutants that run ``since`` killed or timed out, valid only while
    the module is byte-identical and every test file of that run is still among ``cfg``'s
    (tests are only ever added: a test that killed a mutant then still kills it now)."""
    prev = json.loads(result_path(module, since).read_text())
    if prev["sha256"] != sha(ROOT / module):
        raise SystemExit(f"{module} changed since run {since!r}: rerun it in full")
    missing = set(prev["tests"]) - set(cfg["tests"])
    if missing:
        raise SystemExit(f"--since {since}: its test files {sorted(missing)} are not used now")
    return {
        m["key"]: m["outcome"]
        for m in prev["mutant_list"]
        if m["outcome"] in ("killed", "timed out")
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def mutate_module(
    module: str, cfg: dict, *, only: set[str] | None = None, timeout: float | None = None,
    label: str = "after", since: str | None = None,
) -> dict:  # fmt: skip
    """Run every mutant of ``module``; return the summary dict (also written to results/)."""
    path = ROOT / module
    carried = carried_over(module, cfg, since) if since else {}
    tests = [str(ROOT / t) for t in cfg["tests"]]
    extra = list(cfg.get("pytest_args", []))
    # hypothesis' pytest plugin imports all of hypothesis at session end (seconds, with
    # assertion rewriting and no bytecode cache); rsgn's tests do not use it
    args = [*tests, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *extra]
    mutants = collect(path)
    equivalent = load_equivalent().get(module, {})
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"rsgn-mutation-{os.getpid()}.log"
    trace = log.with_suffix(".lines.json")
    restorer = _Restorer(path)
    src = restorer.original
    started = time.time()
    try:
        status, _ = run_pytest(args, 3600, log, path, trace_file=trace)
        if status != "pass":
            raise SystemExit(f"{module}: the unmutated tests fail; see {log}")
        covered = set(json.loads(trace.read_text()))
        limit = timeout or cfg.get("timeout")
        base_s = 0.0
        if not limit:
            status, base_s = run_pytest(args, 3600, log, path)  # the time without line tracing
            limit = max(20.0, 4.0 * base_s + 10.0)
        todo = [m for m in mutants if only is None or m.key in only]
        print(
            f"{module}: {len(mutants)} mutants ({len(todo)} to run), tests {cfg['tests']} "
            f"take {base_s:.1f} s unmutated (timeout {limit:.0f} s)",
            file=sys.stderr,
        )
        for i, m in enumerate(todo):
            lo, hi = m.stmt_lines
            if m.key in carried:
                m.outcome, m.carried = carried[m.key], True
            elif not any(ln in covered for ln in range(lo, hi + 1)):
                m.outcome = "no coverage"
            else:
                restorer.write(src[: m.start] + m.replacement.encode() + src[m.end :])
                try:
                    status, m.seconds = run_pytest(args, limit, log, path)
                finally:
                    restorer.restore()
                m.outcome = {"fail": "killed", "pass": "survived", "timeout": "timed out"}[status]
            if m.key in equivalent:
                if m.outcome in ("survived", "no coverage"):
                    m.outcome, m.reason = "equivalent", equivalent[m.key]
                else:
                    m.reason = "marked equivalent in equivalent.toml but killed: remove the mark"
            print(f"  [{i + 1}/{len(todo)}] {m.outcome:11s} :{m.line} {m.key}", file=sys.stderr)
    finally:
        restorer.close()
        log.unlink(missing_ok=True)
        trace.unlink(missing_ok=True)
    todo_keys = {m.key for m in mutants if only is None or m.key in only}
    done = [m for m in mutants if m.key in todo_keys]
    stale = sorted(set(equivalent) - {m.key for m in mutants})
    summary = summarise(module, done, base_s, time.time() - started, cfg["tests"], stale)
    summary["label"] = label
    summary["carried_from"] = since
    summary["carried"] = sum(1 for m in done if m.carried)
    summary["test_sha256"] = {t: sha(ROOT / t) for t in cfg["tests"]}
    if only is None:
        out = result_path(module, label)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
        tmp.replace(out)
    return summary


def summarise(module, mutants, base_s, wall_s, tests, stale) -> dict:
    c = Counter(m.outcome for m in mutants)
    n = len(mutants)
    non_eq = n - c["equivalent"]
    detected = c["killed"] + c["timed out"]
    return {
        "module": module,
        "tests": tests,
        "sha256": sha(ROOT / module),
        "mutants": n,
        "killed": c["killed"],
        "survived": c["survived"] + c["no coverage"],
        "no_coverage": c["no coverage"],
        "timed_out": c["timed out"],
        "equivalent": c["equivalent"],
        "score": detected / non_eq if non_eq else 1.0,
        "tests_seconds": round(base_s, 2),
        "wall_seconds": round(wall_s, 1),
        "stale_equivalent_marks": stale,
        "mutant_list": [
            {k: v for k, v in asdict(m).items() if k not in ("start", "end", "stmt_lines")}
            for m in mutants
        ],
    }


def table(summaries: list[dict]) -> str:
    rows = [
        "| module | mutants | killed | survived | timed out | equivalent | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        surv = f"{s['survived']}" + (f" ({s['no_coverage']} unrun)" if s["no_coverage"] else "")
        rows.append(
            f"| {s['module']} | {s['mutants']} | {s['killed']} | {surv} | {s['timed_out']} "
            f"| {s['equivalent']} | {100 * s['score']:.1f}% |"
        )
    return "\n".join(rows)


def survivors(summary: dict) -> str:
    lines = []
    for m in summary["mutant_list"]:
        if m["outcome"] in ("survived", "no coverage") or m["reason"].startswith("marked "):
            note = " (never executed by the tests)" if m["outcome"] == "no coverage" else ""
            lines.append(
                f"- :{m['line']} `{m['original']}` -> `{m['mutated']}` in {m['qualname']}{note}"
                + (f" — {m['reason']}" if m["reason"] else "")
            )
    for k in summary.get("stale_equivalent_marks", []):
        lines.append(f"- stale mark in equivalent.toml (no such mutant now): {k}")
    return "\n".join(lines)


def remark(s: dict, equivalent: dict[str, str]) -> dict:
    """A saved run with today's equivalence marks applied (a run made before a mark was
    written counts that survivor as equivalent too), counts and score recomputed."""
    ms = [dict(m) for m in s["mutant_list"]]
    for m in ms:
        if m["outcome"] in ("survived", "no coverage") and m["key"] in equivalent:
            m["outcome"], m["reason"] = "equivalent", equivalent[m["key"]]
    c = Counter(m["outcome"] for m in ms)
    non_eq = len(ms) - c["equivalent"]
    out = dict(s, mutant_list=ms, killed=c["killed"], timed_out=c["timed out"])
    out.update(survived=c["survived"] + c["no coverage"], no_coverage=c["no coverage"])
    out.update(equivalent=c["equivalent"])
    out["score"] = (c["killed"] + c["timed out"]) / non_eq if non_eq else 1.0
    return out


def report(labels: tuple[str, str] = ("before", "after")) -> str:
    """Markdown: one row per module and run label found under results/ (with today's
    equivalence marks applied to every run), then the survivors of the last label."""
    rows = [
        "| module | run | tests | mutants | killed | survived | timed out | equivalent | score |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    last = []
    marks = load_equivalent()
    for module in load_config():
        for label in labels:
            p = result_path(module, label)
            if not p.exists():
                continue
            s = remark(json.loads(p.read_text()), marks.get(module, {}))
            surv = f"{s['survived']}" + (f" ({s['no_coverage']} unrun)" if s["no_coverage"] else "")
            tests = ", ".join(Path(t).name for t in s["tests"])
            carried = f" ({s['carried']} carried)" if s.get("carried") else ""
            rows.append(
                f"| {module} | {label} | {tests} | {s['mutants']} | {s['killed']}{carried} "
                f"| {surv} | {s['timed_out']} | {s['equivalent']} | {100 * s['score']:.1f}% |"
            )
            if label == labels[-1]:
                last.append(s)
    out = ["\n".join(rows)]
    for s in last:
        if survivors(s):
            out.append(f"Survivors of {s['module']} ({labels[-1]}):\n\n{survivors(s)}")
    if len(out) == 1:
        out.append(f"No mutant survives the {labels[-1]!r} runs (the equivalent ones aside).")
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="module paths as in modules.toml")
    ap.add_argument("--all", action="store_true", help="every module of modules.toml")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    ap.add_argument("--survivors", action="store_true", help="rerun last run's survivors only")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per mutant")
    ap.add_argument("--label", default="after", help="a name for this run in the results")
    ap.add_argument(
        "--since",
        default=None,
        metavar="LABEL",
        help="take the mutants that run LABEL killed as killed (same module, superset of tests)",
    )
    ap.add_argument(
        "--report",
        action="store_true",
        help="print the before/after tables of results/, run nothing",
    )
    a = ap.parse_args(argv)
    cfg = load_config()
    if a.report:
        print(report())
        return 0
    mods = list(cfg) if a.all else a.modules
    if not mods:
        ap.error("name a module or pass --all")
    for m in mods:
        if m not in cfg:
            ap.error(f"{m} is not in {CONFIG.relative_to(ROOT)} (known: {', '.join(cfg)})")
    if a.list:
        for m in mods:
            for mu in collect(ROOT / m):
                print(f"{m}:{mu.line} [{mu.kind}] {mu.key}")
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True
    for name in PRELOAD:  # third-party only: the package under test is imported in each child
        __import__(name)
    warm_up_pytest()
    assert not any(k == "rsgn" or k.startswith("rsgn.") for k in sys.modules)
    summaries = []

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    for m in mods:
        only = None
        if a.survivors:
            prev = json.loads(result_path(m, a.label).read_text())
            only = {
                x["key"] for x in prev["mutant_list"] if x["outcome"] in ("survived", "no coverage")
            }
        s = mutate_module(m, cfg[m], only=only, timeout=a.timeout, label=a.label, since=a.since)
        summaries.append(s)
        print(f"\n{table([s])}\n\nsurvivors of {m}:\n{survivors(s) or '(none)'}\n", flush=True)
    if len(summaries) > 1:
        print(table(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
