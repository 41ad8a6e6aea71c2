//! Secrets (DESIGN.md section 4), KV v2 part: versioned secrets whose values are
//! age-encrypted on the node that receives them, before they become raft commands, so the
//! log, snapshots and the state keyspace hold only ciphertext.
//!
//! - `types`: the commands, queries, answers, client requests and stored records.
//! - `layout`: where the records live in the state keyspace.
//! - `apply`: the deterministic KV v2 rules (versions, cas, deletion, pruning).
//! - `read`: answers to queries from a consistent view (ciphertext, never plaintext).
//! - `keyring`: the node-local age identity, encryption and decryption.

pub mod apply;
pub mod keyring;
pub mod layout;
pub mod read;
pub mod types;

pub use keyring::Keyring;
pub use types::*;
