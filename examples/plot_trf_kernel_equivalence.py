"""
============================================================
Ternary random features reproduce the ReLU kernel's spectrum
============================================================

**What you learn:** that sparse ternary features reproduce the spectrum of the ReLU kernel
once the predicted diagonal shift ``Delta`` is removed, and that their Monte Carlo error falls
like ``1/sqrt(N)`` whatever the sparsity.

On Gaussian-mixture data (the theory's own model), the Gram matrix of sparse ternary random
features, minus the predicted diagonal shift ``Delta``, has the same spectrum as the exact
ReLU random-feature kernel: same bulk, same isolated spikes. Here we compare

* the exact ReLU kernel ``K_relu`` (``TheoryKernel``),
* the exact kernel of the matched ternary map, ``K_trf - Delta I``,
* the Monte Carlo Gram ``Z Z^T - Delta I`` of ``TernaryRandomFeatures`` at sparsity 0.9,

all centred by ``P = I - 11^T/n``, and the relative error of ``Z Z^T`` as ``N`` grows.
"""

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skrmt import TernaryRandomFeatures, TheoryKernel
from skrmt._theory._ternary import match_ternary
from skrmt.datasets import make_gmm

# SKRMT_EXAMPLES_FULL=1: a larger mixture, closer to the high-dimensional limit (slower)
FULL = os.environ.get("SKRMT_EXAMPLES_FULL", "0") == "1"
p, n = (512, 1024) if FULL else (256, 512)
X, y = make_gmm(n, p, preset="pm2", random_state=0)
X = X * np.sqrt(p)  # make_gmm returns theory-scaled rows; skrmt divides by sqrt(p) itself

trf = TernaryRandomFeatures(8192, sparsity=0.9, random_state=0).fit(X)
delta = trf.coefficients_["delta"]
K_relu = trf.kernel_(X)
match = match_ternary("relu", trf.tau_)
K_trf = TheoryKernel(activation=match.step_function()).fit_transform(X)
Z = trf.transform(X)
P = np.eye(n) - 1.0 / n


def spectrum(K):
    return np.linalg.eigvalsh(P @ K @ P)


# %%
# Eigenvalue histograms (the top spikes carry the class information)
# (finite N spreads the bulk like a Marchenko-Pastur law with ratio n/N; the exact kernels
# are the N -> infinity limit)
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
spectra = {
    "ReLU kernel (exact)": spectrum(K_relu),
    "ternary kernel - Delta I (exact)": spectrum(K_trf - delta * np.eye(n)),
    "TRF features, sparsity 0.9, N = 8192": spectrum(Z @ Z.T - delta * np.eye(n)),
}
top = max(np.quantile(ev, 0.99) for ev in spectra.values())
bins = np.linspace(0, top, 60)
for label, ev in spectra.items():
    ax[0].hist(ev, bins=bins, histtype="step", density=True, label=label)
    ax[1].plot(ev[-6:][::-1], "o-", label=label)
ax[0].set_xlabel("eigenvalue of P K P (bulk)")
ax[0].set_ylabel("density")
ax[0].legend(fontsize=8)
ax[1].set_xlabel("rank (0 = largest)")
ax[1].set_ylabel("top eigenvalues of P K P")
ax[1].legend(fontsize=8)
fig.suptitle(f"GMM, p = {p}, n = {n}, tau = {trf.tau_:.3f}, Delta = {delta:.4f}")
fig.tight_layout()

# %%
# Monte Carlo error of Z Z^T against the target Gram falls like 1/sqrt(N)
widths = [256, 1024, 4096, 16384]
errors = {}
for sparsity in (0.0, 0.9):
    errs = []
    for N in widths:
        est = TernaryRandomFeatures(N, sparsity=sparsity, random_state=1).fit(X)
        Zn = est.transform(X)
        errs.append(np.linalg.norm(Zn @ Zn.T - delta * np.eye(n) - K_relu) / np.linalg.norm(K_relu))
    errors[sparsity] = errs
    print(f"sparsity {sparsity}: " + "  ".join(f"N={N}: {e:.4f}" for N, e in zip(widths, errs)))

fig2, ax2 = plt.subplots(figsize=(5, 4))
for sparsity, errs in errors.items():
    ax2.loglog(widths, errs, "o-", label=f"sparsity {sparsity}")
ax2.loglog(widths, errors[0.0][0] * np.sqrt(widths[0] / np.array(widths)), "k--",
           label="1/sqrt(N)")
ax2.set_xlabel("number of features N (log scale)")
ax2.set_ylabel("||Z Z^T - Delta I - K_relu||_F / ||K_relu||_F")
ax2.set_title("Monte Carlo error of ternary features")
ax2.legend()
fig2.tight_layout()
plt.show()
