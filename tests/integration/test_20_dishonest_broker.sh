#!/usr/bin/env bash
# Issue 16, finding 3: a broker's operator can no longer erase history
# unseen. Against a real sandbox and a deliberately dishonest broker (the
# broker's own code built with EHX_FAULTS: make's ehx-broker-faulty, driven
# by EHX_FAULT), each attack the review made is detected and named:
#   A. a store rewound to before a break-glass, with no checkpoints since;
#   B. a store rewound after the agents saw it, the broker attaching no
#      checkpoint to its replies (the agents pull);
#   C. a split view: two brokers from one store, each showing half the
#      agencies its own log (no quorum of other agencies' cosignatures);
#   D. a truncated export, which ehx-auditverify passes on its own but not
#      held to an agent's state file or --expect;
#   E. a broker that answers everything but the agents' checks;
#   F. a broker that names no audit record for a decision.
. "$(dirname "$0")/lib.sh"

FAULTY=${EHX_FAULTY_BROKER:-$top/build/tests/ehx-broker-faulty}
[ -x "$FAULTY" ] || fail "$FAULTY not built (make $FAULTY)"
IG="--as ig_officer"
AGENCY_SEEN=police

sandbox_up
# The second broker of the split view is the test's own to stop.
trap 'st=$?; [ -f "$SB/broker2/pid" ] && kill "$(cat "$SB/broker2/pid")" 2>/dev/null; (exit $st); cleanup' EXIT
# Quick checks, for a test: pull every second, deadlines of 6 s, two other
# agencies to agree; the broker signs a checkpoint every second.
for a in police health school housing; do
	printf 'audit_poll_seconds = 1\naudit_deadline_seconds = 6\ncosign_quorum = 2\n' \
		>>"$SB/agencies/$a/agent.conf"
done
sed -i 's/^checkpoint_seconds = .*/checkpoint_seconds = 1/' "$SB/broker/broker.conf"

# broker [faulty FAULT]: (re)start the broker, honest or not.
broker() {
	"$top/tests/sandbox" stop broker "$SB" >/dev/null
	if [ "${1:-}" = faulty ]; then
		EHX_BROKER_BIN=$FAULTY EHX_FAULT=$2 "$top/tests/sandbox" start broker "$SB" >/dev/null
	else
		"$top/tests/sandbox" start broker "$SB" >/dev/null
	fi
}
# agents_afresh: restart every agent with no state (what an operator does
# after investigating an alarm).
agents_afresh() {
	local a
	for a in police health school housing; do
		"$top/tests/sandbox" stop "$a" "$SB" >/dev/null
		rm -f "$SB/agencies/$a/agent.state"
		"$top/tests/sandbox" start "$a" "$SB" >/dev/null
	done
}
# field AGENCY NAME: one field of the agent's audit state (ehx audit
# checkpoint --json).
field() {
	ehx_as "$1" $IG --json audit checkpoint | /usr/bin/python3 -c \
		'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
# wait_until WHAT COMMAND...: until COMMAND succeeds, at most 60 s
# (failing, it shows AGENCY_SEEN's audit state).
wait_until() {
	local what=$1 i=0; shift
	AGENCY_SEEN=$2
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 300 ] || fail "never: $what ($(ehx_as "$AGENCY_SEEN" $IG \
			--json audit checkpoint 2>&1 | tr -s '\n ' ' '))"
		sleep 0.2
	done
	ok "$what"
}
settled() {
	[ "$(field "$1" consistent)" = True ] && [ "$(field "$1" pending)" = 0 ] &&
		[ "$(field "$1" confirmed_size)" -gt 0 ] && [ -z "$(field "$1" warning)" ]
}
inconsistent_with() {
	[ "$(field "$1" consistent)" = False ] &&
		grep -Eq -- "$2" <<<"$(field "$1" problem)"
}
# (grep -q on a pipe would stop reading early: pipefail.)
warned_with() { grep -Eq -- "$2" <<<"$(field "$1" warning)"; }
nothing_pending() { [ "$(field "$1" pending)" = 0 ]; }
checked_to() { [ "$(field "$1" size)" -ge "$2" ]; }
pub() {
	ehx_as "$1" publish --wait "$2" --category "$3" --level 2 \
		--practitioner "P $1" --ref "$4" >/dev/null || fail "publish $*"
}

broker
agents_afresh
pub police "$CHILD_A" domestic_abuse da-1
pub school "$CHILD_A" school_attendance att-1
pub health "$CHILD_B" mental_health mh-1
for a in police health school housing; do
	wait_until "$a: every decision checked in the log, the log confirmed by two other agencies" settled $a
done
assert_match "$(field police confirmed_by)" "," "police names the agencies that agreed"

# ---- A. rewound to before a break-glass, and no checkpoints since ------------
# The operator keeps a copy of the store, lets a break-glass happen under
# a broker that signs no checkpoints (so no agent sees one holding it),
# then puts the copy back: the break-glass and its alert are gone.
"$top/tests/sandbox" stop broker "$SB" >/dev/null
rm -rf "$SB/snap" && cp -a "$SB/broker/data" "$SB/snap"
broker faulty no_checkpoints
expect_status 0 ehx_as health picture "$CHILD_A" \
	--break-glass "Child disclosed harm at the clinic, needs urgent check"
alerts=$(ehx_as health $IG --json audit alerts)
assert_match "$alerts" "disclosed harm" "the break-glass raised an alert"
"$top/tests/sandbox" stop broker "$SB" >/dev/null
rm -rf "$SB/broker/data" && cp -a "$SB/snap" "$SB/broker/data"
broker faulty no_checkpoints
assert_no_match "$(ehx_as health $IG --json audit alerts)" "disclosed harm" \
	"after the rewind the broker holds no trace of the alert"
wait_until "health: the rewound broker's withholding is named, with the decision" \
	warned_with health "AUDIT LOG WITHHELD: .*decision [0-9]+"
assert_match "$(ehx_as health picture "$CHILD_B" 2>&1)" "WARNING: AUDIT LOG WITHHELD" \
	"every answer the health agent gives carries the warning"
# An export, held to health's state file, is missing the decision.
ehx_as health $IG audit export "$SB/rewound.export" >/dev/null || fail "export"
expect_status 1 "$BIN/ehx-auditverify" "$SB/rewound.export" --ca "$SB/ca/ca.crt" \
	--state "$SB/agencies/health/agent.state"
assert_match "$OUT" "FAILED: .*decision [0-9]+ of health|record [0-9]+ is not the decision of health" \
	"ehx-auditverify --state names the lost decision"
# The broker honest again on the rewound store: the records it now signs
# at that number are not health's decision. Found, kept, named.
broker
for i in 1 2 3 4 5 6; do pub police "$CHILD_C" offending "fill-$i"; done
wait_until "health: record N is not the decision the broker answered" \
	inconsistent_with health "record [0-9]+ of the log is not this agency's decision"
"$top/tests/sandbox" stop health "$SB" >/dev/null
"$top/tests/sandbox" start health "$SB" >/dev/null
assert_eq "$(field health consistent)" False "the finding survives a restart"

# ---- B. rewound after the agents saw it; no checkpoints attached --------------
agents_afresh
pub housing "$CHILD_D" housing h-1
for a in police health school housing; do
	wait_until "$a: settled again on the honest broker" settled $a
done
"$top/tests/sandbox" stop broker "$SB" >/dev/null
rm -rf "$SB/snap" && cp -a "$SB/broker/data" "$SB/snap"
broker
expect_status 0 ehx_as school picture "$CHILD_A" \
	--break-glass "Child arrived with injuries this morning, urgent check"
wait_until "school: a checkpoint holds its break-glass, found to be its own" \
	nothing_pending school
size=$(field school size)
for a in police health housing; do
	wait_until "$a: has checked a checkpoint holding the break-glass" \
		checked_to $a "$size"
done
"$top/tests/sandbox" stop broker "$SB" >/dev/null
rm -rf "$SB/broker/data" && cp -a "$SB/snap" "$SB/broker/data"
broker faulty no_checkpoints
for a in police health school housing; do
	wait_until "$a: the log went back, found by asking (no checkpoint was attached)" \
		inconsistent_with $a "went back"
done

# ---- C. a split view ----------------------------------------------------------
broker
agents_afresh
pub police "$CHILD_E" offending o-1
for a in police health school housing; do
	wait_until "$a: settled before the split" settled $a
done
"$top/tests/sandbox" stop broker "$SB" >/dev/null
rm -rf "$SB/broker2" && cp -a "$SB/broker" "$SB/broker2"
rm -f "$SB/broker2/endpoint" "$SB/broker2/pid" "$SB/broker2/broker.log"
sed -i 's|^listen = .*|listen = tcp://127.0.0.1:*|' "$SB/broker2/broker.conf"
broker
"$BIN/ehx-broker" -c "$SB/broker2/broker.conf" >>"$SB/broker2/broker.log" 2>&1 &
echo $! >"$SB/broker2/pid"
i=0
until [ -s "$SB/broker2/endpoint" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the second broker did not start"
	sleep 0.1
done
for a in health housing; do
	"$top/tests/sandbox" stop $a "$SB" >/dev/null
	sed -i "s|^broker = .*|broker = $(cat "$SB/broker2/endpoint")|" "$SB/agencies/$a/agent.conf"
	"$top/tests/sandbox" start $a "$SB" >/dev/null
done
pub police "$CHILD_E" anti_social_behaviour asb-1
pub health "$CHILD_E" mental_health mh-e
for a in police health school housing; do
	wait_until "$a: names a possible split view (one other agency of the two needed agrees)" \
		warned_with $a "NOT CONFIRMED: 1 of the 2 other agencies needed .*split view"
done
kill "$(cat "$SB/broker2/pid")" 2>/dev/null || true
rm -f "$SB/broker2/pid"

# ---- D. a truncated export ------------------------------------------------------
for a in health housing; do
	"$top/tests/sandbox" stop $a "$SB" >/dev/null
	sed -i "s|^broker = .*|broker = $ENDPOINT|" "$SB/agencies/$a/agent.conf"
done
agents_afresh
pub school "$CHILD_B" school_attendance att-b
wait_until "police: settled on the honest broker" settled police
ehx_as police $IG audit export "$SB/full.export" >/dev/null || fail "export"
expect_status 0 "$BIN/ehx-auditverify" "$SB/full.export" --ca "$SB/ca/ca.crt" \
	--state "$SB/agencies/police/agent.state"
ok "an honest export holds to police's state file"
broker faulty truncate_export
ehx_as police $IG audit export "$SB/cut.export" >/dev/null || fail "export"
expect_status 0 "$BIN/ehx-auditverify" "$SB/cut.export" --ca "$SB/ca/ca.crt"
ok "a cut export holds together on its own (why an agency's view is needed)"
expect_status 1 "$BIN/ehx-auditverify" "$SB/cut.export" --ca "$SB/ca/ca.crt" \
	--state "$SB/agencies/police/agent.state"
assert_match "$OUT" "FAILED: the export stops at [0-9]+ records, short of the checkpoint of [0-9]+ records the agency checked" \
	"held to police's state file, the cut export fails and says why"
expect_status 1 "$BIN/ehx-auditverify" "$SB/cut.export" --ca "$SB/ca/ca.crt" \
	--expect "$(field police size):$(field police root)"
assert_match "$OUT" "FAILED: the export stops at" "--expect SIZE:ROOT fails it too"
expect_status 2 "$BIN/ehx-auditverify" "$SB/cut.export" --ca "$SB/ca/ca.crt" --expect 12:abc
assert_match "$OUT" "SIZE:ROOT" "a bad --expect is a usage error"

# ---- E. a broker that ignores the agents' checks ------------------------------
# It answers everything else (the agent's notification fetches, its
# requests) and never a query_proof: no proof ever fails, and nothing
# passes either. The deadlines count the time it answers, so it is named.
broker
agents_afresh
for a in police health school housing; do
	wait_until "$a: settled before the broker stops answering checks" settled $a
done
broker faulty ignore_checks
expect_status 0 ehx_as police picture "$CHILD_A" \
	--break-glass "Officers at the door now, need the whole picture urgently"
wait_until "police: the break-glass under no checkpoint, named WITHHELD" \
	warned_with police "AUDIT LOG WITHHELD: .*decision [0-9]+"
wait_until "police: the agreement never answered, named NOT CONFIRMED" \
	warned_with police "AUDIT LOG NOT CONFIRMED: 0 of the 2"

# ---- F. a broker that names no record for a decision ---------------------------
broker
agents_afresh
pub health "$CHILD_B" mental_health mh-f
wait_until "health: settled, having seen the broker name its decisions" settled health
broker faulty unnamed_decisions
expect_status 0 ehx_as health picture "$CHILD_A" \
	--break-glass "Child seen at A&E with injuries, urgent safeguarding check"
wait_until "health: a decision answered without its audit record is named" \
	inconsistent_with health "without naming its audit record"
