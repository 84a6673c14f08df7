//! `ringstatic compress ROOT`: the step a site's build runs before deploying. It writes `X.br`,
//! `X.zst` and `X.gz` beside every file `X` of a compressible type, at the encoders' highest
//! levels (`codec::Level::Best`), so the server sends the smallest bytes without compressing
//! anything itself.
//!
//! Each sibling is written to a temporary file in the same directory, given the original's
//! modification time, and renamed into place: a server reading the tree meanwhile sees the old
//! sibling or the new one, never half of one, and (since a sibling older than its original is
//! never served) never one that describes other bytes. A sibling whose mtime equals its
//! original's is up to date and left alone, so a second run writes nothing. A coding that saves
//! less than 5% is not written. Dot entries are skipped (`.well-known` excepted), as are symbolic
//! links, which the server reaches through their targets anyway.
//!
//! Files are compressed by one thread per CPU. Exit status: 0 done, 1 a file or the root could
//! not be read or written (each said on one line), 2 a usage error.

use std::ffi::OsString;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::files::codec::{compress, Level};
use crate::files::entry::Coding;

/// A coding is written only if it makes the file at least this much smaller (percent).
const MIN_SAVING_PERCENT: u64 = 5;

/// Trees with at least this many files get a progress line.
const PROGRESS_FROM: usize = 1000;

const USAGE: &str = "usage: ringstatic compress [--quiet] ROOT\n\
    Writes X.br, X.zst and X.gz beside every compressible file X under ROOT (at the highest\n\
    levels, with X's modification time), skipping codings that save less than 5%.";

#[derive(Default)]
struct Totals {
    files: u64,
    written: u64,
    up_to_date: u64,
    not_worth_it: u64,
    errors: u64,
    bytes_before: u64,
    /// Per coding: what the tree weighs for a client that accepts it (a sibling where one is
    /// written or up to date, the original elsewhere).
    bytes_after: [u64; 3],
}

/// Runs the subcommand with the arguments after `compress`; returns the exit status.
pub fn main(args: &[OsString]) -> i32 {
    let mut quiet = false;
    let mut root: Option<PathBuf> = None;
    for a in args {
        match a.to_str() {
            Some("-q" | "--quiet") => quiet = true,
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return 0;
            }
            Some(s) if s.starts_with('-') && s != "-" => {
                eprintln!("ringstatic compress: unknown option `{s}`\n{USAGE}");
                return 2;
            }
            _ if root.is_some() => {
                eprintln!("ringstatic compress: one ROOT only\n{USAGE}");
                return 2;
            }
            _ => root = Some(PathBuf::from(a)),
        }
    }
    let Some(root) = root else {
        eprintln!("ringstatic compress: ROOT is missing\n{USAGE}");
        return 2;
    };
    if let Err(e) = crate::config::check_root(&root) {
        eprintln!("ringstatic compress: {e}");
        return 1;
    }
    let mut files = Vec::new();
    let mut errors = 0;
    walk(&root, &mut files, &mut errors);
    let t = run(&files, quiet);
    let errors = errors + t.errors;
    let after = |i: usize| human(t.bytes_after[i]);
    println!(
        "ringstatic compress: {} files, {}; siblings written {}, up to date {}, \
         not worth it {}; sent with br {}, zstd {}, gzip {}{}",
        t.files,
        human(t.bytes_before),
        t.written,
        t.up_to_date,
        t.not_worth_it,
        after(0),
        after(1),
        after(2),
        if errors > 0 {
            format!("; {errors} errors")
        } else {
            String::new()
        }
    );
    i32::from(errors > 0)
}

/// Every compressible regular file beneath `dir`, dot entries and symbolic links left out.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut u64) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "ringstatic compress: cannot list {}: {}",
                dir.display(),
                crate::config::plain(&e)
            );
            *errors += 1;
            return;
        }
    };
    let mut names: Vec<_> = entries.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name();
        let bytes = name.as_encoded_bytes();
        if bytes.starts_with(b".") && bytes != b".well-known" {
            continue;
        }
        let Ok(kind) = e.file_type() else { continue };
        let path = e.path();
        if kind.is_dir() {
            walk(&path, out, errors);
        } else if kind.is_file() && crate::mime::is_compressible(crate::mime::content_type(bytes)) {
            out.push(path);
        }
    }
}

/// Compresses `files` on one thread per CPU.
fn run(files: &[PathBuf], quiet: bool) -> Totals {
    let next = AtomicUsize::new(0);
    let totals = Mutex::new(Totals::default());
    let progress = Mutex::new(Instant::now());
    let show = !quiet && files.len() >= PROGRESS_FROM;
    let tty = std::io::stderr().is_terminal();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads.min(files.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let one = one_file(path);
                let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                add(&mut t, &one);
                drop(t);
                if show {
                    let mut last = progress.lock().unwrap_or_else(|p| p.into_inner());
                    if last.elapsed() >= Duration::from_secs(1) {
                        *last = Instant::now();
                        let end = if tty { "\r" } else { "\n" };
                        eprint!("ringstatic compress: {}/{} files{end}", i + 1, files.len());
                        let _ = std::io::stderr().flush();
                    }
                }
            });
        }
    });
    if show && tty {
        eprintln!();
    }
    totals.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn add(t: &mut Totals, one: &Totals) {
    t.files += one.files;
    t.written += one.written;
    t.up_to_date += one.up_to_date;
    t.not_worth_it += one.not_worth_it;
    t.errors += one.errors;
    t.bytes_before += one.bytes_before;
    for i in 0..3 {
        t.bytes_after[i] += one.bytes_after[i];
    }
}

/// One file's three siblings.
fn one_file(path: &Path) -> Totals {
    let mut t = Totals::default();
    let fail = |t: &mut Totals, what: &str, p: &Path, e: std::io::Error| {
        eprintln!(
            "ringstatic compress: cannot {what} {}: {}",
            p.display(),
            crate::config::plain(&e)
        );
        t.errors += 1;
    };
    let (meta, bytes) = match fs::metadata(path).and_then(|m| Ok((m, fs::read(path)?))) {
        Ok(v) => v,
        Err(e) => {
            fail(&mut t, "read", path, e);
            return t;
        }
    };
    let Ok(mtime) = meta.modified() else {
        t.errors += 1;
        return t;
    };
    let size = bytes.len() as u64;
    t.files = 1;
    t.bytes_before = size;
    for (i, coding) in Coding::CODED.into_iter().enumerate() {
        let mut sib = path.as_os_str().to_owned();
        sib.push(coding.suffix());
        let sib = PathBuf::from(sib);
        if let Ok(m) = fs::symlink_metadata(&sib) {
            if m.is_file() && m.modified().ok() == Some(mtime) {
                t.up_to_date += 1;
                t.bytes_after[i] += m.len();
                continue;
            }
        }
        let packed = match compress(coding, &bytes, Level::Best) {
            Ok(p) => p,
            Err(e) => {
                fail(&mut t, "compress", path, e);
                t.bytes_after[i] += size;
                continue;
            }
        };
        if (packed.len() as u64) * 100 > size * (100 - MIN_SAVING_PERCENT) {
            t.not_worth_it += 1;
            t.bytes_after[i] += size;
            continue;
        }
        match write_atomically(&sib, &packed, mtime, &meta) {
            Ok(()) => {
                t.written += 1;
                t.bytes_after[i] += packed.len() as u64;
            }
            Err(e) => {
                fail(&mut t, "write", &sib, e);
                t.bytes_after[i] += size;
            }
        }
    }
    t
}

/// Writes `bytes` to a temporary file beside `dest` with `mtime` and the original's permissions,
/// then renames it over `dest`.
fn write_atomically(
    dest: &Path,
    bytes: &[u8],
    mtime: SystemTime,
    original: &fs::Metadata,
) -> std::io::Result<()> {
    let mut tmp_name = OsString::from(".");
    tmp_name.push(dest.file_name().unwrap_or_default());
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dest.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(original.permissions())?;
        f.set_times(fs::FileTimes::new().set_modified(mtime))?;
        drop(f);
        fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Bytes for people: `12345` -> `12.1 KiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(12345), "12.1 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
