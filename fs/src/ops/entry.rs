//! Name and metadata operations: lookup, getattr, setattr, mknod, mkdir, symlink,
//! readlink, unlink, rmdir, rename, link.

use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FileType, RenameFlags, TimeOrNow};

use super::{backend_errno, AspenFs, OpResult};
use crate::attr;
use crate::backend::{
    AttrChange, DeleteKind, EntryAttr, EntryKind, ErrorKind, PutCondition, PutRequest, RenameMode,
};
use crate::inode::Place;
use crate::limits::{MAX_KEY_BYTES, MAX_SYMLINK_TARGET_BYTES};
use crate::tree::{entry_name, join_key, Tree};

/// What a setattr asks for (atime is not stored and ctime is stamped by the store).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<TimeOrNow>,
    pub fh: Option<u64>,
}

/// Who creates an entry, and with which permission bits (umask already applied).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creator {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Key of `name` inside the kv directory `dir`, checked for length.
pub(crate) fn child_key(dir: &str, name: &str) -> OpResult<String> {
    let key = join_key(dir, name);
    if key.len() > MAX_KEY_BYTES {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(key)
}

impl AspenFs {
    /// Looks `name` up in `parent`, counting one kernel lookup on success.
    pub(crate) fn do_lookup(&self, parent: u64, name: &OsStr) -> OpResult<(FileAttr, Duration)> {
        let name = match entry_name(name) {
            Ok(n) => n,
            Err(Errno::ENAMETOOLONG) => return Err(Errno::ENAMETOOLONG),
            Err(_) => return Err(Errno::ENOENT),
        };
        match self.place(parent)? {
            Place::Root => {
                let tree = Tree::from_name(name).ok_or(Errno::ENOENT)?;
                Ok((self.fixed_dir_attr(Some(tree))?, self.settings.entry_ttl))
            }
            Place::In(Tree::Kv, dir) => {
                let key = child_key(&dir, name)?;
                if let Some((ino, a)) = self.inodes.lookup_pending(parent, name)? {
                    // Created here, not stored yet: the kernel must not cache it.
                    return Ok((self.pending_attr(ino, &a)?, Duration::ZERO));
                }
                let since = self.commits_done();
                let a = self.stat_key(&key)?.ok_or(Errno::ENOENT)?;
                let ino =
                    self.inodes
                        .lookup(parent, name, attr::file_type(a.kind), Some(a.clone()))?;
                let mut fa = attr::from_entry(ino, &a);
                self.overlay_dirty(&mut fa)?;
                self.overlay_pending_children(&mut fa)?;
                Ok((
                    fa,
                    self.ttl_unless_committed(since, self.settings.entry_ttl),
                ))
            }
            Place::In(Tree::Cluster, dir) if dir.is_empty() => {
                if !self.backend.cluster_files().iter().any(|f| f == name) {
                    return Err(Errno::ENOENT);
                }
                let ino = self
                    .inodes
                    .lookup(parent, name, FileType::RegularFile, None)?;
                // Status files change all the time: the kernel must not cache them.
                match self.cluster_attr(ino, name) {
                    Ok(a) => Ok((a, Duration::ZERO)),
                    Err(e) => {
                        self.inodes.forget(ino, 1)?;
                        Err(e)
                    }
                }
            }
            Place::In(Tree::Cluster, _) => Err(Errno::ENOTDIR),
            Place::In(Tree::Hooks, dir) => self.hooks_lookup(parent, &dir, name),
            Place::In(Tree::Topics, dir) => self.topics_lookup(parent, &dir, name),
            Place::In(Tree::Secrets, dir) => self.secrets_lookup(parent, &dir, name),
        }
    }

    pub(crate) fn do_getattr(&self, ino: u64) -> OpResult<(FileAttr, Duration)> {
        let ttl = self.settings.attr_ttl;
        let place = match self.inodes.place(ino)? {
            Some(p) => p,
            None => return self.detached_attr(ino).map(|a| (a, ttl)),
        };
        match place {
            Place::Root => Ok((self.fixed_dir_attr(None)?, ttl)),
            Place::In(t, path) if path.is_empty() => Ok((self.fixed_dir_attr(Some(t))?, ttl)),
            Place::In(Tree::Kv, key) => {
                if let Some((_, a)) = self.inodes.pending(ino)? {
                    return Ok((self.pending_attr(ino, &a)?, Duration::ZERO));
                }
                let since = self.commits_done();
                let a = self.stat_key(&key)?.ok_or(Errno::ENOENT)?;
                if self.inodes.kind(ino)? != Some(attr::file_type(a.kind)) {
                    // Replaced by an entry of another kind elsewhere: a new lookup
                    // gives the new entry its own inode.
                    return Err(Errno::ESTALE);
                }
                self.inodes.set_cached_attr(ino, &a)?;
                let mut fa = attr::from_entry(ino, &a);
                self.overlay_dirty(&mut fa)?;
                self.overlay_pending_children(&mut fa)?;
                Ok((fa, self.ttl_unless_committed(since, ttl)))
            }
            Place::In(Tree::Cluster, name) => Ok((self.cluster_attr(ino, &name)?, Duration::ZERO)),
            Place::In(Tree::Hooks, path) => self.hooks_getattr(ino, &path),
            Place::In(Tree::Topics, path) => self.topics_getattr(ino, &path),
            Place::In(Tree::Secrets, path) => self.secrets_getattr(ino, &path),
        }
    }

    /// Attributes of a pending create: as created, with the size and time of what its
    /// handle wrote.
    pub(crate) fn pending_attr(&self, ino: u64, a: &EntryAttr) -> OpResult<FileAttr> {
        let mut fa = attr::from_entry(ino, a);
        self.overlay_dirty(&mut fa)?;
        Ok(fa)
    }

    /// Attributes of an inode that lost its name (unlinked while open): as last seen.
    fn detached_attr(&self, ino: u64) -> OpResult<FileAttr> {
        let a = self.inodes.cached_attr(ino)?.ok_or(Errno::ENOENT)?;
        let mut fa = attr::from_entry(ino, &a);
        fa.nlink = 0;
        self.overlay_dirty(&mut fa)?;
        Ok(fa)
    }

    pub(crate) fn do_setattr(&self, ino: u64, s: SetAttr) -> OpResult<(FileAttr, Duration)> {
        let changes_something = s.mode.is_some()
            || s.uid.is_some()
            || s.gid.is_some()
            || s.size.is_some()
            || s.mtime.is_some();
        if changes_something {
            self.writable()?;
        }
        if let Some((fh, a)) = self.inodes.pending(ino)? {
            let times_to_now = s.mode.is_none()
                && s.uid.is_none()
                && s.gid.is_none()
                && s.size.is_none()
                && matches!(s.mtime, None | Some(TimeOrNow::Now));
            if times_to_now {
                // touch(1) of a new file: the commit stamps the time anyway, so this
                // costs no write of its own.
                if s.mtime.is_some() {
                    self.inodes
                        .touch_pending(ino, attr::ns_from_time(SystemTime::now()))?;
                    if let Ok(h) = self.handles.file(fh) {
                        h.touch()?;
                    }
                }
                let a = self.inodes.pending(ino)?.map_or(a, |(_, a)| a);
                return Ok((self.pending_attr(ino, &a)?, Duration::ZERO));
            }
            self.settle(ino)?;
        }
        let place = self.inodes.place(ino)?;
        let key = match place {
            Some(Place::In(Tree::Kv, key)) => Some(key),
            None => None,
            Some(Place::Root) if !changes_something => return self.do_getattr(ino),
            Some(Place::In(_, _)) if !changes_something => return self.do_getattr(ino),
            Some(Place::Root) => return Err(Self::no_change_here(None)),
            Some(Place::In(t, _)) => return Err(Self::no_change_here(Some(t))),
        };
        let mut change = AttrChange {
            mode: s.mode.map(|m| m & 0o7777),
            uid: s.uid,
            gid: s.gid,
            mtime_ns: s.mtime.map(attr::time_or_now),
            ..AttrChange::default()
        };
        // Open writers of this inode share its contents, as on a local file system;
        // an ftruncate through one of them is committed with its buffer.
        let writers = if s.size.is_some() {
            self.handles.writers(ino)?
        } else {
            Vec::new()
        };
        // ftruncate(fd) through a writer: that handle commits the new size.
        let via = match s.fh.map(|fh| self.handles.file(fh)) {
            Some(Ok(h)) => Some(h),
            _ => None,
        };
        let own_handle = |w: &std::sync::Arc<crate::handle::FileHandle>| {
            via.as_ref().is_some_and(|h| std::sync::Arc::ptr_eq(h, w))
        };
        if let Some(size) = s.size {
            if size > self.max_value() {
                return Err(Errno::EFBIG);
            }
            if !writers.iter().any(&own_handle) {
                change.size = Some(size);
                self.commit_writers(ino, None)?;
            }
        }
        let truncate_writers = || -> OpResult<()> {
            if let Some(size) = s.size {
                if let Some(h) = writers.iter().find(|w| own_handle(w)) {
                    h.truncate(size, self.max_value(), &self.handles.budget)?;
                }
                self.truncate_other_writers(ino, size, via.as_ref())?;
            }
            Ok(())
        };
        let Some(key) = key else {
            // Unlinked while open: only the buffers can change.
            truncate_writers()?;
            return self.detached_attr(ino).map(|a| (a, self.settings.attr_ttl));
        };
        let empty = change.mode.is_none()
            && change.uid.is_none()
            && change.gid.is_none()
            && change.size.is_none()
            && change.mtime_ns.is_none();
        let a = if empty {
            self.stat_key(&key)?.ok_or(Errno::ENOENT)?
        } else {
            let a = self.backend.set_attr(&key, change).map_err(backend_errno)?;
            self.changed_attr(ino, &a)?;
            a
        };
        truncate_writers()?;
        let mut fa = attr::from_entry(ino, &a);
        self.overlay_dirty(&mut fa)?;
        Ok((fa, self.settings.attr_ttl))
    }

    /// Creates an entry with `MustNotExist` and counts one kernel lookup on it.
    /// `rdev` is the device number of a device node (0 for other kinds).
    pub(crate) fn create_entry(
        &self,
        parent: u64,
        name: &OsStr,
        kind: EntryKind,
        value: Vec<u8>,
        rdev: u32,
        who: Creator,
    ) -> OpResult<(u64, EntryAttr)> {
        self.writable()?;
        let name = entry_name(name)?;
        let dir = match self.place(parent)? {
            Place::In(Tree::Kv, dir) => dir,
            Place::Root => return Err(Self::no_change_here(None)),
            Place::In(t, _) => return Err(Self::no_change_here(Some(t))),
        };
        let key = child_key(&dir, name)?;
        let a = self
            .backend
            .put(PutRequest {
                key,
                kind,
                value,
                mode: who.mode & 0o7777,
                uid: who.uid,
                gid: who.gid,
                mtime_ns: None,
                xattrs: None,
                condition: PutCondition::MustNotExist,
                rdev,
            })
            .map_err(backend_errno)?;
        let ino = self
            .inodes
            .lookup(parent, name, attr::file_type(kind), Some(a.clone()))?;
        Ok((ino, a))
    }

    /// mknod(2): regular files, FIFOs, sockets and device nodes. The kernel serves
    /// FIFOs and sockets itself and refuses to open device nodes on this `nodev`
    /// mount, so these are names with metadata only.
    pub(crate) fn do_mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        who: Creator,
    ) -> OpResult<FileAttr> {
        let kind = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => EntryKind::File,
            libc::S_IFIFO => EntryKind::Fifo,
            libc::S_IFSOCK => EntryKind::Socket,
            libc::S_IFCHR => EntryKind::CharDevice,
            libc::S_IFBLK => EntryKind::BlockDevice,
            // Directories come through mkdir; anything else is no file type.
            _ => return Err(Errno::EINVAL),
        };
        let rdev = match kind {
            EntryKind::CharDevice | EntryKind::BlockDevice => rdev,
            _ => 0,
        };
        let (ino, a) = self.create_entry(parent, name, kind, Vec::new(), rdev, who)?;
        Ok(attr::from_entry(ino, &a))
    }

    pub(crate) fn do_mkdir(&self, parent: u64, name: &OsStr, who: Creator) -> OpResult<FileAttr> {
        match self.place(parent)? {
            Place::In(Tree::Topics, dir) => {
                return self.topics_mkdir(parent, &dir, entry_name(name)?)
            }
            Place::In(Tree::Secrets, dir) => {
                return self.secrets_mkdir(parent, &dir, entry_name(name)?)
            }
            _ => {}
        }
        let (ino, a) = self.create_entry(parent, name, EntryKind::Dir, Vec::new(), 0, who)?;
        Ok(attr::from_entry(ino, &a))
    }

    pub(crate) fn do_symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &std::path::Path,
        who: Creator,
    ) -> OpResult<FileAttr> {
        use std::os::unix::ffi::OsStrExt;
        let target = target.as_os_str().as_bytes();
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() > MAX_SYMLINK_TARGET_BYTES {
            return Err(Errno::ENAMETOOLONG);
        }
        let who = Creator { mode: 0o777, ..who };
        let (ino, a) =
            self.create_entry(parent, name, EntryKind::Symlink, target.to_vec(), 0, who)?;
        Ok(attr::from_entry(ino, &a))
    }

    pub(crate) fn do_readlink(&self, ino: u64) -> OpResult<Vec<u8>> {
        match self.place(ino)? {
            Place::In(Tree::Kv, key) if !key.is_empty() => {
                let e = self
                    .backend
                    .get(&key)
                    .map_err(backend_errno)?
                    .ok_or(Errno::ENOENT)?;
                if e.attr.kind != EntryKind::Symlink {
                    return Err(Errno::EINVAL);
                }
                if e.value.len() > MAX_SYMLINK_TARGET_BYTES {
                    tracing::warn!(key, "stored symlink target longer than PATH_MAX");
                    return Err(Errno::ENAMETOOLONG);
                }
                Ok(e.value)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// unlink (`DeleteKind::NonDir`) and rmdir (`DeleteKind::EmptyDir`).
    pub(crate) fn do_remove(&self, parent: u64, name: &OsStr, kind: DeleteKind) -> OpResult<()> {
        self.writable()?;
        let name = entry_name(name)?;
        let dir = match self.place(parent)? {
            Place::In(Tree::Kv, dir) => dir,
            Place::In(Tree::Topics, dir) => {
                return self.topics_remove(parent, &dir, name, kind == DeleteKind::EmptyDir)
            }
            Place::In(Tree::Secrets, dir) => {
                return self.secrets_remove(parent, &dir, name, kind == DeleteKind::EmptyDir)
            }
            Place::Root => return Err(Self::no_change_here(None)),
            Place::In(t, _) => return Err(Self::no_change_here(Some(t))),
        };
        let key = child_key(&dir, name)?;
        if kind == DeleteKind::NonDir && self.cancel_pending(parent, name)? {
            return Ok(());
        }
        self.backend.delete(&key, kind).map_err(backend_errno)?;
        self.inodes.unlink(parent, name)?;
        Ok(())
    }

    /// Unlink of a file created here and not stored yet: forgets it without a backend
    /// call; its handle's later commits store nothing. False when `name` is no such
    /// file (any more: a commit that was running may just have stored it).
    fn cancel_pending(&self, parent: u64, name: &str) -> OpResult<bool> {
        let Some(ino) = self.inodes.peek(parent, name)? else {
            return Ok(false);
        };
        let Some((fh, _)) = self.inodes.pending(ino)? else {
            return Ok(false);
        };
        let h = match self.handles.file(fh) {
            Ok(h) if h.ino == ino => h,
            // Stored (or dropped) and closed meanwhile.
            _ => return Ok(false),
        };
        let mut hold = h.hold_commits()?;
        if !hold.create_pending {
            return Ok(false);
        }
        self.inodes.end_pending(ino, None)?;
        hold.cancel_create();
        Ok(true)
    }

    pub(crate) fn do_rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> OpResult<()> {
        self.writable()?;
        let mode = if flags.is_empty() {
            RenameMode::Replace
        } else if flags == RenameFlags::RENAME_NOREPLACE {
            RenameMode::NoReplace
        } else if flags == RenameFlags::RENAME_EXCHANGE {
            RenameMode::Exchange
        } else {
            // RENAME_WHITEOUT, combinations and unknown bits.
            return Err(Errno::EINVAL);
        };
        let name = entry_name(name)?;
        let new_name = entry_name(new_name)?;
        let (from_dir, to_dir) = match (self.place(parent)?, self.place(new_parent)?) {
            (Place::In(Tree::Kv, a), Place::In(Tree::Kv, b)) => (a, b),
            (Place::In(a, _), Place::In(b, _)) if a != b => return Err(Errno::EXDEV),
            (Place::Root, _) | (_, Place::Root) => return Err(Self::no_change_here(None)),
            (Place::In(t, _), _) => return Err(Self::no_change_here(Some(t))),
        };
        let from = child_key(&from_dir, name)?;
        let to = child_key(&to_dir, new_name)?;
        // Files created here and not stored yet are stored first, source and target.
        for (dir, n) in [(parent, name), (new_parent, new_name)] {
            if let Some(child) = self.inodes.peek(dir, n)? {
                self.settle(child)?;
            }
        }
        match self.backend.rename(&from, &to, mode) {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::CrossDevice => {
                tracing::info!(%from, %to, "rename too large for one command");
                return Err(Errno::EXDEV);
            }
            Err(e) => return Err(backend_errno(e)),
        }
        self.inodes.rename(
            parent,
            name,
            new_parent,
            new_name,
            mode == RenameMode::Exchange,
        )?;
        Ok(())
    }
}
