//! Operation histories: every client operation's invocation and completion, with its
//! outcome: `Ok` (it happened, with this result), or `Unknown` (an error after which it
//! may or may not have happened: a timeout, a lost connection, a node gone). Reads that
//! fail are kept as `Unknown` too; they have no effect, so the checker may drop them.

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
}

impl Op {
    pub fn is_read(&self) -> bool {
        self.kind == OpKind::Get
    }
}
