"""The documentation site builds from the docstrings with warnings as errors (Sphinx: autodoc,
napoleon, MyST for the tutorial and the bibliography)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="sphinx is a test dependency: pip install -e '.[test]'")
    pytest.importorskip("myst_parser", reason="myst-parser is a test dependency")
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "-q",
        "-b",
        "html",
        str(ROOT / "docs"),
        str(tmp_path),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "api.html").is_file() and (tmp_path / "tutorial.html").is_file()
    assert "rsgn.api.compare" in (tmp_path / "api.html").read_text()
