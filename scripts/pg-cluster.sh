#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (internal/pgtest). Used by
# .ci/run and scripts/pg-test.sh, so the steps exist once.
#
#   scripts/pg-cluster.sh start DIR   create a cluster in DIR/data, start it on
#                                     127.0.0.1 at a free port and print its URL
#                                     (for CHATCTL_TEST_POSTGRES) on stdout
#   scripts/pg-cluster.sh stop DIR    stop it (fast shutdown); removing DIR is
#                                     the caller's job
#   scripts/pg-cluster.sh crash DIR   stop it the way a crash does (immediate
#                                     shutdown: no checkpoint, recovery from
#                                     the WAL at the next start)
#   scripts/pg-cluster.sh start DIR   again on a stopped cluster: start it on
#                                     its first port (the tests' restart)
#
# DIR must exist, empty (mktemp -d), with a short path (the server's Unix
# socket lives in it). The server binaries are the highest version under
# /usr/lib/postgresql/*/bin (Debian's postgresql package), or those in
# $PG_BIN. Run as root, the cluster runs as the postgres user (PostgreSQL
# refuses root) and DIR is handed to that user; run as anyone else, it runs
# as that user. The role postgres is trusted without a password, on
# 127.0.0.1 only; fsync stays on; max_connections=300; the locale is C.
# Everything, logs included, stays in DIR.
set -euo pipefail

die() {
  echo "pg-cluster: $*" >&2
  exit 1
}

# as_owner CMD... runs CMD as the cluster's owner, from DIR (a folder the
# owner can read: initdb and pg_ctl complain about an unreadable one).
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then
    (cd "$dir" && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && su postgres -s /bin/bash -c "$(printf '%q ' "$@")")
  fi
}

# find_bin prints the folder of the server binaries.
find_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/initdb" ] || die "PG_BIN=$PG_BIN has no initdb"
    echo "$PG_BIN"
    return
  fi
  local initdb
  initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
  [ -x "$initdb" ] || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: install Debian's postgresql package (apt-get install postgresql) or set PG_BIN"
  dirname "$initdb"
}

# listening PORT tells whether something accepts connections on 127.0.0.1:PORT.
listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  if [ -e "$dir/data" ]; then
    restart
    return
  fi
  # pg_ctl passes the server options through a shell, and a Unix socket
  # path has at most 107 bytes: refuse what would break either.
  case "$dir" in
    *[[:space:]\'\"\\\$\`]*) die "$dir: the folder's path must not contain spaces, quotes, \\, \$ or \`" ;;
  esac
  [ $((${#dir} + 17)) -le 107 ] || die "$dir: path too long for the server's Unix socket (set TMPDIR to a short folder)"

  local bin
  bin=$(find_bin)
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user: install Debian's postgresql package (apt-get install postgresql)"
    chown postgres: "$dir"
    as_owner test -w "$dir" || die "the postgres user cannot write $dir (is a parent folder closed to it? set TMPDIR)"
  fi
  echo "$bin" >"$dir/bin.txt"

  if ! as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed (output above)"
  fi

  # A free port: a random one below Linux's ephemeral range that nothing
  # listens on; if another process takes it before the server binds, the
  # start fails with "could not bind" and the next port is tried.
  local attempt port
  for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 12000))
    listening "$port" && continue
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=300" >&2; then
      if listening "$port"; then
        local url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
        echo "$url" >"$dir/url.txt"
        echo "$url"
        return
      fi
      stop
      die "the server started but does not accept connections on 127.0.0.1:$port (log: $dir/server.log)"
    fi
    if grep -q 'could not bind\|could not create any TCP/IP sockets\|Address already in use' "$dir/server.log" 2>/dev/null; then
      as_owner mv "$dir/server.log" "$dir/server.log.port$port"
      continue # lost the race for the port: try another
    fi
    tail -n 20 "$dir/server.log" >&2 || true
    die "could not start PostgreSQL in $dir (server log above)"
  done
  die "no free port found after 20 tries"
}

# restart starts the stopped cluster in DIR again, on the port it had.
restart() {
  [ -f "$dir/url.txt" ] || die "$dir holds a cluster this script did not start"
  [ ! -f "$dir/data/postmaster.pid" ] || die "$dir: the cluster is running"
  local bin url port
  bin=$(cat "$dir/bin.txt")
  url=$(cat "$dir/url.txt")
  port=${url#*127.0.0.1:}
  port=${port%%/*}
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=300" >&2 ||
    die "could not start PostgreSQL in $dir again on port $port (log: $dir/server.log)"
  echo "$url"
}

# crash stops the cluster without a checkpoint, as a crash would.
crash() {
  [ -f "$dir/data/postmaster.pid" ] || die "$dir: the cluster is not running"
  as_owner "$(cat "$dir/bin.txt")/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >&2
}

stop() {
  [ -f "$dir/data/postmaster.pid" ] || return 0 # not running (or never started)
  local bin
  bin=$(cat "$dir/bin.txt" 2>/dev/null) || bin=$(find_bin)
  if ! as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2; then
    echo "pg-cluster: fast shutdown failed; stopping immediately" >&2
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >&2
  fi
}

[ $# -eq 2 ] || die "usage: $0 start|stop|crash DIR"
[ -d "$2" ] || die "$2: no such folder"
dir=$(cd "$2" && pwd -P)
case "$1" in
  start) start ;;
  stop) stop ;;
  crash) crash ;;
  *) die "usage: $0 start|stop|crash DIR" ;;
esac
