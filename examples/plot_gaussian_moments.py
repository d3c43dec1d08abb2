"""
========================================================
Gaussian moments: what the theory keeps of an activation
========================================================

**What you learn:** the three numbers ``d0, d1, d2`` that the theory keeps of an activation,
how they change with the input variance ``tau``, and the ternary thresholds and kernel shift
``Delta`` that ``TernaryRandomFeatures`` derives from them.

In high dimension a random network's kernel depends on its activation ``sigma`` only through
Gaussian moments at the input variance ``tau``: ``d1 = (E sigma')^2`` (the linear part),
``d2 = (E sigma'')^2 / 4`` (the quadratic part) and ``d0 = Var sigma - tau d1`` (everything
else, which acts like a ridge). The left panel shows them for a few activations; the right panel
shows the ternary activation that ``TernaryRandomFeatures`` matches to ReLU and tanh: its
thresholds and its diagonal mismatch ``Delta`` as functions of ``tau``.
"""

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skrmt._theory._gaussian_moments import gaussian_moments
from skrmt._theory._ternary import match_ternary

taus = np.logspace(-2, 1, 60)
fig, ax = plt.subplots(1, 3, figsize=(14, 4))
for name in ["relu", "tanh", "erf", "gelu", "swish", "sin"]:
    m = gaussian_moments(name, taus)
    line, = ax[0].loglog(taus, m.d1, label=f"{name} d1")
    ax[0].loglog(taus, np.maximum(m.d0, 1e-12), "--", color=line.get_color())
ax[0].set_xlabel("tau (input variance)")
ax[0].set_ylabel("d1 (solid), d0 (dashed), log scale")
ax[0].set_title("Gaussian moments of the activation")
ax[0].legend(fontsize=7)

for name in ["relu", "tanh", "gelu"]:
    matches = [match_ternary(name, t) for t in taus]
    s = np.array([[mt.s_minus, mt.s_plus] for mt in matches])
    line, = ax[1].semilogx(taus, s[:, 1], label=f"{name} s+")
    ax[1].semilogx(taus, s[:, 0], "--", color=line.get_color(), label=f"{name} s-")
    ax[2].loglog(taus, [mt.delta for mt in matches], label=name)
ax[1].set_xlabel("tau (input variance)")
ax[1].set_ylabel("ternary thresholds s+, s- (pre-activation units)")
ax[1].set_title("matched ternary activation")
ax[1].legend(fontsize=7)
ax[2].set_xlabel("tau (input variance)")
ax[2].set_ylabel("Delta = d0(ternary) - d0(target)")
ax[2].set_title("kernel shift (implicit ridge)")
ax[2].legend()
fig.tight_layout()

# %%
# The numbers behind the picture at tau = 1
for name in ["relu", "tanh", "erf", "gelu"]:
    m = gaussian_moments(name, 1.0)
    mt = match_ternary(name, 1.0)
    print(f"{name:6s} d0={m.d0:.6f} d1={m.d1:.6f} d2={m.d2:.6f}  ternary s=({mt.s_minus:+.5f}, "
          f"{mt.s_plus:+.5f}) c={mt.scale:.5f} o={mt.offset:+.5f} Delta={mt.delta:.5f}")
plt.show()
