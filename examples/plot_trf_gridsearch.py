"""
===================================================================
Grid search over sparsity and activation with TernaryRandomFeatures
===================================================================

**What you learn:** how to tune ``sparsity`` and the target ``activation`` of ternary features
with ``GridSearchCV``, and what sparsity costs in accuracy and saves in memory.

``TernaryRandomFeatures`` is an ordinary scikit-learn transformer: it drops into a
``Pipeline`` and its ``sparsity`` and ``activation`` are grid-searched like any other
hyper-parameter. Here, on the digits data, we cross-validate a ridge classifier on ternary
features for several sparsities and target activations, and plot the mean accuracy against the
stored memory of the ternary weights: at 90 % sparsity the model is several times smaller and
as accurate.
"""

# %%
import matplotlib

matplotlib.use("Agg")
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrmt import TernaryRandomFeatures

# digits has only 64 pixels: at sparsity >= 0.7 each ternary feature sees fewer than 20 of them,
# below the theory's universality regime, and TernaryRandomFeatures says so with a warning. The
# grid shows what that costs here, so the warning is silenced for this example.
warnings.filterwarnings("ignore", message=".*nonzero weights per feature")

X, y = load_digits(return_X_y=True)
pipe = make_pipeline(StandardScaler(), TernaryRandomFeatures(1500, random_state=0),
                     RidgeClassifier(alpha=1e-2))
sparsities = [0.0, 0.5, 0.8, 0.9]
activations = ["relu", "tanh", "erf", "gelu"]
grid = {"ternaryrandomfeatures__sparsity": sparsities,
        "ternaryrandomfeatures__activation": activations}
search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
print("best:", search.best_params_, f"accuracy {search.best_score_:.4f}")

# %%
res = search.cv_results_
fig, ax = plt.subplots(figsize=(6, 4))
for act in activations:
    acc, mem = [], []
    for eps in sparsities:
        i = [k for k, prm in enumerate(res["params"])
             if prm["ternaryrandomfeatures__activation"] == act
             and prm["ternaryrandomfeatures__sparsity"] == eps][0]
        acc.append(res["mean_test_score"][i])
        trf = TernaryRandomFeatures(1500, sparsity=eps, activation=act,
                                    random_state=0).fit(StandardScaler().fit_transform(X))
        mem.append(trf.memory_bytes_ / 1024)
    ax.plot(mem, acc, "o-", label=act)
    for m, a, eps in zip(mem, acc, sparsities):
        ax.annotate(f"{eps}", (m, a), fontsize=7)
ax.set_xscale("log")
ax.set_xlabel("stored ternary weights (KiB, project convention)")
ax.set_ylabel("3-fold CV accuracy (fraction)")
ax.set_title("digits: TRF (N = 1500) + ridge; labels = sparsity")
ax.legend(title="target activation")
fig.tight_layout()
plt.show()
