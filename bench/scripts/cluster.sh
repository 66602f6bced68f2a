#!/usr/bin/env bash
# Fan-out over two nodes against one node, in the same run (issue 12):
# 1,000 members in one room, spread round-robin over two `chatctl serve`
# nodes (`bench fanout --url A,B`), against the same 1,000 all on node A;
# deliveries/s and p99 at fixed rates, and the CPU each message costs.
#
# Set-up: one PostgreSQL (scripts/pg-cluster.sh) and one NATS server
# (bench/natsd: the nats-server module run as a plain server), two nodes on
# them, node A pinned to core 0 and node B to core 1 (taskset). PostgreSQL,
# NATS and the load generator are not pinned: on this 2-core machine they
# run beside the nodes. Both modes use the same processes: in the one-node
# rounds node B is idle (it stays in the cluster). Each run is one round of
# DURATION after a 2 s unmeasured warm-up, on fresh rooms; the modes
# alternate (ABBA) so a drift in the machine's load favours neither. The
# figures are medians over the runs; the spread is printed with them.
#
# CPU per message: `bench fanout --server-pid` reads utime+stime of node A,
# node B and NATS from /proc/PID/stat (10 ms ticks) at the start of the
# measured round and after its drain (the last delivery in), and divides
# by the acked messages. Both modes deliver each message to the same 1,000
# members, so the two-node figure minus the one-node figure (A+B in each)
# is what spreading costs: the NATS hint published and received, its
# decoding and reordering on the receiving node, and a second node encoding
# the broadcast frame and waking its writers. With one room over two nodes
# every message crosses to exactly one other node, so that difference is
# the extra CPU per cross-node message. NATS's own CPU per message is
# printed apart; PostgreSQL does the same commits in both modes and is not
# counted. Caveat: a busier node batches more frames per write, so the
# one-node figure also benefits from its higher load per core; and a node
# that gets less CPU than it needs (a loaded machine) batches more and so
# shows less CPU per message: the "core" columns (each node's CPU over the
# publishing window) say whether a node was near its core's limit. Compare
# CPU per message at rates where they are not.
#
# usage: bench/scripts/cluster.sh [RUNS] ["RATE…"] [DURATION]
#   e.g. bench/scripts/cluster.sh 6 "400 800" 5s
source "$(dirname "$0")/common.sh"
RUNS=${1:-6}; RATES=${2:-"400 800"}; DUR=${3:-5s}
PGDIR=$(mktemp -d /tmp/pgb.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; "$ROOT/scripts/pg-cluster.sh" stop "$PGDIR" >/dev/null || true; rm -rf "$WORK" "$PGDIR"' EXIT
# Each process may hold 20,000 files at most (the hard limit here): 1,000
# members are 1,000 sockets in the bench and at most 1,000 in a node.
ulimit -n "$(ulimit -Hn)"
(cd "$ROOT" && go build -o "$BIN/natsd" ./bench/natsd)
PGURL=$("$ROOT/scripts/pg-cluster.sh" start "$PGDIR")
NPORT=$((14222 + RANDOM % 1000))
"$BIN/natsd" -addr 127.0.0.1:$NPORT >/dev/null 2>"$WORK/natsd.log" & NP=$!
wait_port $NPORT
export CHATCTL_STORE=$PGURL CHATCTL_BROKER=nats://127.0.0.1:$NPORT
# node NAME CORE PORT: start a node pinned to CORE; sets NPID.
node() {
  env CHATCTL_HTTP_MAX_CONNS_PER_IP=0 CHATCTL_CLUSTER_NODE_ID="$1" taskset -c "$2" \
    "$BIN/chatctl" --db "$WORK/$1.db" serve --listen 127.0.0.1:$3 >/dev/null 2>"$WORK/$1.log" & NPID=$!
}
A=http://127.0.0.1:8121; B=http://127.0.0.1:8122
node a 0 8121; PA=$NPID; node b 1 8122; PB=$NPID
wait_http $A/health; wait_http $B/health
# The bench provisions bench-NNNN users through the store (CHATCTL_STORE),
# at most 8 connections each: a user's connections are counted over the
# cluster, and 8 keeps clear of the cap while a node's count of the other
# node's connections (its roster) lags a moment behind.
fan() {
  "$BIN/chatctl" --db "$WORK/c.db" bench fanout --url "$1" --members 1000 --rate "$2" -d "$DUR" \
    --warmup 2s --drain 5s --max-conns-per-user 8 --server-pid "$PA,$PB,$NP" -o json 2>"$WORK/bench.err"
}
OUT=$WORK/runs.tsv; : >"$OUT"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %-4s %6s %10s %8s %5s %5s %9s %9s %9s %6s %6s\n' run mode rate "deliv/s" "p99 ms" held lost "A µs/msg" "B µs/msg" "NATS µs" "A core" "B core"
for i in $(seq "$RUNS"); do
  for rate in $RATES; do
    for mode in $( ((i % 2)) && echo "1 2" || echo "2 1"); do
      if [ "$mode" = 1 ]; then urls=$A; else urls=$A,$B; fi
      json=$(fan "$urls" "$rate") || json='{}'
      python3 - "$i" "$mode" "$rate" "$json" "$WORK/bench.err" >>"$OUT" <<'PY'
import json, sys
i, mode, rate, raw, errf = sys.argv[1:6]
try:
    r = json.loads(raw)["rounds"][0]
    cpu = [c["cpu_ns"] / 1e3 / max(r["acked"], 1) for c in r["server_cpu"]]
    p99 = r["latency"]["p99_ns"] / 1e6 if r["latency"]["count"] else float("inf")
    # Share of a core each node used over the publishing window (the
    # drain, short when nothing is late, adds a little).
    util = [c["cpu_ns"] / r["elapsed_ns"] for c in r["server_cpu"][:2]]
    print(i, mode, rate, round(r["delivered_per_sec"]), f"{p99:.1f}", int(r["held"]), r["lost"],
          *(f"{c:.1f}" for c in cpu), r.get("reason") or "-", *(f"{u:.2f}" for u in util), sep="\t")
except (ValueError, KeyError, IndexError):
    err = [l for l in open(errf).read().splitlines() if l.strip()]
    print(i, mode, rate, 0, "inf", 0, 0, "nan", "nan", "nan", "no result: " + (err[-1] if err else "?"), "nan", "nan", sep="\t")
PY
      tail -1 "$OUT" | awk -F'\t' '{printf "%-4s %-4s %6s %10s %8s %5s %5s %9s %9s %9s %6s %6s  %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, ($6==1?"":$11)}'
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" "$RATES" <<'PY'
import statistics as st, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
med = lambda v: st.median(v) if v else float("nan")
print("\nmedians (min–max) over the runs; nodes' CPU = A+B per acked message")
print(f"{'rate':>5} {'nodes':>5} {'deliv/s':>20} {'p99 ms':>18} {'held':>5} {'nodes µs/msg':>20} {'NATS µs/msg':>12} {'cores A+B':>9}")
for rate in sys.argv[2].split():
    cpu = {}
    for mode in ("1", "2"):
        rs = [r for r in rows if r[1] == mode and r[2] == rate]
        d = [float(r[3]) for r in rs]; p = [float(r[4]) for r in rs]
        c = [float(r[7]) + float(r[8]) for r in rs]; n = [float(r[9]) for r in rs]
        u = [float(r[11]) + float(r[12]) for r in rs]
        cpu[mode] = c
        held = sum(int(r[5]) for r in rs)
        print(f"{rate:>5} {mode:>5} {med(d):9.0f} ({min(d):.0f}–{max(d):.0f}) {med(p):6.1f} ({min(p):.1f}–{max(p):.1f})"
              f" {held:>2}/{len(rs)} {med(c):7.1f} ({min(c):.1f}–{max(c):.1f}) {med(n):8.1f} {med(u):9.2f}")
    pairs = [b - a for a, b in zip(cpu["1"], cpu["2"])]
    print(f"{rate:>5} extra CPU per cross-node message (2 nodes − 1 node, A+B): median of the differences"
          f" {med(pairs):.1f} µs (runs {min(pairs):.1f} to {max(pairs):.1f}); difference of the medians"
          f" {med(cpu['2']) - med(cpu['1']):.1f} µs")
fails = [r for r in rows if r[5] != "1"]
if fails:
    print("\nruns that did not hold:")
    for r in fails:
        print(f"  run {r[0]}, {r[1]} node(s), {r[2]} msg/s: {r[10]}")
PY
