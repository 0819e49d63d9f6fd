#!/usr/bin/env bash
# Limits and corner cases that a hostile or careless agency could use
# against the others: fields the schema does not define, answers too big
# for one message, consent ids of other agencies, retries that outlive the
# clock window, and command-line lists that are too long.
. "$(dirname "$0")/lib.sh"
sandbox_up
open_policy     # the exchange itself; test_07 tests the policy's cuts

# Fields the schema does not define are refused, not stored and passed on.
before=$(snapshot)
expect_status 1 probe police --publish "$CHILD_A" --unknown-field
assert_match "$OUT" "^error malformed: the body has fields this version of the protocol does not define" \
	"a Body with an undefined field (nested in a payload) is refused"
assert_eq "$(snapshot)" "$before" "and nothing is stored"

# Many large consent records: the consent answer is cut to fit one message
# and says so; the broker keeps serving everyone.
long=$(printf 'a%.0s' $(seq 1 31))
ids=""
for i in $(seq 10 41); do ids="$ids${ids:+,}$long$((i % 10))x$i"; done
ids=$(echo "$ids" | cut -c1-2000)
agencies=$(echo "$ids" | tr ',' '\n' | cut -c1-32 | paste -sd, -)
name=$(printf 'N%.0s' $(seq 1 128))
# The school is involved with the child, so the consents' type covers it.
expect_status 0 ehx_as school publish --wait "$CHILD_B" --category school_attendance \
	--level 2 --practitioner "Jo Brown" --ref att-b
for i in $(seq 1 60); do
	ehx_as health consent grant "$CHILD_B" --evidence FORM-1 --given-by "$name" --relation parent \
		--types school --agencies "$agencies" --expires +30d >/dev/null ||
		fail "consent $i not recorded"
done
ok "60 consent records of about 1.3 KB each recorded"
expect_status 0 ehx_as school --json consent show "$CHILD_B"
assert_eq "$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["truncated"], 0 < len(d["records"]) < 60)')" \
	"True True" "a consent answer too big for one message is cut and marked truncated"
expect_status 0 ehx_as school consent show "$CHILD_B"
assert_match "$OUT" "More consent records exist" "the table says so too"
expect_status 0 probe police --publish "$CHILD_A" --ref still-serving
ok "the broker still serves after a large answer"

# A consent the asking agency neither recorded nor is named in cannot be
# withdrawn by it; it is answered as if it did not exist.
expect_status 0 ehx_as health consent grant "$CHILD_C" --evidence FORM-2 --given-by "Jane Doe" \
	--relation parent --agencies school --expires +30d
cid=$(printf '%s' "$OUT" | sed -n 's/^Recorded consent \(c-[0-9a-f]*\)\.$/\1/p')
expect_status 1 ehx_as housing consent withdraw "$CHILD_C" --id "$cid" --reason "not ours"
assert_match "$OUT" "not_found" "an unrelated agency cannot withdraw another's consent"
expect_status 2 ehx_as housing consent withdraw "$CHILD_C" --id "$(echo "$cid" | tr a-f A-F)" --reason x
assert_match "$OUT" "lower-case hex" "consent ids are lower-case"
expect_status 0 ehx_as school consent withdraw "$CHILD_C" --id "$cid" --reason "parent asked the school"
ok "an agency the consent names can withdraw it"

# A consent naming a type covers only agencies of that type involved with
# the child, and none of them may withdraw it (issue 16): the school with
# no flag on the child is not covered (as if the consent did not exist);
# once involved it sees it, but only health, which recorded it, withdraws.
expect_status 0 ehx_as health consent grant "$CHILD_C" --evidence FORM-3 --given-by "Jane Doe" \
	--relation parent --types school --expires +30d
cid=$(printf '%s' "$OUT" | sed -n 's/^Recorded consent \(c-[0-9a-f]*\)\.$/\1/p')
expect_status 1 ehx_as school picture "$CHILD_C"
assert_match "$OUT" "no_consent" "a school not involved with the child is not covered by a consent naming schools"
expect_status 1 ehx_as school consent withdraw "$CHILD_C" --id "$cid" --reason "not ours"
assert_match "$OUT" "not_found" "... nor may it withdraw it"
expect_status 0 ehx_as school publish --wait "$CHILD_C" --category school_attendance \
	--level 2 --practitioner "Jo Brown" --ref att-c
expect_status 0 ehx_as school picture "$CHILD_C"
ok "the child's school (with a flag on the child) is covered"
expect_status 1 ehx_as school consent withdraw "$CHILD_C" --id "$cid" --reason "not ours"
assert_match "$OUT" "not_permitted.*only by health" \
	"... but only the agency that recorded it (or one it names) may withdraw it"

# More flags than one answer holds: the picture is cut and marked, and the
# highest open level of need still counts the flags left out.
expect_status 0 ehx_as health consent grant "$CHILD_D" --evidence FORM-4 --given-by "Jane Doe" \
	--relation parent --agencies school --expires +30d
# (Two agencies: one holds at most 64 open flags on one child.)
for i in $(seq 1 128); do
	a=health
	[ "$i" -gt 64 ] && a=housing
	ehx_as $a publish --wait "$CHILD_D" --category physical_health --level 1 \
		--practitioner "Alex Patel" --ref "h-$i" >/dev/null || fail "flag $i"
done
expect_status 1 ehx_as health publish --wait "$CHILD_D" --category physical_health \
	--level 1 --practitioner "Alex Patel" --ref h-129
assert_match "$OUT" "too_large|64 open flags" \
	"an agency's 65th open flag on one child is refused, with why"
expect_status 0 ehx_as police publish --wait "$CHILD_D" --category domestic_abuse --level 4 \
	--practitioner "PC Sam Jones" --ref acute
expect_status 0 ehx_as school --json picture "$CHILD_D"
assert_eq "$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["truncated"], sum(len(a["flags"]) for a in d["involvements"]), d["highest_open_level"])')" \
	"True 128 4" "a cut picture still reports the highest open level of every flag"

# A retry of the very same envelope after its send time has left the clock
# window still gets its first reply (and no second effect).
sed -i 's/^skew_seconds = .*/skew_seconds = 5/' "$SB/broker/broker.conf"
"$top/tests/sandbox" stop broker "$SB"
"$top/tests/sandbox" start broker "$SB"
flags=$(entries flags)
expect_status 0 probe police --publish "$CHILD_E" --ref late-retry --repeat 2 --repeat-delay 6500
assert_match "$OUT" "same-reply yes" "a retry after the window is answered with the first reply"
assert_eq "$(entries flags)" "$((flags + 1))" "and has no second effect"

# The command line bounds its lists before anything is sent.
many=$(printf 'police,%.0s' $(seq 1 32))
expect_status 2 ehx_as health consent grant "$CHILD_A" --evidence FORM-5 --given-by X --relation parent \
	--types "$many" --types "$many" --expires +3d
assert_match "$OUT" "too many agency types" "repeated --types beyond the limit is a usage error"
