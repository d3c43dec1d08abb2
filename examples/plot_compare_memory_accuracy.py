"""
===============================================
Test accuracy against memory of random features
===============================================

**What you learn:** at equal stored memory, which random-feature map is the most accurate on
the digits, and how far sparse ternary weights move the accuracy-memory curve to the left.

Ternary random features (:class:`~skrmt.TernaryRandomFeatures`), full-precision random
Fourier features (scikit-learn's ``RBFSampler``), low-precision ones
(:class:`~skrmt.LowPrecisionRFF`) and Nyström all approximate the same Gaussian kernel
``exp(-gamma ||x - y||^2)`` on the bundled digits. Each map is followed by a ridge classifier
whose ``alpha`` is picked on a validation split, and each is charged memory by one convention
(:func:`skrmt.utils.memory_report`): parameters, feature minibatch and readout in bits.

This is a small version of ``python -m skrmt compare``.
"""

# %%
# Data: digits scaled to [0, 1], a stratified 60 / 15 / 25 split, and the median-heuristic
# bandwidth shared by every map.
import os
import tempfile

import matplotlib.pyplot as plt

from skrmt import _compare

data = _compare.load_comparison_data("digits", random_state=0)
gamma = _compare.median_gamma(data["X_train"])
print(f"train {data['X_train'].shape}, gamma = {gamma:.4f}")

# %%
# Fit every map at a few widths. TRF receives ``sqrt(2 gamma p) (x - mean)`` with the
# ``"rbf"`` target, so that it approximates the same kernel as the others.
rows = _compare.compare(
    data["X_train"], data["y_train"], data["X_val"], data["y_val"],
    data["X_test"], data["y_test"],
    n_components=(128, 256, 512, 1024), sparsities=(0.0, 0.9), bits=(8, 1),
    gamma=gamma, seeds=(0,), dataset="digits",
)
summary = _compare.summarize(rows)
print(_compare.format_table(summary))

# %%
# Test accuracy against the stored model (map parameters plus readout). Ternary weights cost
# 2 bits each (or a sign bit and an index per nonzero when sparse), against 32 bits for a
# float; the circulant LP-RFF stores only O(m) numbers.
fig, ax = plt.subplots(figsize=(7, 4.5))
for label in dict.fromkeys(e["label"] for e in summary):
    entries = sorted((e for e in summary if e["label"] == label),
                     key=lambda e: e["n_components"])
    ax.plot([e["stored_bytes"] / 1024 for e in entries],
            [100 * e["test_accuracy"] for e in entries], marker="o", label=label)
ax.set_xscale("log")
ax.set_xlabel("stored model (KiB, log scale)")
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"digits, Gaussian kernel gamma = {gamma:.3f}")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The command's three-panel figure (against m, footprint and stored bytes) comes from
# :func:`skrmt._compare.plot_comparison`; here it is also saved next to the other temporary
# files.
path = os.path.join(tempfile.gettempdir(), "skrmt_compare_memory_accuracy_digits.png")
fig3 = _compare.plot_comparison(rows, path)
print(f"saved {path}")
plt.show()
