#!/usr/bin/env python3
"""Load on the device update feed (driven by bench/device_updates.sh): registers N devices through the API-key
registration, holds N long-polls (GET /apiv1/devices/self/updates?wait=30) open at once, reads the server's
memory and waiting gauge, then changes one device's install config M times and measures how long that device's
long-poll takes to answer. Standard library only (raw HTTP/1.1 over asyncio streams)."""
import asyncio, base64, json, os, random, statistics, sys, time

host = "127.0.0.1"
port, key, pid, n, rounds, metrics_port = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                           int(sys.argv[5]), int(sys.argv[6]))


async def request(method, path, token=None, body=None, reader_writer=None):
    r, w = reader_writer or await asyncio.open_connection(host, port)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    w.write(head.encode() + b"\r\n" + data)
    await w.drain()
    status = int((await r.readline()).split()[1])
    length = 0
    while True:
        line = (await r.readline()).strip()
        if not line:
            break
        k, _, v = line.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
    payload = await r.readexactly(length) if length else b""
    if reader_writer is None:
        w.close()
    return status, payload


def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])


async def main():
    t0 = time.monotonic()
    devices = []
    for i in range(n):
        body = {"device_public_id": f"00000000-0000-4000-8000-{i:012d}", "name": f"d{i}",
                "dev_pk": base64.b64encode(os.urandom(32)).decode()}
        st, payload = await request("POST", "/apiv1/me/devices", key, body)
        assert st == 201, (st, payload)
        d = json.loads(payload)["data"]
        devices.append((d["device"]["id"], d["session"]["access_token"]))
    print(f"registered {n} devices in {time.monotonic() - t0:.1f} s")
    rss_before = rss_kb()

    conns = [await asyncio.open_connection(host, port) for _ in devices]
    print(f"{n} connections open; server RSS {rss_before} kB before the long-polls")

    def poll(i):
        return asyncio.ensure_future(request("GET", "/apiv1/devices/self/updates?wait=30", devices[i][1],
                                             reader_writer=conns[i]))

    polls = [poll(i) for i in range(n)]
    await asyncio.sleep(3)
    r, w = await asyncio.open_connection(host, metrics_port)
    w.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = (await r.read()).decode()
    waiting = [l for l in text.splitlines() if l.startswith("certctrl_device_longpolls_waiting")]
    print(f"while {n} long-polls wait: {waiting[0] if waiting else '?'}; server RSS {rss_kb()} kB, "
          f"threads {len(os.listdir(f'/proc/{pid}/task'))}")

    wakes = []
    for k in range(rounds):
        i = k % n
        st, _ = await request("PUT", f"/apiv1/me/devices/{devices[i][0]}/install-config", key, {"installs": []})
        assert st == 200, st
        changed = time.monotonic()
        st, payload = await polls[i]
        woke = time.monotonic()
        assert st == 200, (st, payload)
        wakes.append((woke - changed) * 1000)
        polls[i] = poll(i)  # the device polls again with no cursor (gets the signal again): fine for timing
        await asyncio.sleep(random.uniform(0.05, 0.5))  # not in step with the server's 250 ms poller
    wakes.sort()
    print(f"wake after a change, {rounds} changes with {n} polls waiting: median {statistics.median(wakes):.0f} ms, "
          f"p90 {wakes[int(0.9 * (len(wakes) - 1))]:.0f} ms, max {wakes[-1]:.0f} ms")
    for f in polls:
        f.cancel()
    for _, w in conns:
        w.close()


asyncio.run(main())
