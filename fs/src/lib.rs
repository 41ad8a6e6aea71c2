//! aspen-fs: Aspen's FUSE file system. It serves a tree of entries from a [`Backend`]
//! and knows nothing of raft, networks or the services that implement the backend.

pub mod backend;

pub use backend::*;
