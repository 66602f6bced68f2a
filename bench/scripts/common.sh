# Shared set-up for the figure scripts: builds chatctl, the reference
# server and the gorilla chat example into $BIN, and gives helpers to start
# a server pinned to core 0 (the load runs on core 1).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$(mktemp -d)}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
(cd "$ROOT" && go build -o "$BIN/chatctl" . && go build -o "$BIN/refserver" ./bench/refserver \
  && go build -o "$BIN/gchat" github.com/gorilla/websocket/examples/chat)
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
load() { taskset -c "$LOAD_CORE" "$BIN/chatctl" --db "$WORK/c.db" "$@"; }
# wait_http URL: poll until it answers (bounded).
wait_http() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
# serve PORT [ENV…]: start chatctl serve on core 0 with ENV (e.g.
# CHATCTL_WS_WRITE_POOL=false) on top of the caller's; sets SP. The load
# comes from one address: no per-address connection cap.
serve() { local port=$1; shift; env CHATCTL_HTTP_MAX_CONNS_PER_IP=0 "$@" taskset -c "$SERVER_CORE" "$BIN/chatctl" --db "$WORK/c.db" serve --listen 127.0.0.1:$port >/dev/null 2>"$WORK/serve.log" & SP=$!; wait_http "http://127.0.0.1:$port/health"; }
# wait_port PORT: poll until something listens there (bounded).
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(statistics.median(v))' "$@"; }
# record NAME RATE JSON ERRFILE: print one run of `bench fanout -o json` as
# a line of runs.tsv: name, rate, p50 and p99 (ms), lost, held (1/0) and
# the bench's reason. A run that delivered nothing has no latency: its
# p50/p99 are inf, never 0. A bench that printed no result failed with the
# last line of its stderr as the reason.
record() {
  python3 - "$@" <<'PY'
import json, sys
name, rate, raw, errfile = sys.argv[1:5]
try:
    r = json.loads(raw)["rounds"][0]
    lat = r["latency"]
    none = lat["count"] == 0
    p50 = float("inf") if none else lat["p50_ns"] / 1e6
    p99 = float("inf") if none else lat["p99_ns"] / 1e6
    lost, held, reason = r["lost"], r["held"], r.get("reason") or "-"
except (ValueError, KeyError, IndexError):
    err = [l for l in open(errfile).read().splitlines() if l.strip()]
    p50 = p99 = float("inf")
    lost, held, reason = 0, False, "no result: " + (err[-1].strip() if err else "bench printed nothing")
print(name, rate, f"{p50:.1f}", f"{p99:.1f}", lost, int(held), reason.replace("\t", " "), sep="\t")
PY
}
# summarize RUNS "RATE…" NAME…: per rate and name, the median p50 and p99 of
# the runs, the messages lost and the runs that failed. A rate holds for a
# name when the median of its p99s is at most 50 ms and every one of its
# runs held by the bench's verdict (nothing lost, unacked or refused, every
# member connected and none closed by the server, something delivered);
# the figure is the highest rate that held with every lower rate holding too.
summarize() {
  python3 - "$@" <<'PY'
import statistics, sys
runs = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
rates = [int(r) for r in sys.argv[2].split()]
names = sys.argv[3:]
print("\n  rate" + "".join(f"   {n + ': p50 p99 (medians)':>32}  lost failed" for n in names))
best = dict.fromkeys(names, 0)
going = dict.fromkeys(names, True)
reasons = []
for rate in rates:
    cells = []
    for name in names:
        mine = [r for r in runs if r[0] == name and int(r[1]) == rate]
        if not mine:
            going[name] = False
            cells.append(f"{'no runs':>32}  {'':4} {'':6}")
            continue
        p50 = statistics.median(float(r[2]) for r in mine)
        p99 = statistics.median(float(r[3]) for r in mine)
        lost = sum(int(r[4]) for r in mine)
        failed = [r for r in mine if r[5] != "1"]
        reasons += [f"  {name} at {rate}: {r[6]}" for r in failed]
        held = p99 <= 50 and not failed
        if going[name] and held:
            best[name] = rate
        going[name] = going[name] and held
        cells.append(f"{p50:22.1f} {p99:6.1f} ms  {lost:4d} {len(failed):2d}/{len(mine)}")
    print(f"{rate:6d}" + "".join("   " + c for c in cells))
if reasons:
    print("\nfailed runs:")
    print("\n".join(reasons))
print("\nhighest rate held (median p99 <= 50 ms, every run held): " +
      ", ".join(f"{n} {best[n]}" for n in names) + " msg/s")
PY
}
