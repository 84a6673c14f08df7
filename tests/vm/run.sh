#!/usr/bin/env bash
# Runs a command inside a virtual machine booted on Debian's 6.1 kernel, whose `tls` module gives
# kernel TLS (a kernel built without CONFIG_TLS cannot test it). virtme-ng boots the kernel over
# this machine's own files (read-only, with the current directory writable), with qemu in
# software emulation, so no disk image is built and no KVM is needed. The command's output and
# exit status are the script's.
#
#   tests/vm/run.sh [--timeout SECONDS] [--cpus N] [--memory SIZE] -- COMMAND...
#
# The command runs as root in the current directory, after `modprobe tls`. Exit status 3 with a
# `skipped:` line means the tools or the kernel image are missing (qemu-system-x86,
# linux-image-amd64 and busybox-static from apt, virtme-ng from pip); 124 means the timeout.
# RINGSTATIC_VM_KERNEL names another kernel image.
#
# Measured here (2 cores shared, Debian 12, virtme-ng 1.42, qemu 7.2, kernel 6.1.0-57):
# - booting to the command takes about 40 s (software emulation); `sh -c 'exit 7'` returns 7
#   after about 55 s of wall time in all;
# - `modprobe tls` works, and /proc/net/tls_stat counts the contexts;
# - io_uring works there with the server's ring setup (SINGLE_ISSUER, DEFER_TASKRUN, restricted
#   ring, provided buffers, multishot recv): `ringstatic --root X --listen 127.0.0.1:0` serves a
#   3 MB file and a range byte-exact to curl inside the VM, with seccomp on, and stops cleanly.
set -uo pipefail

timeout_s=300
cpus=2
memory=2G
while [ $# -gt 0 ]; do
    case "$1" in
    --timeout) timeout_s="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "tests/vm/run.sh: unknown option $1 (usage: [--timeout S] [--cpus N] [--memory SIZE] -- COMMAND...)" >&2; exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "tests/vm/run.sh: no command given (usage: [--timeout S] [--cpus N] [--memory SIZE] -- COMMAND...)" >&2
    exit 2
fi

kernel="${RINGSTATIC_VM_KERNEL:-}"
if [ -z "$kernel" ]; then
    kernel=$(ls /boot/vmlinuz-6.1.*-amd64 2>/dev/null | sort -V | tail -n1)
fi
missing=()
command -v vng >/dev/null 2>&1 || missing+=("vng (pip install virtme-ng)")
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=("qemu-system-x86_64 (apt qemu-system-x86)")
[ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || missing+=("busybox (apt busybox-static)")
[ -n "$kernel" ] && [ -r "$kernel" ] || missing+=("a readable /boot/vmlinuz-6.1.*-amd64 (apt linux-image-amd64 on Debian 12)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "skipped: no kernel-TLS VM here: missing ${missing[*]}"
    exit 3
fi

# The command travels as one quoted line; `exit` carries its status out of the guest.
cmd=$(printf '%q ' "$@")
inner="modprobe tls || echo 'vm: modprobe tls failed' >&2; cd $(printf '%q' "$PWD") && $cmd"
# Software emulation: with KVM, qemu here stopped on "failed to set MSR 0x10a".
exec timeout --kill-after=10 "$timeout_s" \
    vng --run "$kernel" --user root --disable-kvm --cpus "$cpus" --memory "$memory" \
    --rwdir "$PWD" -- "$inner"
