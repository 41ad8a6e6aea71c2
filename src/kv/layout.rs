//! How the state machine lays out its data in the `state` keyspace. One keyspace, with a
//! one-byte tag per record family, so a snapshot is one ordered scan and an install is one
//! clear plus ordered inserts.
//!
//! | tag | key                                   | value                          |
//! |-----|---------------------------------------|--------------------------------|
//! | `K` | entry key                             | `EntryRecord`                  |
//! | `C` | parent key, 0x00, child name          | empty (directory index)        |
//! | `H` | revision (u64 BE), sequence (u32 BE)  | `Event` (watch history)        |
//! | `L` | lease id (u64 BE)                     | `LeaseRecord`                  |
//! | `A` | lease id (u64 BE), entry key          | empty (keys attached to lease) |
//! | `M` | `state`                               | `SmMeta`                       |

use openraft::{LogId, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::raft::types::{NodeId, RaftNode};

pub const TAG_ENTRY: u8 = b'K';
pub const TAG_CHILD: u8 = b'C';
pub const TAG_HISTORY: u8 = b'H';
pub const TAG_LEASE: u8 = b'L';
pub const TAG_ATTACH: u8 = b'A';
pub const META_KEY: &[u8] = b"Mstate";

pub fn entry_key(key: &str) -> Vec<u8> {
    tagged(TAG_ENTRY, key.as_bytes())
}

pub fn child_key(parent: &str, name: &str) -> Vec<u8> {
    let mut k = child_prefix(parent);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Prefix of all child-index records of directory `parent`.
pub fn child_prefix(parent: &str) -> Vec<u8> {
    let mut k = tagged(TAG_CHILD, parent.as_bytes());
    k.push(0);
    k
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
