"""NTKLCClassifier (design note ntk_lc.md §4, §5, §8 items 7-11, §9)."""

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split

import skrmt
from skrmt import NTKLCClassifier
from skrmt._backend import DeviceCache, get_ops, torch_available
from skrmt.neural_network._ntklc import compressed_codes
from skrmt.random_features._ternary_matrix import (
    TernaryMatrix,
    draw_ternary,
    ternary_matrix_bits,
)
from skrmt.utils._memory import deep_ternary_memory_report

needs_torch = pytest.mark.skipif(not torch_available(), reason="needs torch")


def _fit_quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


# ------------------------------------------------------------------- item 7: weight sampler
@pytest.mark.parametrize("sparsity, storage", [(0.5, "packed"), (0.9, "sparse")])
def test_ternary_weight_sampler(sparsity, storage):
    """Law of the ternary weights on N = 10^6 entries, storage, scale, draw order."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((40, 500))
    y = np.arange(40) % 2
    est = _fit_quiet(
        NTKLCClassifier((2000, 8), sparsity=sparsity, activation_bits=1, max_iter=2,
                        random_state=3, device="numpy"), X, y)
    T = est.layers_[0]["weights"]
    assert isinstance(T, TernaryMatrix) and T.storage == storage
    dense = T.toarray()
    N = dense.size
    assert N >= 10**6 and set(np.unique(dense)) <= {-1, 0, 1}
    eps = sparsity
    assert abs(np.mean(dense == 0) - eps) <= 4 * math.sqrt(eps * (1 - eps) / N)
    assert abs(dense.mean()) <= 4 * math.sqrt((1 - eps) / N)
    assert est.layers_[0]["weight_scale"] == pytest.approx(1 / math.sqrt(1 - eps), rel=1e-15)
    # draw order: layer 1, layer 2, then the validation split, from one RandomState
    draw = np.random.RandomState(3)
    assert np.array_equal(dense, draw_ternary(draw, 2000, 500, eps))
    assert np.array_equal(est.layers_[1]["weights"].toarray(), draw_ternary(draw, 8, 2000, eps))
    _, val = next(StratifiedShuffleSplit(1, test_size=4, random_state=draw).split(X, y))
    assert np.array_equal(np.sort(est._validation_rows), np.sort(val))
    # the same seed gives the same hidden network whatever the data
    other = _fit_quiet(
        NTKLCClassifier((2000, 8), sparsity=sparsity, activation_bits=1, max_iter=2,
                        random_state=3, device="numpy"), X[::-1] * 3 + 1, 1 - y)
    assert all(a["weights"] == b["weights"] for a, b in zip(est.layers_, other.layers_))
    # no float matrix of a layer's shape (or of layer 1's size) is held by the fitted model
    for arr in _arrays(est.__dict__):
        if arr.dtype.kind == "f":
            assert arr.shape not in ((2000, 500), (500, 2000), (8, 2000), (2000, 8))
            assert arr.size < N


def _arrays(obj, seen=None):
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays(v, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _arrays(v, seen)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("skrmt"):
        yield from _arrays(vars(obj), seen)


@needs_torch
def test_same_weights_numpy_and_torch(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(64, 32), sparsity=0.5, activation_bits=1, max_iter=3,
              random_state=0)
    a = _fit_quiet(NTKLCClassifier(device="numpy", **kw), X[:300], y[:300])
    b = _fit_quiet(NTKLCClassifier(device="cpu", **kw), X[:300], y[:300])
    assert all(la["weights"] == lb["weights"] for la, lb in zip(a.layers_, b.layers_))


# -------------------------------------------------------------------- item 8: forward pass
def _reference_codes(est, Xn, given=None):
    """Float64 reference network: dense W = T / sqrt(1 - eps), h = (L[c] - m) / sqrt(d).

    With ``given`` (the codes of the integer path), layer l >= 2 is fed the integer path's
    codes of layer l - 1, so that a layer-1 flip at rounding level cannot propagate.
    """
    h = Xn
    out = []
    for index, layer in enumerate(est.layers_):
        W = layer["weights"].toarray().astype(np.float64) * layer["weight_scale"]
        if given is not None and index > 0:
            prev = est.layers_[index - 1]
            levels = np.asarray(prev["levels"])
            h = (levels[given[index - 1]] - prev["center"]) / math.sqrt(W.shape[1])
        z = h @ W.T
        codes = (z[:, :, None] > np.asarray(layer["thresholds"])).sum(axis=2)
        # the codes are what the layer's own StepFunction evaluates
        values = layer["activation"](z[:8])
        np.testing.assert_allclose(values, np.asarray(layer["levels"])[codes[:8]],
                                   rtol=1e-12, atol=1e-12)
        out.append(codes.astype(np.uint8))
        h = (np.asarray(layer["levels"])[codes] - layer["center"]) / math.sqrt(W.shape[0])
    return out


@pytest.mark.parametrize("bits", [1, 3])
def test_integer_forward_pass_is_exact(digits, bits):
    X, y = digits
    est = _fit_quiet(
        NTKLCClassifier((300, 200, 100), sparsity=0.5, activation_bits=bits, max_iter=2,
                        random_state=1, device="numpy"), X[:500], y[:500])
    Xn = (X[:400] - est.input_mean_) / est.input_scale_
    ops = get_ops("numpy")
    checked = compressed_codes(ops, Xn, est._net, DeviceCache())
    counts = compressed_codes(ops, Xn, est._net, DeviceCache(), method="counts")
    ref = _reference_codes(est, Xn, given=checked)
    free = _reference_codes(est, Xn)
    assert np.mean(free[0] != checked[0]) <= 1e-4
    for index in range(3):
        assert np.array_equal(checked[index], counts[index])
        if index > 0:
            assert np.array_equal(checked[index], ref[index])
    # the readout sees one of 2^bits values per feature (1 bit: the levels a, 0, a -> 2)
    U = est._readout_inputs(ops, checked[-1], np.float64)
    assert max(np.unique(col).size for col in U.T) == 2**bits
    np.testing.assert_allclose(np.mean(U**2), 1.0, atol=0.15)


@needs_torch
def test_hidden_codes_identical_numpy_torch(digits):
    X, y = digits
    est = _fit_quiet(
        NTKLCClassifier((256, 256, 128), sparsity=0.9, activation_bits=2, max_iter=2,
                        random_state=0, device="numpy"), X[:400], y[:400])
    Xn = (X - est.input_mean_) / est.input_scale_
    a = compressed_codes(get_ops("numpy"), Xn, est._net, DeviceCache())
    b = compressed_codes(get_ops("cpu"), Xn, est._net, DeviceCache())
    assert np.mean(a[0] != b[0]) <= 1e-4
    if np.array_equal(a[0], b[0]):
        for ca, cb in zip(a[1:], b[1:]):
            assert np.array_equal(ca, cb)


# ----------------------------------------------------------------------------- item 9: memory
def test_memory_accounting_reproduces_design_numbers():
    r = deep_ternary_memory_report((2000, 2000, 1000), 784, 10, sparsity=0.9)
    assert r["paper"] == {"bits": 762_800, "dense_bits": 242_656_000,
                          "ratio": pytest.approx(242_656_000 / 762_800)}
    assert round(r["paper"]["ratio"], 1) == 318.1
    assert r["project"]["bits"] == 9_404_896 and r["project"]["dense_bits"] == 242_496_000
    assert r["project"]["layers"] == [1_788_832, 4_864_032, 2_432_032]
    assert r["project"]["readout"] == 320_000
    # paper accounting of multi-bit activations: b bits per hidden activation
    assert [deep_ternary_memory_report((2000, 2000, 1000), 784, 10, sparsity=0.9,
                                       activation_bits=b)["paper"]["bits"]
            for b in (1, 2, 3)] == [762_800, 767_800, 772_800]
    assert deep_ternary_memory_report((2000, 2000, 1000), 784, 10,
                                      sparsity=0.5)["project"]["bits"] == 15_456_000
    dense = deep_ternary_memory_report((2000, 2000, 1000), 784, 10, compress=False)
    assert dense["project"]["ratio"] == 1 and dense["paper"]["ratio"] == 1


@pytest.mark.parametrize("compress", [True, False])
def test_fitted_memory_uses_actual_nnz(digits, compress):
    X, y = digits
    est = _fit_quiet(
        NTKLCClassifier((300, 100), sparsity=0.9, compress=compress, activation_bits=1,
                        max_iter=2, random_state=0, device="numpy"), X[:300], y[:300])
    report = est.memory_report_
    if compress:
        Ts = [layer["weights"] for layer in est.layers_]
        assert report["project"]["layers"] == [ternary_matrix_bits(T.nnz, *T.shape) for T in Ts]
        assert report["paper"]["bits"] == (sum(T.nnz for T in Ts) + round(0.1 * 100 * 10)
                                           + 1 * (300 + 100))
    else:
        assert est.compression_ratio_ == 1
    bits = report["project"]["bits"]
    assert est.memory_bytes_ == math.ceil(bits / 8) == skrmt.memory_bytes(est)
    assert est.dense_memory_bytes_ == math.ceil(32 * (300 * 64 + 100 * 300 + 100 * 10) / 8)
    assert est.compression_ratio_ == pytest.approx(report["project"]["dense_bits"] / bits)
    assert skrmt.memory_report(est)["stored"] == bits


# ------------------------------------------------------------------------ item 10: estimator
@pytest.mark.parametrize(
    "params, name",
    [
        (dict(hidden_layer_sizes=()), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes=(8, 2.5)), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes=(8, 8), activation=["relu"]), "activation"),
        (dict(hidden_layer_sizes=(8,), activation=["nope"]), "activation"),
        (dict(hidden_layer_sizes=(8,), activation="abs"), "activation"),
        (dict(hidden_layer_sizes=(8, 8), activation=["tanh", "relu"], activation_bits=1),
         "activation"),
        (dict(sparsity=1.0), "sparsity"),
        (dict(sparsity=-0.1), "sparsity"),
        (dict(activation_bits=4), "activation_bits"),
        (dict(activation="unknown"), "activation"),
    ],
)
def test_errors_name_the_parameter(params, name):
    X, y = make_blobs(60, n_features=5, random_state=0)
    with pytest.raises(ValueError, match=name):
        NTKLCClassifier(**{"device": "numpy", **params}).fit(X, y)


def test_nan_inf_and_one_class_rejected():
    X, y = make_blobs(60, n_features=5, random_state=0)
    est = NTKLCClassifier((8,), device="numpy")
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 2] = bad
        with pytest.raises(ValueError):
            est.fit(Xb, y)
    with pytest.raises(ValueError, match="class"):
        est.fit(X, np.zeros(60))


def test_sparsity_warning_lists_short_layers():
    X, y = make_blobs(60, n_features=500, random_state=0)
    est = NTKLCClassifier((1000, 100, 8), sparsity=0.9, activation_bits=1, max_iter=2,
                          device="numpy", random_state=0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est.fit(X, y)
    msgs = [str(w.message) for w in rec if issubclass(w.category, UserWarning)
            and not issubclass(w.category, ConvergenceWarning)]
    assert len(msgs) == 1
    # fan-ins 500, 1000, 100: 50 and 10 nonzeros per row at layers 1 and 3, 100 at layer 2
    assert "layer 1" in msgs[0] and "layer 3" in msgs[0] and "layer 2" in msgs[0]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        NTKLCClassifier((8,), compress=False, max_iter=2, device="numpy").fit(X, y)
    assert not [w for w in rec if "nonzero" in str(w.message)]


def test_readout_records_and_validation_split(digits):
    X, y = digits
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    est = _fit_quiet(NTKLCClassifier((256,), compress=False, max_iter=60, random_state=0,
                                     device="numpy"), Xtr, ytr)
    assert len(est.loss_curve_) == est.n_iter_ == len(est.validation_scores_)
    assert all(type(v) is float for v in est.loss_curve_ + est.validation_scores_)
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    val = est._validation_rows
    assert val.size == round(0.1 * Xtr.shape[0]) and val.max() < Xtr.shape[0]
    # stratified: every class has its share (+-1) of the validation rows
    share = np.bincount(ytr[val], minlength=10) / np.bincount(ytr, minlength=10)
    assert np.all(np.abs(share * np.bincount(ytr) - 0.1 * np.bincount(ytr)) <= 1)
    assert est.score(Xte, yte) > 0.95
    P = est.predict_proba(Xte)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.log(P), est.predict_log_proba(Xte), atol=1e-10)
    assert np.array_equal(est.classes_[est.decision_function(Xte).argmax(1)], est.predict(Xte))
    with pytest.warns(ConvergenceWarning):
        NTKLCClassifier((16,), compress=False, max_iter=2, device="numpy").fit(Xtr, ytr)


def test_float32_kept_and_binary_decision(digits):
    X, y = digits
    mask = y < 2
    Xb, yb = X[mask].astype(np.float32), y[mask]
    est = _fit_quiet(NTKLCClassifier((64,), sparsity=0.5, activation_bits=2, max_iter=20,
                                     random_state=0, device="numpy"), Xb, yb)
    d = est.decision_function(Xb)
    assert d.dtype == np.float32 and d.shape == (Xb.shape[0],)
    assert est.predict_proba(Xb).dtype == np.float32
    assert np.array_equal(est.classes_[(d > 0).astype(int)], est.predict(Xb))


@needs_torch
def test_pickle_and_backend_parity(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(256, 128), sparsity=0.9, activation_bits=2, max_iter=8,
              random_state=0)
    est_t = _fit_quiet(NTKLCClassifier(**kw), X[:1000], y[:1000])
    assert est_t.device_ != "numpy"
    est_n = _fit_quiet(NTKLCClassifier(device="numpy", **kw), X[:1000], y[:1000])
    # backend.md §8: same initialisation and batch order
    np.testing.assert_allclose(est_t.loss_curve_[4:], est_n.loss_curve_[4:], rtol=1e-4)
    assert np.mean(est_t.predict(X[1000:]) == est_n.predict(X[1000:])) >= 0.99
    loaded = pickle.loads(pickle.dumps(est_t))
    assert np.array_equal(loaded.predict(X[1000:]), est_t.predict(X[1000:]))
    np.testing.assert_array_equal(loaded.decision_function(X[1000:]),
                                  est_t.decision_function(X[1000:]))


# ---------------------------------------------------------------- §9: end-to-end, digits
@pytest.mark.slow
def test_digits_multibit_matches_dense(digits):
    """(2000, 2000, 1000), sparsity 0.9, 3 stratified 75/25 splits (ntk_lc.md §9 acceptance).

    Measured (mean test accuracy over the splits): see the report in the test output.
    """
    X, y = digits
    settings = {"dense": dict(compress=False), "b1": dict(activation_bits=1),
                "b2": dict(activation_bits=2), "b3": dict(activation_bits=3)}
    acc = {k: [] for k in settings}
    for seed in range(3):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=seed)
        for name, kw in settings.items():
            est = _fit_quiet(NTKLCClassifier(random_state=seed, device="numpy", **kw), Xtr, ytr)
            acc[name].append(est.score(Xte, yte))
    mean = {k: 100 * float(np.mean(v)) for k, v in acc.items()}
    print("digits (2000, 2000, 1000), eps 0.9, mean test accuracy %:", mean)
    assert mean["dense"] >= 97.0
    assert mean["b3"] >= mean["dense"] - 1.0
    assert mean["b2"] >= mean["dense"] - 1.5
    assert min(mean["b2"], mean["b3"]) >= mean["b1"] + 5.0


@pytest.mark.parametrize("bits, delta, ratio", [(1, 0.410885, 11.38), (2, 0.0140, 1.354),
                                                (3, 0.00088, 1.022)])
def test_fitted_theory_records(digits, bits, delta, ratio):
    """delta_, the per-layer records and kernel_ of a 3-layer ReLU net (ntk_lc.md §2.1, §9)."""
    X, y = digits
    est = _fit_quiet(NTKLCClassifier((32, 32, 16), activation_bits=bits, max_iter=1,
                                     random_state=0, device="numpy"), X[:200], y[:200])
    assert est.delta_ == pytest.approx(delta, rel=5e-3 if bits > 1 else 1e-5)
    dense = [c["dense"] for c in est.coefficients_]
    comp = [c["compressed"] for c in est.coefficients_]
    # §2.1 table, dense ReLU at v_0 = 1
    np.testing.assert_allclose(dense[2]["alpha"][:3], [0.015625, 0.010500, 0.011297], atol=1e-6)
    assert dense[2]["v_out"] == pytest.approx(0.039598, abs=1e-6)
    for ell, (d, c, layer) in enumerate(zip(dense, comp, est.layers_)):
        # equal (m1^2, m2^2) at every layer, e3 on all but the multi-bit last layer: equal
        # alpha_1..3 and beta_1..3 (alpha_4 only carries e3 to the next layer)
        np.testing.assert_allclose(c["alpha"][:3], d["alpha"][:3], rtol=1e-8)
        np.testing.assert_allclose(c["beta"], d["beta"], rtol=1e-8)
        assert layer["center"] == pytest.approx(c["m0"], rel=1e-10)
        assert layer["tau_out"] == pytest.approx(c["v_out"], rel=1e-10)
        assert layer["residual"] < 1e-10
        assert len(layer["levels"]) == (3 if bits == 1 else 2**bits)
    assert comp[2]["v_out"] / dense[2]["v_out"] == pytest.approx(ratio, rel=5e-3)
    assert est.delta_ == pytest.approx(comp[2]["v_out"] - dense[2]["v_out"], rel=1e-10)
    assert est.readout_scale_ == pytest.approx(math.sqrt(16 / comp[2]["v_out"]), rel=1e-12)
    assert est.kernel_.tau_ == pytest.approx(1.0, rel=1e-12) and est.tau_ == 1.0
    assert est.kernel_.n_layers == 3


@pytest.mark.parametrize("device", ["numpy", pytest.param("cpu", marks=needs_torch)])
def test_near_threshold_entries_recomputed_exactly(digits, device, monkeypatch):
    """A huge error bound flags many (row, neuron) pairs: their exact recomputation from
    integer counts must reproduce the all-counts path bit for bit."""
    import skrmt.neural_network._ntklc as mod

    X, y = digits
    est = _fit_quiet(NTKLCClassifier((128, 96, 64), sparsity=0.5, activation_bits=3,
                                     max_iter=1, random_state=2, device="numpy"), X[:300],
                     y[:300])
    Xn = (X[:200] - est.input_mean_) / est.input_scale_
    ops = get_ops(device)
    counts = compressed_codes(ops, Xn, est._net, DeviceCache(), method="counts")
    monkeypatch.setattr(mod, "_U64", 1e-6)
    calls = []
    real = mod._fix_near
    monkeypatch.setattr(mod, "_fix_near", lambda *a: calls.append(1) or real(*a))
    checked = compressed_codes(ops, Xn, est._net, DeviceCache())
    assert len(calls) == 2
    for a, b in zip(checked, counts):
        assert np.array_equal(a, b)


_LOAD_WITHOUT_TORCH = r"""
import pickle, sys, warnings
import numpy as np
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
sys.meta_path.insert(0, _NoTorch())
est = pickle.load(open(sys.argv[1], "rb"))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    np.save(sys.argv[3], est.decision_function(np.load(sys.argv[2])))
print(",".join(type(x.message).__name__ for x in w))
"""


@needs_torch
def test_torch_fitted_model_predicts_where_torch_is_absent(digits, tmp_path):
    import subprocess
    import sys

    X, y = digits
    est = _fit_quiet(NTKLCClassifier((64, 32), sparsity=0.5, max_iter=5, random_state=0),
                     X[:400], y[:400])
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X[400:600])
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_TORCH, str(tmp_path / "m.pkl"),
         str(tmp_path / "X.npy"), str(tmp_path / "D.npy")],
        capture_output=True, text=True, check=True,
    )
    assert "DeviceFallbackWarning" in out.stdout
    np.testing.assert_allclose(np.load(tmp_path / "D.npy"), est.decision_function(X[400:600]),
                               rtol=1e-10, atol=1e-12)
