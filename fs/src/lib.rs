//! aspen-fs: Aspen's FUSE file system. It serves a tree of entries from a [`Backend`]
//! and knows nothing of raft, networks or the services that implement the backend.
//!
//! Layout of a mount: `kv/` (the backend's tree), `cluster/` (read-only status files),
//! and `secrets/`, `topics/`, `hooks/` (served by the backend's services). [`mount`] starts a
//! mount; [`memory::MemoryBackend`] is a complete in-memory backend.
//!
//! Modules: `backend` (the trait), `memory` (in-memory backend; `memory/store.rs`
//! holds its command semantics), `limits` (every bound), `tree` (top-level layout,
//! names), `inode` (inode table), `handle` (open handles and write-back buffers),
//! `attr` (metadata conversions), `xattr` (xattr names), `ops` (the operations and
//! the fuser adapter), `notify` (kernel cache invalidation), and this file (mount API).

pub mod backend;
pub mod limits;
pub mod memory;

mod attr;
mod handle;
mod inode;
mod notify;
mod ops;
mod sysmount;
mod tree;
mod xattr;

pub use backend::*;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::handle::HandleTable;
use crate::inode::InodeTable;
use crate::limits::{
    CLAIM_WAIT_MS, DEFAULT_ATTR_TIMEOUT, DEFAULT_ENTRY_TIMEOUT, DEFAULT_THREADS, MAX_CLAIM_WAIT_MS,
    MAX_INODES, MAX_THREADS,
};
use crate::ops::{AspenFs, Settings};

/// How to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountConfig {
    /// How long the kernel may cache attributes without asking.
    pub attr_timeout: Duration,
    /// How long the kernel may cache names without asking.
    pub entry_timeout: Duration,
    pub read_only: bool,
    /// Let other users than the mounting one use the mount.
    pub allow_other: bool,
    /// Let the kernel enforce permission bits (default true).
    pub default_permissions: bool,
    /// Source shown in the mount table (e.g. `HOST:PORT`).
    pub fsname: String,
    /// Type shown as `fuse.<subtype>` in the mount table.
    pub subtype: String,
    /// Request threads; handlers block on the backend, so several run in parallel.
    pub threads: usize,
    /// How long an open of a topic group's `claim` or `next` file waits for a message.
    pub claim_wait: Duration,
}

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            attr_timeout: DEFAULT_ATTR_TIMEOUT,
            entry_timeout: DEFAULT_ENTRY_TIMEOUT,
            read_only: false,
            allow_other: false,
            default_permissions: true,
            fsname: "aspen".to_string(),
            subtype: "aspen".to_string(),
            threads: DEFAULT_THREADS,
            claim_wait: Duration::from_millis(CLAIM_WAIT_MS),
        }
    }
}

/// Figures of a live mount, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountStats {
    /// Inodes in the inode table (the root and top-level directories included).
    pub inodes: usize,
    /// Open file and directory handles.
    pub open_handles: usize,
    /// Bytes held by write-back buffers and read snapshots.
    pub buffered_bytes: u64,
    /// Files created on this mount whose entry is not stored yet (deferred creates:
    /// stored by the first flush, fsync or close of their handle).
    pub pending_creates: usize,
    /// Backend changes dropped because the cache notifier fell behind (each such
    /// episode ends with a full invalidation of the kernel's caches).
    pub dropped_changes: u64,
    /// Backend changes turned into kernel notifications.
    pub applied_changes: u64,
}

/// A live mount. Dropping it unmounts (like [`MountHandle::unmount`], errors logged).
#[derive(Debug)]
pub struct MountHandle {
    session: Option<BackgroundSession>,
    /// Set when the mount was made with mount(2) here (as root); fuser does not know it.
    root_mount: Option<sysmount::RootMount>,
    notify: Option<notify::NotifyThreads>,
    inodes: Arc<InodeTable>,
    handles: Arc<HandleTable>,
    mountpoint: PathBuf,
}

impl MountHandle {
    /// The directory the file system is mounted on.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Current figures of the mount.
    pub fn stats(&self) -> MountStats {
        let (dropped_changes, applied_changes) = self.notify.as_ref().map_or((0, 0), |n| {
            (
                n.state.overflowed.load(Ordering::Acquire),
                n.state.applied.load(Ordering::Acquire),
            )
        });
        MountStats {
            inodes: self.inodes.len().unwrap_or(0),
            open_handles: self.handles.count().unwrap_or(0),
            buffered_bytes: self.handles.budget.used(),
            pending_creates: self.inodes.pending_count().unwrap_or(0),
            dropped_changes,
            applied_changes,
        }
    }

    /// Unmounts and waits for the request threads to finish. When the kernel refuses
    /// (e.g. EBUSY: a file is open or a process has its cwd inside), the file system
    /// stays mounted and served, cache invalidation included, until it is unmounted
    /// from outside; the error is returned.
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_inner()
    }

    /// Blocks until the file system is unmounted from outside (`umount DIR`,
    /// `fusermount3 -u DIR`), then stops its threads.
    pub fn wait(mut self) {
        if let Some(s) = self.session.take() {
            if let Err(e) = s.join() {
                tracing::warn!(error = %e, "file system session ended with an error");
            }
        }
        if let Some(n) = self.notify.take() {
            n.stop();
        }
    }

    fn unmount_inner(&mut self) -> io::Result<()> {
        if let Some(m) = &self.root_mount {
            if self.session.is_some() {
                if let Err(e) = m.umount() {
                    drop(self.notify.take());
                    return Err(e);
                }
            }
        }
        if let Some(s) = self.session.take() {
            if let Err(e) = s.umount_and_join() {
                // Still mounted: let the notifier run on; its threads end with the
                // backend's change stream.
                drop(self.notify.take());
                return Err(e);
            }
        }
        if let Some(n) = self.notify.take() {
            n.stop();
        }
        Ok(())
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            tracing::warn!(error = %e, mountpoint = %self.mountpoint.display(), "unmount failed");
        }
    }
}

fn fuser_config(cfg: &MountConfig) -> Config {
    let mut options = vec![
        // fusermount splits its options at commas; a source listing several endpoints
        // keeps its meaning with semicolons there.
        MountOption::FSName(cfg.fsname.replace(',', ";")),
        MountOption::Subtype(cfg.subtype.clone()),
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
        if cfg.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if cfg.default_permissions {
        options.push(MountOption::DefaultPermissions);
    }
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if cfg.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(cfg.threads.clamp(1, MAX_THREADS));
    config
}

/// Mounts `backend` on `dir` and serves it from background threads until the
/// returned handle is unmounted or dropped, or the kernel unmounts it. The only backend
/// call made on the calling thread is `subscribe`; all others come from request threads.
pub fn mount(backend: Arc<dyn Backend>, dir: &Path, cfg: MountConfig) -> io::Result<MountHandle> {
    let inodes = Arc::new(InodeTable::new(MAX_INODES));
    let settings = Settings {
        attr_ttl: cfg.attr_timeout,
        entry_ttl: cfg.entry_timeout,
        read_only: cfg.read_only,
        claim_wait: cfg.claim_wait.min(Duration::from_millis(MAX_CLAIM_WAIT_MS)),
    };
    let changes = backend.subscribe();
    let fs = AspenFs::new(backend, inodes.clone(), settings);
    let handles = fs.handles.clone();
    let kernel = fs.kernel.clone();
    let config = fuser_config(&cfg);
    let (session, root_mount) = match sysmount::mount_as_root(dir, &cfg)? {
        Some((fd, root_mount)) => {
            let acl = config.acl;
            match fuser::Session::from_fd(fs, fd, acl, config).and_then(|s| s.spawn()) {
                Ok(session) => (session, Some(root_mount)),
                Err(e) => {
                    if let Err(u) = root_mount.umount() {
                        tracing::warn!(error = %u, "unmount after a failed start failed");
                    }
                    return Err(e);
                }
            }
        }
        None => (fuser::spawn_mount(fs, dir, &config)?, None),
    };
    // invariant: set once, here, before any request can need it (until then opens
    // simply skip the attribute refresh).
    let _ = kernel.set(session.notifier());
    let notify = match notify::start(changes, inodes.clone(), session.notifier()) {
        Ok(n) => n,
        Err(e) => {
            if let Err(u) = session.umount_and_join() {
                tracing::warn!(error = %u, "unmount after a failed start failed");
            }
            return Err(e);
        }
    };
    tracing::info!(mountpoint = %dir.display(), "mounted");
    Ok(MountHandle {
        session: Some(session),
        root_mount,
        notify: Some(notify),
        inodes,
        handles,
        mountpoint: dir.to_path_buf(),
    })
}
