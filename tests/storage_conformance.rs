//! openraft's own storage conformance suite against the fjall log store and state machine.

use aspen::raft::log_store::LogStore;
use aspen::raft::state_machine::StateMachine;
use aspen::raft::types::{StorageError, TypeConfig};
use aspen::store::Store;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;

struct FjallBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for FjallBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::from(StorageIOError::write(&e)))?;
        let store =
            Store::open(dir.path()).map_err(|e| StorageError::from(StorageIOError::write(&e)))?;
        let log = LogStore::open(store.clone())
            .map_err(|e| StorageError::from(StorageIOError::write(&e)))?;
        let (tx, _) = tokio::sync::broadcast::channel(16);
        let sm = StateMachine::open(store, tx)
            .map_err(|e| StorageError::from(StorageIOError::write(&e)))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(FjallBuilder) {
        panic!("storage conformance failed: {e}");
    }
}
