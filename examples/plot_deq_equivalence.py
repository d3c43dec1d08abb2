"""
============================================================
Deep equilibrium models and their not-so-deep explicit twins
============================================================

**What you learn:** that the kernel of an infinitely wide deep-equilibrium model is matched by
its random-matrix equivalent and by a two-layer explicit network, and that neither beats a
plain one-layer ReLU kernel in accuracy.

A random deep-equilibrium model (DEQ) maps ``x`` to the fixed point
``z* = phi(sigma_a A z* + sigma_b B x) / sqrt(m)`` of one weight-tied layer. As its width ``m``
grows, ``z*(x)^T z*(y)`` converges to the *implicit conjugate kernel* ``G*``, which
:class:`~skrmt.TheoryKernel` computes exactly (``model="implicit_ck"``) and through its
random-matrix equivalent ``G-bar`` (``form="equivalent"``).

Ling et al. (ICML 2024) show that a two-layer leaky-ReLU network with matched slopes has the
same ``G-bar`` as a ReLU DEQ: :class:`~skrmt.neural_network.DEQKernelClassifier` solves for
those slopes (``method="explicit"``) and compares with the exact implicit kernel
(``method="implicit"``).

1. On a Gaussian mixture, the eigenvalues of ``G*`` and ``G-bar`` coincide.
2. On the digits, random features of a finite DEQ, of the matched explicit net, of an
   unmatched two-layer ReLU net and of a plain one-layer ReLU net all approach the accuracy of
   the implicit kernel as the width grows. Honest expectation (design note ``deq.md`` §6): at
   ``sigma_a^2 = 0.2`` the DEQ kernel is a rescaled one-layer ReLU kernel to within 1%, so the
   one-layer baseline is as good; the explicit twin is what makes the DEQ cheap, not better.
"""

# %%
import matplotlib

matplotlib.use("Agg")
import math
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split

from skrmt import TheoryKernel
from skrmt.datasets import make_gmm
from skrmt.neural_network import DEQKernelClassifier

SIGMA_A2 = 0.2

# %%
# 1. Spectrum of the implicit CK and of its RMT equivalent
# ---------------------------------------------------------
# ``make_gmm`` returns rows already divided by sqrt(p); TheoryKernel divides by sqrt(p)
# itself, so the mixture is fed at the raw scale.
p = 512
X, y = make_gmm(int(0.8 * p), p, preset="mixed", random_state=0)
X_raw = X * math.sqrt(p)
G_star = TheoryKernel(model="implicit_ck", sigma_a2=SIGMA_A2).fit_transform(X_raw)
G_bar = TheoryKernel(model="implicit_ck", sigma_a2=SIGMA_A2, form="equivalent").fit_transform(X_raw)
eig_star, eig_bar = np.linalg.eigvalsh(G_star), np.linalg.eigvalsh(G_bar)
err = np.linalg.norm(G_star - G_bar, 2) / np.linalg.norm(G_star, 2)
print(f"GMM p = {p}: ||G* - G-bar|| / ||G*|| = {err:.4f} (operator norm)")

fig, ax0 = plt.subplots(figsize=(7, 4))
bins = np.linspace(0, eig_star[-3] * 1.1, 60)
ax0.hist(eig_star, bins=bins, alpha=0.6, label="implicit CK $G^*$ (exact)")
ax0.hist(eig_bar, bins=bins, histtype="step", lw=2, label=r"RMT equivalent $\bar G$")
ax0.set_xlabel("eigenvalue of the Gram matrix (bulk; the two spikes lie to the right)")
ax0.set_ylabel("number of eigenvalues per bin")
ax0.set_title(f"Gaussian mixture, p = {p}, n = {len(X)}: relative error {err:.3f}")
ax0.legend()
fig.tight_layout()
print("top eigenvalues, G*:   ", np.round(eig_star[-3:], 3))
print("top eigenvalues, G-bar:", np.round(eig_bar[-3:], 3))

# %%
# 2. Accuracy vs width on the digits
# ----------------------------------
# Every model uses the same preprocessing (centre, unit mean squared norm) and a ridge
# readout with a relative penalty ``alpha ||F||_F^2 / n``. ``alpha = 1e-2`` avoids the
# interpolation peak of the ridge readout at width ~ n (deq.md pitfall 5).
Xd, yd = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(Xd, yd, train_size=1000, stratify=yd, random_state=0)
mu = Xtr.mean(axis=0)
scale = math.sqrt(((Xtr - mu) ** 2).sum(axis=1).mean())
Atr, Ate = (Xtr - mu) / scale, (Xte - mu) / scale
ALPHA = 1e-2

implicit = DEQKernelClassifier(sigma_a2=SIGMA_A2, alpha=ALPHA).fit(Xtr, ytr)
acc_implicit = implicit.score(Xte, yte)
c = implicit.kernel_.coefficients_[0]["m0"]  # centring shift of the DEQ's activation
print(f"implicit DEQ kernel: accuracy {acc_implicit:.4f}, {implicit.n_iter_} Newton step(s)")


def ridge_accuracy(F_train, F_test):
    lam = ALPHA * float(np.sum(F_train**2)) / len(F_train)
    return RidgeClassifier(alpha=lam).fit(F_train, ytr).score(F_test, yte)


def deq_features(A, B_in, W_in):
    """Equilibrium features of one width-m DEQ (Picard iteration, centred ReLU)."""
    m = W_in.shape[0]
    drive = math.sqrt(1 - SIGMA_A2) * (A @ B_in.T)
    Z = np.zeros((len(A), m))
    for _ in range(100):
        Z_new = (np.maximum(math.sqrt(SIGMA_A2) * Z @ W_in.T + drive, 0) - c) / math.sqrt(m)
        done = np.linalg.norm(Z_new - Z) <= 1e-7 * np.linalg.norm(Z_new)
        Z = Z_new
        if done:
            break
    return Z


def relu_net(A, weights):
    """Random features of a plain (unmatched) centred ReLU net, one or two layers."""
    H = A
    for W in weights:
        T = H @ W.T
        scale_in = math.sqrt(np.mean(np.sum(H**2, axis=1)))
        H = (np.maximum(T, 0) - scale_in / math.sqrt(2 * math.pi)) / math.sqrt(W.shape[0])
    return H


# SKRMT_EXAMPLES_FULL=1 adds widths 2048 and 4096 (slower)
widths = [64, 128, 256, 512, 1024]
if os.environ.get("SKRMT_EXAMPLES_FULL") == "1":
    widths += [2048, 4096]
curves = {"finite-width DEQ": [], "matched 2-layer leaky ReLU (explicit twin)": [],
          "unmatched 2-layer ReLU": [], "1-layer ReLU": []}
rng = np.random.RandomState(0)
for m in widths:
    A_w, B_w = rng.standard_normal((m, m)), rng.standard_normal((m, Atr.shape[1]))
    Z = deq_features(np.vstack([Atr, Ate]), B_w, A_w)
    curves["finite-width DEQ"].append(ridge_accuracy(Z[:1000], Z[1000:]))
    twin = DEQKernelClassifier(sigma_a2=SIGMA_A2, method="explicit", n_components=m,
                               alpha=ALPHA, random_state=0).fit(Xtr, ytr)
    curves["matched 2-layer leaky ReLU (explicit twin)"].append(twin.score(Xte, yte))
    W1, W2 = rng.standard_normal((m, Atr.shape[1])), rng.standard_normal((m, m))
    F = relu_net(np.vstack([Atr, Ate]), [W1, W2])
    curves["unmatched 2-layer ReLU"].append(ridge_accuracy(F[:1000], F[1000:]))
    F = relu_net(np.vstack([Atr, Ate]), [W1])
    curves["1-layer ReLU"].append(ridge_accuracy(F[:1000], F[1000:]))
    print(f"width {m:5d}: " + ", ".join(f"{k.split(' (')[0]} {v[-1]:.4f}"
                                         for k, v in curves.items()))

fig, ax1 = plt.subplots(figsize=(6.5, 4))
for (label, acc), marker in zip(curves.items(), "osv^"):
    ax1.plot(widths, acc, marker=marker, label=label)
ax1.axhline(acc_implicit, color="k", ls="--", label="implicit DEQ kernel (exact)")
ax1.set_xscale("log", base=2)
ax1.set_xlabel("width m (random features, log scale)")
ax1.set_ylabel("test accuracy (fraction; digits, 1000 train)")
ax1.set_title("random features vs the implicit kernel")
ax1.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# The matched slopes: branch 1 of deq.md §4.3 (a2 = 1), independent of the data scale.
for i, layer in enumerate(twin.activation_params_, 1):
    print(f"layer {i}: slopes a = {layer['a']:.5f} (t >= 0), b = {layer['b']:.5f} (t < 0), "
          f"shift {layer['shift']:.4f}")
