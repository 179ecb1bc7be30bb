#!/usr/bin/env python3
"""vsed-clients.py - raw-socket HTTP clients for the t-vsed-*.sh tests:
many concurrent connections, idle and slow clients, and a request held
in flight across a shutdown.  Prints one result line; exit 0 on success.
"""
import selectors
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def many(port, n):
    """n connections open at once, each with one request in flight."""
    socks = []
    for _ in range(n):
        socks.append(connect(port))
    req = b"GET /v1/resources?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    for s in socks:
        s.sendall(req)
    ok = 0
    bad = {}
    for s in socks:
        try:
            status, _ = read_response(s)
        except OSError as e:
            status = str(e)
        if status == 200:
            ok += 1
        else:
            bad[status] = bad.get(status, 0) + 1
        s.close()
    print(f"{ok} of {n} answered 200; other: {bad}")
    return ok == n


def closed_within(s, limit):
    """Seconds until the server closed s, or None if not within limit."""
    t0 = time.monotonic()
    s.settimeout(limit)
    try:
        while True:
            if not s.recv(4096):
                return time.monotonic() - t0
    except (socket.timeout, TimeoutError):
        return None
    except OSError:
        return time.monotonic() - t0


def idle(port, limit):
    s = connect(port)
    t = closed_within(s, limit)
    print(f"idle connection closed after {t}")
    return t is not None


def slow(port, limit):
    """Headers, then half the body, then nothing."""
    s = connect(port)
    s.sendall(b"POST /v1/reap HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{ ")
    t = closed_within(s, limit)
    print(f"stalled body closed after {t}")
    return t is not None


def drip(port, limit):
    """A body sent one byte a time, forever: cut by request_timeout."""
    s = connect(port)
    s.sendall(b"POST /v1/reap HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < limit:
            s.sendall(b" ")
            time.sleep(0.2)
    except OSError:
        print(f"dripping body cut after {time.monotonic() - t0:.1f}s")
        return True
    print("dripping body never cut")
    return False


def inflight(port, path):
    """Send all but the last body byte, say 'ready', wait for a line on
    stdin, send the rest; print the status."""
    body = b'{"machine":"volume","id":"inflight"}'
    s = connect(port)
    s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" +
              body[:-1])
    print("ready", flush=True)
    sys.stdin.readline()
    s.sendall(body[-1:])
    status, resp = read_response(s)
    print(f"status {status}")
    return status == 201


def main():
    what, port = sys.argv[1], int(sys.argv[2])
    arg = sys.argv[3]
    fn = {"many": lambda: many(port, int(arg)),
          "idle": lambda: idle(port, float(arg)),
          "slow": lambda: slow(port, float(arg)),
          "drip": lambda: drip(port, float(arg)),
          "inflight": lambda: inflight(port, arg)}[what]
    sys.exit(0 if fn() else 1)


if __name__ == "__main__":
    main()
