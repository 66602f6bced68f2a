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
