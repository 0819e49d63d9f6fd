#!/usr/bin/python3
"""make bench's report: gather what tests/bench/bench.sh measured (in its
work directory), print the table with each figure beside its ceiling as a
ratio, write every figure to OUT/latest.json and draw OUT/latest.svg with
gnuplot (latency and throughput against the number of children), and the
same as OUT/latest.png.

usage: report.py WORKDIR OUTDIR "SCALES"
       report.py RUN.json OUTDIR     (the plot again, from a saved run)
"""
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time


def load(path):
    """One JSON object: the whole file, or its last line (the tools print
    progress lines before it)."""
    with open(path) as f:
        text = f.read().strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(text.splitlines()[-1])


def loadall(pattern):
    return [load(p) for p in sorted(glob.glob(pattern))]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    w, out, scales = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split()]
    c = load(f"{w}/ceilings.json")
    verify_all = c["ed25519_sodium_all"]
    # The floor under one audited query: a CURVE round trip and one durable
    # commit (its audit record), on this machine, measured in this run.
    commit_us = c.get("lmdb_commit_p50_us", 1e6 / c["lmdb_puts_commit_1"])
    commit99_us = c.get("lmdb_commit_p99_us", commit_us)
    floor_us = c["zmq_rtt_p50_us"] + commit_us
    floor99_us = c["zmq_rtt_p99_us"] + commit99_us

    pub_runs = loadall(f"{w}/publish_a.[0-9]*.json")
    pub_mem = loadall(f"{w}/publish_a_mem.*.json")
    wire = loadall(f"{w}/store_wire.*.json")
    pub_a = statistics.median(r["acks_per_s"] for r in pub_runs)
    pb = load(f"{w}/publish_b.json")
    imports = loadall(f"{w}/import.*.json")
    pub_b = pb["rows"] / pb["seconds"]
    idle = [json.loads(l) for l in open(f"{w}/agent_idle.jsonl")]
    idle_rss = statistics.median(a["rss_kib"] for a in idle)
    idle_pss = statistics.median(a["pss_kib"] for a in idle)
    notify = load(f"{w}/notify.json")
    side = load(f"{w}/side_channel.json")
    side_id = load(f"{w}/side_channel_identity.json")
    match = load(f"{w}/matching.json")
    match["population"] = load(f"{w}/population.json")
    match["store_bytes_per_record"] = round(
        load(f"{w}/matching_store.json")["store_kib"] * 1024 / match["records"])

    per_scale = {}
    for n in scales:
        q = load(f"{w}/query.{n}.json")
        bt = load(f"{w}/broker_time.{n}.json")
        g = load(f"{w}/gen.{n}.json")
        m = load(f"{w}/broker_mem.{n}.json")
        ps = load(f"{w}/publish_scale.{n}.json")
        per_scale[n] = {"query_end_to_end_us": q, "query_in_broker": bt,
                        "generated": g, "broker_memory": m,
                        "publish_presigned": ps}

    lo, hi = scales[0], scales[-1]
    p50_lo = per_scale[lo]["query_end_to_end_us"]["p50_us"]
    p50_hi = per_scale[hi]["query_end_to_end_us"]["p50_us"]
    p99_hi = per_scale[hi]["query_end_to_end_us"]["p99_us"]
    targets = [
        {"target": "durable publishes at the broker (a) >= 0.5 x all-core "
                   "Ed25519 verifications", "value": round(pub_a / verify_all, 3),
         "limit": 0.5, "met": pub_a / verify_all >= 0.5},
        {"target": f"whole-picture query p99 end to end at {hi:,} children "
                   "< 2 ms", "value_ms": round(p99_hi / 1000, 3),
         "limit": 2.0, "met": p99_hi < 2000},
        {"target": f"query p50 at {hi:,} <= 1.5 x p50 at {lo:,}",
         "value": round(p50_hi / p50_lo, 3), "limit": 1.5,
         "met": p50_hi / p50_lo <= 1.5},
        {"target": "matching: precision of automatic links >= 99.9 %",
         "value": match["auto_precision"], "limit": 0.999,
         "met": match["auto_precision"] >= 0.999},
        {"target": "matching: automatic + reviewed recall >= 95 %",
         "value": match["reviewed_recall"], "limit": 0.95,
         "met": match["reviewed_recall"] >= 0.95},
        {"target": "matching: under 5 % sent to review",
         "value": match["review_share"], "limit": 0.05,
         "met": match["review_share"] < 0.05},
        {"target": "matching: no twins linked", "value": match["twin_false_links"],
         "limit": 0, "met": match["twin_false_links"] == 0},
        {"target": "agent resident memory idle < 8 MiB",
         "value_mib": round(idle_rss / 1024, 2), "limit": 8.0,
         "met": idle_rss < 8 * 1024},
    ]
    res = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": c["cores"], "cpu": cpu_model(),
                    "kernel": platform.release()},
        "ceilings": c,
        "publish_presigned": {"runs": pub_runs, "memory": pub_mem,
                              "acks_per_s_median": pub_a,
                              "broker_cpu_us_per_publish": statistics.median(
                                  m["broker_cpu_us_per_publish"] for m in pub_mem),
                              "ratio_to_verify_all_cores": round(pub_a / verify_all, 3),
                              "store_through_the_wire": wire},
        "publish_agents": {"rows": pb["rows"], "seconds": pb["seconds"],
                           "per_s": round(pub_b), "imports": imports,
                           "ratio_to_verify_all_cores": round(pub_b / verify_all, 3)},
        "notification": notify,
        "side_channel": side,
        "side_channel_identity": side_id,
        "matching": match,
        "footprint": {"agent_idle": idle, "agent_idle_rss_kib": idle_rss,
                      "agent_idle_pss_kib": idle_pss,
                      "agent_loaded_rss_peak_kib": pb["agent_rss_peak_kib"],
                      "broker_loaded_hwm_kib": pb["broker_hwm_kib"]},
        "query_floor_us": {"p50": round(floor_us, 1), "p99": round(floor99_us, 1),
                           "what": "a CURVE round trip and one durable commit"},
        "scales": {str(n): v for n, v in per_scale.items()},
        "targets": targets,
    }
    os.makedirs(out, exist_ok=True)
    with open(f"{out}/latest.json", "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")

    rows = []
    def row(what, value, ceiling="", ratio=""):
        rows.append((what, value, ceiling, ratio))
    row("Ed25519 verify/s (libsodium), 1 core / all cores",
        f"{c['ed25519_sodium_1']:,.0f} / {verify_all:,.0f}")
    row("LMDB durable puts/s, commit per put / per 256 (appended) / per 256 (random keys)",
        f"{c['lmdb_puts_commit_1']:,.0f} / {c['lmdb_puts_commit_256']:,.0f} / "
        f"{c['lmdb_puts_random_commit_256']:,.0f}")
    row("LMDB durable commit p50 / p99 (us)", f"{commit_us:.0f} / {commit99_us:.0f}")
    row("ZeroMQ CURVE round trip p50 / p99 (us); msgs/s pipelined",
        f"{c['zmq_rtt_p50_us']:.0f} / {c['zmq_rtt_p99_us']:.0f}; {c['zmq_msgs_per_s']:,.0f}")
    row("publish (a) pre-signed, acked/s (median of 3)", f"{pub_a:,.0f}",
        f"{verify_all:,.0f} verify/s", f"{pub_a / verify_all:.2f}")
    cpu = statistics.median(m["broker_cpu_us_per_publish"] for m in pub_mem)
    alone = c["cores"] * 1e6 / cpu
    row("publish (a): the broker's CPU a publish (us); what all cores could do at that",
        f"{cpu:.0f}; {alone:,.0f}/s", f"{verify_all:,.0f} verify/s",
        f"{alone / verify_all:.2f}")
    row("publish (b) four agents signing, acked/s", f"{pub_b:,.0f}",
        f"{verify_all:,.0f} verify/s", f"{pub_b / verify_all:.2f}")
    for n in scales:
        s = per_scale[n]
        q, bt = s["query_end_to_end_us"], s["query_in_broker"]["broker_query_us"]
        row(f"{n:,} children: query end to end p50 / p99 / p99.9 (us)",
            f"{q['p50_us']:.0f} / {q['p99_us']:.0f} / {q['p999_us']:.0f}",
            f"floor {floor_us:.0f} / {floor99_us:.0f}",
            f"{floor_us / q['p50_us']:.2f} / {floor99_us / q['p99_us']:.2f}")
        row(f"{n:,} children: query in the broker p50 / p99 / p99.9 (us)",
            f"{bt['p50']:.0f} / {bt['p99']:.0f} / {bt['p999']:.0f}",
            f"commit {commit_us:.0f} / {commit99_us:.0f}",
            f"{commit_us / bt['p50']:.2f} / {commit99_us / bt['p99']:.2f}")
        ps = s["publish_presigned"]["acks_per_s"]
        row(f"{n:,} children: publish (a) into the store, acked/s", f"{ps:,.0f}",
            f"{verify_all:,.0f} verify/s", f"{ps / verify_all:.2f}")
        g = s["generated"]
        row(f"{n:,} children: store bytes a flag (generated) / broker RSS MiB",
            f"{g['bytes_per_flag']:,.0f} / {s['broker_memory']['broker_rss_kib'] / 1024:.1f}")
    row("store bytes a publish through the wire (with envelope, replay)",
        f"{statistics.median(x['bytes_per_publish'] for x in wire):,.0f}")
    row("notification publish -> other agency's hook p50 / p99 (ms)",
        f"{notify['p50_ms']} / {notify['p99_ms']}")
    row("publish on a child others know / nobody knows (us; blocks spread)",
        f"{side['known_median_us']:.0f} / {side['alone_median_us']:.0f} "
        f"({side['block_spread_us']:.0f})", "same", f"{side['ratio']:.2f}")
    mc = match["children"]
    row(f"matching {mc:,} children, {match['records']:,} records: precision / "
        "recall automatic", f"{match['auto_precision'] * 100:.3f} % / "
        f"{match['auto_recall'] * 100:.2f} %")
    row("matching: sent to review / recall after review / twins linked",
        f"{match['review_share'] * 100:.2f} % / "
        f"{match['reviewed_recall'] * 100:.2f} % / {match['twin_false_links']}")
    row("matching: records a second (HMAC-SHA256/s / tokens a record)",
        f"{match['per_second']:,.0f}",
        f"{match['hash_ceiling']:,.0f}", f"{match['ratio']:.3f}")
    row("matching: store bytes a record", f"{match['store_bytes_per_record']:,}")
    row("publish by identity on a child another agency knows / nobody knows "
        "(us; blocks spread)",
        f"{side_id['known_median_us']:.0f} / {side_id['alone_median_us']:.0f} "
        f"({side_id['block_spread_us']:.0f})", "same", f"{side_id['ratio']:.2f}")
    row("agent RSS idle / PSS idle / RSS peak loaded (MiB)",
        f"{idle_rss / 1024:.1f} / {idle_pss / 1024:.1f} / {pb['agent_rss_peak_kib'] / 1024:.1f}",
        "8 MiB", f"{idle_rss / 1024 / 8:.2f}")
    row("broker RSS peak, publish (a) (MiB)",
        f"{max(m['broker_hwm_kib'] for m in pub_mem) / 1024:.1f}")
    wid = [max(len(r[i]) for r in rows) for i in range(4)]
    hdr = ("figure", "value", "ceiling", "ratio")
    wid = [max(wid[i], len(hdr[i])) for i in range(4)]
    fmt = f"%-{wid[0]}s  %{wid[1]}s  %{wid[2]}s  %{wid[3]}s"
    print(fmt % hdr)
    for r in rows:
        print(fmt % r)
    print()
    for t in targets:
        v = t.get("value", t.get("value_ms", t.get("value_mib")))
        print(f"{'met    ' if t['met'] else 'NOT met'}  {t['target']}: {v}")

    print(f"\nwrote {out}/latest.json")
    plot(res, out)


def plot(res, out):
    """Latency (left axis, log) and publish throughput (right axis)
    against the number of children (log), as SVG and PNG."""
    c = res["ceilings"]
    scales = sorted(int(n) for n in res["scales"])
    per_scale = {n: res["scales"][str(n)] for n in scales}
    dat = f"{out}/.plot.dat"
    with open(dat, "w") as f:
        for n in scales:
            s = per_scale[n]
            q, bt = s["query_end_to_end_us"], s["query_in_broker"]["broker_query_us"]
            f.write(f"{n} {q['p50_us'] / 1000} {q['p99_us'] / 1000} "
                    f"{q['p999_us'] / 1000} {bt['p50'] / 1000} {bt['p99'] / 1000} "
                    f"{s['publish_presigned']['acks_per_s']}\n")
    if shutil.which("gnuplot") is None:
        print(f"gnuplot is missing: no plot ({out}/latest.svg)", file=sys.stderr)
        return
    body = f"""
set title 'EHX on {c["cores"]} cores: whole-picture query latency and publish throughput'
set logscale x
set xlabel 'children in the store (about five flags each)'
set ylabel 'query latency (ms)'
set y2label 'durable publishes acknowledged per second'
set ytics nomirror
set y2tics
set logscale y
set yrange [0.1:*]
set y2range [0:*]
set key outside bottom center horizontal
set grid
plot '{dat}' using 1:2 with linespoints title 'end to end p50', \\
     '' using 1:3 with linespoints title 'end to end p99', \\
     '' using 1:4 with linespoints title 'end to end p99.9', \\
     '' using 1:5 with linespoints dashtype 2 title 'in the broker p50', \\
     '' using 1:6 with linespoints dashtype 2 title 'in the broker p99', \\
     '' using 1:7 axes x1y2 with linespoints lw 2 title 'publishes/s (right)', \\
     2 with lines lc rgb 'red' dashtype 3 title 'p99 target 2 ms'
"""
    for term, ext in (("svg size 900,520 dynamic font 'sans,12'", "svg"),
                      ("pngcairo size 900,520 font 'sans,10'", "png")):
        subprocess.run(["gnuplot"], text=True, check=True,
                       input=f"set terminal {term}\nset output '{out}/latest.{ext}'\n" + body)
    os.unlink(dat)
    print(f"wrote {out}/latest.svg and {out}/latest.png")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1].endswith(".json"):
        # Draw again from a saved run: report.py RUN.json OUTDIR
        with open(sys.argv[1]) as f:
            plot(json.load(f), sys.argv[2])
    else:
        main()
