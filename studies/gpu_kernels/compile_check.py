"""Compile the Triton kernels for an H100 (sm_90) on a machine without a GPU.

    python studies/gpu_kernels/compile_check.py          # the fused step's variants
    python studies/gpu_kernels/compile_check.py --hidden 128 --k 16   # at the benchmark's shapes
    python studies/gpu_kernels/compile_check.py --pytest tests/test_kernels.py \
        tests/test_primitives.py tests/test_fused_step.py tests/test_triton_backend.py

The CPU interpreter runs the kernels' Python, not Triton's compiler, so it cannot show compile
errors (a ``tl.constexpr`` reassigned in a loop, a type mismatch, inline asm): session 2 found
two such bugs only on the H100. This script closes that gap without a GPU, in two processes:

1. **record** (``TRITON_INTERPRET=1``): runs kernels under the interpreter and records every
   launch: the kernel, each argument's type (``*fp32``, ``i32``, ...) and each ``tl.constexpr``
   value. The launches come from the fused step under each ``kernels.step.TUNING`` variant
   (default, ``MASK``, ``STORE``, both), or from the tests given with ``--pytest``.
2. **compile** (no interpreter): compiles each distinct launch with ``triton.compile`` for
   ``GPUTarget("cuda", 90, 32)`` down to a cubin (ptxas ships with the Triton wheel); launches
   with a ``FAST`` constexpr are compiled with ``FAST=True`` too (the PTX tanh, which the
   interpreter cannot run).

Each compiled launch also reports its cubin's registers per thread, local memory per thread
(register spills) and static shared memory (``cuobjdump --dump-resource-usage``): static
facts about occupancy and spilling, not timings. A compile that passes here says the kernel
compiles for sm_90 with this Triton version. It says nothing about speed or about results
on the GPU. Writes ``--out`` (JSON: one row per
distinct launch, ok or the error's last line); exits nonzero if any compile fails.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
_DTYPES = {
    "float32": "fp32",
    "float64": "fp64",
    "float16": "fp16",
    "bfloat16": "bf16",
    "int64": "i64",
    "int32": "i32",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
    "bool": "i1",
}


def arg_type(value) -> str:
    """Triton's signature string for a launch argument."""
    import torch

    if isinstance(value, torch.Tensor):
        return "*" + _DTYPES[str(value.dtype).removeprefix("torch.")]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"cannot type launch argument {value!r}")


def launch_spec(fn, args: tuple, kwargs: dict) -> dict:
    """One launch as {module, kernel, signature, constexprs, options}."""
    import inspect

    params = inspect.signature(fn).parameters
    values = dict(zip(params, args, strict=False))
    values.update({k: v for k, v in kwargs.items() if k in params})
    sig, cx = {}, {}
    for name, p in params.items():
        v = values.get(name, p.default)
        ann = (
            p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        )
        if str(ann).endswith("constexpr") or v is None:
            sig[name], cx[name] = "constexpr", v
        else:
            sig[name] = arg_type(v)
    opts = {k: v for k, v in kwargs.items() if k not in params}
    return {
        "module": fn.__module__,
        "kernel": fn.__name__,
        "signature": sig,
        "constexprs": cx,
        "options": opts,
    }


def install_recorder(specs: list) -> None:
    """Record every top-level launch of an interpreted kernel into ``specs``."""
    from triton.runtime.interpreter import InterpretedFunction

    run = InterpretedFunction.run

    def recording_run(self, *args, grid, warmup, **kwargs):
        if self.fn.__module__.startswith("rsgn."):  # the package's kernels, not tests' own
            specs.append(launch_spec(self.fn, args, kwargs))
        return run(self, *args, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = recording_run


def fused_step_launches(hidden: int = 12, k_in: int = 6) -> None:
    """The fused step of a small model (48 nodes, 2 samples) under each scores-kernel
    variant, with the benchmark's block shapes when ``hidden`` and ``k_in`` are theirs."""
    import torch

    from rsgn.backends import get_backend
    from rsgn.config import ModelConfig
    from rsgn.kernels import step as kstep
    from rsgn.model import RSGN

    torch.manual_seed(0)
    cfg = ModelConfig(n_nodes=48, d_hidden=hidden, k_in=k_in, n_steps=2, target_active=0.1)
    model = RSGN(5, 3, cfg)
    x = torch.randn(2, 7, 5)
    base = dict(kstep.TUNING)
    for variant in ({}, {"MASK": True}, {"STORE": True}, {"MASK": True, "STORE": True}):
        kstep.TUNING.update(variant)
        try:
            model.zero_grad(set_to_none=True)
            model(x, ops_table=get_backend("triton").ops).logits.sum().backward()
        finally:
            kstep.TUNING.clear()
            kstep.TUNING.update(base)
    with torch.no_grad():  # the op-by-op kernels too
        model(x, ops_table=get_backend("triton", fused=False).ops)


def record(out: Path, pytest_args: list[str], hidden: int, k_in: int) -> int:
    os.environ["TRITON_INTERPRET"] = "1"
    specs: list = []
    install_recorder(specs)
    rc = 0
    if pytest_args:
        import pytest

        rc = pytest.main(["-q", "-p", "no:cacheprovider", *pytest_args])
    else:
        fused_step_launches(hidden, k_in)
    unique = {json.dumps(s, sort_keys=True, default=str): s for s in specs}
    out.write_text(json.dumps(list(unique.values()), default=str) + "\n")
    print(f"recorded {len(specs)} launches, {len(unique)} distinct -> {out}", flush=True)
    return int(rc)


def compile_one(spec: dict, arch: int, usage: dict | None = None) -> str:
    """'ok' or the error's last line; fills ``usage`` with the cubin's resource usage."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(importlib.import_module(spec["module"]), spec["kernel"])
    src = ASTSource(fn=fn, signature=spec["signature"], constexprs=spec["constexprs"])
    try:
        kern = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=spec["options"])
    except Exception as exc:  # noqa: BLE001 - reported per kernel
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        return f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:400]
    if usage is not None:
        usage.update(resource_usage(kern.asm["cubin"]))
    return "ok"


def resource_usage(cubin: bytes) -> dict:
    """Registers per thread, local memory (bytes per thread: register spills and stack
    arrays) and static shared memory of a cubin, by ``cuobjdump --dump-resource-usage``
    (shipped with the Triton wheel); {} when it is not there."""
    import re
    import tempfile

    import triton.backends.nvidia as nvidia

    tool = Path(nvidia.__file__).parent / "bin" / "cuobjdump"
    if not tool.exists():
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([str(tool), "--dump-resource-usage", f.name],
                              capture_output=True, text=True).stdout  # fmt: skip
    found = dict(re.findall(r"\b(REG|LOCAL|SHARED|STACK):(\d+)", text))
    return {k.lower(): int(v) for k, v in found.items()}


def compile_all(specs_path: Path, arch: int) -> list[dict]:
    os.environ.pop("TRITON_INTERPRET", None)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton >= 3.9 warns when unset
    specs = json.loads(specs_path.read_text())
    rows = []
    for spec in specs:
        runs = [spec]
        if spec["constexprs"].get("FAST") is False:  # the CUDA-only fast path as well
            runs.append({**spec, "constexprs": {**spec["constexprs"], "FAST": True}})
        for s in runs:
            cx = {k: v for k, v in s["constexprs"].items() if v is not None}
            rows.append({"kernel": f"{s['module']}.{s['kernel']}", "constexprs": cx})
            usage: dict = {}
            rows[-1]["result"] = compile_one(s, arch, usage)
            rows[-1].update(usage)
            use = " ".join(f"{k}={v}" for k, v in usage.items())
            print(f"{rows[-1]['result'][:40]:40s} {use:36s} {rows[-1]['kernel']} {cx}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pytest", nargs="+", default=[], help="record the launches of these tests")
    ap.add_argument("--arch", type=int, default=90, help="CUDA compute capability (90: H100)")
    ap.add_argument("--hidden", type=int, default=12, help="fused-step scenario: node width d")
    ap.add_argument("--k", type=int, default=6, help="fused-step scenario: in-edges per node")
    ap.add_argument("--out", type=Path, default=HERE / "compile_check.json")
    ap.add_argument("--record-only", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--compile-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.record_only:
        sys.exit(record(args.record_only, args.pytest, args.hidden, args.k))
    from rsgn.checkpoint import atomic_write_bytes

    if args.compile_only:
        rows = compile_all(args.compile_only, args.arch)
        bad = [r for r in rows if r["result"] != "ok"]
        res = {"arch": f"sm_{args.arch}", "compiled": len(rows), "failed": len(bad), "rows": rows}
        import triton

        res["triton"] = triton.__version__
        atomic_write_bytes(args.out, (json.dumps(res, indent=1) + "\n").encode())
        print(f"{len(rows) - len(bad)} of {len(rows)} compiled for sm_{args.arch} -> {args.out}")
        sys.exit(1 if bad else 0)
    import tempfile

    specs = Path(tempfile.mkdtemp(prefix="rsgn-compile-check-")) / "launches.json"
    me = [sys.executable, str(Path(__file__).resolve())]
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    rec = [*me, "--record-only", str(specs), "--hidden", str(args.hidden), "--k", str(args.k)]
    rec += ["--pytest", *args.pytest] if args.pytest else []
    p = subprocess.run(rec, env=env, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"compile_check.py: recording failed (exit {p.returncode})")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    p = subprocess.run([*me, "--compile-only", str(specs), "--arch", str(args.arch),
                        "--out", str(args.out)], env=env, cwd=ROOT)  # fmt: skip
    specs.unlink(missing_ok=True)
    specs.parent.rmdir()
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
