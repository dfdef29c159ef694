#!/usr/bin/env python3
"""Writes a realistic Ingress routing table for the benchmark: INGRESSES Ingresses with PATHS paths each,
all Services backed by one EndpointSlice pointing at the benchmark backend.

    bench/ingress-manifests.py OUT_DIR BACKEND_PORT INGRESSES PATHS

Every Ingress but the last has its own host (one in ten a `*.` wildcard), so a request for another host
misses the exact-host table, is tried against every wildcard, and lands on the last Ingress, which has
no host: its paths are tried longest first and its last one, `/` (Prefix), serves the request. With
INGRESSES=1 PATHS=1 this is the single-route table.
"""
import os
import sys

out, backend, ingresses, paths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out, exist_ok=True)
services = min(50, ingresses)
docs = []
for s in range(services):
    docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: svc{s}, namespace: bench}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc{s}-1, namespace: bench, labels: {{kubernetes.io/service-name: svc{s}}}}}
addressType: IPv4
ports: [{{name: http, port: {backend}}}]
endpoints: [{{addresses: ["127.0.0.1"], conditions: {{ready: true}}}}]""")
with open(os.path.join(out, "services.yaml"), "w") as f:
    f.write("\n---\n".join(docs) + "\n")

kinds = ["/api/v{j}/items", "/static/{j}", "/healthz{j}", "/app{j}/dashboard", "/v{j}"]
for i in range(ingresses):
    last = i == ingresses - 1
    lines = []
    for j in range(paths):
        if last and j == paths - 1:
            path, ptype = "/", "Prefix"
        else:
            path = kinds[j % len(kinds)].format(j=j)
            ptype = "Exact" if j % 3 == 2 else "Prefix"
        lines.append(f"          - {{path: {path}, pathType: {ptype}, backend: {{service: {{name: svc{(i + j) % services}, port: {{number: 80}}}}}}}}")
    host = "" if last else (f"    - host: \"*.team{i}.example.com\"\n" if i % 10 == 0 else f"    - host: app{i}.example.com\n")
    rule = (host + "      http:\n") if host else "    - http:\n"
    text = f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing{i}, namespace: bench, creationTimestamp: "2024-01-01T00:00:{i % 60:02d}Z"}}
spec:
  ingressClassName: ferry
  rules:
{rule}        paths:
""" + "\n".join(lines) + "\n"
    with open(os.path.join(out, f"ingress-{i:04d}.yaml"), "w") as f:
        f.write(text)
