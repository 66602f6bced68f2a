#!/usr/bin/env bash
# chatctl's write pool on and off (ws.write_pool), A/B, by the method of
# fanout_ab.sh: fan-out into one room of 1,000 members; at each rate, PAIRS
# pairs of one-round runs, pool on and pool off in turn (ABBA order, each
# run on a fresh server and a fresh store). A rate holds for a variant when
# the median of its p99s is within 50 ms and none of its runs lost a
# message; the figure is the highest rate that held with every lower rate
# holding too. Pool off means every connection writes through its own
# goroutine, as gorilla's chat example does (CHATCTL_WS_WRITE_POOL=false;
# any other script runs chatctl that way when the variable is exported).
# usage: bench/scripts/pool_ab.sh ["RATE…"] [PAIRS] [ROUND]
source "$(dirname "$0")/common.sh"
RATES=${1:-800 1000 1200 1400 1600}; PAIRS=${2:-5}; DUR=${3:-5s}
OUT=$WORK/runs.tsv
one() { # one VARIANT RATE: a fresh server, one measured round; appends to $OUT
  local name=$1 rate=$2 json pool=true
  [ "$name" = pool_off ] && pool=false
  rm -f "$WORK/c.db"
  serve 8103 CHATCTL_WS_WRITE_POOL=$pool
  json=$(load bench fanout --url http://127.0.0.1:8103 --members 1000 --rate "$rate" -d "$DUR" -o json 2>/dev/null)
  stop "$SP"
  python3 -c '
import json, sys
r = json.loads(sys.argv[3])["rounds"][0]
print(sys.argv[1], sys.argv[2], r["latency"]["p50_ns"] / 1e6, r["latency"]["p99_ns"] / 1e6, r["lost"], sep="\t")
' "$name" "$rate" "$json" | tee -a "$OUT"
}
printf 'variant\trate\tp50_ms\tp99_ms\tlost\n'
for rate in $RATES; do
  for pair in $(seq "$PAIRS"); do
    if [ $((pair % 2)) = 1 ]; then one pool_on "$rate"; one pool_off "$rate"; else one pool_off "$rate"; one pool_on "$rate"; fi
  done
done
python3 - "$OUT" "$RATES" <<'PY'
import statistics, sys
runs = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
rates = [int(r) for r in sys.argv[2].split()]
names = ("pool_on", "pool_off")
print("\n  rate   pool on: p50  p99 (medians)  lost   pool off: p50  p99 (medians)  lost")
best = dict.fromkeys(names, 0)
going = dict.fromkeys(names, True)
for rate in rates:
    cells = []
    for name in names:
        mine = [r for r in runs if r[0] == name and int(r[1]) == rate]
        p50 = statistics.median(float(r[2]) for r in mine)
        p99 = statistics.median(float(r[3]) for r in mine)
        lost = sum(int(r[4]) for r in mine)
        held = p99 <= 50 and lost == 0
        if going[name] and held:
            best[name] = rate
        going[name] = going[name] and held
        cells.append(f"{p50:11.1f} {p99:8.1f} ms  {lost:6d}")
    print(f"{rate:6d}   " + "   ".join(cells))
print(f"\nhighest rate held (median p99 <= 50 ms, nothing lost): pool on {best['pool_on']}, pool off {best['pool_off']} msg/s")
PY
