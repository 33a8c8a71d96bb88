#!/usr/bin/python3
"""Idle device WebSockets (driven by bench/device_sockets.sh): registers N devices through the API-key
registration, opens one WebSocket per device (/api/websocket/<id>, agent contract 6.3: hello, hello_ack),
reads the server's RSS and socket gauge, then changes devices' install configs M times and measures how long
each signal takes to reach its socket. Uses Debian's python3-websockets."""
import asyncio, base64, json, os, random, statistics, sys, time

import websockets

host = "127.0.0.1"
port, key, pid, n, rounds, metrics_port = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                           int(sys.argv[5]), int(sys.argv[6]))


async def request(method, path, token=None, body=None):
    r, w = await asyncio.open_connection(host, port)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    w.write(head.encode() + b"\r\n" + data)
    await w.drain()
    raw = await r.read()
    w.close()
    status = int(raw.split(b" ", 2)[1])
    return status, raw.split(b"\r\n\r\n", 1)[1]


def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])


async def gauge(name):
    r, w = await asyncio.open_connection(host, metrics_port)
    w.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = (await r.read()).decode()
    w.close()
    return next((l.split()[1] for l in text.splitlines() if l.startswith(name + " ")), "?")


async def register(i, sem):
    async with sem:
        body = {"device_public_id": f"00000000-0000-4000-8000-{i:012d}", "name": f"d{i}",
                "dev_pk": base64.b64encode(os.urandom(32)).decode()}
        for _ in range(50):  # 503: the database pool's queue is full; come back
            st, payload = await request("POST", "/apiv1/me/devices", key, body)
            if st != 503:
                break
            await asyncio.sleep(0.2)
        assert st == 201, (st, payload)
        d = json.loads(payload)["data"]
        return d["device"]["id"], d["session"]["access_token"]


async def open_socket(dev, sem):
    async with sem:
        ws = await websockets.connect(f"ws://{host}:{port}/api/websocket/{dev[0]}", ping_interval=None,
                                      extra_headers={"Authorization": f"Bearer {dev[1]}"}, open_timeout=60)
        hello = json.loads(await ws.recv())
        assert hello["name"] == "lifecycle.hello", hello
        await ws.send(json.dumps({"type": "event", "name": "lifecycle.hello_ack",
                                  "payload": {"connection_id": hello["payload"]["connection_id"], "resume_token": ""}}))
        return ws


async def main():
    t0 = time.monotonic()
    sem = asyncio.Semaphore(8)
    devices = await asyncio.gather(*(register(i, sem) for i in range(n)))
    print(f"registered {n} devices in {time.monotonic() - t0:.1f} s")
    await asyncio.sleep(1)
    rss_before = rss_kb()
    t1 = time.monotonic()
    sockets = await asyncio.gather(*(open_socket(d, asyncio.Semaphore(256)) for d in devices))
    print(f"{n} sockets open (hello + hello_ack) in {time.monotonic() - t1:.1f} s")
    await asyncio.sleep(3)
    rss_open = rss_kb()
    print(f"server RSS {rss_before} kB before, {rss_open} kB with {n} idle sockets "
          f"({(rss_open - rss_before) / n:.1f} kB per socket); gauge certctrl_device_websockets_open "
          f"{await gauge('certctrl_device_websockets_open')}; threads {len(os.listdir(f'/proc/{pid}/task'))}")
    closed = [s for s in sockets if s.closed]
    if closed:
        codes = {}
        for s in closed:
            codes[(s.close_code, s.close_reason)] = codes.get((s.close_code, s.close_reason), 0) + 1
        print(f"{len(closed)} sockets closed by the server before the changes: {codes}")
    lat = []
    for k in range(rounds):
        i = random.randrange(n)
        changed = time.monotonic()
        st, _ = await request("PUT", f"/apiv1/me/devices/{devices[i][0]}/install-config", key, {"installs": []})
        assert st == 200, st
        try:
            while True:
                m = json.loads(await asyncio.wait_for(sockets[i].recv(), 10))
                if m.get("name") == "updates.signal":
                    break
        except (asyncio.TimeoutError, websockets.ConnectionClosed) as e:
            print(f"device {devices[i][0]}: no signal ({type(e).__name__}, socket closed={sockets[i].closed})")
            continue
        lat.append((time.monotonic() - changed) * 1000)
        await asyncio.sleep(random.uniform(0.05, 0.5))  # not in step with the server's 250 ms poller
    lat.sort()
    print(f"change -> signal on the socket, {rounds} changes with {n} sockets open (PUT included): median "
          f"{statistics.median(lat):.0f} ms, p90 {lat[int(0.9 * (len(lat) - 1))]:.0f} ms, max {lat[-1]:.0f} ms")
    print(f"server RSS at the end {rss_kb()} kB")
    await asyncio.gather(*(s.close() for s in sockets))


asyncio.run(main())
