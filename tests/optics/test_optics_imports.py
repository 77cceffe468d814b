"""rsgn.optics is self-contained: it imports neither torch nor any other rsgn package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rsgn.optics

OPTICS_DIR = Path(rsgn.optics.__file__).parent
ALLOWED_ROOTS = {"numpy", "scipy", "numba", "__future__"} | set(sys.stdlib_module_names)


def test_only_allowed_imports() -> None:
    files = sorted(OPTICS_DIR.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    continue  # relative import inside rsgn.optics
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in ALLOWED_ROOTS, f"{path.name} imports {root}"


def test_import_does_not_pull_torch() -> None:
    code = (
        "import sys, rsgn.optics\n"
        "bad = [m for m in sys.modules\n"
        "       if m == 'torch' or m.startswith(('rsgn.backends', 'rsgn.model'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_is_documented() -> None:
    for name in rsgn.optics.__all__:
        obj = getattr(rsgn.optics, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
