#!/usr/bin/env bash
# Fault test: kill -9 the broker at random moments while four agencies
# each import a stream of flags (EHX_FAULT_PUBLISHES in all, at least
# 10,000 in make test) through their agents' outboxes, then restart it.
# Every publish an agent reported as acknowledged must be stored exactly
# once, every publish still queued must be delivered after the restart, and
# no request may have had a second effect: each message id is decided once
# in the audit log, and there are exactly as many flags as rows.
. "$(dirname "$0")/lib.sh"
sandbox_up
N=${EHX_FAULT_PUBLISHES:-10000}
AGENCIES=(police health school housing)
per=$((N / 4))
N=$((per * 4))

# The rows: per agency, per refs over 400 synthetic children (valid NHS
# numbers), in the import format the agencies' nightly extracts use.
/usr/bin/python3 - "$SB" "$per" "${AGENCIES[@]}" <<'EOF'
import random, sys
sb, per, agencies = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def nhs(r):
    while True:
        d = [r.randrange(10) for _ in range(9)]
        c = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
        c = 0 if c == 11 else c
        if c != 10:
            return "".join(map(str, d)) + str(c)
r = random.Random(4)
children = [nhs(r) for _ in range(400)]
cats = {"police": "offending", "health": "physical_health",
        "school": "school_attendance", "housing": "housing"}
for a in agencies:
    with open(f"{sb}/{a}.csv", "w") as f:
        f.write("nhs_number,ref,category,level,practitioner\n")
        for i in range(per):
            f.write(f"{children[(i * 7 + len(a)) % 400]},{a}-{i},{cats[a]},"
                    f"{1 + i % 4},Fault Test\n")
EOF

# The killer: kill -9 the broker every 0.3-1.5 s and start it again.
(
	while [ ! -e "$SB/stop-killing" ]; do
		sleep "$(( RANDOM % 2 )).$(( RANDOM % 10 ))"
		sleep 0.3
		"$top/tests/sandbox" stop broker "$SB" --kill
		"$top/tests/sandbox" start broker "$SB" >/dev/null
	done
) >"$SB/killer.log" 2>&1 &
killer=$!

start=$(date +%s)
pids=()
for a in "${AGENCIES[@]}"; do
	ehx_as "$a" --as system --json import "$SB/$a.csv" --timeout 900 \
		>"$SB/$a.import" 2>"$SB/$a.import.err" &
	pids+=($!)
done
st=0
for p in "${pids[@]}"; do wait "$p" || st=1; done
touch "$SB/stop-killing"
wait $killer
kills=$(($(grep -c "listening on" "$SB/broker/broker.log") - 1))
[ $st = 0 ] || { cat "$SB"/*.import "$SB"/*.import.err >&2; fail "an import did not finish"; }
acked=0
for a in "${AGENCIES[@]}"; do
	d=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["delivered"], d["refused"])' "$SB/$a.import")
	set -- $d
	[ "$2" = 0 ] || fail "$a: $2 rows refused"
	acked=$((acked + $1))
done
ok "$N publishes from 4 agencies in $(( $(date +%s) - start )) s with the broker killed $kills times: $acked acknowledged"
assert_eq "$acked" "$N" "every row was acknowledged"
[ "$kills" -ge 1 ] || fail "the broker was never killed during the imports"

"$top/tests/sandbox" stop broker "$SB" 2>/dev/null || true
assert_eq "$(entries flags)" "$N" "the store holds exactly one flag per row ($N)"
"$top/tests/sandbox" start broker "$SB" >/dev/null

# Each acknowledged row is stored under its own ref, exactly once.
mdb_dump -p -s flags "$SB/broker/data" | grep -aoE '(police|health|school|housing)\\00(police|health|school|housing)-[0-9]+' |
	sed 's/\\00/ /' | sort | uniq -c | awk '$1 != 1' >"$SB/dupkeys"
assert_eq "$(wc -l <"$SB/dupkeys")" 0 "no ref is stored twice"
stored=$(mdb_dump -p -s flags "$SB/broker/data" | grep -acE '(police|health|school|housing)\\00(police|health|school|housing)-[0-9]+')
assert_eq "$stored" "$N" "every ref of every file is stored"

expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 0 --json
printf '%s\n' "$OUT" >"$SB/audit.json"
read -r decided dups allowed <<<"$(/usr/bin/python3 - "$SB/audit.json" <<'EOF'
import collections, json, sys
c = collections.Counter()
allowed = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r["action"] == "publish_flag":
        c[r["message_id"]] += 1
        allowed += r["decision"] == "allow"
print(sum(c.values()), sum(1 for v in c.values() if v > 1), allowed)
EOF
)"
assert_eq "$dups" 0 "no publish was decided twice ($decided decisions checked)"
assert_eq "$allowed" "$N" "exactly one allowed decision per row"
expect_status 0 "$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 1
assert_match "$OUT" "Merkle tree and checkpoints verified" "the audit log survives every kill -9"
