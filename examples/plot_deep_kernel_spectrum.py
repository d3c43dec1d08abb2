"""
=======================================================================
Deep CK/NTK: the spectrum of a wide random network and its TheoryKernel
=======================================================================

**What you learn:** the Gram matrix (conjugate kernel, CK) of the last layer of a wide random
ReLU network of depth 2 or 3 has, up to finite-width noise, the eigenvalues of
``TheoryKernel(model="ck", n_layers=L)``; on high-dimensional data its random-matrix
equivalent ``form="equivalent"``, a three-term formula
``alpha_1 XX^T + alpha_2 delta delta^T + alpha_3 (XX^T)^2`` plus an exact diagonal, has the
same spectrum, isolated class eigenvalues included. The same holds for the NTK.

The network is ``h_l = (relu(W_l h_{l-1}) - c_l) / sqrt(d)`` with i.i.d. standard Gaussian
weights and the constant centring ``c_l`` of ``ntk_lc.md`` §1; ``TheoryKernel`` stores the
``c_l`` of each layer in ``coefficients_[l]["m0"]``. The constant direction ``1`` (which a
readout's intercept absorbs) is projected out before taking eigenvalues.
"""

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from skrmt import TheoryKernel
from skrmt.datasets import make_gmm


def random_network_ck(X, n_layers, width, centres, seed=0):
    """Empirical CK of a random ReLU network (hidden layers centred, raw output layer)."""
    rng = np.random.RandomState(seed)
    H = X / np.sqrt(X.shape[1])  # skrmt's input scaling
    for ell in range(n_layers):
        S = np.maximum(H @ rng.standard_normal((H.shape[1], width)), 0.0)
        if ell < n_layers - 1:
            S -= centres[ell]
        H = S / np.sqrt(width)
    return H @ H.T


def centred_eigenvalues(K):
    """Eigenvalues of P K P, P = I - 11^T/n, in decreasing order."""
    K = K - K.mean(0, keepdims=True) - K.mean(1, keepdims=True) + K.mean()
    return np.linalg.eigvalsh(K)[::-1]


# %%
# Digits, depth 3: the spectrum of wider and wider networks approaches the limit kernel.
# A network narrower than the number of samples (width 300 < n = 400) has a CK of rank at
# most its width: its smallest eigenvalues vanish.
X, _ = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)[:400]
tk = TheoryKernel(model="ck", n_layers=3).fit(X)
centres = [layer["m0"] for layer in tk.coefficients_]
eig_limit = centred_eigenvalues(tk.transform(X))

fig, ax = plt.subplots(1, 2, figsize=(11, 4))
rank = np.arange(1, len(eig_limit) + 1)
for width, style in ((300, ":"), (2000, "--")):
    eig = centred_eigenvalues(random_network_ck(X, 3, width, centres))
    ax[0].loglog(rank, np.clip(eig, 1e-6, None), style, label=f"random network, width {width}")
ax[0].loglog(rank, np.clip(eig_limit, 1e-6, None), "k-", lw=1.5,
             label='TheoryKernel(n_layers=3, form="limit")')
ax[0].set_xlabel("eigenvalue rank")
ax[0].set_ylabel("eigenvalue of the centred CK (log scale)")
ax[0].set_title("digits (n = 400, p = 64), ReLU, depth 3")
ax[0].legend()

# %%
# Gaussian mixture in high dimension, depth 2: limit, equivalent and a random network.
# The equivalent reproduces the limit's bulk and its class eigenvalue; the finite network
# adds Wishart-like noise of relative size about sqrt(n / width), which spreads the lower
# edge of the bulk (the part of the spectrum carried by the identity term).
p = 256
Xg, _ = make_gmm(2 * p, p, preset="pm2", random_state=0)
Xg *= np.sqrt(p)  # skrmt divides by sqrt(p) itself
tk_lim = TheoryKernel(model="ck", n_layers=2).fit(Xg)
eig_lim = centred_eigenvalues(tk_lim.transform(Xg))
eig_eq = centred_eigenvalues(TheoryKernel(model="ck", n_layers=2, form="equivalent")
                             .fit_transform(Xg))
centres = [layer["m0"] for layer in tk_lim.coefficients_]
eig_net = centred_eigenvalues(random_network_ck(Xg, 2, 3000, centres))
bins = np.linspace(0.0, 1.05 * eig_lim[1], 60)
ax[1].hist(eig_net[1:], bins=bins, density=True, alpha=0.4, label="random network, width 3000")
ax[1].hist(eig_lim[1:], bins=bins, density=True, histtype="step", lw=1.5, color="k",
           label='form="limit"')
ax[1].hist(eig_eq[1:], bins=bins, density=True, histtype="step", lw=1.5, color="tab:red",
           ls="--", label='form="equivalent"')
ax[1].set_xlabel("eigenvalue of the centred CK (the largest one is printed below)")
ax[1].set_ylabel("density")
ax[1].set_title(f"GMM 'pm2' (n = {2 * p}, p = {p}), ReLU, depth 2")
ax[1].legend()
fig.tight_layout()
print("largest centred eigenvalue (class information):")
print(f"  limit {eig_lim[0]:.4f}  equivalent {eig_eq[0]:.4f}  random network {eig_net[0]:.4f}")

# %%
# The NTK of the same network, limit against equivalent, in operator norm
for L in (1, 2, 3):
    K_lim = TheoryKernel(model="ntk", n_layers=L).fit_transform(Xg)
    K_eq = TheoryKernel(model="ntk", n_layers=L, form="equivalent").fit_transform(Xg)
    # operator norms of symmetric matrices: the largest |eigenvalue|
    err = np.abs(np.linalg.eigvalsh(K_eq - K_lim)).max() / np.linalg.eigvalsh(K_lim).max()
    print(f"NTK, depth {L}: ||K_eq - K_lim|| / ||K_lim|| = {err:.4f}")
plt.show()
