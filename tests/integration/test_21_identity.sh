#!/usr/bin/env bash
# Children named as agencies know them (issue 17), against a real sandbox:
# a school's flag by UPN and demographics, the police's domestic abuse
# flag by demographics alone reaching that school named as the school
# knows the child (Operation Encompass); the publisher's answer the same
# whether the child was known or not; an agency that knows the child by
# NHS number told it by that number when another names the child without
# it; identity rules checked at the desk and at the broker.
source "$(dirname "$0")/lib.sh"
sandbox_up

# inbox_json AGENCY: the agency's inbox as JSON.
inbox_json() { ehx_as "$1" --json inbox; }
# wait_inbox AGENCY N: until the agency's inbox holds N notifications
# (at most 20 s).
wait_inbox() {
	local i=0 n
	while :; do
		n=$(inbox_json "$1" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
		[ "$n" -ge "$2" ] && return 0
		i=$((i + 1))
		[ $i -lt 200 ] || fail "$1's inbox holds $n notifications, not $2"
		sleep 0.1
	done
}

# ---- the school's roll: a child by UPN, its own id and demographics -------
expect_status 0 ehx_as school publish --upn "b801 2000 05001" \
	--local-id ADM-77 --given "Amelia Rose" --family Hart \
	--dob 2016-03-04 --sex female --postcode "yo31 0ab" \
	--category school_attendance --level 2 --practitioner "Jo Brown" \
	--ref att-1 --wait
assert_match "$OUT" "Published flag att-1" "the school publishes by UPN and names, no NHS number"
assert_eq "$(entries idnode)" 1 "one record of one child: the school's"

# ---- Operation Encompass: the police know a name, a date, an address --------
audit0=$(entries audit)
expect_status 0 ehx_as police --json publish --local-id NYP-P-1 \
	--given Amelia --family Harte --dob 2016-03-04 --postcode "YO31 0AB" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones" \
	--contact "101 ext 4471" --ref da-1 --wait
ACK_KNOWN=$OUT
grew_known=$(( $(entries audit) - audit0 ))
wait_inbox school 1
inbox_json school >"$SB/school.inbox"
/usr/bin/python3 - "$SB/school.inbox" <<'EOF' || fail "the school's notification does not name the child as the school knows them"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
assert len(items) == 1, items
d = items[0]
assert d["agency"] == "police" and d["category"] == "domestic_abuse", d
assert d["event"] == "new" and d["basis"] == "legal_obligation", d
assert d["nhs_number"] is None, d
c = d["child"]
assert c["upn"] == "B801200005001" and c["local_id"] == "ADM-77", c
assert c["given_name"] == "Amelia Rose" and c["family_name"] == "Hart", c
assert c["date_of_birth"] == "2016-03-04" and c["postcode"] == "YO31 0AB", c
# nothing of the police's own record of the child
assert "NYP" not in json.dumps(d) and "Harte" not in json.dumps(d), d
EOF
ok "the school is told, naming the child by its own UPN, id and names, nothing of the police's"
assert_eq "$(entries idnode)" 2 "the police's record joined the school's child"

# ---- the publisher learns nothing of whether the child was known -----------
audit_known=$(entries audit)
expect_status 0 ehx_as police --json publish --local-id NYP-P-2 \
	--given Zed --family Nobody --dob 2015-01-01 --postcode "YO1 7HH" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones" \
	--contact "101 ext 4471" --ref da-2 --wait
ACK_NEW=$OUT
# Each publish is one record, the same whether it linked and told the
# school or made a new child and told no one (the deferred notification
# is in the publish's own record).
assert_eq "$grew_known $(( $(entries audit) - audit_known ))" "1 1" \
	"a publish adds one audit record, on a known child and on a new one"
/usr/bin/python3 - "$ACK_KNOWN" "$ACK_NEW" <<'EOF' || fail "the answers differ beyond their ids"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for d in (a, b):
    for k in ("id", "message_id", "outbox"):
        d.pop(k, None)
assert a == b, (a, b)
assert set(a) == {"ok", "basis", "unchanged"}, a
EOF
ok "a publish on a known child and on a new one are answered alike"
assert_eq "$(entries idnode)" 3 "a child nobody knew is a provisional child of its own"

# ---- known by NHS number: told by it when another names the child otherwise --
expect_status 0 ehx_as school publish "$CHILD_A" --category school_attendance \
	--level 2 --practitioner "Jo Brown" --ref att-2 --wait
expect_status 0 ehx_as health publish "$CHILD_A" --given Noah --family Finch \
	--dob 2014-05-06 --sex male --postcode "YO24 1AB" \
	--category physical_health --level 2 --practitioner "Dr Ng" \
	--ref ph-1 --wait
assert_match "$OUT" "Published flag ph-1" "health publishes by NHS number and names"
expect_status 0 ehx_as police publish --local-id NYP-P-3 --given Noah \
	--family Finch --dob 2014-05-06 --postcode "YO24 1AB" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones" \
	--ref da-3 --wait
wait_inbox school 2
inbox_json school >"$SB/school.inbox"
/usr/bin/python3 - "$SB/school.inbox" "$CHILD_A" <<'EOF' || fail "the school is not told by the NHS number"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
d = [i for i in items if i["nhs_number"] is not None]
assert len(d) == 1, items
assert d[0]["nhs_number"] == sys.argv[2] and d[0]["child"] is None, d
assert "Noah" not in json.dumps(d) and "NYP" not in json.dumps(d), d
EOF
ok "a school that named the child by NHS number is told that number, though the police did not give it"

# ---- the rules, at the desk and at the broker ------------------------------------
expect_status 2 ehx_as police publish --upn A801200005001 --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones"
assert_match "$OUT" "not a unique pupil number" "a UPN with a wrong check letter is refused at the desk"
expect_status 2 ehx_as police publish --family Hart --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones"
assert_match "$OUT" "the child is not named" "a family name alone names no child"
expect_status 2 ehx_as police publish --local-id X1 --dob 2016-02-30 \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones"
assert_match "$OUT" "date_of_birth must be a date" "an impossible date is refused"
expect_status 2 ehx_as police publish --local-id X1 --postcode "YO1 7CH" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones"
assert_match "$OUT" "not a UK postcode" "a postcode that is not one is refused"
expect_status 2 ehx_as police publish --local-id X1 --given "J0hn" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones"
assert_match "$OUT" "given_name must be" "a name with a digit is refused"
before=$(snapshot)
ids=$(entries idnode)
# At the broker, past the agent: a probe sends a raw identity.
expect_status 1 probe police --publish "" --child-family Hart \
	--child-dob 2016-02-30 --category domestic_abuse --ref x-1
assert_match "$OUT" "error invalid_identity: child.date_of_birth must be a date" \
	"the broker refuses a bad identity with its own code, naming the field"
expect_status 1 probe police --publish "$CHILD_A" --child-nhs "$CHILD_A" \
	--child-family Hart --child-dob 2016-03-04 --category domestic_abuse \
	--ref x-2
assert_match "$OUT" "error invalid_field: name the child by nhs_number or by child, not both" \
	"an NHS number in nhs_number and a child both is refused"
expect_status 1 probe police --publish "" --child-family Hart \
	--category domestic_abuse --ref x-3
assert_match "$OUT" "error invalid_identity: the child is not named" \
	"an identity that names no child is refused"
assert_eq "$(snapshot)" "$before" "nothing stored by refused identities"
assert_eq "$(entries idnode)" "$ids" "and no record of a child made"

# ---- close by the same identity ----------------------------------------------------
expect_status 0 ehx_as police close --local-id NYP-P-1 --ref da-1 --wait
assert_match "$OUT" "Closed flag da-1" "the police close their flag naming the child by their own id"
expect_status 1 ehx_as police close --local-id NYP-P-404 --ref da-1 --wait
assert_match "$OUT" "not_found|no flag" "a close of a child never named is not_found"
assert_eq "$(entries idnode)" "$ids" "and makes no record"

# ---- the school's roll: enrolment, not a flag, brings Operation Encompass ----
cat >"$SB/roll.csv" <<'CSV'
upn,local_id,given_name,family_name,date_of_birth,sex,postcode,nhs_number
P207000016049,ADM-100,Erin,Walsh,2011-01-20,female,YO26 5TT,
Q801200005002,ADM-101,Leo,Walsh,2013-06-02,male,YO26 5TT,
,ADM-102,Mia,Chen,2012-09-09,female,YO10 3PQ,9997763173
CSV
expect_status 0 ehx_as school import --roll "$SB/roll.csv"
assert_match "$OUT" "3 rows: 3 delivered \(0 unchanged\), 0 refused" "the school's roll is loaded"
expect_status 0 ehx_as school import --roll "$SB/roll.csv"
assert_match "$OUT" "3 rows: 3 delivered \(3 unchanged\), 0 refused" "loaded again (nightly), nothing changes"
assert_eq "$(entries involvement)" 3 "three children on the school's roll"
# Erin has been on roll since September: recorded so, and the nightly
# roll's "from today" keeps that earlier start
expect_status 0 ehx_as school involvement enrolled --upn P207000016049 \
	--local-id ADM-100 --given Erin --family Walsh --dob 2011-01-20 \
	--sex female --postcode "YO26 5TT" --from 2025-09-03 --wait
assert_match "$OUT" "^Recorded enrolled\.$" "an earlier start is recorded"
expect_status 0 ehx_as school import --roll "$SB/roll.csv"
assert_match "$OUT" "3 rows: 3 delivered \\(3 unchanged\\), 0 refused" "the roll again: the earlier start kept, nothing changed"
n0=$(inbox_json school | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
expect_status 0 ehx_as police publish --local-id NYP-P-9 --given Erin \
	--family Walsh --dob 2011-01-20 --postcode "YO26 5TT" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones" \
	--contact "101 ext 4471" --ref da-9 --wait
wait_inbox school $((n0 + 1))
inbox_json school >"$SB/school.inbox"
/usr/bin/python3 - "$SB/school.inbox" <<'EOF' || fail "the school is not told of the pupil on its roll"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
d = [i for i in items if (i["child"] or {}).get("local_id") == "ADM-100"]
assert len(d) == 1, items
d = d[0]
assert d["category"] == "domestic_abuse" and d["basis"] == "legal_obligation", d
assert d["child"]["upn"] == "P207000016049" and d["child"]["given_name"] == "Erin", d
assert d["contact"]["contact"] == "101 ext 4471", d
EOF
ok "Operation Encompass: the police's flag by name reaches the school where the child is enrolled, naming the pupil as the school does"
expect_status 0 ehx_as school --json inbox show "$((n0 + 1))"
# an ended enrolment earns nothing
expect_status 0 ehx_as school involvement enrolled --local-id ADM-101 \
	--upn Q801200005002 --from 2024-09-04 \
	--until 2025-07-20 --wait
assert_match "$OUT" "Recorded enrolled" "a leaver's enrolment is ended"
expect_status 0 ehx_as police publish --local-id NYP-P-10 --given Leo \
	--family Walsh --dob 2013-06-02 --postcode "YO26 5TT" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones" \
	--ref da-10 --wait
# the barrier: one more that does reach the school, then look
expect_status 0 ehx_as police publish --local-id NYP-P-11 --given Mia \
	--family Chen --dob 2012-09-09 --postcode "YO10 3PQ" \
	--category domestic_abuse --level 3 --practitioner "PC Sam Jones" \
	--ref da-11 --wait
wait_inbox school $((n0 + 2))
inbox_json school >"$SB/school.inbox"
/usr/bin/python3 - "$SB/school.inbox" <<'EOF' || fail "a left pupil's school was told"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
ids = [(i["child"] or {}).get("local_id") for i in items]
assert "ADM-102" in ids, ids
assert "ADM-101" not in ids, ids
EOF
ok "a school whose enrolment has ended is not told; one on whose roll the child is, is"
expect_status 1 ehx_as police involvement enrolled --local-id NYP-P-9 --from 2020-01-01 --wait
assert_match "$OUT" "police agencies do not record a child as enrolled" "only a school records an enrolment"

# ---- a provisional child joins its NHS number's child when it arrives ------
expect_status 0 ehx_as health publish "$CHILD_E" --category physical_health \
	--level 2 --practitioner "Dr Ng" --ref ph-9 --wait
expect_status 0 ehx_as police publish --local-id NYP-P-20 --given Ada \
	--family Lovell --dob 2017-12-10 --category offending --level 2 \
	--practitioner "PC Sam Jones" --ref off-1 --wait
# the police learn the NHS number: the same record, now with it
flags0=$(entries flags)
expect_status 0 ehx_as police publish "$CHILD_E" --local-id NYP-P-20 \
	--given Ada --family Lovell --dob 2017-12-10 --category offending \
	--level 3 --practitioner "PC Sam Jones" --ref off-1 --wait
assert_eq "$(entries flags)" "$flags0" "the flag moved with the child (not left behind under the provisional key)"
expect_status 0 ehx_as police --json picture "$CHILD_E" \
	--break-glass "checking the record followed the child (test)"
/usr/bin/python3 - "$OUT" <<'EOF' || fail "the provisional child's flag did not follow it to the NHS number's child"
import json, sys
d = json.loads(sys.argv[1])
flags = [f for inv in d["involvements"] for f in inv["flags"] if f["ref"] == "off-1"]
assert len(flags) == 1 and flags[0]["level"] == 3, d
EOF
ok "a child known only by the police's id joins its NHS number's child when the number arrives, and its flag with it"

echo "PASS test_21_identity"
