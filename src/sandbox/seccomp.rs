//! The seccomp filter a worker installs after setup: an allowlist of the system calls its loop
//! makes; any other fails with EPERM (not a kill: a call we forgot on some rare path then shows
//! up as a logged error on that request, never as a dead worker). A worker that was taken over
//! can therefore not start a process, open a socket, map executable memory from a file, change
//! credentials, ptrace, mount, or load a new filter.
//!
//! The list was found by tracing the workers through the test suite (`strace -f`, every path:
//! memory and sendfile and splice bodies, openat2 and the component walk, reload, USR1, drain)
//! and is kept as short as that trace allows. The filter looks at the call's number only (and
//! at ioctl's request), so the kernel turns it into a bitmap on first use (Linux 5.11+): an
//! allowed call such as `io_uring_enter` never runs the program, which keeps the request path's
//! cost what it was (see README, "Security model").

use std::io;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct Prog {
    len: u16,
    filter: *const Insn,
}

/// BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20).
const LD_W_ABS: u16 = 0x20;
/// BPF_JMP (5) | BPF_JEQ (0x10) | BPF_K (0).
const JEQ_K: u16 = 0x15;
/// BPF_RET (6) | BPF_K (0).
const RET_K: u16 = 0x06;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of args[1] (little-endian).
const OFF_ARG1_LO: u32 = 16 + 8;

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;

#[cfg(target_arch = "x86_64")]
const ARCH: Option<u32> = Some(0xC000_003E);
#[cfg(target_arch = "aarch64")]
const ARCH: Option<u32> = Some(0xC000_00B7);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: Option<u32> = None;

/// The calls a worker makes after setup, hottest first (the order only matters without the
/// kernel's bitmap cache). Names are libc's, so the numbers follow the architecture. `ktls`:
/// setsockopt too, which hands a connection's TLS keys to the kernel (`tls::ktls::enable`).
fn allowed(ktls: bool) -> Vec<libc::c_long> {
    use libc::*;
    let mut v = vec![
        // the loop, the first read, bodies
        SYS_io_uring_enter,
        SYS_recvfrom,
        SYS_sendmsg,
        // TLS: a failed handshake's fatal alert, sent at once before the close (worker::tls)
        SYS_sendto,
        SYS_sendfile,
        SYS_splice,
        SYS_read,
        SYS_write,
        SYS_pread64,
        // TLS: a mapped file's bytes copied by the kernel before they are sealed (a truncated
        // file then fails the copy with EFAULT instead of raising SIGBUS).
        SYS_process_vm_readv,
        // the file cache: open beneath the root (openat2, or the walk), stat, close
        SYS_openat2,
        SYS_openat,
        SYS_newfstatat,
        SYS_fstat,
        SYS_statx,
        SYS_readlinkat,
        SYS_lseek,
        SYS_close,
        SYS_fcntl,
        // --autoindex: a directory's names (readdir)
        SYS_getdents64,
        // the splice pipe pool
        SYS_pipe2,
        // connections: the peer's address for the access log, shut down our side before
        // lingering, a listener's options; FIONREAD while draining (ioctl, filtered below)
        SYS_getpeername,
        // A draining worker takes what waits in a listener's backlog before letting it go.
        SYS_accept4,
        SYS_shutdown,
        SYS_getsockopt,
        // memory
        SYS_mmap,
        SYS_munmap,
        SYS_mremap,
        SYS_madvise,
        SYS_mprotect,
        SYS_brk,
        // time (the vDSO's fallback), a panic's message and abort, std's bookkeeping; getrandom
        // because std would otherwise open /dev/urandom, which Landlock refuses, and so would
        // ring (TLS handshake randoms, session-ticket nonces) on EPERM
        SYS_clock_gettime,
        SYS_rt_sigreturn,
        SYS_rt_sigprocmask,
        SYS_rt_sigaction,
        SYS_sigaltstack,
        SYS_futex,
        SYS_getrandom,
        SYS_getpid,
        SYS_gettid,
        SYS_restart_syscall,
        // USR1: the error log onto fd 2
        SYS_dup3,
        // exit
        SYS_exit,
        SYS_exit_group,
        SYS_tgkill,
    ];
    #[cfg(target_arch = "x86_64")]
    v.push(SYS_dup2);
    if ktls {
        v.push(SYS_setsockopt);
    }
    v
}

/// Builds the program: wrong architecture -> EPERM; ioctl only with FIONREAD; the list -> allow;
/// anything else -> EPERM.
fn program(arch: u32, ktls: bool) -> Vec<Insn> {
    let ins = |code, jt, jf, k| Insn { code, jt, jf, k };
    let mut p = vec![
        ins(LD_W_ABS, 0, 0, OFF_ARCH),
        ins(JEQ_K, 1, 0, arch),
        ins(RET_K, 0, 0, EPERM),
        ins(LD_W_ABS, 0, 0, OFF_NR),
    ];
    for nr in allowed(ktls) {
        p.push(ins(JEQ_K, 0, 1, nr as u32));
        p.push(ins(RET_K, 0, 0, ALLOW));
    }
    // ioctl(fd, FIONREAD, ..): how many bytes wait in a socket while draining.
    p.push(ins(JEQ_K, 0, 3, libc::SYS_ioctl as u32));
    p.push(ins(LD_W_ABS, 0, 0, OFF_ARG1_LO));
    p.push(ins(JEQ_K, 0, 1, libc::FIONREAD as u32));
    p.push(ins(RET_K, 0, 0, ALLOW));
    p.push(ins(RET_K, 0, 0, EPERM));
    p
}

/// Installs the filter on this (only) thread for good. Needs no_new_privs first.
pub fn install(ktls: bool) -> Result<(), String> {
    let Some(arch) = ARCH else {
        return Err("no allowlist for this architecture".into());
    };
    let p = program(arch, ktls);
    let prog = Prog {
        len: p.len() as u16,
        filter: p.as_ptr(),
    };
    // SPEC_ALLOW: where the kernel would otherwise turn on its Speculative Store Bypass
    // mitigation for every filtered task (spec_store_bypass_disable=seccomp, the default before
    // Linux 5.16), which slows all of the worker's code; that mitigation is for tasks running
    // untrusted code, and a worker runs none. Kernels without the flag (before 4.17) get none.
    for flags in [libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW, 0] {
        // SAFETY: a valid program the kernel copies before returning.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const Prog,
            )
        };
        if r == 0 {
            return Ok(());
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    // seccomp(2) itself may be filtered (systemd's @system-service lacks it); prctl is the
    // older door to the same filter.
    // SAFETY: as above; prctl takes the same program.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const Prog,
            0,
            0,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL) => "not in this kernel".into(),
            _ => format!("refused: {e}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_program() {
        let p = program(0, true);
        for (i, insn) in p.iter().enumerate() {
            if insn.code == JEQ_K {
                assert!(i + 1 + (insn.jt.max(insn.jf) as usize) < p.len());
            }
        }
        assert_eq!(p.last().unwrap().k, EPERM);
        assert!(p.len() < 4096);
        let mut nrs = allowed(true);
        nrs.sort();
        nrs.dedup();
        assert_eq!(nrs.len(), allowed(true).len(), "a call listed twice");
        assert!(!allowed(false).contains(&libc::SYS_setsockopt));
    }
}
