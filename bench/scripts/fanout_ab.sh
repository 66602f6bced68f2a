#!/usr/bin/env bash
# Fan-out into one room of 1,000 members, A/B: at each rate, PAIRS pairs of
# one-round runs, the gorilla/websocket chat example and chatctl in turn
# (ABBA order, each run on a fresh server and, for chatctl, a fresh store).
# A rate holds for a server when the median of its p99s is within 50 ms and
# every one of its runs held by the bench's verdict (see summarize in
# common.sh: a run with members closed or nothing delivered does not); the
# figure is the highest rate that held with every lower rate holding too.
# Interleaving spreads this shared machine's slow spells over both servers
# instead of over one sweep.
# usage: bench/scripts/fanout_ab.sh ["RATE…"] [PAIRS] [ROUND]
source "$(dirname "$0")/common.sh"
RATES=${1:-600 800 1000 1200 1400 1600}; PAIRS=${2:-5}; DUR=${3:-5s}
OUT=$WORK/runs.tsv
one() { # one SERVER RATE: a fresh server, one measured round; appends to $OUT
  local name=$1 rate=$2 pid json
  if [ "$name" = gorilla ]; then
    taskset -c "$SERVER_CORE" "$BIN/gchat" -addr 127.0.0.1:8090 >/dev/null 2>&1 & pid=$!
    wait_port 8090
    json=$(load bench fanout --raw --url http://127.0.0.1:8090 --members 1000 --rate "$rate" -d "$DUR" -o json 2>"$WORK/bench.err") || true
  else
    rm -f "$WORK/c.db"
    serve 8103; pid=$SP
    json=$(load bench fanout --url http://127.0.0.1:8103 --members 1000 --rate "$rate" -d "$DUR" -o json 2>"$WORK/bench.err") || true
  fi
  stop "$pid"
  record "$name" "$rate" "$json" "$WORK/bench.err" | tee -a "$OUT"
}
printf 'server\trate\tp50_ms\tp99_ms\tlost\theld\treason\n'
for rate in $RATES; do
  for pair in $(seq "$PAIRS"); do
    if [ $((pair % 2)) = 1 ]; then one gorilla "$rate"; one chatctl "$rate"; else one chatctl "$rate"; one gorilla "$rate"; fi
  done
done
summarize "$OUT" "$RATES" gorilla chatctl
