"""Sphinx configuration: the API reference is built from the docstrings (autodoc, napoleon),
the tutorial and the bibliography are Markdown (MyST). Built in CI with warnings as errors:
``sphinx-build -W -b html docs docs/_build``."""

project = "rsgn"
author = "rsgn developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_ivar = True
html_theme = "alabaster"
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]


def _escape_bars(app, what, name, obj, options, lines):  # noqa: ANN001, ARG001
    """Docstrings write absolute values and set sizes as ``|x|``, which reStructuredText reads
    as substitutions: escape the bars, except in grid tables and literal blocks."""
    literal_indent = None
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if literal_indent is not None:
            if stripped and indent <= literal_indent:
                literal_indent = None
            else:
                continue
        if stripped.startswith(("|", "+")) and stripped.endswith(("|", "+")):
            continue
        lines[i] = line.replace("\\|", "|").replace("|", "\\|")
        if stripped.endswith("::"):
            literal_indent = indent


def setup(app):  # noqa: ANN001, ANN201
    app.connect("autodoc-process-docstring", _escape_bars)
