#!/usr/bin/env bash
# chatctl's write pool on and off (ws.write_pool), A/B, by the method of
# fanout_ab.sh: fan-out into one room of 1,000 members; at each rate, PAIRS
# rounds of one-round runs of every variant, the order rotated from one
# round to the next (each run on a fresh server and a fresh store). The
# variants are pool_on and pool_off, and gorilla (the gorilla/websocket
# chat example) when VARIANTS="pool_on pool_off gorilla". A rate holds for
# a variant when the median of its p99s is within 50 ms and every one of
# its runs held by the bench's verdict (see summarize in common.sh); the
# figure is the highest rate that held with every lower rate holding too.
# Pool off means every connection writes through its own goroutine, as
# gorilla's chat example does (CHATCTL_WS_WRITE_POOL=false; any other
# script runs chatctl that way when the variable is exported).
# usage: [VARIANTS="pool_on pool_off gorilla"] bench/scripts/pool_ab.sh ["RATE…"] [PAIRS] [ROUND]
source "$(dirname "$0")/common.sh"
RATES=${1:-800 1000 1200 1400 1600}; PAIRS=${2:-5}; DUR=${3:-5s}
read -r -a VARS <<<"${VARIANTS:-pool_on pool_off}"
OUT=$WORK/runs.tsv
one() { # one VARIANT RATE: a fresh server, one measured round; appends to $OUT
  local name=$1 rate=$2 json pid
  if [ "$name" = gorilla ]; then
    taskset -c "$SERVER_CORE" "$BIN/gchat" -addr 127.0.0.1:8090 >/dev/null 2>&1 & pid=$!
    wait_port 8090
    json=$(load bench fanout --raw --url http://127.0.0.1:8090 --members 1000 --rate "$rate" -d "$DUR" -o json 2>"$WORK/bench.err") || true
  else
    local pool=true
    [ "$name" = pool_off ] && pool=false
    rm -f "$WORK/c.db"
    serve 8103 CHATCTL_WS_WRITE_POOL=$pool; pid=$SP
    json=$(load bench fanout --url http://127.0.0.1:8103 --members 1000 --rate "$rate" -d "$DUR" -o json 2>"$WORK/bench.err") || true
  fi
  stop "$pid"
  record "$name" "$rate" "$json" "$WORK/bench.err" | tee -a "$OUT"
}
printf 'variant\trate\tp50_ms\tp99_ms\tlost\theld\treason\n'
for rate in $RATES; do
  for pair in $(seq "$PAIRS"); do
    n=${#VARS[@]}
    for k in $(seq 0 $((n - 1))); do one "${VARS[$(((pair + k) % n))]}" "$rate"; done
  done
done
summarize "$OUT" "$RATES" "${VARS[@]}"
