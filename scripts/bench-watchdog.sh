#!/usr/bin/env bash
# bench-watchdog.sh BUILD_DIR OUT_JSON - what iroute-watchdog's http mode
# costs in front of a function's own HTTP server.
#
# The upstream is iroute-bench-upstream ("OK\n" for GET /), started by the
# watchdog as its fprocess.  Measured in one run:
#   start-up  exec of the watchdog -> first 200 on /_/health, 5 restarts
#             (fresh ports each time).  The script takes bash's
#             $EPOCHREALTIME right before it starts the watchdog and
#             `iroute-bench-upstream --probe-health URL --since T` polls
#             with raw sockets every 0.5 ms and prints the ms since T
#             (curl in a loop costs a few ms per try).  The fork of the
#             watchdog by bash is included.
#   RSS       VmRSS of the watchdog process alone (not its child) and of
#             the upstream once healthy, VmHWM of both after the load.
#   load      wrk --latency, threads = min(2, conns), conns 1, 16, 64,
#             WD_BENCH_SECONDS (5) s each, against the upstream directly
#             and through the watchdog; the two alternate which goes first
#             from one connection count to the next, so slow drift on the
#             machine does not always favour the same side.
# Any non-2xx answer or socket error through the watchdog fails the run.
#
# The watchdog runs with healthcheck_interval=0 (no drain wait on SIGTERM)
# and otherwise default settings.  WD_BENCH_MODE=serializing (test knob for
# this script only) runs the watchdog with fprocess=cat and starts the
# upstream separately; its "watchdog" figures are then fork-per-request,
# not the proxy.
#
# OUT_JSON (schema "iroute-bench-watchdog/1"; latencies in µs, RSS in KiB):
#   { "schema": "iroute-bench-watchdog/1",
#     "machine": { "nproc": 2, "kernel": "6.1.0-...", "date": "2026-...Z",
#                  "wrk": "wrk debian/4.1.0-3+b2 [epoll]" },
#     "config": { "mode": "http", "seconds": 5, "startup_runs": 5 },
#     "startup_ms": { "runs": [ .. ], "min": 3.1, "median": 3.4 },
#     "rss_kib": { "watchdog_idle": .., "watchdog_hwm_after_load": ..,
#                  "upstream_idle": .., "upstream_hwm_after_load": .. },
#     "load": [ { "conns": 1, "threads": 1, "added_p50_us": ..,
#                 "upstream": { "rps": .., "requests": .., "p50_us": ..,
#                               "p75_us": .., "p90_us": .., "p99_us": ..,
#                               "non_2xx": 0, "socket_errors": 0 },
#                 "watchdog": { same } }, .. ] }
set -euo pipefail

die() {
	echo "bench-watchdog: $*" >&2
	exit 1
}

[ $# -eq 2 ] || die "usage: $0 BUILD_DIR OUT_JSON"
WD=$(realpath "$1/bin/iroute-watchdog") || die "no $1/bin/iroute-watchdog (make it first)"
UPB=$(realpath "$1/bin/iroute-bench-upstream") || die "no $1/bin/iroute-bench-upstream"
OUT=$2
SECS=${WD_BENCH_SECONDS:-5}
MODE=${WD_BENCH_MODE:-http}
RUNS=5
CONNS=(1 16 64)
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "WD_BENCH_SECONDS='$SECS': a whole number of seconds, please"
[[ $MODE == http || $MODE == serializing ]] || die "WD_BENCH_MODE='$MODE': http or serializing"
command -v wrk >/dev/null || die "wrk is not installed (make deps, or apt-get install wrk)"
command -v ss >/dev/null || die "ss is not installed (apt-get install iproute2)"

TMP=$(mktemp -d /tmp/iroute-bench-wd.XXXXXX)
WPID='' UPID='' OWN_UPID=''

# The processes under $1 (children, grandchildren, ...).
descendants() {
	local p c
	for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$p"
		descendants "$p"
	done
}

# SIGTERM, up to 5 s to exit, then SIGKILL.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		# A zombie child of ours counts as gone.
		[[ $(awk '/^State:/ {print $2}' /proc/"$pid"/status 2>/dev/null) == Z ]] && break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# The watchdog, then whatever it left running (its child should be gone
# with it; a leftover one is stopped too), then an upstream we started.
stop_all() {
	local left=""
	if [ -n "$WPID" ]; then
		left=$(descendants "$WPID")
		stop_pid "$WPID"
		for p in $left; do stop_pid "$p"; done
	fi
	stop_pid "$OWN_UPID"
	WPID='' UPID='' OWN_UPID=''
}

cleanup() {
	stop_all
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# free_port VAR: a loopback TCP port no socket uses (listening or not)
# and not handed out before in this run.
TAKEN=" "
free_port() {
	local p try
	for ((try = 0; try < 500; try++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		[[ $TAKEN == *" $p "* ]] && continue
		[ -z "$(ss -Htan "sport = :$p")" ] || continue
		TAKEN+="$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	die "no free loopback port found"
}

show_log() {
	echo "---- watchdog log ($TMP/wd.log, last 40 lines) ----" >&2
	tail -n 40 "$TMP/wd.log" >&2 || true
	echo "----" >&2
}

# kib PID FIELD: VmRSS / VmHWM in KiB.
kib() {
	awk -v f="$2:" '$1 == f {print $2}' /proc/"$1"/status 2>/dev/null || true
}

# Starts the watchdog (and in serializing mode the upstream) on fresh
# ports and waits for /_/health; sets UP WP MP WPID UPID and STARTUP_MS.
start_stack() {
	free_port UP
	free_port WP
	free_port MP
	rm -f "$TMP/.lock"
	local fproc="$UPB --port $UP"
	if [ "$MODE" = serializing ]; then
		fproc='cat'
		"$UPB" --port "$UP" 2>>"$TMP/up.log" &
		OWN_UPID=$!
	fi
	local t0=$EPOCHREALTIME
	mode=$MODE fprocess=$fproc upstream_url=http://127.0.0.1:$UP port=$WP \
		IROUTE_METRICS_PORT=$MP IROUTE_LOCK_FILE=$TMP/.lock healthcheck_interval=0 \
		"$WD" >>"$TMP/wd.log" 2>&1 &
	WPID=$!
	if ! STARTUP_MS=$("$UPB" --probe-health "http://127.0.0.1:$WP/_/health" \
		--timeout-ms 5000 --since "$t0" 2>"$TMP/probe.err"); then
		cat "$TMP/probe.err" >&2
		if ! kill -0 "$WPID" 2>/dev/null; then
			local rc=0
			wait "$WPID" || rc=$?
			echo "bench-watchdog: the watchdog exited with status $rc" >&2
		fi
		show_log
		die "iroute-watchdog (mode=$MODE, port $WP) did not become healthy within 5 s"
	fi
	if [ "$MODE" = serializing ]; then
		UPID=$OWN_UPID
	else
		local p
		for p in $(descendants "$WPID"); do
			if [[ $(cat /proc/"$p"/comm 2>/dev/null) == iroute-bench-up* ]]; then
				UPID=$p
				break
			fi
		done
		[ -n "$UPID" ] || {
			show_log
			die "the watchdog is healthy but its upstream child is not running"
		}
	fi
	# The upstream must answer directly too (http mode: the watchdog may
	# report healthy before its child listens).
	"$UPB" --probe-health "http://127.0.0.1:$UP/" --timeout-ms 5000 >/dev/null ||
		die "the upstream on port $UP does not answer"
}

# wrk_run NAME CONNS URL: runs wrk, leaves its output in $TMP/NAME.txt and
# the parsed figures in R_* (latencies in µs).
wrk_run() {
	local name=$1 c=$2 url=$3 t=$(($2 < 2 ? $2 : 2))
	wrk --latency -t"$t" -c"$c" -d"${SECS}s" "$url" >"$TMP/$name.txt" 2>&1 ||
		{
			cat "$TMP/$name.txt" >&2
			die "wrk failed against $url"
		}
	local line
	line=$(awk '
		function us(v) {
			if (v ~ /us$/) return v + 0
			if (v ~ /ms$/) return v * 1000
			if (v ~ /m$/) return v * 60e6
			if (v ~ /h$/) return v * 3600e6
			if (v ~ /s$/) return v * 1e6
			return -1
		}
		$1 == "50%" { p50 = us($2) } $1 == "75%" { p75 = us($2) }
		$1 == "90%" { p90 = us($2) } $1 == "99%" { p99 = us($2) }
		$2 == "requests" && $3 == "in" { req = $1 }
		/^Requests\/sec:/ { rps = $2 }
		/Socket errors:/ { gsub(/,/, ""); serr = $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { non2 = $NF }
		END { printf "%s %s %s %s %s %s %d %d\n", rps, req, p50, p75, p90, p99, non2, serr }
	' "$TMP/$name.txt")
	read -r R_RPS R_REQ R_P50 R_P75 R_P90 R_P99 R_NON2 R_SERR <<<"$line"
	[[ -n $R_RPS && -n $R_P99 && -n $R_REQ ]] || {
		cat "$TMP/$name.txt" >&2
		die "cannot parse the output of wrk against $url"
	}
}

json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

# ---- 1. start-up time (the last instance stays up for the rest) ----
declare -a START
for ((i = 0; i < RUNS; i++)); do
	[ "$i" -eq 0 ] || stop_all
	start_stack
	START+=("$STARTUP_MS")
done
read -r ST_MIN ST_MED < <(printf '%s\n' "${START[@]}" | sort -g |
	awk '{v[NR] = $1} END {printf "%s %s\n", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}')

# ---- 2. RSS when idle ----
sleep 0.2
WD_RSS=$(kib "$WPID" VmRSS)
UP_RSS=$(kib "$UPID" VmRSS)

# ---- 3. load ----
declare -A RES
k=0
for c in "${CONNS[@]}"; do
	order=(upstream watchdog)
	((k++ % 2)) && order=(watchdog upstream)
	for side in "${order[@]}"; do
		if [ "$side" = upstream ]; then url=http://127.0.0.1:$UP/; else url=http://127.0.0.1:$WP/; fi
		wrk_run "$side-$c" "$c" "$url"
		kill -0 "$WPID" 2>/dev/null || {
			show_log
			die "the watchdog died during the load ($side, $c connections)"
		}
		RES[$side,$c]="$R_RPS $R_REQ $R_P50 $R_P75 $R_P90 $R_P99 $R_NON2 $R_SERR"
		if ((R_NON2 + R_SERR > 0)); then
			cat "$TMP/$side-$c.txt" >&2
			if [ "$side" = watchdog ]; then
				show_log
				die "errors through the watchdog at $c connections: $R_NON2 non-2xx, $R_SERR socket errors"
			fi
			echo "bench-watchdog: warning: the upstream alone had $R_NON2 non-2xx, $R_SERR socket errors at $c connections" >&2
		fi
		[ "$R_REQ" -gt 0 ] || die "no request completed ($side, $c connections)"
	done
done

# ---- 4. RSS high-water marks after the load ----
WD_HWM=$(kib "$WPID" VmHWM)
UP_HWM=$(kib "$UPID" VmHWM)

# ---- report ----
printf '\niroute-watchdog mode=%s, %s s per run, wrk --latency, threads = min(2, conns)\n\n' "$MODE" "$SECS"
printf '%5s | %12s | %12s | %19s | %19s | %13s\n' conns "upstream rps" "watchdog rps" \
	"upstream p50/p99 µs" "watchdog p50/p99 µs" "added p50 µs"
printf '%s\n' "------|--------------|--------------|---------------------|---------------------|--------------"
for c in "${CONNS[@]}"; do
	read -r u_rps _ u_p50 _ _ u_p99 _ _ <<<"${RES[upstream,$c]}"
	read -r w_rps _ w_p50 _ _ w_p99 _ _ <<<"${RES[watchdog,$c]}"
	added=$(awk -v a="$w_p50" -v b="$u_p50" 'BEGIN {printf "%.0f", a - b}')
	printf '%5s | %12.0f | %12.0f | %19s | %19s | %13s\n' "$c" "$u_rps" "$w_rps" \
		"$(printf '%.0f / %.0f' "$u_p50" "$u_p99")" "$(printf '%.0f / %.0f' "$w_p50" "$w_p99")" "$added"
done
printf '\nstart-up (exec -> first 200 on /_/health, %d runs): min %.2f ms, median %.2f ms (%s)\n' \
	"$RUNS" "$ST_MIN" "$ST_MED" "${START[*]}"
printf 'RSS watchdog: %s KiB idle, %s KiB high-water after the load\n' "$WD_RSS" "$WD_HWM"
printf 'RSS upstream: %s KiB idle, %s KiB high-water after the load (reference)\n' "$UP_RSS" "$UP_HWM"

side_json() {
	local rps req p50 p75 p90 p99 non2 serr
	read -r rps req p50 p75 p90 p99 non2 serr <<<"$1"
	printf '{"rps": %s, "requests": %s, "p50_us": %s, "p75_us": %s, "p90_us": %s, "p99_us": %s, "non_2xx": %s, "socket_errors": %s}' \
		"$rps" "$req" "$p50" "$p75" "$p90" "$p99" "$non2" "$serr"
}

mkdir -p "$(dirname "$OUT")"
{
	printf '{\n  "schema": "iroute-bench-watchdog/1",\n'
	printf '  "machine": {"nproc": %s, "kernel": %s, "date": %s, "wrk": %s},\n' "$(nproc)" \
		"$(json_str "$(uname -r)")" "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" \
		"$(json_str "$(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//')")"
	printf '  "config": {"mode": %s, "seconds": %s, "startup_runs": %s},\n' "$(json_str "$MODE")" \
		"$SECS" "$RUNS"
	printf '  "startup_ms": {"runs": [%s], "min": %s, "median": %s},\n' \
		"$(IFS=,; echo "${START[*]}" | sed 's/,/, /g')" "$ST_MIN" "$ST_MED"
	printf '  "rss_kib": {"watchdog_idle": %s, "watchdog_hwm_after_load": %s, "upstream_idle": %s, "upstream_hwm_after_load": %s},\n' \
		"${WD_RSS:-null}" "${WD_HWM:-null}" "${UP_RSS:-null}" "${UP_HWM:-null}"
	printf '  "load": [\n'
	n=0
	for c in "${CONNS[@]}"; do
		read -r _ _ u_p50 _ <<<"${RES[upstream,$c]}"
		read -r _ _ w_p50 _ <<<"${RES[watchdog,$c]}"
		added=$(awk -v a="$w_p50" -v b="$u_p50" 'BEGIN {printf "%.2f", a - b}')
		printf '    {"conns": %s, "threads": %s, "added_p50_us": %s,\n' "$c" $((c < 2 ? c : 2)) "$added"
		printf '     "upstream": %s,\n' "$(side_json "${RES[upstream,$c]}")"
		printf '     "watchdog": %s}' "$(side_json "${RES[watchdog,$c]}")"
		n=$((n + 1))
		[ "$n" -lt "${#CONNS[@]}" ] && printf ',\n' || printf '\n'
	done
	printf '  ]\n}\n'
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
