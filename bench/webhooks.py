"""Drives bench/webhooks.sh: SELF_CA issuances through the API with and without a webhook subscription, and
end-to-end latency from an issuance request to the event's arrival at the receiver (nginx's access log)."""
import json
import statistics
import sys
import threading
import time
import urllib.request


def call(port, key, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        text = r.read()
        return json.loads(text) if text else None


def setup(port, key, n, prefix):
    ca = call(port, key, "POST", "/apiv1/me/cas", {"common_name": "Bench root", "valid_days": 365})["data"]["id"]
    acct = call(port, key, "POST", "/apiv1/me/acme-accounts",
                {"name": "self", "provider": "SELF_CA", "ca_id": ca, "cert_valid_seconds": 86400})["data"]["id"]
    return [call(port, key, "POST", "/apiv1/me/certificates",
                 {"domain_name": f"{prefix}{i}.example.com", "acct_id": acct})["data"]["id"] for i in range(n)]


def issue_all(port, key, certs, clients=8):
    todo = list(certs)
    lock = threading.Lock()
    failures = []

    def run():
        while True:
            with lock:
                if not todo:
                    return
                c = todo.pop()
            d = call(port, key, "POST", f"/apiv1/me/certificates/{c}/issues", {})["data"]
            if d["status"] != "SUCCESS":
                failures.append(d)

    t0 = time.monotonic()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0, len(failures)


def issue(port, plain_key, hooked_key, n, url, sample_file):
    """n issuances of a user without webhooks and n of a user with one subscription, in alternating halves."""
    plain = setup(port, plain_key, n, "plain")
    hooked = setup(port, hooked_key, n, "hooked")
    hook = call(port, hooked_key, "POST", "/apiv1/me/webhooks",
                {"url": url, "events": ["certificate.issued"]})["data"]["id"]
    totals = {"without": [0, 0.0, 0], "with": [0, 0.0, 0]}
    for part in range(2):
        half = slice(part * n // 2, (part + 1) * n // 2)
        for what, key, certs in (("without", plain_key, plain), ("with", hooked_key, hooked)):
            secs, bad = issue_all(port, key, certs[half])
            totals[what][0] += len(certs[half])
            totals[what][1] += secs
            totals[what][2] += bad
    for what, (count, secs, bad) in totals.items():
        print(f"{what} a subscription: {count} issuances in {secs:.2f} s, {count / secs:.0f}/s, {bad} not SUCCESS")
    # The peer POSTs the same bytes as an event: the newest delivery's payload.
    newest = call(port, hooked_key, "GET", f"/apiv1/me/webhooks/{hook}/deliveries?limit=1")["data"][0]["id"]
    one = call(port, hooked_key, "GET", f"/apiv1/me/webhooks/{hook}/deliveries/{newest}")["data"]
    with open(sample_file, "w") as f:
        f.write(json.dumps(one["payload"], separators=(",", ":")) + "\n")


def latency(port, key, samples, log):
    certs = setup(port, key, samples, "latency")
    out = []
    for c in certs:
        before = sum(1 for _ in open(log))
        t0 = time.time()
        call(port, key, "POST", f"/apiv1/me/certificates/{c}/issues", {})
        while True:
            lines = open(log).read().splitlines()
            if len(lines) > before:
                out.append((float(lines[before].split()[0]) - t0) * 1000)
                break
            time.sleep(0.002)
    out.sort()
    print(f"median {statistics.median(out):.1f} ms, p90 {out[int(len(out) * 0.9) - 1]:.1f} ms, "
          f"max {out[-1]:.1f} ms")


if __name__ == "__main__":
    what, port = sys.argv[1], int(sys.argv[2])
    if what == "issue":
        issue(port, sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7])
    else:
        latency(port, sys.argv[3], int(sys.argv[4]), sys.argv[5])
