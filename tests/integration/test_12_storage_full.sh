#!/usr/bin/env bash
# A full LMDB map: the broker says so (storage_full) and stores nothing
# half-way; it stays up and its audit log still verifies; since every read
# is audited, reads are refused too rather than answered unaccounted (a
# refusal is still answered, its audit record lost and logged); and
# once space is added (a larger map_size_mb and SIGHUP, no restart) writes
# and reads resume.
. "$(dirname "$0")/lib.sh"
sandbox_up
open_policy
CONF="$SB/broker/broker.conf"
sed -i '/^map_size_mb/d' "$CONF"
printf 'map_size_mb = 1\nrate_per_second = 1000000\nrate_burst = 10000000\n' >>"$CONF"
"$top/tests/sandbox" stop broker "$SB"
"$top/tests/sandbox" start broker "$SB" >/dev/null
pid=$(cat "$SB/broker/pid")

# Fill it: new publishes with the longest notes until the map is full.
probe police --publish "$CHILD_A" --ref fill --fresh --repeat 2000 \
	--note-size 280 --timeout 5000 >"$SB/fill.out" 2>&1 || true
stored=$(grep -c '^ok ack fill' "$SB/fill.out" || true)
full=$(grep -c '^error storage_full: ' "$SB/fill.out" || true)
[ "$full" -gt 0 ] || fail "the 1 MiB store never filled ($stored stored)"
ok "$stored publishes stored, then $full refused storage_full"
assert_eq "$(grep -c -E '^(ok|error)' "$SB/fill.out")" 2000 "every one of the 2000 was answered"
kill -0 "$pid" || fail "the broker died when its store filled"
ok "the broker stays up"

# Fill what is left with smaller writes, then with reads (each read
# writes its audit record), until even those do not fit.
probe police --publish "$CHILD_B" --ref small --fresh --repeat 2000 \
	--timeout 5000 >"$SB/fill2.out" 2>&1 || true
probe police --consents "$CHILD_A" --fresh --repeat 2000 \
	--timeout 5000 >"$SB/fill3.out" 2>&1 || true
assert_match "$(grep -E "^(ok|error)" "$SB/fill2.out" | tail -1)" "^error storage_full: " "smaller publishes fill it too"
assert_match "$(grep -E "^(ok|error)" "$SB/fill3.out" | tail -1)" "^error storage_full: " "and then reads"

before=$(snapshot)
audit=$(entries audit)
expect_status 1 probe police --publish "$CHILD_B" --ref one-more
assert_match "$OUT" "^error storage_full: " "a further publish is refused storage_full"
assert_eq "$(snapshot)" "$before" "and nothing of it is stored"
expect_status 1 probe police --consents "$CHILD_A"
assert_match "$OUT" "^error storage_full: " "a read, which must be audited, is refused too (never answered unaccounted)"
assert_eq "$(entries audit)" "$audit" "nothing was added to the audit log"
expect_status 0 "$BIN/ehx-broker" audit -c "$CONF" --tail 1
assert_match "$OUT" "Merkle tree and checkpoints verified" "the audit log of a full store still verifies"

# Space added while it runs.
sed -i 's/^map_size_mb = 1$/map_size_mb = 64/' "$CONF"
seen=$(grep -c 'may now grow to 64 MiB' "$SB/broker/broker.log" || true)
kill -HUP "$pid"
i=0
while [ "$(grep -c 'may now grow to 64 MiB' "$SB/broker/broker.log" || true)" -le "$seen" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the broker did not take the larger map on SIGHUP"
	sleep 0.1
done
ok "SIGHUP: the store may grow to 64 MiB, without a restart"
expect_status 0 probe police --publish "$CHILD_B" --ref after-space --note-size 280
assert_match "$OUT" "^ok ack after-space$" "writes resume"
expect_status 0 probe police --consents "$CHILD_A"
assert_match "$OUT" "^ok consent" "and reads"
assert_eq "$(cat "$SB/broker/pid")" "$pid" "the same broker process throughout"
