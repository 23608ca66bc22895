#!/usr/bin/env bash
# Run the three Varta benchmarks one after the other (never at the same time: they would
# measure each other). ``bench/run_all.sh --quick`` runs the short versions (a few minutes);
# without it the full ones (the recorder benchmark alone takes about 12 minutes).
# Every script prints its figures next to its target/floor and appends a Markdown block to
# bench/out/<name>.md (or to the file named by RESULTS=..., all three into one file).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
QUICK=()
if [[ "${1:-}" == "--quick" ]]; then
    QUICK=(--quick)
    shift
fi
RES=()
if [[ -n "${RESULTS:-}" ]]; then
    RES=(--results "$RESULTS")
fi
"$PY" bench/index_bench.py "${QUICK[@]}" "${RES[@]}" "$@"
"$PY" bench/export_bench.py "${QUICK[@]}" "${RES[@]}"
"$PY" bench/recorder_bench.py "${QUICK[@]}" "${RES[@]}"
