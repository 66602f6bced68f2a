#!/usr/bin/env bash
# /users/me requests/s and p99 at 64 connections, against the minimal
# HS256 reference (bench/refserver) in the same run, alternating.
# usage: bench/scripts/http.sh [RUNS] [DURATION]
source "$(dirname "$0")/common.sh"
RUNS=${1:-5}; DUR=${2:-5s}
export CHATCTL_JWT_SECRET=${CHATCTL_JWT_SECRET:-bench-secret-0123456789abcdef0123456789}
echo password123 | "$BIN/chatctl" --db "$WORK/c.db" user add perf --password-stdin 2>/dev/null
TOKEN=$("$BIN/chatctl" --db "$WORK/c.db" token issue perf --ttl 2h)
run() { load bench http --url "$1" --token "$TOKEN" -c 64 -d "$DUR" -o json 2>/dev/null | python3 -c 'import json,sys;r=json.load(sys.stdin);print(round(r["ok_per_sec"]),round(r["latency"]["p99_ns"]/1e6,2))'; }
R=(); C=(); Q=()
for i in $(seq "$RUNS"); do
  taskset -c "$SERVER_CORE" "$BIN/refserver" -listen 127.0.0.1:8100 & RP=$!; wait_http http://127.0.0.1:8100/health
  read -r rr rp <<<"$(run http://127.0.0.1:8100)"; stop $RP
  serve 8101
  read -r cr cp <<<"$(run http://127.0.0.1:8101)"; stop $SP
  ratio=$(python3 -c "print(round($cr/$rr,3))")
  echo "run $i: reference $rr req/s p99 ${rp}ms | chatctl $cr req/s p99 ${cp}ms | ratio $ratio"
  R+=($rr); C+=($cr); Q+=($ratio)
done
echo "median: reference $(median "${R[@]}") req/s, chatctl $(median "${C[@]}") req/s, ratio $(median "${Q[@]}")"
