#!/usr/bin/env bash
# One entry point for a fresh machine: sets up ./.venv on first use (idempotent), then
#   ./dev.sh compare [options]   runs the main job (skrmt compare, digits by default)
#   ./dev.sh pytest [args]       runs the whole test suite (alias: ./dev.sh test)
#   ./dev.sh python ...          runs the environment's python (examples, benchmarks)
#   ./dev.sh docs [--check]      builds the documentation into docs/_build/html (warnings are
#                                errors); --check also screenshots pages with headless chromium
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP="$VENV/.skrmt-installed"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
    echo "dev.sh: installing skrmt and its dependencies into $VENV ..." >&2
    # torch first, pinned by constraints.txt, so that no later requirement pulls another build.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt torch
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,dask,docs]"
    touch "$STAMP"
fi

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
    compare) exec "$VENV/bin/python" -m skrmt compare "$@" ;;
    pytest | test) exec "$VENV/bin/python" -m pytest "$@" ;;
    python) exec "$VENV/bin/python" "$@" ;;
    docs)
        "$VENV/bin/python" -m sphinx -W --keep-going -b html docs docs/_build/html
        if [ "${1:-}" = "--check" ]; then
            exec "$VENV/bin/python" docs/check_rendered.py docs/_build/html
        fi ;;
    *) echo "usage: ./dev.sh {compare|pytest|python|docs} [args...]" >&2; exit 2 ;;
esac
