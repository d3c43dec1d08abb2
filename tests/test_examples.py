"""Every example runs (headless) without error or warning.

When the documentation toolchain is installed (the ``docs`` extra, which ``./dev.sh`` installs),
tests/test_docs.py builds the gallery, which runs every example once with UserWarnings as errors
(docs/conf.py); this test then skips, so CI does not run the examples twice. Without the
toolchain it runs them here.
"""

import importlib.util
import pathlib
import runpy
import warnings

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parents[1] / "examples").glob("plot_*.py"))
DOCS_BUILD_RUNS_EXAMPLES = all(
    importlib.util.find_spec(name) is not None
    for name in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme")
)


@pytest.mark.slow
@pytest.mark.skipif(DOCS_BUILD_RUNS_EXAMPLES,
                    reason="run by the gallery build of tests/test_docs.py")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        runpy.run_path(str(path), run_name="__main__")
    plt.close("all")
