#!/usr/bin/env bash
# What a publisher can observe says nothing about who else is involved
# (issue 16, finding 1), against a real sandbox where it did: a publish
# used to append one audit record per agency notified, and any role could
# read the log's size (ehx audit checkpoint), so publishing and reading
# the size told a practitioner whether the school or health held flags on
# a child whose picture they were refused.
. "$(dirname "$0")/lib.sh"
sandbox_up
IG="--as ig_officer"

# A child the school and health know (the school is told of domestic
# abuse), and a child nobody else knows.
expect_status 0 ehx_as school publish --wait "$CHILD_A" --category school_attendance \
	--level 2 --practitioner "Jo Brown" --ref att-a
expect_status 0 ehx_as health publish --wait "$CHILD_A" --category mental_health \
	--level 2 --practitioner "Alex Patel" --ref mh-a
expect_status 1 ehx_as police picture "$CHILD_A"
assert_match "$OUT" "no_consent" "the police may not see the child's picture"

a0=$(entries audit)
expect_status 0 ehx_as police publish --wait "$CHILD_A" --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones" --ref da-a
reply_known=$OUT
a1=$(entries audit)
expect_status 0 ehx_as police publish --wait "$CHILD_B" --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones" --ref da-b
reply_alone=$OUT
a2=$(entries audit)
assert_eq "$((a1 - a0)) $((a2 - a1))" "1 1" \
	"a publish grows the audit log by one record, with or without other agencies to tell"
assert_eq "$(printf '%s' "$reply_known" | sed 's/da-a/da-X/')" \
	"$(printf '%s' "$reply_alone" | sed 's/da-b/da-X/')" "... and is answered alike"
# The school was told all the same.
i=0
until [ "$(ehx_as school --json inbox | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')" -ge 1 ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the school was not notified"
	sleep 0.1
done
ok "the school was notified of the domestic abuse flag"
# A subject access answer shows it: the school was told of the child.
expect_status 0 ehx_as health $IG sar "$CHILD_A"
sar=$OUT
assert_eq "$(printf '%s' "$sar" | /usr/bin/python3 -c '
import json, sys
print(sorted((d["to_agency"], d["basis"].split(":")[0]) for d in json.load(sys.stdin)["disclosures"] if d["via"] == "notification"))')" \
	"[('school', 'policy')]" \
	"the subject access answer shows the notification of the school, on the policy's basis"

# The log's size is for those who watch the log.
expect_status 1 ehx_as police audit checkpoint
assert_match "$OUT" "not_permitted.*ig_officer and admin" \
	"a practitioner may not read the audit log's checkpoint"
expect_status 0 ehx_as police $IG audit checkpoint
ok "an IG officer may"
expect_status 0 ehx_as police --as admin audit checkpoint
ok "... and so may an administrator"

# ---- a publish's timing: its notifications are signed a moment later -----------
# A publish keeps a plan of whom to tell and signs nothing itself: the
# broker signs and queues every plan since, together, 100-300 ms later.
# A broker stopped before it got round to it (the test build that never
# does: no_flush) loses nothing: killed and started again, it sends them.
FAULTY=${EHX_FAULTY_BROKER:-$top/build/tests/ehx-broker-faulty}
[ -x "$FAULTY" ] || fail "$FAULTY not built"
"$top/tests/sandbox" stop broker "$SB" >/dev/null
EHX_BROKER_BIN=$FAULTY EHX_FAULT=no_flush "$top/tests/sandbox" start broker "$SB" >/dev/null
inbox_len() {
	ehx_as school --json inbox | /usr/bin/python3 -c \
		'import json,sys; print(len(json.load(sys.stdin)["items"]))'
}
before=$(inbox_len)
queued=$(entries notify)
expect_status 0 ehx_as police publish --wait "$CHILD_A" --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones" --ref da-kept
assert_eq "$(entries notify)" "$queued" "the publish itself queued nothing"
"$top/tests/sandbox" stop broker "$SB" --kill >/dev/null
"$top/tests/sandbox" start broker "$SB" >/dev/null
i=0
until [ "$(inbox_len)" -gt "$before" ]; do
	i=$((i + 1)); [ $i -lt 200 ] || fail "the kept notification never reached the school"
	sleep 0.1
done
ok "killed before it signed them, the broker sends the kept notifications when started again"
