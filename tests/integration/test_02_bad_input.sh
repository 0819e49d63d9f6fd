#!/usr/bin/env bash
# Every bad input of issue #2 against the running broker: each gets its
# typed error, changes neither flags nor consent, and is audited (the
# connection's agency is always known: CURVE authenticated it). A
# connection with an unregistered CURVE key is refused at the handshake.
. "$(dirname "$0")/lib.sh"
sandbox_up

# Identities the sandbox does not have: certificates outside their dates
# (registered, so only their dates are wrong) and a second, foreign CA.
"$top/certs/ehx-pki" agency "$SB" expired health \
	--start 20200101000000Z --end 20210101000000Z >/dev/null
"$top/certs/ehx-pki" agency "$SB" future school \
	--start 20400101000000Z --end 20410101000000Z >/dev/null
"$top/certs/ehx-pki" ca "$SB/other" >/dev/null
"$top/certs/ehx-pki" agency "$SB/other" police police >/dev/null
"$top/tests/sandbox" stop broker "$SB"
"$top/tests/sandbox" start broker "$SB"

# refused NAME ERROR ARGS...: the probe's reply is that error, the stores
# are unchanged, and exactly one audit record was added.
refused() {
	local what=$1 want=$2; shift 2
	local before audit
	before=$(snapshot)
	audit=$(entries audit)
	expect_status 1 "$@"
	assert_match "$OUT" "^error $want: " "$what -> $want"
	assert_eq "$(snapshot)" "$before" "$what: flags and consent unchanged"
	assert_eq "$(entries audit)" "$((audit + 1))" "$what: audited"
}

expect_status 0 probe police --publish "$CHILD_A" --ref ok-1
assert_match "$OUT" "^ok ack ok-1$" "a well-formed publish from the probe is accepted"
flags=$(entries flags)

refused "tampered body" bad_signature probe police --publish "$CHILD_A" --tamper
KEY_OF=health CERT_OF=health refused "signature by another agency's key" \
	wrong_sender probe police --publish "$CHILD_A"
KEY_OF=health CERT_OF=health refused "another agency's key and its name as sender" \
	wrong_sender probe police --sender health --publish "$CHILD_A"
KEYDIR=$SB/other/agencies refused "certificate from a foreign CA" \
	unknown_certificate probe police --publish "$CHILD_A"
refused "certificate not yet valid" certificate_not_yet_valid \
	probe future --publish "$CHILD_A"
refused "expired certificate" certificate_expired probe expired --publish "$CHILD_A"
refused "message over the size limit" too_large probe police --size 70000
refused "bytes that are not a protobuf" malformed probe police --junk
refused "send time an hour old" stale probe police --time-offset -3600 --publish "$CHILD_A"
refused "send time an hour ahead" stale probe police --time-offset 3600 --publish "$CHILD_A"
refused "recipient other than the broker" wrong_recipient \
	probe police --recipient health --publish "$CHILD_A"
refused "invalid NHS number" invalid_nhs_number probe police --publish "$BAD_NHS"
refused "unknown category" invalid_field probe police --publish "$CHILD_A" --category 999
refused "level of need 0" invalid_field probe police --publish "$CHILD_A" --level 0
refused "level of need 5" invalid_field probe police --publish "$CHILD_A" --level 5
refused "role not allowed the action" not_permitted \
	probe police --role ig_officer --publish "$CHILD_A"
refused "role not allowed to query" not_permitted \
	probe police --role system --picture "$CHILD_A"
refused "unknown role" invalid_field probe police --role 9 --publish "$CHILD_A"
refused "a reply payload sent as a request" malformed probe police --ack
refused "a second frame after the envelope" malformed \
	probe police --extra-frame --publish "$CHILD_A"
refused "consent for an unknown agency type" invalid_field \
	probe police --consent "$CHILD_A" --consent-types nonsense

# Replays: the same envelope again gets its first reply, byte for byte,
# and has no second effect; a different body under a used id is refused.
id=00112233445566778899aabbccddeeff
audit=$(entries audit)
expect_status 0 probe police --id $id --publish "$CHILD_C" --ref once --repeat 3
assert_eq "$(printf '%s\n' "$OUT" | grep -c '^same-reply yes$')" 2 "a retried envelope gets the first reply byte for byte"
assert_eq "$(entries flags)" "$((flags + 1))" "a retried publish has one effect"
assert_eq "$(entries audit)" "$((audit + 1))" "a retried publish is one decision"
refused "replayed message id with a different body" replay \
	probe police --id $id --picture "$CHILD_C"
# Ids are per agency: another agency may use the same random id.
expect_status 1 probe health --id $id --picture "$CHILD_C"
assert_match "$OUT" "^error no_consent" "another agency's message id space is its own"

# Oversized beyond twice the limit: the transport drops the connection
# without reading it; the broker keeps serving.
expect_status 3 probe police --size 200000 --timeout 1500
ok "a frame over twice the limit is dropped at the transport"
expect_status 0 probe police --publish "$CHILD_A" --ref ok-2
ok "the broker still serves after hostile input"

# An unregistered CURVE key never gets past the handshake.
audit=$(entries audit)
CURVEDIR=$SB/other/agencies expect_status 3 probe police --publish "$CHILD_A" --timeout 3000
assert_eq "$OUT" "handshake refused" "unregistered CURVE key refused at the handshake"
grep -q "refused: unregistered CURVE key" "$SB/broker/broker.log" || fail "no log line for the refused handshake"
ok "the refused handshake is logged"
assert_eq "$(entries audit)" "$audit" "nothing reaches the pipeline from an unregistered key"

# Junk on the TCP port instead of a handshake, and a half-open connection.
port=${ENDPOINT##*:}
# The broker may close on the junk before we finish writing: a write error
# or SIGPIPE there is fine, so it happens in a subshell that ignores both.
( trap '' PIPE
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n\xff\xfe\x00junk' >&3 ) 2>/dev/null || true
exec 4<>"/dev/tcp/127.0.0.1/$port"
expect_status 1 probe police --picture "$CHILD_E"
assert_match "$OUT" "^error no_consent" "junk bytes and a half-open connection do no harm"
exec 4>&-

# A client with the wrong server key: its handshake cannot succeed (the
# broker cannot open its HELLO), nothing reaches the pipeline.
audit=$(entries audit)
set +e
OUT=$(probe police --server-curve "$SB/agencies/health/curve.pub" \
	--publish "$CHILD_A" --ref wrong-server --timeout 2000 2>&1)
st=$?
set -e
[ "$st" -ne 0 ] || fail "a handshake with the wrong server key succeeded: $OUT"
assert_no_match "$OUT" "^ok" "a client with the wrong server key gets no answer"
assert_eq "$(entries audit)" "$audit" "and nothing is audited or stored"
# 200 connections held open without a handshake, and as many more that
# sent junk, while a real agency is served.
/usr/bin/python3 - "$port" <<'EOF' &
import socket, sys, time
port = int(sys.argv[1])
held = []
for i in range(400):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2:
        try:
            s.send(b"\xff" * 64 + b"not a ZMTP greeting")
        except OSError:
            pass
    held.append(s)
time.sleep(3)
EOF
holder=$!
sleep 1
expect_status 1 probe police --picture "$CHILD_E"
assert_match "$OUT" "^error no_consent" "400 half-open and junk connections do not stop the broker serving"
wait "$holder" || true

expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 3
assert_match "$OUT" "Merkle tree and checkpoints verified" "the audit log still verifies"
