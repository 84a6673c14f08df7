"""HTTPS load for tests/tls.rs: client threads on keep-alive TLS connections (TLS 1.3 and 1.2
in turn) fetching files back to back and checking every byte, until a stop file appears.

It behaves like real clients: before reusing a connection it checks whether the server closed it
while idle (then it opens a new one, as curl does); a request on a *reused* connection that gets
no byte at all before the close (the keep-alive race) is retried once on a new connection, as
browsers and curl do for GET. Anything else that is not a complete, correct 200 is a failure.
Every fifth request says `Connection: close`, so handshakes go on all the time.

Each new connection records the serial number of the certificate it was shown, separately for
connections begun after the marker file appeared (the test creates it once a reload finished).

usage: tls_load.py PORT NAME CAFILE THREADS STOPFILE MARKFILE PROGRESSFILE URLPATH=LOCALFILE...
Prints its report when it stops, one `key value` line each (`serials_before SERIAL:COUNT,...`,
`failure WHAT` for each of the first failures); stops by itself after 90 s.
"""

import os
import select
import socket
import ssl
import sys
import threading
import time

PORT, NAME, CAFILE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
THREADS, STOP, MARK, PROGRESS = int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
TARGETS = []
for spec in sys.argv[8:]:
    path, local = spec.split("=", 1)
    with open(local, "rb") as f:
        TARGETS.append((path, f.read()))

lock = threading.Lock()
report = {
    "ok": 0,
    "failures": 0,
    "failure_log": [],
    "race_retries": 0,
    "idle_closed": 0,
    "connects": 0,
    "serials_before": {},
    "serials_after": {},
}
start = time.monotonic()
stopping = threading.Event()


def count(key, n=1):
    with lock:
        report[key] += n


def fail(what):
    with lock:
        report["failures"] += 1
        if len(report["failure_log"]) < 10:
            report["failure_log"].append("%d ms: %s" % ((time.monotonic() - start) * 1000, what))


def contexts():
    ctx13 = ssl.create_default_context(cafile=CAFILE)
    ctx13.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx12 = ssl.create_default_context(cafile=CAFILE)
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx13, ctx12


class Closed(Exception):
    """The connection ended; `got` bytes of the response had arrived."""

    def __init__(self, got, why):
        super().__init__(why)
        self.got = got


def connect(ctx):
    after = os.path.exists(MARK)
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    conn = ctx.wrap_socket(raw, server_hostname=NAME)
    serial = conn.getpeercert()["serialNumber"]
    with lock:
        report["connects"] += 1
        seen = report["serials_after" if after else "serials_before"]
        seen[serial] = seen.get(serial, 0) + 1
    return conn


def closed_while_idle(conn):
    """Whether the server closed `conn` while it was idle (close_notify, FIN or reset)."""
    if conn.pending() > 0:
        return False
    r, _, _ = select.select([conn], [], [], 0)
    if not r:
        return False
    conn.setblocking(False)
    try:
        data = conn.recv(1)
        if data:
            raise RuntimeError("unexpected bytes on an idle connection: %r" % data)
        return True
    except ssl.SSLWantReadError:
        return False
    except (ssl.SSLError, OSError):
        return True
    finally:
        conn.settimeout(10)


def exchange(conn, path, body, close):
    """One GET; returns whether the server keeps the connection. Raises Closed or ValueError."""
    req = "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, NAME, "Connection: close\r\n" if close else "")
    try:
        conn.sendall(req.encode())
    except (ssl.SSLError, OSError) as e:
        raise Closed(0, "send: %r" % e)
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = conn.recv(65536)
        except (ssl.SSLError, OSError) as e:
            raise Closed(len(buf), "reading the head: %r" % e)
        if not chunk:
            raise Closed(len(buf), "closed before the head ended")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0]
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if not status.startswith("HTTP/1.1 200 "):
        raise ValueError("%s: status %r" % (path, status))
    length = int(headers.get("content-length", "-1"))
    if length != len(body):
        raise ValueError("%s: Content-Length %d, file has %d" % (path, length, len(body)))
    while len(rest) < length:
        try:
            chunk = conn.recv(min(1 << 20, length - len(rest)))
        except (ssl.SSLError, OSError) as e:
            raise Closed(len(buf), "reading the body at %d of %d: %r" % (len(rest), length, e))
        if not chunk:
            raise Closed(len(buf), "closed in the body at %d of %d" % (len(rest), length))
        rest += chunk
    if rest != body:
        raise ValueError("%s: body differs (%d bytes)" % (path, len(rest)))
    return not close and headers.get("connection", "").lower() != "close"


def client(n):
    ctx = contexts()[n % 2]
    conn = None
    i = n
    while not stopping.is_set():
        path, body = TARGETS[i % len(TARGETS)]
        close = i % 5 == 4
        i += 1
        try:
            reused = conn is not None
            if reused and closed_while_idle(conn):
                count("idle_closed")
                conn.close()
                conn, reused = None, False
            if conn is None:
                conn = connect(ctx)
            try:
                keep = exchange(conn, path, body, close)
            except Closed as e:
                conn.close()
                conn = None
                if not reused or e.got > 0:
                    raise
                count("race_retries")
                conn = connect(ctx)
                keep = exchange(conn, path, body, close)
            count("ok")
            if not keep:
                conn.close()
                conn = None
        except Exception as e:  # every other outcome is a failed request
            fail("%s: %r" % (path, e))
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)
    if conn is not None:
        conn.close()


threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
for t in threads:
    t.start()
while not os.path.exists(STOP) and time.monotonic() - start < 90:
    with lock:
        ok = report["ok"]
    with open(PROGRESS + ".tmp", "w") as f:
        f.write("%d\n" % ok)
    os.replace(PROGRESS + ".tmp", PROGRESS)
    time.sleep(0.05)
stopping.set()
for t in threads:
    t.join()
for key in ("ok", "failures", "race_retries", "idle_closed", "connects"):
    print("%s %d" % (key, report[key]))
for key in ("serials_before", "serials_after"):
    print("%s %s" % (key, ",".join("%s:%d" % kv for kv in sorted(report[key].items()))))
for f in report["failure_log"]:
    print("failure %s" % f)
