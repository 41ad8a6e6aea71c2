//! The KV service: key syntax, the data model, the deterministic state machine that
//! applies commands (`apply`), and reads over a consistent view (`read`).

pub mod apply;
pub mod key;
pub mod layout;
pub mod read;
pub mod types;

pub use types::*;
