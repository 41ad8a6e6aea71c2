//! openraft's state machine on fjall: applies entries through `kv::apply`, one fjall batch
//! per entry holding the entry's writes, its watch history and the meta record (last
//! applied id, membership, revision), so the applied state is always consistent with the
//! recorded last-applied id. Applies are buffered (no fsync): after a crash openraft
//! replays the log from the last durable applied id. The same batch stages the entry's
//! hook events in the node-local outbox (see `hooks`), so they share its fate.
//!
//! Snapshots are files (see `snapshot`); building one first makes the state durable so
//! the log may be purged behind it. Installing one is crash-safe: the verified file is
//! published first, then the keyspace is cleared and refilled; a crash in between leaves
//! a last-applied id older than the published snapshot, and `open` reinstalls it.

use std::sync::{Arc, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, LogId, RaftSnapshotBuilder, StorageIOError, StoredMembership};
use tokio::sync::{broadcast, Mutex};

use crate::error::{Error, Result};
use crate::hooks::event::{self as hook_event, AppliedEntry, HookEvent};
use crate::hooks::HookHub;
use crate::kv::apply::Applier;
use crate::kv::layout::{self, SmMeta};
use crate::kv::read;
use crate::kv::Event;
use crate::limits::SNAPSHOT_INSTALL_BATCH_RECORDS;
use crate::raft::snapshot::{self, Meta};
use crate::raft::types::{
    LogEntry, NodeId, RaftNode, RaftRequest, RaftResponse, StorageError, TypeConfig,
};
use crate::store::{encode, Store, View};

/// What the state machine tells the rest of the node after applying.
#[derive(Debug, Clone)]
pub enum Applied {
    /// Changes of one or more entries, in order.
    Events(Arc<Vec<Event>>),
    /// A snapshot replaced the whole state; everything cached is stale.
    Reset { revision: u64 },
}

/// Shared between the state machine, its snapshot builders and readers.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    /// Readers take it shared to open a view; installing a snapshot takes it exclusive,
    /// so no view ever sees a half-installed state.
    gate: Arc<RwLock<()>>,
    /// Serializes snapshot file publication.
    files: Arc<Mutex<()>>,
    pub applied_tx: broadcast::Sender<Applied>,
}

impl Shared {
    /// A consistent view of the applied state.
    pub fn view(&self) -> Result<View> {
        let _g = self
            .gate
            .read()
            .map_err(|_| Error::internal("state gate poisoned"))?;
        Ok(self.store.view())
    }
}

pub struct StateMachine {
    shared: Shared,
    meta: SmMeta,
    hooks: Option<Arc<HookHub>>,
}

fn sm_read_err(e: &Error) -> StorageError {
    StorageIOError::read_state_machine(e).into()
}

fn snap_err(e: &Error) -> StorageError {
    StorageIOError::write_snapshot(None, e).into()
}

impl StateMachine {
    /// Opens the state machine, finishing any snapshot install a crash interrupted.
    pub fn open(store: Store, applied_tx: broadcast::Sender<Applied>) -> Result<StateMachine> {
        snapshot::remove_temporaries(&store.snapshot_dir)?;
        let shared = Shared {
            store,
            gate: Arc::new(RwLock::new(())),
            files: Arc::new(Mutex::new(())),
            applied_tx,
        };
        let meta = read::meta(&shared.view()?)?;
        let mut sm = StateMachine {
            shared,
            meta,
            hooks: None,
        };
        let current = snapshot::current_path(&sm.shared.store.snapshot_dir);
        if current.exists() {
            let snap_meta = snapshot::read_meta(&current)?;
            if snap_meta.last_log_id > sm.meta.last_applied {
                tracing::warn!(snapshot = %snap_meta.snapshot_id, "state is behind the published snapshot; reinstalling it");
                sm.meta = load_snapshot_file(&sm.shared, &current, &snap_meta)?;
            }
        }
        Ok(sm)
    }

    pub fn shared(&self) -> Shared {
        self.shared.clone()
    }

    pub fn meta(&self) -> &SmMeta {
        &self.meta
    }

    /// Publishes hook events of every applied entry (and snapshot) through `hub`.
    pub fn set_hooks(&mut self, hub: Arc<HookHub>) {
        self.hooks = Some(hub);
    }

    /// The hook events of an applied entry, from the entry, its results and its KV
    /// changes (`self.meta` is still the state before it).
    fn hook_events(
        &self,
        entry: &LogEntry,
        response: &RaftResponse,
        changes: &[Event],
        hub: &HookHub,
    ) -> Vec<HookEvent> {
        let index = entry.log_id.index;
        let revision = self.meta.revision;
        match &entry.payload {
            EntryPayload::Blank => {
                // A new leader's first entry of its term.
                let mut e =
                    HookEvent::new(hook_event::RAFT_LEADER_CHANGE, index, revision, hub.node());
                e.leader = Some(entry.log_id.leader_id.node_id);
                e.term = Some(entry.log_id.leader_id.term);
                vec![e]
            }
            EntryPayload::Membership(m) => {
                let mut e = HookEvent::new(
                    hook_event::CLUSTER_MEMBERSHIP_CHANGE,
                    index,
                    revision,
                    hub.node(),
                );
                e.members = Some(m.nodes().map(|(id, _)| *id).collect());
                vec![e]
            }
            EntryPayload::Normal(RaftRequest::V1 { stamp_ns, commands }) => hook_event::from_entry(
                &AppliedEntry {
                    index,
                    stamp_ns: *stamp_ns,
                    commands,
                    results: &response.results,
                    changes,
                    revision_before: revision,
                },
                hub.node(),
            ),
        }
    }

    fn apply_entry(&mut self, entry: &LogEntry) -> Result<(RaftResponse, Vec<Event>)> {
        let store = self.shared.store.clone();
        let mut meta = self.meta.clone();
        meta.last_applied = Some(entry.log_id);
        let mut batch = store.db.batch();
        let mut response = RaftResponse::default();
        let mut events = Vec::new();
        match &entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Membership(m) => {
                meta.membership = StoredMembership::new(Some(entry.log_id), m.clone());
            }
            EntryPayload::Normal(RaftRequest::V1 { stamp_ns, commands }) => {
                let view = self.shared.view()?;
                let mut applier = Applier::new(&view, meta, entry.log_id.index, *stamp_ns);
                for (origin, command) in commands {
                    response.results.push(applier.apply(*origin, command));
                }
                let applied = applier.finish()?;
                for (k, v) in applied.writes {
                    match v {
                        Some(v) => batch.insert(&store.state, k, v),
                        None => batch.remove(&store.state, k),
                    }
                }
                meta = applied.meta;
                events = applied.events;
            }
        }
        let staged = match &self.hooks {
            Some(hub) => {
                let hook_events = self.hook_events(entry, &response, &events, hub);
                hub.stage(&mut batch, entry.log_id.index, &hook_events)?
            }
            None => 0,
        };
        let committed = encode(&meta).and_then(|m| {
            batch.insert(&store.state, layout::META_KEY, m);
            batch.commit().map_err(Error::from)
        });
        if let Some(hub) = &self.hooks {
            match committed {
                Ok(()) => hub.staged(staged),
                Err(_) => hub.unstage(staged),
            }
        }
        committed?;
        self.meta = meta;
        Ok((response, events))
    }
}

/// Replaces the whole state with the records of a verified snapshot file; returns the new meta.
fn load_snapshot_file(shared: &Shared, path: &std::path::Path, snap_meta: &Meta) -> Result<SmMeta> {
    let store = &shared.store;
    let _g = shared
        .gate
        .write()
        .map_err(|_| Error::internal("state gate poisoned"))?;
    store.state.clear()?;
    let (mut reader, _) = snapshot::open_file(path)?;
    let mut batch = store.db.batch();
    let mut in_batch = 0;
    let mut meta: Option<SmMeta> = None;
    while let Some((k, v)) = reader.next_record()? {
        if k == layout::META_KEY {
            meta = Some(crate::store::decode(&v, "snapshot state meta")?);
            continue;
        }
        batch.insert(&store.state, k, v);
        in_batch += 1;
        if in_batch >= SNAPSHOT_INSTALL_BATCH_RECORDS {
            batch.commit()?;
            batch = store.db.batch();
            in_batch = 0;
        }
    }
    let mut meta = meta.unwrap_or_default();
    meta.last_applied = snap_meta.last_log_id;
    meta.membership = snap_meta.last_membership.clone();
    batch.insert(&store.state, layout::META_KEY, encode(&meta)?);
    batch.commit()?;
    store.sync()?;
    let _ = shared.applied_tx.send(Applied::Reset {
        revision: meta.revision,
    });
    Ok(meta)
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("storage task failed: {e}")))?
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, RaftNode>), StorageError> {
        Ok((self.meta.last_applied, self.meta.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<RaftResponse>, StorageError>
    where
        I: IntoIterator<Item = LogEntry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut responses = Vec::new();
        let mut all_events = Vec::new();
        for entry in entries {
            let (response, mut events) = self.apply_entry(&entry).map_err(|e| {
                tracing::error!(index = entry.log_id.index, error = %e, "apply failed");
                StorageError::from(StorageIOError::apply(entry.log_id, &e))
            })?;
            responses.push(response);
            all_events.append(&mut events);
        }
        if !all_events.is_empty() {
            // No receiver is not an error: nobody is watching.
            let _ = self
                .shared
                .applied_tx
                .send(Applied::Events(Arc::new(all_events)));
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
            hooks: self.hooks.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = snapshot::temp_path(&self.shared.store.snapshot_dir, "incoming");
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| snap_err(&Error::from(e)))?;
        // The directory entry is not needed: the open handle keeps the data alive.
        let _ = tokio::fs::remove_file(&path).await;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let shared = self.shared.clone();
        let mut file = snapshot.into_std().await;
        let meta = meta.clone();
        let _files = self.shared.files.lock().await;
        let installed = blocking(move || {
            use std::io::Seek;
            let dir = shared.store.snapshot_dir.clone();
            file.seek(std::io::SeekFrom::Start(0))?;
            let (tmp, file_meta) = snapshot::verified_copy(&mut file, &dir)?;
            if file_meta.last_log_id != meta.last_log_id {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::corrupt("snapshot file does not match its meta"));
            }
            let current = snapshot::current_path(&dir);
            snapshot::publish(&tmp, &current)?;
            let new_meta = load_snapshot_file(&shared, &current, &meta)?;
            tracing::info!(snapshot = %meta.snapshot_id, "installed snapshot");
            Ok(new_meta)
        })
        .await
        .map_err(|e| snap_err(&e))?;
        if let (Some(hub), Some(last)) = (&self.hooks, installed.last_applied) {
            hub.publish_local(HookEvent::new(
                hook_event::RAFT_SNAPSHOT_INSTALLED,
                last.index,
                installed.revision,
                hub.node(),
            ));
        }
        self.meta = installed;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = snapshot::current_path(&self.shared.store.snapshot_dir);
        let _files = self.shared.files.lock().await;
        open_snapshot(&current).await.map_err(|e| sm_read_err(&e))
    }
}

async fn open_snapshot(path: &std::path::Path) -> Result<Option<Snapshot<TypeConfig>>> {
    if !path.exists() {
        return Ok(None);
    }
    let meta = snapshot::read_meta(path)?;
    let file = tokio::fs::File::open(path).await?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(file),
    }))
}

/// Builds snapshots from a consistent view while applies go on.
pub struct SnapshotBuilder {
    shared: Shared,
    hooks: Option<Arc<HookHub>>,
}

/// Records read from the view per scan while building.
const BUILD_SCAN_RECORDS: usize = 4096;

impl SnapshotBuilder {
    /// Writes a snapshot file; returns its path and the revision it holds.
    fn build(&self) -> Result<(std::path::PathBuf, u64)> {
        let view = self.shared.view()?;
        // Everything in the view becomes durable, so the log behind it may be purged.
        self.shared.store.sync()?;
        let sm_meta = read::meta(&view)?;
        let last = sm_meta.last_applied;
        let nonce: u32 = rand::random();
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{nonce:08x}", l.leader_id, l.index),
            None => format!("empty-{nonce:08x}"),
        };
        let meta = Meta {
            last_log_id: last,
            last_membership: sm_meta.membership.clone(),
            snapshot_id,
        };
        let dir = &self.shared.store.snapshot_dir;
        let tmp = snapshot::temp_path(dir, "build");
        let result = (|| {
            let mut writer = snapshot::SnapshotWriter::create(&tmp, &meta)?;
            let mut from: Vec<u8> = Vec::new();
            loop {
                let rows = view.scan(&from, None, BUILD_SCAN_RECORDS)?;
                let n = rows.len();
                for (k, v) in &rows {
                    writer.record(k, v)?;
                }
                match rows.last() {
                    Some((k, _)) if n == BUILD_SCAN_RECORDS => {
                        from = k.to_vec();
                        from.push(0);
                    }
                    _ => break,
                }
            }
            writer.finish()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|path| (path, sm_meta.revision))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let builder = SnapshotBuilder {
            shared: self.shared.clone(),
            hooks: None,
        };
        let (tmp, revision) = blocking(move || builder.build())
            .await
            .map_err(|e| snap_err(&e))?;
        let dir = self.shared.store.snapshot_dir.clone();
        let current = snapshot::current_path(&dir);
        let _files = self.shared.files.lock().await;
        let built = snapshot::read_meta(&tmp).map_err(|e| snap_err(&e))?;
        // Never replace a newer snapshot (one installed while this was being built).
        let newer_exists = match snapshot::read_meta(&current) {
            Ok(m) => m.last_log_id > built.last_log_id,
            Err(_) => false,
        };
        if newer_exists {
            let _ = std::fs::remove_file(&tmp);
        } else {
            snapshot::publish(&tmp, &current).map_err(|e| snap_err(&e))?;
            tracing::info!(snapshot = %built.snapshot_id, "built snapshot");
            if let (Some(hub), Some(last)) = (&self.hooks, built.last_log_id) {
                hub.publish_local(HookEvent::new(
                    hook_event::RAFT_SNAPSHOT_CREATED,
                    last.index,
                    revision,
                    hub.node(),
                ));
            }
        }
        let snap = open_snapshot(&current).await.map_err(|e| snap_err(&e))?;
        snap.ok_or_else(|| snap_err(&Error::internal("snapshot vanished after publishing")))
    }
}
