//! openraft type configuration and the application data carried in the log.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::kv::{Command, CommandResult};

pub type NodeId = u64;
pub type RaftNode = openraft::BasicNode;

/// One raft entry's payload: commands from any number of clients, packed by the leader's
/// proposer (group commit) and stamped with the leader's clock. Versioned: a new layout is
/// a new variant, and old entries stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRequest {
    V1 {
        /// Leader wall clock, nanoseconds since the epoch.
        stamp_ns: i64,
        /// `(origin, command)`: origin is the proposing client session (0: the cluster).
        commands: Vec<(u64, Command)>,
    },
}

impl std::fmt::Display for RaftRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RaftRequest::V1 { commands, .. } => write!(f, "{} commands", commands.len()),
        }
    }
}

/// One result per command of the entry, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftResponse {
    pub results: Vec<CommandResult>,
}

// `Cursor` is named unqualified by the macro's defaults.
type _CursorUsedByMacro = Cursor<Vec<u8>>;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = RaftRequest,
        R = RaftResponse,
        NodeId = NodeId,
        Node = RaftNode,
        SnapshotData = tokio::fs::File,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogEntry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
