#!/bin/sh
# faas-context.sh [-t TEMPLATES] [-o BUILD] LANG HANDLER FN [COPY...] - lay out
# the build context of function FN as `faas-cli build` (and `--shrinkwrap`)
# does, without faas-cli: BUILD/FN/ [./build/FN/] is
#   1. cleared;
#   2. a copy of TEMPLATES/LANG/ [./template/LANG/] (Dockerfile, build.sh,
#      the template's own sample function/ ...);
#   3. overlaid, entry by entry, with the handler folder HANDLER into
#      BUILD/FN/function/ (entries named "build" and "template" skipped);
#   4. overlaid with each COPY path (stack.yml `configuration: copy:`)
#      into BUILD/FN/function/COPY.
# As with faas-cli, HANDLER and COPY are relative to the current directory
# (the stack.yml's), and a COPY path must lie inside it; symbolic links
# are followed.  Used by the template tests (runtime/tests/test_template.c)
# and scripts/test-images.sh; `iroute local up` does the same in C
# (runtime/src/stackbuild.c).
set -eu

usage() {
	echo "usage: $0 [-t TEMPLATES] [-o BUILD] LANG HANDLER FN [COPY...]" >&2
	exit 2
}

templates=./template
out=./build
while getopts t:o: opt; do
	case $opt in
	t) templates=$OPTARG ;;
	o) out=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || usage
lang=$1 handler=$2 fn=$3
shift 3

case $fn in
'' | */* | . | ..) echo "$0: bad function name \"$fn\"" >&2 && exit 2 ;;
esac
[ -d "$templates/$lang" ] || { echo "$0: no template \"$lang\" in $templates" >&2 && exit 1; }
[ -d "$handler" ] || { echo "$0: handler folder $handler is missing" >&2 && exit 1; }

ctx=$out/$fn
rm -rf "$ctx"
mkdir -p "$ctx/function"
cp -RL "$templates/$lang/." "$ctx/"

for e in "$handler"/* "$handler"/.[!.]* "$handler"/..?*; do
	[ -e "$e" ] || [ -L "$e" ] || continue
	case ${e##*/} in
	build | template) continue ;;
	esac
	cp -RL "$e" "$ctx/function/"
done

here=$(pwd -P)
for c in "$@"; do
	[ -e "$c" ] || { echo "$0: copy path $c is missing" >&2 && exit 1; }
	if [ -d "$c" ]; then
		abs=$(cd "$c" && pwd -P)
	else
		abs=$(cd "$(dirname "$c")" && pwd -P)/$(basename "$c")
	fi
	case $abs in
	"$here") echo "$0: copy path $c is the whole directory" >&2 && exit 1 ;;
	"$here"/*) ;;
	*) echo "$0: copy path $c is outside $here" >&2 && exit 1 ;;
	esac
	rel=${abs#"$here"/}
	mkdir -p "$ctx/function/$(dirname "$rel")"
	if [ -d "$c" ]; then
		mkdir -p "$ctx/function/$rel"
		cp -RL "$c/." "$ctx/function/$rel/"
	else
		cp "$c" "$ctx/function/$rel"
	fi
done
