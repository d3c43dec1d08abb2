"""
=====================================
Beyond one machine: skrmt on Dask
=====================================

The same estimators, run by Dask (``pip install 'skrmt[dask]'``), in three patterns:

1. a grid search whose (candidate, fold) fits run on the cluster's workers, through scikit-learn's
   joblib "dask" backend: the same ``best_params_`` and scores as ``n_jobs=1``;
2. a fitted transformer applied lazily to the row chunks of a ``dask.array``
   (:func:`skrmt.scale_out.transform`), equal to the in-memory ``transform``;
3. :class:`~skrmt.linear_model.RMTRidge` fitted from a ``dask.array`` by blockwise sums of
   ``F^T F`` and ``F^T y`` (:func:`skrmt.scale_out.fit_rmt_ridge`): the features ``F`` never
   exist as one array, and the coefficients equal the in-memory fit's.

The cluster here is a small ``LocalCluster`` of two worker threads listening on 127.0.0.1 only;
on a real cluster, pass the scheduler's address to ``distributed.Client`` instead. Above
``theory_samples`` rows, ``alpha="auto"`` is chosen from the spectrum of ``F^T F`` (generalised
cross-validation, plotted below), since the theory's ``n x n`` kernel has no blockwise form.
"""

# %%
import matplotlib

matplotlib.use("Agg")
import dask.array as da
import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrmt import RMTRidge, TernaryRandomFeatures
from skrmt.scale_out import fit_rmt_ridge, loopback_client, spectral_gcv, transform

# %%
# A cluster of two worker threads (``processes=True`` gives worker processes, as on a real
# cluster; a script must then guard its entry point with ``if __name__ == "__main__":``).
with loopback_client(2, threads_per_worker=1, processes=False) as client:
    # 1. grid search: every (candidate, fold) fit is a task on the cluster
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    pipe = make_pipeline(StandardScaler(), TernaryRandomFeatures(100, random_state=0),
                         RidgeClassifier(alpha=1e-2))
    grid = {"ternaryrandomfeatures__sparsity": [0.0, 0.5],
            "ternaryrandomfeatures__activation": ["relu", "erf"]}
    with joblib.parallel_config(backend="dask", scatter=[X, y]):
        search = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)
    serial = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    print("best:", search.best_params_, f"accuracy {search.best_score_:.4f}")
    print("same as n_jobs=1:", search.best_params_ == serial.best_params_ and np.allclose(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]))

    # 2. chunked transform of a dask array (rows in chunks, all columns in one)
    Xd = da.from_array(X, chunks=(100, -1))
    trf = search.best_estimator_[:-1]  # the fitted scaler + ternary features
    Z = transform(trf, Xd)
    print("chunked transform:", Z.shape, Z.chunks[0], "equal:",
          np.allclose(Z.compute(), trf.transform(X), rtol=1e-12, atol=0))

    # 3. RMTRidge from blockwise sums: a regression target on a lazily generated X
    n, d = 10_000, 20
    w = np.random.RandomState(1).randn(d) / np.sqrt(d)
    X_big = da.random.RandomState(0).standard_normal((n, d), chunks=(2_000, d))
    y_big = X_big.map_blocks(lambda xb: np.tanh(2 * xb @ w) + 0.2 * xb[:, -1],
                             drop_axis=1, dtype=float)
    model = fit_rmt_ridge(RMTRidge(256, alpha_selection="gcv", random_state=0), X_big, y_big,
                          theory_samples=300)
    X_test = np.random.RandomState(2).randn(2_000, d)
    y_test = np.tanh(2 * X_test @ w) + 0.2 * X_test[:, -1]
    mse = np.mean((model.predict(X_test) - y_test) ** 2)
    print(f"RMTRidge from {n} chunked rows: alpha_ = {model.alpha_:.3g}, train MSE "
          f"{model.train_mse_:.4f}, held-out MSE {mse:.4f} (variance of y {y_test.var():.4f})")
    print(f"theory state on {model.theory_n_samples_} subsampled rows; predicted train MSE of "
          f"that model {model.predicted_train_mse_:.4f}")

    # the selection curve, from the blockwise statistics (one 256 x 256 eigendecomposition)
    from skrmt.scale_out import ridge_statistics

    stats = ridge_statistics(model, X_big, y_big)

# %%
mu, V = np.linalg.eigh(stats["G"])
b_rot = V.T @ stats["B"]
gammas = model.alpha_ * np.logspace(-4, 4, 81)
gcv = spectral_gcv(np.maximum(mu, 0), b_rot, stats["yy"], n, gammas)
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(gammas, gcv, label="GCV of the realised features (from F^T F)")
ax.axvline(model.alpha_, color="k", ls=":", label=f"alpha_ = {model.alpha_:.2g}")
ax.set_xlabel("alpha (papers' scale)")
ax.set_ylabel("GCV mean squared error")
ax.set_title(f"RMTRidge(256) fitted from {n} chunked rows")
ax.legend()
fig.tight_layout()
plt.show()
