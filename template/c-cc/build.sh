#!/bin/sh
# build.sh [--prefix DIR] [--out FILE] - package the coordinator of a workflow.
#
# The coordinator runs no user code: its binary is iroute-cc as installed,
# and the function's folder holds only the workflow (function/workflow.json,
# iroute/workflow.h).  This copies DIR/bin/iroute-cc to FILE after checking
# that the workflow is there; the workflow itself is validated by iroute-cc
# when it starts (exit 2 with one message naming the function and the
# rule).  The image copies function/workflow.json next to the binary and
# sets IROUTE_WORKFLOW; `iroute local up` points IROUTE_WORKFLOW at the
# context's function/workflow.json.
#
#   --prefix DIR  where `make install` put iroute (bin/) [/usr/local]
#   --out FILE    the coordinator binary [./iroute-cc]
set -eu

prefix=/usr/local
out=./iroute-cc

usage() {
	echo "usage: $0 [--prefix DIR] [--out FILE]" >&2
	exit 2
}
die() {
	echo "build.sh: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#--prefix=}; shift ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--out=*) out=${1#--out=}; shift ;;
	*) usage ;;
	esac
done

[ -d function ] || die "no function/ folder in $(pwd) (run me in the build context)"
[ -s function/workflow.json ] ||
	die "function/workflow.json is missing or empty (the c-cc handler folder holds the workflow)"
[ -x "$prefix/bin/iroute-cc" ] ||
	die "$prefix/bin/iroute-cc is missing: is iroute installed under $prefix? (make install PREFIX=...)"

mkdir -p "$(dirname "$out")"
rm -f "$out"
cp "$prefix/bin/iroute-cc" "$out"
chmod 0755 "$out"
echo "build.sh: packaged $out for function/workflow.json"
