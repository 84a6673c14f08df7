#!/usr/bin/env python3
"""What idle keep-alive connections cost a server: open N connections on loopback, each makes one
request and then sits idle, and report the server's memory before and after (RSS, and private
memory = Pss_Anon + Pss_Shmem from /proc/PID/smaps_rollup, summed over its processes), and the
difference per connection.

    python3 bench/idle.py --n 10000                       # ringstatic (target/release/ringstatic)
    python3 bench/idle.py --n 100000 --ringstatic PATH --nginx   # and nginx, same connections

Python standard library only; Linux only. Connections come from several source addresses
(127.0.0.2, 127.0.0.3, ...; about 28,000 ports each), so N may exceed one address's port range.
It raises RLIMIT_NOFILE for itself and the servers (as root, up to fs.nr_open); if a limit stops
it, it says which and reports the largest N reached. One worker per server, on CPU 0; the
server is stopped at the end."""

import argparse
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PORTS_PER_SOURCE = 25000
REQ = b"GET /i.html HTTP/1.1\r\nHost: bench\r\n\r\n"
BODY = b"x" * 100


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def memory_kb(pids):
    rss = private = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                        private += int(line.split()[1])
        except OSError:
            pass
    return rss, private


def tree(root):
    pids, todo = [], [root]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE (hard too, when root); returns the soft limit."""
    try:
        nr_open = int(open("/proc/sys/fs/nr_open").read())
    except OSError:
        nr_open = want
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(want, nr_open)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start(cmd, port_from_line, logfile):
    with open(logfile, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    port = None
    deadline = time.monotonic() + 10
    while port_from_line and port is None and time.monotonic() < deadline:
        for line in open(logfile, errors="replace"):
            if "listening on http://" in line:
                port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
        time.sleep(0.05)
    return p, port


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def open_idle(port, n, batch=500):
    """Opens up to n connections that each get one complete response; returns (sockets, why it
    stopped early or None)."""
    socks = []
    sel = selectors.DefaultSelector()
    why = None
    expect = None
    while len(socks) < n and why is None:
        pending = {}
        for i in range(len(socks), min(n, len(socks) + batch)):
            src = f"127.0.0.{2 + i // PORTS_PER_SOURCE}"
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.bind((src, 0))
                s.connect_ex(("127.0.0.1", port))
            except OSError as e:
                why = f"after {len(socks) + len(pending)} connections: {e}"
                break
            pending[s] = b""
            sel.register(s, selectors.EVENT_WRITE)
        sent = set()
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=1):
                s = key.fileobj
                if s not in sent:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        why = why or f"connect: {os.strerror(err)}"
                        sel.unregister(s)
                        s.close()
                        del pending[s]
                        continue
                    s.send(REQ)
                    sent.add(s)
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                try:
                    d = s.recv(65536)
                except OSError as e:
                    d = b""
                    why = why or f"recv: {e}"
                if not d:
                    why = why or "a connection was closed by the server"
                    sel.unregister(s)
                    s.close()
                    del pending[s]
                    continue
                buf = pending[s] + d
                pending[s] = buf
                if expect is None and b"\r\n\r\n" in buf:
                    head = buf.split(b"\r\n\r\n", 1)[0]
                    expect = len(head) + 4 + len(BODY)
                if expect is not None and len(buf) >= expect:
                    sel.unregister(s)
                    socks.append(s)
                    del pending[s]
        if pending:
            why = why or f"{len(pending)} connections got no response within 30 s"
            for s in pending:
                sel.unregister(s)
                s.close()
    return socks, why


def measure(label, cmd, port_from_line, port, n, logfile):
    p, got_port = start(cmd, port_from_line, logfile)
    port = got_port or port
    if port is None:
        stop(p)
        why = open(logfile, errors="replace").read().strip().replace("\n", " / ")[-300:]
        return f"| {label} | - | - | - | - | - | ! did not start: {why} |"
    try:
        time.sleep(0.5)
        warm, why = open_idle(port, 1)
        if not warm:
            return f"| {label} | - | - | - | - | ! did not answer: {why} |"
        for s in warm:
            s.close()
        time.sleep(0.5)
        before = memory_kb(tree(p.pid))
        t0 = time.monotonic()
        socks, why = open_idle(port, n)
        took = time.monotonic() - t0
        time.sleep(1)
        after = memory_kb(tree(p.pid))
        held = len(socks)
        per_rss = (after[0] - before[0]) * 1024 / held if held else 0
        per_priv = (after[1] - before[1]) * 1024 / held if held else 0
        log(f"{label}: {held} idle connections in {took:.1f} s" + (f"; stopped: {why}" if why else ""))
        if why or os.environ.get("IDLE_SHOW_LOG"):
            log(f"{label}'s log:\n" + open(logfile, errors="replace").read()[-2000:])
        for s in socks:
            s.close()
        note = f"stopped at {held}: {why}" if held < n else ""
        return (f"| {label} | {held:,} | {after[0] / 1024:.1f} MiB | {after[1] / 1024:.1f} MiB | "
                f"{per_rss:.0f} B | {per_priv:.0f} B | {note} |")
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="idle connections to hold (default 10000)")
    ap.add_argument("--ringstatic", action="append", default=[],
                    help="LABEL=PATH or PATH of a ringstatic binary (repeatable; default target/release/ringstatic)")
    ap.add_argument("--nginx", action="store_true", help="also measure nginx (one worker, same limits)")
    a = ap.parse_args()
    fds = raise_nofile(a.n + 1000)
    if fds < a.n + 100:
        log(f"RLIMIT_NOFILE is {fds}: at most about {fds - 100} connections can be held")
    root = tempfile.mkdtemp(prefix="ringstatic-idle-")
    # Readable by everyone: started as root, the servers' workers run as an unprivileged user.
    os.chmod(root, 0o755)
    with open(os.path.join(root, "i.html"), "wb") as f:
        f.write(BODY)
    os.chmod(os.path.join(root, "i.html"), 0o644)
    rows = []
    bins = a.ringstatic or ["ringstatic=target/release/ringstatic"]
    try:
        for b in bins:
            label, _, path = b.rpartition("=")
            label = label or "ringstatic"
            # No deferred accept (nginx here has none either), and a long header timeout (a client
            # starved of CPU may take seconds to send): a burst of connects whose requests
            # are deferred fills the listener's SYN queue, and loopback then resets some of them.
            cmd = [path, "--listen", "127.0.0.1:0", "--workers", "1", "--max-connections", str(a.n + 100),
                   "--keepalive-timeout", "600", "--header-timeout", "120", "--defer-accept", "off", root]
            rows.append(measure(label, cmd, True, None, a.n, os.path.join(root, f"{label}.log")))
        if a.nginx and shutil.which("nginx"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            conf = os.path.join(root, "nginx.conf")
            with open(conf, "w") as f:
                f.write(f"""daemon off; master_process on; worker_processes 1; pid {root}/nginx.pid;
error_log {root}/error.log; worker_rlimit_nofile {a.n + 1000};
events {{ worker_connections {a.n + 100}; }}
http {{ access_log off; keepalive_timeout 600; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
""")
            rows.append(measure("nginx", ["nginx", "-c", conf, "-p", root], False, port, a.n,
                                os.path.join(root, "nginx.out")))
        elif a.nginx:
            log("skipped: nginx is not installed")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{a.n:,} idle keep-alive connections (one request each), one worker on CPU 0\n")
    print("| server | held | RSS after | private after | RSS / connection | private / connection | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
