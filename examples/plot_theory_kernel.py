"""
====================================================================
TheoryKernel: the limit, Monte Carlo features and the RMT equivalent
====================================================================

**What you learn:** how fast finite random features approach the exact infinite-width kernel
(as ``1/sqrt(N)``), how fast the random-matrix equivalent approaches it (as the dimension
``p`` grows), and how to use both kernels inside scikit-learn.

``TheoryKernel(form="limit")`` is the exact infinite-width conjugate kernel of a random
one-layer network; finite random features converge to it as ``1/sqrt(N)``.
``TheoryKernel(form="equivalent")`` is the random-matrix deterministic equivalent of Liao &
Couillet (2018), built only from the Gaussian moments ``(d0, d1, d2)``: it approaches the limit
in operator norm as the dimension ``p`` grows. Both are scikit-learn objects: the last cell
uses them inside ``SVC``.
"""

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skrmt import TheoryKernel
from skrmt._theory._activations import resolve_activation
from skrmt.datasets import make_gmm

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)[:300]
y = y[:300]

# %%
# Left: Gaussian random features converge to the limit on digits. Right: the RMT equivalent
# converges to the limit on a Gaussian mixture as the dimension p grows (n = p).
rng = np.random.RandomState(0)
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
for name in ["relu", "erf", "tanh", "gelu"]:
    K = TheoryKernel(activation=name).fit_transform(X)
    act = resolve_activation(name)
    errs, widths = [], [100, 1000, 10000, 50000]
    for N in widths:
        W = rng.standard_normal((X.shape[1], N)) / np.sqrt(X.shape[1])
        Z = act.fn(X @ W) / np.sqrt(N)
        errs.append(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K))
    ax[0].loglog(widths, errs, "o-", label=name)
ax[0].set_xlabel("number of random features N")
ax[0].set_ylabel("relative Frobenius error vs limit (log scale)")
ax[0].set_title("digits: random features -> TheoryKernel(limit)")
ax[0].legend()

# Equivalent vs limit on a Gaussian mixture, as p grows (n = p).
# SKRMT_EXAMPLES_FULL=1 adds p = 2048 (slower).
ps = [64, 128, 256, 512, 1024] + ([2048] if os.environ.get("SKRMT_EXAMPLES_FULL") == "1" else [])
for name in ["relu", "erf", "tanh"]:
    errs = []
    for p in ps:
        Xg, _ = make_gmm(p, p, preset="mixed", random_state=0)
        Xg *= np.sqrt(p)  # skrmt scales inputs by 1/sqrt(p) itself
        K_lim = TheoryKernel(activation=name).fit_transform(Xg)
        K_eq = TheoryKernel(activation=name, form="equivalent").fit_transform(Xg)
        errs.append(np.linalg.norm(K_eq - K_lim, 2) / np.linalg.norm(K_lim, 2))
    ax[1].loglog(ps, errs, "o-", label=name)
ax[1].loglog(ps, errs[0] * np.sqrt(ps[0] / np.array(ps)), "k--", label="1/sqrt(p)")
ax[1].set_xlabel("dimension p (n = p)")
ax[1].set_ylabel("||K_eq - K_lim|| / ||K_lim|| (operator norm, log)")
ax[1].set_title("GMM: RMT equivalent -> limit")
ax[1].legend()
fig.tight_layout()

# %%
# The kernels in scikit-learn: a precomputed pipeline and a callable kernel
for name in ["relu", "erf", "tanh"]:
    pipe = make_pipeline(TheoryKernel(activation=name), SVC(kernel="precomputed"))
    score = cross_val_score(pipe, X, y, cv=3).mean()
    print(f"SVC on TheoryKernel({name!r}): 3-fold accuracy {score:.3f}")
print("callable:", SVC(kernel=TheoryKernel(activation="erf")).fit(X, y).score(X, y))
plt.show()
