#!/bin/sh
# runtime-packages BINARY... - the Debian packages that ship the shared
# libraries BINARY loads, one name a line, sorted (libc6, libcjson1,
# libmicrohttpd12, libzookeeper-mt2, ... and whatever else it links).
#
# Why: a template's build stage holds compilers and -dev packages, its final
# stage only what the binary needs to run.  The list is read off the binary
# (ldd, then dpkg -S), so libraries a function adds through
# ADDITIONAL_PACKAGE and function/libs follow into the final image with no
# second list to keep in step.  Fails, naming the library, when a library
# is not found or comes from no Debian package (e.g. one built into
# /usr/local): the final image could not load it.
# Installed as $(PREFIX)/libexec/iroute/runtime-packages (mk/install.mk).
set -eu

[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2 && exit 2; }
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.libs"' EXIT INT TERM

for bin in "$@"; do
	# "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"; the
	# vDSO and the loader have no "=>" path.
	ldd "$bin" >"$tmp.libs" || { echo "$0: ldd $bin failed" >&2 && exit 1; }
	if grep -q "=> not found" "$tmp.libs"; then
		echo "$0: $bin: $(grep "=> not found" "$tmp.libs" | tr -s ' \t' ' ')" >&2
		exit 1
	fi
	awk '$2 == "=>" && $3 ~ /^\// { print $3 }' "$tmp.libs" | while read -r lib; do
		# dpkg knows a file by the path its package ships, /lib or
		# /usr/lib (merged /usr), and ldd may name a symbolic link.
		owners=""
		real=$(readlink -f "$lib")
		for p in "$lib" "$real"; do
			case $p in
			/usr/*) alt=${p#/usr} ;;
			*) alt=/usr$p ;;
			esac
			for q in "$p" "$alt"; do
				[ -n "$owners" ] ||
					owners=$(dpkg -S "$q" 2>/dev/null | grep -v '^diversion ' || true)
			done
		done
		if [ -z "$owners" ]; then
			echo "$0: $bin: $lib comes from no Debian package" >&2
			exit 1
		fi
		# "pkg:arch, pkg2:arch: /path"
		printf '%s\n' "$owners" | sed 's/: \/.*//' | tr ',' '\n' | sed 's/^ *//; s/:.*//'
	done >>"$tmp"
done
sort -u "$tmp"
