//! The access log: one line per request, written when its response ends (all of it sent, or the
//! client gone) with the body bytes that actually left, in nginx's `combined` format or as JSON
//! (`line`); lines are collected in memory and written in batches through the worker's own ring,
//! so the request path never waits on the disk.
//!
//! A batch is written when 64 KiB have gathered or at the next timer tick (every 250 ms), whichever
//! comes first; the buffer being written is owned by the log until its completion arrives. On
//! SIGUSR1 the file is reopened by path (logrotate moved the old one away); lines queued before
//! go to the new file, the write in flight finishes into the old one. At exit everything left is
//! written synchronously, so a graceful stop or a reopen loses no line.
//!
//! Times are UTC (`+0000`): the worker formats them once per second without consulting tzdata.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub mod line;

use crate::config::LogFormat;

const BATCH: usize = 64 * 1024;

pub struct AccessLog {
    path: PathBuf,
    fd: OwnedFd,
    /// Lines not yet handed to the kernel.
    pending: Vec<u8>,
    /// The batch being written, and how much of it the kernel has taken so far.
    inflight: Option<(Vec<u8>, usize)>,
    /// Files replaced by a reopen while a write to them was in flight.
    retired: Vec<OwnedFd>,
    /// The fd the write in flight targets.
    inflight_fd: RawFd,
    format: LogFormat,
    /// The second `time` shows, formatted once per second.
    time_secs: i64,
    time: Vec<u8>,
}

impl AccessLog {
    pub fn open(path: &Path, format: LogFormat) -> io::Result<AccessLog> {
        Ok(AccessLog {
            path: path.to_path_buf(),
            fd: open_append(path)?,
            pending: Vec::with_capacity(BATCH * 2),
            inflight: None,
            retired: Vec::new(),
            inflight_fd: -1,
            format,
            time_secs: -1,
            time: Vec::with_capacity(32),
        })
    }

    /// Appends the record of an answered request to `record` (a connection's buffer), to be
    /// finished when its response ends.
    pub fn begin(&self, record: &mut Vec<u8>, now_ms: u64, r: &line::Request) {
        line::begin(self.format, record, now_ms, r);
    }

    /// Appends the line of a response that ended, from its record: `body_bytes` is what left.
    pub fn finish(&mut self, record: &[u8], now_secs: i64, now_ms: u64, body_bytes: u64) {
        if now_secs != self.time_secs {
            self.time_secs = now_secs;
            line::format_time(self.format, now_secs, &mut self.time);
        }
        line::finish(&mut self.pending, record, &self.time, now_ms, body_bytes);
    }

    /// A batch to submit now, if one is due: (fd, pointer, length). The memory stays owned by
    /// the log, untouched, until `write_done`.
    pub fn next_write(&mut self, tick: bool) -> Option<(RawFd, *const u8, u32)> {
        if self.inflight.is_none() {
            if self.pending.is_empty() || (!tick && self.pending.len() < BATCH) {
                return None;
            }
            let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH * 2));
            self.inflight = Some((batch, 0));
            self.inflight_fd = self.fd.as_raw_fd();
        }
        None.or_else(|| {
            let (buf, done) = self.inflight.as_ref()?;
            let rest = &buf[*done..];
            Some((
                self.inflight_fd,
                rest.as_ptr(),
                rest.len().min(u32::MAX as usize) as u32,
            ))
        })
    }

    pub fn has_inflight(&self) -> bool {
        self.inflight.is_some()
    }

    /// The write in flight completed with `res`. Returns true when the rest of the batch must
    /// be submitted again (a short write).
    pub fn write_done(&mut self, res: i32) -> bool {
        let Some((buf, done)) = &mut self.inflight else {
            return false;
        };
        if res > 0 {
            *done += res as usize;
            if *done < buf.len() {
                return true;
            }
        } else if res == -libc::EINTR || res == -libc::EAGAIN {
            return true;
        } else {
            eprintln!(
                "ringstatic: access log {}: {}; {} bytes of log lines lost",
                self.path.display(),
                io::Error::from_raw_os_error(-res),
                buf.len() - *done
            );
        }
        self.inflight = None;
        self.retired.clear();
        false
    }

    /// Reopens the file by path (after logrotate moved it).
    pub fn reopen(&mut self) {
        match open_append(&self.path) {
            Ok(fd) => {
                let old = std::mem::replace(&mut self.fd, fd);
                if self.inflight.is_some() {
                    self.retired.push(old);
                }
            }
            Err(e) => eprintln!(
                "ringstatic: cannot reopen access log {}: {e}",
                self.path.display()
            ),
        }
    }

    /// Writes the lines not yet handed to the kernel with plain write(2); used at exit, after
    /// waiting for the write in flight. A batch still in flight then (a disk stuck for seconds)
    /// is left to the kernel, untouched: writing it again could duplicate it.
    pub fn flush_sync(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        write_all(self.fd.as_raw_fd(), &pending);
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing from a live slice to an fd we own.
        let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
        if n < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

fn open_append(path: &Path) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid NUL-terminated path; the fd is checked and wrapped at once.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_line() {
        let d = std::env::temp_dir().join(format!("rs-alog-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("access.log");
        let mut l = AccessLog::open(&p, LogFormat::Combined).unwrap();
        let mut rec = Vec::new();
        let req = line::Request {
            remote: b"127.0.0.1",
            request_line: b"GET /a\"b HTTP/1.1",
            status: 200,
            referer: None,
            user_agent: Some(b"curl/8\x01"),
        };
        l.begin(&mut rec, 0, &req);
        l.finish(&rec, 784111777, 10, 1024);
        assert!(
            l.next_write(false).is_none(),
            "below a batch, waits for the tick"
        );
        let (fd, ptr, len) = l.next_write(true).unwrap();
        // SAFETY: the batch stays owned by `l` until write_done.
        let n = unsafe { libc::write(fd, ptr as *const libc::c_void, len as usize) };
        assert!(!l.write_done(n as i32));
        l.flush_sync();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /a\\x22b HTTP/1.1\" 200 1024 \"-\" \"curl/8\\x01\"\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn short_write_resubmits_the_rest() {
        let d = std::env::temp_dir().join(format!("rs-alog2-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let mut l = AccessLog::open(&d.join("a.log"), LogFormat::Json).unwrap();
        let mut rec = Vec::new();
        let req = line::Request {
            remote: b"::1",
            request_line: b"GET / HTTP/1.1",
            status: 404,
            referer: None,
            user_agent: None,
        };
        l.begin(&mut rec, 0, &req);
        l.finish(&rec, 0, 0, 0);
        let (_, _, len) = l.next_write(true).unwrap();
        assert!(l.write_done(3));
        let (_, _, rest) = l.next_write(false).unwrap();
        assert_eq!(rest, len - 3);
        let _ = std::fs::remove_dir_all(&d);
    }
}
