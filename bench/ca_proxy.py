#!/usr/bin/env python3
"""A CA that enforces a request rate: an HTTPS proxy in front of pebble for bench/acme_storm.sh.

Every request is forwarded to pebble with its Host header kept (pebble builds its URLs from it, so they name
the proxy), unless `limit` requests arrived in the last second: then 429 rateLimited with Retry-After: 1, as
a public CA answers. Prints the counts on SIGTERM and to STATS_FILE every second.

Usage: ca_proxy.py PORT CERT KEY PEBBLE_ORIGIN PEBBLE_CA LIMIT STATS_FILE
"""
import collections
import http.client
import http.server
import json
import signal
import ssl
import sys
import threading
import time
import urllib.parse

port, cert, key, origin, pebble_ca, limit, stats_file = sys.argv[1:8]
limit = int(limit)
upstream = urllib.parse.urlparse(origin)
lock = threading.Lock()
recent = collections.deque()
stats = {"forwarded": 0, "refused": 0, "peak_per_second": 0}
local = threading.local()
upstream_ctx = ssl.create_default_context(cafile=pebble_ca)


def upstream_conn():
    if getattr(local, "conn", None) is None:
        local.conn = http.client.HTTPSConnection(upstream.hostname, upstream.port, context=upstream_ctx, timeout=60)
    return local.conn


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        now = time.monotonic()
        with lock:
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= limit:
                stats["refused"] += 1
                refused = True
            else:
                recent.append(now)
                stats["peak_per_second"] = max(stats["peak_per_second"], len(recent))
                refused = False
        if refused:
            data = b'{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many requests"}'
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
        for attempt in range(2):
            try:
                c = upstream_conn()
                c.request(self.command, self.path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                local.conn = None
                if attempt == 1:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
        with lock:
            stats["forwarded"] += 1
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "content-length", "transfer-encoding", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
server.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)


def dump(*_):
    with lock:
        text = json.dumps(stats)
    with open(stats_file, "w") as f:
        f.write(text)


def stop(*_):
    dump()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)


def dumper():
    while True:
        time.sleep(1)
        dump()


threading.Thread(target=dumper, daemon=True).start()
server.serve_forever()
