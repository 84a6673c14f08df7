//! Landlock: after setup a worker may read files and list directories beneath the root and
//! nothing else on the filesystem: no file outside the root can be opened, nothing can be
//! written, created, removed, renamed or executed anywhere, no TCP port bound or connected to,
//! and (ABI 6) no signal sent outside the worker. Its sockets and logs are already open, and
//! Landlock does not look at open files. The one exception is reopening the logs on SIGUSR1:
//! a worker may open existing files for writing in the logs' directories (the master creates
//! them and hands them to the worker's user first; see `master`).
//!
//! Raw system calls through libc: three calls and two structs, which is less than a crate's
//! abstraction over them would be to read, and needs no dependency.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
/// ABI 1 handles bits 0..=12; 2 adds REFER, 3 TRUNCATE, 5 IOCTL_DEV.
const FS_V1: u64 = (1 << 13) - 1;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
/// ABI 4: bind and connect on TCP ports.
const NET_TCP: u64 = (1 << 0) | (1 << 1);
/// ABI 6: abstract unix sockets and signals outside the domain.
const SCOPED: u64 = (1 << 0) | (1 << 1);

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI the kernel offers, or why there is none.
pub fn abi() -> Result<u32, String> {
    // SAFETY: the version query takes no struct (null, size 0).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => "not in this kernel".to_string(),
            Some(libc::EOPNOTSUPP) => "disabled at boot (lsm= lacks landlock)".to_string(),
            Some(libc::EPERM) => {
                "blocked by a seccomp filter (a systemd unit must allow landlock_create_ruleset, landlock_add_rule and landlock_restrict_self)"
                    .to_string()
            }
            _ => format!("unavailable: {e}"),
        });
    }
    Ok(v as u32)
}

/// Restricts this process (its only thread) for good: read beneath `root`, write to existing
/// files beneath each of `log_dirs`. Returns the ABI used. Needs no_new_privs first.
pub fn restrict(root: &Path, log_dirs: &[&Path]) -> Result<u32, String> {
    let abi = abi()?;
    let mut fs = FS_V1;
    if abi >= 2 {
        fs |= REFER;
    }
    if abi >= 3 {
        fs |= TRUNCATE;
    }
    if abi >= 5 {
        fs |= IOCTL_DEV;
    }
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: if abi >= 4 { NET_TCP } else { 0 },
        scoped: if abi >= 6 { SCOPED } else { 0 },
    };
    // SAFETY: a valid attr and its size (trailing fields this kernel does not know are zero).
    let rs = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if rs < 0 {
        return Err(format!("ruleset: {}", io::Error::last_os_error()));
    }
    // SAFETY: rs is a new fd owned by nothing else.
    let ruleset = unsafe { OwnedFd::from_raw_fd(rs as i32) };
    add_rule(&ruleset, root, READ_FILE | READ_DIR)
        .map_err(|e| format!("rule for {}: {e}", root.display()))?;
    for dir in log_dirs {
        add_rule(&ruleset, dir, WRITE_FILE)
            .map_err(|e| format!("rule for {}: {e}", dir.display()))?;
    }
    // SAFETY: a valid ruleset fd and no flags.
    if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) } != 0 {
        return Err(format!("restrict_self: {}", io::Error::last_os_error()));
    }
    Ok(abi)
}

fn add_rule(ruleset: &OwnedFd, path: &Path, access: u64) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid NUL-terminated path; the fd is checked and then owned.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let parent = unsafe { OwnedFd::from_raw_fd(fd) };
    let rule = PathBeneath {
        allowed_access: access,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: a valid ruleset fd and a packed path_beneath_attr, as the ABI defines it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &rule as *const PathBeneath,
            0u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
