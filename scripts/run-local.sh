#!/bin/sh
# make run: the FINRA workflow as local processes (no cluster, no Docker):
# up, one invocation with its result, a 2000-request bench, down.
# Usage: scripts/run-local.sh BUILD_DIR
set -eu
B=${1:-build}
IR="$B/bin/iroute"
STACK=benchmarks/finra/stack.yml
STATE="$B/run/finra"
N=${RUN_N:-2000}
C=${RUN_CONCURRENCY:-1}
cleanup() { "$IR" local down --state "$STATE" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
"$IR" local up "$STACK" --state "$STATE"
echo
echo "== one request (the portfolio of generate_data(1)):"
"$IR" invoke --state "$STATE" --generate 1 -v
echo
echo
echo "== $N requests, $C at a time (the entry's closed-loop load generator):"
"$IR" bench --state "$STATE" --n "$N" --concurrency "$C" --json "$STATE/bench.json"
