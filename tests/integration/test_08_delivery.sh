#!/usr/bin/env bash
# Store-and-forward and notifications under faults: the broker down for a
# while (agents keep accepting, then drain in order), kill -9 of an agent
# with queued items (all delivered, none twice), and a notification to an
# agency whose agent is down (delivered when it is back, to a hook that
# fails at first, exactly once). Each check states the counts it checked.
. "$(dirname "$0")/lib.sh"
sandbox_up
open_policy_notify() {
	# The default policy, and notify the school of offending as well.
	printf '\n[notify offending]\nschool = public_task\n' >>"$SB/broker/policy.ini"
	"$top/tests/sandbox" stop broker "$SB" >/dev/null
	"$top/tests/sandbox" start broker "$SB" >/dev/null
}
open_policy_notify

# status_field AGENCY FIELD: one field of ehx status --json.
status_field() {
	ehx_as "$1" --json status | /usr/bin/python3 -c \
		'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# wait_drained AGENCY SECONDS: until its outbox is empty.
wait_drained() {
	local i=0
	while [ "$(status_field "$1" outbox)" != 0 ]; do
		i=$((i + 1))
		[ $i -lt $(($2 * 5)) ] || fail "$1's outbox did not drain in $2 s"
		sleep 0.2
	done
}

# decided ID...: how many audit records decide each of these message ids.
audit_json() {
	"$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 0 --json >"$SB/audit.json"
}

# ---- 1. The broker down for a while ----------------------------------------
"$top/tests/sandbox" stop broker "$SB"
M=40
: >"$SB/queued.ids"
t0=$(date +%s%N)
for i in $(seq 1 $M); do
	lvl=$(( (i - 1) % 4 + 1 ))
	expect_status 0 ehx_as police --json publish "$CHILD_A" --category offending \
		--level "$lvl" --practitioner "PC Sam Jones" --ref "order-1"
	printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["queued"]; print(d["message_id"])' >>"$SB/queued.ids"
done
expect_status 0 ehx_as police --json close "$CHILD_A" --ref order-1 --reason "moved away"
printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["message_id"])' >>"$SB/queued.ids"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "with the broker down, $((M + 1)) changes were accepted and queued in $ms ms"
assert_eq "$(status_field police outbox)" "$((M + 1))" "ehx status counts them queued"
expect_status 0 ehx_as police status
assert_match "$OUT" "oldest" "ehx status gives the age of the oldest queued item"
sleep 3
"$top/tests/sandbox" start broker "$SB" >/dev/null
wait_drained police 60
audit_json
order=$(/usr/bin/python3 - "$SB/audit.json" "$SB/queued.ids" <<'EOF'
import json, sys
ids = [l.strip() for l in open(sys.argv[2]) if l.strip()]
seen = [json.loads(l)["message_id"] for l in open(sys.argv[1]) if l.startswith("{")
        and json.loads(l)["agency"] == "police"
        and json.loads(l)["action"] in ("publish_flag", "close_flag")]
got = [m for m in seen if m in set(ids)]
print("same" if got == ids else f"differ {len(got)} {len(ids)}")
EOF
)
assert_eq "$order" same "the $((M + 1)) queued changes were decided once each, in the order they were queued"
expect_status 0 ehx_as police --json --as information_officer picture "$CHILD_A" \
	--break-glass "checking the order of queued changes in a test"
printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
f = [f for a in d["involvements"] for f in a["flags"] if f["ref"] == "order-1"][0]
assert f["status"] == "closed" and f["level"] == 4, f' || fail "the last change did not win"
ok "the flag ends as the last queued change left it (level 4, closed)"

# ---- 2. kill -9 an agent with queued items ----------------------------------
"$top/tests/sandbox" stop broker "$SB"
K=60
for i in $(seq 1 $K); do
	expect_status 0 ehx_as health publish "$CHILD_B" --category physical_health \
		--level 1 --practitioner "Alex Patel" --ref "agent-kill-$i"
done
"$top/tests/sandbox" stop health "$SB" --kill
"$top/tests/sandbox" start broker "$SB" >/dev/null
"$top/tests/sandbox" start health "$SB" >/dev/null
# And once more, while it is draining.
sleep 0.$((RANDOM % 5))
"$top/tests/sandbox" stop health "$SB" --kill
"$top/tests/sandbox" start health "$SB" >/dev/null
wait_drained health 60
audit_json
read -r n dups <<<"$(/usr/bin/python3 - "$SB/audit.json" <<'EOF'
import collections, json, sys
c = collections.Counter(json.loads(l)["message_id"] for l in open(sys.argv[1])
    if l.startswith("{") and json.loads(l)["agency"] == "health"
    and json.loads(l)["action"] == "publish_flag")
print(sum(c.values()), sum(1 for v in c.values() if v > 1))
EOF
)"
assert_eq "$dups" 0 "after kill -9 of the agent, no publish was decided twice"
assert_eq "$n" "$K" "all $K queued publishes were decided once each"
expect_status 0 ehx_as health --json --as information_officer picture "$CHILD_B" \
	--break-glass "agent kill test needs the full picture now"
got=$(printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for a in d["involvements"] for f in a["flags"] if f["ref"].startswith("agent-kill-")))')
assert_eq "$got" "$K" "all $K are stored"

# ---- 3. A notification to an agency whose agent is down ---------------------
cat >"$SB/hook.sh" <<EOF
#!/bin/sh
# Fails the first two times, then keeps what it is given.
n=\$(cat "$SB/hook.tries" 2>/dev/null || echo 0)
echo \$((n + 1)) >"$SB/hook.tries"
[ "\$n" -ge 2 ] || exit 1
cat >>"$SB/hook.got"
EOF
chmod 755 "$SB/hook.sh"
printf 'hook = %s\n' "$SB/hook.sh" >>"$SB/agencies/school/agent.conf"
"$top/tests/sandbox" stop school "$SB"
"$top/tests/sandbox" start school "$SB" >/dev/null
expect_status 0 ehx_as school publish --wait "$CHILD_C" --category school_attendance \
	--level 2 --practitioner "Jo Brown" --ref att-1
"$top/tests/sandbox" stop school "$SB" --kill
expect_status 0 ehx_as police publish --wait "$CHILD_C" --category offending \
	--level 3 --practitioner "PC Sam Jones" --ref off-9
assert_no_match "$OUT" "agenc" "the police are not told who else is involved"
# queued N: until the broker's queue holds N notifications (at most 10 s):
# the broker signs and queues the publishes' notifications all together,
# a moment after them (issue 16: nothing in a publish's timing may say who
# else is involved).
queued() {
	local i=0
	until [ "$(entries notify)" = "$1" ]; do
		i=$((i + 1)); [ $i -lt 200 ] || break
		sleep 0.05
	done
}
queued 1
assert_eq "$(entries notify)" 1 "the notification waits in the broker's queue for the school"
"$top/tests/sandbox" start school "$SB" >/dev/null
i=0
while [ ! -s "$SB/hook.got" ]; do
	i=$((i + 1)); [ $i -lt 300 ] || fail "the hook never got the notification"
	sleep 0.1
done
sleep 4   # time for a wrong second run to show
assert_eq "$(wc -l <"$SB/hook.got")" 1 "the hook got it exactly once"
assert_eq "$(cat "$SB/hook.tries")" 3 "after failing twice (3 runs)"
/usr/bin/python3 - "$SB/hook.got" "$CHILD_C" <<'EOF' || fail "the hook's JSON is not the notification"
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert d["nhs_number"] == sys.argv[2] and d["agency"] == "police", d
assert d["category"] == "offending" and d["event"] == "new", d
assert d["basis"] == "public_task", d
EOF
ok "the hook's JSON names the child, the police, offending, a new flag, public_task"
assert_eq "$(entries notify)" 0 "the broker dropped it once the school's agent had stored it"
assert_eq "$(ls "$SB/agencies/school/spool/new" | wc -l)" 1 "the spool holds it once (new/)"
expect_status 0 ehx_as school --json inbox
n=$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
assert_eq "$n" 1 "ehx inbox lists it"
seq=$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["seq"])')
expect_status 1 ehx_as school --as ig_officer inbox
assert_match "$OUT" "not_permitted|not permitted" "an IG officer may not read the inbox (it names children)"
expect_status 1 ehx_as school --as admin inbox ack "$seq"
assert_match "$OUT" "not_permitted|not permitted" "nor may an admin acknowledge one"
assert_match "$(cat "$SB/agencies/school/agent.log")" "inbox refused to .* as ig_officer" \
	"the refusal is logged"
expect_status 0 ehx_as school inbox ack "$seq"
assert_match "$(cat "$SB/agencies/school/agent.log")" "inbox $seq acknowledged by " \
	"the acknowledgement is logged with who made it"
expect_status 0 ehx_as school --json inbox
n=$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
assert_eq "$n" 0 "acknowledged, it leaves the list of new ones"
audit_json
# (In the publish's own record, which names whom it told: one record a
# publish, whoever is told, since issue 16.)
assert_match "$(grep '"action":"publish_flag"' "$SB/audit.json")" '"notified":\["school"\]' \
	"the notification is audited, in the publish's record, as a disclosure to the school"

# ---- 4. A store restored or replaced ----------------------------------------
# hook_lines N: wait (up to 30 s) until the school's hook holds N documents.
hook_lines() {
	local i=0
	while [ "$(wc -l <"$SB/hook.got")" -lt "$1" ]; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "the hook holds $(wc -l <"$SB/hook.got") notifications, not $1"
		sleep 0.1
	done
	sleep 1     # time for a wrong extra one to show
	assert_eq "$(wc -l <"$SB/hook.got")" "$1" "the hook holds exactly $1 notifications"
}
# (a) The school's agent store lost while notifications wait for it: a new
# store takes what the broker still holds (its queue no longer starts at 1).
"$top/tests/sandbox" stop school "$SB" --kill
for r in 1 2; do
	expect_status 0 ehx_as police publish --wait "$CHILD_C" --category offending \
		--level 2 --practitioner "PC Sam Jones" --ref "off-wipe-$r"
done
queued 2
assert_eq "$(entries notify)" 2 "two notifications wait for the school (its seq 2 and 3)"
rm -rf "$SB/agencies/school/data"
chmod 0750 "$SB/agencies/school/spool/new"    # shared with the case system's group
"$top/tests/sandbox" start school "$SB" >/dev/null
hook_lines 3
assert_eq "$(cd "$SB/agencies/school/spool/new" && ls -t | head -2 | xargs stat -c %a | sort -u)" 640 \
	"with new/ open to the group, spool files are group-readable (0640)"
assert_eq "$(entries notify)" 0 "the broker dropped them once the new store held them"
assert_match "$(tail -2 "$SB/hook.got" | /usr/bin/python3 -c '
import json, sys
print(" ".join("%s/%s" % (d["broker_seq"], d["seq"]) for d in map(json.loads, sys.stdin)))')" \
	"^2/1 3/2$" "the new store numbers them 1, 2 (the broker's 2, 3)"
assert_eq "$(ls "$SB/agencies/school/spool/new" | wc -l)" 3 \
	"the spool holds all 3: the new store's number 1 did not replace the old store's"

# (b) The broker restored from a backup taken before notifications the
# school has: its numbers for the school go back, and the next one reuses a
# seq the school has seen. The school's fetch names its last by id; the
# broker does not know it, drops nothing, and sends its queue from the
# start: the new notification reaches the hook, once.
"$top/tests/sandbox" stop broker "$SB" >/dev/null
cp -a "$SB/broker/data" "$SB/broker-backup"
"$top/tests/sandbox" start broker "$SB" >/dev/null
expect_status 0 ehx_as police publish --wait "$CHILD_C" --category offending \
	--level 2 --practitioner "PC Sam Jones" --ref off-after-backup
hook_lines 4
"$top/tests/sandbox" stop broker "$SB" >/dev/null
rm -rf "$SB/broker/data"
mv "$SB/broker-backup" "$SB/broker/data"
"$top/tests/sandbox" start broker "$SB" >/dev/null
sleep 5     # the school's agent polls every 2 s meanwhile
assert_eq "$(grep -c 'which its queue here does not know by that id' "$SB/broker/broker.log")" 1 \
	"the school's agent, told restart with nothing queued, starts again from 0 (one restart, not one per poll)"
expect_status 0 ehx_as police publish --wait "$CHILD_C" --category offending \
	--level 3 --practitioner "PC Sam Jones" --ref off-after-restore
hook_lines 5
assert_match "$(tail -1 "$SB/hook.got")" '"broker_seq":4' \
	"the restored broker gave seq 4 again, to another notification"
assert_match "$(tail -1 "$SB/hook.got")" '"seq":4,' "stored as the school's inbox number 4 (its own numbering goes on)"
assert_match "$(cat "$SB/broker/broker.log")" "which its queue here does not know by that id" \
	"the broker logs that the school's inbox and its queue parted"
assert_match "$(cat "$SB/agencies/school/agent.log")" "taking its queue from the start" \
	"the school's agent logs it too"
assert_eq "$(entries notify)" 0 "and the broker's queue for the school is empty again"
