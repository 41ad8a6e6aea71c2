//! Replication: the openraft type configuration, the fjall log store and state machine,
//! snapshot files, and the peer network adapter.

pub mod lease;
pub mod log_store;
pub mod network;
pub mod snapshot;
pub mod state_machine;
pub mod types;

pub use types::*;

/// openraft configuration from the constants in `limits`.
pub fn config(cluster_name: &str) -> Result<openraft::Config, crate::error::Error> {
    use crate::limits::*;
    let config = openraft::Config {
        cluster_name: cluster_name.to_string(),
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        max_payload_entries: MAX_APPEND_ENTRIES,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES),
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
        max_in_snapshot_log_to_keep: LOG_KEPT_BEHIND_SNAPSHOT_ENTRIES,
        install_snapshot_timeout: SNAPSHOT_TIMEOUT_MS,
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| crate::error::Error::invalid(format!("raft config: {e}")))
}
