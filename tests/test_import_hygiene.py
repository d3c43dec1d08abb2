"""`import skrmt` imports neither torch nor dask; only skrmt/_backend names devices or torch."""

import ast
import pathlib
import subprocess
import sys

import skrmt

PACKAGE = pathlib.Path(skrmt.__file__).parent


def test_import_skrmt_leaves_torch_and_dask_out():
    code = (
        "import sys, skrmt, skrmt.datasets; "
        "bad = [m for m in ('torch', 'dask') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_torch_and_device_names_only_in_backend():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "_backend":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            if any(n == "torch" or n.startswith("torch.") for n in names):
                offenders.append(f"{rel}: imports torch")
            if isinstance(node, ast.Compare):
                for c in [node.left, *node.comparators]:
                    if isinstance(c, ast.Constant) and c.value in ("cuda", "cpu", "mps"):
                        offenders.append(f"{rel}:{node.lineno}: compares with {c.value!r}")
    assert not offenders, offenders


PICKLE_LOAD = r"""
import pickle, sys, warnings
import numpy as np
if sys.argv[1] == "block":
    # A finder that refuses torch: sys.modules["torch"] = None would break scipy.stats,
    # which probes for torch arrays.
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked for this test")
            return None
    sys.meta_path.insert(0, _NoTorch())
est = pickle.load(open(sys.argv[2], "rb"))
X = np.load(sys.argv[3])
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    Z = est.transform(X)
np.save(sys.argv[4], Z)
print(",".join(type(x.message).__name__ for x in w))
"""


def test_torch_fitted_model_loads_where_torch_is_absent(tmp_path):
    import numpy as np
    import pickle

    import pytest

    pytest.importorskip("torch")
    from skrmt import TernaryRandomFeatures

    X = np.random.RandomState(0).randn(30, 40)
    est = TernaryRandomFeatures(100, random_state=0, device="cpu").fit(X)
    Z = est.transform(X)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    script = tmp_path / "load.py"
    script.write_text(PICKLE_LOAD)
    out = subprocess.run(
        [sys.executable, str(script), "block", str(tmp_path / "m.pkl"), str(tmp_path / "X.npy"),
         str(tmp_path / "Z.npy")],
        capture_output=True, text=True, check=True,
    )
    assert "DeviceFallbackWarning" in out.stdout
    np.testing.assert_allclose(np.load(tmp_path / "Z.npy"), Z, rtol=1e-12)
