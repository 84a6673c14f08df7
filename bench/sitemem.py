#!/usr/bin/env python3
"""Private memory after serving a whole site: bench.py's 20,000-file site (200 B to 64 KiB), every
file fetched over each of 8 keep-alive connections (so every worker sees every file, whichever
connections the kernel hands it), then the servers' private memory (Pss_Anon + Pss_Shmem from
/proc/PID/smaps_rollup, summed over master and workers) and RSS, for ringstatic and nginx with 1
and 2 workers (or `--workers 1,2,4`).

    python3 bench/sitemem.py [--ringstatic LABEL=PATH]... [--workers 1,2] [--no-nginx]

Python standard library only; uses bench.py's corpus, server configurations and process handling.
Both servers get bench.py's settings (a 200,000-entry open-file cache for both)."""

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

CONNS = 8
PIPELINE = 64


def fetch_all(port, paths, errors):
    """GETs every path on one keep-alive connection, PIPELINE requests in flight; checks each
    response is a 200 with the file's length."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    buf = b""
    try:
        for i in range(0, len(paths), PIPELINE):
            batch = paths[i:i + PIPELINE]
            s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: bench\r\n\r\n".encode() for p in batch))
            for p in batch:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(1 << 20)
                    if not d:
                        raise OSError("closed")
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                status = head.split(b" ", 2)[1]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                while len(buf) < length:
                    d = s.recv(1 << 20)
                    if not d:
                        raise OSError("closed")
                    buf += d
                buf = buf[length:]
                if status != b"200":
                    errors.append(f"{p}: {status.decode()}")
    except OSError as e:
        errors.append(f"connection: {e}")
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ringstatic", action="append", default=[],
                    help="LABEL=PATH of a ringstatic binary (repeatable; default target/release/ringstatic)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--no-nginx", action="store_true")
    a = ap.parse_args()
    bench.raise_nofile()
    workers = [int(w) for w in a.workers.split(",")]
    cpus = sorted(os.sched_getaffinity(0))
    tmp = tempfile.mkdtemp(prefix="ringstatic-sitemem-")
    os.chmod(tmp, 0o755)  # servers that drop privileges must still read the site
    www = Path(tmp) / "www"
    www.mkdir()
    bench.log("writing the 20,000-file site")
    corpus = bench.Corpus(www, need_big=False, need_site=True)
    rows = []
    bins = [b.rpartition("=") for b in (a.ringstatic or ["ringstatic=target/release/ringstatic"])]

    class Ctx(bench.Ctx):
        pass

    ctx = Ctx()
    ctx.warnings, ctx.corpus, ctx.nofile = [], corpus, bench.raise_nofile()
    try:
        for w in workers:
            ctx.run_dir = Path(tmp) / f"run-{w}"
            ctx.run_dir.mkdir()
            servers = [bench.Ringstatic(ctx, str(Path(path).resolve()), label=label or "ringstatic",
                                        other_build=True) for label, _, path in bins]
            if not a.no_nginx:
                servers.append(bench.Nginx(ctx))
            for srv in servers:
                try:
                    srv.start(cpus[:w] if len(cpus) >= w else cpus, w)
                except Exception as e:  # a server that cannot start gets a row saying so
                    rows.append(f"| {srv.label} | {w} | - | - | ! {e} |")
                    continue
                try:
                    errors = []
                    t0 = time.monotonic()
                    ths = []
                    n = len(corpus.site)
                    for c in range(CONNS):
                        order = corpus.site[c * n // CONNS:] + corpus.site[:c * n // CONNS]
                        t = threading.Thread(target=fetch_all, args=(srv.port, order, errors))
                        t.start()
                        ths.append(t)
                    for t in ths:
                        t.join()
                    took = time.monotonic() - t0
                    time.sleep(1)
                    pids = srv.pids()
                    priv = bench.private_kb(pids) or 0
                    rss = 0
                    for pid in pids:
                        try:
                            for line in open(f"/proc/{pid}/status"):
                                if line.startswith("VmRSS:"):
                                    rss += int(line.split()[1])
                        except OSError:
                            pass
                    bench.log(f"{srv.label}, {w} worker(s): {CONNS} x {n} requests in {took:.1f} s, "
                              f"{len(errors)} errors")
                    note = ("! " + "; ".join(errors[:3])) if errors else ""
                    rows.append(f"| {srv.label} | {w} | {priv / 1024:.1f} MiB | {rss / 1024:.1f} MiB | {note} |")
                finally:
                    srv.stop()
    finally:
        bench.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"every file of the 20,000-file site fetched over each of {CONNS} keep-alive connections\n")
    print("| server | workers | private | RSS | errors |")
    print("|---|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
