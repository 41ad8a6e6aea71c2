//! Mounting: the file system's backend over a node or a client (`backend`), the
//! `/cluster` status files (`status`), and the mount options and `mount.aspen` helper.

pub mod backend;
pub mod options;
pub mod run;
mod secrets;
pub mod status;
mod topics;
