#!/usr/bin/env python3
"""ringstatic bench: ringstatic beside nginx (and optionally h2o, lighttpd) under wrk.

Run it through bench/run.sh, which installs the tools and builds ringstatic first.
Python standard library only, plus the `brotli` tool for the `site` scenario's check of
brotli bodies. Linux only (/proc, taskset).

The steps, in the order this file runs them:
  1. options -> placement (server CPUs, wrk CPUs), scenarios, servers
  2. a deterministic corpus in a temporary directory (seeded PRNG)
  3. for each scenario: start every server fresh on the server CPUs; check that each
     serves the scenario's files with status 200, the right Content-Length and the
     right bytes; warm each up; then rounds A B A B ... of wrk, reading the servers'
     CPU time from /proc right before and right after each run; stop every server
  4. medians, pairwise ratios against nginx -> Markdown table (stdout, table.md),
     CSV, JSON and an SVG chart in bench/results/<timestamp>/

Every process it starts lives in its own session and is killed by process group on
exit, on an exception and on SIGINT/SIGTERM/SIGHUP; after each stop it checks that
no process of the server remains.
"""

import argparse
import atexit
import csv
import datetime
import gzip
import hashlib
import html
import http.client
import json
import math
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # importing the module beside this file leaves no __pycache__ in bench/
import tlsbench  # noqa: E402  (bench/tlsbench.py: --tls)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
SEED = 0x5EED_2A11
CACHE_VALID_S = 1  # ringstatic --cache-valid and nginx open_file_cache_valid: equal by design
# ringstatic --cache-entries and nginx open_file_cache max: the same budget of cached files for
# both (ringstatic's default, 10,000, is less than many-files' 20,000 files; nginx's is none).
OPEN_FILES_MAX = 200000
WANT_NOFILE = 262144

# ---------------------------------------------------------------------------------------
# scenarios

SCENARIOS = {
    # name: path (None: the many-files Lua script), connections, extra headers, meaning
    "1k": ("/index.html", 64, [], "1 KiB HTML page, 64 keep-alive connections"),
    "16k": ("/app.js", 64, [], "16 KiB JavaScript file, 64 keep-alive connections"),
    "1m": ("/image.bin", 64, [], "1 MiB binary, 64 keep-alive connections"),
    "100m": ("/big.bin", 4, [], "100 MiB binary, 4 keep-alive connections"),
    "1k-close": ("/index.html", 64, ["Connection: close"],
                 "1 KiB HTML page, a new connection per request (Connection: close), 64 at a time"),
    "many-files": (None, 64, [],
                   "random paths over the 20,000-file site (deterministic list, wrk Lua script), 64 keep-alive connections"),
    "1k-c1000": ("/index.html", 1000, [], "1 KiB HTML page, 1,000 keep-alive connections"),
    "1k-c10000": ("/index.html", 10000, [], "1 KiB HTML page, 10,000 keep-alive connections"),
    "site": ("/site.js", 64, ["Accept-Encoding: gzip, deflate, br, zstd"],
             "~100 KiB JavaScript asking for a content coding as a browser does (Accept-Encoding: gzip, "
             "deflate, br, zstd), 64 keep-alive connections: ringstatic sends its precompressed site.js.br, "
             "ringstatic-fly (--precompressed off) compresses it once per worker into its cache, nginx sends "
             "site.js.gz (gzip_static on), nginx-gzip compresses every response (gzip on, level 6)"),
}
SCENARIOS["1k-close-full"] = (
    "/index.html", 64, ["Connection: close"],
    "1 KiB HTML page, a new connection per request (Connection: close), 64 at a time, each with a full TLS "
    "handshake: wrk runs with bench/wrk-no-resume.c preloaded, which drops the session it would offer "
    "(--tls only)")
SITE_ASSET = 100 * 1024
QUICK_SCENARIOS = ["1k", "16k", "1m", "1k-close"]
# --tls: the scenarios run over HTTPS by default (with --quick too). wrk resumes the previous
# connection's session on its own, so `1k-close` over TLS measures resumed handshakes and
# `1k-close-full` full ones.
TLS_SCENARIOS = ["1k", "16k", "1m", "1k-close", "1k-close-full"]
TLS_ONLY = {"1k-close-full"}
NO_RESUME = {"1k-close-full"}  # wrk with wrk-no-resume.so preloaded
# An idle server (one not being measured) using more than this share of a CPU spoils the round.
IDLE_CPU_MAX = 0.02
SCALING_SCENARIOS = ["1k", "16k"]

SITE_DIRS = (10, 10)  # site/sNN/dNN: 100 leaf directories
SITE_FILES_PER_DIR = 200  # 20,000 files
SITE_MIN, SITE_MAX = 200, 64 * 1024
SITE_EXTS = ["html", "css", "js", "svg", "png"]
MANY_PATHS = 50_000  # length of the deterministic request list for many-files

MIME = {
    "html": "text/html",
    "css": "text/css",
    "js": "application/javascript",
    "svg": "image/svg+xml",
    "png": "image/png",
    "bin": "application/octet-stream",
}

# ---------------------------------------------------------------------------------------
# process bookkeeping: everything started is killed, whatever happens

LIVE = {}  # pid -> (Popen, what)


def spawn(argv, what, **kw):
    """Start argv in its own session (so its whole process group can be killed)."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    LIVE[p.pid] = (p, what)
    return p


def forget(p):
    LIVE.pop(p.pid, None)


def kill_group(p, grace=3.0):
    """SIGTERM the leader, then SIGKILL the whole group after `grace` seconds."""
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # the group may outlive its leader (workers whose master died)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


_cleaning = False


def cleanup():
    global _cleaning
    if _cleaning:
        return
    _cleaning = True
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for pid, (p, what) in list(LIVE.items()):
        kill_group(p, grace=2.0)
        left = session_members(pid)
        for q in left:
            try:
                os.kill(q, signal.SIGKILL)
            except ProcessLookupError:
                pass
        LIVE.pop(pid, None)
    _cleaning = False


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------
# /proc

def read_stat(pid):
    """Fields of /proc/PID/stat after the command name, as a list (index 0 = field 3)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        s = f.read()
    return s[s.rindex(b")") + 2:].split()


def proc_tree(root):
    """root and all its descendants, via /proc/PID/task/*/children (fallback: ppid scan)."""
    out, stack = [], [root]
    have_children_file = os.path.exists(f"/proc/{root}/task/{root}/children")
    if not have_children_file:
        kids = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    kids.setdefault(int(read_stat(d)[1]), []).append(int(d))
                except (OSError, IndexError, ValueError):
                    pass
    while stack:
        p = stack.pop()
        if not os.path.exists(f"/proc/{p}"):
            continue
        out.append(p)
        if have_children_file:
            try:
                tasks = os.listdir(f"/proc/{p}/task")
            except OSError:
                continue
            for t in tasks:
                try:
                    with open(f"/proc/{p}/task/{t}/children") as f:
                        stack.extend(int(k) for k in f.read().split())
                except OSError:
                    pass
        else:
            stack.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    """utime + stime (fields 14, 15) plus cutime + cstime (16, 17: children already
    reaped, e.g. a worker that died and was restarted) of every pid, in clock ticks.
    /proc/PID/stat counts all threads of the process, io_uring's io-wq threads too."""
    total = 0
    for pid in pids:
        try:
            f = read_stat(pid)
        except (OSError, ValueError):
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total


def vm_hwm_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def private_kb(pids):
    """Private memory: Pss_Anon + Pss_Shmem from /proc/PID/smaps_rollup, summed over the
    processes (a page shared by several processes is split between them; the page cache's file
    pages are not counted, for any server). None where smaps_rollup cannot be read."""
    total, seen = 0, False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                        total += int(line.split()[1])
                        seen = True
        except OSError:
            pass
    return total if seen else None


def reset_hwm(pids):
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so each run has its own peak."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def session_members(sid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = read_stat(d)
                if int(f[3]) == sid and f[0] != b"Z":
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def parse_cpus(text):
    cpus = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.extend(range(int(a), int(b) + 1))
        else:
            cpus.append(int(part))
    return sorted(set(cpus))


def cpus_str(cpus):
    """[0,1,2,5] -> '0-2,5'"""
    out, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


# ---------------------------------------------------------------------------------------
# corpus

class Corpus:
    """Deterministic files under root/; everything derives from SEED."""

    def __init__(self, root, need_big, need_site):
        self.root = Path(root)
        self.site = []  # URL paths of the 20,000-file site, in creation order
        self.many_paths = []
        rng = random.Random(SEED)
        self._write("index.html", self._html(rng, 1024))
        self._write("app.js", self._js(rng, 16 * 1024))
        self._write("image.bin", rng.randbytes(1024 * 1024))
        # site: a text asset and its precompressed siblings (see write_siblings)
        self._write("site.js", self._js(random.Random(SEED + 400), SITE_ASSET))
        big_rng = random.Random(SEED + 100)
        if need_big:
            with open(self.root / "big.bin", "wb") as f:
                for _ in range(100):
                    f.write(big_rng.randbytes(1024 * 1024))
        if need_site:
            site_rng = random.Random(SEED + 200)
            pool = site_rng.randbytes(256 * 1024)
            lo, hi = math.log(SITE_MIN), math.log(SITE_MAX)
            n = 0
            for a in range(SITE_DIRS[0]):
                for b in range(SITE_DIRS[1]):
                    d = self.root / "site" / f"s{a:02d}" / f"d{b:02d}"
                    d.mkdir(parents=True)
                    for _ in range(SITE_FILES_PER_DIR):
                        # log-uniform sizes: many small files, some up to 64 KiB
                        size = int(round(math.exp(site_rng.uniform(lo, hi))))
                        size = max(SITE_MIN, min(SITE_MAX, size))
                        off = site_rng.randrange(len(pool) - size)
                        name = f"f{n:05d}.{SITE_EXTS[n % len(SITE_EXTS)]}"
                        with open(d / name, "wb") as f:
                            f.write(pool[off:off + size])
                        self.site.append(f"/site/s{a:02d}/d{b:02d}/{name}")
                        n += 1
            pick = random.Random(SEED + 300)
            self.many_paths = [self.site[pick.randrange(len(self.site))] for _ in range(MANY_PATHS)]
        self._sha = {}

    def write_siblings(self, ringstatic):
        """site.js.gz (gzip 9, Python's zlib) for nginx's gzip_static, and site.js.br and .zst
        from `ringstatic compress` when the binary is at hand; all with site.js's mtime, as a
        site's build step leaves them."""
        src = self.root / "site.js"
        data = src.read_bytes()
        st = src.stat()
        gz = self.root / "site.js.gz"
        gz.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        os.utime(gz, ns=(st.st_atime_ns, st.st_mtime_ns))
        if not ringstatic or not os.access(ringstatic, os.X_OK):
            return
        work = Path(tempfile.mkdtemp(prefix="site-", dir=self.root.parent))
        try:
            shutil.copy2(src, work / "site.js")
            subprocess.run([ringstatic, "compress", "--quiet", str(work)], check=True,
                           stdout=subprocess.DEVNULL, timeout=120)
            for suffix in (".br", ".zst"):
                if (work / ("site.js" + suffix)).exists():
                    shutil.copy2(work / ("site.js" + suffix), self.root / ("site.js" + suffix))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write(self, rel, data):
        with open(self.root / rel, "wb") as f:
            f.write(data)

    @staticmethod
    def _words(rng, n):
        vocab = ["static", "ring", "file", "cache", "core", "worker", "request", "kernel", "socket",
                 "buffer", "page", "zero", "copy", "send", "queue", "event", "byte", "header"]
        return " ".join(rng.choice(vocab) for _ in range(n))

    def _html(self, rng, size):
        head = b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ringstatic bench</title></head>\n<body>\n"
        tail = b"\n</body></html>\n"
        body = b""
        while len(head) + len(body) + len(tail) < size:
            body += b"<p>" + self._words(rng, 12).encode() + b"</p>\n"
        return head + body[: size - len(head) - len(tail)] + tail

    def _js(self, rng, size):
        out, i = b"\"use strict\";\n", 0
        while len(out) < size:
            out += f"const v{i} = \"{self._words(rng, 6)}\"; // {rng.getrandbits(32):08x}\n".encode()
            i += 1
        return out[: size - 1] + b"\n"

    def expected(self, urlpath):
        """(size, sha256) of the file behind urlpath, read from disk once."""
        if urlpath not in self._sha:
            h = hashlib.sha256()
            n = 0
            with open(self.root / urlpath.lstrip("/"), "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
            self._sha[urlpath] = (n, h.hexdigest())
        return self._sha[urlpath]

    def write_lua(self, path):
        """A wrk script that walks the deterministic path list; each wrk thread starts
        at its own offset so threads do not request the same file at the same moment."""
        lines = ["-- generated by ringstatic bench/bench.py: deterministic random paths over the site",
                 "local paths = {"]
        for p in self.many_paths:
            lines.append(f'  "{p}",')
        lines += [
            "}",
            "local counter = 0",
            "function setup(thread)",
            "  thread:set(\"tid\", counter)",
            "  counter = counter + 1",
            "end",
            "local reqs, idx = {}, 1",
            "function init(args)",
            "  for i, p in ipairs(paths) do reqs[i] = wrk.format(\"GET\", p) end",
            "  idx = ((tid or 0) * 7919) % #reqs + 1",
            "end",
            "function request()",
            "  local r = reqs[idx]",
            "  idx = idx + 1",
            "  if idx > #reqs then idx = 1 end",
            "  return r",
            "end",
        ]
        Path(path).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------
# servers

class ServerError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_line(argv):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        text = r.stdout.decode(errors="replace").strip()
        return text.splitlines()[0] if text else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


class Server:
    """One server under test. Subclasses say how to configure and start it."""

    label = "?"
    note = ""  # where its configuration is not equivalent to ringstatic's, say so

    def __init__(self, ctx):
        self.ctx = ctx
        self.proc = None
        self.port = None
        self.seen = {}  # pid -> start time: every process of this instance ever observed
        self.starts = 0
        self.configs = {}  # file name -> text of the last configuration written

    def version(self):
        return "unknown"

    def applies(self, scenario):
        """Whether this server is measured in `scenario` (all are, except the floor)."""
        return True

    def prepare(self, wd, port, cpus, workers):
        """-> argv; may write configuration files into wd (and record them in self.configs)."""
        raise NotImplementedError

    def ready_port(self, wd, port, deadline):
        """The port to use once started; servers given port 0 say it on their output."""
        return port

    def start(self, cpus, workers):
        self.starts += 1
        wd = self.ctx.run_dir / f"{self.label}-{self.starts}"
        wd.mkdir(parents=True)
        port = free_port()
        argv = self.prepare(wd, port, cpus, workers)
        self.argv = ["taskset", "-c", cpus_str(cpus)] + argv
        self.log = wd / "output.log"
        with open(self.log, "wb") as log:
            self.proc = spawn(self.argv, self.label, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.seen = {}
        deadline = time.monotonic() + 15
        try:
            self.port = self.ready_port(wd, port, deadline)
            while True:
                self._alive_or_fail()
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise ServerError(f"{self.label} did not accept connections on 127.0.0.1:{self.port} within 15 s")
                    time.sleep(0.05)
            # let every worker come up before the first request
            time.sleep(0.3)
            self._alive_or_fail()
            self.remember()
        except BaseException:
            self.stop()
            raise

    def _alive_or_fail(self):
        if self.proc.poll() is not None:
            raise ServerError(f"{self.label} exited with status {self.proc.returncode}: {self.log_tail()}")

    def log_tail(self, n=600):
        try:
            return self.log.read_text(errors="replace")[-n:].strip() or "(no output)"
        except OSError:
            return "(no output)"

    def pids(self):
        return proc_tree(self.proc.pid)

    def remember(self):
        for pid in self.pids():
            try:
                self.seen.setdefault(pid, read_stat(pid)[19])
            except (OSError, IndexError):
                pass

    def stop(self):
        """SIGTERM the master, SIGKILL the group after a timeout, then check that no
        process of this instance remains (by session and by every pid ever seen)."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        kill_group(p, grace=5.0)
        forget(p)
        leftovers = set(session_members(p.pid))
        for pid, start in self.seen.items():
            try:
                if read_stat(pid)[19] == start and read_stat(pid)[0] != b"Z":
                    leftovers.add(pid)
            except (OSError, IndexError):
                pass
        if leftovers:
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
            still = [pid for pid in leftovers if os.path.exists(f"/proc/{pid}") and read_stat(pid)[0] != b"Z"]
            msg = f"{self.label}: processes {sorted(leftovers)} outlived the master and were killed"
            if still:
                msg += f"; STILL RUNNING: {still}"
            self.ctx.warn(msg)


class Nginx(Server):
    label = "nginx"

    def __init__(self, ctx, label="nginx"):
        super().__init__(ctx)
        self.label = label
        self.binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.scenario = None
        self.probe = False  # the TLS probe (probe_wrk_tls): log what each connection negotiated
        self.tls_log = None  # ... into this file

    def coding_lines(self):
        """What the `site` scenario turns on: the precompressed .gz sibling."""
        return "    gzip_static on;\n" if self.scenario == "site" else ""

    def version(self):
        return first_line([self.binary, "-v"]).replace("nginx version: ", "")

    def prepare(self, wd, port, cpus, workers):
        masks = " ".join("1" + "0" * c for c in cpus[:workers])
        types = "\n".join(f"        {t} {ext};" for ext, t in MIME.items())
        user = "user root;\n" if os.geteuid() == 0 else ""
        tls = self.ctx.tls
        ssl = " ssl" if tls else ""
        tls_lines = tls.nginx_lines(self.ctx.kernel_tls) if tls else ""
        access = "    access_log off;\n"
        if self.probe:
            self.tls_log = wd / "tls.log"
            access = (f"    log_format tls '{tlsbench.PROBE_LOG_FORMAT}';\n"
                      f"    access_log {self.tls_log} tls;\n")
        conf = f"""# written by ringstatic bench/bench.py
{user}worker_processes {workers};
worker_cpu_affinity {masks};
worker_rlimit_nofile {self.ctx.nofile};
daemon off;
master_process on;
pid {wd}/nginx.pid;
error_log {wd}/error.log warn;

events {{
    worker_connections 20000;
}}

http {{
{access}    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000000;
    open_file_cache max={OPEN_FILES_MAX} inactive=60s;
    open_file_cache_valid {CACHE_VALID_S}s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
    server_tokens off;
{self.coding_lines()}{tls_lines}    client_body_temp_path {wd}/client_body;
    types {{
{types}
    }}
    default_type application/octet-stream;

    server {{
        # deferred: TCP_DEFER_ACCEPT, which ringstatic (and h2o) set by default.
        listen 127.0.0.1:{port}{ssl} reuseport deferred backlog=65535;
        root {self.ctx.corpus.root};
    }}
}}
"""
        (wd / "nginx.conf").write_text(conf)
        self.configs["nginx.conf"] = conf
        return [self.binary, "-p", str(wd), "-e", str(wd / "error.log"), "-c", str(wd / "nginx.conf")]



class NginxGzip(Nginx):
    """nginx compressing every response (`gzip on`), measured in the `site` scenario only."""

    note = ("nginx-gzip (site scenario only): nginx with `gzip on; gzip_comp_level 6; gzip_types "
            "text/javascript ...` and gzip_static off: it compresses every response")

    def __init__(self, ctx):
        super().__init__(ctx, label="nginx-gzip")

    def applies(self, scenario):
        return scenario == "site"

    def coding_lines(self):
        return ("    gzip on;\n    gzip_comp_level 6;\n    gzip_min_length 1024;\n"
                "    gzip_types text/css text/javascript application/javascript application/json image/svg+xml;\n")


class Ringstatic(Server):
    label = "ringstatic"

    def __init__(self, ctx, binary, template=None, label="ringstatic", extra=(), other_build=False):
        super().__init__(ctx)
        self.label = label
        self.binary = binary
        self.template = template  # --server-cmd: argv with {port} {workers} {root} {cache_valid}
        self.extra = list(extra)  # --variant: extra arguments, {run} is this server's work directory
        self.other_build = other_build  # --build: a binary built elsewhere (e.g. before a change)
        self.only = None  # a scenario this row is measured in, alone (ringstatic-fly: site)

    def version(self):
        if self.template:
            return f"custom command: {' '.join(self.template)}"
        if self.other_build:
            return f"{self.binary}, {first_line([self.binary, '--version'])}"
        rev = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
        if rev == "unknown" or "fatal" in rev:
            rev = "no commit"
        else:
            dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.strip()
            if dirty:
                rev += "+dirty"
        return f"{rev}, {first_line([self.binary, '--version'])}"

    def applies(self, scenario):
        return self.only is None or scenario == self.only

    def prepare(self, wd, port, cpus, workers):
        if self.template:
            self.dynamic = "{port}" not in " ".join(self.template)
            tls = self.ctx.tls
            fill = {"port": port if not self.dynamic else 0, "workers": workers,
                    "root": str(self.ctx.corpus.root), "cache_valid": CACHE_VALID_S,
                    "tls_cert": str(tls.cert) if tls else "", "tls_key": str(tls.key) if tls else ""}
            return [a.format(**fill) for a in self.template]
        self.dynamic = True
        extra = [a.replace("{run}", str(wd)) for a in self.extra]
        tls = self.ctx.tls
        listen = ["--listen", "127.0.0.1:0,tls", "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)] if tls \
            else ["--listen", "127.0.0.1:0"]
        return [self.binary] + listen + ["--workers", str(workers), "--cache-valid", str(CACHE_VALID_S),
                                         "--cache-entries", str(OPEN_FILES_MAX)] + extra + [str(self.ctx.corpus.root)]

    def ready_port(self, wd, port, deadline):
        if not self.dynamic:
            return port
        # port 0: the server says where it listens ("listening on http://127.0.0.1:PORT", or
        # https:// for a TLS listener)
        scheme = "https" if self.ctx.tls else "http"
        pat = re.compile(r"listening on " + scheme + r"://127\.0\.0\.1:(\d+)")
        while True:
            m = pat.search(self.log.read_text(errors="replace"))
            if m:
                return int(m.group(1))
            self._alive_or_fail()
            if time.monotonic() > deadline:
                raise ServerError(f"{self.label} printed no 'listening on {scheme}://127.0.0.1:PORT' line within 15 s: "
                                  f"{self.log_tail()}")
            time.sleep(0.05)


class H2o(Server):
    label = "h2o"
    note = ("h2o 2.2 has no per-thread CPU pinning, no SO_REUSEPORT per thread and no open-file-cache "
            "setting: its num-threads threads share one listening socket and are confined to the server "
            "CPUs by taskset as a group")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.binary = shutil.which("h2o") or "/usr/bin/h2o"

    def version(self):
        return first_line([self.binary, "--version"])

    def prepare(self, wd, port, cpus, workers):
        user = "user: root\n" if os.geteuid() == 0 else ""
        types = "\n".join(f"        {t}: .{ext}" for ext, t in MIME.items())
        conf = f"""# written by ringstatic bench/bench.py
{user}pid-file: {wd}/h2o.pid
error-log: {wd}/error.log
num-threads: {workers}
max-connections: 20000
http1-request-timeout: 75
file.mime.settypes:
{types}
listen:
  host: 127.0.0.1
  port: {port}
hosts:
  default:
    paths:
      /:
        file.dir: {self.ctx.corpus.root}
"""
        (wd / "h2o.conf").write_text(conf)
        self.configs["h2o.conf"] = conf
        return [self.binary, "-m", "worker", "-c", str(wd / "h2o.conf")]


class Lighttpd(Server):
    label = "lighttpd"
    note = ("lighttpd has no per-worker CPU pinning or SO_REUSEPORT: with more than one worker "
            "(server.max-worker) they share one listening socket and are confined to the server CPUs "
            "by taskset as a group; with one worker it runs as a single process; its stat cache "
            "(engine 'simple') revalidates once a second; keep-alive requests are capped at 65535 "
            "per connection (its maximum)")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.binary = shutil.which("lighttpd") or "/usr/sbin/lighttpd"

    def version(self):
        return first_line([self.binary, "-v"])

    def prepare(self, wd, port, cpus, workers):
        types = ",\n".join(f'    ".{ext}" => "{t}"' for ext, t in MIME.items())
        worker = f"server.max-worker = {workers}\n" if workers > 1 else ""
        conf = f"""# written by ringstatic bench/bench.py
server.document-root = "{self.ctx.corpus.root}"
server.bind = "127.0.0.1"
server.port = {port}
server.pid-file = "{wd}/lighttpd.pid"
server.errorlog = "{wd}/error.log"
{worker}server.max-fds = {min(self.ctx.nofile, 65535)}
server.max-connections = 20000
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 75
server.network-backend = "sendfile"
server.stat-cache-engine = "simple"
index-file.names = ( "index.html" )
mimetype.assign = (
{types}
)
"""
        (wd / "lighttpd.conf").write_text(conf)
        self.configs["lighttpd.conf"] = conf
        return [self.binary, "-D", "-f", str(wd / "lighttpd.conf")]


class Floor(Ringstatic):
    """examples/floor.rs: a bare io_uring loop that answers every request with one file's bytes,
    prebuilt. Not a server but the yardstick for the kernel's share of a request (see the file)."""

    label = "floor"
    note = ("floor is not a server: a bare io_uring loop (examples/floor.rs) with ringstatic's ring setup "
            "that answers every request with one prebuilt response, parsing and looking up nothing; "
            "it shows the part of a request's CPU time that is the kernel's; measured only in "
            "single-file keep-alive scenarios of files up to 64 KiB")
    MAX_FILE = 64 * 1024

    def __init__(self, ctx, binary):
        super().__init__(ctx, binary, label="floor")
        self.scenario = None

    def version(self):
        return "examples/floor.rs at " + super().version().split(",")[0]

    def applies(self, scenario):
        path, _, headers, _ = SCENARIOS[scenario]
        return bool(path) and not headers and self.ctx.corpus.expected(path)[0] <= self.MAX_FILE

    def prepare(self, wd, port, cpus, workers):
        self.dynamic = True
        path, _, _, _ = SCENARIOS[self.scenario]
        return [self.binary, "--listen", "127.0.0.1:0", "--workers", str(workers),
                "--file", str(self.ctx.corpus.root / path.lstrip("/"))]


# ---------------------------------------------------------------------------------------
# checks and wrk

def decode_body(coding, body):
    """A coded body decoded, or None when this Python cannot decode the coding."""
    if coding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if coding == "br":
        # the brotli tool (Debian's `brotli`, installed by run.sh): the standard library has no
        # brotli, and a Python module would have to match whichever python3 runs this
        if not shutil.which("brotli"):
            return None
        r = subprocess.run(["brotli", "--decompress", "--stdout"], input=body, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=30)
        return r.stdout if r.returncode == 0 else b""
    return None


def check_file(port, urlpath, expected, close=False, headers=(), tls=None):
    """GET urlpath (with the scenario's extra `headers`); None if status 200, Content-Length and
    body match, else the reason. A body in a content coding must decode to the file's bytes (and
    its Content-Length is the coded length; a chunked one, nginx's gzip, has none). With `tls` (an
    ssl.SSLContext trusting the run's CA) over HTTPS, the server's chain verified."""
    size, sha = expected
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=tls)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hdrs = dict(h.split(": ", 1) for h in headers)
        if close:
            hdrs["Connection"] = "close"
        conn.request("GET", urlpath, headers=hdrs)
        r = conn.getresponse()
        coding = (r.getheader("Content-Encoding") or "identity").strip().lower()
        if coding != "identity":
            body = r.read()
            if r.status != 200:
                return f"GET {urlpath}: status {r.status}, expected 200"
            cl = r.getheader("Content-Length")
            if cl is not None and int(cl) != len(body):
                return f"GET {urlpath}: Content-Length {cl}, but {len(body)} bytes of {coding} came"
            plain = decode_body(coding, body)
            if plain is None:
                return f"GET {urlpath}: cannot check a {coding} body here (for br: apt-get install brotli)"
            if len(plain) != size or hashlib.sha256(plain).hexdigest() != sha:
                return f"GET {urlpath}: {coding} body decodes to {len(plain)} bytes that differ from the file"
            return None
        h, n = hashlib.sha256(), 0
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
        if r.status != 200:
            return f"GET {urlpath}: status {r.status}, expected 200"
        cl = r.getheader("Content-Length")
        if cl is None or int(cl) != size:
            return f"GET {urlpath}: Content-Length {cl}, expected {size}"
        if n != size or h.hexdigest() != sha:
            return f"GET {urlpath}: body of {n} bytes differs from the file ({size} bytes)"
        return None
    except (OSError, http.client.HTTPException, ValueError) as e:
        return f"GET {urlpath}: {type(e).__name__}: {e}"
    finally:
        conn.close()


def check_server(ctx, server, scenario):
    path, conns, headers, _ = SCENARIOS[scenario]
    close = any(h.lower().startswith("connection: close") for h in headers)
    paths = [path] if path else ctx.corpus.many_paths[:64]
    for p in paths:
        why = check_file(server.port, p, ctx.corpus.expected(p), close=close, headers=headers,
                         tls=ctx.tls.client if ctx.tls else None)
        if why:
            return why
    return None


UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # -> ms
UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", out)
    if not m:
        raise ValueError("no 'N requests in' line in wrk's output")
    r["requests"] = int(m.group(1))
    r["wrk_duration_s"] = float(m.group(2)) * UNITS_TIME[m.group(3)] / 1e3
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    r["transfer_Bps"] = float(m.group(1)) * UNITS_BYTES.get(m.group(2), 1) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(\w+)", out, re.M)
        r[f"p{pct}_ms"] = float(m.group(1)) * UNITS_TIME[m.group(2)] if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    for i, k in enumerate(("err_connect", "err_read", "err_write", "err_timeout")):
        r[k] = int(m.group(i + 1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def run_wrk(ctx, server, scenario, duration, threads, conns=None):
    path, scenario_conns, headers, _ = SCENARIOS[scenario]
    conns = conns or scenario_conns
    threads = max(1, min(threads, conns))
    argv = ["taskset", "-c", cpus_str(ctx.client_cpus), "wrk", "-t", str(threads), "-c", str(conns),
            "-d", f"{duration}s", "--timeout", f"{ctx.args.wrk_timeout}s", "--latency"]
    if scenario in NO_RESUME:
        # a full TLS handshake per connection: wrk alone would resume its previous session
        argv[3:3] = ["env", f"LD_PRELOAD={ctx.tls.no_resume_so}"]
    for h in headers:
        argv += ["-H", h]
    if path is None:
        argv += ["-s", str(ctx.lua)]
        path = "/"
    argv.append(f"{'https' if ctx.tls else 'http'}://127.0.0.1:{server.port}{path}")
    p = spawn(argv, "wrk", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=duration + ctx.args.wrk_timeout + 30)
    except subprocess.TimeoutExpired:
        kill_group(p, grace=1)
        raise ServerError(f"wrk did not finish within {duration + ctx.args.wrk_timeout + 30} s")
    finally:
        forget(p)
        if p.poll() is None:
            kill_group(p, grace=1)
    out = out.decode(errors="replace")
    if p.returncode != 0:
        raise ServerError(f"wrk exited with status {p.returncode}: {out[-500:]}")
    return argv, out


def settle(server, limit=15.0):
    """Waits until `server` uses no more CPU (two reads 0.3 s apart agree), at most `limit` s.
    A server slower than wrk (nginx-gzip in `site`) is still answering requests when wrk stops;
    the next server measured on the same CPUs must not share them with that backlog."""
    deadline = time.monotonic() + limit
    last = cpu_ticks(server.pids())
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = cpu_ticks(server.pids())
        if now == last:
            return
        last = now


def measure(ctx, server, scenario, duration, threads):
    """One wrk run with the server's CPU time read right before and right after."""
    pids = server.pids()
    reset_hwm(pids)
    t0 = time.monotonic()
    c0 = cpu_ticks(pids)
    argv, out = run_wrk(ctx, server, scenario, duration, threads)
    # a moment for the server to finish with the connections wrk just closed; an idle server uses no CPU
    time.sleep(0.25)
    pids = server.pids()
    c1 = cpu_ticks(pids)
    t1 = time.monotonic()
    server.remember()
    rss = vm_hwm_kb(pids)
    private = private_kb(pids)
    r = parse_wrk(out)
    cpu_s = (c1 - c0) / CLK_TCK
    r.update(
        cpu_s=cpu_s,
        cpu_ticks=c1 - c0,
        cpu_us_per_req=(cpu_s * 1e6 / r["requests"]) if r["requests"] else None,
        cpu_busy=cpu_s / ((t1 - t0) * len(server.cpus)),
        # what one response weighs on the wire, head included (wrk's bytes read / requests)
        bytes_per_resp=(r["transfer_Bps"] * r["wrk_duration_s"] / r["requests"]) if r["requests"] else None,
        rss_kb=rss,
        private_kb=private,
        processes=len(pids),
        wrk_cmd=" ".join(shlex.quote(a) for a in argv),
        wrk_output=out,
    )
    r["errors"] = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"] + r["non2xx"] + (r["requests"] == 0)
    return r


def tls_facts(ctx, server):
    """What `server` negotiates with wrk's library and defaults (TLS 1.3 and 1.2), whether it
    resumes from a ticket, and what ringstatic says about kernel TLS; once per server and run."""
    facts = {"tls1.3": tlsbench.negotiated(server.port),
             "tls1.2": tlsbench.negotiated(server.port, tls12=True),
             "resumes": tlsbench.resumes(ctx.tls.client, server.port)}
    k = re.search(r"^.*kernel TLS:.*$", server.log.read_text(errors="replace"), re.M)
    if k:
        facts["kernel TLS"] = k.group(0).strip()
    log(f"{server.label}: negotiates {facts['tls1.3']}; with -tls1_2: {facts['tls1.2']}; resumes from a ticket: "
        f"{facts['resumes']}" + (f"; {facts['kernel TLS']}" if k else ""))
    return facts


def probe_wrk_tls(ctx, cpus, workers):
    """Counts, on a probe nginx that logs `$ssl_session_reused`, how many of wrk's connections resume
    in each `Connection: close` scenario of the run (1 s each, 8 connections): plain wrk offers the
    previous session on every new connection; with wrk-no-resume.so none should. Also what wrk
    negotiates. -> {scenario: (connections, resumed, 'TLSv1.3 TLS_AES_256_GCM_SHA384 X25519')}"""
    probe = Nginx(ctx, label="nginx-tls-probe")
    probe.probe = True
    probe.cpus = cpus
    out = {}
    probe.start(cpus, workers)
    try:
        done = 0
        for sc in ctx.args.scenarios:
            if not any(h.lower() == "connection: close" for h in SCENARIOS[sc][2]):
                continue
            try:
                run_wrk(ctx, probe, sc, 1, 1, conns=8)
            except ServerError as e:
                ctx.warn(f"TLS probe of wrk ({sc}): {e}")
                continue
            time.sleep(0.2)
            lines = probe.tls_log.read_text(errors="replace").splitlines()
            out[sc] = tlsbench.probe_counts(lines[done:])
            done = len(lines)
            n, reused, suite = out[sc]
            log(f"wrk in {sc} (probe, 1 s): {reused:,} of {n:,} connections resumed; negotiated {suite}")
    finally:
        probe.stop()
    return out


# ---------------------------------------------------------------------------------------
# the runs

class Ctx:
    def warn(self, msg):
        self.warnings.append(msg)
        log(f"WARNING: {msg}")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run_block(ctx, mode, scenarios, servers, cpus, workers, rounds, duration, warmup):
    """Start every server on cpus with workers; for each scenario check, warm up, then
    rounds A B A B; stop everything. Servers are started fresh per scenario so each
    scenario's peak RSS and caches are its own."""
    threads = len(ctx.client_cpus)
    for sc in scenarios:
        started = []
        failed = {}
        try:
            for s in servers:
                if not s.applies(sc):
                    continue
                s.scenario = sc
                s.cpus = cpus
                try:
                    s.start(cpus, workers)
                    started.append(s)
                except ServerError as e:
                    failed[s.label] = f"did not start: {e}"
            for s in started:
                why = check_server(ctx, s, sc)
                if why:
                    failed[s.label] = f"check failed: {why}"
                elif ctx.tls and s.label not in ctx.tls_facts:
                    ctx.tls_facts[s.label] = tls_facts(ctx, s)
            live = [s for s in started if s.label not in failed]
            for label, why in failed.items():
                ctx.warn(f"[{sc}, {workers} worker(s)] {label} {why}; not measured")
                ctx.failures.append(dict(mode=mode, scenario=sc, workers=workers, server=label, reason=why))
            if warmup > 0:
                for s in live:
                    try:
                        run_wrk(ctx, s, sc, warmup, threads)
                    except ServerError as e:
                        ctx.warn(f"[{sc}] {s.label} warm-up: {e}")
                    settle(s)
            noisy = set()
            for rnd in range(1, rounds + 1):
                for s in live:
                    idle = [o for o in live if o is not s]
                    idle0 = [cpu_ticks(o.pids()) for o in idle]
                    t0 = time.monotonic()
                    try:
                        r = measure(ctx, s, sc, duration, threads)
                    except (ServerError, ValueError) as e:
                        ctx.warn(f"[{sc}] {s.label} round {rnd}: {e}")
                        continue
                    finally:
                        settle(s)
                    # The servers not being measured sit idle on the same CPUs; one that burns
                    # CPU anyway takes it from the one being measured, and every figure of this
                    # scenario is then suspect. Idle servers use next to nothing (timers only).
                    wall = time.monotonic() - t0
                    for o, c0 in zip(idle, idle0):
                        share = (cpu_ticks(o.pids()) - c0) / CLK_TCK / wall
                        if share > IDLE_CPU_MAX and o.label not in noisy:
                            noisy.add(o.label)
                            ctx.warn(f"[{sc}] {o.label} used {share:.0%} of a CPU while idle (during "
                                     f"{s.label}'s round {rnd}): it takes CPU from the server being "
                                     f"measured, so this scenario's figures are suspect")
                    r.update(mode=mode, scenario=sc, server=s.label, round=rnd, workers=workers,
                             server_cpus=cpus_str(cpus), client_cpus=cpus_str(ctx.client_cpus),
                             wrk_threads=max(1, min(threads, SCENARIOS[sc][1])), connections=SCENARIOS[sc][1],
                             duration_s=duration)
                    ctx.runs.append(r)
                    flag = "  ERRORS" if r["errors"] else ""
                    log(f"[{sc}, {workers}w] round {rnd}/{rounds} {s.label:<10} {r['rps']:>12,.0f} req/s  "
                        f"{fmt_us(r['cpu_us_per_req'])} us CPU/req  busy {r['cpu_busy']:.0%}{flag}")
        finally:
            for s in started:
                s.stop()


# ---------------------------------------------------------------------------------------
# summary and output

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(ctx, mode):
    rows = []
    runs = [r for r in ctx.runs if r["mode"] == mode]
    keys = []
    for r in runs:
        k = (r["scenario"], r["workers"], r["server"])
        if k not in keys:
            keys.append(k)
    for f in ctx.failures:
        k = (f["scenario"], f["workers"], f["server"])
        if f["mode"] == mode and k not in keys:
            keys.append(k)
    order_sc = {s: i for i, s in enumerate(SCENARIOS)}
    order_sv = {s.label: i for i, s in enumerate(ctx.servers)}
    keys.sort(key=lambda k: (order_sc.get(k[0], 99), k[1], order_sv.get(k[2], 99)))
    for sc, w, sv in keys:
        rs = [r for r in runs if (r["scenario"], r["workers"], r["server"]) == (sc, w, sv)]
        fail = next((f["reason"] for f in ctx.failures if f["mode"] == mode and
                     (f["scenario"], f["workers"], f["server"]) == (sc, w, sv)), None)
        row = dict(mode=mode, scenario=sc, workers=w, server=sv, rounds=len(rs), failed=fail)
        for k in ("rps", "transfer_Bps", "bytes_per_resp", "p50_ms", "p99_ms", "cpu_us_per_req", "cpu_busy",
                  "rss_kb", "private_kb"):
            row[k] = med([r.get(k) for r in rs])
        for k in ("err_connect", "err_read", "err_write", "err_timeout", "non2xx", "errors"):
            row[k] = sum(r[k] for r in rs)
        # ratios against nginx, pair by pair within each round, then the median
        ref = {r["round"]: r for r in runs if (r["scenario"], r["workers"], r["server"]) == (sc, w, "nginx")}
        cpu_ratios, rps_ratios = [], []
        for r in rs:
            n = ref.get(r["round"])
            if n and sv != "nginx":
                if r["cpu_us_per_req"] and n["cpu_us_per_req"]:
                    cpu_ratios.append(r["cpu_us_per_req"] / n["cpu_us_per_req"])
                if r["rps"] and n["rps"]:
                    rps_ratios.append(r["rps"] / n["rps"])
        row["cpu_ratio_vs_nginx"] = med(cpu_ratios)
        row["rps_ratio_vs_nginx"] = med(rps_ratios)
        row["cpu_ratios"] = cpu_ratios
        if ctx.tls and closes(sc):
            # one handshake per request: handshakes per server CPU-second, and the ratio to nginx's
            # (above 1: more handshakes for the same CPU), pair by pair within each round
            row["hs_per_cpu_s"] = med([r["requests"] / r["cpu_s"] for r in rs if r["cpu_s"]])
            row["hs_ratio_vs_nginx"] = med([1 / x for x in cpu_ratios if x])
        rows.append(row)
    return rows


def fmt_us(x):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ms(x):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x / 1000:.2f} s"
    if x >= 10:
        return f"{x:.1f} ms"
    return f"{x:.2f} ms"


def fmt_bytes(x, per=""):
    if x is None:
        return "-"
    for unit, div in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if x >= div:
            return f"{x / div:.1f} {unit}{per}"
    return f"{x:.0f} B{per}"


def fmt_errors(row):
    parts = [f"{k.replace('err_', '')} {row[k]}" for k in ("err_connect", "err_read", "err_write", "err_timeout")
             if row[k]]
    if row["non2xx"]:
        parts.append(f"non-2xx {row['non2xx']}")
    if row["errors"] and not parts:
        parts.append("no requests")
    return ("! " + ", ".join(parts)) if parts else "0"


def kb(v):
    return fmt_bytes(v * 1024 if v is not None else None)


def table(rows, scaling=False):
    if scaling:
        head = ["scenario", "workers", "server", "req/s", "CPU µs/req", "vs nginx (CPU)", "server CPU busy",
                "peak RSS", "private", "errors"]
    else:
        head = ["scenario", "server", "req/s", "transfer/s", "bytes/resp", "p50", "p99", "CPU µs/req",
                "vs nginx (CPU)", "server CPU busy", "peak RSS", "private", "errors"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < (3 if scaling else 2) else "---:"
                                                          for i in range(len(head))) + "|"]
    for r in rows:
        name = r["server"] + (" !" if r["errors"] or r["failed"] else "")
        if r["failed"]:
            cells = [r["scenario"]] + ([str(r["workers"])] if scaling else []) + [name]
            cells += ["-"] * (len(head) - len(cells) - 1) + ["! " + r["failed"].replace("|", "/")[:160]]
            out.append("| " + " | ".join(cells) + " |")
            continue
        ratio = "1 (reference)" if r["server"] == "nginx" else (
            f"{r['cpu_ratio_vs_nginx']:.3f}" if r["cpu_ratio_vs_nginx"] is not None else "-")
        busy = f"{r['cpu_busy']:.0%}" if r["cpu_busy"] is not None else "-"
        if scaling:
            cells = [r["scenario"], str(r["workers"]), name, f"{r['rps']:,.0f}", fmt_us(r["cpu_us_per_req"]),
                     ratio, busy, kb(r["rss_kb"]), kb(r.get("private_kb")), fmt_errors(r)]
        else:
            cells = [r["scenario"], name, f"{r['rps']:,.0f}", fmt_bytes(r["transfer_Bps"], "/s"),
                     fmt_bytes(r["bytes_per_resp"]), fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]),
                     fmt_us(r["cpu_us_per_req"]), ratio, busy, kb(r["rss_kb"]), kb(r.get("private_kb")),
                     fmt_errors(r)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def closes(scenario):
    """Whether the scenario opens a connection per request (Connection: close)."""
    return any(h.lower() == "connection: close" for h in SCENARIOS[scenario][2])


def scenario_meaning(ctx, scenario):
    return ("over HTTPS: " if ctx.tls else "") + SCENARIOS[scenario][3]


def tls_header(ctx):
    """The header's lines on the TLS setup, known before the runs."""
    kernel = ("the kernel offers TLS (`tls` in /proc/sys/net/ipv4/tcp_available_ulp): nginx gets "
              "`ssl_conf_command Options KTLS`" if ctx.kernel_tls else
              "this kernel offers no kernel TLS (no `tls` in /proc/sys/net/ipv4/tcp_available_ulp): both servers "
              "encrypt in user space")
    return [
        f"- TLS: every scenario over HTTPS; one certificate for every server: {tlsbench.Tls.DESCRIPTION}; "
        f"ringstatic `--listen 127.0.0.1:0,tls --tls-cert fullchain.pem --tls-key key.pem`; nginx "
        f"`listen ... ssl`, `ssl_protocols TLSv1.2 TLSv1.3`, `ssl_session_cache shared:SSL:10m`, "
        f"`ssl_session_timeout 1d`, `ssl_session_tickets on`, default suites; wrk verifies nothing and "
        f"sends SNI 127.0.0.1",
        f"- kernel TLS: {kernel}",
    ]


def tls_report(ctx, rows):
    """After the table: handshakes per second and per CPU-second in the close scenarios, the kind of
    handshake wrk made (counted on the probe), and what each server negotiated."""
    out = []
    hs = [r for r in rows if closes(r["scenario"]) and not r["failed"]]
    if hs:
        out += ["Handshakes: with `Connection: close` every request is a new connection and one TLS handshake, "
                "so handshakes/s is req/s, and handshakes per CPU-second is requests over the server's CPU "
                "seconds (TCP setup and the 1 KiB response included); vs nginx above 1 means more handshakes "
                "for the same CPU.", "",
                "| scenario | handshake (wrk, counted on the probe) | server | handshakes/s | per CPU-second | "
                "vs nginx (per CPU-s) |", "|---|---|---|---:|---:|---:|"]
        for r in hs:
            n, reused, _ = ctx.tls_probe.get(r["scenario"], (0, 0, ""))
            if n:
                kind = ("resumed" if reused > n / 2 else "full") + f" ({reused:,} of {n:,} resumed)"
            else:
                kind = "full (not probed)" if r["scenario"] in NO_RESUME else "as wrk makes them (not probed)"
            ratio = "1 (reference)" if r["server"] == "nginx" else (
                f"{r['hs_ratio_vs_nginx']:.3f}" if r.get("hs_ratio_vs_nginx") else "-")
            per_cpu = f"{r['hs_per_cpu_s']:,.0f}" if r.get("hs_per_cpu_s") else "-"
            name = r["server"] + (" !" if r["errors"] else "")
            out.append(f"| {r['scenario']} | {kind} | {name} | {r['rps']:,.0f} | {per_cpu} | {ratio} |")
        out.append("")
    out += ["TLS as negotiated (`openssl s_client`, the library wrk uses, with its defaults; "
            "resumption: a second connection offering the ticket of a first one):", ""]
    for label, f in ctx.tls_facts.items():
        out.append(f"- {label}: {f['tls1.3']}; with `-tls1_2`: {f['tls1.2']}; resumes: {f['resumes']}"
                   + (f"; says `{f['kernel TLS']}`" if f.get("kernel TLS") else ""))
    for sc, (n, reused, suite) in ctx.tls_probe.items():
        out.append(f"- wrk in `{sc}` (a 1-second probe against an nginx logging `$ssl_session_reused`, 8 "
                   f"connections): {reused:,} of {n:,} connections resumed, negotiated {suite}")
    ref = ctx.tls_facts.get("nginx")
    if ref:
        for label, f in ctx.tls_facts.items():
            if label != "nginx" and f["tls1.3"] != ref["tls1.3"]:
                ctx.warn(f"{label} negotiates TLS 1.3 {f['tls1.3']} but nginx {ref['tls1.3']}: the suites differ, "
                         f"so the comparison is not like for like")
    probe_full = [sc for sc in NO_RESUME if ctx.tls_probe.get(sc, (0, 0, ""))[1]]
    if probe_full:
        ctx.warn(f"wrk resumed sessions in {','.join(probe_full)} despite wrk-no-resume.so: those rows are not "
                 f"full handshakes only")
    ctx.meta["tls"] = dict(certificate=tlsbench.Tls.DESCRIPTION, kernel_tls=ctx.kernel_tls,
                           servers=ctx.tls_facts,
                           wrk_probe={sc: dict(connections=n, resumed=r, negotiated=su)
                                      for sc, (n, r, su) in ctx.tls_probe.items()})
    return out + [""]


COLORS = {"ringstatic": "#d9622b", "ringstatic-fly": "#f0a070", "nginx": "#2e8b57", "nginx-gzip": "#8fcca8", "h2o": "#3b6fb6", "lighttpd": "#8a4fb0", "floor": "#9a9a9a"}


def nice_max(x):
    if not x or x <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= x:
            return m * e
    return 10 * e


def svg_chart(path, title, subtitle, rows, servers, cell_key, cell_label):
    """Small multiples: one cell per scenario (or scenario x workers), two rows of cells
    (CPU µs per request; requests/s), bars side by side per server, each cell on its own
    scale because a 100 MiB file and a 1 KiB page differ by orders of magnitude."""
    cells = []
    for r in rows:
        k = cell_key(r)
        if k not in cells:
            cells.append(k)
    by = {(cell_key(r), r["server"]): r for r in rows}
    ns = len(servers)
    cw = max(120, 36 + 30 * ns)
    ch, top_pad, plot_h = 210, 34, 130
    left = 16
    metrics = [("cpu_us_per_req", "server CPU µs per request (lower is better)", fmt_us),
               ("rps", "requests per second (higher is better)", lambda v: f"{v:,.0f}" if v < 1e4 else f"{v / 1000:,.0f}k")]
    longest = max(len(line) for line in subtitle.split("\n"))
    width = int(max(720, left * 2 + cw * max(1, len(cells)), left * 2 + 6.3 * longest))
    legend_y = 76
    height = legend_y + 20 + ch * len(metrics) + 10
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
         f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{left}" y="22" font-size="16" font-weight="bold">{html.escape(title)}</text>',
         ] + [f'<text x="{left}" y="{40 + 15 * i}" fill="#444">{html.escape(line)}</text>'
              for i, line in enumerate(subtitle.split("\n"))]
    x = left
    for s in servers:
        o.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{COLORS.get(s, "#777")}"/>')
        o.append(f'<text x="{x + 16}" y="{legend_y}">{html.escape(s)}</text>')
        x += 30 + 7 * len(s) + 20
    o.append(f'<text x="{x}" y="{legend_y}" fill="#a00">! = errors in a run, or the server failed its check</text>')
    for mi, (key, mtitle, fmt) in enumerate(metrics):
        y0 = legend_y + 20 + mi * ch
        o.append(f'<text x="{left}" y="{y0 + 8}" font-size="13" font-weight="bold">{html.escape(mtitle)}</text>')
        for ci, cell in enumerate(cells):
            cx = left + ci * cw
            vals = [(by.get((cell, s)) or {}).get(key) for s in servers]
            # headroom above the tallest bar for its value label
            vmax = nice_max(1.12 * max([v for v in vals if v] or [0]))
            py = y0 + top_pad
            base = py + plot_h
            o.append(f'<rect x="{cx + 4}" y="{py}" width="{cw - 8}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>')
            for g in range(1, 4):
                gy = base - plot_h * g / 4
                o.append(f'<line x1="{cx + 4}" y1="{gy:.1f}" x2="{cx + cw - 4}" y2="{gy:.1f}" stroke="#eee"/>')
            o.append(f'<text x="{cx + 6}" y="{py - 3}" fill="#999" font-size="9">scale 0 - {html.escape(fmt(vmax))}</text>')
            bw = (cw - 24) / ns
            for si, s in enumerate(servers):
                r = by.get((cell, s))
                v = (r or {}).get(key)
                bx = cx + 12 + si * bw
                if v:
                    h = plot_h * v / vmax
                    o.append(f'<rect x="{bx + 2:.1f}" y="{base - h:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" '
                             f'fill="{COLORS.get(s, "#777")}"><title>{html.escape(s)}: {html.escape(fmt(v))}</title></rect>')
                    label = fmt(v) + (" !" if r and r["errors"] else "")
                    o.append(f'<text x="{bx + bw / 2:.1f}" y="{base - h - 3:.1f}" text-anchor="middle" font-size="9">'
                             f'{html.escape(label)}</text>')
                elif r is not None or ns:
                    o.append(f'<text x="{bx + bw / 2:.1f}" y="{base - 3:.1f}" text-anchor="middle" fill="#a00">'
                             f'{"!" if r is not None else ""}</text>')
            o.append(f'<text x="{cx + cw / 2}" y="{base + 14}" text-anchor="middle" font-weight="bold">'
                     f'{html.escape(cell_label(cell))}</text>')
            rr = by.get((cell, "ringstatic"))
            if key == "cpu_us_per_req" and rr and rr.get("cpu_ratio_vs_nginx"):
                o.append(f'<text x="{cx + cw / 2}" y="{base + 27}" text-anchor="middle" fill="#444" font-size="10">'
                         f'ringstatic/nginx {rr["cpu_ratio_vs_nginx"]:.2f}</text>')
    o.append("</svg>")
    Path(path).write_text("\n".join(o) + "\n")


def machine_line():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Linux {os.uname().release}"


def write_outputs(ctx, text, rows_all):
    d = ctx.results_dir
    (d / "table.md").write_text(text)
    fields = ["mode", "scenario", "workers", "server", "round", "requests", "duration_s", "wrk_duration_s", "rps",
              "transfer_Bps", "bytes_per_resp", "p50_ms", "p99_ms", "cpu_ticks", "cpu_s", "cpu_us_per_req", "cpu_busy",
              "rss_kb", "private_kb", "processes", "err_connect", "err_read", "err_write", "err_timeout", "non2xx",
              "errors", "connections",
              "wrk_threads", "server_cpus", "client_cpus", "wrk_cmd"]
    with open(d / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in ctx.runs:
            w.writerow(r)
    sfields = ["mode", "scenario", "workers", "server", "rounds", "rps", "transfer_Bps", "bytes_per_resp", "p50_ms",
               "p99_ms", "cpu_us_per_req", "cpu_ratio_vs_nginx", "rps_ratio_vs_nginx", "hs_per_cpu_s",
               "hs_ratio_vs_nginx", "cpu_busy", "rss_kb",
               "private_kb", "err_connect",
               "err_read", "err_write", "err_timeout", "non2xx", "errors", "failed"]
    with open(d / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sfields, extrasaction="ignore")
        w.writeheader()
        for r in rows_all:
            w.writerow(r)
    doc = dict(meta=ctx.meta, summary=rows_all, runs=ctx.runs, failures=ctx.failures, warnings=ctx.warnings)
    (d / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")


# ---------------------------------------------------------------------------------------
# main

def options(argv):
    p = argparse.ArgumentParser(
        prog="bench/run.sh",
        description="Measure ringstatic beside nginx (and optionally h2o, lighttpd) with wrk. "
                    "The headline is the servers' CPU time per request.")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 round, 2-second runs, 1 s warm-up, scenarios " + ",".join(QUICK_SCENARIOS))
    p.add_argument("--scenarios", help="comma-separated scenarios, from: " + ",".join(SCENARIOS))
    p.add_argument("--tls", action="store_true",
                   help="every scenario over HTTPS, ringstatic and nginx with the same certificate (EC P-256, made "
                        "with openssl at the start); default scenarios " + ",".join(TLS_SCENARIOS) + " (with "
                        "--quick too), plus a table of handshakes per second and per CPU-second")
    p.add_argument("--rounds", type=int, help="measured rounds per scenario, A B A B ... (default 3; 1 with --quick)")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 10; 2 with --quick)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per server and scenario (default 2; 1 with --quick; 0 = none)")
    p.add_argument("--peers", default="none",
                   help="other servers to measure too: none (default), all, or a list of h2o,lighttpd,floor "
                        "(floor: a bare io_uring loop, the kernel's share of a request; see bench/README.md)")
    p.add_argument("--scaling", action="store_true",
                   help="worker-scaling mode: 1k and 16k with 1, 2, 4, ... workers up to the server-CPU count, "
                        "ringstatic and nginx only")
    p.add_argument("--server-cpus", help="CPUs for the servers, e.g. 0-3 (default: first half of this process's CPUs)")
    p.add_argument("--client-cpus", help="CPUs for wrk, e.g. 4-7 (default: the rest)")
    p.add_argument("--build", action="append", default=[], metavar="LABEL=PATH",
                   help="also measure another ringstatic binary (e.g. a copy built before a change) as its "
                        "own row LABEL, with the same arguments; repeatable. Example: "
                        "--build before=/tmp/ringstatic-main")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL=ARGS",
                   help="also measure ringstatic started with extra ARGS, as its own row LABEL; {run} in ARGS is "
                        "its work directory. Example: --variant 'ringstatic+log=--access-log {run}/access.log' "
                        "(the access log's cost), or a tuning flag against the default")
    p.add_argument("--ringstatic", default=os.environ.get("RINGSTATIC_BIN", str(REPO / "target/release/ringstatic")),
                   help="ringstatic binary (default: $RINGSTATIC_BIN or target/release/ringstatic)")
    p.add_argument("--floor", default=os.environ.get("FLOOR_BIN", str(REPO / "target/release/examples/floor")),
                   help="the floor binary for --peers floor (default: $FLOOR_BIN or target/release/examples/floor, "
                        "built by `cargo build --release --example floor`)")
    p.add_argument("--server-cmd",
                   help="harness testing: measure this command under the label ringstatic instead of the binary. "
                        "'nginx' runs a second, identically configured nginx; anything else is a command line with "
                        "{port} {workers} {root} {cache_valid} placeholders (without {port} it is given port 0 and "
                        "must print 'listening on http://127.0.0.1:PORT')")
    p.add_argument("--wrk-timeout", type=float, default=5, help="wrk --timeout in seconds (default 5)")
    p.add_argument("--results", help="results directory (default bench/results/<UTC timestamp>)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary corpus and server logs")
    a = p.parse_args(argv)
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.duration = a.duration or (2 if a.quick else 10)
    if a.warmup is None:
        a.warmup = 1 if a.quick else 2
    if a.duration != int(a.duration):
        p.error("--duration must be whole seconds (wrk takes whole seconds)")
    a.duration = int(a.duration)
    a.warmup = int(math.ceil(a.warmup))
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    if a.scenarios:
        a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
        bad = [s for s in a.scenarios if s not in SCENARIOS]
        if bad:
            p.error(f"unknown scenario(s) {','.join(bad)}; choose from {','.join(SCENARIOS)}")
    elif a.scaling:
        a.scenarios = SCALING_SCENARIOS
    elif a.tls:
        a.scenarios = TLS_SCENARIOS
    else:
        a.scenarios = QUICK_SCENARIOS if a.quick else [s for s in SCENARIOS if s not in TLS_ONLY]
    tls_only = [s for s in a.scenarios if s in TLS_ONLY]
    if tls_only and not a.tls:
        p.error(f"scenario {','.join(tls_only)} measures TLS handshakes: add --tls")
    peers = [x.strip() for x in a.peers.split(",") if x.strip()]
    if peers in (["none"], []):
        peers = []
    elif peers == ["all"]:
        peers = ["h2o", "lighttpd", "floor"]
    bad = [x for x in peers if x not in ("h2o", "lighttpd", "floor")]
    if bad:
        p.error(f"unknown peer(s) {','.join(bad)}; choose all, h2o, lighttpd, floor")
    a.peer_list = peers
    if a.tls and peers:
        p.error("--tls measures ringstatic and nginx (and --variant/--build rows) only: the floor, h2o and "
                "lighttpd have no TLS setup here; leave out --peers")
    return a


def placement(args):
    mine = sorted(os.sched_getaffinity(0))
    if args.server_cpus:
        server = parse_cpus(args.server_cpus)
    else:
        server = mine[: max(1, len(mine) // 2)]
    if args.client_cpus:
        client = parse_cpus(args.client_cpus)
    else:
        client = [c for c in mine if c not in server]
    if not server:
        sys.exit("bench: refusing to run: the server CPU set is empty")
    if not client:
        sys.exit(f"bench: refusing to run: no CPU left for wrk (this process may use CPUs {cpus_str(mine)}, "
                 f"servers get {cpus_str(server)}); give --server-cpus and --client-cpus on a machine with 2+ CPUs")
    both = sorted(set(server) & set(client))
    if both:
        sys.exit(f"bench: refusing to run: server CPUs {cpus_str(server)} and wrk CPUs {cpus_str(client)} overlap "
                 f"on {cpus_str(both)}; a shared CPU makes the servers' CPU time include wrk's interference")
    outside = [c for c in server + client if c not in mine]
    if outside:
        sys.exit(f"bench: refusing to run: CPUs {cpus_str(outside)} are not in this process's affinity mask "
                 f"({cpus_str(mine)})")
    return server, client


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = WANT_NOFILE
    try:
        want = min(want, int(Path("/proc/sys/fs/nr_open").read_text()))
    except (OSError, ValueError):
        pass
    for lim in ((want, max(hard, want)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv):
    args = options(argv)
    server_cpus, client_cpus = placement(args)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(cleanup)
    os.umask(0o022)

    ctx = Ctx()
    ctx.args, ctx.warnings, ctx.failures, ctx.runs = args, [], [], []
    ctx.server_cpus, ctx.client_cpus = server_cpus, client_cpus
    ctx.nofile = raise_nofile()
    ctx.tls, ctx.kernel_tls, ctx.tls_facts, ctx.tls_probe = None, False, {}, {}

    tools = ["taskset", "wrk", "nginx"] + [x for x in args.peer_list if x != "floor"]
    if args.tls:
        tools += ["openssl"] + (["cc"] if NO_RESUME & set(args.scenarios) else [])
    for tool in tools:
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"bench: {tool} not found; bench/run.sh installs it (Debian)")
    if not args.server_cmd and not os.access(args.ringstatic, os.X_OK):
        sys.exit(f"bench: no ringstatic binary at {args.ringstatic}; build it (cargo build --release) or pass "
                 f"--ringstatic PATH (or --server-cmd nginx to test the harness alone)")
    for sc in args.scenarios:
        conns = SCENARIOS[sc][1]
        if conns + 200 > ctx.nofile:
            sys.exit(f"bench: scenario {sc} needs {conns} connections but the open-file limit is {ctx.nofile}; "
                     f"raise it (ulimit -n) or leave the scenario out")

    stamp = datetime.datetime.now(datetime.timezone.utc)
    ctx.results_dir = Path(args.results) if args.results else HERE / "results" / stamp.strftime("%Y%m%dT%H%M%SZ")
    ctx.results_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ringstatic-bench-"))
    os.chmod(tmp, 0o755)  # servers that drop privileges must still read the corpus
    try:
        run(ctx, args, tmp, stamp, server_cpus, client_cpus)
    except (KeyboardInterrupt, SystemExit) as e:
        code = e.code if isinstance(e, SystemExit) else 130
        if isinstance(code, int) and code > 128:
            log(f"interrupted (signal {code - 128}); stopping every process this run started")
            if not (ctx.results_dir / "table.md").exists():
                shutil.rmtree(ctx.results_dir, ignore_errors=True)
        raise
    finally:
        cleanup()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(ctx, args, tmp, stamp, server_cpus, client_cpus):
    ctx.run_dir = tmp / "run"
    ctx.run_dir.mkdir()
    (tmp / "www").mkdir()
    need_big = "100m" in args.scenarios
    need_site = "many-files" in args.scenarios
    log(f"writing the corpus in {tmp / 'www'}" + (" (100 MiB file" if need_big else "") +
        (", 20,000-file site" if need_site else "") + (")" if need_big else ""))
    t = time.monotonic()
    ctx.corpus = Corpus(tmp / "www", need_big, need_site)
    if "site" in args.scenarios:
        ctx.corpus.write_siblings(None if args.server_cmd else args.ringstatic)
    log(f"corpus ready in {time.monotonic() - t:.1f} s")
    if args.tls:
        try:
            ctx.tls = tlsbench.Tls(tmp / "tls")
            if NO_RESUME & set(args.scenarios):
                ctx.tls.build_no_resume()
        except tlsbench.TlsSetupError as e:
            raise SystemExit(f"bench: --tls: {e}")
        ctx.kernel_tls = tlsbench.kernel_tls()
        log(f"TLS certificate: {tlsbench.Tls.DESCRIPTION}")
    if need_site:
        ctx.lua = tmp / "many-files.lua"
        ctx.corpus.write_lua(ctx.lua)
        shutil.copy(ctx.lua, ctx.results_dir / "many-files.lua")

    if args.server_cmd == "nginx":
        subject = Nginx(ctx, label="ringstatic")
        subject.version = lambda: "STAND-IN: a second nginx labelled ringstatic (--server-cmd nginx), not ringstatic"
    elif args.server_cmd:
        subject = Ringstatic(ctx, None, shlex.split(args.server_cmd))
    else:
        subject = Ringstatic(ctx, args.ringstatic)
    servers = [subject, Nginx(ctx)]
    if "site" in args.scenarios and not args.server_cmd:
        fly = Ringstatic(ctx, args.ringstatic, label="ringstatic-fly", extra=["--precompressed", "off"])
        fly.only = "site"
        fly.note = ("ringstatic-fly (site scenario only): ringstatic with --precompressed off, compressing "
                    "site.js once per worker (brotli 4) and serving it from its cache")
        servers += [fly, NginxGzip(ctx)]
    for v in args.variant:
        label, _, extra = v.partition("=")
        servers.append(Ringstatic(ctx, args.ringstatic, label=label.strip(), extra=shlex.split(extra)))
    for b in args.build:
        label, _, path = b.partition("=")
        if not label.strip() or not os.access(path, os.X_OK):
            raise SystemExit(f"bench: --build {b!r}: expected LABEL=PATH to an executable ringstatic")
        servers.append(Ringstatic(ctx, path, label=label.strip(), other_build=True))
    if "h2o" in args.peer_list:
        servers.append(H2o(ctx))
    if "lighttpd" in args.peer_list:
        servers.append(Lighttpd(ctx))
    if "floor" in args.peer_list:
        if not os.access(args.floor, os.X_OK):
            raise SystemExit(f"bench: --peers floor: no executable {args.floor}; "
                             "build it with `cargo build --release --example floor`")
        servers.append(Floor(ctx, args.floor))
    if args.scaling:
        servers = servers[:2]
    ctx.servers = servers

    wrk_version = first_line(["wrk", "-v"])
    versions = {s.label: s.version() for s in servers}
    versions["wrk"] = wrk_version
    command = os.environ.get("BENCH_COMMAND") or " ".join(shlex.quote(a) for a in ["bench/bench.py"] + sys.argv[1:])
    workers = len(server_cpus)
    ctx.meta = dict(
        date=stamp.strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine_line(),
        versions=versions,
        command=command,
        server_cpus=cpus_str(server_cpus),
        client_cpus=cpus_str(client_cpus),
        workers=workers,
        wrk_threads=len(client_cpus),
        rounds=args.rounds,
        duration_s=args.duration,
        warmup_s=args.warmup,
        scenarios={s: scenario_meaning(ctx, s) for s in args.scenarios},
        clock_ticks_per_s=CLK_TCK,
        nofile=ctx.nofile,
        seed=SEED,
        notes={s.label: s.note for s in servers if s.note},
    )
    header = [
        "# ringstatic bench" + (" (worker scaling)" if args.scaling else "") + (" over HTTPS" if args.tls else ""),
        "",
        f"- date: {ctx.meta['date']}",
        f"- machine: {ctx.meta['machine']}",
        f"- placement: servers on CPU {cpus_str(server_cpus)} ({workers} worker{'s' if workers > 1 else ''}"
        f"{', scaled 1..' + str(workers) if args.scaling else ''}), wrk on CPU {cpus_str(client_cpus)} "
        f"({len(client_cpus)} thread{'s' if len(client_cpus) > 1 else ''})",
    ]
    header += [f"- {k}: {v}" for k, v in versions.items()]
    header += [
        f"- command: `{command}`",
        f"- method: {args.rounds} round{'s' if args.rounds > 1 else ''} of {args.duration} s per server and scenario, "
        f"servers alternating ({', '.join(s.label for s in servers)}) each round, {args.warmup} s warm-up first; "
        f"medians; 'vs nginx' = median of the per-round ratios of CPU µs/request; CPU = user+system of all the "
        f"server's processes from /proc (clock tick {1000 // CLK_TCK} ms)",
    ]
    for s in servers:
        if s.note:
            header.append(f"- note: {s.note}")
    if ctx.tls:
        header += tls_header(ctx)
    log("\n".join(header))

    t0 = time.monotonic()
    if ctx.tls and not args.scaling:
        ctx.tls_probe = probe_wrk_tls(ctx, server_cpus, workers)
    if args.scaling:
        counts, w = [], 1
        while w < len(server_cpus):
            counts.append(w)
            w *= 2
        counts.append(len(server_cpus))
        for w in counts:
            run_block(ctx, "scaling", args.scenarios, servers, server_cpus[:w], w, args.rounds, args.duration,
                      args.warmup)
    else:
        run_block(ctx, "matrix", args.scenarios, servers, server_cpus, workers, args.rounds, args.duration,
                  args.warmup)
    log(f"measured in {time.monotonic() - t0:.0f} s")
    if not any("outlived" in w for w in ctx.warnings):
        log("every server stopped by its master's PID; no process of theirs left behind (checked in /proc)")

    mode = "scaling" if args.scaling else "matrix"
    rows = summarize(ctx, mode)
    configs = {}
    for s in servers:
        configs.update(s.configs)
    ctx.meta["configs"] = configs
    for name, text in configs.items():
        (ctx.results_dir / name).write_text(text)

    parts = ["\n".join(header), "", table(rows, scaling=args.scaling), ""]
    if ctx.tls:
        parts += tls_report(ctx, rows)
    if any(r["errors"] or r["failed"] for r in rows):
        parts += ["`!` marks a server with errors in at least one run (wrk socket errors or non-2xx responses) "
                  "or one that failed its check (wrong status, length or bytes) and was not measured.", ""]
    if ctx.warnings:
        parts += ["Warnings:", ""] + [f"- {w}" for w in ctx.warnings] + [""]
    parts += ["Scenarios:", ""] + [f"- `{s}`: {scenario_meaning(ctx, s)}" for s in args.scenarios] + [""]
    for name, text in configs.items():
        parts += [f"<details><summary>{name} (as written by the script, last start)</summary>", "",
                  "```", text.rstrip(), "```", "", "</details>", ""]
    # Relative to the repository when inside it, so a table copied into bench/latest names no
    # machine's own paths.
    try:
        where = Path(ctx.results_dir).resolve().relative_to(REPO)
    except ValueError:
        where = ctx.results_dir
    parts.append(f"Raw figures: {where}/results.csv, results.json, summary.csv; chart: chart.svg")
    text = "\n".join(parts) + "\n"
    write_outputs(ctx, text, rows)

    servers_present = [s.label for s in servers]
    subtitle = (f"{ctx.meta['machine']} · {ctx.meta['date']}\n"
                f"servers on CPU {cpus_str(server_cpus)}, wrk on CPU {cpus_str(client_cpus)} · "
                f"{args.rounds} round(s) × {args.duration} s, medians · {versions.get('ringstatic', '')[:70]}")
    if args.scaling:
        svg_chart(ctx.results_dir / "chart.svg", "ringstatic vs nginx: worker scaling", subtitle, rows,
                  servers_present, lambda r: (r["scenario"], r["workers"]), lambda c: f"{c[0]} · {c[1]}w")
    else:
        svg_chart(ctx.results_dir / "chart.svg", "ringstatic vs nginx under wrk" + (" over HTTPS" if ctx.tls else ""),
                  subtitle, rows, servers_present,
                  lambda r: r["scenario"], lambda c: c)
    sys.stdout.write(text)
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
