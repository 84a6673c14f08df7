//! io_uring plumbing: building the ring with the flags that make it cheap, probing that the
//! kernel has every operation we use (and saying so in one line when it does not), typed keys
//! (`key`), one constructor per operation (`op`), submission without spinning (`submit`), and
//! the provided-buffer ring (`bufring`).

pub mod bufring;
pub mod key;
pub mod op;
pub mod submit;

use std::io;

use io_uring::{opcode, register::Restriction, squeue, IoUring, Probe};

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
    build_with(entries, false)
}

/// As `build`; with `disabled` the ring starts disabled (`IORING_SETUP_R_DISABLED`), so that
/// `restrict_and_enable` can limit it before its first submission.
pub fn build_with(entries: u32, disabled: bool) -> io::Result<IoUring> {
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
        if disabled {
            b.setup_r_disabled();
        }
        set(&mut b);
        match b.build(entries) {
            Ok(r) => return Ok(r),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
}

/// The operations a worker submits, and the flags it sets on them: all a restricted ring accepts.
const WORKER_OPS: [u8; 11] = [
    opcode::Accept::CODE,
    opcode::AcceptMulti::CODE,
    opcode::RecvMulti::CODE,
    opcode::Recv::CODE,
    opcode::Send::CODE,
    opcode::SendMsg::CODE,
    opcode::PollAdd::CODE,
    opcode::Timeout::CODE,
    opcode::AsyncCancel::CODE,
    opcode::Close::CODE,
    opcode::Write::CODE,
];

/// Enables a ring built with `build_with(_, true)`, first (when `restrict`) limiting it to
/// `WORKER_OPS` with the IO_LINK and BUFFER_SELECT flags and to no registration at all once
/// enabled: a worker taken over could then not use the ring to open files, connect sockets or
/// register memory. Outer Err: the ring could not be enabled (fatal); inner Err: it runs
/// unrestricted, and why.
pub fn restrict_and_enable(ring: &IoUring, restrict: bool) -> Result<Result<(), String>, String> {
    let restricted = if restrict {
        let mut r: Vec<Restriction> = WORKER_OPS
            .iter()
            .map(|&op| Restriction::sqe_op(op))
            .collect();
        let flags = squeue::Flags::IO_LINK | squeue::Flags::BUFFER_SELECT;
        r.push(Restriction::sqe_flags_allowed(flags.bits()));
        ring.submitter()
            .register_restrictions(&mut r)
            .map_err(|e| format!("refused: {e}"))
    } else {
        Err("off".into())
    };
    ring.submitter()
        .register_enable_rings()
        .map_err(|e| format!("cannot enable the io_uring: {e}"))?;
    Ok(restricted)
}

/// Checks that the kernel knows every operation and feature we submit, so a worker fails at start
/// with one clear line rather than with an obscure error on the first request.
pub fn probe(ring: &IoUring) -> Result<(), String> {
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    let needed = [
        (opcode::Accept::CODE, "accept"),
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

#[cfg(test)]
mod tests {
    /// Every operation `op` can build is one a restricted ring accepts: an operation added there
    /// and forgotten in `WORKER_OPS` would fail with EACCES on every submission.
    #[test]
    fn restrictions_list_every_operation_op_builds() {
        let src = include_str!("op.rs");
        let here = include_str!("mod.rs");
        let list = &here[here.find("const WORKER_OPS").unwrap()..];
        let list = &list[..list.find("];").unwrap()];
        for part in src.split("opcode::").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            if name.is_empty() || part[name.len()..].starts_with('}') {
                continue;
            }
            assert!(
                list.contains(&format!("opcode::{name}::CODE")),
                "ring::op builds {name}, which WORKER_OPS does not allow"
            );
        }
    }
}
