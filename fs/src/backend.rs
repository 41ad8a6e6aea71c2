//! The `Backend` trait: everything the file system needs from the store below it.
//!
//! `aspen-fs` knows nothing of raft, networks or services. It sees a tree of entries
//! addressed by `/`-separated keys relative to the `/kv` root ("" is that root), each
//! with POSIX metadata and a byte value. The root crate implements this trait twice:
//! for a node in the same process and for a client connection to a remote node.
//!
//! Calls block the calling thread until the store answers (or a bounded timeout
//! expires inside the implementation). The file system calls them only from request
//! threads, never while holding one of its own locks.

use std::sync::mpsc::Receiver;

/// What an entry is. Directories are explicit entries; a path is never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// Named pipe (mkfifo); no value.
    Fifo,
    /// Unix socket node; no value.
    Socket,
    /// Character device node (`rdev` names it); no value.
    CharDevice,
    /// Block device node (`rdev` names it); no value.
    BlockDevice,
}

/// Metadata of one entry, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryAttr {
    pub kind: EntryKind,
    /// Length of the value in bytes (for a symlink, of its target; 0 for a directory).
    pub size: u64,
    /// Permission bits only (`0o7777` mask); the kind gives the file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Nanoseconds since the Unix epoch, stamped by the store on every change.
    pub ctime_ns: i64,
    /// Store revision at which this entry was created (etcd semantics).
    pub create_revision: u64,
    /// Store revision of the last change to this entry.
    pub mod_revision: u64,
    /// Number of changes since creation (1 after create).
    pub version: u64,
    /// Lease the entry is attached to, 0 for none.
    pub lease: u64,
    /// Device number of a device node (0 otherwise).
    pub rdev: u32,
    /// Link count: 2 plus the number of subdirectories for a directory, 1 otherwise.
    pub nlink: u32,
}

/// One entry with its value and stored user xattrs (names include the `user.` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub attr: EntryAttr,
    pub value: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// A page of a directory listing: `(name, attr)` of direct children in byte order of name.
#[derive(Debug, Clone, Default)]
pub struct DirPage {
    pub entries: Vec<(String, EntryAttr)>,
    /// True when more children follow the last one returned.
    pub more: bool,
}

/// Precondition of a put, checked atomically by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    /// Create or replace (replace keeps `create_revision`, bumps `version`).
    Any,
    /// Fail with `AlreadyExists` if the key exists (O_EXCL, mkdir, symlink).
    MustNotExist,
    /// Fail with `Conflict` unless the entry's `mod_revision` equals this value.
    ModRevision(u64),
}

/// A whole-entry write: value and metadata replaced in one command.
#[derive(Debug, Clone)]
pub struct PutRequest {
    pub key: String,
    pub kind: EntryKind,
    pub value: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `None`: the store stamps the current time.
    pub mtime_ns: Option<i64>,
    /// `None`: keep the stored xattrs of an existing entry (none for a new one).
    pub xattrs: Option<Vec<(String, Vec<u8>)>>,
    pub condition: PutCondition,
    /// Device number for a device node (0 otherwise).
    pub rdev: u32,
}

/// How an xattr write treats an existing attribute (setxattr flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrMode {
    Upsert,
    /// XATTR_CREATE: fail with `AlreadyExists` if present.
    Create,
    /// XATTR_REPLACE: fail with `NoData` if absent.
    Replace,
}

/// A metadata change applied atomically to one existing entry (setattr, xattrs).
#[derive(Debug, Clone, Default)]
pub struct AttrChange {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Truncate or extend (with zeros) the value to this length. Files only.
    pub size: Option<u64>,
    /// `Some(None)`: the store's current time.
    pub mtime_ns: Option<Option<i64>>,
    pub set_xattr: Option<(String, Vec<u8>, XattrMode)>,
    /// Fails with `NoData` when the attribute is absent.
    pub remove_xattr: Option<String>,
}

/// What `delete` expects to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteKind {
    /// A file or symlink (unlink): `IsDir` for a directory.
    NonDir,
    /// An empty directory (rmdir): `NotDir` for others, `NotEmpty` when it has children.
    EmptyDir,
}

/// renameat2 flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace the target if compatible (POSIX rename).
    Replace,
    /// RENAME_NOREPLACE: `AlreadyExists` if the target exists.
    NoReplace,
    /// RENAME_EXCHANGE: swap the two; both must exist.
    Exchange,
}

/// File-system-wide figures for statfs.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsStats {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub available_bytes: u64,
    pub total_files: u64,
    pub free_files: u64,
    /// Largest value a file may hold (EFBIG beyond).
    pub max_value_bytes: u64,
}

/// A change applied to the store that this backend instance did not make itself.
/// The file system uses it to invalidate kernel caches.
///
/// An empty `key` with `deleted: true` (the root cannot be deleted) means that changes
/// may have been missed: the file system then invalidates everything it has cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    /// True when the key no longer exists after the change.
    pub deleted: bool,
}

/// One recent hook event, as `/hooks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRecord {
    /// The event type, e.g. `kv.write` (the directory under `/hooks`).
    pub kind: String,
    /// The raft log index (the file is `<index>.json`).
    pub index: u64,
    /// The event as one JSON line, newline included.
    pub line: Vec<u8>,
}

/// A topic as `/topics` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStat {
    /// Oldest retained offset.
    pub first: u64,
    /// Offset the next message gets.
    pub next: u64,
    pub bytes: u64,
    /// Length of the topic's stream (every message ever published, each with a newline).
    pub stream_end: u64,
}

/// One claim of a consumer group, as `pending/` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimStat {
    pub offset: u64,
    pub consumer: String,
    pub deliveries: u32,
    /// When the claim lapses, ns since the epoch.
    pub deadline_ns: i64,
}

/// The topics service under `/topics` (DESIGN.md section 5). A backend without it
/// answers `None` from [`Backend::topics`], and `/topics` stays empty (EOPNOTSUPP for
/// changes).
pub trait TopicBackend: Send + Sync {
    fn topic_names(&self) -> BackendResult<Vec<String>>;
    fn topic_stat(&self, topic: &str) -> BackendResult<Option<TopicStat>>;
    fn topic_create(&self, topic: &str) -> BackendResult<()>;
    /// Removes the topic with its messages and groups.
    fn topic_delete(&self, topic: &str) -> BackendResult<()>;
    /// The topic's retention as a JSON object.
    fn topic_config(&self, topic: &str) -> BackendResult<Vec<u8>>;
    fn topic_configure(&self, topic: &str, json: &[u8]) -> BackendResult<()>;
    /// Publishes messages in order, in one command, once stored on a quorum; returns the
    /// offset of the first.
    fn topic_publish(&self, topic: &str, messages: Vec<Vec<u8>>) -> BackendResult<u64>;
    /// Retained messages from `from` on, at most `limit`, in offset order.
    fn topic_messages(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> BackendResult<Vec<(u64, Vec<u8>)>>;
    /// At most `max` bytes of the topic's stream from `pos` (removed messages read as
    /// NUL bytes); empty at its end.
    fn topic_stream(&self, topic: &str, pos: u64, max: u32) -> BackendResult<Vec<u8>>;
    fn group_names(&self, topic: &str) -> BackendResult<Vec<String>>;
    fn group_create(&self, topic: &str, group: &str) -> BackendResult<()>;
    fn group_delete(&self, topic: &str, group: &str) -> BackendResult<()>;
    /// Claims the next message of the group for this mount, waiting up to `wait` for
    /// one; its offset, or `None`.
    fn group_claim(
        &self,
        topic: &str,
        group: &str,
        wait: std::time::Duration,
    ) -> BackendResult<Option<u64>>;
    fn group_ack(&self, topic: &str, group: &str, offset: u64) -> BackendResult<()>;
    /// The committed offset: every message before it is acknowledged or dead-lettered.
    fn group_offset(&self, topic: &str, group: &str) -> BackendResult<u64>;
    /// Moves the group to `start`, `end` or an offset (its claims are dropped).
    fn group_seek(&self, topic: &str, group: &str, to: &str) -> BackendResult<()>;
    fn group_pending(&self, topic: &str, group: &str) -> BackendResult<Vec<ClaimStat>>;
    fn group_dead_letters(&self, topic: &str, group: &str) -> BackendResult<Vec<u64>>;
}

/// The secrets service under `/secrets/kv` (DESIGN.md section 4): KV v2 secrets,
/// decrypted by the node. A backend without it answers `None` from
/// [`Backend::secrets`], and `/secrets` stays empty (EOPNOTSUPP for changes).
pub trait SecretBackend: Send + Sync {
    /// The current version of the secret at `path`, `None` when there is no such secret.
    fn secret_version(&self, path: &str) -> BackendResult<Option<u64>>;
    /// Secret paths at or below `prefix` ("" is all), at most `limit`, in order.
    fn secret_paths(&self, prefix: &str, limit: usize) -> BackendResult<Vec<String>>;
    /// The latest value, or version `version` (PermissionDenied without the identity).
    fn secret_read(&self, path: &str, version: Option<u64>) -> BackendResult<Vec<u8>>;
    /// Writes a new version; returns its number.
    fn secret_write(&self, path: &str, value: Vec<u8>) -> BackendResult<u64>;
    /// Soft-deletes the latest version.
    fn secret_delete(&self, path: &str) -> BackendResult<()>;
}

/// Error categories; each maps to one errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    NotDir,
    IsDir,
    NotEmpty,
    NameTooLong,
    TooBig,
    InvalidInput,
    PermissionDenied,
    /// Compare-and-swap precondition failed.
    Conflict,
    NoData,
    /// A directory rename that moves more entries than one command may carry.
    CrossDevice,
    /// No quorum: writes cannot be accepted right now.
    ReadOnly,
    NoSpace,
    Unsupported,
    /// Timeouts, lost connections, internal failures.
    Io,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct BackendError {
    pub kind: ErrorKind,
    pub message: String,
}

impl BackendError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
        }
    }

    /// The errno a file-system call reports for this error.
    pub fn errno(&self) -> i32 {
        match self.kind {
            ErrorKind::NotFound => libc::ENOENT,
            ErrorKind::AlreadyExists => libc::EEXIST,
            ErrorKind::NotDir => libc::ENOTDIR,
            ErrorKind::IsDir => libc::EISDIR,
            ErrorKind::NotEmpty => libc::ENOTEMPTY,
            ErrorKind::NameTooLong => libc::ENAMETOOLONG,
            ErrorKind::TooBig => libc::EFBIG,
            ErrorKind::InvalidInput => libc::EINVAL,
            ErrorKind::PermissionDenied => libc::EACCES,
            ErrorKind::Conflict => libc::ESTALE,
            ErrorKind::NoData => libc::ENODATA,
            ErrorKind::CrossDevice => libc::EXDEV,
            ErrorKind::ReadOnly => libc::EROFS,
            ErrorKind::NoSpace => libc::ENOSPC,
            ErrorKind::Unsupported => libc::EOPNOTSUPP,
            ErrorKind::Io => libc::EIO,
        }
    }
}

pub type BackendResult<T> = Result<T, BackendError>;

/// The store under the file system. Keys are relative to `/kv`; "" is its root directory,
/// which always exists.
pub trait Backend: Send + Sync + 'static {
    /// Metadata of one entry, `None` when absent.
    fn stat(&self, key: &str) -> BackendResult<Option<EntryAttr>>;

    /// One entry with value and xattrs, `None` when absent.
    fn get(&self, key: &str) -> BackendResult<Option<Entry>>;

    /// Direct children of directory `dir`, names strictly after `after`, at most `limit`.
    fn list(&self, dir: &str, after: Option<&str>, limit: usize) -> BackendResult<DirPage>;

    /// Create or replace an entry. The parent directory must exist.
    fn put(&self, req: PutRequest) -> BackendResult<EntryAttr>;

    /// Change metadata (and, for `size`, the length) of an existing entry.
    fn set_attr(&self, key: &str, change: AttrChange) -> BackendResult<EntryAttr>;

    fn delete(&self, key: &str, kind: DeleteKind) -> BackendResult<()>;

    /// Atomic rename of an entry (a directory moves with everything below it).
    fn rename(&self, from: &str, to: &str, mode: RenameMode) -> BackendResult<()>;

    fn stats(&self) -> BackendResult<FsStats>;

    /// Names of the read-only files under `/cluster`.
    fn cluster_files(&self) -> Vec<String>;

    /// Current contents of `/cluster/<name>`.
    fn cluster_file(&self, name: &str) -> BackendResult<Vec<u8>>;

    /// Changes made by others (other nodes, other mounts, the CLI), in apply order.
    /// Called once per mount; the receiver ends when the backend shuts down.
    fn subscribe(&self) -> Receiver<Change>;

    /// The topics service, if this backend has it.
    fn topics(&self) -> Option<&dyn TopicBackend> {
        None
    }

    /// The secrets service, if this backend has it.
    fn secrets(&self) -> Option<&dyn SecretBackend> {
        None
    }

    /// The hook event types, one directory each under `/hooks` (none by default).
    fn hook_types(&self) -> Vec<String> {
        Vec::new()
    }

    /// The recent hook events (a bounded ring), oldest first (none by default).
    fn hook_events(&self) -> BackendResult<Vec<HookRecord>> {
        Ok(Vec::new())
    }
}
