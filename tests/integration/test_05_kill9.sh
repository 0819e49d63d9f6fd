#!/usr/bin/env bash
# Fault test: kill -9 the broker at random moments while an agency
# publishes a stream of flags through its agent. Every publish the command
# line reported as done must be stored, and no request may have had a
# second effect (each message id is decided once in the audit log).
. "$(dirname "$0")/lib.sh"
sandbox_up
N=${EHX_FAULT_PUBLISHES:-400}

children=("$CHILD_B" "$CHILD_C" "$CHILD_D" "$CHILD_E")
for c in "${children[@]}"; do
	expect_status 0 ehx_as health consent grant "$c" --given-by "Jane Doe" \
		--relation parent --types police --expires +30d
done

# The killer: kill -9 the broker every 0.1-0.5 s and start it again.
(
	while [ ! -e "$SB/stop-killing" ]; do
		sleep "0.$(( RANDOM % 4 + 1 ))"
		"$top/tests/sandbox" stop broker "$SB" --kill
		"$top/tests/sandbox" start broker "$SB" >/dev/null
	done
) >"$SB/killer.log" 2>&1 &
killer=$!

acked=0 failed=0
: >"$SB/acked"
for i in $(seq 1 "$N"); do
	if ehx_as police publish "${children[$((i % 4))]}" --category domestic_abuse --level 2 \
		--practitioner "PC Sam Jones" --ref "f-$i" >/dev/null 2>"$SB/last.err"; then
		acked=$((acked + 1))
		echo "f-$i" >>"$SB/acked"
	else
		failed=$((failed + 1))
	fi
done
touch "$SB/stop-killing"
wait $killer
kills=$(grep -c "listening on" "$SB/broker/broker.log")
ok "published $N flags with the broker killed $((kills - 1)) times: $acked acknowledged, $failed not"
[ "$acked" -gt 0 ] || fail "nothing was acknowledged"
"$top/tests/sandbox" stop broker "$SB" 2>/dev/null || true
"$top/tests/sandbox" start broker "$SB"

: >"$SB/stored.all"
for c in "${children[@]}"; do
	expect_status 0 ehx_as police --json picture "$c"
	printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert not d["truncated"]
print("\n".join(f["ref"] for a in d["involvements"] for f in a["flags"]))' >>"$SB/stored.all"
done
sort "$SB/stored.all" >"$SB/stored"
missing=$(sort "$SB/acked" | comm -23 - "$SB/stored" | wc -l)
assert_eq "$missing" 0 "every acknowledged publish is stored ($acked checked)"

expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 0 --json
dups=$(printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["message_id"] for l in sys.stdin
    if l.strip() and json.loads(l)["action"] == "publish_flag")
print(sum(1 for v in c.values() if v > 1))')
decided=$(printf '%s\n' "$OUT" | grep -c '"action":"publish_flag"')
assert_eq "$dups" 0 "no publish was decided twice ($decided decisions for $N requests)"
expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 1
assert_match "$OUT" "Merkle tree and checkpoints verified" "the audit log survives every kill -9"
