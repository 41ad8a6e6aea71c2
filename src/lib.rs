//! Aspen: a replicated key-value store (openraft on fjall) whose primary interface is a
//! mounted file system. See DESIGN.md in the shared docs for the contract; each module
//! says at its top what it owns.

pub mod cli;
pub mod client;
pub mod error;
pub mod hooks;
pub mod kv;
pub mod limits;
pub mod mount;
pub mod net;
pub mod node;
pub mod raft;
pub mod robust;
pub mod secrets;
pub mod store;
pub mod topics;
