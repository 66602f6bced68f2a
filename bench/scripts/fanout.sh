#!/usr/bin/env bash
# Fan-out into one room of 1,000 members: the highest rate whose p99 stays
# under 50 ms with nothing lost, for the gorilla/websocket chat example and
# for chatctl, in the same run.
# usage: bench/scripts/fanout.sh [START] [STEP] [MAX] [ROUND]
source "$(dirname "$0")/common.sh"
START=${1:-60}; STEP=${2:-20}; MAX=${3:-300}; DUR=${4:-5s}
step() { load bench fanout --url "$1" --members 1000 --rate "$START" --step "$STEP" --step-max "$MAX" --max-p99 50ms -d "$DUR" "${@:2}" 2>/dev/null; }
taskset -c "$SERVER_CORE" "$BIN/gchat" -addr 127.0.0.1:8090 >/dev/null 2>&1 & GP=$!
wait_port 8090
echo "gorilla/websocket examples/chat:"; step http://127.0.0.1:8090 --raw; stop $GP
serve 8103
echo "chatctl:"; step http://127.0.0.1:8103; stop $SP
