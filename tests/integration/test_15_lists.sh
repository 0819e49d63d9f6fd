#!/usr/bin/env bash
# Right early help lists: children filed under their locality by publishes,
# the two lists (known to several agencies; two or more Troubled Families
# criteria) as the broker decides them, paging, moving locality, the
# policy's types and localities, a users file's locality, the audit of
# every child named, and the console's page.
. "$(dirname "$0")/lib.sh"

export EHX_CONSOLE=1
sandbox_up
CHILD_F=9992914211

# pub AGENCY CHILD CATEGORY LEVEL [LOCALITY]
pub() {
	ehx_as "$1" publish "$2" --category "$3" --level "$4" \
		--practitioner "P $1" ${5:+--locality "$5"} --wait >/dev/null ||
		fail "publish $*"
}

# the_list LIST LOCALITY [ARGS]: the NHS numbers on it, sorted, one line.
the_list() {
	local l=$1 loc=$2; shift 2
	ehx_as health --as information_officer list "$l" --locality "$loc" --json "$@" |
		sed -n 's/.*"nhs_number": *"\([0-9]*\)".*/\1/p' | sort | tr '\n' ' '
}

sorted() { printf '%s\n' "$@" | sort | tr '\n' ' '; }

# Localities come only from school, housing and the local authority (the
# default policy's locality_from).
# A (east): police and school, domestic abuse and attendance.
pub police "$CHILD_A" domestic_abuse 3
pub school "$CHILD_A" school_attendance 2 east
# B (east): police only, offending and anti-social behaviour (one
# criterion); the school filed B in east, then closed its flag.
pub police "$CHILD_B" offending 2
ehx_as police publish "$CHILD_B" --category anti_social_behaviour --level 2 \
	--practitioner "P police" --ref asb-1 --wait >/dev/null
ehx_as school publish "$CHILD_B" --category school_attendance --level 1 \
	--practitioner "P school" --ref att-b --locality east --wait >/dev/null
ehx_as school close "$CHILD_B" --ref att-b --wait >/dev/null
# C (west): housing, and health at level 4 (mental health).
pub housing "$CHILD_C" housing 2 west
pub health "$CHILD_C" mental_health 4
# D (east): school attendance, and housing's worklessness.
pub school "$CHILD_D" school_attendance 2 east
pub housing "$CHILD_D" worklessness 2
# E (east): police domestic abuse open; school's flag closed again.
pub police "$CHILD_E" domestic_abuse 2
ehx_as school publish "$CHILD_E" --category school_attendance --level 2 \
	--practitioner "P school" --ref att-e --locality east --wait >/dev/null
ehx_as school close "$CHILD_E" --ref att-e --wait >/dev/null
# F: housing files it in west, then the school in east (the latest wins):
# police offending, health mental health, housing, school.
pub police "$CHILD_F" offending 2
pub health "$CHILD_F" mental_health 2
pub housing "$CHILD_F" housing 1 west
pub school "$CHILD_F" send 1 east

assert_eq "$(the_list known_to_several east)" "$(sorted "$CHILD_A" "$CHILD_D" "$CHILD_F")" \
	"known to several, east: A, D and F (not B or E: one agency with an open flag)"
assert_eq "$(the_list troubled_families east)" "$(sorted "$CHILD_A" "$CHILD_D" "$CHILD_F")" \
	"troubled families, east: A, D and F (B's two categories are one criterion)"
assert_eq "$(the_list known_to_several west)" "$(sorted "$CHILD_C")" \
	"known to several, west: C only (F moved east)"
assert_eq "$(the_list troubled_families west)" "$(sorted "$CHILD_C")" \
	"troubled families, west: C (level 4 and health)"
assert_eq "$(the_list known_to_several north)" "" "north: nobody"
assert_eq "$(the_list known_to_several east --page 1)" "$(sorted "$CHILD_A" "$CHILD_D" "$CHILD_F")" \
	"one child a page gives the same list"
OUT=$(ehx_as health --as information_officer list troubled_families --locality west --json)
assert_match "$OUT" '"criteria": \[ "needs_help", "health" \]' "C's criteria: needs help and health"
assert_match "$OUT" '"agencies": \[ "health", "housing" \]' "C's agencies"
assert_match "$OUT" '"highest_open_level": 4' "C's highest open level"
assert_match "$OUT" '"basis": "policy:anytown-isa-2026:public_task"' "the policy's basis"
assert_no_match "$OUT" 'mental|housing",.*category' "no category in the list"
OUT=$(ehx_as health --as information_officer list known_to_several --locality east)
assert_match "$OUT" "$(printf '%s %s %s' "${CHILD_A:0:3}" "${CHILD_A:3:3}" "${CHILD_A:6}")" \
	"the table shows NHS numbers for people"

# --- refusals -----------------------------------------------------------------
expect_status 1 ehx_as police --as information_officer list known_to_several --locality east
assert_match "$OUT" "does not give the known_to_several list to police" \
	"the policy does not give lists to police"
expect_status 1 ehx_as health --as information_officer list known_to_several --locality south
assert_match "$OUT" "not one of the sharing policy's" "an unknown locality is refused"
expect_status 1 ehx_as health --as practitioner list known_to_several --locality east
assert_match "$OUT" "may not ask for query_early_help_list" "a practitioner may not ask"
expect_status 2 ehx_as health list known_to_several --locality East
assert_match "$OUT" "must be 1-32 of a-z" "a bad locality never leaves the command line"
flags=$(entries flags)
expect_status 1 ehx_as school publish "$CHILD_A" --category housing --level 1 \
	--practitioner X --locality south --wait
assert_match "$OUT" "locality \"south\" is not one of" "a publish naming an unknown locality is refused"
expect_status 1 ehx_as health publish "$CHILD_B" --category housing --level 1 \
	--practitioner X --locality east --wait
assert_match "$OUT" "does not take a child's locality from health agencies" \
	"health, which asks for lists, may not file a child into one"
assert_eq "$(entries flags)" "$flags" "... and neither stores anything"
assert_eq "$(the_list known_to_several east)" "$(sorted "$CHILD_A" "$CHILD_D" "$CHILD_F")" \
	"B is still not on health's list"

# --- the audit: the question and every child named ----------------------------
AUD=$(ehx_as health --as ig_officer audit --json)
n_entries=$(printf '%s\n' "$AUD" | grep -c '"action": "early_help_list_entry"')
# A, D, F twice over (two lists) plus the page-by-page run; C twice;
# the table run; the check after the refused publishes:
# 3 + 3 + 1 + 1 + 3 + 1 (JSON run of west) + 3 + 3 = 18.
assert_eq "$n_entries" 18 "one audit record for each child each answer named"
AUD=$(ehx_as health --as ig_officer audit --child "$CHILD_C" --json)
assert_match "$AUD" '"action": "early_help_list_entry".*"basis": "policy:anytown-isa-2026:public_task"' \
	"an audit search for C shows the lists it was on, and on what basis"
# A subject access answer shows every list a child was on (the same
# records): C was named twice (troubled families, west, twice) and known to
# several, west, once.
SAR=$(ehx_as health --as ig_officer sar "$CHILD_C")
assert_eq "$(printf '%s' "$SAR" | /usr/bin/python3 -c '
import json, sys
print(sorted((d["to_agency"], d["basis"]) for d in json.load(sys.stdin)["disclosures"] if d["via"] == "list"))')" \
	"$(printf "[('health', 'policy:anytown-isa-2026:public_task'), ('health', 'policy:anytown-isa-2026:public_task'), ('health', 'policy:anytown-isa-2026:public_task')]")" \
	"a subject access answer shows each list that named C, to whom and on what basis"
AUD=$(ehx_as health --as ig_officer audit --agency police --decision deny --json)
assert_match "$AUD" '"action": "query_early_help_list"' "the refused list question is audited"

# --- a large locality: 20,050 children, more than one answer reads -------------
# (the broker reads at most 20,000 children a page; before, the unpacked
# flags of a page outgrew the request's memory and the list failed.)
/usr/bin/python3 - "$SB/north.csv" "$SB/north-school.csv" <<'PY'
import sys
def nhs(i):
    while True:
        s = "%09d" % (600000000 + i * 7)
        t = sum((10 - k) * int(s[k]) for k in range(9))
        c = 11 - t % 11
        c = 0 if c == 11 else c
        if c != 10:
            return s + str(c)
        i += 100000
rows = [nhs(i) for i in range(20050)]
with open(sys.argv[1], "w") as f:
    f.write("nhs_number,ref,category,level,practitioner,locality,note\n")
    for i, n in enumerate(rows):
        f.write("%s,n-%d,school_attendance,2,Jo North,north,%s\n" % (n, i, "x" * 200))
with open(sys.argv[2], "w") as f:
    f.write("nhs_number,ref,category,level,practitioner\n")
    for n in (rows[7], rows[10007], rows[20049]):
        f.write("%s,p-%s,offending,2,PC North\n" % (n, n))
    print(rows[7], rows[10007], rows[20049], file=open(sys.argv[2] + ".want", "w"))
PY
ehx_as school import "$SB/north.csv" --timeout 600 >/dev/null || fail "import of 20,050 flags"
ehx_as police import "$SB/north-school.csv" >/dev/null || fail "import of the police's 3"
read -r w1 w2 w3 <"$SB/north-school.csv.want"
assert_eq "$(the_list known_to_several north)" "$(sorted "$w1" "$w2" "$w3")" \
	"20,050 children in north: exactly the 3 known to two agencies, over pages past the 20,000 read limit"
assert_eq "$(the_list troubled_families north --page 2)" "$(sorted "$w1" "$w2" "$w3")" \
	"... and on the Troubled Families list (crime and school), two at a time"

# --- a users file's locality ------------------------------------------------------
sed -i "/^roles = practitioner, information_officer/a locality = west" "$SB/agencies/health/users.ini"
kill -HUP "$(cat "$SB/agencies/health/pid")"
sleep 0.5
expect_status 1 ehx_as health --as information_officer list known_to_several --locality east
assert_match "$OUT" "gives .* the locality west only" "the users file limits a person to their locality"
assert_eq "$(the_list known_to_several west)" "$(sorted "$CHILD_C")" "... whose list they still get"

# --- the console ------------------------------------------------------------------
PW=$(cat "$SB/console-password")
HEALTH=$(cat "$SB/agencies/health/console.url")
jar=$SB/jar
curl -s -c "$jar" -b "$jar" -o "$SB/page" "${HEALTH}login"
tok=$(grep -o 'name="csrf" value="[0-9a-f]*"' "$SB/page" | sed 's/.*value="//; s/"$//')
curl -s -c "$jar" -b "$jar" -o /dev/null --data "csrf=$tok&account=io&password=$PW" "${HEALTH}login"
st=$(curl -s -b "$jar" -o "$SB/page" -w '%{http_code}' "${HEALTH}list?list=known_to_several&locality=east")
assert_eq "$st" 200 "the console's list page"
for c in "$CHILD_A" "$CHILD_D" "$CHILD_F"; do
	grep -q "/child?nhs=$c" "$SB/page" || fail "the console's list lacks $c"
done
grep -q "/child?nhs=$CHILD_B" "$SB/page" && fail "the console's list shows B"
ok "the console lists A, D and F, each linked to the child's page"
assert_match "$(cat "$SB/page")" "3 children" "... and counts them"
st=$(curl -s -b "$jar" -o "$SB/page" -w '%{http_code}' "${HEALTH}list?list=troubled_families&locality=%3Cscript%3E")
assert_eq "$st" 400 "a bad locality in the console is refused"
grep -q '<script>' "$SB/page" && fail "the bad locality came back unescaped"
ok "... and not echoed unescaped"

