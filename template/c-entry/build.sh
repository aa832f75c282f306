#!/bin/sh
# build.sh [--prefix DIR] [--out FILE] - compile a c-entry workflow entry.
#
# Run in the build context (faas-cli's build/<fn>/, the image's build
# stage, or `iroute local up`'s): every .c file directly in function/ (not
# in its subfolders: those hold what the sources #include, e.g. the paths
# stack.yml's `configuration: copy:` brings in) is compiled with
# -I function and the runtime's headers, and linked with libiroute_entry.a
# (main(): the entry, which calls your generate_data() for POST /bench when
# you define one) and libiroute.a into one binary.  With no .c file at all
# the binary is the plain entry (iroute-entry).
#
#   --prefix DIR  where `make install` put iroute (include/, lib/) [/usr/local]
#   --out FILE    the binary [./entry]
#
# Environment: CC [cc], CFLAGS [-std=c11 -O2 -g -Wall -Wextra], CPPFLAGS,
# LDFLAGS, LDLIBS (appended to the link).
# function/libs (optional) names more libraries, whitespace-separated, #
# comments allowed: a word starting with "-" goes to the link as it is
# (-lm, -L/opt/lib); any other word is a pkg-config module (hiredis,
# libpq) whose --cflags and --libs are added.  In an image, install the
# -dev packages with the ADDITIONAL_PACKAGE build argument; the runtime
# packages of whatever the binary links follow into the final image.
set -eu

ARCHIVE=libiroute_entry.a
prefix=/usr/local
out=./entry

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
for f in "$prefix/include/iroute/handler.h" "$prefix/lib/$ARCHIVE" \
	"$prefix/lib/libiroute.a" "$prefix/lib/pkgconfig/iroute.pc"; do
	[ -f "$f" ] || die "$f is missing: is iroute installed under $prefix? (make install PREFIX=...)"
done

# iroute.pc locates itself (prefix=${pcfiledir}/../..), so it serves a
# DESTDIR install as well as /usr/local.
PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
iroute_cflags=$(pkg-config --cflags iroute) || die "pkg-config cannot read $prefix/lib/pkgconfig/iroute.pc"
iroute_libs=$(pkg-config --libs iroute)

extra_cflags=""
extra_libs=""
if [ -f function/libs ]; then
	set -f # words, not file names
	# shellcheck disable=SC2013 # whitespace-separated words, by design
	for w in $(sed 's/#.*//' function/libs); do
		case $w in
		-*) extra_libs="$extra_libs $w" ;;
		*)
			pkg-config --exists "$w" ||
				die "function/libs: no pkg-config module \"$w\" (its -dev package is missing: ADDITIONAL_PACKAGE)"
			extra_cflags="$extra_cflags $(pkg-config --cflags "$w")"
			extra_libs="$extra_libs $(pkg-config --libs "$w")"
			;;
		esac
	done
	set +f
fi

set --
for f in function/*.c; do
	[ -f "$f" ] && set -- "$@" "$f"
done

mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086 # the flag variables are word lists
${CC:-cc} ${CFLAGS:--std=c11 -O2 -g -Wall -Wextra} ${CPPFLAGS:-} -D_GNU_SOURCE -pthread \
	-I function $iroute_cflags $extra_cflags -o "$out" "$@" \
	-Wl,--as-needed "$prefix/lib/$ARCHIVE" ${LDFLAGS:-} $iroute_libs $extra_libs ${LDLIBS:-}
echo "build.sh: built $out${1:+ from $*}"
