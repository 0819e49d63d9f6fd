#!/usr/bin/env bash
# Timing side channel (issue 16, finding 1; a measurement, not a test):
# does a publish take longer when other agencies are involved with the
# child (and so are told)? The police publish, one after another on one
# connection, to children the school and health know and to children
# nobody else knows, in alternating blocks (the machine drifts). Prints
# each block's mean latency and writes, as JSON to $EHX_BENCH_OUT, the
# median of each kind, their ratio, and the spread of the blocks of one
# kind (the noise the difference is to be set against).
#
# EHX_BENCH_IDENTITY=1 (issue 17): the same with children named without
# an NHS number. The school publishes the known children by UPN and
# names; the police publish by names, date and postcode under a new
# person id each time, so that every publish is matched afresh: against
# the school's record for a known child, against nothing (at first) for
# a child nobody knows.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${EHX_BIN:-$top/build/bin}
export EHX_BIN=$BIN
BLOCKS=${EHX_BENCH_BLOCKS:-8}
PER=${EHX_BENCH_PER_BLOCK:-50}          # at most 64: open flags a child
OUTJSON=${EHX_BENCH_OUT:-$top/build/bench/side_channel.json}
SB=$(mktemp -d "${TMPDIR:-/tmp}/ehx-bench.XXXXXX")
trap '"$top/tests/sandbox" down "$SB" >/dev/null 2>&1 || true; rm -rf "$SB"' EXIT
"$top/tests/sandbox" up "$SB" >/dev/null
ENDPOINT=$(cat "$SB/broker/endpoint")
ehx() { local a=$1; shift; "$BIN/ehx" --agent "$SB/agencies/$a/agent.sock" "$@"; }
probe() {
	"$BIN/ehx-probe" --broker "$ENDPOINT" --server-curve "$SB/broker/curve.pub" \
		--broker-cert "$SB/broker/broker.crt" \
		--curve "$SB/agencies/police/curve.key" --key "$SB/agencies/police/police.key" \
		--cert "$SB/agencies/police/police.crt" --agency police "$@"
}
kids=$(/usr/bin/python3 -c '
import sys
def nhs(i):
    while True:
        s = "%09d" % (700000000 + i * 13)
        t = sum((10 - k) * int(s[k]) for k in range(9))
        c = 11 - t % 11
        c = 0 if c == 11 else c
        if c != 10:
            return s + str(c)
        i += 100000
print(" ".join(nhs(i) for i in range(2 * int(sys.argv[1]))))' "$BLOCKS")
read -r -a K <<<"$kids"
IDENTITY=${EHX_BENCH_IDENTITY:-}
# name N: the made-up family name of child N (letters only)
name() { printf 'Fam%s' "$(echo "$1" | tr 0-9 a-j)"; }
# dob N: a date of birth of child N's own
dob() { printf '2016-03-%02d' $(( 1 + 10#${1: -2} % 28 )); }
for ((i = 0; i < BLOCKS; i++)); do
	k=${K[$i]}
	if [ -n "$IDENTITY" ]; then
		ehx school publish --wait --local-id "ADM-$k" --given Amelia \
			--family "$(name "$k")" --dob "$(dob "$k")" --postcode "YO31 0AB" \
			--category school_attendance --level 2 \
			--practitioner "Jo Brown" --ref "att-$k" >/dev/null
		continue
	fi
	ehx school publish --wait "$k" --category school_attendance --level 2 \
		--practitioner "Jo Brown" --ref "att-$k" >/dev/null
	ehx health publish --wait "$k" --category mental_health --level 2 \
		--practitioner "Alex Patel" --ref "mh-$k" >/dev/null
done
# block CHILD: the mean microseconds of PER publishes (domestic abuse,
# which tells the school) on one connection.
block() {
	local s e
	s=$(date +%s%N)
	if [ -n "$IDENTITY" ]; then
		probe --fresh --repeat "$PER" --category 1 --level 3 --publish "" \
			--child-given Amelia --child-family "$(name "$1")" \
			--child-dob "$(dob "$1")" --child-postcode "YO31 0AB" \
			--child-local "NYP-$1" --ref "da-$1" >/dev/null
	else
		probe --fresh --repeat "$PER" --category 1 --level 3 --publish "$1" \
			--ref "da-$1" >/dev/null
	fi
	e=$(date +%s%N)
	echo $(( (e - s) / PER / 1000 ))
}
: >"$SB/blocks"
# In turn, each kind first half the time: the broker signs and queues a
# block's notifications a moment after it, under the block that follows.
for ((i = 0; i < BLOCKS; i++)); do
	if ((i % 2 == 0)); then
		echo "known $(block "${K[$i]}")" >>"$SB/blocks"
		echo "alone $(block "${K[$((BLOCKS + i))]}")" >>"$SB/blocks"
	else
		echo "alone $(block "${K[$((BLOCKS + i))]}")" >>"$SB/blocks"
		echo "known $(block "${K[$i]}")" >>"$SB/blocks"
	fi
done
cat "$SB/blocks" >&2
mkdir -p "$(dirname "$OUTJSON")"
/usr/bin/python3 - "$SB/blocks" "$OUTJSON" <<'PY'
import json, statistics, sys
known = [int(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("known")]
alone = [int(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("alone")]
mk, ma = statistics.median(known), statistics.median(alone)
spread = statistics.median([max(alone) - min(alone), max(known) - min(known)])
out = {"blocks": len(known), "known_us": known, "alone_us": alone,
       "known_median_us": mk, "alone_median_us": ma,
       "ratio": round(mk / ma, 3), "difference_us": mk - ma,
       "block_spread_us": spread}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(f"publish on a child others know / nobody knows: {mk:.0f} / {ma:.0f} "
      f"us (ratio {mk / ma:.2f}); blocks of one kind spread {spread:.0f} us")
PY
