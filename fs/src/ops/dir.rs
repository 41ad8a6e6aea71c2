//! Directory handles and listings: opendir, readdir, readdirplus, releasedir.
//!
//! Offsets are positions in the listing (0 is ".", 1 is "..", children follow in the
//! backend's name order); the entry at position p is returned with offset p + 1, the
//! position of the next one. A `/kv` listing is read page by page through
//! `Backend::list`, continuing after the last name fetched (kept in the handle), so
//! directories of any size list completely and pages stay stable under changes.
//! Files created here and not stored yet (pending creates) are merged in, in name
//! order and without duplicates, from a snapshot taken when the listing (re)starts;
//! their entries carry zero TTLs.

use std::time::Duration;

use fuser::{Errno, FileAttr, FileType};

use super::{backend_errno, AspenFs, OpResult};
use crate::attr;
use crate::handle::{DirState, Listed};
use crate::inode::Place;
use crate::limits::{READDIR_PAGE_ENTRIES, UNKNOWN_INO};
use crate::tree::{valid_backend_name, Tree, ROOT_INO};

/// Where listed entries go: a readdir or a readdirplus reply.
pub(crate) trait DirSink {
    /// Whether entries carry attributes (readdirplus); the kernel then counts a
    /// lookup for every entry added, "." and ".." excepted.
    fn plus(&self) -> bool;

    /// Adds one entry; true when the reply is full and the entry was not added.
    fn add(&mut self, name: &str, offset: u64, attr: &FileAttr, ttl: Duration) -> bool;
}

/// Adds "." and ".." to a listing that starts at position `offset`; the position of
/// the first child to list, or `None` when the reply is already full.
pub(crate) fn add_dots(
    sink: &mut dyn DirSink,
    offset: usize,
    this: &FileAttr,
    parent: &FileAttr,
) -> Option<usize> {
    if offset == 0 && sink.add(".", 1, this, Duration::ZERO) {
        return None;
    }
    if offset <= 1 && sink.add("..", 2, parent, Duration::ZERO) {
        return None;
    }
    Some(offset.max(2))
}

/// An entry of a directory that is not backed by `/kv`.
enum Fixed {
    Dot,
    DotDot,
    Tree(Tree),
    Cluster(String),
}

impl AspenFs {
    pub(crate) fn do_opendir(&self, ino: u64) -> OpResult<u64> {
        match self.place(ino)? {
            Place::In(Tree::Cluster, p) if !p.is_empty() => return Err(Errno::ENOTDIR),
            Place::In(Tree::Hooks, p) => self.hooks_check_dir(&p)?,
            Place::In(Tree::Topics, p) => self.topics_check_dir(&p)?,
            Place::In(Tree::Secrets, p) => self.secrets_check_dir(&p)?,
            _ => {}
        }
        let fh = self.handles.open_dir(ino)?;
        if let Err(e) = self.inodes.open(ino) {
            self.handles.close_dir(fh)?;
            return Err(e);
        }
        Ok(fh)
    }

    /// Adds a child that a service makes up (not a `/kv` entry) at `off`, with zero
    /// TTLs: with readdirplus the kernel counts a lookup of it (given back when the
    /// reply is full), otherwise its inode is only looked for. True when full.
    pub(crate) fn add_synthesized(
        &self,
        sink: &mut dyn DirSink,
        dir: u64,
        name: &str,
        off: u64,
        kind: FileType,
        attr: impl Fn(u64) -> FileAttr,
    ) -> OpResult<bool> {
        if sink.plus() {
            let child = self.inodes.lookup(dir, name, kind, None)?;
            let full = sink.add(name, off, &attr(child), Duration::ZERO);
            if full {
                self.inodes.forget(child, 1)?;
            }
            Ok(full)
        } else {
            let child = self.inodes.peek(dir, name)?.unwrap_or(UNKNOWN_INO);
            Ok(sink.add(name, off, &attr(child), Duration::ZERO))
        }
    }

    pub(crate) fn do_releasedir(&self, fh: u64) -> OpResult<()> {
        if let Some(h) = self.handles.close_dir(fh)? {
            self.inodes.close(h.ino)?;
        }
        Ok(())
    }

    pub(crate) fn do_readdir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        sink: &mut dyn DirSink,
    ) -> OpResult<()> {
        let h = self.handles.dir(fh)?;
        if h.ino != ino {
            return Err(Errno::EBADF);
        }
        let place = self.place(ino)?;
        let parent = match self.inodes.parent(ino)? {
            Some(p) if p != 0 => p,
            _ => ROOT_INO,
        };
        match place {
            Place::In(Tree::Kv, key) => {
                let mut st = h.take()?;
                let result = self.fill_kv(&mut st, ino, parent, &key, offset, sink);
                h.restore(st)?;
                result
            }
            Place::In(Tree::Hooks, path) => self.hooks_readdir(ino, parent, &path, offset, sink),
            Place::In(Tree::Topics, path) if self.backend.topics().is_some() => {
                self.topics_readdir(ino, parent, &path, offset, sink)
            }
            Place::In(Tree::Secrets, path) if self.backend.secrets().is_some() => {
                self.secrets_readdir(ino, parent, &path, offset, sink)
            }
            other => self.fill_fixed(ino, parent, &other, offset, sink),
        }
    }

    fn dot_attr(&self, ino: u64) -> FileAttr {
        attr::synthesized(ino, FileType::Directory, 0o755, 0, std::time::UNIX_EPOCH)
    }

    fn fill_fixed(
        &self,
        ino: u64,
        parent: u64,
        place: &Place,
        offset: u64,
        sink: &mut dyn DirSink,
    ) -> OpResult<()> {
        let mut items = vec![Fixed::Dot, Fixed::DotDot];
        match place {
            Place::Root => items.extend(Tree::ALL.into_iter().map(Fixed::Tree)),
            Place::In(Tree::Cluster, p) if p.is_empty() => items.extend(
                self.backend
                    .cluster_files()
                    .into_iter()
                    .filter(|n| valid_backend_name(n))
                    .map(Fixed::Cluster),
            ),
            Place::In(_, p) if p.is_empty() => {}
            Place::In(_, _) => return Err(Errno::ENOTDIR),
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let ttl = self.settings.attr_ttl;
        for (i, item) in items.iter().enumerate().skip(start) {
            let off = i as u64 + 1;
            let full = match item {
                Fixed::Dot => sink.add(".", off, &self.dot_attr(ino), ttl),
                Fixed::DotDot => sink.add("..", off, &self.dot_attr(parent), ttl),
                Fixed::Tree(t) => {
                    let a = if sink.plus() {
                        self.fixed_dir_attr(Some(*t))?
                    } else {
                        self.dot_attr(t.ino())
                    };
                    sink.add(t.name(), off, &a, ttl)
                }
                Fixed::Cluster(name) if sink.plus() => {
                    let child = self.inodes.lookup(ino, name, FileType::RegularFile, None)?;
                    let full = match self.cluster_attr(child, name) {
                        Ok(a) => sink.add(name, off, &a, Duration::ZERO),
                        Err(e) => {
                            self.inodes.forget(child, 1)?;
                            return Err(e);
                        }
                    };
                    if full {
                        self.inodes.forget(child, 1)?;
                    }
                    full
                }
                Fixed::Cluster(name) => {
                    let child = self.inodes.peek(ino, name)?.unwrap_or(UNKNOWN_INO);
                    let a = attr::synthesized(
                        child,
                        FileType::RegularFile,
                        0o444,
                        0,
                        std::time::UNIX_EPOCH,
                    );
                    sink.add(name, off, &a, ttl)
                }
            };
            if full {
                break;
            }
        }
        Ok(())
    }

    fn fill_kv(
        &self,
        st: &mut DirState,
        ino: u64,
        parent: u64,
        key: &str,
        offset: u64,
        sink: &mut dyn DirSink,
    ) -> OpResult<()> {
        if !st.started || offset != st.next {
            let rewind = st.started
                && offset >= 2
                && offset >= st.batch_start
                && offset < st.next
                && usize::try_from(offset - st.batch_start).is_ok_and(|k| k <= st.batch.len());
            if rewind {
                // The kernel kept only part of the last reply: give the rest again.
                let keep = usize::try_from(offset - st.batch_start).unwrap_or(0);
                for e in st.batch.drain(keep..).rev() {
                    st.queue.push_front(e);
                }
                st.next = offset;
            } else {
                let local = self
                    .inodes
                    .pending_children(ino)?
                    .into_iter()
                    .map(|(name, attr)| Listed {
                        name,
                        attr,
                        pending: true,
                        commits: 0,
                    })
                    .collect();
                *st = DirState {
                    started: true,
                    more: true,
                    local,
                    ..DirState::default()
                };
                self.skip_kv(st, key, offset)?;
            }
        }
        let ttl = self.settings.attr_ttl;
        st.batch.clear();
        while st.next < 2 {
            let (name, a) = if st.next == 0 {
                (".", self.dot_attr(ino))
            } else {
                ("..", self.dot_attr(parent))
            };
            if sink.add(name, st.next + 1, &a, ttl) {
                st.batch_start = st.next;
                return Ok(());
            }
            st.next += 1;
        }
        st.batch_start = st.next;
        let mut added = 0usize;
        loop {
            let Some(e) = self.next_child(st, key)? else {
                return Ok(());
            };
            let kind = attr::file_type(e.attr.kind);
            let (child, counted) = if sink.plus() {
                // A pending node keeps its own attributes.
                let cache = (!e.pending).then(|| e.attr.clone());
                match self.inodes.lookup(ino, &e.name, kind, cache) {
                    Ok(c) => (c, true),
                    // Inode table full: return what fits so far.
                    Err(e) if added == 0 => return Err(e),
                    Err(_) => return Ok(()),
                }
            } else {
                (
                    self.inodes.peek(ino, &e.name)?.unwrap_or(UNKNOWN_INO),
                    false,
                )
            };
            let mut fa = attr::from_entry(child, &e.attr);
            if counted {
                // The kernel takes these attributes as current: include unsaved writes.
                if let Err(err) = self.overlay_dirty(&mut fa) {
                    self.inodes.forget(child, 1)?;
                    return Err(err);
                }
            }
            // A pending file, or attributes read before a commit of this mount that
            // may have changed them: the kernel must ask again.
            let entry_ttl = if e.pending || e.commits != self.commits_done() {
                Duration::ZERO
            } else {
                ttl
            };
            if sink.add(&e.name, st.next + 1, &fa, entry_ttl) {
                if counted {
                    self.inodes.forget(child, 1)?;
                }
                return Ok(());
            }
            added += 1;
            if let Some(e) = st.queue.pop_front() {
                st.batch.push(e);
            }
            st.next += 1;
        }
    }

    /// Positions a fresh listing at `offset` (after a seek or a restart).
    fn skip_kv(&self, st: &mut DirState, key: &str, offset: u64) -> OpResult<()> {
        st.next = offset.min(2);
        while st.next < offset {
            if self.next_child(st, key)?.is_none() {
                break;
            }
            st.queue.pop_front();
            st.next += 1;
        }
        Ok(())
    }

    /// The next child of the listing, left at the front of `st.queue`: fetches backend
    /// pages as needed and merges the pending creates in (a pending create replaces a
    /// backend entry of the same name). `None` at the end.
    fn next_child(&self, st: &mut DirState, key: &str) -> OpResult<Option<Listed>> {
        while st.queue.is_empty() && st.more {
            self.fetch_page(st, key)?;
        }
        let order = match (st.queue.front(), st.local.front()) {
            (_, None) => std::cmp::Ordering::Greater,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(b), Some(l)) => l.name.cmp(&b.name),
        };
        if order == std::cmp::Ordering::Equal {
            st.queue.pop_front();
        }
        if order != std::cmp::Ordering::Greater {
            if let Some(l) = st.local.pop_front() {
                st.queue.push_front(l);
            }
        }
        Ok(st.queue.front().cloned())
    }

    /// Appends the next page of children to `queue`.
    fn fetch_page(&self, st: &mut DirState, key: &str) -> OpResult<()> {
        let commits = self.commits_done();
        let mut page = self
            .backend
            .list(key, st.fetch_after.as_deref(), READDIR_PAGE_ENTRIES)
            .map_err(backend_errno)?;
        if page.entries.len() > READDIR_PAGE_ENTRIES {
            page.entries.truncate(READDIR_PAGE_ENTRIES);
            page.more = true;
        }
        let Some(last) = page.entries.last().map(|(n, _)| n.clone()) else {
            st.more = false;
            return Ok(());
        };
        if st.fetch_after.as_ref().is_some_and(|prev| last <= *prev) {
            tracing::warn!(dir = key, "backend listing did not advance; ending it");
            st.more = false;
            return Ok(());
        }
        st.more = page.more;
        let after = st.fetch_after.replace(last);
        for (name, a) in page.entries {
            let in_order = after.as_ref().is_none_or(|prev| name > *prev);
            if in_order && valid_backend_name(&name) {
                st.queue.push_back(Listed {
                    name,
                    attr: a,
                    pending: false,
                    commits,
                });
            } else {
                tracing::warn!(dir = key, name, "backend listed an invalid name; skipped");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsStr;
    use std::sync::Arc;
    use std::time::Duration;

    use fuser::FileAttr;

    use super::DirSink;
    use crate::backend::{Backend, EntryKind, PutCondition, PutRequest};
    use crate::inode::InodeTable;
    use crate::memory::MemoryBackend;
    use crate::ops::entry::Creator;
    use crate::ops::{AspenFs, Settings};

    /// A reply with room for `cap` entries.
    struct Sink {
        plus: bool,
        cap: usize,
        got: Vec<(String, u64, u64)>,
    }

    impl DirSink for Sink {
        fn plus(&self) -> bool {
            self.plus
        }

        fn add(&mut self, name: &str, offset: u64, attr: &FileAttr, _ttl: Duration) -> bool {
            if self.got.len() >= self.cap {
                return true;
            }
            self.got.push((name.to_string(), offset, attr.ino.0));
            false
        }
    }

    const N: usize = 600;

    fn setup() -> (AspenFs, Vec<String>, u64) {
        let b = MemoryBackend::new();
        let put = |key: String, kind| {
            b.put(PutRequest {
                key,
                kind,
                value: vec![],
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime_ns: None,
                xattrs: None,
                condition: PutCondition::MustNotExist,
                rdev: 0,
            })
            .unwrap();
        };
        put("d".into(), EntryKind::Dir);
        let mut names: Vec<String> = (0..N).map(|i| format!("f{i:04}")).collect();
        for n in &names {
            put(format!("d/{n}"), EntryKind::File);
        }
        names.sort();
        let mut all = vec![".".to_string(), "..".to_string()];
        all.extend(names);
        let settings = Settings {
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            read_only: false,
            claim_wait: Duration::ZERO,
        };
        let fs = AspenFs::new(Arc::new(b), Arc::new(InodeTable::new(10_000)), settings);
        let (a, _) = fs.do_lookup(2, OsStr::new("d")).unwrap();
        (fs, all, a.ino.0)
    }

    /// Lists like the kernel does when user space takes only `take` entries of each
    /// reply of `cap` entries. Returns the names and, per inode, the lookups the kernel
    /// would now hold.
    fn list(
        fs: &AspenFs,
        ino: u64,
        plus: bool,
        cap: usize,
        take: usize,
    ) -> (Vec<String>, HashMap<u64, u64>) {
        let fh = fs.do_opendir(ino).unwrap();
        let (mut offset, mut names, mut lookups) = (0, Vec::new(), HashMap::new());
        for _ in 0..10_000 {
            let mut sink = Sink {
                plus,
                cap,
                got: Vec::new(),
            };
            fs.do_readdir(ino, fh, offset, &mut sink).unwrap();
            if sink.got.is_empty() {
                break;
            }
            for (name, _, child) in &sink.got {
                if plus && name != "." && name != ".." {
                    *lookups.entry(*child).or_insert(0) += 1;
                }
            }
            for (name, off, _) in sink.got.iter().take(take) {
                names.push(name.clone());
                offset = *off;
            }
        }
        fs.do_releasedir(fh).unwrap();
        (names, lookups)
    }

    #[test]
    fn listing_is_complete_across_pages_and_partial_replies() {
        let (fs, all, d) = setup();
        for (plus, cap, take) in [
            (false, 1000, 1000),
            (false, 7, 7),
            (false, 7, 3),
            (true, 50, 50),
            (true, 9, 4),
        ] {
            let base = fs.inodes.len().unwrap();
            let (names, lookups) = list(&fs, d, plus, cap, take);
            assert_eq!(names, all, "plus {plus} cap {cap} take {take}");
            // Every lookup the kernel was given can be forgotten, leaving nothing behind.
            for (ino, n) in lookups {
                fs.inodes.forget(ino, n).unwrap();
            }
            assert_eq!(fs.inodes.len().unwrap(), base);
        }
    }

    /// Pending creates (files created here, not stored) around page boundaries, one of
    /// them also stored under the same name: listed once each, in order.
    #[test]
    fn pending_creates_are_merged_into_listings() {
        let (fs, mut all, d) = setup();
        let who = Creator {
            uid: 0,
            gid: 0,
            mode: 0o644,
        };
        let mut handles = Vec::new();
        for name in ["a", "f0000a", "f0255", "f0255a", "f0256", "f0599z", "zz"] {
            let (_, fh, _, ttl) = fs
                .do_create(d, OsStr::new(name), libc::O_WRONLY | libc::O_CREAT, who)
                .unwrap();
            assert_eq!(ttl, Duration::ZERO);
            handles.push(fh);
            if !all.iter().any(|n| n == name) {
                all.push(name.to_string());
            }
        }
        all[2..].sort();
        for (plus, cap, take) in [
            (false, 1000, 1000),
            (false, 7, 3),
            (true, 50, 50),
            (true, 9, 4),
        ] {
            let base = fs.inodes.len().unwrap();
            let (names, lookups) = list(&fs, d, plus, cap, take);
            assert_eq!(names, all, "plus {plus} cap {cap} take {take}");
            for (ino, n) in lookups {
                fs.inodes.forget(ino, n).unwrap();
            }
            assert_eq!(fs.inodes.len().unwrap(), base);
        }
        // Seeking lands on the same names.
        let fh = fs.do_opendir(d).unwrap();
        for offset in [0u64, 3, 258, 259, 600, 608] {
            let mut sink = Sink {
                plus: false,
                cap: 3,
                got: Vec::new(),
            };
            fs.do_readdir(d, fh, offset, &mut sink).unwrap();
            let want: Vec<String> = all.iter().skip(offset as usize).take(3).cloned().collect();
            let got: Vec<String> = sink.got.into_iter().map(|(n, _, _)| n).collect();
            assert_eq!(got, want, "offset {offset}");
        }
        fs.do_releasedir(fh).unwrap();
        // Stored at release: the listing is the same.
        for fh in handles {
            fs.do_release(fh).unwrap();
        }
        assert_eq!(fs.inodes.pending_count().unwrap(), 0);
        assert_eq!(list(&fs, d, true, 50, 50).0, all);
    }

    #[test]
    fn seeking_to_any_offset() {
        let (fs, all, d) = setup();
        let fh = fs.do_opendir(d).unwrap();
        for offset in [0u64, 1, 2, 300, 257, 599, 601, 602, 700, 5] {
            let mut sink = Sink {
                plus: false,
                cap: 4,
                got: Vec::new(),
            };
            fs.do_readdir(d, fh, offset, &mut sink).unwrap();
            let start = offset as usize;
            let want: Vec<(String, u64)> = all
                .iter()
                .enumerate()
                .skip(start)
                .take(4)
                .map(|(i, n)| (n.clone(), i as u64 + 1))
                .collect();
            let got: Vec<(String, u64)> = sink.got.into_iter().map(|(n, o, _)| (n, o)).collect();
            assert_eq!(got, want, "offset {offset}");
        }
        fs.do_releasedir(fh).unwrap();
    }
}
