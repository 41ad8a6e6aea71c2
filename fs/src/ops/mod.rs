//! The file system's operations, independent of fuser's reply types.
//!
//! [`AspenFs`] owns the shared state of a mount (backend, inode table, handle table,
//! settings). The operations live in submodules by theme and return `Result<_, Errno>`;
//! `fuse.rs` is the thin adapter that implements `fuser::Filesystem` with them.
//! Each operation resolves its inode to a [`Place`] and dispatches on the [`Tree`].

mod dir;
mod entry;
mod file;
pub(crate) mod fuse;
mod hooks;
mod meta;
mod secrets;
mod topics;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FileType};

use crate::attr;
use crate::backend::{Backend, BackendError, EntryAttr, EntryKind, ErrorKind};
use crate::handle::{FileHandle, HandleTable};
use crate::inode::{InodeTable, Place};
use crate::limits::{
    DEFAULT_MAX_VALUE_BYTES, MAX_BUFFERED_BYTES, MAX_COMMIT_ATTEMPTS, MAX_OPEN_HANDLES,
};
use crate::tree::{Tree, ROOT_INO};

pub(crate) type OpResult<T> = Result<T, Errno>;

/// Settings of one mount that the operations need.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub attr_ttl: Duration,
    pub entry_ttl: Duration,
    pub read_only: bool,
    /// How long a claim through `/topics` waits for a message.
    pub claim_wait: Duration,
}

pub(crate) struct AspenFs {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) inodes: Arc<InodeTable>,
    pub(crate) handles: Arc<HandleTable>,
    pub(crate) settings: Settings,
    /// Largest value a file may hold, refreshed from `Backend::stats`.
    max_value: AtomicU64,
    /// Timestamps of the synthesized directories.
    started: SystemTime,
    /// Commits of file contents completed by this mount. Attributes read from the
    /// backend while one completed may predate it, and the kernel cannot tell (it
    /// discards stale replies only after its own writes, not after our commits at
    /// close): such replies are given a zero TTL, so a reader never keeps a stale size
    /// and reads a file short.
    commits: AtomicU64,
    /// The kernel's notification channel, set once the session exists. Request
    /// handlers use it only for attribute-only invalidations, which take no lock the
    /// kernel may hold while it waits for a request (see `open_kv`).
    pub(crate) kernel: Arc<std::sync::OnceLock<fuser::Notifier>>,
    /// Claims of open `/topics/.../next` handles, acknowledged at release.
    next_claims: topics::NextClaims,
    /// What open `/secrets` handles wrote, and directories made there.
    secret_state: secrets::SecretState,
}

/// The errno for a backend error; unexpected failures are logged.
pub(crate) fn backend_errno(e: BackendError) -> Errno {
    match e.kind {
        ErrorKind::Io | ErrorKind::NoSpace | ErrorKind::ReadOnly => {
            tracing::warn!(error = %e, "backend call failed");
        }
        _ => tracing::debug!(error = %e, "backend call failed"),
    }
    Errno::from_i32(e.errno())
}

impl AspenFs {
    /// Makes no backend call: `mount` may be called from any thread, even an async one.
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        inodes: Arc<InodeTable>,
        settings: Settings,
    ) -> AspenFs {
        AspenFs {
            backend,
            inodes,
            handles: Arc::new(HandleTable::new(MAX_OPEN_HANDLES, MAX_BUFFERED_BYTES)),
            settings,
            max_value: AtomicU64::new(0),
            started: SystemTime::now(),
            commits: AtomicU64::new(0),
            kernel: Arc::new(std::sync::OnceLock::new()),
            next_claims: Default::default(),
            secret_state: Default::default(),
        }
    }

    /// See [`AspenFs::commits`].
    pub(crate) fn commits_done(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// `ttl` for attributes read when [`AspenFs::commits_done`] was `since`, or zero if
    /// a commit completed meanwhile.
    pub(crate) fn ttl_unless_committed(&self, since: u64, ttl: Duration) -> Duration {
        if self.commits_done() == since {
            ttl
        } else {
            Duration::ZERO
        }
    }

    /// The largest value a file may hold: from `Backend::stats` at first use (on a
    /// request thread), refreshed by statfs.
    pub(crate) fn max_value(&self) -> u64 {
        let known = self.max_value.load(Ordering::Relaxed);
        if known != 0 {
            return known;
        }
        let v = match self.backend.stats() {
            Ok(s) if s.max_value_bytes > 0 => s.max_value_bytes,
            Ok(_) => DEFAULT_MAX_VALUE_BYTES,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read backend stats; assuming the default value size limit");
                DEFAULT_MAX_VALUE_BYTES
            }
        };
        self.set_max_value(v);
        v
    }

    fn set_max_value(&self, v: u64) {
        if v > 0 {
            self.max_value.store(v, Ordering::Relaxed);
        }
    }

    /// Where `ino` sits; ENOENT for unknown or detached inodes.
    pub(crate) fn place(&self, ino: u64) -> OpResult<Place> {
        self.inodes.place(ino)?.ok_or(Errno::ENOENT)
    }

    /// EROFS on a read-only mount.
    pub(crate) fn writable(&self) -> OpResult<()> {
        if self.settings.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Errno for a change attempted outside `/kv`: the placeholders do not support
    /// changes yet; the root and `/cluster` never allow them.
    pub(crate) fn no_change_here(tree: Option<Tree>) -> Errno {
        match tree {
            Some(Tree::Secrets | Tree::Topics | Tree::Hooks) => Errno::EOPNOTSUPP,
            _ => Errno::EPERM,
        }
    }

    pub(crate) fn stat_key(&self, key: &str) -> OpResult<Option<EntryAttr>> {
        self.backend.stat(key).map_err(backend_errno)
    }

    /// Attributes of the root or a tree directory.
    pub(crate) fn fixed_dir_attr(&self, tree: Option<Tree>) -> OpResult<FileAttr> {
        match tree {
            None => {
                let mut a =
                    attr::synthesized(ROOT_INO, FileType::Directory, 0o755, 0, self.started);
                // Each top-level directory links back with its `..`.
                a.nlink = a.nlink.saturating_add(Tree::ALL.len() as u32);
                Ok(a)
            }
            Some(Tree::Kv) => match self.stat_key("")? {
                Some(a) if a.kind == EntryKind::Dir => {
                    let mut fa = attr::from_entry(Tree::Kv.ino(), &a);
                    self.overlay_pending_children(&mut fa)?;
                    Ok(fa)
                }
                _ => Ok(attr::synthesized(
                    Tree::Kv.ino(),
                    FileType::Directory,
                    0o755,
                    0,
                    self.started,
                )),
            },
            Some(t) => Ok(attr::synthesized(
                t.ino(),
                FileType::Directory,
                t.dir_mode(),
                0,
                self.started,
            )),
        }
    }

    /// Attributes of `/cluster/<name>`, sized from its current contents.
    pub(crate) fn cluster_attr(&self, ino: u64, name: &str) -> OpResult<FileAttr> {
        let contents = self.backend.cluster_file(name).map_err(backend_errno)?;
        Ok(attr::synthesized(
            ino,
            FileType::RegularFile,
            0o444,
            contents.len() as u64,
            SystemTime::now(),
        ))
    }

    /// Reports uncommitted writes of this mount in `a`: size and mtime of the handle
    /// changed last, which is what the file will hold once committed (a truncation
    /// through a handle makes it smaller than what the backend holds).
    pub(crate) fn overlay_dirty(&self, a: &mut FileAttr) -> OpResult<()> {
        let mut latest: Option<crate::handle::DirtyView> = None;
        for w in self.handles.writers(a.ino.0)? {
            if let Some(v) = w.dirty_view()? {
                if latest.is_none_or(|l| v.seq > l.seq) {
                    latest = Some(v);
                }
            }
        }
        if let Some(v) = latest {
            a.size = v.size;
            a.blocks = v.size.div_ceil(512);
            a.mtime = v.mtime;
            a.ctime = a.ctime.max(v.mtime);
        }
        Ok(())
    }

    /// Reports files created in directory `a` and not stored yet in its times: a
    /// create changes its parent's mtime and ctime, even before the store does.
    pub(crate) fn overlay_pending_children(&self, a: &mut FileAttr) -> OpResult<()> {
        if a.kind != FileType::Directory {
            return Ok(());
        }
        if let Some(ns) = self.inodes.newest_pending_child(a.ino.0)? {
            let t = attr::time_from_ns(ns);
            a.mtime = a.mtime.max(t);
            a.ctime = a.ctime.max(t);
        }
        Ok(())
    }

    /// After a local metadata change: cache the new attributes and let open writers
    /// compare against them at commit.
    pub(crate) fn changed_attr(&self, ino: u64, a: &EntryAttr) -> OpResult<()> {
        self.inodes.set_cached_attr(ino, a)?;
        for w in self.handles.writers(ino)? {
            w.set_base(a)?;
        }
        Ok(())
    }

    /// Commits the handle's buffer if dirty: one `put`; returns once it is stored.
    /// For a deferred create this stores the new entry, and the inode stops being
    /// pending either way (stored, or dropped after a failure).
    pub(crate) fn commit(&self, h: &FileHandle) -> OpResult<()> {
        let Some(mut c) = h.begin_commit()? else {
            return Ok(());
        };
        let result = if c.create {
            let stored = self.store_new(h.ino, std::mem::take(&mut c.data));
            // Settle the inode table while this handle's commits are still held off,
            // so that the handle and the table agree once the next one may start.
            let table = self.inodes.end_pending(h.ino, stored.as_ref().ok());
            match (stored, table) {
                (Ok(a), Ok(())) => Ok(Some(a)),
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            }
        } else {
            self.store(h.ino, &c)
        };
        h.end_commit(&c, &result);
        self.commits.fetch_add(1, Ordering::AcqRel);
        if let Ok(Some(a)) = &result {
            self.inodes.set_cached_attr(h.ino, a)?;
        }
        result.map(|_| ())
    }

    /// Before a truncation by another party: commits every dirty writer of `ino` other
    /// than `except`, so that writes that returned are stored before the truncation
    /// removes them (on a local file system they were in the file). A failed commit
    /// sticks to its handle and is reported at its close, as always.
    pub(crate) fn commit_writers(
        &self,
        ino: u64,
        except: Option<&Arc<FileHandle>>,
    ) -> OpResult<()> {
        for w in self.handles.writers(ino)? {
            if except.is_some_and(|h| Arc::ptr_eq(h, &w)) || !w.is_dirty()? {
                continue;
            }
            if let Err(e) = self.commit(&w) {
                tracing::debug!(ino, errno = e.code(), "commit before a truncation failed");
            }
        }
        Ok(())
    }

    /// After a truncation by another party: every other writer's buffer follows it. A
    /// writer that wrote meanwhile has its writes stored first (they returned before
    /// the truncation applied to them), then is truncated; one whose store fails keeps
    /// its writes and reports the failure at its close, as always.
    pub(crate) fn truncate_other_writers(
        &self,
        ino: u64,
        size: u64,
        except: Option<&Arc<FileHandle>>,
    ) -> OpResult<()> {
        for w in self.handles.writers(ino)? {
            if except.is_some_and(|h| Arc::ptr_eq(h, &w)) {
                continue;
            }
            for _ in 0..MAX_COMMIT_ATTEMPTS {
                if w.truncate_if_clean(size, &self.handles.budget)? {
                    break;
                }
                if let Err(e) = self.commit(&w) {
                    tracing::debug!(ino, errno = e.code(), "store before a truncation failed");
                    break;
                }
            }
        }
        Ok(())
    }

    /// If `ino` is a file created here and not yet stored, commits it now (with its
    /// handle's buffer as it is), so that an operation can proceed on a stored entry.
    /// The commit's error, if any, is the operation's (and sticks to the handle).
    pub(crate) fn settle(&self, ino: u64) -> OpResult<()> {
        let Some((fh, _)) = self.inodes.pending(ino)? else {
            return Ok(());
        };
        match self.handles.file(fh) {
            Ok(h) => self.commit(&h),
            // Stored (or dropped) and closed meanwhile.
            Err(_) if self.inodes.pending(ino)?.is_none() => Ok(()),
            Err(_) => {
                // invariant: the creating handle stays open until its commit ends the
                // pending state; drop a node that lost it rather than keep it forever.
                tracing::error!(ino, fh, "pending create without its handle; dropped");
                self.inodes.end_pending(ino, None)?;
                Err(Errno::EIO)
            }
        }
    }
}
