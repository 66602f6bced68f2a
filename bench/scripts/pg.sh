#!/usr/bin/env bash
# PostgreSQL against bbolt in the same run (issue "PostgreSQL store"):
# /users/me requests/s at 64 connections (token checks must not touch the
# database), and logins/s at 4 connections against the bcrypt limit. The
# server and PostgreSQL share core 0; the load runs on core 1.
# usage: bench/scripts/pg.sh [RUNS] [DURATION]
source "$(dirname "$0")/common.sh"
RUNS=${1:-5}; DUR=${2:-5s}
PGDIR=$(mktemp -d /tmp/pgb.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; "$ROOT/scripts/pg-cluster.sh" stop "$PGDIR" || true; rm -rf "$WORK" "$PGDIR"' EXIT
PGURL=$("$ROOT/scripts/pg-cluster.sh" start "$PGDIR")
# Pin PostgreSQL (postmaster and its future backends) to the server's core.
taskset -a -c -p "$SERVER_CORE" "$(head -1 "$PGDIR/data/postmaster.pid")" >/dev/null
(cd "$ROOT" && go test -c -o "$BIN/auth.test" ./auth)
export CHATCTL_PASSWORD_BCRYPT_COST=10
for s in bbolt pg; do
  if [ $s = pg ]; then export CHATCTL_STORE=$PGURL; else unset CHATCTL_STORE; fi
  echo password123 | "$BIN/chatctl" --db "$WORK/c.db" user add perf --password-stdin 2>/dev/null
done
unset CHATCTL_STORE
tok() { "$BIN/chatctl" --db "$WORK/c.db" token issue perf --ttl 2h; }
http() { load bench http --url "$1" --token "$2" -c 64 -d "$DUR" -o json 2>/dev/null | python3 -c 'import json,sys;r=json.load(sys.stdin);print(round(r["ok_per_sec"]))'; }
login() { load bench login --url "$1" --user perf --password-stdin -c 4 -d "$DUR" -o json <<<password123 2>/dev/null | python3 -c 'import json,sys;r=json.load(sys.stdin);print(round(r["ok_per_sec"],2))'; }
B=(); P=(); Q=(); LB=(); LP=(); LQ=()
for i in $(seq "$RUNS"); do
  H=$(taskset -c "$SERVER_CORE" "$BIN/auth.test" -test.run XXX -test.bench 'Hash/cost10' -test.benchtime 8x | awk '/cost10/{print $3}')
  limit=$(python3 -c "print(round(1e9/$H,2))")
  # Alternate which goes first, so a drift in the machine's load does not
  # always favour one.
  for s in $( ((i % 2)) && echo "bbolt pg" || echo "pg bbolt"); do
    if [ $s = pg ]; then export CHATCTL_STORE=$PGURL; else unset CHATCTL_STORE; fi
    T=$(tok); serve 8110
    r=$(http http://127.0.0.1:8110 "$T"); l=$(login http://127.0.0.1:8110); stop $SP
    if [ $s = pg ]; then p=$r; lp=$l; else b=$r; lb=$l; fi
  done
  unset CHATCTL_STORE
  q=$(python3 -c "print(round($p/$b,3))")
  lq=$(python3 -c "print(round($lb/$limit,3), round($lp/$limit,3))")
  echo "run $i: /users/me bbolt $b req/s, postgres $p req/s, ratio $q | logins/s bbolt $lb, postgres $lp, bcrypt limit $limit/s (bbolt, postgres x limit: $lq)"
  B+=($b); P+=($p); Q+=($q); LB+=($(python3 -c "print($lb/$limit)")); LP+=($(python3 -c "print($lp/$limit)"))
done
echo "median: /users/me bbolt $(median "${B[@]}") req/s, postgres $(median "${P[@]}") req/s, ratio $(median "${Q[@]}"); logins x bcrypt limit: bbolt $(median "${LB[@]}"), postgres $(median "${LP[@]}")"
