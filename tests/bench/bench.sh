#!/usr/bin/env bash
# make bench — how fast EHX is on this machine, beside what the machine can
# do (issue 6; docs/PERFORMANCE.md says how to read it). A measurement,
# never a test: nothing here fails on a figure, only when a part breaks.
#
#   1. ceilings: Ed25519, durable LMDB puts, ZeroMQ CURVE (ehx-ceilings)
#   2. publish (a): pre-signed publishes straight at a broker (ehx-loadgen)
#   3. publish (b): real agents signing, four agencies importing at once
#   4. footprint: agents idle and loaded, broker loaded, store bytes a flag
#   5. notification: publish at the police to the school's hook running;
#      and whether a publish's time says who else is involved
#      (tests/bench/side_channel.sh)
#   6. at each scale (BENCH_SCALES children, about five flags each, made by
#      ehx-gen): whole-picture queries end to end through an agent's socket
#      (ehx-querybench) and inside the broker (ehx-gen --broker-time), and
#      pre-signed publishes into the store of that size
#   7. matching: a synthetic city of BENCH_MATCH_CHILDREN children (default
#      100000) and four agencies' extracts with the errors real ones have
#      (tests/bench/population.py), linked by the broker's identity code
#      in a real store (ehx-matchbench): precision and recall against the
#      truth, the share sent to review, twins, and records a second
#      against the machine's HMAC ceiling
#   8. tests/bench/report.py: the table, tests/bench/latest.json, the plot
#
# Environment: EHX_BIN (the binaries), BENCH_SCALES (default "10000 100000
# 1000000"), BENCH_QUERIES (default 3000), BENCH_PUBLISHES (pre-signed,
# default 30000; at each scale BENCH_SCALE_PUBLISHES, 10000), BENCH_IMPORT_ROWS (per agency, default 5000),
# CEILING_SECONDS (default 2), BENCH_OUT (default tests/bench).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${EHX_BIN:-$top/build/bin}
export EHX_BIN=$BIN
SCALES=${BENCH_SCALES:-10000 100000 1000000}
QUERIES=${BENCH_QUERIES:-3000}
PUBLISHES=${BENCH_PUBLISHES:-30000}
SCALE_PUBLISHES=${BENCH_SCALE_PUBLISHES:-10000}
ROWS=${BENCH_IMPORT_ROWS:-5000}
OUT=${BENCH_OUT:-$top/tests/bench}
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/ehx-bench.XXXXXX")
chmod 711 "$W"     # run as root, the sandboxes' daemons are nobody
SB=
cleanup() {
	[ -z "${BENCH_KEEP:-}" ] || { echo "bench: kept $W" >&2; [ -z "$SB" ] || "$top/tests/sandbox" down "$SB" >/dev/null 2>&1; return; }
	[ -z "$SB" ] || "$top/tests/sandbox" down "$SB" >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT
say() { printf '== %s\n' "$*" >&2; }

# A fresh sandbox in $W/sb-NAME with the broker's request rate lifted (the
# benchmark measures throughput, not the flood guard), room for a national
# store, and checkpoints as often as the broker's defaults sign them (the
# sandbox signs every 16 records or 5 s, for the tests). Sets SB.
sandbox_up() {
	SB=$W/sb-$1
	"$top/tests/sandbox" up "$SB" >/dev/null
	"$top/tests/sandbox" stop broker "$SB" >/dev/null
	sed -i -e 's/^map_size_mb = .*/map_size_mb = 65536/' \
	    -e 's/^checkpoint_records = .*/checkpoint_records = 1000/' \
	    -e 's/^checkpoint_seconds = .*/checkpoint_seconds = 60/' \
	    "$SB/broker/broker.conf"
	printf 'rate_per_second = 1000000\nrate_burst = 1000000\n' \
	    >>"$SB/broker/broker.conf"
}
broker_start() { "$top/tests/sandbox" start broker "$SB" >/dev/null; }
sandbox_down() { "$top/tests/sandbox" down "$SB" >/dev/null; rm -rf "$SB"; SB=; }
pid_of() { cat "$SB/$1/pid"; }
# VmRSS or VmHWM of a process, in KiB.
mem() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# CPU time a process has used (user + system, all threads), in ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Proportional set size (its share of shared pages), in KiB.
pss() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup"; }
ehx() { local a=$1; shift; "$BIN/ehx" --agent "$SB/agencies/$a/agent.sock" "$@"; }

say "ceilings (${CEILING_SECONDS:-2} s each)"
"$BIN/ehx-ceilings" --seconds "${CEILING_SECONDS:-2}" >"$W/ceilings.json"

say "publish (a): $PUBLISHES pre-signed publishes, 256 in flight, 3 runs"
for run in 1 2 3; do
	sandbox_up pub$run
	broker_start
	P=$SB/agencies/police
	bpid=$(pid_of broker)
	cpu0=$(cpu_ticks "$bpid")
	"$BIN/ehx-loadgen" --broker "$(cat "$SB/broker/endpoint")" \
	    --server-curve "$SB/broker/curve.pub" --curve "$P/curve.key" \
	    --key "$P/police.key" --cert "$P/police.crt" --agency police \
	    --count "$PUBLISHES" --window 256 --tag "r$run" >"$W/publish_a.$run.json"
	cpu1=$(cpu_ticks "$bpid")
	# The broker's own CPU (all its threads, user and system) per publish.
	echo "{\"broker_hwm_kib\": $(mem "$bpid" VmHWM), \"broker_rss_kib\": $(mem "$bpid" VmRSS), \"broker_cpu_us_per_publish\": $(( (cpu1 - cpu0) * 1000000 / $(getconf CLK_TCK) / PUBLISHES ))}" \
	    >"$W/publish_a_mem.$run.json"
	"$top/tests/sandbox" stop broker "$SB" >/dev/null
	# What each publish left in the store, through the wire: the flag,
	# its audit record and tree nodes, the kept envelope, the replay entry.
	"$PY" - "$SB/broker/data" "$PUBLISHES" >"$W/store_wire.$run.json" <<'PY'
import json, subprocess, sys
out = subprocess.run(["mdb_stat", "-e", sys.argv[1]], capture_output=True,
                     text=True, check=True).stdout
info = {}
for line in out.splitlines():
    k, _, v = line.strip().partition(":")
    info[k] = v.strip()
used = int(info["Number of pages used"]) * int(info["Page size"])
print(json.dumps({"publishes": int(sys.argv[2]), "store_bytes": used,
                  "bytes_per_publish": round(used / int(sys.argv[2]))}))
PY
	sandbox_down
done

say "publish (b): four agents signing, $ROWS rows each, imported at once"
sandbox_up agents
broker_start
sleep 5
for a in police health school housing; do
	echo "{\"agency\": \"$a\", \"rss_kib\": $(mem "$(pid_of "agencies/$a")" VmRSS), \"pss_kib\": $(pss "$(pid_of "agencies/$a")")}"
done >"$W/agent_idle.jsonl"
"$PY" - "$W" "$ROWS" <<'PY'
import sys
cats = {"police": ["domestic_abuse", "offending"],
        "health": ["mental_health", "physical_health"],
        "school": ["school_attendance", "send"],
        "housing": ["housing"]}
def nhs(n):
    p = 700000000 + n * 7919
    while True:
        d = "%09d" % (p % 1000000000)
        c = 11 - sum(int(x) * (10 - i) for i, x in enumerate(d)) % 11
        c = 0 if c == 11 else c
        if c != 10:
            return d + str(c)
        p += 1
for a, cs in cats.items():
    with open(f"{sys.argv[1]}/{a}.csv", "w") as f:
        f.write("nhs_number,ref,category,level,practitioner,contact\n")
        for i in range(int(sys.argv[2])):
            f.write(f"{nhs(i)},{a}-{i},{cs[i % len(cs)]},{1 + i % 4},"
                    f"Bench Practitioner,01234 567890\n")
PY
start=$(date +%s.%N)
for a in police health school housing; do
	ehx "$a" --as system import "$W/$a.csv" --json >"$W/import.$a.json" &
done
# Agents under load: their peak resident memory, sampled while they work.
peak=0
while [ "$(jobs -r | wc -l)" -gt 0 ]; do
	for a in police health school housing; do
		r=$(mem "$(pid_of "agencies/$a")" VmRSS)
		[ "$r" -le "$peak" ] || peak=$r
	done
	sleep 0.2
done
wait
end=$(date +%s.%N)
echo "{\"rows\": $((4 * ROWS)), \"seconds\": $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'), \"agent_rss_peak_kib\": $peak, \"broker_hwm_kib\": $(mem "$(pid_of broker)" VmHWM)}" \
    >"$W/publish_b.json"
sandbox_down

say "notification latency (${BENCH_NOTIFY_SAMPLES:-100} publishes)"
EHX_BENCH_SAMPLES=${BENCH_NOTIFY_SAMPLES:-100} EHX_BENCH_OUT=$W/notify.json \
    "$top/tests/bench/notify_latency.sh" >&2
say "timing side channel: publishes on children others know, and not"
EHX_BENCH_OUT=$W/side_channel.json "$top/tests/bench/side_channel.sh" >&2
say "timing side channel: children named by identity, known to another agency or not"
EHX_BENCH_IDENTITY=1 EHX_BENCH_OUT=$W/side_channel_identity.json \
    "$top/tests/bench/side_channel.sh" >&2

for n in $SCALES; do
	say "scale $n children: generate"
	sandbox_up "s$n"
	P=$SB/agencies/police
	"$BIN/ehx-gen" --config "$SB/broker/broker.conf" --children "$n" \
	    --nhs-out "$W/nhs.$n" --sample 10000 --map-mb 65536 \
	    >"$W/gen.$n.json"
	# Let the kernel write the bulk load out first: its writeback would
	# otherwise sit in front of every query's fsync.
	sync
	say "scale $n: $QUERIES queries inside the broker"
	"$BIN/ehx-gen" --config "$SB/broker/broker.conf" --children 0 \
	    --nhs-in "$W/nhs.$n" --broker-time "$QUERIES" --agency police \
	    --key "$P/police.key" --cert "$P/police.crt" --map-mb 65536 \
	    >"$W/broker_time.$n.json"
	broker_start
	say "scale $n: $QUERIES queries through the police agent's socket"
	"$BIN/ehx-querybench" --agent "$P/agent.sock" --nhs-file "$W/nhs.$n" \
	    --count "$QUERIES" --warmup 200 --as information_officer \
	    >"$W/query.$n.json"
	bpid=$(pid_of broker)
	echo "{\"broker_rss_kib\": $(mem "$bpid" VmRSS), \"broker_hwm_kib\": $(mem "$bpid" VmHWM), \"broker_pss_kib\": $(pss "$bpid")}" \
	    >"$W/broker_mem.$n.json"
	say "scale $n: $SCALE_PUBLISHES pre-signed publishes into the store"
	"$BIN/ehx-loadgen" --broker "$(cat "$SB/broker/endpoint")" \
	    --server-curve "$SB/broker/curve.pub" --curve "$P/curve.key" \
	    --key "$P/police.key" --cert "$P/police.crt" --agency police \
	    --count "$SCALE_PUBLISHES" --window 256 --children 100000 \
	    --tag "s$n" >"$W/publish_scale.$n.json"
	sandbox_down
done

MATCH_CHILDREN=${BENCH_MATCH_CHILDREN:-100000}
say "matching: $MATCH_CHILDREN children, four agencies' extracts"
"$PY" "$top/tests/bench/population.py" "$MATCH_CHILDREN" "$W/population" >&2
cp "$W/population/summary.json" "$W/population.json"
"$BIN/ehx-matchbench" "$W/match-store" "$W/population/health.jsonl" \
    "$W/population/school.jsonl" "$W/population/police.jsonl" \
    "$W/population/housing.jsonl" >"$W/matching.json"
du -sk "$W/match-store" | awk '{ print "{\"store_kib\": " $1 "}" }' \
    >"$W/matching_store.json"
rm -rf "$W/match-store" "$W/population"

say "report"
mkdir -p "$OUT"
"$PY" "$top/tests/bench/report.py" "$W" "$OUT" "$SCALES"
