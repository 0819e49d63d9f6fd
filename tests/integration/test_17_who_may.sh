#!/usr/bin/env bash
# Who may see and do what (issue 16, finding 4), against a real sandbox
# where each of these was live: any agency's IG officer running subject
# access (every agency's flags and notes) or an audit search by child on
# any child; a practitioner recording a consent naming their own agency
# and reading the picture at once, unreviewed; the person who broke the
# glass reviewing their own alert, and a policy that has break-glass
# reviewed by another agency.
. "$(dirname "$0")/lib.sh"
sandbox_up
IG="--as ig_officer"
PY=/usr/bin/python3

# alert_of AGENCY: the newest unreviewed alert raised by AGENCY.
alert_of() {
	ehx_as health $IG --json audit alerts | $PY -c '
import json, sys
seqs = [json.loads(l)["seq"] for l in sys.stdin
        if l.startswith("{") and json.loads(l)["agency"] == sys.argv[1]]
print(seqs[-1] if seqs else "")' "$1"
}

expect_status 0 ehx_as health publish --wait "$CHILD_A" --category mental_health \
	--level 2 --practitioner "Alex Patel" --ref mh-1

# ---- subject access is a partnership function ----------------------------------
expect_status 0 ehx_as police publish --wait "$CHILD_A" --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones" --note "Incident at home" --ref inc-1
for a in police school housing; do
	expect_status 1 ehx_as $a $IG sar "$CHILD_A"
	assert_match "$OUT" "not_permitted.*subject_access" \
		"$a's IG officer may not run subject access (the policy names local_authority, health)"
	expect_status 1 ehx_as $a $IG audit --child "$CHILD_A"
	assert_match "$OUT" "not_permitted.*subject_access" \
		"... nor search the audit by child"
done
expect_status 0 ehx_as police $IG audit --agency school
ok "an audit search not by child is open to every IG officer"
expect_status 0 ehx_as health $IG sar "$CHILD_A"
assert_match "$OUT" '"ref": "inc-1"' "health's IG officer may run it"
expect_status 0 ehx_as police $IG --json audit disclosures
assert_match "$OUT" '"to_agency": *"health".*"basis": *"subject-access"' \
	"the subject access answer is in police's disclosures, as the data owner"

# ---- a consent its recorder uses at once is raised for review -----------------
expect_status 2 ehx_as health consent grant "$CHILD_B" --given-by "Jane Doe" \
	--relation parent --agencies health --expires +30d
assert_match "$OUT" "evidence" "a consent needs the reference of the form it rests on"
expect_status 0 ehx_as health consent grant "$CHILD_B" --given-by "Jane Doe" \
	--relation parent --agencies health --expires +30d --evidence HV-FORM-0042
expect_status 0 ehx_as health picture "$CHILD_B"
ok "the recorder's own picture is answered"
expect_status 0 ehx_as health $IG --json audit alerts
assert_match "$OUT" '"agency": *"health".*"kind": *"self_consent".*HV-FORM-0042' \
	"... and raised for IG review as a consent used by its own recorder, naming its form"
n=$(printf '%s\n' "$OUT" | grep -c '"kind": *"self_consent"' || true)
# Recorded by the school for health: health's use raises nothing.
expect_status 0 ehx_as school consent grant "$CHILD_C" --given-by "Jane Doe" \
	--relation parent --agencies health --expires +30d --evidence SCH-FORM-7
expect_status 0 ehx_as health picture "$CHILD_C"
expect_status 0 ehx_as health $IG --json audit alerts
assert_eq "$(printf '%s\n' "$OUT" | grep -c '"kind": *"self_consent"' || true)" "$n" \
	"a consent recorded by another agency raises no alert"

# ---- break-glass is never reviewed by the person who looked ------------------
# In the sandbox the account that runs ehx holds both roles at the school.
expect_status 0 ehx_as school picture "$CHILD_A" \
	--break-glass "Child disclosed harm at school today, needs urgent check"
alert=$(alert_of school)
[ -n "$alert" ] || fail "no alert raised"
expect_status 1 ehx_as school $IG audit review "$alert" --outcome justified \
	--note "I was right to look"
assert_match "$OUT" "not_permitted.*you broke the glass" \
	"the person who broke the glass cannot review their own alert"
assert_eq "$(alert_of school)" "$alert" "and the alert stays open"
# Another IG officer of the same agency may (the default policy).
expect_status 0 probe school --review "$alert" --role ig_officer
assert_match "$OUT" "^ok ack" "another person at the same agency may review it"

# ---- the policy can require another agency -------------------------------
sed -i '/^\[agreement\]/a break_glass_review = another_agency' "$SB/broker/policy.ini"
"$top/tests/sandbox" stop broker "$SB" >/dev/null
"$top/tests/sandbox" start broker "$SB" >/dev/null
expect_status 0 ehx_as school picture "$CHILD_A" \
	--break-glass "A second disclosure this afternoon, urgent check"
alert=$(alert_of school)
[ -n "$alert" ] || fail "no second alert raised"
expect_status 1 probe school --review "$alert" --role ig_officer
assert_match "$OUT" "not_permitted: the sharing policy has break-glass reviewed by another agency" \
	"with break_glass_review = another_agency, the same agency may not review it"
expect_status 0 ehx_as health $IG audit review "$alert" --outcome justified \
	--note "Health's IG officer confirmed the disclosure"
ok "another agency's IG officer may"
