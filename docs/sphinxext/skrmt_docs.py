"""Sphinx hooks of the skrmt documentation (a module, so that Sphinx can pickle its config)."""

import re
import warnings

_saved_filters = []


def user_warnings_as_errors(gallery_conf, fname, when):
    """Run each example with UserWarnings turned into errors, as tests/test_examples.py does.

    sphinx-gallery calls this before and after every example (``reset_modules_order="both"``):
    the filter is pushed before and the previous filters restored after, so Sphinx's own code
    runs with the ordinary filters. A UserWarning raised by an example therefore fails it, and
    a failing example fails the build.
    """
    import matplotlib.pyplot as plt

    plt.close("all")
    if when == "before":
        _saved_filters.append(warnings.filters[:])
        warnings.simplefilter("error", UserWarning)
        # plt.show() under the Agg backend sphinx-gallery uses is expected (the scraper
        # collects the figures): keep sphinx-gallery's own filter for that one warning
        warnings.filterwarnings("ignore", message=".*is non-interactive, and thus cannot be",
                                category=UserWarning)
    elif _saved_filters:
        warnings.filters[:] = _saved_filters.pop()
        warnings._filters_mutated()


# "ndarray of shape (n_samples, n_features_in_)": in reStructuredText a bare word ending in "_"
# is a hyperlink reference; quote such fitted-attribute names inside shape specifications.
_SHAPE = re.compile(r"shape \(([^)]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?![`\w])")


def _quote_shape(match):
    return "shape (" + _TRAILING_UNDERSCORE.sub(r"``\1``", match.group(1)) + ")"


def quote_attribute_names_in_shapes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "shape (" in line and not line.lstrip().startswith((">>>", "...")):
            lines[i] = _SHAPE.sub(_quote_shape, line)


def skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Document skrmt's own methods; leave scikit-learn's (metadata routing, ...) to it."""
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn") or re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    # before numpydoc (priority 500) parses the docstring
    app.connect("autodoc-process-docstring", quote_attribute_names_in_shapes, priority=100)
    app.connect("autodoc-skip-member", skip_scikit_learn_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
