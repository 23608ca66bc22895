#!/usr/bin/env bash
# Run the Varta benchmarks one after the other (never at the same time: they would
# measure each other). ``bench/run_all.sh --quick`` runs the short versions (about 8 minutes);
# without it the full ones (about 25 minutes, most of it the recorder benchmark).
# Every script prints its figures next to its target/floor and appends a Markdown block to
# bench/out/<name>.md, or, with RESULTS=FILE in the environment, all blocks to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
ARGS=()
case "${1:-}" in
    --quick) ARGS+=(--quick) ;;
    "") ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
if [[ -n "${RESULTS:-}" ]]; then
    ARGS+=(--results "$RESULTS")
fi
"$PY" bench/index_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/journal_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/live_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/export_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/recorder_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/accuracy_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/analytics_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/evidence_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/search_bench.py ${ARGS[@]+"${ARGS[@]}"}
"$PY" bench/exchange_bench.py ${ARGS[@]+"${ARGS[@]}"}
