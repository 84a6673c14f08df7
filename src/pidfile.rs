//! The pid file, nginx's way: written at start, renamed to `FILE.oldbin` while a binary upgrade
//! overlaps two masters, removed at exit (only if it still names us).
//!
//! The master holds an exclusive `flock` on it for its whole life, so a second instance given the
//! same pid file is refused instead of overwriting it (which would leave the first one out of
//! `-s stop`'s reach). The lock belongs to the file, not the path: renamed to `.oldbin` during a
//! binary upgrade it stays the old master's, and the new master locks a file of its own.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct PidFile {
    path: PathBuf,
    oldbin: bool,
    /// The open file, locked while we live.
    _lock: File,
}

impl PidFile {
    /// Creates (or takes over a stale) pid file, locks it and writes our pid. Refused while
    /// another process holds the lock.
    pub fn create(path: &Path) -> Result<PidFile, String> {
        let fail = |e: std::io::Error| format!("cannot write pid file {}: {e}", path.display());
        // A few tries: the file may be removed (or replaced) by an exiting owner between our
        // open and our lock; then the file at the path is another one, and that is the one to lock.
        for _ in 0..16 {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(fail)?;
            // SAFETY: flock on an fd we own; no memory is involved.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EWOULDBLOCK) => {
                        let owner = read(path).map_or_else(|_| "?".to_string(), |p| p.to_string());
                        return Err(format!(
                            "pid file {} is locked by another running ringstatic (pid {owner})",
                            path.display()
                        ));
                    }
                    // A file system without locks (some network ones): go on unlocked, saying so.
                    Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) => eprintln!(
                        "ringstatic: cannot lock pid file {}: {e}; a second instance given it \
                         would not be refused",
                        path.display()
                    ),
                    _ => return Err(fail(e)),
                }
            }
            let ours = f.metadata().map_err(fail)?;
            match std::fs::metadata(path) {
                Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => {}
                _ => continue,
            }
            f.set_len(0).map_err(fail)?;
            (&f).write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(fail)?;
            return Ok(PidFile {
                path: path.to_path_buf(),
                oldbin: false,
                _lock: f,
            });
        }
        Err(format!(
            "cannot lock pid file {}: it keeps being replaced",
            path.display()
        ))
    }

    fn oldbin_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".oldbin");
        PathBuf::from(p)
    }

    /// Moves the file aside for the new master, which writes its own.
    pub fn to_oldbin(&mut self) {
        if !self.oldbin && std::fs::rename(&self.path, self.oldbin_path()).is_ok() {
            self.oldbin = true;
        }
    }

    /// After a successful upgrade: remove our `.oldbin` file now and leave the new master's alone.
    pub fn forget(mut self) {
        if self.oldbin {
            let _ = std::fs::remove_file(self.oldbin_path());
        }
        self.oldbin = true;
        self.path = PathBuf::new();
    }

    /// The upgrade failed: this master is the only one again.
    pub fn restore(&mut self) {
        if self.oldbin {
            let _ = std::fs::rename(self.oldbin_path(), &self.path);
            self.oldbin = false;
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        let p = if self.oldbin {
            self.oldbin_path()
        } else {
            self.path.clone()
        };
        if read(&p).ok() == Some(std::process::id() as i32) {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub fn read(path: &Path) -> Result<i32, String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read pid file {}: {e}", path.display()))?;
    s.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| format!("pid file {} does not hold a pid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_oldbin_restore_remove() {
        let d = std::env::temp_dir().join(format!("rs-pid-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("r.pid");
        let mut f = PidFile::create(&p).unwrap();
        assert_eq!(read(&p).unwrap(), std::process::id() as i32);
        f.to_oldbin();
        assert!(!p.exists());
        assert!(d.join("r.pid.oldbin").exists());
        f.restore();
        assert!(p.exists());
        drop(f);
        assert!(!p.exists());
        std::fs::write(&p, "garbage").unwrap();
        assert!(read(&p).is_err());
        // A stale file (its owner gone) is taken over; a locked one is refused.
        let f = PidFile::create(&p).unwrap();
        assert_eq!(read(&p).unwrap(), std::process::id() as i32);
        let other = std::fs::File::open(&p).unwrap();
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert!(r < 0, "held while the PidFile lives");
        drop(other);
        let e = PidFile::create(&p).err().expect("refused while locked");
        assert!(e.contains("locked"), "{e}");
        drop(f);
        assert!(!p.exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
