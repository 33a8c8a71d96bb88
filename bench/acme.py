#!/usr/bin/env python3
"""certctrl's side of bench/acme.sh: DNS-01 certificates through the REST API, as a user would order them.

Usage: acme.py PORT API_KEY DIRECTORY_URL KNOT_PORT TSIG_NAME TSIG_SECRET COUNT SINGLES
Prints "certctrl single: median ..." and "certctrl batch: N certificates in S s, R certs/s".
"""
import http.client
import json
import statistics
import sys
import time
import uuid

port, key, directory, knot_port, tsig_name, tsig_secret = sys.argv[1:7]
count, singles = int(sys.argv[7]), int(sys.argv[8])
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)


def call(method, path, body=None):
    headers = {"Authorization": "Bearer " + key}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


account = call("POST", "/apiv1/me/acme-accounts",
               {"name": "pebble", "provider": "custom", "email": "bench@x.y", "directory_url": directory})["data"]["id"]
provider = call("POST", "/apiv1/me/dns-providers",
                {"name": "knot", "kind": "rfc2136", "server": "127.0.0.1", "port": int(knot_port),
                 "zone": "certctrl.test", "tsig_key_name": tsig_name, "tsig_algorithm": "hmac-sha256",
                 "tsig_secret": tsig_secret})["data"]["id"]


def new_cert(prefix):
    name = f"{prefix}-{uuid.uuid4().hex[:10]}.certctrl.test"
    return call("POST", "/apiv1/me/certificates",
                {"domain_name": name, "acct_id": account, "dns_provider_id": provider})["data"]["id"]


def issue(cert):
    return call("POST", f"/apiv1/me/certificates/{cert}/issues", {})["data"]["issue_history_id"]


def status(cert, hid):
    for row in call("GET", f"/apiv1/me/certificates/{cert}/issues?offset=0&limit=5")["data"]:
        if row["id"] == hid:
            return row["status"], row.get("message", "")
    return "?", ""


# The account key is registered with the CA by the first issuance (lego registers its own beforehand too).
warm = new_cert("warmup")
h = issue(warm)
while status(warm, h)[0] not in ("SUCCESS", "FAILED"):
    time.sleep(0.05)

times = []
for i in range(singles):
    cert = new_cert(f"c1-{i}")
    t0 = time.monotonic()
    h = issue(cert)
    while True:
        s, msg = status(cert, h)
        if s in ("SUCCESS", "FAILED", "CANCELLED"):
            break
        time.sleep(0.01)
    times.append(time.monotonic() - t0)
    if s != "SUCCESS":
        print(f"certctrl single {i}: {s} {msg}")
times.sort()
print(f"certctrl single: median {statistics.median(times):.3f} s (min {times[0]:.3f}, max {times[-1]:.3f}) "
      f"over {singles} runs")

certs = [new_cert(f"cb-{i}") for i in range(count)]
t0 = time.monotonic()
open_rows = {c: issue(c) for c in certs}
outcome = {}
while open_rows:
    for c, h in list(open_rows.items()):
        s, msg = status(c, h)
        if s in ("SUCCESS", "FAILED", "CANCELLED"):
            outcome[c] = (s, msg, time.monotonic() - t0)
            del open_rows[c]
    time.sleep(0.05)
elapsed = time.monotonic() - t0
ok = sum(1 for s, _, _ in outcome.values() if s == "SUCCESS")
for s, msg, _ in outcome.values():
    if s != "SUCCESS":
        print(f"  {s}: {msg}")
        break
print(f"certctrl batch: {count} certificates in {elapsed:.2f} s, {ok} SUCCESS, {count / elapsed:.2f} certs/s")
