#!/usr/bin/env python3
"""certctrl's side of bench/acme_storm.sh.

Usage: acme_storm.py PORT STORM_KEY OTHER_KEY DIRECTORY COUNT MYSQL_SOCKET METRICS_PORT
"""
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid

port, storm_key, other_key, directory, count, socket, mport = sys.argv[1:8]
count = int(count)


class Api:
    def __init__(self, key):
        self.key = key
        self.conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.key}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if data else None


def sql(query):
    out = subprocess.run(["mariadb", "--no-defaults", f"--socket={socket}", "-uroot", "-N", "-B", "bench", "-e", query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.strip().splitlines()]


def metric(name):
    c = http.client.HTTPConnection("127.0.0.1", int(mport), timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    return [line for line in text.splitlines() if line.startswith(name)]


storm, other = Api(storm_key), Api(other_key)
storm_acct = storm.call("POST", "/apiv1/me/acme-accounts",
                        {"name": "ca", "provider": "custom", "directory_url": directory})["data"]["id"]
other_acct = other.call("POST", "/apiv1/me/acme-accounts",
                        {"name": "ca", "provider": "custom", "directory_url": directory})["data"]["id"]


def on_demand(prefix):
    name = f"{prefix}-{uuid.uuid4().hex[:10]}.certctrl.test"
    cert = other.call("POST", "/apiv1/me/certificates", {"domain_name": name, "acct_id": other_acct})["data"]["id"]
    t0 = time.monotonic()
    h = other.call("POST", f"/apiv1/me/certificates/{cert}/issues", {})["data"]["issue_history_id"]
    while True:
        rows = other.call("GET", f"/apiv1/me/certificates/{cert}/issues?offset=0&limit=5")["data"]
        row = next(r for r in rows if r["id"] == h)
        if row["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
            return time.monotonic() - t0, row["status"]
        time.sleep(0.02)


quiet = [on_demand("quiet")[0] for _ in range(3)]
print(f"on-demand, quiet: median {statistics.median(quiet):.3f} s")

t0 = time.monotonic()
ids = []
for i in range(count):
    ids.append(storm.call("POST", "/apiv1/me/certificates",
                          {"domain_name": f"s{i}-{uuid.uuid4().hex[:8]}.certctrl.test", "acct_id": storm_acct})["data"]["id"])
print(f"created {count} certificates in {time.monotonic() - t0:.1f} s")
# Every one falls due at once (as after a mass import or a CA incident).
user = sql("SELECT user_id FROM certificates WHERE id = %d" % ids[0])[0][0]
sql("UPDATE certificates SET auto_renew = 1, cert_pem = 'imported', not_before = UNIX_TIMESTAMP() - 86400, "
    "not_after = UNIX_TIMESTAMP() + 86400, renew_after = 1 WHERE user_id = %s" % user)
start = time.monotonic()
during = []
stop = threading.Event()


def keep_ordering():
    while not stop.is_set():
        during.append(on_demand("busy"))
        time.sleep(2)


t = threading.Thread(target=keep_ordering)
t.start()
last = -1
most_processing = 0
while True:
    rows = sql("SELECT status, COUNT(*) FROM issue_history WHERE user_id = %s AND kind = 'renew' GROUP BY status" % user)
    by = {s: int(n) for s, n in rows}
    done = by.get("SUCCESS", 0) + by.get("FAILED", 0)
    most_processing = max(most_processing, by.get("PROCESSING", 0))
    elapsed = time.monotonic() - start
    if done // 1000 != last // 1000 or done == count:
        print(f"  {elapsed:6.1f} s: {by}", flush=True)
        last = done
    if done >= count:
        break
    time.sleep(2)
stop.set()
t.join()
elapsed = time.monotonic() - start
print(f"storm: {count} renewals in {elapsed:.1f} s, {count / elapsed:.1f} certs/s; SUCCESS {by.get('SUCCESS', 0)}, "
      f"FAILED {by.get('FAILED', 0)}; at most {most_processing} PROCESSING at once (sampled every 2 s)")
lat = sorted(x for x, _ in during)
bad = [s for _, s in during if s != "SUCCESS"]
print(f"on-demand during the storm: {len(lat)} orders, median {statistics.median(lat):.3f} s, max {lat[-1]:.3f} s, "
      f"not SUCCESS: {len(bad)}")
for line in metric("certctrl_acme_") + metric("certctrl_issuance_runs_total"):
    print("  " + line)
