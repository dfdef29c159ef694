#!/usr/bin/env python3
"""Ferry configured by the Kubernetes API at cluster scale (issue 14's performance bars).

Starts `ferry-bench-apiserver` (the test suite's fake API server, filled with SERVICES Services of
ENDPOINTS endpoints each and INGRESSES Ingresses), then measures:

  1. `ferry ingress` from start to `/ready` 200 (every collection listed, the routing table built and
     served), and its peak RSS (VmHWM) after ready;
  2. `ferry service-proxy --dry-run` (iptables and nftables): wall time and peak RSS of the whole run
     (list, translate, render);
  3. update propagation through `ferry ingress`: CHANGES times, `kubectl apply` of an EndpointSlice that
     moves a Service to the other of two local origins, then requests until one is answered by the new
     origin; the time from kubectl's exit (the object is stored by then) to that answer;
  4. the same through `ferry service-proxy` (--proxy-mode, nftables by default) in a network namespace of
     its own (the API reached through a Unix-socket relay): from kubectl's exit until the kernel's rules
     send the ClusterIP to the new endpoint (polled with nft or iptables-save in that namespace).

Binaries: FERRY_BIN (default .build/optimized/release/ferry) and the bench server next to it, both from
scripts/build-release.sh. Needs openssl, kubectl, curl; part 4 needs root, iptables and unshare.

  bench/kube-scale.py [--services 10000] [--endpoints 5] [--ingresses 2000] [--changes 100] [--proxy-mode nftables]
"""
import argparse, http.client, os, re, resource, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time
import http.server, socketserver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def kubeconfig(path, cert, port):
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: {{server: "https://127.0.0.1:{port}", certificate-authority: {cert}}}
users:
- name: bench
  user: {{token: bench}}
contexts:
- name: bench
  context: {{cluster: bench, user: bench}}
current-context: bench
""")


def origin(name):
    """A local HTTP origin answering its name; returns its port."""
    body = (name + "\n").encode()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            # One write: headers and body in separate small writes would wait on delayed ACKs (Nagle).
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

        def log_message(self, *a):
            pass

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = S(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def slice_yaml(path, service, address, port):
    with open(path, "w") as f:
        f.write(f"""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {service}-1, namespace: demo, labels: {{kubernetes.io/service-name: {service}}}}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
- {{addresses: [{address}], conditions: {{ready: true}}}}
""")


def kubectl_apply(config, path):
    r = subprocess.run(["kubectl", "--kubeconfig", config, "apply", "--validate=false", "-f", path], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"kubectl apply failed: {r.stderr}")


def percentiles(samples):
    ordered = sorted(samples)
    def p(q):
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return p(0.5), p(0.99), ordered[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--ingresses", type=int, default=2000)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--skip-namespace", action="store_true", help="skip part 4 (needs root)")
    ap.add_argument("--proxy-mode", default="nftables", choices=["iptables", "nftables"], help="the service proxy's mode in part 4")
    ap.add_argument("--parts", default="1234", help="which parts to run (e.g. 4)")
    args = ap.parse_args()
    ferry = os.environ.get("FERRY_BIN", os.path.join(ROOT, ".build/optimized/release/ferry"))
    server_bin = os.path.join(os.path.dirname(ferry), "ferry-bench-apiserver")
    work = tempfile.mkdtemp(prefix="ferry-kube-scale-")
    procs = []
    try:
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kubernetes",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], check=True, capture_output=True)
        sock = os.path.join(work, "api.sock")
        t0 = time.monotonic()
        api = subprocess.Popen([server_bin, cert, key, str(args.services), str(args.endpoints), str(args.ingresses), sock], stdout=subprocess.PIPE, text=True)
        procs.append(api)
        port = int(api.stdout.readline().split()[1])
        print(f"fake API server: {args.services} Services x {args.endpoints} endpoints, {args.ingresses} Ingresses, filled in {time.monotonic() - t0:.1f} s")
        config = os.path.join(work, "config")
        kubeconfig(config, cert, port)
        objects = f"{args.services} Services, {args.services * args.endpoints} endpoints, {args.ingresses} Ingresses"

        path = os.path.join(work, "slice.yaml")
        if "1" in args.parts or "3" in args.parts:
            ingress_parts(args, ferry, work, config, objects, procs, path)
        if "2" in args.parts:
            dry_runs(ferry, config, objects)
        if "4" in args.parts:
            service_proxy_part(args, ferry, work, cert, sock, config, objects, procs, path)
    finally:
        # The relay of part 4 runs inside the service proxy's namespace, started by its shell: found by
        # this run's own socket path, which no other process names.
        relays = subprocess.run(["pgrep", "-f", os.path.join(work, "api.sock")], capture_output=True, text=True).stdout.split()
        for pid in relays:
            if int(pid) != os.getpid():
                os.kill(int(pid), signal.SIGTERM)
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


def ingress_parts(args, ferry, work, config, objects, procs, path):
    if True:
        # 1. ferry ingress: start → /ready, peak RSS.
        listen, admin = free_port(), free_port()
        start = time.monotonic()
        ing = subprocess.Popen([ferry, "ingress", "--kubeconfig", config, "--listen", f"127.0.0.1:{listen}", "--listen-tls", "127.0.0.1:0", "--admin", f"127.0.0.1:{admin}",
                                "--threads", "1", "--update-status", "false", "--access-log-format", "none"],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "ingress.log"), "w"))
        procs.append(ing)
        ready = None
        while time.monotonic() - start < 120:
            try:
                c = http.client.HTTPConnection("127.0.0.1", admin, timeout=1)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    ready = time.monotonic() - start
                    break
            except OSError:
                pass
            if ing.poll() is not None:
                sys.exit("ferry ingress exited: " + open(os.path.join(work, "ingress.log")).read())
            time.sleep(0.05)
        if ready is None:
            sys.exit("ferry ingress was not ready within 120 s")
        print(f"ferry ingress ({objects}): ready in {ready:.2f} s, peak RSS {rss_kib(ing.pid) / 1024:.0f} MiB")

        ingress_propagation(args, config, ing, listen, path)


def dry_runs(ferry, config, objects):
    if True:
        # 2. ferry service-proxy --dry-run, both kernel modes.
        for mode in ["iptables", "nftables"]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.monotonic()
            r = subprocess.run([ferry, "service-proxy", "--kubeconfig", config, "--dry-run", "--mode", mode, "--node-ip", "192.168.0.2",
                                "--hostname-override", "node-0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            took = time.monotonic() - start
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            if r.returncode != 0:
                sys.exit(f"service-proxy --dry-run failed: {r.stderr}")
            note = "" if peak > before else " (peak not above an earlier child's; read as at most)"
            print(f"ferry service-proxy --dry-run --mode {mode} ({objects}): {took:.2f} s, peak RSS {peak / 1024:.0f} MiB{note}")


def ingress_propagation(args, config, ing, listen, path):
    if True:
        # 3. Propagation through ferry ingress: svc-0 (host-0.bench) moves between two origins.
        blue, green = origin("blue"), origin("green")
        slice_yaml(path, "svc-0", "127.0.0.1", blue)
        kubectl_apply(config, path)
        conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)

        def answer():
            nonlocal conn
            try:
                conn.request("GET", "/", headers={"Host": "host-0.bench"})
                return conn.getresponse().read().decode().strip()
            except (OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
                return ""

        deadline = time.monotonic() + 30
        while answer() != "blue" and time.monotonic() < deadline:
            time.sleep(0.05)
        samples, applies = [], []
        for i in range(args.changes):
            target, port_ = ("green", green) if i % 2 == 0 else ("blue", blue)
            slice_yaml(path, "svc-0", "127.0.0.1", port_)
            a = time.monotonic()
            kubectl_apply(config, path)
            stored = time.monotonic()
            applies.append(stored - a)
            while answer() != target:
                if time.monotonic() - stored > 30:
                    sys.exit(f"change {i} not routed within 30 s")
            samples.append(time.monotonic() - stored)
        p50, p99, worst = percentiles(samples)
        print(f"ingress propagation over {args.changes} changes (kubectl exit → first request to the new endpoint): "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms (kubectl apply itself: median {statistics.median(applies) * 1000:.0f} ms)")
        print(f"ferry ingress peak RSS after the changes: {rss_kib(ing.pid) / 1024:.0f} MiB")
        ing.send_signal(signal.SIGTERM)
        ing.wait(timeout=60)


def service_proxy_part(args, ferry, work, cert, sock, config, objects, procs, path):
    if True:
        # 4. Propagation through ferry service-proxy (iptables) in a network namespace of its own.
        if args.skip_namespace or os.geteuid() != 0 or not shutil.which("unshare"):
            print("service-proxy propagation: skipped (needs root and unshare)")
            return
        relay = os.path.join(ROOT, "bench", "unix-relay.py")
        node_config = os.path.join(work, "node-config")
        kubeconfig(node_config, cert, 6443)
        sp_log = open(os.path.join(work, "service-proxy.log"), "w")
        sp = subprocess.Popen(["unshare", "--net", "sh", "-c",
                               f"ip link set lo up && (python3 {relay} 6443 {sock} &) && sleep 0.3 && exec {ferry} service-proxy --kubeconfig {node_config} "
                               f"--mode {args.proxy_mode} --node-ip 10.0.0.1 --hostname-override node-0 --cluster-cidr 10.244.0.0/16 --healthz-bind-address 127.0.0.1:10256"],
                              stderr=sp_log, stdout=subprocess.DEVNULL)
        procs.append(sp)
        time.sleep(0.2)  # unshare has made the namespace and runs sh in it (same process)
        # Listing the kernel's table (or even one chain: nft reads every set and map first) takes seconds at
        # this size, so the kernel is not polled: `nft monitor` in the node's namespace reports each rule as
        # its transaction commits, and the time the new endpoint's rules appear is taken from its output.
        # It starts while the table is still empty (started later, it would first read the whole table).
        seen = []
        monitor = subprocess.Popen(["nsenter", f"--net=/proc/{sp.pid}/ns/net", "stdbuf", "-oL", "nft", "monitor"] if args.proxy_mode == "nftables" else ["true"],
                                   stdout=subprocess.PIPE, text=True)
        procs.append(monitor)

        def read_monitor():
            for line in monitor.stdout:
                seen.append((time.monotonic(), line))

        threading.Thread(target=read_monitor, daemon=True).start()

        deadline = time.monotonic() + 300
        log = os.path.join(work, "service-proxy.log")
        while "rules synced" not in open(log).read():
            if sp.poll() is not None or time.monotonic() > deadline:
                sys.exit("service-proxy did not sync: " + open(log).read()[-2000:])
            time.sleep(0.2)
        first_sync = re.findall(r"took=([^ ]+)", open(log).read())
        ferry_pid = sp.pid  # sh execs ferry
        netns = f"/proc/{ferry_pid}/ns/net"
        print(f"ferry service-proxy ({args.proxy_mode}, {objects}): first sync took {first_sync[0] if first_sync else '?'}")

        # iptables mode: no monitor; svc-1's service chain (its name from a dry run) and the endpoint chains it
        # jumps to are read, not the whole table.
        if args.proxy_mode == "iptables":
            dry = subprocess.run([ferry, "service-proxy", "--kubeconfig", config, "--dry-run", "--mode", "iptables", "--node-ip", "10.0.0.1",
                                  "--hostname-override", "node-0"], capture_output=True, text=True).stdout
            svc_chain = re.search(r'demo/svc-1:http cluster IP" .* -j (KUBE-SVC-\S+)', dry).group(1)

        def nat_has(address, since):
            if args.proxy_mode == "nftables":
                return any(t >= since and f"__{address}/8080" in line and line.startswith("add ") for t, line in list(seen))
            chain = subprocess.run(["nsenter", f"--net={netns}", "iptables", "-w", "-t", "nat", "-S", svc_chain], capture_output=True, text=True).stdout
            for sep in re.findall(r"-j (KUBE-SEP-\S+)", chain):
                rules = subprocess.run(["nsenter", f"--net={netns}", "iptables", "-w", "-t", "nat", "-S", sep], capture_output=True, text=True).stdout
                if f"--to-destination {address}:8080" in rules:
                    return True
            return False

        # svc-1 (not touched by part 3) moves between two addresses no other Service uses (rules only: no packet is sent).
        samples = []
        changes = max(2, args.changes // 5)
        time.sleep(1)
        for i in range(changes):
            address = f"127.250.0.{2 + i % 2}"
            slice_yaml(path, "svc-1", address, 8080)
            a = time.monotonic()
            kubectl_apply(config, path)
            stored = time.monotonic()
            while not nat_has(address, a):
                if time.monotonic() - stored > 60:
                    sys.exit(f"service-proxy change {i} not applied within 60 s; nft monitor said: {[line for _, line in seen[-5:]]}; log: {open(log).read()[-1500:]}")
                time.sleep(0.005)
            found = min(t for t, line in list(seen) if t >= a and f"__{address}/8080" in line and line.startswith("add ")) if args.proxy_mode == "nftables" else time.monotonic()
            samples.append(max(0.0, found - stored))
            time.sleep(1.2)  # past the min sync period, so each change is measured on its own
        p50, p99, worst = percentiles(samples)
        syncs = re.findall(r"took=([^ ]+)", open(log).read())
        print(f"service-proxy propagation over {changes} changes (kubectl exit → the kernel's rules send the ClusterIP to the new endpoint, "
              f"min sync period 1 s): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms; last sync took {syncs[-1] if syncs else '?'}")
        print(f"ferry service-proxy peak RSS: {rss_kib(ferry_pid) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
