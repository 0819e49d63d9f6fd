#!/usr/bin/env bash
# A flood from one agency does not starve the others. The broker keeps a
# token bucket per agency (rate_per_second, rate_burst; set low here): the
# police machine floods it from three connections while health publishes
# through its agent. Every health publish completes; the flood beyond the
# bucket is refused rate_limited (typed, before any signature check, not
# audited); the broker keeps serving. Counts, not timings, are asserted.
. "$(dirname "$0")/lib.sh"
sandbox_up
printf 'rate_per_second = 50\nrate_burst = 100\n' >>"$SB/broker/broker.conf"
"$top/tests/sandbox" stop broker "$SB"
"$top/tests/sandbox" start broker "$SB" >/dev/null
audit0=$(entries audit)

FLOOD=3000
for i in 1 2 3; do
	probe police --publish "$CHILD_A" --ref "flood-$i" --repeat "$FLOOD" \
		>"$SB/flood-$i.out" 2>&1 &
done
sleep 0.3
H=20
done_ok=0
for i in $(seq 1 $H); do
	if ehx_as health publish --wait "$CHILD_B" --category physical_health \
		--level $(( (i - 1) % 4 + 1 )) --practitioner "Alex Patel" --ref "calm-$i" >/dev/null 2>&1; then
		done_ok=$((done_ok + 1))
	fi
done
wait
assert_eq "$done_ok" "$H" "all $H health publishes completed while the police flooded"
sent=$(cat "$SB"/flood-*.out | grep -c -E '^(ok|error)' || true)
limited=$(cat "$SB"/flood-*.out | grep -c '^error rate_limited: ' || true)
ok "the police sent $sent requests in the flood, $limited refused rate_limited"
[ "$sent" -ge $((3 * FLOOD)) ] || fail "only $sent of $((3 * FLOOD)) flood requests were answered"
[ "$limited" -gt $((3 * FLOOD / 2)) ] || fail "only $limited of $sent flood requests were rate limited"
ok "every flood request was answered, most of them rate_limited"
assert_match "$(grep -h '^error rate_limited' "$SB"/flood-*.out | head -1)" \
	"more than 50 requests a second \\(burst 100\\) from police" "the refusal says why, in a sentence"
audit1=$(entries audit)
[ $((audit1 - audit0)) -lt $((H * 2 + 200)) ] ||
	fail "the audit grew by $((audit1 - audit0)) records: rate-limited requests are not to be audited"
ok "rate-limited requests are not audited (the audit grew by $((audit1 - audit0)))"
assert_match "$(cat "$SB/broker/broker.log")" "police is over its request rate" "the broker logs who is over the rate"
expect_status 0 probe police --publish "$CHILD_A" --ref after-flood
assert_match "$OUT" "^ok ack after-flood$" "the police are served again once the bucket refills"

# Invalid and unauthenticated traffic: junk frames from the police machine,
# and handshakes with a CURVE key the registry does not hold, while health
# publishes again.
"$top/certs/ehx-pki" ca "$SB/other" >/dev/null
"$top/certs/ehx-pki" agency "$SB/other" police police >/dev/null
auditj=$(entries audit)
probe police --junk --repeat 3000 >"$SB/junk.out" 2>&1 &
junk=$!
( for i in $(seq 1 40); do
	CURVEDIR=$SB/other/agencies probe police --publish "$CHILD_A" --timeout 500 >/dev/null 2>&1 || true
  done ) &
unauth=$!
sleep 0.3
done_ok=0
for i in $(seq 1 $H); do
	if ehx_as health publish --wait "$CHILD_B" --category physical_health \
		--level $(( i % 4 + 1 )) --practitioner "Alex Patel" --ref "calm2-$i" >/dev/null 2>&1; then
		done_ok=$((done_ok + 1))
	fi
done
wait "$junk" "$unauth" || true
assert_eq "$done_ok" "$H" "all $H health publishes completed during a flood of junk frames and refused handshakes"
bad=$(grep -c -E '^error (malformed|rate_limited): ' "$SB/junk.out" || true)
[ "$bad" -ge 3000 ] || fail "only $bad of the 3000 junk frames were answered malformed or rate_limited"
ok "all 3000 junk frames were answered (malformed, or rate_limited once over the rate)"
grew=$(( $(entries audit) - auditj ))
[ "$grew" -le $((H + 100 + 60)) ] ||
	fail "the audit grew by $grew during the junk flood: junk over the rate must not be audited"
ok "the junk flood grew the audit by $grew records (the burst of 100, health's $H, and a few more), not 3000"
refused=$(grep -c "refused: unregistered CURVE key" "$SB/broker/broker.log" || true)
[ "$refused" -ge 40 ] || fail "only $refused unregistered handshakes were logged as refused"
ok "$refused handshakes with an unregistered key were refused"
