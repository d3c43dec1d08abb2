"""
=========================================================================
Choosing the ridge of random-features regression without cross-validation
=========================================================================

**What you learn:** how ``RMTRidge`` chooses its ridge from the training data alone, and how
close that choice lands to the ridge that is best on held-out data.

``RMTRidge(alpha="auto")`` chooses the ridge of a random-features regression from the training
data alone: random matrix theory gives a label-free leave-one-out estimate of the error
(RMT-LOO) for every ridge, from one eigendecomposition of the limiting kernel, and the fit
minimises it. No fold is refitted and no random draw is averaged. What you learn here:

* the predicted test and train MSE over the ridge (``risk_path``) match simulations, mean and
  spread over random draws of the weights, at three widths;
* RMT-LOO lands on the ridge that is best on held-out data; RMT-GCV
  (``alpha_selection="gcv"``), cheaper, drifts to too small ridges on real data, where the
  leverage of the training points is far from uniform, and loses some test error;
* ``predict_risk`` predicts the test error of the fitted model before seeing its predictions.

Data: two Fashion-MNIST classes that are hard to tell apart (T-shirt/top vs Shirt, +-1 target)
when the data set is installed (``apt-get install dataset-fashion-mnist``), else scikit-learn's
digits, even vs odd; 512 training images, 1000 held out.
"""

# %%
# Data
# ----
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skrmt.datasets import fashion_mnist_available, load_fashion_mnist
from skrmt.linear_model import RMTRidge

n = 512
rng = np.random.RandomState(0)
if fashion_mnist_available():
    X_a, c_a, X_b, c_b = load_fashion_mnist(split="both", dtype=np.float64)

    def two_classes(X, c):
        keep = (c == 0) | (c == 6)
        return X[keep], np.where(c[keep] == 0, 1.0, -1.0)

    X_a, y_a = two_classes(X_a, c_a)
    X_b, y_b = two_classes(X_b, c_b)
    train = rng.permutation(len(y_a))[:n]
    X_train, y_train = X_a[train], y_a[train]
    X_test, y_test = X_b[:1000], y_b[:1000]  # official test images of the two classes
    data = "Fashion-MNIST, T-shirt/top (+1) vs Shirt (-1)"
else:
    X, digit = load_digits(return_X_y=True)
    y = np.where(digit % 2 == 0, 1.0, -1.0)
    perm = rng.permutation(len(y))
    X_train, y_train = X[perm[:n]], y[perm[:n]]
    X_test, y_test = X[perm[n:n + 1000]], y[perm[n:n + 1000]]
    data = "digits, even (+1) vs odd (-1)"
p = X_train.shape[1]
print(f"{data}: {n} training and {len(y_test)} test images, p = {p}")

# %%
# One fit, every ridge and width
# ------------------------------
# ``fit`` eigendecomposes the limiting kernel of the training set and minimises RMT-LOO over
# the ridge (a log grid, then a bounded Brent step); the same eigendecomposition then gives
# ``risk_path`` at any width. The criteria need no test data; the predicted test MSE does.
widths = (n // 2, 2 * n, 8 * n)
tic = time.perf_counter()
model = RMTRidge(n_components=2 * n, alpha="auto", random_state=0).fit(X_train, y_train)
print(f"RMTRidge(n_components={2 * n}, alpha='auto').fit: {time.perf_counter() - tic:.2f} s, "
      f"alpha_ = {model.alpha_:.3g}")

alphas = np.logspace(-6, 3, 181)  # 0.05 decade
tic = time.perf_counter()
paths = {N: model.risk_path(alphas, X_test, y_test, n_components=N) for N in widths}
print(f"risk_path, {len(alphas)} ridges x {len(widths)} widths: "
      f"{time.perf_counter() - tic:.2f} s")

chosen = {}
for N, path in paths.items():
    chosen[N] = {
        "RMT-LOO": alphas[np.nanargmin(path["loo_mse"])],
        "RMT-GCV": alphas[np.nanargmin(path["gcv_mse"])],
        "best on test (theory)": alphas[np.argmin(path["test_mse"])],
    }
print(f"alpha='auto' at N = {2 * n}: {model.alpha_:.3g}; RMT-LOO argmin on the 0.05-decade grid: "
      f"{chosen[2 * n]['RMT-LOO']:.3g}")

# %%
# Simulation over draws of W
# --------------------------
# One draw: ``F = relu(X_std W^T)`` with ``W`` standard Gaussian and the data standardised as
# ``RMTRidge`` does (``x_mean_``, ``tau_``); readout ``Ridge(alpha=n * gamma,
# fit_intercept=False)`` on ``F`` and the centred targets, solved in the smaller of its primal
# and dual forms so that one Gram matrix per draw serves every ridge (``RMTRidge.coef_`` is this
# readout for the estimator's own draw).
scale = 1.0 / np.sqrt(model.tau_)
Xs_train = (X_train - model.x_mean_) * scale
Xs_test = (X_test - model.x_mean_) * scale
y_mean = y_train.mean()
yc_train, yc_test = y_train - y_mean, y_test - y_mean
N_DRAWS = 5


def simulate(N, gammas):
    """Train and test MSE over draws of W, shape (N_DRAWS, len(gammas), 2)."""
    out = np.empty((N_DRAWS, len(gammas), 2))
    for d in range(N_DRAWS):
        W = np.random.default_rng(100 + d).standard_normal((N, p))
        F = np.maximum(Xs_train @ W.T, 0.0)
        F_test = np.maximum(Xs_test @ W.T, 0.0)
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


sim_alphas = np.logspace(-3, 2, 6)
tic = time.perf_counter()
sims = {N: simulate(N, [*sim_alphas, *chosen[N].values()]) for N in widths}
print(f"simulation: {len(widths)} widths x {N_DRAWS} draws in {time.perf_counter() - tic:.1f} s")

# %%
# Test error at each choice of the ridge
# --------------------------------------
# Predicted (theory) and simulated (mean over the same draws for every ridge) test MSE.
names = list(chosen[widths[0]])
print(f"{'N':>6} {'criterion':<22} {'gamma':>8} {'theory':>8} {'simulated':>10} {'vs best':>8}")
excess = {name: [] for name in names}
for N in widths:
    path, res = paths[N], sims[N][:, len(sim_alphas):, 1]  # (draws, choices)
    best = res[:, names.index("best on test (theory)")].mean()
    for k, name in enumerate(names):
        gamma = chosen[N][name]
        theory = np.interp(np.log(gamma), np.log(alphas), path["test_mse"])
        excess[name].append(100 * (res[:, k].mean() / best - 1))
        print(f"{N:>6} {name:<22} {gamma:8.3g} {theory:8.4f} {res[:, k].mean():10.4f} "
              f"{excess[name][-1]:+7.2f}%")

risk = model.predict_risk(X_test, y_test)
realised = np.mean((model.predict(X_test) - y_test) ** 2)
print(f"fitted model (N = {2 * n}, alpha_ = {model.alpha_:.3g}): predict_risk test MSE "
      f"{risk['test_mse']:.4f} (bias {risk['bias']:.4f} + variance {risk['variance']:.4f}), "
      f"realised on its one draw {realised:.4f}")

# %%
# Theory vs simulation along the ridge
# ------------------------------------
styles = {"RMT-LOO": ("k", ":"), "RMT-GCV": ("C3", "--"), "best on test (theory)": ("C0", ":")}
fig, axes = plt.subplots(2, len(widths), figsize=(16, 7.5), sharex=True)
for col, N in enumerate(widths):
    path, res = paths[N], sims[N][:, : len(sim_alphas), :]
    top, bottom = axes[0, col], axes[1, col]
    top.plot(alphas, path["test_mse"], color="C0", label="theory: test MSE")
    top.plot(alphas, path["loo_mse"], color="k", lw=1, label="RMT-LOO criterion")
    top.plot(alphas, path["gcv_mse"], color="C3", lw=1, label="RMT-GCV criterion")
    top.errorbar(sim_alphas, res[:, :, 1].mean(axis=0), yerr=res[:, :, 1].std(axis=0),
                 fmt="o", color="C0", mfc="white", capsize=3,
                 label=f"simulation: test (mean ± sd, {N_DRAWS} draws)")
    bottom.plot(alphas, path["train_mse"], color="C1", label="theory: train MSE")
    bottom.errorbar(sim_alphas, res[:, :, 0].mean(axis=0), yerr=res[:, :, 0].std(axis=0),
                    fmt="s", color="C1", mfc="white", capsize=3,
                    label=f"simulation: train (mean ± sd, {N_DRAWS} draws)")
    for name, gamma in chosen[N].items():
        color, ls = styles[name]
        label = f"{name} choice" if name.startswith("RMT") else "best ridge on test (theory)"
        top.axvline(gamma, color=color, ls=ls, lw=1.2, label=label)
        bottom.axvline(gamma, color=color, ls=ls, lw=1.2)
    low = min(path["test_mse"].min(), path["loo_mse"].min(), path["gcv_mse"].min())
    top.set_ylim(0.9 * low, 1.6 * path["test_mse"].min())
    top.set_title(f"N = {N} = {N / n:g} n")
    for ax in (top, bottom):
        ax.set_xscale("log")
    bottom.set_yscale("log")
    bottom.set_xlabel(r"ridge $\gamma$ (RMTRidge alpha)")
axes[0, 0].set_ylabel("test MSE, criteria")
axes[1, 0].set_ylabel("train MSE")
axes[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
axes[1, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
fig.suptitle(f"{data}, n = {n}, ReLU random features")
fig.tight_layout()

# %%
# What the choice costs
# ---------------------
# Simulated test MSE at the RMT-LOO and RMT-GCV ridges, relative to the simulated test MSE at the
# ridge the theory predicts best for this test set (the same draws of W for every ridge, so the
# differences are not blurred by the spread over draws).
fig, ax = plt.subplots(figsize=(6, 4))
pos = np.arange(len(widths))
for k, name in enumerate(("RMT-LOO", "RMT-GCV")):
    ax.bar(pos + (k - 0.5) * 0.35, excess[name], width=0.35, color=styles[name][0],
           label=f"{name} (alpha_selection=\"{name[4:].lower()}\")")
ax.axhline(0, color="grey", lw=0.8)
ax.set_xticks(pos, [f"N = {N / n:g} n" for N in widths])
ax.set_xlabel("width N (random features; n = training samples)")
ax.set_ylabel("test MSE above the best ridge (%)")
ax.set_title("Cost of the label-free ridge choice (simulation)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
