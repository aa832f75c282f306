#!/bin/sh
# make bench-finra: FINRA-5 as local processes over ipc and over tcp, each
# measured direct (iroute: one hop per edge) and central (the same function
# instances, every hop relayed through iroute-bench-central over HTTP, as a
# gateway-driven workflow does), at concurrency 1 and at FINRA_MAXC (the
# throughput run).  Both modes are driven by the same closed-loop HTTP
# client (iroute-bench-finra --check: every answer checked against the
# expected result), so the figures share one clock and one client.
# Writes OUT (a JSON list) and prints a table with the central/direct ratio.
# Usage: scripts/bench-finra.sh BUILD_DIR OUT.json
set -eu
B=${1:-build}
OUT=${2:-build/bench/finra.json}
N1=${FINRA_N1:-2000}     # requests at concurrency 1
NC=${FINRA_NC:-6000}     # requests at FINRA_MAXC
MAXC=${FINRA_MAXC:-16}
IR="$B/bin/iroute"
STACK=benchmarks/finra/stack.yml
ROOT="$B/bench/finra-run"
mkdir -p "$ROOT" "$(dirname "$OUT")"
CPID=""
STATE=""
cleanup() {
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null || true
	[ -n "$STATE" ] && "$IR" local down --state "$STATE" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

field() { # field KEY FILE: a number from a flat JSON object
	sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" "$2" | head -n 1
}

free_port() { # a port nothing listens on (ss from iproute2)
	p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
	while ss -ltn "sport = :$p" | grep -q LISTEN; do p=$((p + 1)); done
	echo "$p"
}

run_client() { # run_client URL N C FILE
	"$B/bin/iroute-bench-finra" --url "$1" --n "$2" --concurrency "$3" --warmup 200 --check \
		--json "$4" > /dev/null || true
}

rows=""
add_row() { # add_row TRANSPORT MODE C FILE
	e=$(field errors "$4"); w=$(field wrong "$4")
	row=$(printf '{"transport": "%s", "mode": "%s", "concurrency": %s, "p50_ms": %s, "p99_ms": %s, "throughput_rps": %s, "errors": %s}' \
		"$1" "$2" "$3" "$(field p50_ms "$4")" "$(field p99_ms "$4")" \
		"$(field throughput_rps "$4")" "$(( ${e:-1} + ${w:-0} ))")
	rows="${rows:+$rows,
  }$row"
}

for tr in ipc tcp; do
	STATE="$ROOT/$tr"
	"$IR" local down --state "$STATE" >/dev/null 2>&1 || true
	"$IR" local up "$STACK" --transport "$tr" --state "$STATE" > "$ROOT/up-$tr.log"
	entry=$(sed -n 's/.*"entry_url":[^"]*"\([^"]*\)".*/\1/p' "$STATE/state.json")
	cc=$(sed -n 's/.*"cc_url":[^"]*"\([^"]*\)".*/\1/p' "$STATE/state.json")
	# Every function's instances, by their HTTP address, from the coordinator.
	funcs=$(curl -s -H "Authorization: Bearer $(cat "$STATE/token")" "$cc/v1/table" |
		grep -o '"function":"[a-z0-9-][a-z0-9-]*","node":"[^"]*","addresses":{"http":"[^"]*"' |
		sed 's/"function":"\([^"]*\)".*"http":"\([^"]*\)"/\1 http:\/\/\2/' |
		awk '{ u[$1] = u[$1] (u[$1] ? "," : "") $2 } END { for (f in u) printf "%s%s=%s", n++ ? ";" : "", f, u[f] }')
	wf=$(ls "$STATE"/build/*/function/workflow.json | head -n 1)
	port=$(free_port)
	port=$port IROUTE_METRICS_PORT=$(free_port) IROUTE_LOCK_FILE="$ROOT/central-$tr.lock" \
		IROUTE_WORKFLOW="$wf" IROUTE_CENTRAL_FUNCTIONS="$funcs" \
		"$B/bin/iroute-bench-central" > "$ROOT/central-$tr.log" 2>&1 &
	CPID=$!
	i=0
	until curl -sf "http://127.0.0.1:$port/_/health" > /dev/null; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "central did not start" >&2; exit 1; }
		sleep 0.05
	done
	for c in 1 "$MAXC"; do
		n=$N1; [ "$c" = 1 ] || n=$NC
		run_client "$entry" "$n" "$c" "$ROOT/direct-$tr-$c.json"
		add_row "$tr" direct "$c" "$ROOT/direct-$tr-$c.json"
		run_client "http://127.0.0.1:$port" "$n" "$c" "$ROOT/central-$tr-$c.json"
		add_row "$tr" central "$c" "$ROOT/central-$tr-$c.json"
	done
	# The entry's own figure (dispatch to result on the entry's clock).
	"$IR" bench --state "$STATE" --n "$N1" --concurrency 1 --json "$ROOT/entry-$tr.json" \
		> "$ROOT/entry-$tr.txt"
	kill "$CPID"; wait "$CPID" 2>/dev/null || true; CPID=""
	"$IR" local down --state "$STATE" > /dev/null
	STATE=""
done
printf '[\n  %s\n]\n' "$rows" > "$OUT"

echo "FINRA-5, $(nproc) CPUs; direct = iroute, central = every hop through one HTTP orchestrator"
printf '%-4s %-8s %4s %9s %9s %10s %7s\n' transport mode conc p50_ms p99_ms req/s errors
sed -n 's/.*"transport": "\([a-z]*\)", "mode": "\([a-z]*\)", "concurrency": \([0-9]*\), "p50_ms": \([0-9.]*\), "p99_ms": \([0-9.]*\), "throughput_rps": \([0-9.]*\), "errors": \([0-9]*\).*/\1 \2 \3 \4 \5 \6 \7/p' "$OUT" |
	while read -r t m c p50 p99 rps e; do
		printf '%-9s %-8s %4s %9s %9s %10.0f %7s\n' "$t" "$m" "$c" "$p50" "$p99" "$rps" "$e"
	done
for tr in ipc tcp; do
	d1=$(field p50_ms "$ROOT/direct-$tr-1.json"); c1=$(field p50_ms "$ROOT/central-$tr-1.json")
	dt=$(field throughput_rps "$ROOT/direct-$tr-$MAXC.json"); ct=$(field throughput_rps "$ROOT/central-$tr-$MAXC.json")
	awk -v t="$tr" -v d1="$d1" -v c1="$c1" -v dt="$dt" -v ct="$ct" 'BEGIN {
		printf "%s: central/direct p50 at concurrency 1 = %.2fx; direct/central throughput = %.2fx\n",
		       t, c1 / d1, dt / ct }'
	echo "$tr: the entry's own /bench: $(cat "$ROOT/entry-$tr.txt")"
done
echo "wrote $OUT"
