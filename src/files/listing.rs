//! `--autoindex`: the HTML listing of a directory that has no index file.
//!
//! A listing is made on a cache miss and cached like a file, valid for as long as the directory's
//! own stat is the same (an entry added, removed or renamed changes its mtime), so a worker makes
//! it once per directory version. Making one reads every name (getdents), sorts them, and stats
//! at most `MAX_ENTRIES` of them: that bounds the time a huge directory holds the worker's loop
//! (measured in README.md). Names are HTML-escaped where shown and percent-encoded in links, so a
//! file called `<script>.html` or `a"b` is text, never markup; dot entries are left out unless
//! dotfiles are served, and a symlink that resolves outside the root is not listed.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::open::Root;
use crate::http::date::format_http_date;

/// Most entries one listing shows (the first ones in name order); the rest are counted.
pub const MAX_ENTRIES: usize = 10_000;

/// The listing of the open directory `dir` (at `rel`, no leading `/`, beneath the root), for the
/// request path `url_path` (ending in `/`).
pub fn render(
    root: &Root,
    dir: &OwnedFd,
    rel: &[u8],
    url_path: &[u8],
    show_hidden: bool,
) -> io::Result<Vec<u8>> {
    let mut names = read_names(dir)?;
    names.retain(|(n, _)| show_hidden || !n.starts_with(b"."));
    names.sort_unstable();
    let mut html = Vec::with_capacity(512 + names.len().min(MAX_ENTRIES) * 160);
    let title = escape(url_path);
    html.extend_from_slice(
        b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ",
    );
    html.extend_from_slice(&title);
    html.extend_from_slice(b"</title></head>\n<body><h1>Index of ");
    html.extend_from_slice(&title);
    html.extend_from_slice(
        b"</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>\n",
    );
    if url_path != b"/" {
        html.extend_from_slice(b"<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for (name, dtype) in names.iter().take(MAX_ENTRIES) {
        // A symlink (or an entry of unknown type) is listed only if it opens beneath the root.
        if matches!(*dtype, libc::DT_LNK | libc::DT_UNKNOWN)
            && root.open_beneath(&[rel, name].concat()).is_err()
        {
            continue;
        }
        let Ok(st) = stat_at(dir, name) else { continue };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let slash: &[u8] = if is_dir { b"/" } else { b"" };
        html.extend_from_slice(b"<tr><td><a href=\"./");
        percent_encode(name, &mut html);
        html.extend_from_slice(slash);
        html.extend_from_slice(b"\">");
        html.extend_from_slice(&escape(name));
        html.extend_from_slice(slash);
        html.extend_from_slice(b"</a></td><td>");
        if is_dir {
            html.push(b'-');
        } else {
            html.extend_from_slice(st.st_size.to_string().as_bytes());
        }
        html.extend_from_slice(b"</td><td>");
        html.extend_from_slice(&format_http_date(st.st_mtime));
        html.extend_from_slice(b"</td></tr>\n");
    }
    html.extend_from_slice(b"</table>\n");
    if names.len() > MAX_ENTRIES {
        let more = format!(
            "<p>{} more entries not listed.</p>\n",
            names.len() - MAX_ENTRIES
        );
        html.extend_from_slice(more.as_bytes());
    }
    html.extend_from_slice(b"</body></html>\n");
    Ok(html)
}

/// Every name in the directory but `.` and `..`, with its d_type.
fn read_names(dir: &OwnedFd) -> io::Result<Vec<(Vec<u8>, u8)>> {
    // fdopendir takes over the fd it is given (closedir closes it): give it a duplicate.
    // SAFETY: dup of an fd we hold open; the result is checked.
    let fd = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh directory fd owned by nobody else; on success DIR owns it.
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `fd` is still ours to close.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    // fdopendir does not rewind: a directory fd from the cache is read from its start.
    // SAFETY: `d` is a valid DIR stream.
    unsafe { libc::rewinddir(d) };
    let mut names = Vec::new();
    let mut failed = None;
    loop {
        // readdir says "end" and "error" both with NULL; only errno tells them apart.
        // SAFETY: errno is this thread's own.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `d` is a valid DIR stream used by this thread only.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(0) {
                failed = Some(e);
            }
            break;
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated; it stays valid
        // until the next readdir on `d`, and is copied before that.
        let (name, dtype) = unsafe { (CStr::from_ptr((*ent).d_name.as_ptr()), (*ent).d_type) };
        let name = name.to_bytes();
        if name != b"." && name != b".." {
            names.push((name.to_vec(), dtype));
        }
    }
    // SAFETY: `d` is valid and closed exactly once (this also closes `fd`).
    unsafe { libc::closedir(d) };
    match failed {
        // A listing that silently missed entries would be wrong: the request gets an error.
        Some(e) => Err(e),
        None => Ok(names),
    }
}

/// stat(2) of `name` in `dir`, following a symlink.
fn stat_at(dir: &OwnedFd, name: &[u8]) -> io::Result<libc::stat> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dirfd, NUL-terminated name, writable stat buffer.
    if unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Text for HTML: `&<>"'` escaped, bytes that are not UTF-8 shown as U+FFFD.
fn escape(s: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(s);
    let mut out = Vec::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\'' => out.extend_from_slice(b"&#39;"),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out
}

/// A name as one path segment of a link: every byte but ALPHA, DIGIT and `-._~` percent-encoded.
fn percent_encode(name: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_inject_markup() {
        assert_eq!(escape(b"<script>.html"), b"&lt;script&gt;.html");
        assert_eq!(escape(b"a\"b'&"), b"a&quot;b&#39;&amp;");
        assert_eq!(escape(b"\xff"), "\u{fffd}".as_bytes());
        let mut out = Vec::new();
        percent_encode(b"a\"b <c>:%.txt", &mut out);
        assert_eq!(out, b"a%22b%20%3Cc%3E%3A%25.txt");
    }

    #[test]
    fn a_listing_sorted_and_without_dotfiles() {
        let d = std::env::temp_dir().join(format!("rs-listing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("b.txt"), b"12345").unwrap();
        std::fs::write(d.join("a.txt"), b"1").unwrap();
        std::fs::write(d.join(".hidden"), b"").unwrap();
        let root = Root::open(&d).unwrap();
        let fd = root.open_beneath(b".").unwrap();
        let html = String::from_utf8(render(&root, &fd, b"", b"/", false).unwrap()).unwrap();
        let (a, b, s) = (
            html.find("./a.txt").unwrap(),
            html.find("./b.txt").unwrap(),
            html.find("./sub/").unwrap(),
        );
        assert!(a < b && b < s, "{html}");
        assert!(!html.contains("hidden") && !html.contains("../"), "{html}");
        assert!(html.contains(">5</td>"), "{html}");
        let html = String::from_utf8(render(&root, &fd, b"", b"/", true).unwrap()).unwrap();
        assert!(html.contains("./.hidden"), "{html}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
