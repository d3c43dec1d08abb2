"""``skrmt compare``: the closed-form readout, the command's outputs and its acceptance claims.

Acceptance (baselines.md §7): on digits, FP-RFF at m = 1024 has test error < 3%; LP-8 is within
one point of FP-RFF at every m; LP-1 is worse than LP-8 at every m; the footprint order is
TRF < LP-1 < LP-8 < FP-RFF < Nystroem at every m; printed memory equals ``memory_report``; a
rerun with the same seeds reproduces the CSV (timings excluded).
"""

import csv
import json
import math
import warnings

import numpy as np
import pytest
from sklearn.kernel_approximation import Nystroem, RBFSampler
from sklearn.linear_model import RidgeClassifier

from skrmt import LowPrecisionRFF, TernaryRandomFeatures
from skrmt import _compare
from skrmt.__main__ import main
from skrmt.datasets import fashion_mnist_available
from skrmt.utils import memory_report

QUICK_M = (128, 256, 512, 1024)


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _by(rows, label, m):
    hits = [r for r in rows if r["label"] == label and int(r["n_components"]) == m]
    assert len(hits) == 1, (label, m, len(hits))
    return hits[0]


@pytest.fixture(scope="module")
def digits():
    return _compare.load_comparison_data("digits", random_state=0)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, digits):
    """``main(["compare", "--quick"])`` once, plus the Gaussian-projection LP rows."""
    out = tmp_path_factory.mktemp("quick")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = main(["compare", "--quick", "--output", str(out)])
    assert status == 0
    return out, buf.getvalue()


# --------------------------------------------------------------------------- building blocks
def test_median_gamma_digits(digits):
    # baselines.md §7: digits gamma ~ 0.107 with X/16.
    gamma = _compare.median_gamma(digits["X_train"])
    assert gamma == pytest.approx(0.1064, abs=2e-3)
    X = digits["X_train"]
    # tau of the TRF input is 2 gamma mean ||x - mean||^2 ~ 1 (baselines.md §1, §7).
    Xp = _compare.trf_input(X, X.mean(axis=0), gamma)
    tau = np.sum(Xp**2) / Xp.size
    assert tau == pytest.approx(2 * gamma * np.mean(np.sum((X - X.mean(0)) ** 2, axis=1)))
    assert 0.9 < tau < 1.1


def test_digits_split_sizes(digits):
    assert digits["X_train"].shape == (1078, 64)
    assert digits["X_val"].shape == (270, 64)
    assert digits["X_test"].shape == (449, 64)
    assert digits["X_train"].max() == 1.0  # X / 16


def test_trf_input_targets_the_gaussian_kernel(digits):
    # The rbf-target TRF on trf_input must approximate exp(-gamma ||x - y||^2) itself.
    X = digits["X_train"][:200]
    gamma = 0.1064
    Xp = _compare.trf_input(X, X.mean(axis=0), gamma)
    trf = TernaryRandomFeatures(8, activation="rbf", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # near-even rbf target at tau ~ 1
        trf.fit(Xp)
    K_target = np.exp(-gamma * ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    K_theory = trf.kernel_(Xp)
    off = ~np.eye(len(X), dtype=bool)
    assert np.max(np.abs(K_theory[off] - K_target[off])) < 1e-6


@pytest.mark.parametrize("shape", [(60, 25), (30, 80)])  # primal (m <= n) and kernel form
def test_ridge_path_equals_ridge_classifier(shape):
    rng = np.random.RandomState(0)
    n, m = shape
    Z = rng.randn(n, m) + 0.3
    y = rng.randint(0, 4, size=n)
    Z_eval = rng.randn(17, m)
    alphas = (1e-3, 0.1, 10.0)
    D, classes = _compare.ridge_decision_path(Z, y, Z_eval, alphas=alphas)
    np.testing.assert_array_equal(classes, np.arange(4))
    for k, alpha in enumerate(alphas):
        ref = RidgeClassifier(alpha=alpha, solver="svd").fit(Z, y).decision_function(Z_eval)
        np.testing.assert_allclose(D[k], ref, rtol=1e-9, atol=1e-9)


def test_ridge_select_picks_validation_best():
    rng = np.random.RandomState(1)
    Z = rng.randn(120, 10)
    w = rng.randn(10, 3)
    y = np.argmax(Z @ w + 0.5 * rng.randn(120, 3), axis=1)
    Zv = rng.randn(80, 10)
    yv = np.argmax(Zv @ w, axis=1)
    res = _compare.ridge_select(Z, y, Zv, yv, Zv, yv)
    accs = [RidgeClassifier(alpha=a, solver="svd").fit(Z, y).score(Zv, yv)
            for a in _compare.ALPHAS]
    np.testing.assert_allclose(res["val_accuracy_path"], accs)
    assert res["val_accuracy"] == max(accs)
    assert res["test_accuracy"] == res["val_accuracy"]
    with pytest.raises(ValueError, match="alphas"):
        _compare.ridge_select(Z, y, Zv, yv, alphas=[0.0, 1.0])


def test_compare_rejects_bad_input(digits):
    d = digits
    args = (d["X_train"], d["y_train"], d["X_val"], d["y_val"], d["X_test"], d["y_test"])
    with pytest.raises(ValueError, match="sparsities"):
        _compare.compare(*args, n_components=(8,), sparsities=(1.0,))
    with pytest.raises(ValueError, match="bits"):
        _compare.compare(*args, n_components=(8,), bits=(0,))
    with pytest.raises(ValueError, match="methods"):
        _compare.compare(*args, n_components=(8,), methods=("SVM",))
    with pytest.raises(ValueError, match="X_val"):
        _compare.compare(d["X_train"], d["y_train"], d["X_val"][:, :3], d["y_val"],
                         d["X_test"], d["y_test"], n_components=(8,))


# --------------------------------------------------------------------------- the command
@pytest.mark.slow
def test_quick_writes_outputs(quick_run):
    out, _ = quick_run
    for suffix in ("csv", "json", "png"):
        path = out / f"compare_digits.{suffix}"
        assert path.is_file() and path.stat().st_size > 0, path
    rows = _read_csv(out / "compare_digits.csv")
    labels = {r["label"] for r in rows}
    assert labels == {"TRF eps=0", "FP-RFF", "LP-RFF 8-bit", "LP-RFF 1-bit", "Nystroem"}
    assert {int(r["n_components"]) for r in rows} == set(QUICK_M)
    assert len(rows) == 5 * len(QUICK_M)
    payload = json.loads((out / "compare_digits.json").read_text())
    assert payload["gamma"] == pytest.approx(0.1064, abs=2e-3)
    assert payload["settings"]["lp_projection"] == "circulant"
    assert len(payload["rows"]) == len(rows)
    assert payload["versions"]["numpy"] == np.__version__


@pytest.mark.slow
def test_quick_accuracy_acceptance(quick_run):
    # The command as shipped (circulant LP-RFF): FP-RFF < 3% error at m = 1024, and LP-1 is
    # worse than LP-8 at every m.
    out, _ = quick_run
    rows = _read_csv(out / "compare_digits.csv")
    assert float(_by(rows, "FP-RFF", 1024)["test_error"]) < 0.03
    for m in QUICK_M:
        lp8 = float(_by(rows, "LP-RFF 8-bit", m)["test_accuracy"])
        lp1 = float(_by(rows, "LP-RFF 1-bit", m)["test_accuracy"])
        assert lp1 < lp8, (m, lp1, lp8)


@pytest.fixture(scope="module")
def gaussian_rows(digits):
    """Quick grid with LP-RFF's dense Gaussian projection (RBFSampler's W bit for bit)."""
    d = digits
    return _compare.compare(
        d["X_train"], d["y_train"], d["X_val"], d["y_val"], d["X_test"], d["y_test"],
        n_components=QUICK_M, sparsities=(0.0,), bits=(8, 1), seeds=(0,),
        lp_projection="gaussian",
    )


@pytest.mark.slow
def test_gaussian_projection_accuracy_acceptance(gaussian_rows):
    # baselines.md §7 acceptance, in the setting of its §7.1 measurements: LP-8 shares
    # RBFSampler's projection, so it is within one point of FP-RFF at every m; LP-1 is worse.
    rows = gaussian_rows
    assert _by(rows, "FP-RFF", 1024)["test_error"] < 0.03
    for m in QUICK_M:
        fp = _by(rows, "FP-RFF", m)["test_accuracy"]
        lp8 = _by(rows, "LP-RFF 8-bit", m)["test_accuracy"]
        lp1 = _by(rows, "LP-RFF 1-bit", m)["test_accuracy"]
        assert abs(lp8 - fp) <= 0.01, (m, fp, lp8)
        assert lp1 < lp8, (m, lp1, lp8)


@pytest.mark.slow
def test_gaussian_projection_footprint_order(gaussian_rows):
    # §7: TRF < LP-1 < LP-8 < FP-RFF < Nystroem at every m (Gaussian-projection LP-RFF).
    for m in QUICK_M:
        order = [_by(gaussian_rows, lab, m)["footprint_bits"] for lab in
                 ("TRF eps=0", "LP-RFF 1-bit", "LP-RFF 8-bit", "FP-RFF", "Nystroem")]
        assert order == sorted(order) and len(set(order)) == 5, (m, order)


@pytest.mark.slow
def test_quick_footprint_closed_forms(quick_run):
    # Digits: d = 64, c = 10, s = 250. Convention of baselines.md §4 in closed form.
    out, _ = quick_run
    rows = _read_csv(out / "compare_digits.csv")
    d, c, s = 64, 10, 250
    for m in QUICK_M:
        blocks = math.ceil(m / d)
        expected = {
            "FP-RFF": 32 * m * (d + 1) + 32 * m * s + 32 * m * c,
            "Nystroem": 32 * m * (d + m) + 32 * m * s + 32 * m * c,
            "LP-RFF 8-bit": 32 * blocks * d + blocks * d + 32 * m + 8 * m * s + 32 * m * c,
            "LP-RFF 1-bit": 32 * blocks * d + blocks * d + 32 * m + 1 * m * s + 32 * m * c,
            # eps = 0: the dense 2-bit form is cheaper than the index form at d = 64.
            "TRF eps=0": 2 * m * d + 2 * m * s + 32 * m * c,
        }
        for label, bits in expected.items():
            assert int(_by(rows, label, m)["footprint_bits"]) == bits, (label, m)


@pytest.mark.slow
def test_footprint_order_circulant(quick_run):
    # With the circulant LP-RFF the command uses, LP-1 (1-bit features, O(m) parameters) is
    # *below* TRF (2-bit features) on digits: 635 m vs 948 m bits at s = 250, c = 10. The
    # rest of §7's order holds.
    out, _ = quick_run
    rows = _read_csv(out / "compare_digits.csv")
    for m in QUICK_M:
        fp = {lab: int(_by(rows, lab, m)["footprint_bits"]) for lab in
              ("TRF eps=0", "LP-RFF 1-bit", "LP-RFF 8-bit", "FP-RFF", "Nystroem")}
        assert fp["LP-RFF 1-bit"] < fp["TRF eps=0"] < fp["LP-RFF 8-bit"] < fp["FP-RFF"] \
            < fp["Nystroem"], (m, fp)


@pytest.mark.slow
def test_printed_memory_equals_memory_report(quick_run, digits, request):
    out, text = quick_run
    rows = _read_csv(out / "compare_digits.csv")
    gamma = float(rows[0]["gamma"])
    X = digits["X_train"]
    table = {}
    for line in text.splitlines():
        parts = line.split()
        # Table lines: label (1-3 words), m, bits, acc, std, val, alpha, map, stored, footprint, t
        if len(parts) >= 11 and parts[-10].isdigit() and parts[-9].isdigit():
            table[(" ".join(parts[:-10]), int(parts[-10]))] = parts
    assert len(table) == len(rows)
    limits, _ = _compare.limit_threads(1)  # numpy's and scipy's BLAS pools contend otherwise
    request.addfinalizer(limits.restore_original_limits)
    for m in (128, 1024):
        ests = {
            "FP-RFF": RBFSampler(gamma=gamma, n_components=m, random_state=0).fit(X),
            "Nystroem": Nystroem(gamma=gamma, n_components=m, random_state=0).fit(X),
            "LP-RFF 8-bit": LowPrecisionRFF(m, gamma=gamma, n_bits=8, projection="circulant",
                                            random_state=0).fit(X),
            "LP-RFF 1-bit": LowPrecisionRFF(m, gamma=gamma, n_bits=1, projection="circulant",
                                            random_state=0).fit(X),
            "TRF eps=0": TernaryRandomFeatures(m, activation="rbf", random_state=0).fit(
                _compare.trf_input(X, X.mean(axis=0), gamma)),
        }
        for label, est in ests.items():
            rep = memory_report(est, n_outputs=10, batch_size=250)
            parts = table[(label, m)]
            assert parts[-4] == f"{math.ceil(rep['P'] / 8) / 1024:.2f}"
            assert parts[-3] == f"{math.ceil(rep['stored'] / 8) / 1024:.2f}"
            assert parts[-2] == f"{math.ceil(rep['footprint'] / 8) / 1024:.2f}"
            row = _by(rows, label, m)
            assert int(row["stored_bits"]) == rep["stored"]
            assert int(row["footprint_bits"]) == rep["footprint"]


@pytest.mark.slow
def test_rerun_reproduces_csv(tmp_path):
    args = ["compare", "--n-components", "64,128", "--bits", "8,1", "--sparsity", "0,0.9",
            "--no-plot", "--random-state", "3"]
    assert main(args + ["--output", str(tmp_path / "a")]) == 0
    assert main(args + ["--output", str(tmp_path / "b")]) == 0
    a = _read_csv(tmp_path / "a" / "compare_digits.csv")
    b = _read_csv(tmp_path / "b" / "compare_digits.csv")
    assert len(a) == len(b) == 2 * 6
    for ra, rb in zip(a, b):
        for field in _compare.CSV_FIELDS:
            if field not in _compare.TIMING_FIELDS:
                assert ra[field] == rb[field], field
    assert {r["seed"] for r in a} == {"3"}


def test_seeds_and_summary(digits):
    d = digits
    rows = _compare.compare(
        d["X_train"], d["y_train"], d["X_val"], d["y_val"], d["X_test"], d["y_test"],
        n_components=(64,), bits=(), sparsities=(), methods=("FP-RFF",), seeds=(0, 1, 2),
    )
    assert [r["seed"] for r in rows] == [0, 1, 2]
    (entry,) = _compare.summarize(rows)
    acc = np.array([r["test_accuracy"] for r in rows])
    assert entry["test_accuracy"] == pytest.approx(acc.mean())
    assert entry["test_accuracy_std"] == pytest.approx(acc.std(ddof=1))
    assert entry["n_seeds"] == 3


def test_compression_table():
    summary = [
        {"method": "FP-RFF", "label": "FP-RFF", "n_components": 128, "test_error": 0.05,
         "footprint_bits": 1000},
        {"method": "FP-RFF", "label": "FP-RFF", "n_components": 256, "test_error": 0.03,
         "footprint_bits": 2000},
        {"method": "FP-RFF", "label": "FP-RFF", "n_components": 512, "test_error": 0.02,
         "footprint_bits": 4000},
        {"method": "TRF", "label": "TRF eps=0", "n_components": 128, "test_error": 0.04,
         "footprint_bits": 100},
        {"method": "TRF", "label": "TRF eps=0", "n_components": 256, "test_error": 0.0201,
         "footprint_bits": 200},
    ]
    table = _compare.compression_table(summary)
    got = {(e["reference"], e["tolerance"]): e["ratio"] for e in table}
    assert got[("best", 1e-4)] is None            # 0.0201 > 0.02 (1 + 1e-4)
    assert got[("best", 1e-2)] == pytest.approx(4000 / 200)
    assert got[("median", 1e-4)] == pytest.approx(2000 / 200)


def test_fashion_mnist_missing_gives_install_hint(tmp_path, monkeypatch, capsys):
    # Simulate a machine without the Debian package (and without $SKRMT_DATA_DIR).
    from skrmt.datasets import _fashion_mnist

    monkeypatch.delenv("SKRMT_DATA_DIR", raising=False)
    monkeypatch.setattr(_fashion_mnist, "dpkg_files", lambda package: None)
    status = main(["compare", "--dataset", "fashion-mnist", "--output", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err
    assert not list(tmp_path.iterdir())
    # An explicit empty folder fails the same way.
    status = main(["compare", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path),
                   "--output", str(tmp_path)])
    assert status == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_fashion_mnist_error_when_really_absent(tmp_path, capsys):
    if fashion_mnist_available():
        pytest.skip("dataset-fashion-mnist is installed (see test_fashion_mnist_tiny_compare)")
    assert main(["compare", "--dataset", "fashion-mnist", "--output", str(tmp_path)]) == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.slow
def test_fashion_mnist_tiny_compare(tmp_path):
    if not fashion_mnist_available():
        pytest.skip("dataset-fashion-mnist is not installed")
    args = ["compare", "--dataset", "fashion-mnist", "--n-train", "1000", "--n-val", "500",
            "--n-components", "256", "--bits", "8", "--sparsity", "0.9", "--no-plot",
            "--output", str(tmp_path)]
    assert main(args) == 0
    rows = _read_csv(tmp_path / "compare_fashion-mnist.csv")
    assert {r["label"] for r in rows} == {"TRF eps=0.9", "FP-RFF", "LP-RFF 8-bit", "Nystroem"}
    payload = json.loads((tmp_path / "compare_fashion-mnist.json").read_text())
    assert payload["settings"]["n_test"] == 10_000
    assert payload["settings"]["n_features"] == 784
    # baselines.md §7: Fashion-MNIST gamma ~ 0.0076 (median heuristic on centred X/255).
    assert payload["gamma"] == pytest.approx(0.0076, rel=0.05)
    for r in rows:
        # Far above chance (10%) even with 1000 training rows and m = 256.
        assert float(r["test_accuracy"]) > 0.6, r["label"]
