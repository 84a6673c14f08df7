"""TLS for bench.py's `--tls` mode: one certificate for every server, and the checks that say
what was measured.

A comparison over HTTPS is only fair when both servers present the same certificate and agree
on the same cipher suite and key exchange with the same client, and when we know which kind of
handshake the client makes. So this module:

  - makes a throwaway certificate at run time with `openssl` (never a committed key): an EC P-256
    leaf, the usual choice for speed (one ECDSA signature per full handshake), signed by a P-256
    CA made the same way, and sent as a chain of two, as a real site sends its leaf and one
    intermediate;
  - writes nginx's TLS lines (TLS 1.2 and 1.3, a shared session cache and tickets, as in a
    typical configuration);
  - asks each server with `openssl s_client`, the library and the defaults wrk itself uses, which
    protocol, cipher suite and group it negotiates (TLS 1.3, and TLS 1.2 as well);
  - checks that each server resumes a session from a ticket of an earlier connection;
  - builds `wrk-no-resume.c`, preloaded into wrk for the full-handshake scenario: on its own wrk
    offers every connection the session of the previous one, so `Connection: close` measures
    resumed handshakes;
  - reads a probe nginx's log of `$ssl_session_reused` to count, rather than assume, how many of
    wrk's connections resumed, with and without the preload.

Python standard library only, plus the `openssl` command and a C compiler (`cc`).
"""

import os
import re
import socket
import ssl
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
NO_RESUME_SRC = HERE / "wrk-no-resume.c"
# nginx log format for the probe: one line per request, what the connection negotiated
PROBE_LOG_FORMAT = "$ssl_protocol $ssl_cipher $ssl_curve $ssl_session_reused"


class TlsSetupError(Exception):
    pass


def _run(argv, what, **kw):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, **kw)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TlsSetupError(f"{what}: {argv[0]}: {e}") from e
    if r.returncode != 0:
        raise TlsSetupError(f"{what} failed ({' '.join(argv)}): {r.stdout.decode(errors='replace').strip()[-400:]}")
    return r.stdout.decode(errors="replace")


class Tls:
    """The certificate, key and CA of one bench run, in `directory`."""

    DESCRIPTION = ("EC P-256 (prime256v1) leaf for localhost and 127.0.0.1, signed by a throwaway P-256 CA, "
                   "sent as a chain of two (leaf + CA, as a site sends leaf + intermediate); made with openssl "
                   "at the start of the run")

    def __init__(self, directory):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        self.ca = d / "ca.pem"
        self.cert = d / "fullchain.pem"
        self.key = d / "key.pem"
        self.no_resume_so = None
        ca_key, leaf = d / "ca-key.pem", d / "leaf.pem"
        gen = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        _run(gen + ["-out", str(ca_key)], "making the CA key")
        _run(["openssl", "req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", "30",
              "-subj", "/CN=ringstatic bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(self.ca)], "making the CA")
        _run(gen + ["-out", str(self.key)], "making the key")
        csr = d / "leaf.csr"
        _run(["openssl", "req", "-new", "-key", str(self.key), "-subj", "/CN=localhost", "-out", str(csr)],
             "making the request")
        ext = d / "leaf.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(ca_key),
              "-set_serial", "2", "-days", "30", "-sha256", "-extfile", str(ext), "-out", str(leaf)],
             "signing the certificate")
        self.cert.write_text(leaf.read_text() + self.ca.read_text())
        # the servers read the key as whoever they run as; the directory is private to this run
        os.chmod(self.key, 0o644)
        self.client = ssl.create_default_context(cafile=str(self.ca))

    def build_no_resume(self):
        """Compiles wrk-no-resume.c into this run's directory; the path, or raises TlsSetupError."""
        out = self.dir / "wrk-no-resume.so"
        _run(["cc", "-shared", "-fPIC", "-O2", "-o", str(out), str(NO_RESUME_SRC), "-ldl"],
             "building the wrk preload (bench/wrk-no-resume.c; needs a C compiler: apt-get install gcc libc6-dev)")
        self.no_resume_so = out
        return out

    def nginx_lines(self, kernel_tls):
        """nginx's TLS directives for the http block: the same certificate, TLS 1.2 and 1.3 with
        the library's default suites, a shared session cache and tickets as a typical site has."""
        ktls = "    ssl_conf_command Options KTLS;\n" if kernel_tls else ""
        return (f"    ssl_certificate {self.cert};\n"
                f"    ssl_certificate_key {self.key};\n"
                "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                "    ssl_session_cache shared:SSL:10m;\n"
                "    ssl_session_timeout 1d;\n"
                "    ssl_session_tickets on;\n"
                f"{ktls}")


def kernel_tls():
    """Whether this kernel offers the `tls` upper-layer protocol now (module loaded or built in)."""
    try:
        return "tls" in Path("/proc/sys/net/ipv4/tcp_available_ulp").read_text().split()
    except OSError:
        return False


def negotiated(port, tls12=False):
    """What `openssl s_client` with its defaults (as wrk has them) negotiates with 127.0.0.1:port:
    'TLSv1.3 TLS_AES_256_GCM_SHA384 X25519', or a line saying why not."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"] + (["-tls1_2"] if tls12 else [])
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no answer ({type(e).__name__})"
    out = r.stdout.decode(errors="replace")
    proto = re.search(r"^Protocol version: (\S+)", out, re.M)
    suite = re.search(r"^Ciphersuite: (\S+)", out, re.M)
    group = re.search(r"^(?:Server Temp Key|Negotiated TLS1.3 group): ([^,\n]+)", out, re.M)
    if not (proto and suite):
        tail = out.strip().splitlines()[-1] if out.strip() else "no output"
        return f"no handshake ({tail[:120]})"
    return " ".join(x.group(1).strip() for x in (proto, suite, group) if x)


def _get(context, port, session=None):
    """One HTTPS request with Connection: close; -> (session after the response, resumed?)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            try:
                while s.recv(65536):
                    pass
            except (ssl.SSLError, OSError):
                pass  # a close without close_notify: the session is what matters here
            return s.session, s.session_reused


def resumes(context, port):
    """Whether a second connection resumes with what the first one received (a TLS 1.3 ticket).
    -> 'yes', 'no', or why it could not be told."""
    try:
        sess, _ = _get(context, port)
        if sess is None:
            return "no session received"
        _, reused = _get(context, port, sess)
        return "yes" if reused else "no"
    except (OSError, ssl.SSLError, ValueError) as e:
        return f"could not tell ({type(e).__name__}: {e})"


def probe_counts(lines):
    """From the probe nginx's log lines -> (connections, resumed, the negotiated protocol, suite and
    group as wrk got them). One request per connection (Connection: close)."""
    n = reused = 0
    kinds = {}
    for line in lines:
        f = line.split()
        if len(f) != 4:
            continue
        n += 1
        reused += f[3] == "r"
        k = " ".join(f[:3])
        kinds[k] = kinds.get(k, 0) + 1
    suite = max(kinds, key=kinds.get) if kinds else "none"
    return n, reused, suite
