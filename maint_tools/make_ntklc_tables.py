"""Regenerate (or check) the shipped NTK-LC multi-bit matching tables.

The least-variance staircase solutions of ``ntk_lc.md`` §9 at ``v0 = 1`` depend only on
(activation, depth, bits). ``skrmt/_theory/_data/ntklc_tables.json`` stores, for each registered
activation of ``TABLE_ACTIVATIONS`` (default parameters) and each of 2 and 3 bits, the
three-moment solutions of layers 1..3 (shared by every depth) and the two-moment last layer of
each depth 1..4, in standardised units (thresholds ``z = s / sqrt(v)``, signed jumps in units of
``sqrt(v)``, lowest level 0). ``match_network`` re-checks every entry's residual on load.

Usage::

    python maint_tools/make_ntklc_tables.py                  # regenerate everything
    python maint_tools/make_ntklc_tables.py --activations relu --bits 2
                                                             # regenerate a subset (merged)
    python maint_tools/make_ntklc_tables.py --check          # re-solve, compare, exit 1 if off

One chain of four layers is seven solves of 36 starts: about 10 s (two bits) to 25 s (three
bits) of one core; the whole table a few minutes. Run it niced.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from skrmt._theory import _ntklc_matching as M

TABLE_PATH = Path(M.__file__).resolve().parent / "_data" / M._TABLE_FILE
PARAM_TOL = 1e-6  # thresholds and jumps: flat directions of the minimum are only ~sqrt(ftol)
VALUE_TOL = 1e-8  # relative, on the output variances and Delta of every depth


def _entry(act_name, bits, max_layers):
    act = M.resolve_activation(act_name)
    t0 = time.perf_counter()
    three, last = M.solve_table_entry(act, bits, max_layers)
    seconds = time.perf_counter() - t0
    entry = {"activation": M.activation_key(act), "bits": bits, "three_moment": three,
             "last": last}
    entry["delta"] = {str(L): _delta(act, bits, entry, L) for L in range(1, max_layers + 1)}
    return M.activation_key(act), entry, seconds


def _net_from_entry(act, bits, entry, L):
    acts = (M.resolve_activation(act),) * L
    stds = tuple(M._std_from_entry(e, True) for e in entry["three_moment"][: L - 1])
    stds += (M._std_from_entry(entry["last"][str(L)], False),)
    return M._assemble(acts, M._dense_chain(acts, 1.0), stds, bits, 1.0)


def _delta(act, bits, entry, L):
    return _net_from_entry(act, bits, entry, L).delta


def _compare(key, bits, old, new):
    """List of human-readable differences between two entries (empty when they agree)."""
    problems = []
    pairs = [(f"three_moment[{i}]", a, b)
             for i, (a, b) in enumerate(zip(old["three_moment"], new["three_moment"]))]
    pairs += [(f"last[{L}]", old["last"][L], new["last"][L]) for L in new["last"]]
    if len(old["three_moment"]) != len(new["three_moment"]) or set(old["last"]) != set(new["last"]):
        problems.append("different number of layers")
    for name, a, b in pairs:
        for field in ("z", "jumps"):
            diff = max(abs(x - y) for x, y in zip(a[field], b[field]))
            if not diff <= PARAM_TOL:
                problems.append(f"{name}.{field} differs by {diff:.3g}")
    act = old["activation"]
    for L in new["last"]:
        n_old = _net_from_entry(act, bits, old, int(L))
        n_new = _net_from_entry(act, bits, new, int(L))
        for u, v in zip(n_old.compressed_variances, n_new.compressed_variances):
            if not abs(u - v) <= VALUE_TOL * abs(v):
                problems.append(f"L={L}: v^c {u!r} vs fresh {v!r}")
        if not abs(n_old.delta - n_new.delta) <= VALUE_TOL * abs(n_new.delta):
            problems.append(f"L={L}: Delta {n_old.delta!r} vs fresh {n_new.delta!r}")
    return [f"{key}|bits={bits}: {p}" for p in problems]


def _load():
    if TABLE_PATH.exists():
        return json.loads(TABLE_PATH.read_text())
    return {"chains": {}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="re-solve and compare with the shipped table (exit 1 on mismatch)")
    parser.add_argument("--activations", nargs="+", default=list(M.TABLE_ACTIVATIONS))
    parser.add_argument("--bits", nargs="+", type=int, default=list(M.TABLE_BITS))
    parser.add_argument("--max-layers", type=int, default=M.TABLE_MAX_LAYERS)
    args = parser.parse_args(argv)

    data = _load()
    chains = data.setdefault("chains", {})
    problems = []
    for name in args.activations:
        for bits in args.bits:
            key, entry, seconds = _entry(name, bits, args.max_layers)
            table_key = f"{key}|bits={bits}"
            deltas = ", ".join(f"L={L}: {d:.6g}" for L, d in entry["delta"].items())
            print(f"{table_key:<40} {seconds:6.1f} s   Delta {deltas}", flush=True)
            if args.check:
                if table_key not in chains:
                    problems.append(f"{table_key}: missing from the shipped table")
                else:
                    problems += _compare(key, bits, chains[table_key], entry)
            else:
                chains[table_key] = entry
    if args.check:
        for p in problems:
            print("MISMATCH", p)
        print("check:", "OK" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    data["format"] = 1
    data["description"] = (
        "NTK-LC least-variance staircase solutions at v0 = 1 (ntk_lc.md section 9), "
        "standardised units: thresholds z = s / sqrt(v_in), signed jumps in units of "
        "sqrt(v_in), lowest level 0. three_moment: layers 1..L-1 of every depth; last[L]: the "
        "last layer of depth L (e3 dropped). Regenerate with maint_tools/make_ntklc_tables.py."
    )
    data["chains"] = dict(sorted(chains.items()))
    TABLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    TABLE_PATH.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {TABLE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
