"""
================================================================
Double descent of random-features ridge, predicted by the theory
================================================================

**What you learn:** where the double-descent peak of random-features ridge comes from, that
the theory predicts the whole test and train error curves before any feature is drawn, and
that a tuned ridge removes the peak.

A ridge readout on ``N`` random ReLU features of ``n`` training points has a test error that
explodes at ``N = n`` when the ridge is (nearly) zero: the model can just interpolate its
training data there, with a wildly unstable readout. This is the *double descent* curve.
``RMTRidge`` predicts the whole curve, test and train error, for every width and every ridge,
from **one** eigendecomposition of the limiting kernel; none of it depends on the random draw
of the features. What you learn here:

* ``risk_path(alphas, X_test, y_test, n_components=widths)`` gives the deterministic
  equivalents of the train and test MSE over a whole ridge x width grid;
* they match simulations (mean and spread over random draws of the weights ``W``);
* at a near-zero ridge the test error peaks at ``N = n`` and the train error vanishes for
  ``N >= n``; the ridge chosen by the label-free RMT leave-one-out criterion (what
  ``alpha="auto"`` minimises) removes the peak, and the test error then decreases with ``N``.

Data: scikit-learn's digits, even vs odd digits as a +-1 regression target, 1024 training and
773 test images.
"""

# %%
# Data and the one theory fit
# ---------------------------
# ``fit`` computes the limiting kernel of the training set, its eigendecomposition and (with
# ``alpha="auto"``) the ridge; it also draws one ``W`` and fits the readout, which is the model
# ``predict`` uses. Every theory curve below reuses the stored eigendecomposition.
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import Ridge

from skrmt.linear_model import RMTRidge

X, digit = load_digits(return_X_y=True)
y = np.where(digit % 2 == 0, 1.0, -1.0)
perm = np.random.RandomState(0).permutation(len(y))
n = 1024
X_train, y_train = X[perm[:n]], y[perm[:n]]
X_test, y_test = X[perm[n:]], y[perm[n:]]
p = X.shape[1]

tic = time.perf_counter()
model = RMTRidge(n_components=2 * n, random_state=0).fit(X_train, y_train)
print(f"fit (kernel, eigendecomposition, alpha='auto', one draw of W): "
      f"{time.perf_counter() - tic:.2f} s; alpha_ = {model.alpha_:.3g}, "
      f"rank of the kernel = {model.rank_}")

# %%
# Theory: the whole width x ridge grid from the eigendecomposition already computed
# ---------------------------------------------------------------------------------
# The width ``N`` enters the deterministic equivalents only as a scalar, so a dense grid of
# widths costs almost nothing. ``RIDGELESS`` is small enough to behave like the
# minimum-norm interpolator (``alpha=0``) and large enough to keep every solve well posed.
RIDGELESS = 1e-7
ratios = np.linspace(0.1, 4.0, 391)  # N/n, step 0.01: contains N = n exactly
widths = np.round(ratios * n).astype(int)
alphas = np.logspace(-6, 2, 81)
coarse = np.round(np.linspace(0.1, 4.0, 40) * n).astype(int)

tic = time.perf_counter()
peak_path = model.risk_path([RIDGELESS], X_test, y_test, n_components=widths)
tuned_path = model.risk_path(alphas, X_test, y_test, n_components=coarse)
elapsed = time.perf_counter() - tic
n_points = widths.size + alphas.size * coarse.size
print(f"theory: {n_points} (alpha, N) points with test/train MSE and RMT-LOO in {elapsed:.2f} s "
      "(no new eigendecomposition)")

# alpha="auto" minimises the RMT leave-one-out criterion; it needs no test labels.
best = np.nanargmin(tuned_path["loo_mse"], axis=1)
rows = np.arange(coarse.size)
tuned_test = tuned_path["test_mse"][rows, best]
tuned_train = tuned_path["train_mse"][rows, best]
print("N/n   test MSE at alpha = 1e-7   at the RMT-LOO alpha   (that alpha)")
for j in np.flatnonzero(np.isin(coarse, np.round(np.array([0.2, 0.5, 1.0, 2.0, 4.0]) * n))):
    i = np.argmin(abs(widths - coarse[j]))
    print(f"{coarse[j] / n:4.2f}   {peak_path['test_mse'][i, 0]:22.3f}   {tuned_test[j]:20.3f}   "
          f"({alphas[best[j]]:.3g})")

# %%
# Simulation: fit the random-features ridge itself over several draws of W
# ------------------------------------------------------------------------
# One draw is ``F = relu(X_std W^T)`` with ``W`` standard Gaussian and ``X_std`` the data
# standardised exactly as ``RMTRidge`` does (``x_mean_``, ``tau_``); the readout is
# ``Ridge(alpha=n * gamma, fit_intercept=False)`` on ``F`` and the centred targets. First
# check that on the estimator's own draw this gives its ``coef_`` back.
scale = 1.0 / np.sqrt(model.tau_)
Xs_train = (X_train - model.x_mean_) * scale
Xs_test = (X_test - model.x_mean_) * scale
y_mean = y_train.mean()
yc_train, yc_test = y_train - y_mean, y_test - y_mean

F = np.maximum(Xs_train @ model.components_.T, 0.0)
ref = Ridge(alpha=n * model.alpha_, fit_intercept=False).fit(F, yc_train).coef_
gap = np.max(abs(ref - model.coef_)) / np.max(abs(model.coef_))
print(f"RMTRidge.coef_ vs scikit-learn Ridge on the same features: relative gap {gap:.1e}")


def simulate(N, gammas, n_draws=5):
    """Train and test MSE over draws of W, shape (n_draws, len(gammas), 2)."""
    out = np.empty((n_draws, len(gammas), 2))
    for d in range(n_draws):
        W = np.random.default_rng(100 + d).standard_normal((N, p))
        F = np.maximum(Xs_train @ W.T, 0.0)
        F_test = np.maximum(Xs_test @ W.T, 0.0)
        # The same Ridge, solved in the smaller of its primal (N x N) and dual (n x n) forms
        # so that one Gram matrix per draw serves every ridge.
        primal = N < n
        G = F.T @ F if primal else F @ F.T
        rhs = F.T @ yc_train if primal else yc_train
        eye = np.eye(G.shape[0])
        for g, gamma in enumerate(gammas):
            sol = np.linalg.solve(G + n * gamma * eye, rhs)
            beta = sol if primal else F.T @ sol
            out[d, g, 0] = np.mean((yc_train - F @ beta) ** 2)
            out[d, g, 1] = np.mean((yc_test - F_test @ beta) ** 2)
    return out


# Widths away from the peak: within 10 % of N = n one draw deviates wildly from the average
# the theory describes (at N = n the spread over draws is as large as the mean).
sim_ratios = np.array([0.25, 0.5, 0.75, 1.5, 2.0, 3.0, 4.0])
sim_widths = np.round(sim_ratios * n).astype(int)
# the RMT-LOO ridge at exactly these widths, and the ridge path's simulation ridges
at_sim = model.risk_path(alphas, n_components=sim_widths)
sim_tuned = alphas[np.nanargmin(at_sim["loo_mse"], axis=1)]
path_ridges = {n // 2: np.logspace(-5, 1, 7), 2 * n: np.logspace(-5, 1, 7)}

tic = time.perf_counter()
sims = {}
for N, tuned in zip(sim_widths, sim_tuned):
    gammas = [RIDGELESS, tuned, *path_ridges.get(N, [])]
    sims[N] = simulate(N, gammas)
print(f"simulation: {len(sim_widths)} widths x 5 draws in {time.perf_counter() - tic:.1f} s")
at_sim_test = model.risk_path(alphas, X_test, y_test, n_components=sim_widths)["test_mse"]
print("N/n   gamma     test MSE: theory   simulation (mean +- sd)")
for k, (r, N) in enumerate(zip(sim_ratios, sim_widths)):
    for g, gamma in enumerate((RIDGELESS, sim_tuned[k])):
        theory = (peak_path["test_mse"][np.argmin(abs(widths - N)), 0] if g == 0
                  else at_sim_test[k, np.argmin(abs(alphas - gamma))])
        sim = sims[N][:, g, 1]
        print(f"{r:4.2f}  {gamma:8.2g}  {theory:16.4f}   {sim.mean():.4f} +- {sim.std():.4f}")

# %%
# Double descent in the width
# ---------------------------
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
for ax, col, what in ((axes[0], 1, "test"), (axes[1], 0, "train")):
    key = f"{what}_mse"
    ax.plot(ratios, peak_path[key][:, 0], color="C3", lw=1.5,
            label=rf"theory, $\gamma$ = {RIDGELESS:g} (near ridgeless)")
    ax.plot(coarse / n, tuned_path[key][rows, best], color="C0", lw=1.5,
            label=r"theory, $\gamma$ chosen by RMT-LOO for each $N$")
    for g, color, label in ((0, "C3", r"simulation, $\gamma$ = 1e-7"),
                            (1, "C0", r"simulation, RMT-LOO $\gamma$")):
        vals = np.array([sims[N][:, g, col] for N in sim_widths])  # (widths, draws)
        ax.errorbar(sim_ratios, vals.mean(axis=1), yerr=vals.std(axis=1), fmt="o",
                    color=color, mfc="white", capsize=3, label=f"{label} (mean ± sd, 5 draws)")
    ax.axvline(1.0, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel(r"width ratio $N/n$ (random features / training samples)")
    ax.set_ylabel(f"{what} MSE")
axes[0].set_title("test error: peak at N = n, removed by a tuned ridge")
axes[1].set_title("train error: zero for N ≥ n without a ridge")
axes[0].annotate("N = n", (1.0, 0.97), xycoords=axes[0].get_xaxis_transform(), xytext=(4, 0),
                 textcoords="offset points", color="grey", va="top")
axes[1].legend(fontsize=8, loc="lower left")
fig.suptitle(f"Digits even vs odd, n = {n}, ReLU random features: RMT theory vs simulation")
fig.tight_layout()

# %%
# The ridge path on either side of the peak
# -----------------------------------------
# Same theory model: the curves for ``N = n/2`` and ``N = 2n`` come from ``risk_path`` over the
# ridge grid. RMT-LOO is computed from the training data alone (no test labels, no random
# draw); it tracks the test curve closely here, but on other data it can sit below it, so use
# it to choose the ridge and ``risk_path``/``predict_risk`` on held-out data to report errors.
fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
for col, N in enumerate((n // 2, 2 * n)):
    path = model.risk_path(alphas, X_test, y_test, n_components=N)
    gammas = path_ridges[N]
    res = sims[N][:, 2:, :]  # (draws, ridges, [train, test])
    chosen = alphas[np.nanargmin(path["loo_mse"])]
    oracle = alphas[np.argmin(path["test_mse"])]
    top, bottom = axes[0, col], axes[1, col]
    top.plot(alphas, path["test_mse"], color="C0", label="theory: test MSE")
    top.plot(alphas, path["loo_mse"], color="C2", ls="--",
             label="RMT-LOO criterion (training data only)")
    top.errorbar(gammas, res[:, :, 1].mean(axis=0), yerr=res[:, :, 1].std(axis=0), fmt="o",
                 color="C0", mfc="white", capsize=3, label="simulation: test (mean ± sd, 5 draws)")
    bottom.plot(alphas, path["train_mse"], color="C1", label="theory: train MSE")
    bottom.errorbar(gammas, res[:, :, 0].mean(axis=0), yerr=res[:, :, 0].std(axis=0), fmt="s",
                    color="C1", mfc="white", capsize=3,
                    label="simulation: train (mean ± sd, 5 draws)")
    for ax in (top, bottom):
        ax.axvline(chosen, color="k", ls=":", lw=1)
        ax.set_xscale("log")
    top.axvline(oracle, color="C0", ls=":", lw=1)
    top.annotate(rf"RMT-LOO $\gamma$ = {chosen:.2g}" "\n"
                 rf"(best for the test set: {oracle:.2g})", (chosen, 0.97),
                 xycoords=top.get_xaxis_transform(), xytext=(4, 0), textcoords="offset points",
                 fontsize=8, va="top")
    top.set_ylim(0, 1.05 * max(path["test_mse"].max(), res[:, :, 1].mean(axis=0).max()))
    bottom.set_yscale("log")
    top.set_title(f"N = {N} = {N / n:g} n")
    bottom.set_xlabel(r"ridge $\gamma$ (RMTRidge alpha)")
axes[0, 0].set_ylabel("test MSE (and RMT-LOO)")
axes[1, 0].set_ylabel("train MSE")
axes[0, 0].legend(fontsize=8, loc="upper left")
axes[1, 0].legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()
