#!/usr/bin/env bash
# The main job end to end: flags published by several agencies, a whole
# picture refused before consent, answered after it, refused again after
# withdrawal; closing a flag; consent show; JSON output; CLI errors.
. "$(dirname "$0")/lib.sh"
sandbox_up
open_policy     # the exchange itself; test_07 tests the policy's cuts

expect_status 0 ehx_as police publish --wait "$CHILD_A" --category domestic_abuse \
	--level 3 --practitioner "PC Sam Jones" --contact "101 ext 4455" --ref inc-7
assert_eq "$OUT" "Published flag inc-7." "police publishes a flag"
expect_status 0 ehx_as health publish --wait "943 476 5919" --category mental_health \
	--level 2 --practitioner "Alex Patel" --job "school nurse" \
	--contact alex@nhs.example --lead --note "Weekly sessions" --ref hv-1
expect_status 0 ehx_as school publish --wait "$CHILD_A" --category school_attendance \
	--level 2 --practitioner "Jo Brown" --ref att-3
expect_status 0 ehx_as housing publish --wait "$CHILD_B" --category housing \
	--level 1 --practitioner "Chris Green" --ref h-9
assert_eq "$(entries flags)" 4 "four flags stored"

# Refused before consent, with nothing revealed: the answer for a child
# with three flags is the same as for a child nobody knows.
expect_status 1 ehx_as school --json picture "$CHILD_A"
known=$OUT
expect_status 1 ehx_as school --json picture "$CHILD_E"
assert_eq "$known" "$OUT" "no-consent answer is the same whether flags exist or not"
assert_match "$known" '"error": "no_consent"' "picture refused before consent"

expect_status 0 ehx_as health consent grant "$CHILD_A" --evidence FORM-1 --given-by "Jane Doe" \
	--relation parent --types school,health --expires +180d
cid=$(printf '%s' "$OUT" | sed -n 's/^Recorded consent \(c-[0-9a-f]\{16\}\)\.$/\1/p')
[ -n "$cid" ] || fail "no consent id in: $OUT"
ok "consent recorded as $cid"

expect_status 0 ehx_as school --as information_officer picture "$CHILD_A"
assert_match "$OUT" "shared under consent $cid" "picture names the consent"
assert_match "$OUT" "Highest open level of need: 3 \\(complex\\)" "highest open level"
assert_match "$OUT" "police +police +Domestic abuse +3 complex +open" "police involvement listed"
assert_match "$OUT" "health +health +Mental health +2 additional +open.*Alex Patel \\(school nurs.*alex@nhs.example +yes" "health practitioner, contact and lead marker"
assert_match "$OUT" "school +school +School attendance" "school involvement listed"

expect_status 0 ehx_as school --json picture "$CHILD_A"
json=$OUT
assert_eq "$(printf '%s' "$json" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["highest_open_level"], len(d["involvements"]), sorted(a["agency"] for a in d["involvements"]), d["consent_id"])')" \
	"3 3 ['health', 'police', 'school'] $cid" "JSON picture: level, agencies, consent"

# Housing is not covered by the consent (its type is not in scope).
expect_status 1 ehx_as housing picture "$CHILD_A"
assert_match "$OUT" "no_consent" "an agency outside the consent's scope is refused"

# Step down and close: the picture follows.
expect_status 0 ehx_as police publish --wait "$CHILD_A" --category domestic_abuse \
	--level 2 --practitioner "PC Sam Jones" --ref inc-7
expect_status 0 ehx_as police close --wait "$CHILD_A" --ref inc-7 --reason "no further incidents"
assert_eq "$OUT" "Closed flag inc-7." "police closes its flag"
expect_status 0 ehx_as school --json picture "$CHILD_A"
assert_eq "$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); f=[f for a in d["involvements"] for f in a["flags"] if f["ref"]=="inc-7"][0]; print(d["highest_open_level"], f["status"], f["level"], f["closed_at"] is not None, f["close_reason"])')" \
	"2 closed 2 True no further incidents" "closed flag kept as history with its reason; highest open level drops to 2"
expect_status 1 ehx_as police close --wait "$CHILD_A" --ref no-such-ref
assert_match "$OUT" "not_found" "closing an unknown flag is refused"
expect_status 1 ehx_as health close --wait "$CHILD_A" --ref inc-7
assert_match "$OUT" "not_found" "an agency cannot close another agency's flag"

expect_status 0 ehx_as school consent show "$CHILD_A"
assert_match "$OUT" "$cid  ACTIVE" "consent show lists the active consent"
expect_status 0 ehx_as housing --json consent show "$CHILD_A"
assert_eq "$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))')" 0 \
	"consent show hides consents that do not name the agency"

expect_status 0 ehx_as health consent withdraw "$CHILD_A" --id "$cid" \
	--reason "parent asked" --by "Jane Doe"
assert_eq "$OUT" "Withdrew consent $cid." "consent withdrawn"
expect_status 1 ehx_as school picture "$CHILD_A"
assert_match "$OUT" "no_consent" "picture refused again after withdrawal"
expect_status 0 ehx_as school consent show "$CHILD_A"
assert_match "$OUT" "$cid  WITHDRAWN" "withdrawn consent kept, marked withdrawn"
assert_match "$OUT" "asked by Jane Doe: parent asked" "withdrawal records who and why"
assert_eq "$(entries consent)" 2 "withdrawal is a second entry beside the record, which stays (append-only)"

# Consent by agency id (not type) covers that agency only.
expect_status 0 ehx_as school consent grant "$CHILD_B" --evidence FORM-2 --given-by "Sam Lee" \
	--relation young_person --agencies housing --expires 2027-06-30
expect_status 0 ehx_as housing picture "$CHILD_B"
assert_match "$OUT" "housing +housing +Housing +1 universal" "consent naming an agency id covers it"
expect_status 1 ehx_as police picture "$CHILD_B"
ok "and no other agency"

# The command line refuses bad input before anything is sent.
before=$(entries audit)
expect_status 2 ehx_as police publish --wait "$BAD_NHS" --category housing --level 1 --practitioner x
assert_match "$OUT" "not a valid NHS number" "CLI rejects a bad check digit"
expect_status 2 ehx_as police publish --wait "$CHILD_A" --category nonsense --level 1 --practitioner x
assert_match "$OUT" "unknown category" "CLI rejects an unknown category"
expect_status 2 ehx_as police publish --wait "$CHILD_A" --category housing --level 5 --practitioner x
assert_match "$OUT" "level must be 1, 2, 3 or 4" "CLI rejects level 5"
expect_status 2 ehx_as police consent grant "$CHILD_A" --evidence FORM-3 --given-by x --relation parent --types school --expires 2020-01-01
assert_match "$OUT" "expires_at must be in the future" "CLI rejects an expiry in the past"
expect_status 2 ehx_as police frobnicate
expect_status 2 ehx_as police --as king picture "$CHILD_A"
assert_eq "$(entries audit)" "$before" "nothing was sent for invalid input"

expect_status 0 "$BIN/ehx" --help
assert_match "$OUT" "Exit status" "ehx --help"
for c in publish close consent picture; do
	expect_status 0 "$BIN/ehx" "$c" --help
	assert_match "$OUT" "usage: ehx $c" "ehx $c --help"
done
expect_status 3 "$BIN/ehx" --agent "$SB/nowhere.sock" picture "$CHILD_A"
assert_match "$OUT" "cannot reach the agent" "unreachable agent: exit 3 and a sentence"

# The audit log holds every decision and its Merkle tree verifies.
expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 0
assert_match "$OUT" "Merkle tree and checkpoints verified" "the audit log verifies"
assert_match "$OUT" "school .*query_picture .*deny +no_consent" "refusals are audited"
assert_match "$OUT" "school .*query_picture .*allow +consent:$cid" "allowed pictures name their consent"
if grep -rq "$CHILD_A" "$SB/broker/data" "$SB"/broker/broker.log "$SB"/agencies/*/agent.log; then
	fail "an NHS number appears in the broker's store or a log"
fi
ok "no NHS number in the broker's store or any log"

# Everything the daemons create is private to their user (umask 077).
for f in "$SB/broker/data/data.mdb" "$SB/broker/data/lock.mdb" "$SB/broker/endpoint" \
	"$SB/agencies/police/data/data.mdb" "$SB/agencies/police/data/agent.lock" \
	"$SB/agencies/police/agent.state"; do
	[ -e "$f" ] || fail "$f was not made"
	assert_eq "$(stat -c %a "$f")" 600 "$(basename "$(dirname "$f")")/$(basename "$f") is 0600"
done
for d in "$SB/broker/data" "$SB/agencies/police/data" "$SB/agencies/police/spool"; do
	assert_eq "$(stat -c %a "$d")" 700 "$(basename "$(dirname "$d")")/$(basename "$d")/ is 0700"
done
