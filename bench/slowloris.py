#!/usr/bin/env python3
"""Hostile clients for bench/slowloris.sh: N slowloris connections spread over loopback source addresses
(127.0.0.2 ...), each sending a header line now and then and never finishing its request, plus a loop of
header bombs (64 KiB of headers) and body bombs (8 MiB announced without credentials). Runs until killed;
prints, every second, how many slow connections are open and how the bombs were answered."""
import socket
import sys
import threading
import time

port = int(sys.argv[1])
count = int(sys.argv[2])
sources = int(sys.argv[3]) if len(sys.argv) > 3 else 4
refused = 0
closed = 0
bombs = {}
lock = threading.Lock()
conns = []


def open_slow(i):
    global refused
    src = '127.0.0.%d' % (2 + i % sources)
    try:
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(('127.0.0.1', port))
        s.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n')
        return s
    except OSError:
        with lock:
            refused += 1
        return None


def bomb_loop():
    while True:
        for name, req in (('header', b'GET /health HTTP/1.1\r\nHost: x\r\nX-Bomb: ' + b'a' * 65536 + b'\r\n\r\n'),
                          ('body', b'POST /auth/general HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                                   b'Content-Length: 8388608\r\n\r\n' + b'{' * 65536)):
            try:
                s = socket.create_connection(('127.0.0.1', port), timeout=5)
                s.sendall(req)
                status = s.recv(64).split(b' ')[1].decode()
                s.close()
            except (OSError, IndexError):
                status = 'closed'
            with lock:
                bombs[(name, status)] = bombs.get((name, status), 0) + 1
        time.sleep(0.01)


for i in range(count):
    c = open_slow(i)
    if c:
        conns.append(c)
threading.Thread(target=bomb_loop, daemon=True).start()
n = 0
while True:
    time.sleep(1)
    n += 1
    alive = []
    for c in conns:
        try:
            c.sendall(b'X-Slow-%d: y\r\n' % n)  # one more header line, never the end of the request
            alive.append(c)
        except OSError:
            closed += 1
    conns = alive
    with lock:
        print('t=%ds slow open=%d refused=%d closed-by-server=%d bombs=%s' % (
            n, len(conns), refused, closed, sorted(bombs.items())), flush=True)
