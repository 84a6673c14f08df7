//! Temporary directories for the tests: a uniquely named directory per test (the server's
//! document root, config files, logs), always removed on drop, also when a test panics or has
//! taken permissions away.
//!
//! The directory itself and those made by `mkdir` are 0755 whatever the umask, and
//! `write_mode` sets a file's mode: tests/systemd.rs binds these directories into a container
//! where the service runs as an unprivileged (dynamic) user that must be able to read them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A uniquely named directory under `std::env::temp_dir()`, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let n = TMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "ringstatic-test-{}-{}-{}-{}",
            tag,
            std::process::id(),
            n,
            nanos
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join<P: AsRef<Path>>(&self, p: P) -> PathBuf {
        self.path.join(p)
    }

    /// Write `content` to `rel` (parent directories are created).
    pub fn write<P: AsRef<Path>>(&self, rel: P, content: &[u8]) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&p, content).expect("write test file");
        p
    }

    /// Like `write`, with the file's modification time an hour ago, as most files a server
    /// serves are: a file written during the current second gets no Last-Modified (its date
    /// cannot tell it from another version written in the same second).
    pub fn write_aged<P: AsRef<Path>>(&self, rel: P, content: &[u8]) -> PathBuf {
        let p = self.write(rel, content);
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(hour_ago))
            .expect("set the test file's mtime");
        p
    }

    /// Like `write`, then sets the file's `mode`; the parent directory is 0755.
    pub fn write_mode<P: AsRef<Path>>(&self, rel: P, content: &[u8], mode: u32) -> PathBuf {
        if let Some(parent) = self.path.join(&rel).parent() {
            mkdirs(parent);
        }
        let p = self.write(rel, content);
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// Creates `rel` (and its parents); `rel` is 0755.
    pub fn mkdir<P: AsRef<Path>>(&self, rel: P) -> PathBuf {
        let p = self.path.join(rel);
        mkdirs(&p);
        p
    }
}

/// create_dir_all, then `p` itself is made 0755 whatever the umask.
pub fn mkdirs(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o755));
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Restore permissions that a test may have removed, then delete.
        fn fix_perms(p: &Path) {
            if let Ok(md) = std::fs::symlink_metadata(p) {
                if md.file_type().is_symlink() {
                    return;
                }
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
                if md.is_dir() {
                    if let Ok(rd) = std::fs::read_dir(p) {
                        for e in rd.flatten() {
                            fix_perms(&e.path());
                        }
                    }
                }
            }
        }
        fix_perms(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
