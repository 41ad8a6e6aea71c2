//! The KV data model: stored entries, write commands and their results, read queries,
//! and the change events that watches and hooks see. All of it crosses the wire and the
//! raft log with postcard, so field order is the format: append, never reorder.

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// Special files: metadata only, no value (what mkfifo and mknod create).
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl EntryKind {
    pub fn default_mode(self) -> u32 {
        match self {
            EntryKind::Dir => 0o755,
            EntryKind::Symlink => 0o777,
            _ => 0o644,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Socket => "socket",
            EntryKind::CharDevice => "char-device",
            EntryKind::BlockDevice => "block-device",
        }
    }

    /// Kinds that never hold a value.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDevice | EntryKind::BlockDevice
        )
    }
}

/// One stored entry: value plus POSIX metadata and etcd-style revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub kind: EntryKind,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    pub lease: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Device number of a device node.
    pub rdev: u32,
    /// Number of subdirectories (directories only), for the link count.
    pub subdirs: u64,
}

/// An `EntryRecord` decoded in place: the value and xattrs borrow from the record bytes
/// (same encoding, field for field), for listings that need only metadata.
#[derive(Debug, Deserialize)]
pub struct EntryRecordRef<'a> {
    pub kind: EntryKind,
    #[serde(borrow)]
    pub value: &'a [u8],
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    pub lease: u64,
    #[serde(borrow)]
    pub xattrs: Vec<(&'a str, &'a [u8])>,
    pub rdev: u32,
    pub subdirs: u64,
}

impl EntryRecordRef<'_> {
    pub fn meta(&self) -> EntryMeta {
        EntryMeta {
            kind: self.kind,
            size: self.value.len() as u64,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
            rdev: self.rdev,
            nlink: link_count(self.kind, self.subdirs),
        }
    }
}

fn link_count(kind: EntryKind, subdirs: u64) -> u32 {
    match kind {
        EntryKind::Dir => u32::try_from(subdirs.saturating_add(2)).unwrap_or(u32::MAX),
        _ => 1,
    }
}

/// An entry's metadata without its value (what `stat` and listings return).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    pub lease: u64,
    pub rdev: u32,
    /// Link count: 2 plus subdirectories for a directory, 1 otherwise.
    pub nlink: u32,
}

impl EntryRecord {
    pub fn meta(&self) -> EntryMeta {
        EntryMeta {
            kind: self.kind,
            size: self.value.len() as u64,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
            rdev: self.rdev,
            nlink: link_count(self.kind, self.subdirs),
        }
    }
}

/// Precondition of a put, checked atomically at apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutCondition {
    Any,
    MustNotExist,
    MustExist,
    ModRevision(u64),
    Version(u64),
    Value(Vec<u8>),
}

/// Create or replace one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutOp {
    pub key: String,
    pub kind: EntryKind,
    /// Encoded as bytes (one copy), not as a sequence of numbers.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// `None`: keep the existing entry's, or the kind's default for a new one.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `None`: the leader's stamped time.
    pub mtime_ns: Option<i64>,
    /// `None`: keep the existing entry's xattrs.
    pub xattrs: Option<Vec<(String, Vec<u8>)>>,
    /// `None`: keep the existing lease; `Some(0)`: detach; `Some(id)`: attach.
    pub lease: Option<u64>,
    pub condition: PutCondition,
    /// Create missing parent directories (like `mkdir -p`); otherwise the parent must exist.
    pub create_parents: bool,
    /// Device number for a device node (0 otherwise).
    pub rdev: u32,
}

impl PutOp {
    /// A plain file put that creates parents: what `aspen kv put` sends.
    pub fn file(key: impl Into<String>, value: Vec<u8>) -> PutOp {
        PutOp {
            key: key.into(),
            kind: EntryKind::File,
            value,
            mode: None,
            uid: None,
            gid: None,
            mtime_ns: None,
            xattrs: None,
            lease: None,
            condition: PutCondition::Any,
            create_parents: true,
            rdev: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum XattrMode {
    Upsert,
    Create,
    Replace,
}

/// Metadata change of one existing entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    /// `Some(None)`: the stamped time.
    pub mtime_ns: Option<Option<i64>>,
    pub set_xattr: Option<(String, Vec<u8>, XattrMode)>,
    pub remove_xattr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteMode {
    /// A file, a symlink or an empty directory; a missing key deletes nothing (not an error).
    Any,
    /// unlink(2): not a directory; missing is NotFound.
    NonDir,
    /// rmdir(2): an empty directory; missing is NotFound.
    EmptyDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RenameMode {
    Replace,
    NoReplace,
    Exchange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Value(Vec<u8>),
    Version(u64),
    ModRevision(u64),
    CreateRevision(u64),
    Lease(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

/// One etcd-style comparison. On a missing key version, revisions and lease are 0 and a
/// value comparison is false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub key: String,
    pub op: CompareOp,
    pub target: CompareTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Put(PutOp),
    Delete { key: String },
    DeletePrefix { prefix: String },
    Get { key: String },
}

/// etcd-style transaction: if all compares hold run `success`, else `failure`; one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// A state change: one command in a raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Put(PutOp),
    SetAttr {
        key: String,
        change: AttrChange,
    },
    Delete {
        key: String,
        mode: DeleteMode,
    },
    /// Deletes `prefix` and everything below it (path semantics; "" is everything).
    DeletePrefix {
        prefix: String,
    },
    Rename {
        from: String,
        to: String,
        mode: RenameMode,
    },
    Txn(Txn),
    LeaseGrant {
        ttl_secs: u64,
        id: u64,
    },
    LeaseKeepAlive {
        id: u64,
    },
    LeaseRevoke {
        id: u64,
    },
    /// Internal: sent by the leader for leases whose deadline passed.
    ExpireLeases {
        ids: Vec<u64>,
    },
    /// A command of the topics service.
    Topic(crate::topics::TopicCommand),
    /// A command of the secrets service (values as age ciphertext only).
    Secret(crate::secrets::SecretCommand),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Put(_) => "put",
            Command::SetAttr { .. } => "setattr",
            Command::Delete { .. } => "delete",
            Command::DeletePrefix { .. } => "delete-prefix",
            Command::Rename { .. } => "rename",
            Command::Txn(_) => "txn",
            Command::LeaseGrant { .. } => "lease-grant",
            Command::LeaseKeepAlive { .. } => "lease-keepalive",
            Command::LeaseRevoke { .. } => "lease-revoke",
            Command::ExpireLeases { .. } => "expire-leases",
            Command::Topic(t) => t.name(),
            Command::Secret(s) => s.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOpResult {
    Put(EntryMeta),
    Deleted(u64),
    Get(Option<EntryRecord>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub id: u64,
    pub ttl_secs: u64,
    /// Deadline in leader-stamped nanoseconds since the epoch.
    pub expires_at_ns: i64,
}

/// The outcome of one command. `revision` is the store revision after the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteResult {
    Put {
        revision: u64,
        entry: EntryMeta,
    },
    Deleted {
        revision: u64,
        deleted: u64,
    },
    Renamed {
        revision: u64,
        moved: u64,
    },
    Txn {
        revision: u64,
        succeeded: bool,
        results: Vec<TxnOpResult>,
    },
    Lease {
        revision: u64,
        lease: LeaseInfo,
    },
    LeaseRevoked {
        revision: u64,
        deleted: u64,
    },
    Expired {
        revision: u64,
        leases: Vec<u64>,
    },
    /// Topic commands do not change KV revisions: `revision` is the current one.
    Topic {
        revision: u64,
        outcome: crate::topics::TopicOutcome,
    },
    /// Secret commands do not change KV revisions either.
    Secret {
        revision: u64,
        outcome: crate::secrets::SecretOutcome,
    },
}

impl WriteResult {
    pub fn revision(&self) -> u64 {
        match self {
            WriteResult::Put { revision, .. }
            | WriteResult::Deleted { revision, .. }
            | WriteResult::Renamed { revision, .. }
            | WriteResult::Txn { revision, .. }
            | WriteResult::Lease { revision, .. }
            | WriteResult::LeaseRevoked { revision, .. }
            | WriteResult::Expired { revision, .. }
            | WriteResult::Topic { revision, .. }
            | WriteResult::Secret { revision, .. } => *revision,
        }
    }
}

pub type CommandResult = Result<WriteResult, Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
    /// Deleted because its lease expired.
    Expire,
}

/// One applied change to one key, as watches see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub revision: u64,
    pub kind: EventKind,
    pub key: String,
    /// The entry after a put; `None` for deletes.
    pub entry: Option<EntryRecord>,
    /// Origin id of the client session that proposed the change (0: the cluster itself).
    pub origin: u64,
    /// Raft log index of the entry that made the change.
    pub log_index: u64,
}

/// A read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadQuery {
    Get {
        key: String,
    },
    Stat {
        key: String,
    },
    /// Direct children of `dir`, names after `after`, at most `limit`.
    ListDir {
        dir: String,
        after: Option<String>,
        limit: u32,
    },
    /// Entries at or below `prefix` (path semantics), keys after `after`, at most `limit`.
    Range {
        prefix: String,
        after: Option<String>,
        limit: u32,
        keys_only: bool,
    },
    Revision,
    LeaseList,
    /// Space and entry figures of the node's data dir (for statfs).
    Stats,
    /// A query of the topics service.
    Topic(crate::topics::TopicQuery),
    /// A query of the secrets service (answers hold ciphertext, never plaintext).
    Secret(crate::secrets::SecretQuery),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadResult {
    Entry(Option<EntryRecord>),
    Meta(Option<EntryMeta>),
    Dir {
        entries: Vec<(String, EntryMeta)>,
        more: bool,
    },
    Range {
        entries: Vec<(String, EntryRecord)>,
        more: bool,
    },
    Revision(u64),
    Leases(Vec<LeaseInfo>),
    Stats(StoreStats),
    Topic(crate::topics::TopicAnswer),
    Secret(crate::secrets::SecretAnswer),
}

/// Space and entry figures of a node's data dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub available_bytes: u64,
    /// Approximate number of stored records.
    pub records: u64,
    pub max_value_bytes: u64,
}
