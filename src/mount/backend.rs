//! The file system's `Backend`, implemented over a node in this process or over a client
//! connection to a remote node. FUSE request threads call it; each call runs on the tokio
//! runtime through `Handle::block_on` (FUSE threads are never tokio workers), bounded by
//! the client request timeout.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use aspen_fs as fs;
use tokio::runtime::Handle;

use crate::client::{Client, WatchItem};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::*;
use crate::limits::{CLIENT_RETRY_BACKOFF_MS, FS_CHANGE_QUEUE_LEN, MAX_LIST_LIMIT};
use crate::mount::status;
use crate::net::proto::{ClusterStatus, Consistency, HookRecent};
use crate::node::Node;
use crate::raft::state_machine::Applied;

/// Where the commands go.
#[derive(Clone)]
pub enum Target {
    Local(Arc<Node>),
    Remote(Arc<Client>),
}

impl Target {
    pub(super) async fn write(&self, origin: u64, command: Command) -> Result<WriteResult> {
        match self {
            Target::Local(n) => n.write_one(origin, command).await,
            Target::Remote(c) => c.write_one(command).await,
        }
    }

    pub(super) async fn read(
        &self,
        query: ReadQuery,
        consistency: Consistency,
    ) -> Result<ReadResult> {
        match self {
            Target::Local(n) => n.read(query, consistency, 0).await,
            Target::Remote(c) => c.read(query, consistency).await,
        }
    }

    async fn status(&self) -> Result<ClusterStatus> {
        match self {
            Target::Local(n) => n.status(),
            Target::Remote(c) => c.status().await,
        }
    }

    async fn hook_recent(&self) -> Result<HookRecent> {
        match self {
            Target::Local(n) => Ok(n.hook_recent()),
            Target::Remote(c) => c.hook_recent().await,
        }
    }

    fn origin(&self) -> u64 {
        match self {
            // The in-process node tags this mount's writes with its own origin below.
            Target::Local(_) => 0,
            Target::Remote(c) => c.origin,
        }
    }
}

pub struct KvBackend {
    pub(super) target: Target,
    pub(super) rt: Handle,
    pub(super) origin: u64,
    consistency: Consistency,
}

impl KvBackend {
    pub fn new(target: Target, rt: Handle, consistency: Consistency) -> KvBackend {
        let origin = match target.origin() {
            0 => rand::random::<u64>() | 1,
            o => o,
        };
        KvBackend {
            target,
            rt,
            origin,
            consistency,
        }
    }

    fn write(&self, command: Command) -> fs::BackendResult<WriteResult> {
        self.rt
            .block_on(self.target.write(self.origin, command))
            .map_err(to_fs)
    }

    fn read(&self, query: ReadQuery) -> fs::BackendResult<ReadResult> {
        self.rt
            .block_on(self.target.read(query, self.consistency))
            .map_err(to_fs)
    }

    fn status(&self) -> fs::BackendResult<ClusterStatus> {
        self.rt.block_on(self.target.status()).map_err(to_fs)
    }

    fn hook_recent(&self) -> fs::BackendResult<HookRecent> {
        self.rt.block_on(self.target.hook_recent()).map_err(to_fs)
    }
}

/// Maps Aspen errors onto the file system's error kinds (and so onto errno).
pub fn to_fs(e: Error) -> fs::BackendError {
    use fs::ErrorKind as F;
    let kind = match e.kind {
        ErrorKind::NotFound => F::NotFound,
        ErrorKind::AlreadyExists => F::AlreadyExists,
        ErrorKind::NotDir => F::NotDir,
        ErrorKind::IsDir => F::IsDir,
        ErrorKind::NotEmpty => F::NotEmpty,
        ErrorKind::NameTooLong => F::NameTooLong,
        ErrorKind::TooBig => F::TooBig,
        ErrorKind::InvalidInput => F::InvalidInput,
        ErrorKind::PermissionDenied => F::PermissionDenied,
        ErrorKind::CompareFailed => F::Conflict,
        ErrorKind::NoData => F::NoData,
        ErrorKind::NoSpace => F::NoSpace,
        ErrorKind::CrossDevice => F::CrossDevice,
        ErrorKind::NotLeader | ErrorKind::Unavailable => F::ReadOnly,
        ErrorKind::Timeout
        | ErrorKind::Compacted
        | ErrorKind::Corrupt
        | ErrorKind::Io
        | ErrorKind::ShuttingDown
        | ErrorKind::Internal => F::Io,
    };
    fs::BackendError::new(kind, e.message)
}

fn kind_to_fs(k: EntryKind) -> fs::EntryKind {
    match k {
        EntryKind::File => fs::EntryKind::File,
        EntryKind::Dir => fs::EntryKind::Dir,
        EntryKind::Symlink => fs::EntryKind::Symlink,
        EntryKind::Fifo => fs::EntryKind::Fifo,
        EntryKind::Socket => fs::EntryKind::Socket,
        EntryKind::CharDevice => fs::EntryKind::CharDevice,
        EntryKind::BlockDevice => fs::EntryKind::BlockDevice,
    }
}

fn kind_from_fs(k: fs::EntryKind) -> EntryKind {
    match k {
        fs::EntryKind::File => EntryKind::File,
        fs::EntryKind::Dir => EntryKind::Dir,
        fs::EntryKind::Symlink => EntryKind::Symlink,
        fs::EntryKind::Fifo => EntryKind::Fifo,
        fs::EntryKind::Socket => EntryKind::Socket,
        fs::EntryKind::CharDevice => EntryKind::CharDevice,
        fs::EntryKind::BlockDevice => EntryKind::BlockDevice,
    }
}

pub fn attr_to_fs(m: &EntryMeta) -> fs::EntryAttr {
    fs::EntryAttr {
        kind: kind_to_fs(m.kind),
        size: m.size,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        mtime_ns: m.mtime_ns,
        ctime_ns: m.ctime_ns,
        create_revision: m.create_revision,
        mod_revision: m.mod_revision,
        version: m.version,
        lease: m.lease,
        rdev: m.rdev,
        nlink: m.nlink,
    }
}

fn root_attr() -> fs::EntryAttr {
    fs::EntryAttr {
        kind: fs::EntryKind::Dir,
        size: 0,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        create_revision: 0,
        mod_revision: 0,
        version: 0,
        lease: 0,
        rdev: 0,
        nlink: 2,
    }
}

fn unexpected() -> fs::BackendError {
    fs::BackendError::new(fs::ErrorKind::Io, "unexpected answer from the node")
}

impl fs::Backend for KvBackend {
    fn stat(&self, key: &str) -> fs::BackendResult<Option<fs::EntryAttr>> {
        if key.is_empty() {
            return Ok(Some(root_attr()));
        }
        match self.read(ReadQuery::Stat {
            key: key.to_string(),
        })? {
            ReadResult::Meta(m) => Ok(m.as_ref().map(attr_to_fs)),
            _ => Err(unexpected()),
        }
    }

    fn get(&self, key: &str) -> fs::BackendResult<Option<fs::Entry>> {
        match self.read(ReadQuery::Get {
            key: key.to_string(),
        })? {
            ReadResult::Entry(e) => Ok(e.map(|rec| fs::Entry {
                attr: attr_to_fs(&rec.meta()),
                value: rec.value,
                xattrs: rec.xattrs,
            })),
            _ => Err(unexpected()),
        }
    }

    fn list(&self, dir: &str, after: Option<&str>, limit: usize) -> fs::BackendResult<fs::DirPage> {
        let limit = u32::try_from(limit.min(MAX_LIST_LIMIT)).unwrap_or(1);
        let q = ReadQuery::ListDir {
            dir: dir.to_string(),
            after: after.map(str::to_string),
            limit,
        };
        match self.read(q)? {
            ReadResult::Dir { entries, more } => Ok(fs::DirPage {
                entries: entries
                    .into_iter()
                    .map(|(n, m)| (n, attr_to_fs(&m)))
                    .collect(),
                more,
            }),
            _ => Err(unexpected()),
        }
    }

    fn put(&self, req: fs::PutRequest) -> fs::BackendResult<fs::EntryAttr> {
        let op = PutOp {
            key: req.key,
            kind: kind_from_fs(req.kind),
            value: req.value,
            mode: Some(req.mode),
            uid: Some(req.uid),
            gid: Some(req.gid),
            mtime_ns: req.mtime_ns,
            xattrs: req.xattrs,
            lease: None,
            condition: match req.condition {
                fs::PutCondition::Any => PutCondition::Any,
                fs::PutCondition::MustNotExist => PutCondition::MustNotExist,
                fs::PutCondition::ModRevision(r) => PutCondition::ModRevision(r),
            },
            create_parents: false,
            rdev: req.rdev,
        };
        match self.write(Command::Put(op))? {
            WriteResult::Put { entry, .. } => Ok(attr_to_fs(&entry)),
            _ => Err(unexpected()),
        }
    }

    fn set_attr(&self, key: &str, change: fs::AttrChange) -> fs::BackendResult<fs::EntryAttr> {
        let change = AttrChange {
            mode: change.mode,
            uid: change.uid,
            gid: change.gid,
            size: change.size,
            mtime_ns: change.mtime_ns,
            set_xattr: change.set_xattr.map(|(n, v, m)| {
                let m = match m {
                    fs::XattrMode::Upsert => XattrMode::Upsert,
                    fs::XattrMode::Create => XattrMode::Create,
                    fs::XattrMode::Replace => XattrMode::Replace,
                };
                (n, v, m)
            }),
            remove_xattr: change.remove_xattr,
        };
        match self.write(Command::SetAttr {
            key: key.to_string(),
            change,
        })? {
            WriteResult::Put { entry, .. } => Ok(attr_to_fs(&entry)),
            _ => Err(unexpected()),
        }
    }

    fn delete(&self, key: &str, kind: fs::DeleteKind) -> fs::BackendResult<()> {
        let mode = match kind {
            fs::DeleteKind::NonDir => DeleteMode::NonDir,
            fs::DeleteKind::EmptyDir => DeleteMode::EmptyDir,
        };
        self.write(Command::Delete {
            key: key.to_string(),
            mode,
        })
        .map(|_| ())
    }

    fn rename(&self, from: &str, to: &str, mode: fs::RenameMode) -> fs::BackendResult<()> {
        let mode = match mode {
            fs::RenameMode::Replace => RenameMode::Replace,
            fs::RenameMode::NoReplace => RenameMode::NoReplace,
            fs::RenameMode::Exchange => RenameMode::Exchange,
        };
        self.write(Command::Rename {
            from: from.to_string(),
            to: to.to_string(),
            mode,
        })
        .map(|_| ())
    }

    fn stats(&self) -> fs::BackendResult<fs::FsStats> {
        match self.read(ReadQuery::Stats)? {
            ReadResult::Stats(s) => Ok(fs::FsStats {
                total_bytes: s.total_bytes,
                free_bytes: s.free_bytes,
                available_bytes: s.available_bytes,
                total_files: s.records.saturating_add(1_000_000),
                free_files: 1_000_000,
                max_value_bytes: s.max_value_bytes,
            }),
            _ => Err(unexpected()),
        }
    }

    fn cluster_files(&self) -> Vec<String> {
        status::FILES.iter().map(|s| s.to_string()).collect()
    }

    fn cluster_file(&self, name: &str) -> fs::BackendResult<Vec<u8>> {
        let s = self.status()?;
        let hooks = if name == "metrics" {
            match self.hook_recent() {
                Ok(r) => Some(r.stats),
                Err(e) => {
                    tracing::warn!(error = %e, "hook figures unavailable for /cluster/metrics");
                    None
                }
            }
        } else {
            None
        };
        status::render(name, &s, hooks.as_ref())
            .ok_or_else(|| fs::BackendError::new(fs::ErrorKind::NotFound, name))
    }

    fn topics(&self) -> Option<&dyn fs::TopicBackend> {
        Some(self)
    }

    fn secrets(&self) -> Option<&dyn fs::SecretBackend> {
        Some(self)
    }

    fn hook_types(&self) -> Vec<String> {
        crate::hooks::EVENT_TYPES
            .iter()
            .map(|t| t.to_string())
            .collect()
    }

    fn hook_events(&self) -> fs::BackendResult<Vec<fs::HookRecord>> {
        Ok(self
            .hook_recent()?
            .events
            .into_iter()
            .map(|e| fs::HookRecord {
                kind: e.kind,
                index: e.index,
                line: e.line.into_bytes(),
            })
            .collect())
    }

    fn subscribe(&self) -> std_mpsc::Receiver<fs::Change> {
        let (tx, rx) = std_mpsc::sync_channel(FS_CHANGE_QUEUE_LEN);
        let mut tx = ChangeSink {
            tx,
            overflowed: false,
            dropped: 0,
        };
        let origin = self.origin;
        match &self.target {
            Target::Local(node) => {
                let mut sub = node.subscribe();
                self.rt.spawn(async move {
                    use tokio::sync::broadcast::error::RecvError;
                    loop {
                        let ok = match sub.recv().await {
                            Ok(Applied::Events(events)) => forward(&mut tx, origin, &events),
                            Ok(Applied::Reset { .. }) | Err(RecvError::Lagged(_)) => {
                                everything_changed(&mut tx)
                            }
                            Err(RecvError::Closed) => return,
                        };
                        if !ok {
                            return;
                        }
                    }
                });
            }
            Target::Remote(client) => {
                let client = client.clone();
                self.rt.spawn(async move {
                    let mut first = true;
                    loop {
                        let mut stream = match client.watch("", 0).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!(error = %e, "cache coherence watch failed; retrying");
                                tokio::time::sleep(std::time::Duration::from_millis(CLIENT_RETRY_BACKOFF_MS * 10)).await;
                                continue;
                            }
                        };
                        // Anything may have changed while no watch was running.
                        if !first && !everything_changed(&mut tx) {
                            return;
                        }
                        first = false;
                        loop {
                            let ok = match stream.next().await {
                                Ok(WatchItem::Events(events)) => forward(&mut tx, origin, &events),
                                Ok(WatchItem::Reset { .. }) => everything_changed(&mut tx),
                                Err(e) => {
                                    tracing::warn!(error = %e, "cache coherence watch ended; reconnecting");
                                    break;
                                }
                            };
                            if !ok {
                                return;
                            }
                        }
                    }
                });
            }
        }
        rx
    }
}

impl KvBackend {
    /// The origin id this backend stamps on its writes.
    pub fn origin(&self) -> u64 {
        self.origin
    }
}

/// The bounded queue of changes to the file system's notifier. When it is full, changes
/// are dropped and counted, and one "everything changed" follows as soon as there is
/// room: the kernel caches are then flushed whole, so nothing stale survives.
struct ChangeSink {
    tx: std_mpsc::SyncSender<fs::Change>,
    overflowed: bool,
    dropped: u64,
}

impl ChangeSink {
    /// `false` once the file system is gone.
    fn send(&mut self, change: fs::Change) -> bool {
        if self.overflowed {
            match self.tx.try_send(fs::Change {
                key: String::new(),
                deleted: true,
            }) {
                Ok(()) => {
                    tracing::warn!(
                        dropped = self.dropped,
                        "cache notifier fell behind; flushed kernel caches"
                    );
                    self.overflowed = false;
                    self.dropped = 0;
                }
                Err(std_mpsc::TrySendError::Full(_)) => {
                    self.dropped += 1;
                    return true;
                }
                Err(std_mpsc::TrySendError::Disconnected(_)) => return false,
            }
        }
        match self.tx.try_send(change) {
            Ok(()) => true,
            Err(std_mpsc::TrySendError::Full(_)) => {
                self.overflowed = true;
                self.dropped += 1;
                true
            }
            Err(std_mpsc::TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Sends the changes not made by this mount; `false` once the file system is gone.
fn forward(tx: &mut ChangeSink, origin: u64, events: &[Event]) -> bool {
    for e in events.iter().filter(|e| e.origin != origin) {
        let change = fs::Change {
            key: e.key.clone(),
            deleted: e.kind != EventKind::Put,
        };
        if !tx.send(change) {
            return false;
        }
    }
    true
}

/// Tells the file system to drop everything it caches.
fn everything_changed(tx: &mut ChangeSink) -> bool {
    tx.send(fs::Change {
        key: String::new(),
        deleted: true,
    })
}
