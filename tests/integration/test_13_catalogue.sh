#!/usr/bin/env bash
# The catalogue of hostile inputs (issue 5), beyond the ones test_02 and
# test_04 already run: on the wire (ehx-probe, which sends what no honest
# agent would), on the command line (ehx), and in the files the daemons
# read (--check). Each asserts the exact error — the typed code on the
# wire, the exit status and sentence elsewhere — and that nothing stored
# changed: the broker's flags, consent, notification queues and streams,
# and the police agent's outbox.
. "$(dirname "$0")/lib.sh"
sandbox_up
N=0
state() {
	echo "$(entries flags) $(entries consent) $(entries notify) $(entries streams)" \
	     "$(ehx_as police --json status | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["next_number"], d["outbox"])')"
}
# wire NAME CODE PROBE-ARGS...: refused with exactly that code.
wire() {
	local what=$1 code=$2 before; shift 2
	before=$(state)
	expect_status 1 probe "$@"
	assert_match "$OUT" "^error $code: " "wire: $what -> $code"
	assert_eq "$(state)" "$before" "wire: $what: nothing stored changed"
	N=$((N + 1))
}
# cli NAME STATUS PATTERN EHX-ARGS...: ehx as the police exits STATUS saying PATTERN.
cli() {
	local what=$1 st=$2 pat=$3 before; shift 3
	before=$(state)
	expect_status "$st" ehx_as police "$@"
	assert_match "$OUT" "$pat" "cli: $what"
	assert_eq "$(state)" "$before" "cli: $what: nothing stored or queued"
	N=$((N + 1))
}
# file NAME PATTERN DAEMON CONF: --check on CONF exits 1 saying PATTERN.
file() {
	local what=$1 pat=$2 daemon=$3 conf=$4 before
	before=$(state)
	expect_status 1 "$BIN/$daemon" --check -c "$conf"
	assert_match "$OUT" "$pat" "file: $what"
	assert_eq "$(state)" "$before" "file: $what: nothing stored changed"
	N=$((N + 1))
}

expect_status 0 ehx_as police publish --wait "$CHILD_A" --category offending \
	--level 2 --practitioner "PC Sam Jones" --ref cat-1
long=$(printf 'r%.0s' $(seq 1 80))

# ---- on the wire --------------------------------------------------------------
wire "a ref with a space" invalid_field police --publish "$CHILD_A" --ref "bad ref"
wire "a ref of 80 bytes" invalid_field police --publish "$CHILD_A" --ref "$long"
wire "a ref with a control byte" invalid_field police --publish "$CHILD_A" --ref "$(printf 'a\001b')"
wire "closing a ref that does not exist" not_found police --close "$CHILD_A" --ref no-such-ref
wire "closing another child's flag" not_found police --close "$CHILD_B" --ref cat-1
wire "a picture of an invalid NHS number" invalid_nhs_number police --picture "$BAD_NHS"
wire "an NHS number of 9 digits" invalid_nhs_number police --publish 943476591
wire "an NHS number with letters" invalid_nhs_number police --publish 94347659AB
wire "an NHS number of 11 digits" invalid_nhs_number police --publish 94347659190
wire "an NHS number whose check digit would be 10" invalid_nhs_number police --picture 1000000010
wire "a picture without consent" no_consent police --picture "$CHILD_B"
wire "category 0" invalid_field police --publish "$CHILD_A" --category 0
wire "level of need 99" invalid_field police --publish "$CHILD_A" --level 99
wire "role 0" invalid_field police --role 0 --publish "$CHILD_A"
wire "sender not a valid id" malformed police --sender "Bad Id" --publish "$CHILD_A"
wire "sender an unregistered agency" wrong_sender police --sender nobody --publish "$CHILD_A"
wire "sender another agency, own key" wrong_sender police --sender health --publish "$CHILD_A"
wire "recipient not a valid id" malformed police --recipient "Not/Valid" --publish "$CHILD_A"
wire "send time 301 s old" stale police --time-offset -301 --publish "$CHILD_A"
wire "send time 301 s ahead" stale police --time-offset 301 --publish "$CHILD_A"
wire "a frame of 65537 bytes" too_large police --size 65537
wire "a frame of 1 byte" malformed police --size 1
wire "an empty frame" malformed police --size 0
wire "consent naming an unknown agency type" invalid_field police --consent "$CHILD_A" --consent-types nosuchtype
wire "a consent for an invalid NHS number" invalid_nhs_number police --consent "$BAD_NHS"
wire "a field the schema does not define" malformed police --publish "$CHILD_A" --unknown-field
wire "an ack sent as a request" malformed police --ack
wire "a tampered body" bad_signature police --publish "$CHILD_B" --tamper --ref tampered

# ---- on the command line ----------------------------------------------------------
cli "an unknown command" 2 "unknown command" frobnicate
cli "publish without a category" 2 "category" publish "$CHILD_A" --level 2 --practitioner "PC Sam Jones"
cli "publish an unknown category" 2 "category" publish "$CHILD_A" --category weather --level 2 --practitioner "PC Sam Jones"
cli "publish level 7" 2 "level" publish "$CHILD_A" --category offending --level 7 --practitioner "PC Sam Jones"
cli "publish an invalid NHS number" 2 "NHS number" publish "$BAD_NHS" --category offending --level 2 --practitioner "PC Sam Jones"
cli "publish a note over 280 bytes" 2 "note" publish "$CHILD_A" --category offending --level 2 --practitioner "PC Sam Jones" --note "$(printf 'n%.0s' $(seq 1 300))"
cli "publish without a practitioner" 2 "practitioner" publish "$CHILD_A" --category offending --level 2
cli "an unknown option" 2 "unrecognized option|unknown option" publish "$CHILD_A" --frobnicate
cli "close without a ref" 2 "ref" close "$CHILD_A"
cli "a role that may not publish (refused before it is queued)" 1 "the role admin may not ask for publish_flag" --as admin publish "$CHILD_A" --category offending --level 2 --practitioner "PC Sam Jones"
cli "a role that does not exist" 2 "role" --as wizard status
cli "picture of an invalid NHS number" 2 "NHS number" picture "$BAD_NHS"
cli "break glass with a one-word reason" 2 "reason" picture "$CHILD_A" --break-glass urgent
cli "consent with no types or agencies" 2 "type|agenc" consent grant "$CHILD_A" --evidence FORM-1 --given-by "Jane Doe" --relation parent --purposes whole_picture --expires +30d
cli "consent expiring in the past" 2 "expires|expir" consent grant "$CHILD_A" --evidence FORM-2 --given-by "Jane Doe" --relation parent --types school --purposes whole_picture --expires 2020-01-01
cli "consent of an unknown purpose" 2 "purpose" consent grant "$CHILD_A" --evidence FORM-3 --given-by "Jane Doe" --relation parent --types school --purposes everything --expires +30d
cli "inbox show of a non-number" 2 "SEQ|number" inbox show abc
cli "inbox ack of a number not in the inbox" 1 "no such notification" --as system inbox ack 999999
cli "import of a missing file" 2 "no-such.csv" import "$SB/no-such.csv"
printf 'nhs_number,ref,category,level,practitioner\n9434765918,x-1,offending,2,PC\n' >"$SB/bad-row.csv"
cli "import with an invalid NHS number on row 1" 2 "row 1" import "$SB/bad-row.csv"
printf 'nhs,reference\n1,2\n' >"$SB/bad-head.csv"
cli "import with an unknown header" 2 "header|column" import "$SB/bad-head.csv"

# ---- in the files the daemons read ---------------------------------------------
BCONF="$SB/broker/broker.conf"
bad_broker() { { cat "$BCONF"; printf '%b\n' "$1"; } >"$SB/broker/bad.conf"; }
bad_broker "frobnicate = 1";      file "broker: an unknown key" "unknown key|frobnicate" ehx-broker "$SB/broker/bad.conf"
bad_broker "skew_seconds = 2";    file "broker: skew_seconds 2" "5\\.\\.3600" ehx-broker "$SB/broker/bad.conf"
bad_broker "rate_burst = 0";      file "broker: rate_burst 0" "rate_burst|1\\.\\." ehx-broker "$SB/broker/bad.conf"
bad_broker "crl = no-such.crl";   file "broker: a CRL that is not there" "cannot load the CRL" ehx-broker "$SB/broker/bad.conf"
bad_broker "[other]
key = 1";   file "broker: a second section" "unknown section" ehx-broker "$SB/broker/bad.conf"
cp "$SB/registry.ini" "$SB/registry.good"
printf '[police]\ntype = wizard\n' >>"$SB/registry.ini"
file "registry: an unknown agency type" "type" ehx-broker "$BCONF"
cp "$SB/registry.good" "$SB/registry.ini"
sed 's|certificate = agencies/police/police.crt|certificate = agencies/health/health.crt|' "$SB/registry.good" >"$SB/registry.ini"
file "registry: another agency's certificate" "police|health|CN" ehx-broker "$BCONF"
cp "$SB/registry.good" "$SB/registry.ini"
ACONF="$SB/agencies/police/agent.conf"
{ cat "$ACONF"; echo "timeout_seconds = 0"; } >"$SB/agencies/police/bad.conf"
file "agent: timeout_seconds 0" "timeout_seconds|whole number" ehx-agent "$SB/agencies/police/bad.conf"
{ cat "$ACONF"; echo "hook_timeout_seconds = 100000"; } >"$SB/agencies/police/bad.conf"
file "agent: hook_timeout_seconds too long" "hook_timeout_seconds|whole number" ehx-agent "$SB/agencies/police/bad.conf"

[ "$N" -ge 50 ] || fail "the catalogue holds $N hostile inputs, fewer than 50"
ok "the catalogue: $N hostile inputs, each with its exact error and nothing stored changed"
