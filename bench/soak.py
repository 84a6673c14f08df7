#!/usr/bin/env python3
"""bench/soak.py - a long run of mixed, checked traffic against one ringstatic (bench/run.sh --soak).

What a benchmark cannot show: that nothing grows and nothing is ever served wrong over a long
run of everything at once. Client threads loop over keep-alive and closing requests, single,
multi and suffix ranges, If-None-Match revalidations, 404s, pipelined bursts, clients that reset
the connection in the middle of a body and clients that read slowly; meanwhile files are replaced
by rename (a new version each time) and the master gets SIGHUP every minute. Every body is
checked byte for byte against the version(s) of the file that could have been served. Samples
of the workers' and the master's RSS and open fds, and the server's CPU time per request, are
taken every 10 s; the first and last are compared at the end.

Python standard library only. Exit status 0 when every response checked out, 1 otherwise.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
# name -> size; sizes on both sides of the server's 64 KiB --inline-max (memory vs sendfile)
FILES = {"small.txt": 700, "page.html": 16_000, "mid.bin": 200_000, "big.bin": 1_500_000}
# How long a replaced version may still be served: the cache's --cache-valid, a response in
# flight to a slow reader, a client thread starved on a busy machine. Generous on purpose.
KEEP_SECS = 180


def version_bytes(name, version, size):
    rnd = random.Random(f"{name}/{version}")
    head = f"{name} version {version}\n".encode()
    return head + rnd.randbytes(size - len(head))


class Corpus:
    """The files and every recent version of each, replaced by rename."""

    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        self.versions = {n: [] for n in FILES}  # recent (replaced at, version, bytes), newest last
        self.counter = 0
        for n in FILES:
            self.replace(n)

    def replace(self, name):
        with self.lock:
            self.counter += 1
            v = self.counter
        data = version_bytes(name, v, FILES[name])
        now = time.time()
        with self.lock:
            # A version stays a candidate until KEEP_SECS after the one that replaced it.
            kept = [x for i, x in enumerate(self.versions[name])
                    if i + 1 == len(self.versions[name]) or now - self.versions[name][i + 1][0] < KEEP_SECS]
            self.versions[name] = kept + [(now, v, data)]
        tmp = self.root / f".{name}.tmp{v}"
        tmp.write_bytes(data)
        os.rename(tmp, self.root / name)

    def candidates(self, name):
        with self.lock:
            return [d for _, _, d in self.versions[name]]

    def explain(self, name, body, first=0):
        """Which version a wrong body is closest to, and where it first differs."""
        best = None
        for _, v, d in self.versions[name]:
            want = d[first:first + len(body)]
            same = next((i for i, (x, y) in enumerate(zip(body, want)) if x != y), min(len(body), len(want)))
            if best is None or same > best[1]:
                best = (v, same, len(want))
        if best is None:
            return "no versions"
        return f"closest: version {best[0]}, equal for {best[1]} of {len(body)} bytes (that version has {best[2]})"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []

    def add(self, kind, n=1):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def fail(self, what):
        with self.lock:
            self.failures.append(what)
            self.counts["FAILED"] = self.counts.get("FAILED", 0) + 1

    def total(self, kinds=None):
        with self.lock:
            return sum(v for k, v in self.counts.items() if k != "FAILED" and (kinds is None or k in kinds))


class Closed(Exception):
    """The server closed a connection before answering (a reload draining it): retried."""


def read_response(sock, buf, head_only=False):
    """One response from sock (with leftover bytes buf): (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            if buf:
                raise RuntimeError(f"EOF inside a head: {buf[:200]!r}")
            raise Closed()
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
    n = 0 if head_only or status == 304 else int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(max(65536, n - len(rest)))
        if not chunk:
            raise RuntimeError(f"EOF inside a body: {len(rest)} of {n} bytes, status {status}")
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def request(method, path, extra=(), close=False):
    lines = [f"{method} {path} HTTP/1.1", "Host: soak"] + list(extra)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_full(name, body, corpus, what):
    if body not in corpus.candidates(name):
        return f"{what}: {len(body)} bytes match no recent version of {name}; {corpus.explain(name, body)}"
    return None


def check_part(name, body, first, last, size, corpus, what):
    for data in corpus.candidates(name):
        if len(data) == size and data[first:last + 1] == body:
            return None
    return (f"{what}: bytes {first}-{last} of {name} match no recent version; "
            f"{corpus.explain(name, body, first)}")


def content_range(v):
    unit, _, rest = v.partition(" ")
    span, _, size = rest.partition("/")
    a, _, b = span.partition("-")
    return int(a), int(b), int(size)


class Client(threading.Thread):
    def __init__(self, addr, corpus, stats, stop, seed):
        super().__init__(daemon=True)
        self.addr, self.corpus, self.stats, self.stop = addr, corpus, stats, stop
        self.rnd = random.Random(seed)

    def connect(self):
        s = socket.create_connection(self.addr, timeout=60)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def run(self):
        kinds = [self.keepalive, self.closing, self.ranges, self.conditional, self.missing,
                 self.pipelined, self.reset_mid_body, self.slow_reader]
        weights = [30, 10, 15, 10, 8, 10, 4, 2]
        while not self.stop.is_set():
            kind = self.rnd.choices(kinds, weights)[0]
            try:
                kind()
            except Closed:
                self.stats.add("closed-by-server (retried)")
            except Exception as e:  # a wrong byte, a reset, a timeout: all failures
                self.stats.fail(f"{kind.__name__}: {type(e).__name__}: {e}")

    def pick(self):
        return self.rnd.choice(list(FILES))

    def get_checked(self, s, buf, name, close=False):
        s.sendall(request("GET", "/" + name, close=close))
        status, h, body, buf = read_response(s, buf)
        if status != 200:
            raise RuntimeError(f"GET /{name}: status {status}")
        err = check_full(name, body, self.corpus, f"GET /{name}")
        if err:
            self.stats.fail(err)
        return buf, h

    def keepalive(self):
        with self.connect() as s:
            buf = b""
            for i in range(self.rnd.randint(2, 8)):
                buf, h = self.get_checked(s, buf, self.pick())
                self.stats.add("keep-alive")
                if h.get("connection") == "close":  # a reload drains this worker
                    break

    def closing(self):
        with self.connect() as s:
            self.get_checked(s, b"", self.pick(), close=True)
            if s.recv(1):
                raise RuntimeError("bytes after a Connection: close response")
            self.stats.add("close")

    def ranges(self):
        name = self.pick()
        size = FILES[name]
        a = self.rnd.randrange(size)
        b = min(size - 1, a + self.rnd.randrange(1, 5000))
        spec = self.rnd.choice([f"{a}-{b}", f"-{self.rnd.randrange(1, size * 2)}", f"{a}-",
                                f"0-{a // 2},{a}-{b}"])
        with self.connect() as s:
            s.sendall(request("GET", "/" + name, [f"Range: bytes={spec}"]))
            status, h, body, _ = read_response(s, b"")
        if status == 206 and "content-range" in h:
            first, last, total = content_range(h["content-range"])
            err = check_part(name, body, first, last, total, self.corpus, f"Range {spec}")
        elif status == 206:
            err = self.check_multipart(name, h, body, spec)
        elif status == 200:
            err = check_full(name, body, self.corpus, f"Range {spec} (whole)")
        else:
            err = f"Range {spec} of /{name}: status {status}"
        if err:
            self.stats.fail(err)
        self.stats.add("range")

    def check_multipart(self, name, h, body, spec):
        ct = h.get("content-type", "")
        boundary = ct.partition("boundary=")[2].encode()
        if not boundary:
            return f"Range {spec}: 206 without Content-Range or boundary"
        parts = body.split(b"\r\n--" + boundary)
        if parts[0] != b"" or parts[-1] != b"--\r\n":
            return f"Range {spec}: multipart framing"
        for p in parts[1:-1]:
            head, _, data = p.partition(b"\r\n\r\n")
            cr = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-range:")]
            if not cr:
                return f"Range {spec}: a part without Content-Range"
            first, last, total = content_range(cr[0].split(b":", 1)[1].strip().decode())
            err = check_part(name, data, first, last, total, self.corpus, f"Range {spec} part")
            if err:
                return err
        return None

    def conditional(self):
        name = self.pick()
        with self.connect() as s:
            buf, h = self.get_checked(s, b"", name)
        with self.connect() as s:
            s.sendall(request("GET", "/" + name, [f"If-None-Match: {h.get('etag', '')}"]))
            status, _, body, _ = read_response(s, b"")
        if status == 200:
            err = check_full(name, body, self.corpus, f"If-None-Match /{name} (changed)")
            if err:
                self.stats.fail(err)
        elif status != 304:
            self.stats.fail(f"If-None-Match /{name}: status {status}")
        self.stats.add("conditional")

    def missing(self):
        with self.connect() as s:
            s.sendall(request("GET", f"/no/such/{self.rnd.randrange(1000)}"))
            status, _, _, _ = read_response(s, b"")
        if status != 404:
            self.stats.fail(f"404 expected, got {status}")
        self.stats.add("404")

    def pipelined(self):
        names = [self.pick() for _ in range(self.rnd.randint(2, 6))]
        with self.connect() as s:
            s.sendall(b"".join(request("GET", "/" + n) for n in names))
            buf = b""
            for n in names:
                status, _, body, buf = read_response(s, buf)
                if status != 200:
                    raise RuntimeError(f"pipelined /{n}: status {status}")
                err = check_full(n, body, self.corpus, f"pipelined /{n}")
                if err:
                    self.stats.fail(err)
                self.stats.add("pipelined")

    def reset_mid_body(self):
        s = self.connect()
        s.sendall(request("GET", "/big.bin"))
        s.recv(self.rnd.randint(1, 100_000))
        # SO_LINGER 0: close() sends a RST with the rest of the body still on its way.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        self.stats.add("reset mid-body")

    def slow_reader(self):
        with self.connect() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.sendall(request("GET", "/mid.bin"))
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    raise Closed()
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            while len(body) < n:
                time.sleep(0.05)
                chunk = s.recv(8192)
                if not chunk:
                    raise RuntimeError(f"slow reader cut off at {len(body)} of {n}")
                body += chunk
        err = check_full("mid.bin", body, self.corpus, "slow reader")
        if err:
            self.stats.fail(err)
        self.stats.add("slow reader")


# ---- the server's processes ---------------------------------------------------------

def stat_fields(pid):
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return raw[raw.rindex(b")") + 2:].split()


def children(pid):
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_secs(master):
    """The server's CPU time: the master's own and its reaped children's, plus live workers'."""
    f = stat_fields(master)
    ticks = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    for w in children(master):
        try:
            g = stat_fields(w)
            ticks += int(g[11]) + int(g[12])
        except OSError:
            pass
    return ticks / CLK_TCK


def sample(master, stats, t0):
    ws = children(master)
    return {
        "t": round(time.time() - t0),
        "requests": stats.total(),
        "cpu_s": cpu_secs(master),
        "worker_rss_kib": [rss_kib(w) for w in ws],
        "worker_fds": [fds(w) for w in ws],
        "master_rss_kib": rss_kib(master),
        "master_fds": fds(master),
    }


def main(argv):
    p = argparse.ArgumentParser(prog="bench/run.sh --soak MINUTES", description=__doc__.split("\n\n")[0])
    p.add_argument("--soak", type=float, required=True, metavar="MINUTES", help="how long to run")
    p.add_argument("--ringstatic", default=os.environ.get("RINGSTATIC_BIN", str(REPO / "target/release/ringstatic")))
    p.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    p.add_argument("--workers", default="1", help="the server's --workers (default 1)")
    p.add_argument("--hup-every", type=float, default=60, help="seconds between SIGHUPs (default 60)")
    p.add_argument("--rename-every", type=float, default=2, help="seconds between file replacements (default 2)")
    p.add_argument("--results", help="results directory (default bench/results/soak-<UTC timestamp>)")
    a = p.parse_args(argv)
    if a.soak <= 0:
        p.error("--soak takes a positive number of minutes")

    results = Path(a.results or REPO / "bench/results" / time.strftime("soak-%Y%m%d-%H%M%S", time.gmtime()))
    results.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ringstatic-soak-"))
    root = tmp / "root"
    root.mkdir()
    corpus = Corpus(root)
    conf = tmp / "ringstatic.conf"
    conf.write_text(f"root {root}\nworkers {a.workers}\n")
    server = subprocess.Popen([a.ringstatic, "--config", str(conf), "--listen", "127.0.0.1:0",
                               "--error-log", str(tmp / "error.log")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stats, stop = Stats(), threading.Event()
    timeline = []
    try:
        line = ""
        for _ in range(50):
            line = server.stdout.readline()
            if not line or "listening on http://" in line:
                break
        if "listening on http://" not in line:
            sys.exit(f"soak: ringstatic did not start: {line!r}")
        host, port = line.strip().rsplit("/", 1)[-1].rsplit(":", 1)
        addr = (host, int(port))
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        t0 = time.time()
        clients = [Client(addr, corpus, stats, stop, i) for i in range(a.clients)]
        for c in clients:
            c.start()
        end = t0 + a.soak * 60
        next_hup, next_rename, next_sample = t0 + a.hup_every, t0, t0 + 10
        hups = renames = 0
        while time.time() < end:
            now = time.time()
            if now >= next_rename:
                corpus.replace(random.choice(list(FILES)))
                renames += 1
                next_rename += a.rename_every
            if now >= next_hup:
                os.kill(server.pid, signal.SIGHUP)
                hups += 1
                next_hup += a.hup_every
            if now >= next_sample:
                timeline.append(sample(server.pid, stats, t0))
                s = timeline[-1]
                print(f"soak: {s['t']:>5} s  {s['requests']:>8} requests  worker RSS {s['worker_rss_kib']} KiB"
                      f"  fds {s['worker_fds']}  master RSS {s['master_rss_kib']} KiB fds {s['master_fds']}"
                      f"  failures {len(stats.failures)}", flush=True)
                next_sample = max(next_sample + 10, time.time() + 5)
            time.sleep(0.05)
        stop.set()
        for c in clients:
            c.join(timeout=60)
        timeline.append(sample(server.pid, stats, t0))
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        (results / "error.log").write_bytes((tmp / "error.log").read_bytes() if (tmp / "error.log").exists() else b"")
        shutil.rmtree(tmp, ignore_errors=True)

    def per_req(i, j):
        a_, b_ = timeline[i], timeline[j]
        n = b_["requests"] - a_["requests"]
        return (b_["cpu_s"] - a_["cpu_s"]) * 1e6 / n if n else float("nan")

    first, last = timeline[0], timeline[-1]
    report = {
        "minutes": a.soak, "clients": a.clients, "workers": a.workers, "sighups": hups,
        "renames": renames, "requests": stats.counts, "failures": stats.failures[:50],
        "cpu_us_per_request_first_interval": per_req(0, 1) if len(timeline) > 1 else None,
        "cpu_us_per_request_last_interval": per_req(-2, -1) if len(timeline) > 1 else None,
        "start": first, "end": last, "timeline": timeline,
    }
    (results / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nsoak: {a.soak:g} min, {a.clients} clients, --workers {a.workers}: {stats.total()} requests, "
          f"{hups} SIGHUPs, {renames} files replaced by rename")
    for k, v in sorted(stats.counts.items()):
        print(f"  {k:<28} {v}")
    print(f"  {'':<10} {'worker RSS KiB':>16} {'worker fds':>12} {'master RSS KiB':>15} {'master fds':>11} {'CPU us/req':>11}")
    for label, s, cpu in (("start", first, report["cpu_us_per_request_first_interval"]),
                          ("end", last, report["cpu_us_per_request_last_interval"])):
        print(f"  {label:<10} {str(s['worker_rss_kib']):>16} {str(s['worker_fds']):>12} "
              f"{s['master_rss_kib']:>15} {s['master_fds']:>11} {cpu if cpu is None else round(cpu, 1):>11}")
    print(f"  (start: {first['t']} s in; CPU per request over the first and the last sampling interval)")
    print(f"  results: {results / 'soak.json'}")
    if stats.failures:
        print(f"\nsoak: {len(stats.failures)} FAILED checks; the first ones:")
        for f in stats.failures[:10]:
            print(f"  {f}")
        return 1
    print("soak: every response checked out")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
