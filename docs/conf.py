"""Sphinx configuration of the skrmt documentation.

Build it with ``./dev.sh docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``);
``./dev.sh docs --check`` also screenshots three rendered pages with headless chromium
(``docs/check_rendered.py``). The test suite builds it too (``tests/test_docs.py``), so a
warning, a failing example or a UserWarning raised by an example fails CI.

The gallery runs every ``examples/plot_*.py`` at its small default size; set
``SKRMT_EXAMPLES_FULL=1`` to run the examples that have one at their full size.
"""

import os
import sys

import skrmt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sphinxext"))

project = "skrmt"
author = "skrmt developers"
copyright = "skrmt developers"
release = skrmt.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # MathJax bundled into the build output, so formulas render without network access
    "sphinx-mathjax-offline",
    "skrmt_docs",  # docs/sphinxext: docstring and gallery hooks
]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
default_role = "literal"
nitpicky = False

# -- autodoc / autosummary / numpydoc ------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc's own validation of every public docstring: the sections the house rules require
numpydoc_validation_checks = {"PR01", "PR02", "PR10", "SA01", "SA04", "RT03", "YD01", "EX01"}
# methods (fit, predict, ... and those inherited from scikit-learn) are documented on their
# class page; the exception classes and the discovery helper need no Examples section
numpydoc_validation_exclude = {
    r"^skrmt\.[A-Z]\w*\.\w+$",
    r"^skrmt\.exceptions\.",
    r"^skrmt\.utils\.discovery\.",
}
numpydoc_xref_param_type = False

intersphinx_mapping = {}  # no network in CI: cross-project links are written out by hand

# -- sphinx-gallery --------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "reset_modules": ("matplotlib", "skrmt_docs.user_warnings_as_errors"),
    "reset_modules_order": "both",
    "abort_on_example_error": False,  # report every failing example, then fail the build
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "image_srcset": [],
    "capture_repr": (),  # show printed output, not the repr of a cell's last expression
    # "Examples using X" on each API page
    "doc_module": ("skrmt",),
    "backreferences_dir": "generated/backreferences",
    "inspect_global_variables": False,
}
# examples import skrmt from the repository even without an installed copy
sys.path.insert(0, os.path.abspath(".."))

# -- HTML ------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skrmt {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
    "navbar_end": ["navbar-icon-links"],
}
html_static_path = []
html_show_sourcelink = False
html_sidebars = {"index": [], "citing": []}
