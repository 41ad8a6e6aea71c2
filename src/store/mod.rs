//! Storage: the node's one fjall database, its keyspaces, and the versioned record codec.
//!
//! Layout under `--data-dir`:
//! - `db/`: the fjall database with keyspaces `raft_log` (index -> entry), `raft_meta` (vote,
//!   committed, last purged, node id), `state` (the state machine, see `kv::layout`) and
//!   `hooks` (node-local hook delivery: outbox and cursor, never replicated nor in snapshots);
//! - `snapshots/`: the current raft snapshot file and transient `*.tmp` files.
//!
//! Every persisted record starts with a format version byte (`RECORD_FORMAT_V1`).
//! A record with another version is refused as corrupt, never guessed at.

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Format version of every record Aspen writes to disk.
pub const RECORD_FORMAT_V1: u8 = 1;

const LOG_KEYSPACE: &str = "raft_log";
const META_KEYSPACE: &str = "raft_meta";
const STATE_KEYSPACE: &str = "state";
const HOOKS_KEYSPACE: &str = "hooks";

/// Handles to the node's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub db: Database,
    pub log: Keyspace,
    pub meta: Keyspace,
    pub state: Keyspace,
    /// Node-local hook delivery state (see `hooks::outbox`).
    pub hooks: Keyspace,
    pub snapshot_dir: PathBuf,
}

impl Store {
    /// Opens (creating on first use) the database under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store> {
        let db_dir = data_dir.join("db");
        let snapshot_dir = data_dir.join("snapshots");
        std::fs::create_dir_all(&db_dir)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", db_dir.display())))?;
        std::fs::create_dir_all(&snapshot_dir)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", snapshot_dir.display())))?;
        let db = Database::builder(&db_dir).open().map_err(|e| {
            Error::corrupt(format!(
                "cannot open the database in {}: {e} (is another aspen using this data dir?)",
                db_dir.display()
            ))
        })?;
        let log = db.keyspace(LOG_KEYSPACE, KeyspaceCreateOptions::default)?;
        let meta = db.keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)?;
        let state = db.keyspace(STATE_KEYSPACE, KeyspaceCreateOptions::default)?;
        let hooks = db.keyspace(HOOKS_KEYSPACE, KeyspaceCreateOptions::default)?;
        Ok(Store {
            db,
            log,
            meta,
            state,
            hooks,
            snapshot_dir,
        })
    }

    /// Makes everything written so far durable (fdatasync of the journal).
    pub fn sync(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncData)?;
        Ok(())
    }

    /// A consistent read view of the state machine.
    pub fn view(&self) -> View {
        View {
            snap: self.db.snapshot(),
            state: self.state.clone(),
        }
    }
}

/// A point-in-time view of the `state` keyspace.
pub struct View {
    snap: Snapshot,
    state: Keyspace,
}

impl View {
    pub fn get(&self, key: &[u8]) -> Result<Option<fjall::Slice>> {
        Ok(self.snap.get(&self.state, key)?)
    }

    /// Key/value pairs with keys in `[from, to)` (`to = None`: no upper bound), ascending,
    /// at most `limit`.
    pub fn scan(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(fjall::Slice, fjall::Slice)>> {
        let mut out = Vec::new();
        let iter = match to {
            Some(to) if from >= to => return Ok(out),
            Some(to) => self.snap.range(&self.state, from..to),
            None => self.snap.range(&self.state, from..),
        };
        for guard in iter {
            if out.len() >= limit {
                break;
            }
            out.push(guard.into_inner()?);
        }
        Ok(out)
    }

    /// Key/value pairs whose keys start with `prefix`, at most `limit`.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(fjall::Slice, fjall::Slice)>> {
        let end = prefix_end(prefix);
        self.scan(prefix, end.as_deref(), limit)
    }
}

/// Encodes a record: version byte, then postcard.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![RECORD_FORMAT_V1];
    let body = postcard::to_stdvec(value).map_err(|e| Error::internal(format!("encode: {e}")))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes one postcard value that must fill `body` exactly: trailing bytes are corruption.
pub fn decode_exact<'a, T: serde::Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes(body)
        .map_err(|e| Error::corrupt(format!("{what}: undecodable record: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::corrupt(format!(
            "{what}: {} trailing bytes after record",
            rest.len()
        )));
    }
    Ok(value)
}

/// Decodes a record written by [`encode`], refusing unknown versions and trailing garbage.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT_V1, body)) => decode_exact(body, what),
        Some((v, _)) => Err(Error::corrupt(format!(
            "{what}: unknown record format version {v}"
        ))),
        None => Err(Error::corrupt(format!("{what}: empty record"))),
    }
}

/// Decodes a record written by [`encode`] into a type that borrows from `bytes`.
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT_V1, body)) => decode_exact(body, what),
        Some((v, _)) => Err(Error::corrupt(format!(
            "{what}: unknown record format version {v}"
        ))),
        None => Err(Error::corrupt(format!("{what}: empty record"))),
    }
}

/// Upper bound (exclusive) of all keys that start with `prefix`, or `None` if unbounded.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip_and_refusals() {
        let bytes = encode(&(7u64, "x".to_string())).unwrap();
        let back: (u64, String) = decode(&bytes, "t").unwrap();
        assert_eq!(back, (7, "x".to_string()));
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert!(decode::<(u64, String)>(&wrong, "t").is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<(u64, String)>(&long, "t").is_err());
        assert!(decode::<(u64, String)>(&[], "t").is_err());
        assert!(decode::<(u64, String)>(&bytes[..2], "t").is_err());
    }

    #[test]
    fn prefix_end_bounds() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
