//! The raft log on fjall: entries in `raft_log` keyed by big-endian index, and the vote,
//! committed id and last purged id in `raft_meta`.
//!
//! Durability: `append` writes the entries (readable at once) and hands openraft's
//! callback to a flusher thread, which fsyncs the journal once for everything queued and
//! only then reports the entries durable. Concurrent appends thus share one fsync (group
//! commit). `save_vote` fsyncs before it returns.

use std::fmt::Debug;
use std::ops::RangeBounds;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::limits::MAX_APPEND_BYTES;
use crate::raft::types::{LogEntry, NodeId, StorageError, TypeConfig};
use crate::store::{decode, encode, Store};

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"purged";
const NODE_ID_KEY: &[u8] = b"node_id";

/// Callbacks waiting for the flusher thread.
const FLUSH_QUEUE_LEN: usize = 4096;

#[derive(Clone)]
pub struct LogStore {
    store: Store,
    flush_tx: mpsc::Sender<LogFlushed<TypeConfig>>,
}

fn read_err(e: impl Into<Error>) -> StorageError {
    let e: Error = e.into();
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl Into<Error>) -> StorageError {
    let e: Error = e.into();
    StorageIOError::write_logs(&e).into()
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    /// Opens the log and starts its flusher thread.
    pub fn open(store: Store) -> Result<LogStore, Error> {
        let (flush_tx, mut flush_rx) = mpsc::channel::<LogFlushed<TypeConfig>>(FLUSH_QUEUE_LEN);
        let flusher_store = store.clone();
        std::thread::Builder::new()
            .name("aspen-log-flush".into())
            .spawn(move || {
                let mut waiting = Vec::new();
                while let Some(first) = flush_rx.blocking_recv() {
                    waiting.push(first);
                    while let Ok(more) = flush_rx.try_recv() {
                        waiting.push(more);
                    }
                    let result = flusher_store
                        .sync()
                        .map_err(|e| std::io::Error::other(e.message));
                    for cb in waiting.drain(..) {
                        let r = match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(std::io::Error::other(e.to_string())),
                        };
                        cb.log_io_completed(r);
                    }
                }
            })
            .map_err(|e| Error::io(format!("cannot start the log flusher thread: {e}")))?;
        Ok(LogStore { store, flush_tx })
    }

    /// Refuses to start when the data dir belongs to another node id; records it on first use.
    pub fn check_node_id(&self, id: NodeId) -> Result<(), Error> {
        match self.store.meta.get(NODE_ID_KEY)? {
            Some(bytes) => {
                let stored: NodeId = decode(&bytes, "node id")?;
                if stored != id {
                    return Err(Error::invalid(format!(
                        "this data dir belongs to node {stored}, not node {id}"
                    )));
                }
                Ok(())
            }
            None => {
                self.store.meta.insert(NODE_ID_KEY, encode(&id)?)?;
                self.store.sync()
            }
        }
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, Error> {
        match self.store.meta.get(key)? {
            Some(bytes) => Ok(Some(decode(&bytes, "raft meta")?)),
            None => Ok(None),
        }
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId<NodeId>>, Error> {
        match self.store.log.last_key_value() {
            Some(guard) => {
                let (_, v) = guard.into_inner()?;
                let entry: LogEntry = decode(&v, "log entry")?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    /// What replication sends in one request: entries from `start` before `end`, stopping
    /// after `MAX_APPEND_BYTES` (but always at least one entry), so every append fits the
    /// heartbeat-long timeout openraft gives it.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let mut out = Vec::new();
        if end <= start {
            return Ok(out);
        }
        let mut bytes = 0usize;
        for guard in self.store.log.range(index_key(start)..index_key(end)) {
            let (_, v) = guard.into_inner().map_err(read_err)?;
            if !out.is_empty() && bytes + v.len() > MAX_APPEND_BYTES {
                break;
            }
            bytes += v.len();
            out.push(decode::<LogEntry>(&v, "log entry").map_err(read_err)?);
        }
        Ok(out)
    }

    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end: Option<u64> = match range.end_bound() {
            Bound::Included(i) => Some(i.saturating_add(1)),
            Bound::Excluded(i) => Some(*i),
            Bound::Unbounded => None,
        };
        let iter = match end {
            Some(e) if e <= start => return Ok(Vec::new()),
            Some(e) => self.store.log.range(index_key(start)..index_key(e)),
            None => self.store.log.range(index_key(start)..),
        };
        let mut out = Vec::new();
        for guard in iter {
            let (_, v) = guard.into_inner().map_err(read_err)?;
            out.push(decode::<LogEntry>(&v, "log entry").map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta(PURGED_KEY).map_err(read_err)?;
        let last = self.last_entry_log_id().map_err(read_err)?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = encode(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.store
            .meta
            .insert(VOTE_KEY, bytes)
            .map_err(|e| StorageIOError::write_vote(&Error::from(e)))?;
        self.store
            .sync()
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(VOTE_KEY)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        // Buffered: losing it on power failure only means re-learning it from the leader.
        let bytes = encode(&committed).map_err(write_err)?;
        self.store
            .meta
            .insert(COMMITTED_KEY, bytes)
            .map_err(write_err)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self
            .get_meta::<Option<LogId<NodeId>>>(COMMITTED_KEY)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.store.db.batch();
        for entry in entries {
            let bytes = encode(&entry).map_err(write_err)?;
            batch.insert(&self.store.log, index_key(entry.log_id.index), bytes);
        }
        batch.commit().map_err(write_err)?;
        self.flush_tx
            .send(callback)
            .await
            .map_err(|_| write_err(Error::io("log flusher thread has stopped")))?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut batch = self.store.db.batch();
        for guard in self.store.log.range(index_key(log_id.index)..) {
            let key = guard.key().map_err(write_err)?;
            batch.remove(&self.store.log, key);
        }
        batch.commit().map_err(write_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut batch = self.store.db.batch();
        batch.insert(
            &self.store.meta,
            PURGED_KEY,
            encode(&log_id).map_err(write_err)?,
        );
        for guard in self.store.log.range(..=index_key(log_id.index)) {
            let key = guard.key().map_err(write_err)?;
            batch.remove(&self.store.log, key);
        }
        batch.commit().map_err(write_err)?;
        Ok(())
    }
}
