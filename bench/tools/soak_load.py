#!/usr/bin/env python3
"""Load for bench/soak.sh: steady clients and connection churn against redis-sidecar.

  soak_load.py --port P --seconds S [--steady 8] [--churn 4] [--rate 100] --out FILE

--steady clients each keep one connection and loop SET k v / GET k (checking the value) at
--rate pairs per second each; on a failure they record it and reconnect. --churn clients each
connect, SET, GET, QUIT and disconnect, again at --rate per second. Every socket operation has a
5 s timeout, and the whole run ends after --seconds. The result is one JSON object in --out:
counts and every failure with its wall-clock time, so that the caller can tell failures during
an upstream restart from the others. Standard library only.
"""

import argparse
import json
import os
import socket
import threading
import time

TIMEOUT = 5.0


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the sidecar")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed by the sidecar")
                self.buf += chunk
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value
        raise RuntimeError("unexpected reply type %r" % kind)

    def call(self, *args):
        self.sock.sendall(command(*args))
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.connects = 0
        self.failures = []

    def success(self, n=1):
        with self.lock:
            self.ok += n

    def failure(self, who, err):
        with self.lock:
            self.failures.append({"time": time.time(), "client": who, "error": str(err)[:200]})


def steady(i, args, stats, end):
    conn = None
    period = 1.0 / args.rate
    n = 0
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            if conn is None:
                conn = Conn(args.port)
            key = "soak:steady:%d" % i
            value = "%d:%d" % (i, n)
            if conn.call("SET", key, value) != b"OK":
                raise RuntimeError("SET did not answer OK")
            got = conn.call("GET", key)
            # A restart empties the cache (no persistence): nil is expected once, after it.
            if got is not None and got != value.encode():
                raise RuntimeError("GET returned %r, not %r" % (got, value))
            stats.success(2)
            n += 1
        except (OSError, RuntimeError, ValueError) as e:
            stats.failure("steady-%d" % i, e)
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.05)
        time.sleep(max(0.0, period - (time.monotonic() - started)))
    if conn is not None:
        conn.close()


def churn(i, args, stats, end):
    period = 1.0 / args.rate
    n = 0
    while time.monotonic() < end:
        started = time.monotonic()
        conn = None
        try:
            conn = Conn(args.port)
            with stats.lock:
                stats.connects += 1
            key = "soak:churn:%d" % i
            conn.call("SET", key, str(n))
            conn.call("GET", key)
            conn.call("QUIT")
            stats.success(3)
            n += 1
        except (OSError, RuntimeError, ValueError) as e:
            stats.failure("churn-%d" % i, e)
        finally:
            if conn is not None:
                conn.close()
        time.sleep(max(0.0, period - (time.monotonic() - started)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--steady", type=int, default=8)
    p.add_argument("--churn", type=int, default=4)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    stats = Stats()
    end = time.monotonic() + args.seconds
    threads = [threading.Thread(target=steady, args=(i, args, stats, end))
               for i in range(args.steady)]
    threads += [threading.Thread(target=churn, args=(i, args, stats, end))
                for i in range(args.churn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.seconds + 60)
    with open(args.out + ".tmp", "w") as f:
        json.dump({"ok": stats.ok, "connects": stats.connects,
                   "failures": stats.failures}, f)
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
