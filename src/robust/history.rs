//! Operation histories: every client operation's invocation and completion, with its
//! outcome: `Ok` (it happened, with this result), or `Unknown` (an error after which it
//! may or may not have happened: a timeout, a lost connection, a node gone). Reads that
//! fail are kept as `Unknown` too; they have no effect, so the checker may drop them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    Put {
        value: String,
    },
    Get,
    /// Compare-and-swap: replace `expect` with `value`.
    Cas {
        expect: String,
        value: String,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Put/Delete applied.
    Done,
    /// A read's result (`None`: the key did not exist).
    Read(Option<String>),
    /// A compare-and-swap's result.
    Swapped(bool),
    /// Unknown whether it took effect.
    Unknown(String),
    /// Took effect at some point between invocation and completion, or not at all: the
    /// empty file a whole-file write may expose (create or truncate, then write).
    MayHappen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub client: u64,
    pub key: String,
    pub kind: OpKind,
    /// Nanoseconds since the start of the run.
    pub invoke_ns: u64,
    /// `None` for operations whose outcome is unknown.
    pub complete_ns: Option<u64>,
    pub outcome: Outcome,
    /// If both happen, this operation takes effect before the one with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Made through a mounted file system (open..close), not through the KV client.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_file: bool,
}

impl Op {
    pub fn is_read(&self) -> bool {
        self.kind == OpKind::Get
    }
}

/// Collects the operations of every client, with times relative to the run's start.
pub struct Recorder {
    start: Instant,
    next_id: AtomicU64,
    pub ops: Mutex<Vec<Op>>,
}

impl Recorder {
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records one operation, completed now unless its outcome is unknown; `true` when
    /// its outcome is unknown.
    pub fn record(
        &self,
        client: u64,
        key: &str,
        kind: OpKind,
        invoke_ns: u64,
        outcome: Outcome,
    ) -> bool {
        self.record_op(client, key, kind, invoke_ns, outcome, false)
    }

    /// As [`Recorder::record`], for an operation made through a mounted file system.
    pub fn record_file_op(
        &self,
        client: u64,
        key: &str,
        kind: OpKind,
        invoke_ns: u64,
        outcome: Outcome,
    ) -> bool {
        self.record_op(client, key, kind, invoke_ns, outcome, true)
    }

    fn record_op(
        &self,
        client: u64,
        key: &str,
        kind: OpKind,
        invoke_ns: u64,
        outcome: Outcome,
        via_file: bool,
    ) -> bool {
        let unknown = matches!(outcome, Outcome::Unknown(_));
        let complete_ns = (!unknown).then(|| self.now());
        self.push(Op {
            id: 0,
            client,
            key: key.to_string(),
            kind,
            invoke_ns,
            complete_ns,
            outcome,
            before: None,
            via_file,
        });
        unknown
    }

    /// Records `op` under a fresh id, which it returns.
    pub fn push(&self, mut op: Op) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        op.id = id;
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(op);
        }
        id
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            start: Instant::now(),
            next_id: AtomicU64::new(1),
            ops: Mutex::new(Vec::new()),
        }
    }
}
