#!/usr/bin/env bash
# Idle authenticated WebSocket connections held, and the server's resident
# memory per connection.
# usage: bench/scripts/conns.sh [N] [RUNS]
source "$(dirname "$0")/common.sh"
N=${1:-5000}; RUNS=${2:-3}
K=()
for i in $(seq "$RUNS"); do
  serve 8102
  out=$(load bench conns --url http://127.0.0.1:8102 -n "$N" --rate 2000 -d 5s --server-pid "$SP" -o json 2>/dev/null)
  stop $SP
  read -r opened failed kib <<<"$(python3 -c 'import json,sys;r=json.loads(sys.argv[1]);print(r["opened"],r["failed"],round(r.get("server_rss_per_conn_bytes",0)/1024,2))' "$out")"
  echo "run $i: $opened of $N open, $failed failed, $kib KiB per connection"
  K+=($kib)
done
echo "median: $(median "${K[@]}") KiB per connection at $N connections"
