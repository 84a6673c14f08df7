//! The pid file, nginx's way: written at start, renamed to `FILE.oldbin` while a binary upgrade
//! overlaps two masters, removed at exit (only if it still names us).

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct PidFile {
    path: PathBuf,
    oldbin: bool,
}

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile, String> {
        write_atomically(path, std::process::id())?;
        Ok(PidFile {
            path: path.to_path_buf(),
            oldbin: false,
        })
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

fn write_atomically(path: &Path, pid: u32) -> Result<(), String> {
    let mut tmp = path.to_path_buf().into_os_string();
    tmp.push(format!(".tmp{pid}"));
    let tmp = PathBuf::from(tmp);
    let res = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(format!("{pid}\n").as_bytes()))
        .and_then(|_| std::fs::rename(&tmp, path));
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write pid file {}: {e}", path.display())
    })
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
        let _ = std::fs::remove_dir_all(&d);
    }
}
