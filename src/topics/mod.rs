//! Topics (DESIGN.md section 5): durable, raft-replicated message logs with consumer
//! groups. Everything here is state-machine logic and queries; the node proposes the
//! commands and the CLI and file system present them.
//!
//! - `types`: the commands, queries, results and stored records.
//! - `layout`: where the records live in the state keyspace.
//! - `apply`: the deterministic rules (offsets, retention, claims, acks, dead letters).
//! - `read`: answers to queries from a consistent view.
//! - `consumer`: claiming with a wait, shared by the CLI and the mount.

pub mod apply;
pub mod consumer;
pub mod layout;
pub mod read;
pub mod types;

pub use types::*;
