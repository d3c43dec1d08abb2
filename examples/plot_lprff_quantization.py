"""
====================================================
Low-precision random Fourier features: bits vs error
====================================================

**What you learn:** how many bits a random Fourier feature needs: the quantization noise
falls as ``4^-b``, and a few bits already approximate the Gaussian kernel as well as float
features do.

``LowPrecisionRFF`` quantizes random Fourier features to ``n_bits`` with unbiased stochastic
rounding (Zhang et al., AISTATS 2019). The quantization noise is unbiased, so cross-Grams stay
unbiased while the training Gram gains a diagonal (an implicit ridge) of size about
``2 c_b / (2^b - 1)^2``. This example measures that noise and the Gram approximation error
against the exact RBF kernel, next to ``RBFSampler`` and ``TernaryRandomFeatures``.
"""

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.kernel_approximation import RBFSampler
from sklearn.metrics.pairwise import rbf_kernel

from skrmt import LowPrecisionRFF, TernaryRandomFeatures, memory_bytes

X, _ = load_digits(return_X_y=True)
X = X[:500] / 16.0
gamma = 1.0 / np.median(np.sum((X[:, None] - X[None]) ** 2, axis=-1))
K = rbf_kernel(X, gamma=gamma)
m = 2048

bits = [1, 2, 4, 8, 16]
noise, errors, mem = [], [], []
Z = RBFSampler(gamma=gamma, n_components=m, random_state=0).fit(X).transform(X)
for b in bits:
    lp = LowPrecisionRFF(m, gamma=gamma, n_bits=b, random_state=0).fit(X)
    Q = lp.transform(X)
    noise.append(np.mean(np.sum((Q - Z) ** 2, axis=1)))
    errors.append(np.linalg.norm(Q @ Q.T - K) / np.linalg.norm(K))
    mem.append(memory_bytes(lp))
    print(f"b={b:2d}: E||q - z||^2 = {noise[-1]:.3e}, Gram error {errors[-1]:.4f}")

# TRF on the same kernel: the "rbf" target's kernel is exp(-||a - b||^2 / (2 p)) on inputs that
# TRF scales by 1/sqrt(p) itself, so feed sqrt(2 gamma p) (x - mean)
Xc = np.sqrt(2 * gamma * X.shape[1]) * (X - X.mean(0))
trf = TernaryRandomFeatures(m, activation="rbf", sparsity=0.5, random_state=0).fit(Xc)
Zt = trf.transform(Xc)
trf_err = np.linalg.norm(Zt @ Zt.T - trf.coefficients_["delta"] * np.eye(len(X)) - K) / np.linalg.norm(K)
fp_err = np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K)

fig, ax = plt.subplots(1, 2, figsize=(10, 4))
ax[0].semilogy(bits, noise, "o-", label="measured")
ax[0].semilogy(bits, [2 * 0.6 / (2**b - 1) ** 2 for b in bits], "k--",
               label="~ 2 c_b / (2^b - 1)^2")
ax[0].set_xlabel("bits per feature")
ax[0].set_ylabel("mean ||q(x) - z(x)||^2 per sample (log scale)")
ax[0].set_title("quantization noise")
ax[0].legend()
ax[1].semilogx(mem, errors, "o-", label="LP-RFF (1..16 bits)")
ax[1].axhline(fp_err, color="gray", ls=":", label="RBFSampler (float)")
ax[1].plot([memory_bytes(trf)], [trf_err], "s", label="TRF (sparsity 0.5, - Delta I)")
ax[1].set_xlabel("stored model (bytes, log scale)")
ax[1].set_ylabel("relative Gram error vs exact RBF kernel (Frobenius)")
ax[1].set_title("kernel approximation against memory")
ax[1].tick_params(axis="x", which="minor", labelbottom=False)  # decades only: no overlap
ax[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
