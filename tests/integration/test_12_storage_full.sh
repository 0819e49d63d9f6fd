#!/usr/bin/env bash
# A full LMDB map: changes are refused storage_full once the store is
# nearly full (its last tenth is kept for the audit records of reads), and
# nothing of them is stored; the broker stays up, keeps serving reads (each
# audited) and its audit log still verifies; only when even that reserve is
# spent are reads refused, never answered unaccounted; and once space is
# added (a larger map_size_mb and SIGHUP, no restart) writes resume.
. "$(dirname "$0")/lib.sh"
sandbox_up
open_policy
CONF="$SB/broker/broker.conf"
sed -i '/^map_size_mb/d' "$CONF"
printf 'map_size_mb = 8\nrate_per_second = 1000000\nrate_burst = 10000000\n' >>"$CONF"
"$top/tests/sandbox" stop broker "$SB"
"$top/tests/sandbox" start broker "$SB" >/dev/null
pid=$(cat "$SB/broker/pid")

# Fill it: new publishes with the longest notes until the map is full.
probe police --publish "$CHILD_A" --ref fill --fresh --repeat 6000 \
	--note-size 280 --timeout 5000 >"$SB/fill.out" 2>&1 || true
stored=$(grep -c '^ok ack fill' "$SB/fill.out" || true)
full=$(grep -c '^error storage_full: ' "$SB/fill.out" || true)
[ "$full" -gt 0 ] || fail "the 8 MiB store never filled ($stored stored)"
ok "$stored publishes stored, then $full refused storage_full"
assert_eq "$(grep -c -E '^(ok|error)' "$SB/fill.out")" 6000 "every one of the 6000 was answered"
kill -0 "$pid" || fail "the broker died when its store filled"
ok "the broker stays up"

assert_match "$(grep '^error storage_full' "$SB/fill.out" | head -1)" \
	"nearly full: changes are refused to keep room for the audit records of reads" \
	"the refusal says why, in a sentence"

# Changes stay refused, nothing of them stored; reads are still served,
# each with its audit record (the store keeps its last tenth for them).
before=$(snapshot)
expect_status 1 probe police --publish "$CHILD_B" --ref one-more
assert_match "$OUT" "^error storage_full: " "a further publish is refused storage_full"
assert_eq "$(snapshot)" "$before" "and nothing of it is stored"
audit=$(entries audit)
for i in 1 2 3 4 5; do
	expect_status 0 probe police --consents "$CHILD_A"
	assert_match "$OUT" "^ok consent" "read $i of a full store is served"
done
assert_eq "$(entries audit)" "$((audit + 5))" "and each read is audited"

# Reads until even the reserve is spent: then they too are refused, never
# answered unaccounted.
probe police --consents "$CHILD_A" --fresh --repeat 8000 \
	--timeout 5000 >"$SB/reads.out" 2>&1 || true
served=$(grep -c '^ok consent' "$SB/reads.out" || true)
# (A read that also signs a checkpoint needs more room than one that does
# not: the refusals are steady only once a run of them has come.)
trailing=$(awk '/^error storage_full/ { n++; next } /^(ok|error)/ { n = 0 }
	END { print n + 0 }' "$SB/reads.out")
[ "$trailing" -ge 50 ] ||
	fail "after $served more reads, only the last $trailing were refused storage_full"
ok "after $served more reads the reserve is spent: the last $trailing reads were refused storage_full"
# Whatever room a later read finds (a checkpoint's transaction is larger
# than a plain read's), it is never answered unaccounted: served with one
# more audit record, or refused with none.
refusedn=0 servedn=0
for i in $(seq 1 20); do
	audit=$(entries audit)
	set +e
	OUT=$(probe police --consents "$CHILD_A" 2>&1)
	set -e
	case $OUT in
	"ok consent"*)
		servedn=$((servedn + 1))
		assert_eq "$(entries audit)" "$((audit + 1))" "a read served is audited" >/dev/null ;;
	"error storage_full: "*)
		refusedn=$((refusedn + 1))
		assert_eq "$(entries audit)" "$audit" "a read refused adds no record" >/dev/null ;;
	*) fail "a read of a full store answered: $OUT" ;;
	esac
done
[ "$refusedn" -gt 0 ] || fail "none of 20 reads of a full store was refused"
ok "20 more reads: $refusedn refused with no audit record, $servedn served each with one"
expect_status 0 "$BIN/ehx-broker" audit -c "$CONF" --tail 1
assert_match "$OUT" "Merkle tree and checkpoints verified" "the audit log of a full store still verifies"

# Space added while it runs.
sed -i 's/^map_size_mb = 8$/map_size_mb = 64/' "$CONF"
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
