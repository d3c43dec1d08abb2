"""The documentation builds with warnings as errors, runs every example, and renders.

One Sphinx build (module fixture) on a copy of docs/ and examples/ in a temporary folder, so the
repository is never written to. sphinx-gallery executes every ``examples/plot_*.py`` with
UserWarnings turned into errors (docs/conf.py), which is what tests/test_examples.py checks when
the documentation toolchain is absent; with it, that test skips and this build is the one run of
the examples in CI.
"""

import importlib.util
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
DOCS_TOOLCHAIN = all(importlib.util.find_spec(name) is not None for name in
                     ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DOCS_TOOLCHAIN, reason="needs the docs extra: pip install -e .[docs]"),
]


def _check_rendered():
    spec = importlib.util.spec_from_file_location("check_rendered",
                                                  ROOT / "docs" / "check_rendered.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    work = tmp_path_factory.mktemp("docs_build")
    ignore = shutil.ignore_patterns("_build", "auto_examples", "generated",
                                    "sg_execution_times.rst", "__pycache__")
    shutil.copytree(ROOT / "docs", work / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", work / "examples", ignore=ignore)
    out = work / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(work / "docs"), str(out)],
        cwd=work, capture_output=True, text=True, check=False,
    )
    return proc, out, work


def test_build_has_no_warning(built_docs):
    proc, out, _ = built_docs
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr[-6000:]}"
    assert (out / "index.html").is_file()


def test_every_example_ran_and_made_a_figure(built_docs):
    proc, out, work = built_docs
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert EXAMPLES, "no examples/plot_*.py found"
    images = work / "docs" / "auto_examples" / "images"
    for path in EXAMPLES:
        assert (out / "auto_examples" / f"{path.stem}.html").is_file(), path.name
        figures = sorted(images.glob(f"sphx_glr_{path.stem}_[0-9][0-9][0-9].png"))
        assert figures, f"{path.name} produced no figure"


def test_every_public_name_has_an_api_page(built_docs):
    proc, out, _ = built_docs
    assert proc.returncode == 0, proc.stderr[-3000:]
    import skrmt
    import skrmt.datasets

    names = [f"skrmt.{n}" for n in skrmt.__all__ if n != "__version__"]
    names += [f"skrmt.datasets.{n}" for n in skrmt.datasets.__all__
              if callable(getattr(skrmt.datasets, n)) and not n[0].isupper()]
    missing = [n for n in names if not (out / "generated" / f"{n}.html").is_file()]
    assert not missing, f"public names without an API page: {missing}"


def test_html_static_checks(built_docs):
    proc, out, _ = built_docs
    assert proc.returncode == 0, proc.stderr[-3000:]
    problems = _check_rendered().static_checks(out)
    assert problems == []


def test_math_renders_in_a_browser(built_docs):
    proc, out, _ = built_docs
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = _check_rendered()
    if check.find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    problems, _ = check.rendered_checks(
        out, screenshots=False, pages={"theory": "user_guide/theory.html"})
    assert problems == []
