//! File handles: open, create, read, write, flush, fsync, release, and the commit of a
//! write-back buffer as one `Backend::put`.
//!
//! A handle snapshots the value at open (close-to-open consistency). Writes only touch
//! the handle's buffer; flush, fsync and release commit it when dirty, and commit errors
//! are returned there as errno. The commit compares against the entry's `mod_revision`
//! so that metadata changed meanwhile (chmod, xattrs, elsewhere too) is kept: on a
//! conflict it re-reads the metadata and tries again, a bounded number of times.
//!
//! Deferred create: `create` without O_EXCL makes no backend call. The new file is a
//! *pending* node of the inode table (attributes: the request's mode, uid and gid, size
//! 0, times now) and its handle's first commit stores entry and contents with ONE `put`
//! (condition `Any`: last writer wins, as with a plain O_CREAT|O_TRUNC). Other nodes see
//! the file after close (close-to-open, like NFS). Meanwhile this mount answers lookup,
//! getattr and readdir from the pending state (size: the buffer's), with zero cache
//! TTLs so that the kernel never keeps it, and the parent directory's mtime and ctime
//! are at least the create's time. Unlink cancels the create (no backend call,
//! nothing stored at close); every other operation on the file, another open included,
//! first commits it with the buffer as it is ([`AspenFs::settle`]), except utimens to
//! now (touch(1)), which the commit does anyway.
//!
//! When it is stored: at the first flush (every close(2) flushes), fsync or release,
//! whichever comes first, so once close(2) returns the file exists for every node
//! (close-to-open). A shell redirection closes a duplicate descriptor before it writes,
//! so it stores the empty file there and its contents at the last close: two puts, but
//! neither waits under the kernel's directory lock, where the create runs. A failed
//! store is reported at flush/close and sticks to the handle; the pending node is
//! dropped, so the next lookup asks the backend. The stored times are the create's.
//!
//! O_EXCL creates are stored at once (`MustNotExist`): exclusivity must hold across
//! nodes.

use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FopenFlags};

use super::entry::{child_key, Creator};
use super::{backend_errno, AspenFs, OpResult};
use crate::attr;
use crate::backend::{EntryAttr, EntryKind, ErrorKind, PutCondition, PutRequest};
use crate::handle::Commit;
use crate::inode::Place;
use crate::limits::MAX_COMMIT_ATTEMPTS;
use crate::tree::{entry_name, Tree};

/// Every handle on a `/kv` file reads its own snapshot (close-to-open), but the kernel
/// has one page cache and one size per inode: reads through it would mix handles'
/// revisions and writes, or stop at a size another revision set (found by the
/// robustness harness: files read short, or as zeros, with concurrent readers and
/// writers). So `/kv` files use direct I/O: every read is answered from the handle.
/// Shared mmap still works where the kernel allows it (`FUSE_DIRECT_IO_ALLOW_MMAP`).
const KV_OPEN_FLAGS: FopenFlags = FopenFlags::FOPEN_DIRECT_IO;

/// The parts of open(2) flags that matter here.
#[derive(Debug, Clone, Copy)]
struct Access {
    readable: bool,
    writable: bool,
    truncate: bool,
    append: bool,
}

impl Access {
    fn from_flags(flags: i32) -> Access {
        Access {
            readable: flags & libc::O_ACCMODE != libc::O_WRONLY,
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
        // Another open of a file created here and not yet stored: store it first, so
        // that this handle sees what was written so far.
        self.settle(ino)?;
        // An inode that lost its name (unlinked or replaced here, or removed elsewhere)
        // while the kernel still holds a name for it, as when an open races with an
        // unlink of the same name: ESTALE makes the kernel look the name up again, so
        // the open finds whatever the name holds now. ENOENT would claim the name is
        // free even when another party has stored a file under it meanwhile (found by
        // the robustness harness: a read answered "no such file" after another mount's
        // write of that file had returned).
        let Some(place) = self.inodes.place(ino)? else {
            return Err(Errno::ESTALE);
        };
        match place {
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
            Place::In(Tree::Hooks, p) if !p.is_empty() => {
                self.hooks_open(ino, &p, acc.writable || acc.truncate)
            }
            Place::In(Tree::Topics, p) if !p.is_empty() => {
                self.topics_open(ino, &p, acc.readable, acc.writable)
            }
            Place::In(Tree::Secrets, p) if !p.is_empty() => {
                self.secrets_open(ino, &p, acc.writable, acc.truncate)
            }
            Place::In(_, p) if !p.is_empty() => Err(Errno::ENOENT),
            _ => Err(Errno::EISDIR),
        }
    }

    fn open_kv(&self, ino: u64, key: &str, acc: Access) -> OpResult<(u64, FopenFlags)> {
        // The kernel found this inode in its cache, but the key is gone (removed
        // elsewhere, the invalidation not yet here): ESTALE makes the kernel look the
        // name up again and retry the open once, so `open(O_CREAT)` creates the file
        // and a plain open gets ENOENT, as on a local file system.
        let (data, base) = if acc.truncate {
            // What other handles wrote and have not stored would be in the file on a
            // local file system when this truncation empties it: store it first.
            self.commit_writers(ino, None)?;
            let a = self.stat_key(key)?.ok_or(Errno::ESTALE)?;
            (Vec::new(), a)
        } else {
            let e = self
                .backend
                .get(key)
                .map_err(backend_errno)?
                .ok_or(Errno::ESTALE)?;
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
            self.truncate_other_writers(ino, 0, None)?;
        }
        let rev = base.mod_revision;
        // Close-to-open for the size too: the kernel reads no further than the size it
        // holds, which may predate this revision (a change elsewhere whose invalidation
        // is still on its way, or attributes read while a commit here completed). If
        // the entry changed since this mount last described it, make the kernel's
        // attributes stale now, so that reads ask for the current size. Attributes
        // only (offset -1): no page lock is taken, so this cannot wait on a request.
        let known = self.inodes.cached_attr(ino)?.map(|a| a.mod_revision);
        if known != Some(rev) {
            if let Some(kernel) = self.kernel.get() {
                if let Err(e) = kernel.inval_inode(fuser::INodeNo(ino), -1, 0) {
                    tracing::debug!(ino, error = %e, "attribute invalidation at open failed");
                }
            }
        }
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
        Ok((fh, KV_OPEN_FLAGS))
    }

    fn count_open(&self, ino: u64, fh: u64) -> OpResult<()> {
        if let Err(e) = self.inodes.open(ino) {
            self.handles.close_file(fh)?;
            return Err(e);
        }
        Ok(())
    }

    /// create(2) with O_CREAT: a new empty file, opened. With O_EXCL it is stored at
    /// once; without, it is a deferred create (see the module comment). Returns the
    /// attributes, the handle, its open flags and the TTL of the entry and attributes.
    pub(crate) fn do_create(
        &self,
        parent: u64,
        name: &OsStr,
        flags: i32,
        who: Creator,
    ) -> OpResult<(FileAttr, u64, FopenFlags, Duration)> {
        if let Place::In(Tree::Secrets, dir) = self.place(parent)? {
            let name = name.to_str().ok_or(Errno::EINVAL)?;
            return self.secrets_create(parent, &dir, name);
        }
        if flags & libc::O_EXCL == 0 {
            return self.create_deferred(parent, name, flags, who);
        }
        let acc = Access::from_flags(flags);
        let (ino, a) = self.create_entry(parent, name, EntryKind::File, Vec::new(), 0, who)?;
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
        Ok((
            attr::from_entry(ino, &a),
            fh,
            KV_OPEN_FLAGS,
            self.settings.entry_ttl,
        ))
    }

    /// A create without O_EXCL: a pending node and its handle, no backend call.
    fn create_deferred(
        &self,
        parent: u64,
        name: &OsStr,
        flags: i32,
        who: Creator,
    ) -> OpResult<(FileAttr, u64, FopenFlags, Duration)> {
        self.writable()?;
        let acc = Access::from_flags(flags);
        let name_str = entry_name(name)?;
        let dir = match self.place(parent)? {
            Place::In(Tree::Kv, dir) => dir,
            Place::Root => return Err(Self::no_change_here(None)),
            Place::In(t, _) => return Err(Self::no_change_here(Some(t))),
        };
        child_key(&dir, name_str)?;
        let now = attr::ns_from_time(SystemTime::now());
        let pending = EntryAttr {
            kind: EntryKind::File,
            size: 0,
            mode: who.mode & 0o7777,
            uid: who.uid,
            gid: who.gid,
            mtime_ns: now,
            ctime_ns: now,
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            lease: 0,
            rdev: 0,
            nlink: 1,
        };
        let ino = match self
            .inodes
            .create_pending(parent, name_str, pending.clone())
        {
            Ok(ino) => ino,
            Err(Errno::EEXIST) => {
                // Raced with another create of the name here: open that file, as
                // open(2) without O_EXCL does.
                let (fa, ttl) = self.do_lookup(parent, name)?;
                return match self.do_open(fa.ino.0, flags) {
                    Ok((fh, fl)) => Ok((fa, fh, fl, ttl)),
                    Err(e) => {
                        self.inodes.forget(fa.ino.0, 1)?;
                        Err(e)
                    }
                };
            }
            Err(e) => return Err(e),
        };
        let abandon = |e: Errno| -> OpResult<(FileAttr, u64, FopenFlags, Duration)> {
            self.inodes.end_pending(ino, None)?;
            self.inodes.forget(ino, 1)?;
            Err(e)
        };
        let fh = match self.handles.open_created(ino, acc.writable, acc.append) {
            Ok(fh) => fh,
            Err(e) => return abandon(e),
        };
        // On failure count_open closes the handle itself.
        if let Err(e) = self.count_open(ino, fh) {
            return abandon(e);
        }
        if let Err(e) = self.inodes.set_pending_handle(ino, fh) {
            self.handles.close_file(fh)?;
            self.inodes.close(ino)?;
            return abandon(e);
        }
        Ok((
            attr::from_entry(ino, &pending),
            fh,
            KV_OPEN_FLAGS,
            Duration::ZERO,
        ))
    }

    pub(crate) fn do_read(&self, fh: u64, offset: u64, size: u32) -> OpResult<Vec<u8>> {
        let h = self.handles.file(fh)?;
        if !h.writable {
            // Files whose reads come from a service at read time.
            match self.inodes.place(h.ino)? {
                Some(Place::In(Tree::Hooks, p)) if !p.is_empty() => {
                    return self.hooks_read(&p, offset, size)
                }
                Some(Place::In(Tree::Topics, p)) => {
                    if let Some(data) = self.topics_read(&p, offset, size)? {
                        return Ok(data);
                    }
                }
                _ => {}
            }
        }
        h.read(offset, size)
    }

    pub(crate) fn do_write(&self, fh: u64, offset: u64, data: &[u8]) -> OpResult<u32> {
        self.writable()?;
        let h = self.handles.file(fh)?;
        if !h.writable {
            // Handles of service files are not write-back buffers.
            if let Some(n) = self.topics_write(fh, h.ino, offset, data)? {
                return Ok(n);
            }
            if let Some(n) = self.secrets_write(fh, offset, data)? {
                return Ok(n);
            }
        }
        if !h.writable {
            return Err(Errno::EBADF);
        }
        h.write(offset, data, self.max_value(), &self.handles.budget)
    }

    /// flush (every close): commit if dirty (a pending create is), return once stored.
    pub(crate) fn do_flush(&self, fh: u64) -> OpResult<()> {
        self.topics_flush(fh)?;
        self.secrets_flush(fh)?;
        let h = self.handles.file(fh)?;
        self.commit(&h)
    }

    /// fsync: commit if dirty, return once stored.
    pub(crate) fn do_fsync(&self, fh: u64) -> OpResult<()> {
        self.topics_flush(fh)?;
        self.secrets_flush(fh)?;
        let h = self.handles.file(fh)?;
        self.commit(&h)
    }

    /// Last close: commit what is left, then drop the handle. Data whose commit already
    /// failed at flush (so close(2) reported the error) is not stored behind the
    /// application's back now.
    pub(crate) fn do_release(&self, fh: u64) -> OpResult<()> {
        self.topics_release(fh)?;
        self.secrets_release(fh)?;
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

    /// Stores a deferred create: entry and contents in one put, last writer wins.
    /// Errors are the caller's to report (ENOENT when the directory is gone, EISDIR
    /// when a directory took the name, EFBIG, EROFS, ...).
    pub(crate) fn store_new(&self, ino: u64, data: Vec<u8>) -> OpResult<EntryAttr> {
        let Some((_, p)) = self.inodes.pending(ino)? else {
            tracing::error!(ino, "deferred create without its pending node");
            return Err(Errno::EIO);
        };
        let key = match self.inodes.place(ino)? {
            Some(Place::In(Tree::Kv, key)) if !key.is_empty() => key,
            _ => {
                tracing::warn!(ino, "name of a created file was taken before it was stored");
                return Err(Errno::ENOENT);
            }
        };
        let data_empty = data.is_empty();
        self.backend
            .put(PutRequest {
                key,
                kind: EntryKind::File,
                value: data,
                mode: p.mode,
                uid: p.uid,
                gid: p.gid,
                // Nothing written: the create's time, so what stat showed before the
                // store stays true. Written: the store's time, as for any write.
                mtime_ns: data_empty.then_some(p.mtime_ns),
                xattrs: None,
                condition: PutCondition::Any,
                rdev: 0,
            })
            .map_err(backend_errno)
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

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::sync::Arc;
    use std::time::Duration;

    use fuser::Errno;

    use crate::backend::{Backend, DeleteKind};
    use crate::inode::InodeTable;
    use crate::memory::MemoryBackend;
    use crate::ops::{AspenFs, Settings};
    use crate::tree::Tree;

    /// The kernel may still send an open for an inode whose name an unlink here has just
    /// removed (its dentry goes only once the unlink returns), and another party may have
    /// stored a new file under that name meanwhile. The open must not say "no such
    /// file": ESTALE sends the kernel back to the name, which finds the new file.
    #[test]
    fn open_of_an_inode_that_lost_its_name_asks_for_a_new_lookup() {
        let b = MemoryBackend::new();
        let settings = Settings {
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            read_only: false,
            claim_wait: Duration::ZERO,
        };
        let fs = AspenFs::new(
            Arc::new(b.clone()),
            Arc::new(InodeTable::new(100)),
            settings,
        );
        let kv = Tree::Kv.ino();
        b.external_put("f", b"old").unwrap();
        let (old, _) = fs.do_lookup(kv, OsStr::new("f")).unwrap();
        fs.do_remove(kv, OsStr::new("f"), DeleteKind::NonDir)
            .unwrap();
        b.external_put("f", b"new").unwrap();
        assert_eq!(
            fs.do_open(old.ino.0, libc::O_RDONLY).err(),
            Some(Errno::ESTALE)
        );
        let (now, _) = fs.do_lookup(kv, OsStr::new("f")).unwrap();
        assert_ne!(now.ino, old.ino, "the name now holds another file");
        let (fh, _) = fs.do_open(now.ino.0, libc::O_RDONLY).unwrap();
        assert_eq!(fs.do_read(fh, 0, 10).unwrap(), b"new");
        fs.do_release(fh).unwrap();
        // With nothing under the name, the lookup says so.
        b.external_delete("f").unwrap();
        assert!(b.stat("f").unwrap().is_none());
        assert_eq!(fs.do_lookup(kv, OsStr::new("f")).err(), Some(Errno::ENOENT));
    }
}
