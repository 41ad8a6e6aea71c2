//! The messages of Aspen's one wire protocol, spoken between peers and by clients.
//!
//! A connection starts with a mutual HMAC handshake (`auth`), then carries `Envelope`s:
//! each request has an id chosen by the caller, and every response frame carries the id
//! of the request it answers. Most requests get one response; a watch gets a stream of
//! `Events` frames that ends with `StreamEnd`.

use std::collections::{BTreeMap, BTreeSet};

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hooks::{HookStats, RecentEvent};
use crate::kv::{Command, CommandResult, Event, ReadQuery, ReadResult};
use crate::limits::NONCE_BYTES;
use crate::raft::types::{NodeId, TypeConfig};

pub type Nonce = [u8; NONCE_BYTES];
pub type Mac = [u8; 32];

/// Who is connecting, and so which key proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Another node: proves the cluster secret.
    Peer { node_id: NodeId },
    /// A client (CLI, mount): proves the client token.
    Client,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerHello {
    pub node_id: NodeId,
    pub nonce: Nonce,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientHello {
    pub role: Role,
    pub nonce: Nonce,
    pub proof: Mac,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ServerVerdict {
    /// The server's proof that it knows the same key.
    Accepted {
        proof: Mac,
    },
    Refused {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// Linearizable: confirmed by the leader with a quorum (read index).
    Linearizable,
    /// This node's applied state; may lag the leader.
    Local,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    // ---- raft, peers only ----
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A follower's batch of `(origin, command)` for the leader to propose as one entry.
    Propose {
        commands: Vec<(u64, Command)>,
    },
    // ---- clients (and peers forwarding for them) ----
    /// Commands to apply; `hops` counts forwards between nodes.
    Write {
        origin: u64,
        commands: Vec<Command>,
        hops: u8,
    },
    Read {
        query: ReadQuery,
        consistency: Consistency,
        hops: u8,
    },
    /// Stream applied changes at or below `prefix` from `from_revision` (0: from now).
    Watch {
        prefix: String,
        from_revision: u64,
    },
    Status,
    /// Initialize a new cluster with these voters.
    Init {
        members: BTreeMap<NodeId, String>,
    },
    AddLearner {
        id: NodeId,
        addr: String,
        hops: u8,
    },
    /// Promote learners `voters` to voters, then remove nodes `remove` from the cluster.
    ChangeMembership {
        voters: BTreeSet<NodeId>,
        remove: BTreeSet<NodeId>,
        hops: u8,
    },
    TriggerSnapshot,
    /// The node's recent hook events and delivery figures (what `/hooks` shows).
    HookRecent,
    /// Stream hook events delivered on this node from now on whose type matches
    /// `pattern` (`*` one segment, `>` the rest); frames are `HookLines`.
    HookTail {
        pattern: String,
    },
    /// A request of the secrets service; the node encrypts and decrypts values itself.
    Secret {
        origin: u64,
        request: crate::secrets::SecretRequest,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Write(Result<Vec<CommandResult>, Error>),
    Read(Result<ReadResult, Error>),
    /// One frame of a watch stream.
    Events(Vec<Event>),
    /// A snapshot replaced the state: a watcher must re-read what it caches.
    Reset {
        revision: u64,
    },
    /// The end of a stream, with the reason when it is an error.
    StreamEnd(Option<Error>),
    Status(Result<ClusterStatus, Error>),
    Done(Result<(), Error>),
    /// The request could not be served at all.
    Failed(Error),
    HookRecent(Result<HookRecent, Error>),
    /// One frame of a hook tail stream: JSON lines, newline included.
    HookLines(Vec<String>),
    Secret(Result<crate::secrets::SecretReply, Error>),
}

/// A node's recent hook events, oldest first, and its delivery figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRecent {
    pub events: Vec<RecentEvent>,
    pub stats: HookStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub addr: String,
    pub voter: bool,
    /// Highest log index known replicated to it (leader's view), if known.
    pub matched: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub id: NodeId,
    pub addr: String,
    /// "leader", "follower", "candidate", "learner" or "shutdown".
    pub role: String,
    pub leader: Option<NodeId>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub revision: u64,
    pub members: Vec<MemberStatus>,
    pub initialized: bool,
}
