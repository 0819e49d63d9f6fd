#!/usr/bin/env bash
# Issue 16, finding 7: what PROTOCOL.md says at the edges of the wire is
# what the broker does — sizes under CURVE, a reply to a multi-frame
# message, unknown Envelope fields, two payloads in one Body, two
# connections of one agency, and how a client learns ZAP refused its key.
. "$(dirname "$0")/lib.sh"
sandbox_up

# Sizes (§2.3): as CURVE carries it a frame is 33 bytes longer (RFC 26's
# MESSAGE command), and the broker's ZMQ_MAXMSGSIZE of 131072 is taken on
# that. So 131039 bytes is the last frame that gets TOO_LARGE; from 131040
# libzmq drops the connection and there is no reply.
expect_status 1 probe police --size 131039 --timeout 3000
assert_match "$OUT" "^error too_large: " "a frame of 131039 bytes is answered too_large"
expect_status 3 probe police --size 131040 --timeout 1500
assert_eq "$OUT" "no reply" "a frame of 131040 bytes drops the connection, unanswered"
expect_status 0 probe police --publish "$CHILD_A" --ref after-size
ok "the broker serves on after a dropped connection"

# A message of more than one frame (§2.3): MALFORMED, and the reply names
# the request its first frame holds, so a client can match it.
id=0f0e0d0c0b0a09080706050403020100
flags=$(entries flags)
expect_status 1 probe police --extra-frame --id $id --show-reply-to \
	--publish "$CHILD_A" --ref two-frames
assert_match "$OUT" "^error malformed: a message is one frame" \
	"a message of two frames is malformed, with a sentence saying why"
assert_match "$OUT" "reply-to $id" "the refusal of a two-frame message names its request"
assert_eq "$(entries flags)" "$flags" "nothing of a two-frame message is stored"
# Nothing is kept under its id: sent again as one frame, it is decided.
expect_status 0 probe police --id $id --show-reply-to --publish "$CHILD_A" --ref two-frames
assert_match "$OUT" "reply-to $id" "the same request as one frame is then accepted"
assert_eq "$(entries flags)" "$((flags + 1))" "and stored once"

# Every reply names the audit record of its decision (§5.1 audit_seq): the
# agents check it is in the log (§14.4). A refusal before the body was
# verified names none: its record cannot name the request.
expect_status 0 probe police --show-reply-to --publish "$CHILD_D" --ref named
assert_match "$OUT" "audit-seq $(entries audit)\$" "a decision's reply names its audit record, the newest"
expect_status 1 probe police --show-reply-to --tamper --publish "$CHILD_D" --ref named-2
assert_match "$OUT" "audit-seq 0\$" "a refusal of a body not verified names no record"
assert_match "$OUT" "reply-to [0-9a-f]{32}" "... though it names the request it read"

# Unknown fields in the Envelope (§3): MALFORMED, not passed over. The
# field is outside the signature, so only this rule can catch it.
audit=$(entries audit)
expect_status 1 probe police --envelope-field --publish "$CHILD_B" --ref env-field
assert_match "$OUT" "^error malformed: " "an Envelope with a field version 1 does not define is malformed"
assert_eq "$(entries audit)" "$((audit + 1))" "and audited"

# Two payloads in one Body (§5): MALFORMED. protobuf-c keeps the last, so
# a publish with a query_picture after it would be read as the query.
flags=$(entries flags)
expect_status 1 probe police --second-payload --publish "$CHILD_B" --ref two-payloads
assert_match "$OUT" "^error malformed: the body carries more than one payload" \
	"a Body with two payloads is malformed"
assert_eq "$(entries flags)" "$flags" "neither payload of it is acted on"
expect_status 1 probe police --second-payload --picture "$CHILD_B"
assert_match "$OUT" "^error malformed: the body carries more than one payload" \
	"the same payload field twice is two payloads too"

# Two connections of one agency (§2.2): both are served; each reply goes
# back on the connection its request came on.
pids=()
for n in 1 2 3; do
	probe police --publish "$CHILD_C" --ref "conn-$n" --fresh --repeat 3 \
		--timeout 10000 >"$SB/conn-$n.out" 2>&1 &
	pids+=($!)
done
for n in 1 2 3; do
	wait "${pids[$((n - 1))]}" || fail "connection $n: $(cat "$SB/conn-$n.out")"
	assert_eq "$(grep -c '^ok ack ' "$SB/conn-$n.out")" 3 \
		"connection $n of police's three at once got its three replies"
	assert_match "$(cat "$SB/conn-$n.out")" "^ok ack conn-$n-2$" \
		"connection $n got its own replies, not another's"
done

# ZAP refused the key (§2.2): a client learns it from the socket monitor's
# ZMQ_EVENT_HANDSHAKE_FAILED_AUTH; the EHX agent says so in its log and
# in ehx status, until a handshake succeeds.
"$top/certs/ehx-pki" ca "$SB/other" >/dev/null
"$top/certs/ehx-pki" agency "$SB/other" police police >/dev/null
"$top/tests/sandbox" stop police "$SB" >/dev/null
cp "$SB/agencies/police/curve.key" "$SB/police-curve.key"
cp "$SB/other/agencies/police/curve.key" "$SB/agencies/police/curve.key"
"$top/tests/sandbox" start police "$SB" >/dev/null
status_error() {
	ehx_as police --json status | /usr/bin/python3 -c \
		'import json,sys; print(json.load(sys.stdin).get("last_error", ""))'
}
i=0
until grep -q "the broker refused this agency's CURVE key at the handshake (ZAP status 400)" \
	"$SB/agencies/police/agent.log"; do
	i=$((i + 1)); [ $i -lt 150 ] || fail "the agent never said its key was refused"
	sleep 0.2
done
ok "the agent logs that the broker refused its CURVE key"
assert_eq "$(grep -c "refused this agency's CURVE key" "$SB/agencies/police/agent.log")" 1 \
	"said once, not at every retry"
assert_match "$(status_error)" "refused this agency's CURVE key" "ehx status says so too"
"$top/tests/sandbox" stop police "$SB" >/dev/null
cp "$SB/police-curve.key" "$SB/agencies/police/curve.key"
"$top/tests/sandbox" start police "$SB" >/dev/null
i=0
until ehx_as police publish --wait "$CHILD_D" --category parenting --level 2 \
	--ref after-zap --practitioner "PC Sam Jones" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 50 ] || fail "the agent did not serve with its own key back"
	sleep 0.2
done
assert_no_match "$(status_error)" "CURVE key" "with its key registered, the agent no longer says it is refused"
