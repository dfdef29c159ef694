#!/usr/bin/env bash
# Intercepted traffic against the same traffic through the forward-proxy path, in network namespaces this
# script creates (root): "fbc" holds the clients and Ferry (one event loop, CPU 0, running as UID 1337, which
# `ferry rules capture` exempts), "fbo" the origins (nginx on 10.99.0.2:8080, a TLS-like responder on
# 10.99.0.2:9443), linked by a veth pair. Clients on CPU 1. Interleaved rounds:
#   http-ka   keep-alive requests/s (wrk -c64): intercepted (GET / with Host: origin.bench:8080) and forward
#             proxy (GET http://origin.bench:8080/ to 127.0.0.1:3128)
#   tls-rate  tunnel setup rate: per connection a ClientHello naming origin.bench, one answer, close;
#             intercepted (decided on SNI, spliced) and forward proxy (CONNECT origin.bench:9443 first)
# Prints requests or tunnels per second and Ferry's CPU per request/tunnel from /proc, per round and medians.
#   bench/intercept.sh [ROUNDS] [SECONDS]     # default 3 rounds of 5 s; FERRY_BIN overrides the binary
set -euo pipefail
rounds=${1:-3} seconds=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
work=$(mktemp -d /tmp/ferry-intercept-bench.XXXXXX)
chmod 755 "$work"
c=fbc-$$ o=fbo-$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$c" 2>/dev/null || true; ip netns del "$o" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$c"; ip netns add "$o"
ip -n "$c" link set lo up; ip -n "$o" link set lo up
ip -n "$c" link add v0 type veth peer name v1 netns "$o"
ip -n "$c" addr add 10.99.0.1/24 dev v0; ip -n "$o" addr add 10.99.0.2/24 dev v1
ip -n "$c" link set v0 up; ip -n "$o" link set v1 up
inc() { ip netns exec "$c" "$@"; }
ino() { ip netns exec "$o" "$@"; }

mkdir -p "$work/backend"
cat > "$work/backend/nginx.conf" <<CONF
worker_processes 1; daemon off; pid backend.pid; error_log error.log warn;
events { worker_connections 16384; }
http { access_log off; keepalive_requests 10000000;
  server { listen 10.99.0.2:8080 backlog=4096; location / { return 200 "hello from the backend\n"; } } }
CONF
cat > "$work/responder.py" <<'PY'
# Reads a ClientHello-sized first message, answers 64 bytes, closes: what a TLS server's first flight costs the
# proxy between, without the handshake's CPU in the clients.
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("10.99.0.2", 9443)); srv.listen(4096)
def serve(conn):
    try:
        conn.recv(4096); conn.sendall(b"x" * 64)
    finally:
        conn.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
cat > "$work/rate.py" <<'PY'
# Tunnel setup rate: THREADS workers, each: connect (to the origin, or CONNECT through the proxy), send a
# real ClientHello naming origin.bench, read the answer to EOF. Prints tunnels/s.
import socket, ssl, sys, threading, time
mode, seconds, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
# A ClientHello from Python's ssl, made once in memory.
ctx = ssl.create_default_context(); incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(incoming, outgoing, server_hostname="origin.bench")
try: obj.do_handshake()
except ssl.SSLWantReadError: pass
hello = outgoing.read()
count, errors, stop = [0], [0], time.time() + seconds
lock = threading.Lock()
def worker():
    while time.time() < stop:
        try:
            if mode == "proxy":
                s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
                s.sendall(b"CONNECT origin.bench:9443 HTTP/1.1\r\nHost: origin.bench:9443\r\n\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk: raise ConnectionError("closed")
                    head += chunk
            else:
                s = socket.create_connection(("10.99.0.2", 9443), timeout=5)
            s.sendall(hello)
            while s.recv(4096): pass
            s.close()
            with lock: count[0] += 1
        except Exception:
            with lock: errors[0] += 1
ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
print("%.1f %d" % (count[0] / seconds, errors[0]))
PY
cat > "$work/abs.lua" <<'LUA'
wrk.path = "http://origin.bench:8080/"
wrk.headers["Host"] = "origin.bench:8080"
LUA
echo "10.99.0.2 origin.bench" > "$work/hosts"
chmod 644 "$work"/*

# Started with `ip netns exec` directly (each tool execs the next), so $! is the server's own PID.
ip netns exec "$o" taskset -c 1 nginx -p "$work/backend/" -c "$work/backend/nginx.conf" -e "$work/backend/error.log" & pids+=($!)
ip netns exec "$o" taskset -c 1 python3 "$work/responder.py" & pids+=($!)
ip netns exec "$c" taskset -c 0 setpriv --reuid=1337 --regid=1337 --clear-groups "$ferry" egress --listen 127.0.0.1:3128 --admin 127.0.0.1:9901 \
  --intercept 15001 --hosts-file "$work/hosts" --allow origin.bench:8080 --allow origin.bench:9443 --access-log-format none 2> "$work/ferry.log" & pids+=($!)
ferry_pid=$!
sleep 1.5
inc "$ferry" rules capture --include-port 8080 --include-port 9443
inc curl -s --max-time 5 -o /dev/null -w "%{http_code}" -H "Host: origin.bench:8080" http://10.99.0.2:8080/ | grep -q 200 || { echo "intercepted HTTP does not answer" >&2; cat "$work/ferry.log" >&2; exit 1; }
inc curl -s --max-time 5 -o /dev/null -w "%{http_code}" -x http://127.0.0.1:3128 http://origin.bench:8080/ | grep -q 200 || { echo "the forward proxy does not answer" >&2; exit 1; }

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
per() { python3 -c "print(round(($2 - $1) * 1e4 / ($3 * $seconds), 1))"; }  # before after rate -> us per unit
run() {  # path scenario -> "rate cpu_us"
  local before after rate
  before=$(cpu "$ferry_pid")
  case "$2" in
    http-ka)
      if [ "$1" = intercept ]; then
        rate=$(inc taskset -c 1 wrk -t1 -c64 -d"${seconds}s" -H "Host: origin.bench:8080" http://10.99.0.2:8080/ | awk '/Requests\/sec/ {print $2}')
      else
        rate=$(inc taskset -c 1 wrk -t1 -c64 -d"${seconds}s" -s "$work/abs.lua" http://127.0.0.1:3128/ | awk '/Requests\/sec/ {print $2}')
      fi ;;
    tls-rate)
      rate=$(inc taskset -c 1 python3 "$work/rate.py" "$([ "$1" = intercept ] && echo direct || echo proxy)" "$seconds" 16 | awk '{print $1}') ;;
  esac
  after=$(cpu "$ferry_pid")
  echo "$rate $(per "$before" "$after" "$rate")"
}
for scenario in http-ka tls-rate; do
  : > "$work/$scenario.txt"
  for r in $(seq "$rounds"); do
    f=$(run proxy $scenario); i=$(run intercept $scenario)
    echo "$scenario round $r: forward proxy $f | intercepted $i"
    echo "$f $i" >> "$work/$scenario.txt"
  done
  python3 - "$work/$scenario.txt" "$scenario" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = [statistics.median(r[i] for r in rows) for i in range(4)]
print(f"{sys.argv[2]}: forward proxy {med[0]:,.0f}/s {med[1]} us | intercepted {med[2]:,.0f}/s {med[3]} us | intercepted/proxy rate {med[2]/med[0]:.2f}, CPU {med[3]/med[1]:.2f}")
PY
done
inc "$ferry" rules capture --cleanup
