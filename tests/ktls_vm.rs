//! Kernel TLS where a kernel has it. A kernel built without CONFIG_TLS (as this machine's may
//! be) cannot hand records to the kernel, so this test boots Debian's 6.1 kernel, whose `tls`
//! module can, in a VM over this machine's own files (`tests/vm/run.sh`: virtme-ng, qemu in
//! software emulation, about 40 s to boot), and runs `tests/vm/ktls.sh` there against the
//! server built here: the start line says kernel TLS is on, a 1.2 MB file and a 1.1 MB range
//! arrive byte-exact over TLS 1.3 and 1.2 (sendfile through kTLS), three responses on one
//! keep-alive connection, close_notify after a `Connection: close` response (Python's ssl
//! tells a bare FIN from it), resumed sessions (TLS 1.2 and 1.3) handed over too; a record
//! that does not decrypt, the client's close_notify and a TLS 1.3 KeyUpdate (openssl
//! s_client's `k`) each end their connection and nothing else; the kernel's counters of TLS
//! contexts (`/proc/net/tls_stat`) grew by one TX and one RX per connection with one decrypt
//! error (the bad record); the server stops cleanly. Without qemu, virtme-ng, busybox or the
//! kernel image it says `skipped` loudly. About 50 to 90 s on
//! two cores, most of it the boot.
//!
//! The kernel-level checks (every version and cipher, KeyUpdate, close_notify both ways) are
//! `tls::ktls`'s unit tests, which run inside the VM the same way:
//! `tests/vm/run.sh -- target/debug/deps/ringstatic-HASH tls::ktls`.

mod common;

use std::process::Command;

use common::*;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn kernel_tls_in_a_vm() {
    for tool in ["openssl", "curl", "python3"] {
        if !have(tool) {
            eprintln!("skipped: kernel_tls_in_a_vm: {tool} is not installed");
            return;
        }
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    let dir = TempDir::new("ktls-vm");
    let cert = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run openssl");
    assert!(
        cert.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&cert.stderr)
    );
    dir.write("root/big.bin", &pattern_bytes(1_200_000, 14));
    dir.write("root/small.txt", b"a small file\n");

    let out = Command::new(format!("{repo}/tests/vm/run.sh"))
        .args(["--timeout", "300", "--", "sh"])
        .arg(format!("{repo}/tests/vm/ktls.sh"))
        .arg(BIN)
        .current_dir(dir.path())
        .output()
        .expect("run tests/vm/run.sh");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        let line = text
            .lines()
            .find(|l| l.starts_with("skipped:"))
            .unwrap_or("skipped: no VM");
        eprintln!("{line}");
        return;
    }
    eprintln!("{text}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the checks inside the VM failed:\n{text}"
    );
    for check in [
        "ok: start line says kernel TLS is on",
        "ok: TLS 1.3: big.bin (1200000 bytes) byte-exact",
        "ok: TLS 1.3: a 1.1 MB range byte-exact",
        "ok: TLS 1.2: big.bin (1200000 bytes) byte-exact",
        "ok: TLS 1.2: a 1.1 MB range byte-exact",
        "ok: keep-alive: three responses on one connection byte-exact",
        "ok: close_notify arrived after the Connection: close response",
        "ok: TLSv1_2: a resumed session, then the keys in the kernel",
        "ok: TLSv1_3: a resumed session, then the keys in the kernel",
        "ok: a record that does not decrypt ends the connection",
        "ok: the client's close_notify ends the connection",
        "ok: a KeyUpdate ends the connection after its first response",
        "ok: the kernel's TLS counters grew",
        "ok: ringstatic_tls_kernel_total counts the",
        "ok: still serving, stopped cleanly",
    ] {
        assert!(text.contains(check), "missing `{check}` in:\n{text}");
    }
}
