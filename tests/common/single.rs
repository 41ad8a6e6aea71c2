//! One Aspen node in this test process, leading a cluster of itself, with its data in a
//! fresh temp dir: for semantics tests that need no processes or network faults.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aspen::net::auth::Keys;
use aspen::node::{Bootstrap, Node, NodeConfig};

pub const TOKEN: &[u8] = b"kv-semantics-token-0123456789";

pub struct One {
    _dir: tempfile::TempDir,
    pub node: Arc<Node>,
}

/// Starts the node and waits (polling, with a generous deadline) until it leads.
pub async fn node() -> One {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(NodeConfig {
        id: 1,
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        advertise: None,
        keys: Keys {
            cluster_secret: b"kv-semantics-secret-0123456789".to_vec(),
            client_token: TOKEN.to_vec(),
        },
        max_value_bytes: 1024 * 1024,
        bootstrap: Bootstrap::Init(BTreeMap::new()),
        hooks: Default::default(),
        age_identity: None,
    })
    .await
    .expect("node starts");
    let start = Instant::now();
    while node.raft.metrics().borrow().current_leader != Some(1) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "single node never led"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    One { _dir: dir, node }
}
