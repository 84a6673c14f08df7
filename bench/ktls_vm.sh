#!/bin/sh
# Kernel TLS against user-space TLS, run inside the VM by `bench/run.sh --ktls-vm`
# (tests/vm/run.sh boots Debian's 6.1 kernel, whose tls module this machine's kernel may lack):
#   ktls_vm.sh BIN SECONDS ROUNDS
# In a fresh directory: a 1 MiB file and a P-256 certificate; then, ROUNDS times alternating,
# one worker with `--ktls auto` (keys in the kernel, bodies by sendfile) and one with
# `--ktls off` (rustls seals every record), each loaded by wrk over HTTPS (1 thread, 8
# keep-alive connections, SECONDS). The figure is the server's CPU time (user + system of the
# master and its worker, from /proc) per request, and the kernel's sw TLS contexts opened.
# The VM runs in software emulation: compare the two modes with each other, not with figures
# from real hardware.
set -eu
BIN="$1"
SECS="${2:-10}"
ROUNDS="${3:-3}"
dir=$(mktemp -d)
cd "$dir"
mkdir root
head -c 1048576 /dev/urandom >root/1m.bin
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
    -out cert.pem -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
ip link set lo up 2>/dev/null || true
tick=$(getconf CLK_TCK)

# utime + stime, in ticks, of a process and its children (the workers).
cpu_of() {
    total=0
    for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

run_one() {
    mode="$1"
    "$BIN" --root root --listen 127.0.0.1:0,tls --tls-cert cert.pem --tls-key key.pem \
        --workers 1 --ktls "$mode" >out 2>err &
    pid=$!
    i=0
    until grep -q 'listening on https://' out 2>/dev/null && grep -q 'kernel TLS' err; do
        i=$((i + 1))
        [ $i -gt 300 ] && { echo "server did not start: $(cat err)"; exit 1; }
        sleep 0.1
    done
    port=$(grep -o 'https://127.0.0.1:[0-9]*' out | head -n1 | sed 's/.*://')
    line=$(grep 'kernel TLS' err)
    # Warm the cache and the handshake path.
    curl -sk -o /dev/null "https://127.0.0.1:$port/1m.bin"
    tx0=$(awk '$1 == "TlsTxSw" { print $2 }' /proc/net/tls_stat)
    c0=$(cpu_of $pid)
    reqs=$(wrk -t1 -c8 -d"${SECS}s" "https://127.0.0.1:$port/1m.bin" |
        awk '/requests in/ { print $1 }')
    c1=$(cpu_of $pid)
    tx1=$(awk '$1 == "TlsTxSw" { print $2 }' /proc/net/tls_stat)
    kill -TERM $pid
    wait $pid || true
    us=$(awk -v c=$((c1 - c0)) -v n="$reqs" -v t="$tick" 'BEGIN { printf "%.0f", c * 1e6 / t / n }')
    echo "$mode $reqs $us $((tx1 - tx0))"
    echo "  --ktls $mode: $reqs requests in ${SECS}s, server CPU $us us/request, kTLS contexts $((tx1 - tx0)) ($line)" >&2
}

: >results
r=0
while [ $r -lt "$ROUNDS" ]; do
    run_one auto >>results
    run_one off >>results
    r=$((r + 1))
done
awk '
    { n[$1] += 1; us[$1] = us[$1] " " $3; sum[$1] += $3 }
    END {
        a = sum["auto"] / n["auto"]; o = sum["off"] / n["off"]
        printf "1m over HTTPS, server CPU per request (us), %d rounds:\n", n["auto"]
        printf "  kernel TLS + sendfile (--ktls auto):%s  mean %.0f\n", us["auto"], a
        printf "  user-space TLS (--ktls off):        %s  mean %.0f\n", us["off"], o
        printf "  ratio kTLS / user space: %.2f\n", a / o
    }' results
