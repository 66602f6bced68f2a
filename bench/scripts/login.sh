#!/usr/bin/env bash
# /token logins/s at 4 connections against the bcrypt limit (cores of the
# server / one hash's time at cost 12, hashed on the server's core in the
# same run), with /users/me probed at a fixed rate during the storm.
# usage: bench/scripts/login.sh [RUNS] [PROBE_RATE]
source "$(dirname "$0")/common.sh"
RUNS=${1:-3}; PROBE=${2:-500}
(cd "$ROOT" && go test -c -o "$BIN/auth.test" ./auth)
echo password123 | "$BIN/chatctl" --db "$WORK/c.db" user add perf --password-stdin 2>/dev/null
TOKEN=$("$BIN/chatctl" --db "$WORK/c.db" token issue perf --ttl 2h)
X=(); P=()
for i in $(seq "$RUNS"); do
  H=$(taskset -c "$SERVER_CORE" "$BIN/auth.test" -test.run XXX -test.bench 'Hash/cost12' -test.benchtime 8x | awk '/cost12/{print $3}')
  serve 8106
  load bench http --url http://127.0.0.1:8106 --token "$TOKEN" -c 8 --rate "$PROBE" -d 10s -o json >"$WORK/http.json" 2>/dev/null & HP=$!
  load bench login --url http://127.0.0.1:8106 -c 4 -d 10s -o json >"$WORK/login.json" 2>/dev/null
  wait $HP; stop $SP
  read -r x p <<<"$(python3 - "$H" "$WORK" <<'PY'
import json,sys
h=float(sys.argv[1]); w=sys.argv[2]
l=json.load(open(w+"/login.json")); m=json.load(open(w+"/http.json"))
limit=1e9/h
print(round(l['ok_per_sec']/limit,3), round(m['latency']['p99_ns']/1e6,2))
print(f"hash {h/1e6:.1f} ms, limit {limit:.2f}/s, logins {l['ok_per_sec']:.2f}/s, /users/me {m['ok_per_sec']:.0f}/s p99 {m['latency']['p99_ns']/1e6:.2f} ms", file=sys.stderr)
PY
)"
  echo "run $i: logins/limit $x, /users/me p99 during the storm ${p}ms"
  X+=($x); P+=($p)
done
echo "median: logins at $(median "${X[@]}") x the bcrypt limit, /users/me p99 $(median "${P[@]}") ms at $PROBE req/s"
