#!/usr/bin/env bash
# Fan-out into one room of 1,000 members, A/B: at each rate, PAIRS pairs of
# one-round runs, the gorilla/websocket chat example and chatctl in turn
# (ABBA order, each run on a fresh server and, for chatctl, a fresh store).
# A rate holds for a server when the median of its p99s is within 50 ms and
# none of its runs lost a message; the figure is the highest rate that held
# with every lower rate holding too. Interleaving spreads this shared
# machine's slow spells over both servers instead of over one sweep.
# usage: bench/scripts/fanout_ab.sh ["RATE…"] [PAIRS] [ROUND]
source "$(dirname "$0")/common.sh"
RATES=${1:-600 800 1000 1200 1400 1600}; PAIRS=${2:-5}; DUR=${3:-5s}
OUT=$WORK/runs.tsv
one() { # one SERVER RATE: a fresh server, one measured round; appends to $OUT
  local name=$1 rate=$2 pid json
  if [ "$name" = gorilla ]; then
    taskset -c "$SERVER_CORE" "$BIN/gchat" -addr 127.0.0.1:8090 >/dev/null 2>&1 & pid=$!
    wait_port 8090
    json=$(load bench fanout --raw --url http://127.0.0.1:8090 --members 1000 --rate "$rate" -d "$DUR" -o json 2>/dev/null)
  else
    rm -f "$WORK/c.db"
    serve 8103; pid=$SP
    json=$(load bench fanout --url http://127.0.0.1:8103 --members 1000 --rate "$rate" -d "$DUR" -o json 2>/dev/null)
  fi
  stop "$pid"
  python3 -c '
import json, sys
r = json.loads(sys.argv[3])["rounds"][0]
print(sys.argv[1], sys.argv[2], r["latency"]["p50_ns"] / 1e6, r["latency"]["p99_ns"] / 1e6, r["lost"], sep="\t")
' "$name" "$rate" "$json" | tee -a "$OUT"
}
printf 'server\trate\tp50_ms\tp99_ms\tlost\n'
for rate in $RATES; do
  for pair in $(seq "$PAIRS"); do
    if [ $((pair % 2)) = 1 ]; then one gorilla "$rate"; one chatctl "$rate"; else one chatctl "$rate"; one gorilla "$rate"; fi
  done
done
python3 - "$OUT" "$RATES" <<'EOF'
import statistics, sys
runs = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
rates = [int(r) for r in sys.argv[2].split()]
print("\n  rate   gorilla p99 (median)  lost   chatctl p99 (median)  lost")
best = {"gorilla": 0, "chatctl": 0}
going = {"gorilla": True, "chatctl": True}
for rate in rates:
    cells = []
    for name in ("gorilla", "chatctl"):
        mine = [r for r in runs if r[0] == name and int(r[1]) == rate]
        p99 = statistics.median(float(r[3]) for r in mine)
        lost = sum(int(r[4]) for r in mine)
        held = p99 <= 50 and lost == 0
        if going[name] and held:
            best[name] = rate
        going[name] = going[name] and held
        cells.append(f"{p99:17.1f} ms  {lost:6d}")
    print(f"{rate:6d}   " + "   ".join(cells))
print(f"\nhighest rate held (median p99 <= 50 ms, nothing lost): gorilla {best['gorilla']}, chatctl {best['chatctl']} msg/s")
EOF
