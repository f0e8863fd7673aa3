"""Sphinx configuration of the neuromct-tf documentation."""

from pathlib import Path

import typer
import typer.cli

import neuromct_tf
from neuromct_tf.cli.main import cli_command

project = "neuromct-tf"
author = "neuromct-tf developers"
copyright = "2026, neuromct-tf developers"
release = neuromct_tf.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath"]


def write_cli_reference() -> None:
    """Generate the command reference from the Typer app, so it always matches the code."""
    context = typer.Context(cli_command, info_name="neuromct-tf")
    text = typer.cli.get_docs_for_click(obj=cli_command, ctx=context, name="neuromct-tf", title="Command reference")
    target = Path(__file__).parent / "_generated" / "cli.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)


write_cli_reference()

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Fields of NamedTuples are documented in the class docstring; autodoc would list them twice.
napoleon_use_ivar = True
nitpicky = False
# Napoleon turns array shapes such as "shape (num_triggers,)" in type fields into
# cross-references; a name that is also an attribute elsewhere is then ambiguous.
suppress_warnings = ["ref.python"]

html_theme = "furo"
html_static_path = ["_static"]
html_title = f"neuromct-tf {release}"
exclude_patterns = ["_build", "_generated"]
