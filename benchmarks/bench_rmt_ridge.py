"""Choosing the ridge (and the width) of random-features ridge: RMTRidge vs RidgeCV vs GridSearchCV.

Run: ``python benchmarks/bench_rmt_ridge.py [--quick] [--threads 1] [--draws 5] [--repeats 3]``.

Design note ``rmt_ridge.md`` §12 and README corrections 5 and 6. ReLU random features
``F = relu(X_std W^T)`` with ``W`` standard Gaussian and ``X_std`` standardised as ``RMTRidge``
does (centred, mean squared row norm 1); the readout is ``Ridge(alpha=n * gamma,
fit_intercept=False)`` on ``F`` and the centred targets, ``gamma`` the ridge in ``RMTRidge``'s
scale. Every method sees the same 49-point grid ``gamma = 10^{-5..3}`` (``RMTRidge``'s
``alpha="auto"`` uses its own grid and a Brent refinement) and, for a given draw, the same ``W``
(``RandomState(draw).standard_normal((N, p))``, which is what ``RMTRidge(random_state=draw)``
draws; a narrower width takes the first rows).

Part 1, choosing the ridge at n = 1024, N = 2048 (``--quick``: 512, 1024), on digits even vs odd
(``rmt_ridge.md`` AT9: ``RandomState(0)`` permutation, 1024 train / 773 test, target +-1) and
``make_gmm(n, n, preset="pm2")`` (target +-1, shuffled, fresh test draw of the same size):

(a) ``RMTRidge(alpha="auto")``: RMT leave-one-out, from one kernel eigendecomposition, then one
    random-features fit; (b) the same with ``alpha_selection="gcv"``; (c) ``RidgeCV(alphas=n *
    grid, fit_intercept=False)``: scikit-learn's efficient leave-one-out on the realised features;
    (d) ``GridSearchCV(Ridge(fit_intercept=False), {"alpha": n * grid}, cv=5,
    scoring="neg_mean_squared_error")``; (e) the same 5-fold CV done with one eigendecomposition
    per fold (same ``KFold(5)`` folds, so it picks the alpha ``GridSearchCV`` picks: checked on
    the timed draw and printed). Reported: wall time of the whole fit, features included (median
    of ``--repeats``, methods timed round-robin on draw 0); the chosen ridge (median and range
    over draws: the theory's does not depend on ``W`` at all); the test MSE, mean +- sd over
    ``--draws`` draws of ``W``; its excess over the per-draw best ridge of the grid; and for (a)
    ``predict_risk`` against the realised test MSE. (d)'s choices on draws other than the timed
    one come from (e), which is exact and 10-50x cheaper.

Part 2, choosing the ridge and the width together (digits only) over 49 ridges x 10 widths
(geometric, 128..4096; ``--quick``: 64..2048): (a) the theory: ``RMTRidge`` fitted once at the
smallest width with a fixed ridge (only its kernel eigendecomposition is used), ``risk_path`` over
the 490 points, the argmin of RMT-LOO, then ``RMTRidge(n_components=N*, alpha="auto")`` (which
refines the ridge; a second kernel eigendecomposition); (c) ``RidgeCV`` at each width, the width
with the best leave-one-out score; (e) eigen 5-fold CV at each width; (d) ``GridSearchCV`` at each
width, **timed on 7 of the 49 alphas at every width and extrapolated x7** (its cost is linear in
the number of alphas), its choices taken from (e).

Targets (README correction 5), printed as PASS/FAIL lines; the exit status is 1 if one fails:
(1) (a) at least 8x faster than (d), with a mean test MSE within 1% of (d)'s;
(2) (a) at least 5x faster than (c) repeated per width, with a mean test MSE within 1% of the
best method's. At a single width the theory is *not* faster than ``RidgeCV`` (both cost about
one n x n eigendecomposition); part 1 prints that ratio.

Thread pools: numpy's and scipy's OpenBLAS (and any OpenMP pool) are limited to ``--threads``
(default 1, the setting of ``rmt_ridge.md`` §9) with ``threadpoolctl``; torch's intra-op pool too.
Timing ratios only mean something within one run on a shared machine.
"""

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

try:
    import skrmt  # noqa: F401
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GRID = np.logspace(-5, 3, 49)
GS_SUBSET = slice(0, None, 7)  # 7 of the 49 alphas for the extrapolated GridSearchCV timing


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="n = 512, N = 1024, widths 64..2048, 3 draws, 1 repeat (about a minute)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every BLAS/OpenMP pool and torch (default 1)")
    p.add_argument("--draws", type=int, default=None, help="draws of W (default 5; quick 3)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per method, median reported (default 3; quick 1)")
    p.add_argument("--no-gmm", action="store_true", help="skip the make_gmm rows of part 1")
    p.add_argument("--device", default=None,
                   help="RMTRidge device (None: numpy; 'cuda' runs its kernel, eigh, features "
                        "and solve in torch); the baselines stay on numpy")
    return p.parse_args()


def _configure_threads(n_threads):
    """Limit every thread pool to ``n_threads`` (skrmt's one helper); limiter and description."""
    from skrmt.utils._threads import limit_threads

    limiter, lines = limit_threads(n_threads)
    return limiter, ["  " + line for line in lines]


# =============================================================================================
# data
# =============================================================================================
def _digits(n):
    from sklearn.datasets import load_digits

    X, digit = load_digits(return_X_y=True)
    y = np.where(digit % 2 == 0, 1.0, -1.0)
    perm = np.random.RandomState(0).permutation(len(y))
    X, y = X[perm], y[perm]
    n_test = len(y) - 1024  # 773 test rows whatever n (AT9 split)
    return ("digits even/odd", X[:n], y[:n], X[len(y) - n_test:], y[len(y) - n_test:])


def _gmm(n):
    from skrmt.datasets import make_gmm

    X, c = make_gmm(n, n, preset="pm2", shuffle=True, random_state=1000)
    Xt, ct = make_gmm(n, n, preset="pm2", shuffle=True, random_state=1001)
    return (f"make_gmm pm2 p={n}", X, 2.0 * c - 1.0, Xt, 2.0 * ct - 1.0)


# =============================================================================================
# the random-features ridge, done by hand for the baselines
# =============================================================================================
def _standardise(X, X_test=None):
    """``RMTRidge``'s standardisation: centred, mean squared row norm 1 (train statistics)."""
    mean = X.mean(axis=0)
    D = X - mean
    scale = 1.0 / np.sqrt(np.einsum("ij,ij->", D, D) / X.shape[0])
    return D * scale, (None if X_test is None else (X_test - mean) * scale)


def _weights(draw, N, p):
    return np.random.RandomState(draw).standard_normal((N, p))


def _relu_features(Xs, W):
    return np.maximum(Xs @ W.T, 0.0)


def _ridge_coef(F, yc, gamma):
    """``Ridge(alpha=n*gamma, fit_intercept=False).fit(F, yc).coef_`` (primal or dual)."""
    n, N = F.shape
    if N < n:
        return np.linalg.solve(F.T @ F + n * gamma * np.eye(N), F.T @ yc)
    return F.T @ np.linalg.solve(F @ F.T + n * gamma * np.eye(n), yc)


def _test_curve(F, yc, F_test, yc_test, gammas):
    """Test MSE of the ridge readout at every ``gamma``, from one eigendecomposition of F F^T."""
    n = F.shape[0]
    mu, V = np.linalg.eigh(F @ F.T)
    mu = np.maximum(mu, 0.0)
    B = (F_test @ F.T) @ V
    z = V.T @ yc
    pred = B @ (z[:, None] / (mu[:, None] + n * np.asarray(gammas)[None, :]))
    return np.mean((yc_test[:, None] - pred) ** 2, axis=0)


def _eigen_kfold(F, yc, gammas, n_splits=5):
    """Mean validation MSE per ridge of ``KFold(n_splits)`` CV, one eigh per fold.

    The folds and the unweighted mean over folds are ``GridSearchCV(cv=5,
    scoring="neg_mean_squared_error")``'s; the sklearn alpha is ``n * gamma`` with ``n`` the
    full training size on every fold, as in the grid search.
    """
    from sklearn.model_selection import KFold

    n = F.shape[0]
    alphas = n * np.asarray(gammas)
    scores = np.zeros(len(alphas))
    for train, val in KFold(n_splits).split(F):
        Ft, Fv, yt = F[train], F[val], yc[train]
        if Ft.shape[1] < Ft.shape[0]:  # primal: N x N
            s, Q = np.linalg.eigh(Ft.T @ Ft)
            left, z = Fv @ Q, Q.T @ (Ft.T @ yt)
        else:  # dual: n_train x n_train
            s, Q = np.linalg.eigh(Ft @ Ft.T)
            left, z = (Fv @ Ft.T) @ Q, Q.T @ yt
        s = np.maximum(s, 0.0)
        pred = left @ (z[:, None] / (s[:, None] + alphas[None, :]))
        scores += np.mean((yc[val][:, None] - pred) ** 2, axis=0)
    return scores / n_splits


# =============================================================================================
# methods (each returns what it chose; timed from raw X to a fitted readout)
# =============================================================================================
def _fit_rmt(X, y, N, draw, device, selection="loo"):
    from skrmt.linear_model import RMTRidge

    return RMTRidge(N, alpha="auto", alpha_selection=selection, random_state=draw,
                    device=device).fit(X, y)


def _fit_ridgecv(X, y, N, draw):
    from sklearn.linear_model import RidgeCV

    Xs, _ = _standardise(X)
    F = _relu_features(Xs, _weights(draw, N, X.shape[1]))
    n = X.shape[0]
    return RidgeCV(alphas=n * GRID, fit_intercept=False).fit(F, y - y.mean()).alpha_ / n


def _fit_eigen_cv(X, y, N, draw):
    Xs, _ = _standardise(X)
    F = _relu_features(Xs, _weights(draw, N, X.shape[1]))
    yc = y - y.mean()
    gamma = GRID[int(np.argmin(_eigen_kfold(F, yc, GRID)))]
    _ridge_coef(F, yc, gamma)  # the refit, as GridSearchCV(refit=True) does
    return gamma


def _fit_gridsearch(X, y, N, draw, grid=GRID):
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    Xs, _ = _standardise(X)
    F = _relu_features(Xs, _weights(draw, N, X.shape[1]))
    n = X.shape[0]
    gs = GridSearchCV(Ridge(fit_intercept=False), {"alpha": n * grid}, cv=5,
                      scoring="neg_mean_squared_error").fit(F, y - y.mean())
    return gs.best_params_["alpha"] / n


def _time_round_robin(cases, repeats):
    """Median wall time and last result per case; cases timed in turn, after one warm-up."""
    times = {name: [] for name in cases}
    out = {}
    for r in range(repeats):
        for name, fn in cases.items():
            print(f"    timing {name} ({r + 1}/{repeats}) ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            out[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}, out


def _fmt_gamma(values):
    values = np.asarray(values, dtype=float)
    med = float(np.median(values))
    if np.allclose(values, values[0], rtol=1e-12):
        return f"{med:.3g} (all)"
    return f"{med:.3g} [{values.min():.3g}, {values.max():.3g}]"


# =============================================================================================
# part 1
# =============================================================================================
def part1(task, N, args):
    name, X, y, X_test, y_test = task
    n, p = X.shape
    print(f"PART 1 -- {name}: choosing gamma on the 49-point grid, n = {n}, N = {N}, "
          f"p = {p}, {len(y_test)} test rows")
    # warm-up outside the timings (imports, BLAS buffers)
    _fit_rmt(X[:64], y[:64], 32, 0, args.device)

    cases = {
        "(a) RMTRidge auto, RMT-LOO": lambda: _fit_rmt(X, y, N, 0, args.device).alpha_,
        "(b) RMTRidge auto, RMT-GCV": lambda: _fit_rmt(X, y, N, 0, args.device, "gcv").alpha_,
        "(c) RidgeCV (efficient LOO)": lambda: _fit_ridgecv(X, y, N, 0),
        "(e) eigen 5-fold CV": lambda: _fit_eigen_cv(X, y, N, 0),
        "(d) GridSearchCV cv=5": lambda: _fit_gridsearch(X, y, N, 0),
    }
    with warnings.catch_warnings():
        # RMT-GCV can run to the grid edge on digits; that choice is part of what is measured
        warnings.filterwarnings("ignore", message="alpha_ at the grid edge")
        med, first = _time_round_robin(cases, args.repeats)
        gs_same = np.isclose(first["(d) GridSearchCV cv=5"], first["(e) eigen 5-fold CV"])

        # choices and test errors over draws, all at the same W per draw
        yc = y - y.mean()
        yc_test = y_test - y.mean()
        Xs, Xs_test = _standardise(X, X_test)
        chosen = {k: [] for k in cases}
        test = {k: [] for k in cases}
        oracle = []
        model = _fit_rmt(X, y, N, 0, args.device)
        gcv_model = _fit_rmt(X, y, N, 0, args.device, "gcv")
        w_free = _fit_rmt(X, y, N, 1, args.device).alpha_ == model.alpha_
        risk = model.predict_risk(X_test, y_test)
        realised_a = []
        for draw in range(args.draws):
            print(f"    draw {draw + 1}/{args.draws} ...", file=sys.stderr, flush=True)
            W = _weights(draw, N, p)
            F, F_test = _relu_features(Xs, W), _relu_features(Xs_test, W)
            cv_curve = _eigen_kfold(F, yc, GRID)
            picks = {
                "(a) RMTRidge auto, RMT-LOO": model.alpha_,
                "(b) RMTRidge auto, RMT-GCV": gcv_model.alpha_,
                "(c) RidgeCV (efficient LOO)": _fit_ridgecv(X, y, N, draw),
                "(e) eigen 5-fold CV": GRID[int(np.argmin(cv_curve))],
            }
            picks["(d) GridSearchCV cv=5"] = picks["(e) eigen 5-fold CV"]
            gammas = np.array([picks[k] for k in cases])
            curve = _test_curve(F, yc, F_test, yc_test, np.concatenate([GRID, gammas]))
            oracle.append(curve[: len(GRID)].min())
            for k, val in zip(cases, curve[len(GRID):]):
                chosen[k].append(picks[k])
                test[k].append(val)
            realised_a.append(test["(a) RMTRidge auto, RMT-LOO"][-1])
        # the hand-made readout is the estimator's: check on draw 0
        pred = model.predict(X_test)
        check = abs(np.mean((pred - y_test) ** 2) - realised_a[0]) / realised_a[0]

    oracle = np.array(oracle)
    t_a = med["(a) RMTRidge auto, RMT-LOO"]
    print(f"  {'method':<30}{'time_s':>8}{'vs (a)':>8}  {'chosen gamma: median [range]':<30}"
          f"{'test MSE mean +- sd':>22}{'excess vs oracle':>18}")
    for k in cases:
        te = np.array(test[k])
        excess = 100 * np.mean(te / oracle - 1)
        print(f"  {k:<30}{med[k]:>8.2f}{med[k] / t_a:>7.1f}x  {_fmt_gamma(chosen[k]):<30}"
              f"{te.mean():>13.5f} +- {te.std(ddof=1) if len(te) > 1 else 0.0:.5f}"
              f"{excess:>+16.2f}%")
    print(f"  {'per-draw best gamma (oracle)':<30}{'':>8}{'':>8}  {'':<30}"
          f"{oracle.mean():>13.5f} +- {oracle.std(ddof=1) if len(oracle) > 1 else 0.0:.5f}")
    print(f"  (a) predict_risk test MSE {risk['test_mse']:.5f} vs realised mean "
          f"{np.mean(realised_a):.5f} ({100 * (risk['test_mse'] / np.mean(realised_a) - 1):+.2f}%)"
          f"; predicted train MSE {model.predicted_train_mse_:.5f} vs this draw's "
          f"{model.train_mse_:.5f}")
    print(f"  (a) alpha_ identical for random_state 0 and 1 (W-free): {w_free}; its readout = the "
          f"hand-made Ridge on the same W (test MSE rel. gap {check:.1e})")
    print(f"  (d) GridSearchCV and (e) picked the same alpha on the timed draw: {bool(gs_same)}")
    t_c = med["(c) RidgeCV (efficient LOO)"]
    print(f"  single width: RidgeCV takes {t_c / t_a:.2f}x the time of (a) -- "
          + ("the theory is NOT faster than RidgeCV here: both cost about one n x n "
             "eigendecomposition" if t_c / t_a < 2 else "the theory is faster"))
    speed = med["(d) GridSearchCV cv=5"] / t_a
    gap = np.mean(test["(a) RMTRidge auto, RMT-LOO"]) / np.mean(test["(d) GridSearchCV cv=5"]) - 1
    ok = speed >= 8 and gap <= 0.01
    line = (f"{'PASS' if ok else 'FAIL'}: part 1 {name}: (a) {speed:.1f}x faster than "
            f"GridSearchCV (target >= 8x), test MSE {100 * gap:+.2f}% vs GridSearchCV's "
            "(target <= +1%)")
    print(line)
    print()
    return ok, line


# =============================================================================================
# part 2
# =============================================================================================
def part2(task, widths, args):
    from sklearn.linear_model import RidgeCV

    from skrmt.linear_model import RMTRidge

    name, X, y, X_test, y_test = task
    n, p = X.shape
    Nmax = int(widths[-1])
    print(f"PART 2 -- {name}: choosing gamma and N jointly, {len(GRID)} ridges x {len(widths)} "
          f"widths {[int(w) for w in widths]}, n = {n}")
    yc = y - y.mean()

    def theory(draw=0):
        probe = RMTRidge(int(widths[0]), alpha=1.0, random_state=draw,
                         device=args.device).fit(X, y)
        path = probe.risk_path(GRID, n_components=widths)
        i, _ = np.unravel_index(np.nanargmin(path["loo_mse"]), path["loo_mse"].shape)
        final = RMTRidge(int(widths[i]), alpha="auto", random_state=draw,
                         device=args.device).fit(X, y)
        return int(widths[i]), final.alpha_, final

    def per_width(select, draw=0):
        """Features once at the largest width (narrower = first columns), then select()."""
        Xs, _ = _standardise(X)
        F_all = _relu_features(Xs, _weights(draw, Nmax, p))
        best = (np.inf, None, None)
        for N in widths:
            err, gamma = select(F_all[:, :N])
            if err < best[0]:
                best = (err, int(N), gamma)
        _ridge_coef(F_all[:, : best[1]], yc, best[2])  # the final refit
        return best[1], best[2]

    def ridgecv_select(F):
        r = RidgeCV(alphas=n * GRID, fit_intercept=False).fit(F, yc)
        return -r.best_score_, r.alpha_ / n

    def eigen_select(F):
        curve = _eigen_kfold(F, yc, GRID)
        k = int(np.argmin(curve))
        return curve[k], GRID[k]

    def gs_subset():
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GridSearchCV

        Xs, _ = _standardise(X)
        F_all = _relu_features(Xs, _weights(0, Nmax, p))
        for N in widths:
            GridSearchCV(Ridge(fit_intercept=False), {"alpha": n * GRID[GS_SUBSET]}, cv=5,
                         scoring="neg_mean_squared_error").fit(F_all[:, :N], yc)

    cases = {
        "(a) theory: risk_path + 1 fit": lambda: theory()[:2],
        "(c) RidgeCV per width": lambda: per_width(ridgecv_select),
        "(e) eigen 5-fold CV per width": lambda: per_width(eigen_select),
    }
    med, _ = _time_round_robin(cases, args.repeats)
    print("    timing GridSearchCV per width on 7 of 49 alphas ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    gs_subset()
    n_sub = len(GRID[GS_SUBSET])
    med["(d) GridSearchCV per width*"] = (time.perf_counter() - t0) * len(GRID) / n_sub

    N_a, gamma_a, model = theory()
    path = model.risk_path(GRID, X_test, y_test, n_components=widths)
    yc_test = y_test - y.mean()
    Xs, Xs_test = _standardise(X, X_test)
    names = list(med)
    chosen = {k: [] for k in names}
    test = {k: [] for k in names}
    pred_a = model.predict_risk(X_test, y_test)["test_mse"]
    for draw in range(args.draws):
        print(f"    draw {draw + 1}/{args.draws} ...", file=sys.stderr, flush=True)
        W = _weights(draw, Nmax, p)
        F_all, Ft_all = _relu_features(Xs, W), _relu_features(Xs_test, W)
        Fsel = {N: F_all[:, :N] for N in widths}
        picks = {"(a) theory: risk_path + 1 fit": (N_a, gamma_a)}
        for key, select in (("(c) RidgeCV per width", ridgecv_select),
                            ("(e) eigen 5-fold CV per width", eigen_select)):
            errs = [select(Fsel[N]) for N in widths]
            k = int(np.argmin([e for e, _ in errs]))
            picks[key] = (int(widths[k]), errs[k][1])
        picks["(d) GridSearchCV per width*"] = picks["(e) eigen 5-fold CV per width"]
        for key in names:
            N, gamma = picks[key]
            beta = _ridge_coef(F_all[:, :N], yc, gamma)
            chosen[key].append((N, gamma))
            test[key].append(np.mean((yc_test - Ft_all[:, :N] @ beta) ** 2))

    best_mean = min(np.mean(v) for v in test.values())
    t_a = med["(a) theory: risk_path + 1 fit"]
    print(f"  {'method':<32}{'time_s':>8}{'vs (a)':>8}  {'chosen (N, gamma) per draw':<44}"
          f"{'test MSE mean +- sd':>22}{'vs best':>9}")
    for k in names:
        te = np.array(test[k])
        picks = sorted(set((N, float(f"{g:.3g}")) for N, g in chosen[k]))
        shown = ", ".join(f"({N}, {g:g})" for N, g in picks[:3]) + (" ..." if len(picks) > 3
                                                                    else "")
        print(f"  {k:<32}{med[k]:>8.2f}{med[k] / t_a:>7.1f}x  {shown:<44}"
              f"{te.mean():>13.5f} +- {te.std(ddof=1) if len(te) > 1 else 0.0:.5f}"
              f"{100 * (te.mean() / best_mean - 1):>+8.2f}%")
    print(f"  * timed on {n_sub} of the {len(GRID)} alphas at every width and extrapolated "
          f"x{len(GRID) / n_sub:g}; its choices are (e)'s (the same folds and criterion)")
    grid_pred = path["test_mse"]
    i = list(widths).index(N_a)
    print(f"  (a) predicted test MSE at its choice {pred_a:.5f} vs realised mean "
          f"{np.mean(test['(a) theory: risk_path + 1 fit']):.5f}; theory's best over the "
          f"490-point grid {np.nanmin(grid_pred):.5f} (at N = "
          f"{widths[np.unravel_index(np.nanargmin(grid_pred), grid_pred.shape)[0]]}); "
          f"RMT-LOO row N = {N_a}: min predicted test {np.nanmin(grid_pred[i]):.5f}")
    speed = med["(c) RidgeCV per width"] / t_a
    gap = np.mean(test["(a) theory: risk_path + 1 fit"]) / best_mean - 1
    ok = speed >= 5 and gap <= 0.01
    line = (f"{'PASS' if ok else 'FAIL'}: part 2 {name}: (a) {speed:.1f}x faster than RidgeCV "
            f"per width (target >= 5x), {med['(d) GridSearchCV per width*'] / t_a:.0f}x faster "
            f"than GridSearchCV per width (extrapolated), test MSE {100 * gap:+.2f}% vs the best "
            "method's (target <= +1%)")
    print(line)
    print()
    return ok, line


def main():
    args = _parse()
    if args.draws is None:
        args.draws = 3 if args.quick else 5
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    # Load every library that brings a thread pool first: threadpoolctl limits only the pools
    # loaded when it is called.
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    import skrmt
    from skrmt.linear_model import RMTRidge  # noqa: F401

    limiter, pool_lines = _configure_threads(args.threads)
    n, N = (512, 1024) if args.quick else (1024, 2048)
    widths = np.unique(np.round(np.geomspace(n // 8, 4 * n, 10)).astype(int))

    print("bench_rmt_ridge: choosing the ridge (and width) of random-features ridge regression")
    print(f"  python {platform.python_version()}, numpy {np.__version__}, skrmt "
          f"{skrmt.__version__}, {os.cpu_count()} CPUs, {args.threads} thread(s) per pool:")
    for line in pool_lines:
        print(line)
    print(f"  RMTRidge device: {args.device or 'numpy'}; ReLU features; gamma grid "
          f"10^-5..10^3, 49 points; {args.draws} draws of W; times: median of {args.repeats} "
          f"run(s){' (--quick)' if args.quick else ''}")
    print()

    lines, ok = [], True
    tasks = [_digits(n)] + ([] if args.no_gmm else [_gmm(n)])
    for task in tasks:
        res, line = part1(task, N, args)
        ok &= res
        lines.append(line)
    res, line = part2(tasks[0], widths, args)
    ok &= res
    lines.append(line)
    print("SUMMARY")
    for line in lines:
        print("  " + line)
    limiter.restore_original_limits()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
