#!/bin/sh
# Install the Debian packages the build, tests and benchmarks need, if missing.
set -eu
PKGS="build-essential pkg-config check clang libclang-rt-14-dev valgrind curl
libibverbs-dev librdmacm-dev libcjson-dev libmicrohttpd-dev libzookeeper-mt-dev zookeeper openssl wrk iproute2 procps libyaml-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root, or: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get install -y -q $missing || { apt-get update -q && apt-get install -y -q $missing; }
