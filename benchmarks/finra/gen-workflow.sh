#!/bin/sh
# gen-workflow.sh W - print the FINRA workflow.json of width W (5..1000).
#
# Width W = the number of parallel functions feeding the join
# margin-balance: marketdata plus W-1 rule functions.  The W-1 rule
# functions are dealt round-robin to the four rules lastpx, side, tradedate,
# volume, so rule r (0..3 in that order) gets n_r = floor((W-1-r+3)/4)
# functions.  A rule with one function is named after the rule ("lastpx");
# a rule with n > 1 functions is split into "<rule>-<k>-of-<n>", k = 1..n,
# and function k checks the trades whose 0-based index i has i % n == k-1
# (the handler reads its partition from its own name).  Entry order, and so
# the join's input order, is: marketdata, then each rule's functions in
# rule order and k order.
#   W=5:  marketdata lastpx side tradedate volume
#   W=10: marketdata lastpx-{1,2,3}-of-3 side-{1,2}-of-2 tradedate-{1,2}-of-2
#         volume-{1,2}-of-2
set -eu

usage() {
	echo "usage: $0 WIDTH   (an integer, 5 <= WIDTH <= 1000)" >&2
	exit 2
}
[ $# -eq 1 ] || usage
case $1 in
'' | 0* | *[!0-9]*) usage ;;
esac
w=$(($1 + 0))
[ "$w" -ge 5 ] && [ "$w" -le 1000 ] || usage

names=marketdata
rules="lastpx side tradedate volume"
r=0
for rule in $rules; do
	n=$(((w - 1 - r + 3) / 4))
	if [ "$n" -eq 1 ]; then
		names="$names $rule"
	else
		k=1
		while [ "$k" -le "$n" ]; do
			names="$names $rule-$k-of-$n"
			k=$((k + 1))
		done
	fi
	r=$((r + 1))
done

printf '{\n  "name": "finra",\n  "functions": {\n'
for f in $names; do
	printf '    "%s": {"next": ["margin-balance"]},\n' "$f"
done
printf '    "margin-balance": {}\n  },\n  "entry": [\n'
sep=
for f in $names; do
	printf '%s    "%s"' "$sep" "$f"
	sep=',
'
done
printf '\n  ]\n}\n'
