//! How the state machine lays out its data in the `state` keyspace. One keyspace, with a
//! one-byte tag per record family, so a snapshot is one ordered scan and an install is one
//! clear plus ordered inserts.
//!
//! Entries are keyed by parent directory, then name, so the children of a directory are
//! one contiguous range in name order: a listing is a single scan, with no index to keep
//! in step. Keys never contain NUL, which makes the separator unambiguous.
//!
//! | tag | key                                   | value                          |
//! |-----|---------------------------------------|--------------------------------|
//! | `K` | parent key, 0x00, name                | `EntryRecord`                  |
//! | `H` | revision (u64 BE), sequence (u32 BE)  | `Event` (watch history)        |
//! | `L` | lease id (u64 BE)                     | `LeaseRecord`                  |
//! | `A` | lease id (u64 BE), entry key          | empty (keys attached to lease) |
//! | `M` | `state`                               | `SmMeta`                       |

use openraft::{LogId, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::raft::types::{NodeId, RaftNode};

pub const TAG_ENTRY: u8 = b'K';
pub const TAG_HISTORY: u8 = b'H';
pub const TAG_LEASE: u8 = b'L';
pub const TAG_ATTACH: u8 = b'A';
pub const META_KEY: &[u8] = b"Mstate";

/// The record key of entry `key`.
pub fn entry_key(key: &str) -> Vec<u8> {
    let (parent, name) = crate::kv::key::split(key);
    let mut k = dir_prefix(parent);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Prefix of the records of all direct children of directory `dir` ("" is the root).
pub fn dir_prefix(dir: &str) -> Vec<u8> {
    let mut k = tagged(TAG_ENTRY, dir.as_bytes());
    k.push(0);
    k
}

/// The entry key a record key stands for.
pub fn key_of(record_key: &[u8]) -> crate::error::Result<String> {
    let bad = || crate::error::Error::corrupt("malformed entry record key");
    let rest = record_key.strip_prefix(&[TAG_ENTRY]).ok_or_else(bad)?;
    let sep = rest.iter().position(|b| *b == 0).ok_or_else(bad)?;
    let parent = std::str::from_utf8(rest.get(..sep).ok_or_else(bad)?).map_err(|_| bad())?;
    let name = std::str::from_utf8(rest.get(sep + 1..).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok(crate::kv::key::join(parent, name))
}

/// The name part of a record key under `dir_prefix(dir)`.
pub fn name_of(record_key: &[u8], prefix_len: usize) -> crate::error::Result<&str> {
    std::str::from_utf8(record_key.get(prefix_len..).unwrap_or_default())
        .map_err(|_| crate::error::Error::corrupt("entry name is not UTF-8"))
}

pub fn history_key(revision: u64, seq: u32) -> Vec<u8> {
    let mut k = vec![TAG_HISTORY];
    k.extend_from_slice(&revision.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn lease_key(id: u64) -> Vec<u8> {
    tagged(TAG_LEASE, &id.to_be_bytes())
}

pub fn attach_prefix(id: u64) -> Vec<u8> {
    tagged(TAG_ATTACH, &id.to_be_bytes())
}

pub fn attach_key(id: u64, key: &str) -> Vec<u8> {
    let mut k = attach_prefix(id);
    k.extend_from_slice(key.as_bytes());
    k
}

fn tagged(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(tag);
    k.extend_from_slice(rest);
    k
}

/// A granted lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: u64,
    pub ttl_secs: u64,
    pub expires_at_ns: i64,
    pub keys: u64,
}

/// State-machine bookkeeping, written with every applied entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmMeta {
    /// Last applied raft log id.
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, RaftNode>,
    /// Store revision: bumped once per applied command that changed something.
    pub revision: u64,
    /// Next lease id to hand out.
    pub next_lease_id: u64,
    /// Latest leader time stamp seen; time never runs backwards inside the state machine.
    pub last_stamp_ns: i64,
    /// Lowest revision still in the watch history.
    pub history_low: u64,
}
