#!/usr/bin/env python3
"""A do-nothing Docker API server for one purpose: measuring what `docker run --rm IMG true`
costs the docker CLI itself (process start, requests, exit) when the daemon answers at once.
It runs no container: ping, create, attach (101), wait and start get canned answers; wait is
answered when start comes (at once if it came first; after 0.5 s if none comes). Not a daemon to use for anything else.
   null_daemon.py SOCKET_PATH"""
import json
import os
import socket
import sys
import threading

HEAD = "Api-Version: 1.47\r\nOstype: linux\r\nServer: null\r\nDocker-Experimental: false\r\n"
ID = "0" * 64
pending = []
started = False  # since the last create: a wait that comes after the start is answered at once
lock = threading.Lock()


def resp(code, reason, body=b"", ctype="application/json"):
    return (f"HTTP/1.1 {code} {reason}\r\n{HEAD}Content-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def release(start=False):
    global started
    with lock:
        started = started or start
        conns = pending[:]
        pending.clear()
    for kind, c in conns:
        try:
            if kind == "wait":
                b = b'{"StatusCode":0,"Error":null}\n'
                c.sendall(f"{len(b):x}\r\n".encode() + b + b"\r\n0\r\n\r\n")
            c.close()
        except OSError:
            pass


def serve(c):
    global started
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        while len(buf) < length:
            buf += c.recv(65536)
        buf = buf[length:]
        route = path.split("?")[0]
        if route.endswith("/_ping"):
            c.sendall(resp(200, "OK", b"" if method == "HEAD" else b"OK", "text/plain"))
        elif route.endswith("/containers/create"):
            with lock:
                started = False
            c.sendall(resp(201, "Created", json.dumps({"Id": ID, "Warnings": []}).encode()))
        elif route.endswith("/attach"):
            c.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                      b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            with lock:
                pending.append(("attach", c))
            return
        elif route.endswith("/wait"):
            c.sendall(f"HTTP/1.1 200 OK\r\n{HEAD}Content-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n".encode())
            with lock:
                pending.append(("wait", c))
                now = started
            if now:
                release()
            else:
                threading.Timer(0.5, release).start()
            return
        elif route.endswith("/start"):
            c.sendall(resp(204, "No Content"))
            release(start=True)
        else:
            c.sendall(resp(404, "Not Found", b'{"message":"not here"}'))


def main():
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
