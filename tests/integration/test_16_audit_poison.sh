#!/usr/bin/env bash
# One refused request must not poison the audit (issue 16, finding 6). A
# request refused for its person, or before its person is checked, used
# to be audited with the person exactly as sent: a 65,000-byte name made a
# record no answer could carry, so audit searches stopped at it and no
# export could be made again; bytes that are not UTF-8 made signed replies
# that standard protobuf libraries refuse; control characters reached the
# operator's terminal through ehx-broker audit. The audit now keeps a
# checked person, or a bounded, escaped form of an unchecked one.
. "$(dirname "$0")/lib.sh"
sandbox_up
PY=/usr/bin/python3
IG="--as ig_officer"

expect_status 0 ehx_as police publish --wait "$CHILD_A" --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones" --ref before-1

# ---- the poisoning requests -------------------------------------------------
expect_status 1 probe police --publish "$CHILD_B" --person-size 65000
assert_match "$OUT" "^error invalid_field: person.name" \
	"a person with a 65,000-byte name is refused"
# ESC [ 3 1 m, then bytes that are not UTF-8, then a bidirectional override.
expect_status 1 probe police --publish "$CHILD_B" --person-hex 1b5b33316d41fffee280ae42
assert_match "$OUT" "^error invalid_field: person.name" \
	"a person named with control characters and broken UTF-8 is refused"
# Refused before the person is checked (another recipient), same name.
expect_status 1 probe police --publish "$CHILD_B" --person-size 65000 --recipient nobody
assert_match "$OUT" "^error wrong_recipient" \
	"a request refused before its person is checked (wrong recipient)"

expect_status 0 ehx_as police publish --wait "$CHILD_C" --category school_attendance \
	--level 2 --practitioner "PC Sam Jones" --ref after-1

# ---- every reader goes on past them ------------------------------------------
expect_status 0 ehx_as health $IG --json audit --agency police
n=$(printf '%s\n' "$OUT" | grep -c '"seq"' || true)
[ "$n" -ge 5 ] || fail "a full audit search shows $n records of police: $OUT"
ok "a full audit search pages past the refused requests ($n records of police)"
assert_eq "$(printf '%s\n' "$OUT" | grep -c '"action": *"publish_flag".*"decision": *"allow"')" 2 \
	"and shows the publishes before and after them"
names=$(printf '%s\n' "$OUT" | $PY -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        print(len(r.get("person", "")), repr(r.get("person", "")))
')
long=$(printf '%s\n' "$names" | awk '$1 > 128' | wc -l)
assert_eq "$long" 0 "no audit record holds a person name over 128 bytes"
assert_match "$names" '\\\\x1b\[31mA\\\\xff\\\\xfe\\\\xe2\\\\x80\\\\xaeB' \
	"the broken name is kept escaped, as printable ASCII"

expect_status 0 ehx_as health $IG audit export "$SB/audit.export"
expect_status 0 "$BIN/ehx-auditverify" "$SB/audit.export" --ca "$SB/ca/ca.crt"
assert_match "$OUT" "OK: [0-9]+ records" "an export past the refused requests verifies offline"

expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 0
printf '%s' "$OUT" | LC_ALL=C grep -q $'\x1b' && fail "ehx-broker audit printed an escape character"
ok "ehx-broker audit prints no control character"
printf '%s' "$OUT" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1 ||
	fail "ehx-broker audit printed bytes that are not UTF-8"
ok "ehx-broker audit prints valid UTF-8"
expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 0 --json
printf '%s\n' "$OUT" | $PY -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        json.loads(line)
' || fail "ehx-broker audit --json printed a line that is not JSON"
ok "ehx-broker audit --json prints one valid JSON object a line"
