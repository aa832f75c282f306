#!/bin/bash
# bench-watchdog.sh BUILD_DIR OUT_JSON - the watchdog benchmark (make bench-watchdog).
#
# iroute-watchdog in mode=http in front of iroute-bench-upstream (started by
# the watchdog as its fprocess, answering "OK\n"), measured with wrk in the
# same run against the upstream directly and through the watchdog, at 1, 16
# and 64 keep-alive connections, alternating.  Also: start-up time from exec
# to the first 200 on /_/health (polled with bash's /dev/tcp, no process per
# probe, ~0.2 ms resolution; includes starting the upstream, since the lock
# file waits for it), and the watchdog's resident memory idle and its peak
# under load (the upstream's for reference).
#
# JSON written to OUT_JSON:
#   {"machine": {"nproc", "kernel", "date", "wrk"}, "seconds": S,
#    "startup_ms": {"runs": [..], "min", "median"},
#    "rss_kib": {"watchdog_idle", "watchdog_peak", "upstream_idle", "upstream_peak"},
#    "load": [{"conns", "upstream": {"rps","p50_us","p99_us"},
#              "watchdog": {"rps","p50_us","p99_us"}, "added_p50_us", "added_p99_us"}]}
# WD_BENCH_SECONDS (default 5) sets each wrk run's duration.
set -euo pipefail

BIN=$(cd "${1:?usage: bench-watchdog.sh BUILD_DIR OUT_JSON}/bin" && pwd)
OUT=${2:?usage: bench-watchdog.sh BUILD_DIR OUT_JSON}
SECS=${WD_BENCH_SECONDS:-5}
TMP=$(mktemp -d /tmp/iroute-bench-wd.XXXXXX)
WD_PID=""
UP=""

cleanup() {
	[ -n "$WD_PID" ] && kill -TERM "$WD_PID" 2>/dev/null && wait "$WD_PID" 2>/dev/null
	[ -n "$UP" ] && pkill -KILL -f "iroute-bench-upstream --port $UP" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench-watchdog: wrk is missing (make deps)" >&2; exit 1; }

# A loopback port nothing listens on.
free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 20000)) # below the ephemeral range
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# 0 when GET /_/health on port $1 answers 200.
healthy() {
	local line
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'GET /_/health HTTP/1.0\r\n\r\n' >&3
	IFS= read -r -t 1 line <&3 || true
	exec 3<&-
	[[ $line == "HTTP/1.1 200"* ]]
}

now_ns() { date +%s%N; }

UP=$(free_port)
WP=$(free_port)
MP=$(free_port)

start_wd() {
	env mode=http fprocess="$BIN/iroute-bench-upstream --port $UP" \
		upstream_url="http://127.0.0.1:$UP" port="$WP" IROUTE_METRICS_PORT="$MP" \
		IROUTE_LOCK_FILE="$TMP/.lock" healthcheck_interval=0 write_timeout=5s \
		"$BIN/iroute-watchdog" 2>"$TMP/wd.log" &
	WD_PID=$!
}

stop_wd() {
	kill -TERM "$WD_PID"
	wait "$WD_PID" || true
	WD_PID=""
}

# 1. Start-up: exec to the first healthy answer, five times.
startup=()
for _ in 1 2 3 4 5; do
	t0=$(now_ns)
	start_wd
	until healthy "$WP"; do
		if (($(now_ns) - t0 > 5000000000)); then
			echo "bench-watchdog: the watchdog was not healthy within 5 s; its log:" >&2
			cat "$TMP/wd.log" >&2
			exit 1
		fi
	done
	t1=$(now_ns)
	startup+=("$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e6 }')")
	stop_wd
done
sorted=$(printf '%s\n' "${startup[@]}" | sort -n)
st_min=$(echo "$sorted" | head -1)
st_med=$(echo "$sorted" | sed -n 3p)

# 2. Idle memory.
start_wd
until healthy "$WP"; do sleep 0.01; done
sleep 0.5
UP_PID=$(pgrep -f "iroute-bench-upstream --port $UP" | head -1)
rss() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
wd_idle=$(rss "$WD_PID" VmRSS)
up_idle=$(rss "$UP_PID" VmRSS)

# 3. Load.  Prints "rps p50_us p99_us errors" for one wrk run.
run_wrk() {
	local conns=$1 url=$2 threads=2
	((conns < 2)) && threads=1
	wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency "$url" >"$TMP/wrk.out" 2>&1
	awk '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return (v + 0) * 1000
		if (v ~ /s$/) return (v + 0) * 1000000
		return v + 0
	}
	$1 == "50%" { p50 = us($2) }
	$1 == "99%" { p99 = us($2) }
	$1 == "Requests/sec:" { rps = $2 }
	/Non-2xx or 3xx responses:/ { err += $NF }
	/Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
	END { printf "%.0f %.1f %.1f %d\n", rps, p50, p99, err }' "$TMP/wrk.out"
}

rows=()
json_rows=()
for c in 1 16 64; do
	read -r u_rps u_p50 u_p99 u_err <<<"$(run_wrk "$c" "http://127.0.0.1:$UP/")"
	read -r w_rps w_p50 w_p99 w_err <<<"$(run_wrk "$c" "http://127.0.0.1:$WP/")"
	if ((w_err > 0)); then
		echo "bench-watchdog: $w_err errors through the watchdog at $c connections:" >&2
		cat "$TMP/wrk.out" "$TMP/wd.log" >&2
		exit 1
	fi
	add50=$(awk -v a="$w_p50" -v b="$u_p50" 'BEGIN { printf "%.1f", a - b }')
	add99=$(awk -v a="$w_p99" -v b="$u_p99" 'BEGIN { printf "%.1f", a - b }')
	rows+=("$(printf '| %d | %s | %s | %s / %s | %s / %s | %s |' "$c" "$u_rps" "$w_rps" \
		"$u_p50" "$u_p99" "$w_p50" "$w_p99" "$add50")")
	json_rows+=("$(printf '{"conns": %d, "upstream": {"rps": %s, "p50_us": %s, "p99_us": %s}, "watchdog": {"rps": %s, "p50_us": %s, "p99_us": %s}, "added_p50_us": %s, "added_p99_us": %s}' \
		"$c" "$u_rps" "$u_p50" "$u_p99" "$w_rps" "$w_p50" "$w_p99" "$add50" "$add99")")
done
wd_peak=$(rss "$WD_PID" VmHWM)
up_peak=$(rss "$UP_PID" VmHWM)
stop_wd

echo "iroute-watchdog mode=http vs. its upstream alone (wrk, ${SECS}s per run, keep-alive)"
echo "| conns | upstream rps | watchdog rps | upstream p50 / p99 µs | watchdog p50 / p99 µs | added p50 µs |"
echo "|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo "start-up to healthy: min ${st_min} ms, median ${st_med} ms (runs: ${startup[*]})"
echo "RSS: watchdog idle ${wd_idle} KiB, peak ${wd_peak} KiB; upstream idle ${up_idle} KiB, peak ${up_peak} KiB"

mkdir -p "$(dirname "$OUT")"
{
	printf '{"machine": {"nproc": %d, "kernel": "%s", "date": "%s", "wrk": "%s"},\n' \
		"$(nproc)" "$(uname -r)" "$(date -u +%FT%TZ)" "$(wrk --version 2>&1 | head -1 | awk '{print $2}')"
	printf ' "seconds": %s,\n' "$SECS"
	printf ' "startup_ms": {"runs": [%s], "min": %s, "median": %s},\n' \
		"$(IFS=,; echo "${startup[*]}")" "$st_min" "$st_med"
	printf ' "rss_kib": {"watchdog_idle": %s, "watchdog_peak": %s, "upstream_idle": %s, "upstream_peak": %s},\n' \
		"$wd_idle" "$wd_peak" "$up_idle" "$up_peak"
	printf ' "load": [\n  %s\n ]}\n' "$(IFS=$'\n'; echo "${json_rows[*]}" | paste -sd, - | sed 's/},{/},\n  {/g')"
} >"$OUT"
echo "wrote $OUT"
