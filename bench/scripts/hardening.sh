#!/usr/bin/env bash
# Figures of issue 10's items 8 and 9 for one chatctl binary:
#  - body: the server's peak RSS after an MiB-sized JSON body is streamed to
#    the admin socket (POST /admin/users), and what it answered;
#  - conns: how many of K idle keep-alive connections from one address the
#    server holds, and whether /users/me and the CLI still answer meanwhile.
# usage: bench/scripts/hardening.sh [BODY_MIB] [CONNS]
#   CHATCTL=/path/to/chatctl picks the binary (default: built from this tree);
#   SERVE_NOFILE=N runs the server with ulimit -n N (the client keeps its own).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BODY_MIB=${1:-256}; CONNS=${2:-5000}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
if [ -z "${CHATCTL:-}" ]; then (cd "$ROOT" && go build -o "$WORK/chatctl" .); CHATCTL=$WORK/chatctl; fi
db=$WORK/data/c.db; port=${PORT:-8131}
"$CHATCTL" --db "$db" user add perf --password-stdin <<<"password123" 2>/dev/null
${SERVE_NOFILE:+prlimit --nofile=$SERVE_NOFILE:$SERVE_NOFILE} "$CHATCTL" --db "$db" serve --listen 127.0.0.1:$port >/dev/null 2>"$WORK/serve.log" & SP=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.1; done
TOKEN=$("$CHATCTL" --db "$db" token issue perf)
hwm() { awk '/VmHWM/{print int($2/1024)}' /proc/$SP/status; }
echo "binary $CHATCTL"
echo "body: server peak RSS before ${BODY_MIB} MiB body: $(hwm) MiB"
out=$( { printf '{"name":"'; head -c "${BODY_MIB}M" /dev/zero | tr '\0' a; printf '","password":"password123"}'; } |
  curl -s -o "$WORK/body.out" -w '%{http_code}' --unix-socket "$db.sock" -X POST -H 'Content-Type: application/json' -T - http://chatctl/admin/users || true)
echo "body: answer $out, $(wc -c <"$WORK/body.out") bytes; server peak RSS after: $(hwm) MiB"
python3 - "$port" "$CONNS" "$SP" "$TOKEN" "$CHATCTL" "$db" <<'PY'
import os, socket, subprocess, sys, time, urllib.request
port, n, pid, token, chatctl, db = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
def fds(): return len(os.listdir(f"/proc/{pid}/fd"))
base = fds()
socks = []
for i in range(n):
    s = socket.socket(); s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port)); s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(4096)
    except OSError: pass
    socks.append(s)
time.sleep(1)  # let the server finish its bookkeeping before counting
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        alive += 1 if s.recv(1, socket.MSG_PEEK) else 0
    except BlockingIOError: alive += 1
    except OSError: pass
print(f"conns: {n} idle keep-alive connections from 127.0.0.1: {alive} still open, server fds {base} -> {fds()}")
t = time.time()
try:
    r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/users/me", headers={"Authorization": "Bearer " + token}), timeout=5)
    print(f"conns: /users/me meanwhile: {r.status} in {1000*(time.time()-t):.1f} ms")
except Exception as e:
    print(f"conns: /users/me meanwhile: {e!r} after {1000*(time.time()-t):.1f} ms")
t = time.time()
p = subprocess.run([chatctl, "--db", db, "user", "list"], capture_output=True, text=True, timeout=30)
print(f"conns: chatctl user list meanwhile: exit {p.returncode} in {1000*(time.time()-t):.1f} ms {p.stderr.strip()[:100]}")
PY
kill $SP; wait $SP 2>/dev/null || true
