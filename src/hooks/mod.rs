//! Hooks (DESIGN.md section 6), the node-local side: events derived from every applied
//! raft entry (`event`), staged in a persisted outbox in the same batch as the entry
//! (`outbox`), delivered by one thread per node (`hub`) to the spool directory
//! (`spool`), the in-memory ring behind `/hooks`, and `aspen hooks tail` streams.
//! Handlers are not here yet.

pub mod event;
pub mod hub;
pub mod outbox;
pub mod spool;

pub use event::{check_pattern, pattern_matches, HookEvent, EVENT_TYPES};
pub use hub::{HookConfig, HookHub, HookStats, RecentEvent};
