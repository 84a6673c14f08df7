#!/bin/sh
# Kernel TLS checks, run inside the VM by tests/ktls_vm.rs (tests/vm/run.sh), in a directory
# that holds root/ (big.bin, small.txt), cert.pem and key.pem:
#   ktls.sh BIN
# Starts BIN on a tls listener, then: the start line says kernel TLS is on; a large file
# (sendfile through kTLS) and ranges of it arrive byte-exact over TLS 1.3 and 1.2; close_notify
# arrives after a `Connection: close` response; resumed sessions (TLS 1.2, 1.3) move their
# keys too; a record that does not decrypt, the client's
# close_notify and a TLS 1.3 KeyUpdate each end their connection; the kernel's TLS counters
# grew; the server still serves and stops cleanly. Prints one `ok: ...` line per check,
# `FAIL: ...` and exit 1 on the first that fails.
set -u
BIN="$1"
fail() { echo "FAIL: $*"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; exit 1; }
stat_of() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }

ip link set lo up 2>/dev/null
[ -r /proc/net/tls_stat ] || fail "no /proc/net/tls_stat: the tls module did not load"

"$BIN" --root root --listen 127.0.0.1:0,tls --tls-cert cert.pem --tls-key key.pem \
    --workers 1 --status-listen 127.0.0.1:0 >server.out 2>server.err &
pid=$!
i=0
until grep -q 'listening on https://' server.out 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 300 ] && fail "the server did not start: $(cat server.err)"
    sleep 0.1
done
port=$(grep -o 'https://127.0.0.1:[0-9]*' server.out | head -n1 | sed 's/.*://')
i=0
until grep -q 'kernel TLS:' server.err 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 300 ] && fail "no kernel TLS start line: $(cat server.err)"
    sleep 0.1
done
grep 'kernel TLS:' server.err
grep -q 'kernel TLS: on' server.err || fail "kernel TLS is not on: $(grep 'kernel TLS' server.err)"
echo "ok: start line says kernel TLS is on"
# Counted from here, past the server's own probe at start.
tx0=$(stat_of TlsTxSw)
rx0=$(stat_of TlsRxSw)

get() { curl -sS --max-time 60 --cacert cert.pem --resolve "localhost:$port:127.0.0.1" "$@"; }
url="https://localhost:$port"
for v in 1.3 1.2; do
    get --tlsv$v --tls-max $v -o got.bin "$url/big.bin" || fail "TLS $v: curl big.bin"
    cmp -s got.bin root/big.bin || fail "TLS $v: big.bin differs"
    echo "ok: TLS $v: big.bin ($(wc -c <got.bin) bytes) byte-exact"
    get --tlsv$v --tls-max $v -r 1000-1100999 -o range.bin "$url/big.bin" || fail "TLS $v: range"
    dd if=root/big.bin bs=1000 skip=1 count=1100 2>/dev/null | cmp -s - range.bin ||
        fail "TLS $v: range 1000-1100999 differs"
    echo "ok: TLS $v: a 1.1 MB range byte-exact"
done
# Keep-alive: several requests on one connection, a large body between small ones.
get -o k1.txt "$url/small.txt" -o k2.bin "$url/big.bin" -o k3.txt "$url/small.txt" ||
    fail "keep-alive requests"
cmp -s k1.txt root/small.txt && cmp -s k2.bin root/big.bin && cmp -s k3.txt root/small.txt ||
    fail "keep-alive bodies differ"
echo "ok: keep-alive: three responses on one connection byte-exact"

# close_notify: Python's ssl (OpenSSL) reports a FIN without it as an EOF error.
python3 - "$port" <<'EOF' || fail "close_notify"
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context(cafile="cert.pem")
raw = socket.create_connection(("127.0.0.1", port), timeout=30)
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except ssl.SSLEOFError as e:
    sys.exit("FIN without close_notify: %s" % e)
if not data.startswith(b"HTTP/1.1 200"):
    sys.exit("unexpected response: %r" % data[:100])
print("ok: close_notify arrived after the Connection: close response (%s)" % s.version())
EOF

# Resumption: the second connection resumes the first's session (TLS 1.2: the server's Finished
# goes first and the client's ends the handshake; TLS 1.3: a ticket), then the keys move as after
# a full handshake.
python3 - "$port" <<'EOF' || fail "resumption"
import socket, ssl, sys
port = int(sys.argv[1])
for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
    ctx = ssl.create_default_context(cafile="cert.pem")
    ctx.minimum_version = ctx.maximum_version = version
    session = None
    for attempt in (1, 2):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        if not (data.startswith(b"HTTP/1.1 200") and data.endswith(b"small file\n")):
            sys.exit("%s attempt %d: %r" % (version.name, attempt, data[-80:]))
        if attempt == 2 and not s.session_reused:
            sys.exit("%s: the session was not resumed" % version.name)
        session = s.session
        s.close()
    print("ok: %s: a resumed session, then the keys in the kernel" % version.name)
EOF

# What a client sends to a connection the kernel decrypts: a record that does not decrypt, and
# the client's own close_notify, each end that connection (the recv fails: EBADMSG, EIO), and the
# worker serves the next one.
python3 - "$port" <<'EOF' || fail "bad record / client close_notify"
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context(cafile="cert.pem")

def keys_moved():
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    side = raw.dup()
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"small file" not in data:
        b = s.recv(65536)
        if not b:
            sys.exit("closed before the response")
        data += b
    return s, side

def closed(sock):
    sock.settimeout(30)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass

s, side = keys_moved()
side.sendall(b"\x17\x03\x03\x00\x20" + b"x" * 32)
closed(side)
print("ok: a record that does not decrypt ends the connection")
s, side = keys_moved()
try:
    s.unwrap()
except (ssl.SSLError, OSError):
    pass
closed(side)
print("ok: the client's close_notify ends the connection")
EOF
# A TLS 1.3 KeyUpdate: the kernel cannot follow it, so the connection ends there (in user
# space, rustls would answer the second request too).
req='GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n'
n=$( (printf "$req"; sleep 3; echo k; sleep 3; printf "$req"; sleep 3) |
    timeout 60 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
        -CAfile cert.pem -tls1_3 2>&1 | tee keyupdate.out | grep -c '^HTTP/1.1 200')
grep -q KEYUPDATE keyupdate.out || fail "openssl s_client sent no KeyUpdate: $(cat keyupdate.out)"
[ "$n" = 1 ] || fail "after a KeyUpdate: $n responses, expected 1 (the connection ends)"
echo "ok: a KeyUpdate ends the connection after its first response"

tx1=$(stat_of TlsTxSw)
rx1=$(stat_of TlsRxSw)
echo "tls_stat: TlsTxSw $tx0 -> $tx1, TlsRxSw $rx0 -> $rx1"
# Each connection above installs one TX and one RX context: thirteen connections.
[ "$tx1" -ge $((tx0 + 13)) ] || fail "TlsTxSw grew by $((tx1 - tx0)), expected 13 or more"
[ "$rx1" -ge $((rx0 + 13)) ] || fail "TlsRxSw grew by $((rx1 - rx0)), expected 13 or more"
# One decrypt error: the record sent on purpose above.
[ "$(stat_of TlsDecryptError)" = 1 ] || fail "TlsDecryptError $(stat_of TlsDecryptError), expected 1"
echo "ok: the kernel's TLS counters grew"
status=$(cat server.out server.err | grep -o 'status on http://[0-9.:]*' | head -n1 | sed 's|status on ||')
i=0
while :; do
    handed=$(curl -sS --max-time 10 "$status/metrics" | awk '/^ringstatic_tls_kernel_total\{worker="all"\}/ { n = $2 } END { print n + 0 }')
    [ "$handed" = 13 ] && break
    i=$((i + 1))
    [ $i -gt 50 ] && fail "ringstatic_tls_kernel_total is $handed, expected 13, one per connection above"
    sleep 0.2
done
echo "ok: ringstatic_tls_kernel_total counts the $handed connections handed to the kernel"

get -o again.txt "$url/small.txt" && cmp -s again.txt root/small.txt || fail "served no more"
kill -TERM "$pid"
wait "$pid"
code=$?
[ $code = 0 ] || fail "server exit status $code: $(tail -n5 server.err)"
grep -E 'panicked|exited|killed' server.err && fail "a worker died"
echo "ok: still serving, stopped cleanly"
