#!/bin/sh
# test-images.sh - the three templates built into images and run as
# containers (`make test-images`, after `make image`; root, buildah and
# podman, the Debian archive reachable).  Not part of `make test`.
#
# 1. Build contexts as faas-cli lays them out (scripts/faas-context.sh):
#    the c-cc sample (workflow "hello": hello -> world), the c-func sample
#    twice (hello, world), the c-entry sample, and FINRA's lastpx with
#    stack.yml's configuration.copy (./common).
# 2. `buildah bud` each (docker format, so HEALTHCHECK is kept) on
#    RUNTIME_IMAGE=$IMAGE.
# 3. Run the sample workflow as four containers on the host network, each
#    read-only but for /tmp (podman's --read-only), as uid 1000, sharing an
#    IPC directory as the cluster's hostPath does, on free ports: the
#    coordinator alone first, then each function and the entry pointed at
#    it.  Each must answer GET /_/health 200 (and its image's HEALTHCHECK
#    must pass); then POST / through the entry must come back upper-cased,
#    and POST /bench must answer every request.
# Containers are removed on every exit; the images stay
# (localhost/iroute-test-<fn>:latest).
#
# Environment: IMAGE [localhost/iroute-runtime:latest], BASE_IMAGE
# [localhost/debian:bookworm], OCI_RUNTIME [/usr/sbin/runc].
set -eu

IMAGE=${IMAGE:-localhost/iroute-runtime:latest}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm}
OCI_RUNTIME=${OCI_RUNTIME:-/usr/sbin/runc}
cd "$(dirname "$0")/.."
repo=$(pwd)
t0=$(date +%s)

say() { echo "test-images: $*"; }
die() {
	echo "test-images: FAIL: $*" >&2
	exit 1
}

for t in buildah podman curl ss; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/base-image.sh installs buildah and podman)"
done
podman image exists "$IMAGE" || die "no runtime image $IMAGE: run make image"
podman image exists "$BASE_IMAGE" || die "no base image $BASE_IMAGE: run make image"

tmp=$(mktemp -d /var/tmp/iroute-images.XXXXXX)
containers=""
cleanup() {
	trap '' INT TERM # a second signal must not cut the cleanup short
	for c in $containers; do
		podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. contexts ----
ctx() { # LANG CWD HANDLER FN [COPY]
	(cd "$2" && "$repo/scripts/faas-context.sh" -t "$repo/template" -o "$tmp/build" "$1" "$3" "$4" ${5:+"$5"})
}
ctx c-cc . template/c-cc/function hello-cc
ctx c-func . template/c-func/function hello
ctx c-func . template/c-func/function world
ctx c-entry . template/c-entry/function hello-entry
ctx c-func benchmarks/finra ./lastpx lastpx ./common

# ---- 2. images ----
for fn in hello-cc hello world hello-entry lastpx; do
	say "building localhost/iroute-test-$fn"
	t=$(date +%s)
	buildah bud --isolation chroot --format docker --layers -q \
		--build-arg RUNTIME_IMAGE="$IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" \
		-t "localhost/iroute-test-$fn:latest" "$tmp/build/$fn" >"$tmp/bud-$fn.log" 2>&1 ||
		{ tail -30 "$tmp/bud-$fn.log" >&2; die "buildah bud of $fn failed"; }
	say "built $fn in $(($(date +%s) - t)) s"
done

# ---- 3. containers ----
free_port() {
	while :; do
		p=$(shuf -i 20000-60000 -n 1)
		[ -z "$(ss -Htan "( sport = :$p )")" ] && echo "$p" && return
	done
}
token=$(head -c 24 /dev/urandom | base64)
mkdir -m 1777 "$tmp/ipc"

run() { # NAME PORT IMAGE-FN ENV...
	name="iroute-test-$1-$$" port=$2 img=$3
	shift 3
	mport=$(free_port)
	containers="$containers $name" # first: a signal may come while it starts
	podman run --rm -d --runtime "$OCI_RUNTIME" --network host \
		--ulimit nofile=1024:1024 --ulimit nproc=1000:1000 \
		--read-only --health-interval disable -v "$tmp/ipc:/run/iroute" \
		--name "$name" -e port="$port" -e IROUTE_METRICS_PORT="$mport" \
		-e IROUTE_TOKEN="$token" "$@" "localhost/iroute-test-$img:latest" \
		>/dev/null 2>"$tmp/run-$name.log" ||
		{ cat "$tmp/run-$name.log" >&2; die "podman run of $name failed"; }
	# (podman's complaints about systemd timers for HEALTHCHECK stay in
	# that log: the check is run by hand below.)
}

healthy() { # NAME PORT
	name="iroute-test-$1-$$"
	i=0
	while [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/_/health")" != 200 ]; do
		i=$((i + 1))
		if [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ] ||
			[ $i -gt 300 ]; then
			podman logs "$name" >&2 || true
			die "$1: GET /_/health is not 200"
		fi
		sleep 0.1
	done
	podman healthcheck run "$name" >/dev/null ||
		die "$1: the image's HEALTHCHECK fails while /_/health answers 200"
	[ "$(podman exec "$name" id -u)" = 1000 ] || die "$1 does not run as uid 1000"
	say "$1 healthy on port $2"
}

expect() { # WHAT WANT GOT
	[ "$3" = "$2" ] || die "$1: got \"$3\", want \"$2\""
}

p_cc=$(free_port)
run cc "$p_cc" hello-cc
healthy cc "$p_cc"
cc=IROUTE_CC=http://127.0.0.1:$p_cc

p_hello=$(free_port)
run hello "$p_hello" hello -e "$cc" -e IROUTE_FUNCTION=hello
healthy hello "$p_hello"
expect "POST / on hello" "HELLO, WORLD" "$(curl -s -d 'hello, world' "http://127.0.0.1:$p_hello/")"

p_world=$(free_port)
run world "$p_world" world -e "$cc" -e IROUTE_FUNCTION=world
healthy world "$p_world"

p_entry=$(free_port)
run entry "$p_entry" hello-entry -e "$cc"
healthy entry "$p_entry"
expect "POST / through the entry" "ONE HOP AT A TIME" \
	"$(curl -s -d 'one hop at a time' "http://127.0.0.1:$p_entry/")"
bench=$(curl -s -X POST "http://127.0.0.1:$p_entry/bench?n=200&concurrency=4")
case $bench in
*'"ok":200'*'"errors":0'* | *'"errors":0'*'"ok":200'*) say "bench: $bench" ;;
*) die "POST /bench: $bench" ;;
esac

say "IPC sockets in the shared directory: $(find "$tmp/ipc" -name '*.sock' | wc -l)"
say "PASS: 5 images built, 4 containers healthy, the workflow answered, in $(($(date +%s) - t0)) s"
