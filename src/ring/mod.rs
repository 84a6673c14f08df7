//! io_uring plumbing: building the ring with the flags that make it cheap, probing that the
//! kernel has every operation we use (and saying so in one line when it does not), typed keys
//! (`key`), one constructor per operation (`op`), submission without spinning (`submit`), and
//! the provided-buffer ring (`bufring`).

pub mod bufring;
pub mod key;
pub mod op;
pub mod submit;

use std::io;

use io_uring::{opcode, IoUring, Probe};

/// Why io_uring cannot be used here, in words an operator can act on.
pub fn unavailable_reason(err: &io::Error) -> String {
    let why = match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "blocked: check /proc/sys/kernel/io_uring_disabled, or the container's seccomp profile \
             (Docker's default profile blocks io_uring since Docker 25; run with \
             --security-opt seccomp=unconfined or a profile that allows io_uring_setup, \
             io_uring_enter and io_uring_register)"
        }
        Some(libc::ENOSYS) => {
            "this kernel was built without io_uring, or a sandbox hides it (gVisor, old seccomp)"
        }
        Some(libc::ENOMEM) => "not enough locked memory for the ring (raise RLIMIT_MEMLOCK)",
        _ => "unexpected error",
    };
    format!("io_uring is unavailable ({err}): {why}")
}

/// Builds a worker's ring: one submitter thread, completions processed only when we ask (no
/// interrupting task work), which halves the cost per request against a plain ring (see docs/design.md).
/// Falls back to fewer flags on kernels that lack them (DEFER_TASKRUN needs 6.1).
pub fn build(entries: u32) -> io::Result<IoUring> {
    let cq = entries.saturating_mul(8);
    let attempts: [fn(&mut io_uring::Builder); 3] = [
        |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_submit_all();
        },
        |b| {
            b.setup_coop_taskrun().setup_submit_all();
        },
        |_| {},
    ];
    let mut last = None;
    for set in attempts {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq).setup_clamp();
        set(&mut b);
        match b.build(entries) {
            Ok(r) => return Ok(r),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
}

/// Checks that the kernel knows every operation and feature we submit, so a worker fails at start
/// with one clear line rather than with an obscure error on the first request.
pub fn probe(ring: &IoUring) -> Result<(), String> {
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    let needed = [
        (opcode::AcceptMulti::CODE, "multishot accept"),
        (opcode::RecvMulti::CODE, "multishot recv"),
        (opcode::Send::CODE, "send"),
        (opcode::SendMsg::CODE, "sendmsg"),
        (opcode::PollAdd::CODE, "poll"),
        (opcode::Timeout::CODE, "timeout"),
        (opcode::AsyncCancel::CODE, "cancel"),
        (opcode::Close::CODE, "close"),
    ];
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(c, _)| !p.is_supported(*c))
        .map(|(_, n)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "io_uring on this kernel lacks {} (ringstatic needs Linux 6.0 or newer)",
            missing.join(", ")
        ));
    }
    if !ring.params().is_feature_nodrop() {
        return Err("io_uring on this kernel lacks IORING_FEAT_NODROP (ringstatic needs Linux 6.0 or newer)".into());
    }
    Ok(())
}

/// Builds a small ring and probes it: what the master runs once before starting any worker.
pub fn check_available() -> Result<(), String> {
    let ring = build(8).map_err(|e| unavailable_reason(&e))?;
    probe(&ring)?;
    let br = bufring::BufRing::new(&ring, 0, 2, 64)
        .map_err(|e| format!("io_uring provided-buffer rings are unavailable ({e}): ringstatic needs Linux 6.0 or newer"))?;
    br.unregister(&ring);
    Ok(())
}
