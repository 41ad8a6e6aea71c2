//! File handles: open, create, read, write, flush, fsync, release, and the commit of a
//! write-back buffer as one `Backend::put`.
//!
//! A handle snapshots the value at open (close-to-open consistency). Writes only touch
//! the handle's buffer; flush, fsync and release commit it when dirty, and commit errors
//! are returned there as errno. The commit compares against the entry's `mod_revision`
//! so that metadata changed meanwhile (chmod, xattrs, elsewhere too) is kept: on a
//! conflict it re-reads the metadata and tries again, a bounded number of times.

use std::ffi::OsStr;

use fuser::{Errno, FileAttr, FopenFlags};

use super::entry::Creator;
use super::{backend_errno, AspenFs, OpResult};
use crate::attr;
use crate::backend::{EntryAttr, EntryKind, ErrorKind, PutCondition, PutRequest};
use crate::handle::Commit;
use crate::inode::Place;
use crate::limits::MAX_COMMIT_ATTEMPTS;
use crate::tree::Tree;

/// The parts of open(2) flags that matter here.
#[derive(Debug, Clone, Copy)]
struct Access {
    writable: bool,
    truncate: bool,
    append: bool,
}

impl Access {
    fn from_flags(flags: i32) -> Access {
        Access {
            writable: flags & libc::O_ACCMODE != libc::O_RDONLY,
            truncate: flags & libc::O_TRUNC != 0,
            append: flags & libc::O_APPEND != 0,
        }
    }
}

impl AspenFs {
    pub(crate) fn do_open(&self, ino: u64, flags: i32) -> OpResult<(u64, FopenFlags)> {
        let acc = Access::from_flags(flags);
        if acc.writable || acc.truncate {
            self.writable()?;
        }
        match self.place(ino)? {
            Place::In(Tree::Kv, key) if !key.is_empty() => self.open_kv(ino, &key, acc),
            Place::In(Tree::Cluster, name) if !name.is_empty() => {
                if acc.writable || acc.truncate {
                    return Err(Errno::EACCES);
                }
                let data = self.backend.cluster_file(&name).map_err(backend_errno)?;
                let fh = self
                    .handles
                    .open_file(ino, false, false, data, false, None)?;
                self.count_open(ino, fh)?;
                // Read the current contents whatever the cached size says.
                Ok((fh, FopenFlags::FOPEN_DIRECT_IO))
            }
            Place::In(_, p) if !p.is_empty() => Err(Errno::ENOENT),
            _ => Err(Errno::EISDIR),
        }
    }

    fn open_kv(&self, ino: u64, key: &str, acc: Access) -> OpResult<(u64, FopenFlags)> {
        let (data, base) = if acc.truncate {
            let a = self.stat_key(key)?.ok_or(Errno::ENOENT)?;
            (Vec::new(), a)
        } else {
            let e = self
                .backend
                .get(key)
                .map_err(backend_errno)?
                .ok_or(Errno::ENOENT)?;
            (e.value, e.attr)
        };
        match base.kind {
            EntryKind::File => {}
            EntryKind::Dir => return Err(Errno::EISDIR),
            EntryKind::Symlink => return Err(Errno::ELOOP),
            // The kernel serves FIFOs itself and the mount is nodev; nothing to load.
            EntryKind::Fifo
            | EntryKind::Socket
            | EntryKind::CharDevice
            | EntryKind::BlockDevice => return Err(Errno::ENXIO),
        }
        if acc.truncate {
            // Like O_TRUNC on a local file: other writers of this inode see it too.
            for w in self.handles.writers(ino)? {
                w.truncate(0, self.max_value(), &self.handles.budget)?;
            }
        }
        let rev = base.mod_revision;
        self.inodes.set_cached_attr(ino, &base)?;
        let fh = self.handles.open_file(
            ino,
            acc.writable,
            acc.append,
            data,
            acc.truncate,
            Some(base),
        )?;
        self.count_open(ino, fh)?;
        // Keep the kernel page cache only if it holds exactly this revision.
        let now_cached = if acc.truncate { None } else { Some(rev) };
        let before = self.inodes.swap_data_rev(ino, now_cached)?;
        let flags = if !acc.truncate && before == Some(rev) {
            FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::empty()
        };
        Ok((fh, flags))
    }

    fn count_open(&self, ino: u64, fh: u64) -> OpResult<()> {
        if let Err(e) = self.inodes.open(ino) {
            self.handles.close_file(fh)?;
            return Err(e);
        }
        Ok(())
    }

    /// create(2) with O_CREAT: a new empty file, opened. Without O_EXCL an entry that
    /// appeared meanwhile is opened instead.
    pub(crate) fn do_create(
        &self,
        parent: u64,
        name: &OsStr,
        flags: i32,
        who: Creator,
    ) -> OpResult<(FileAttr, u64, FopenFlags)> {
        let acc = Access::from_flags(flags);
        match self.create_entry(parent, name, EntryKind::File, Vec::new(), 0, who) {
            Ok((ino, a)) => {
                let fh = self.handles.open_file(
                    ino,
                    acc.writable,
                    acc.append,
                    Vec::new(),
                    false,
                    Some(a.clone()),
                );
                let fh = match fh.and_then(|fh| self.count_open(ino, fh).map(|()| fh)) {
                    Ok(fh) => fh,
                    Err(e) => {
                        // The entry exists, but the kernel will not learn its inode.
                        self.inodes.forget(ino, 1)?;
                        return Err(e);
                    }
                };
                self.inodes.swap_data_rev(ino, Some(a.mod_revision))?;
                Ok((attr::from_entry(ino, &a), fh, FopenFlags::empty()))
            }
            Err(Errno::EEXIST) if flags & libc::O_EXCL == 0 => {
                let (fa, _) = self.do_lookup(parent, name)?;
                match self.do_open(fa.ino.0, flags) {
                    Ok((fh, fl)) => Ok((fa, fh, fl)),
                    Err(e) => {
                        self.inodes.forget(fa.ino.0, 1)?;
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn do_read(&self, fh: u64, offset: u64, size: u32) -> OpResult<Vec<u8>> {
        self.handles.file(fh)?.read(offset, size)
    }

    pub(crate) fn do_write(&self, fh: u64, offset: u64, data: &[u8]) -> OpResult<u32> {
        self.writable()?;
        let h = self.handles.file(fh)?;
        if !h.writable {
            return Err(Errno::EBADF);
        }
        h.write(offset, data, self.max_value(), &self.handles.budget)
    }

    /// flush (every close) and fsync: commit if dirty, return once stored.
    pub(crate) fn do_flush(&self, fh: u64) -> OpResult<()> {
        let h = self.handles.file(fh)?;
        self.commit(&h)
    }

    /// Last close: commit what is left, then drop the handle. Data whose commit already
    /// failed at flush (so close(2) reported the error) is not stored behind the
    /// application's back now.
    pub(crate) fn do_release(&self, fh: u64) -> OpResult<()> {
        let h = self.handles.file(fh)?;
        let result = if h.failed()? {
            tracing::error!(
                ino = h.ino,
                "dropping writes whose commit failed and was reported"
            );
            Ok(())
        } else {
            self.commit(&h)
        };
        if let Err(e) = result {
            tracing::error!(
                ino = h.ino,
                errno = e.code(),
                "commit at release failed; uncommitted writes are lost"
            );
        }
        if let Some(h) = self.handles.close_file(fh)? {
            self.inodes.close(h.ino)?;
        }
        result
    }

    /// Stores a commit's data under the inode's current key. `Ok(None)` when the entry
    /// no longer exists (unlinked while open): its data has nowhere to go, as on a
    /// local file system.
    pub(crate) fn store(&self, ino: u64, c: &Commit) -> OpResult<Option<EntryAttr>> {
        let mut base = c.base.clone();
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let key = match self.inodes.place(ino)? {
                Some(Place::In(Tree::Kv, key)) if !key.is_empty() => key,
                _ => {
                    tracing::info!(ino, "file was removed while open; its writes are dropped");
                    return Ok(None);
                }
            };
            let b = match base.take() {
                Some(b) => b,
                None => match self.stat_key(&key)? {
                    Some(b) => b,
                    None => {
                        tracing::info!(key, "file was removed while open; its writes are dropped");
                        return Ok(None);
                    }
                },
            };
            if b.kind != EntryKind::File {
                tracing::warn!(
                    key,
                    "file was replaced by another kind of entry; its writes are dropped"
                );
                return Ok(None);
            }
            let req = PutRequest {
                key: key.clone(),
                kind: EntryKind::File,
                value: c.data.clone(),
                mode: b.mode,
                uid: b.uid,
                gid: b.gid,
                mtime_ns: None,
                xattrs: None,
                condition: PutCondition::ModRevision(b.mod_revision),
                rdev: 0,
            };
            match self.backend.put(req) {
                Ok(a) => return Ok(Some(a)),
                // Changed underneath: re-read its metadata and try again.
                Err(e) if e.kind == ErrorKind::Conflict => continue,
                Err(e) if e.kind == ErrorKind::NotFound => {
                    tracing::info!(key, "file's directory was removed; its writes are dropped");
                    return Ok(None);
                }
                Err(e) => return Err(backend_errno(e)),
            }
        }
        tracing::warn!(ino, "commit kept conflicting with other writers");
        Err(Errno::EIO)
    }
}
