//! Which file answers a path: `dir/` is its first `--index` name that exists (or, with
//! `--autoindex`, the directory's listing), `x` is `x` or, with `--clean-urls`, `x.html`.
//! Decided on a miss and kept with the entry, which is revalidated through that file.

use std::rc::Rc;

use super::*;

/// How request paths map to files beyond their plain name; set once from the configuration.
#[derive(Clone, Debug)]
pub struct Names {
    /// The index files of `dir/`, tried in order (`--index`).
    pub index: Vec<Vec<u8>>,
    /// `/about` is answered by `about.html` when there is no `about` (`--clean-urls`).
    pub clean_urls: bool,
    /// A directory without an index is listed (`--autoindex`), dot entries too if `show_hidden`.
    pub autoindex: bool,
    pub show_hidden: bool,
}

impl Default for Names {
    fn default() -> Names {
        Names {
            index: vec![b"index.html".to_vec()],
            clean_urls: false,
            autoindex: false,
            show_hidden: false,
        }
    }
}

impl FileCache {
    /// The files that may answer `key`, in order of preference: `dir/` -> each index name;
    /// `x` -> `x`, then `x.html` with clean URLs.
    pub(super) fn candidates(&self, key: Key) -> Vec<Vec<u8>> {
        let rel = key.path.strip_prefix(b"/").unwrap_or(key.path);
        let mut names: Vec<Vec<u8>> = Vec::with_capacity(2);
        if rel.is_empty() || rel.ends_with(b"/") {
            for n in &self.names.index {
                names.push([rel, n].concat());
            }
        } else {
            names.push(rel.to_vec());
            if self.names.clean_urls && !rel.ends_with(b".html") {
                names.push([rel, b".html"].concat());
            }
        }
        names
    }

    /// Whether a file preferred to the one that answered `key` (an earlier index name, `x`
    /// rather than `x.html`) exists now: then the entry is looked up anew. Asked only when an
    /// entry is revalidated, and then only of an entry that was not answered by its first choice.
    pub(super) fn preferred_exists(&self, root: &Root, key: Key, idx: u32) -> bool {
        let file = rel(&self.nodes[idx as usize].file);
        self.candidates(key)
            .iter()
            .take_while(|c| c.as_slice() != file)
            .any(|c| {
                root.stat(c)
                    .is_ok_and(|st| is_reg(&st) || !key.path.ends_with(b"/"))
            })
    }

    /// No file answers `key`: 404, or for a directory without an index, its listing if
    /// `--autoindex` is on (made once per directory version, like any entry).
    pub(super) fn no_file(
        &mut self,
        root: &Root,
        key: Key,
        rel: &[u8],
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> (Lookup, Rc<[u8]>) {
        let dir: &[u8] = if rel.is_empty() { b"." } else { rel };
        // The directory as a path from the root, as `Node::file` holds it.
        let file = || Rc::from([&b"/"[..], dir].concat());
        if !self.names.autoindex || !key.path.ends_with(b"/") || key.coding != Coding::Identity {
            return (Lookup::Status(404), file());
        }
        let (fd, st) = match self.open(root, dir) {
            Ok((fd, st)) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => (fd, st),
            Ok(_) => return (Lookup::Status(404), file()),
            Err(e) => return (Lookup::Status(status_for_errno(&e)), file()),
        };
        match listing::render(root, &fd, rel, key.path, self.names.show_hidden) {
            Ok(html) => {
                let f = FileEntry::generated(html, &st, key.path, LISTING_TYPE, prepare);
                (Lookup::File(Rc::new(f)), file())
            }
            Err(e) => (Lookup::Status(status_for_errno(&e)), file()),
        }
    }
}

pub(super) fn is_reg(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// The Content-Type of a directory listing.
pub(super) const LISTING_TYPE: &str = "text/html; charset=utf-8";
