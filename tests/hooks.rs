//! Hooks: events fired from apply on every node, exactly once per applied entry per node
//! (also across a kill -9 and restart), none for a failed compare-and-swap, every event
//! type from the operation that should produce it, queue overflow counted and visible,
//! and `hooks tail` streams. Multi-node cases use real processes (tests/common); the
//! rest a node in this process.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aspen::client::Client;
use aspen::hooks::HookConfig;
use aspen::kv::*;
use aspen::net::auth::Keys;
use aspen::node::{Bootstrap, Node, NodeConfig};
use common::{Cluster, DEADLINE};
use serde_json::Value;

/// Every event in a spool's `events` file, in order.
fn spool_events(spool: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(spool.join("events")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn has_key(e: &Value, key: &str) -> bool {
    e["keys"]
        .as_array()
        .is_some_and(|k| k.iter().any(|k| k == key))
}

fn of_type<'a>(events: &'a [Value], kind: &str, key: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && has_key(e, key))
        .collect()
}

/// Waits until `cond` holds, polling; panics with `what` after the deadline.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn put(key: &str, v: &str) -> Command {
    Command::Put(PutOp::file(key, v.as_bytes().to_vec()))
}

/// No event appears twice in a spool (same type and index).
fn assert_no_repeats(events: &[Value], node: usize) {
    let mut seen = BTreeSet::new();
    for e in events {
        let id = (e["type"].to_string(), e["index"].as_u64().expect("index"));
        assert!(
            seen.insert(id.clone()),
            "node {node}: event {id:?} delivered twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_fires_once_no_event_for_failed_cas_and_restart_neither_loses_nor_repeats() {
    let mut cluster = Cluster::start(3);
    cluster.wait_leader(None).await;
    let c = cluster.client();
    let spools: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| n.data_dir.join("hooks"))
        .collect();

    let value = "s3cr3t-value-never-in-events";
    let r = c.write_one(put("app/x", value)).await.expect("put");
    let rev = r.revision();
    let mut index = None;
    for (i, spool) in spools.iter().enumerate() {
        wait_for(&format!("kv.write of app/x on node {}", i + 1), || {
            !of_type(&spool_events(spool), "kv.write", "app/x").is_empty()
        })
        .await;
        let events = spool_events(spool);
        let writes = of_type(&events, "kv.write", "app/x");
        assert_eq!(writes.len(), 1, "node {}: {writes:?}", i + 1);
        let e = writes[0];
        assert_eq!(e["v"], 1);
        assert_eq!(e["revision"].as_u64(), Some(rev));
        assert_eq!(e["node"].as_u64(), Some(i as u64 + 1));
        assert_eq!(e["value_bytes"].as_u64(), Some(value.len() as u64));
        assert!(e["time_ms"].as_i64().is_some_and(|t| t > 0));
        let idx = e["index"].as_u64().expect("index");
        assert_eq!(
            *index.get_or_insert(idx),
            idx,
            "same log index on every node"
        );
        let file = spool.join("kv.write").join(format!("{idx}.json"));
        let body = std::fs::read_to_string(&file).expect("event file");
        assert_eq!(serde_json::from_str::<Value>(&body).expect("json"), *e);
        let all = std::fs::read_to_string(spool.join("events")).expect("events");
        assert!(!all.contains(value), "a value leaked into hook events");
        // The cluster's own history: the first membership and a leader's first entry.
        assert!(events
            .iter()
            .any(|e| e["type"] == "cluster.membership_change"
                && e["members"].as_array().is_some_and(|m| m.len() == 3)));
        assert!(events
            .iter()
            .any(|e| e["type"] == "raft.leader_change" && e["leader"].as_u64().is_some()));
    }

    // A failed compare-and-swap and a transaction whose compare fails fire nothing.
    let mut cas = PutOp::file("app/x", b"other".to_vec());
    cas.condition = PutCondition::ModRevision(rev + 1000);
    let e = c.write_one(Command::Put(cas)).await.expect_err("stale CAS");
    assert_eq!(e.kind, aspen::error::ErrorKind::CompareFailed);
    let txn = Txn {
        compare: vec![Compare {
            key: "app/x".into(),
            op: CompareOp::Equal,
            target: CompareTarget::Value(b"nope".to_vec()),
        }],
        success: vec![TxnOp::Put(PutOp::file("app/x", b"y".to_vec()))],
        failure: vec![],
    };
    match c.write_one(Command::Txn(txn)).await.expect("txn") {
        WriteResult::Txn { succeeded, .. } => assert!(!succeeded),
        other => panic!("{other:?}"),
    }
    c.write_one(put("app/marker", "m")).await.expect("marker");
    for (i, spool) in spools.iter().enumerate() {
        wait_for("the marker", || {
            !of_type(&spool_events(spool), "kv.write", "app/marker").is_empty()
        })
        .await;
        let events = spool_events(spool);
        assert_eq!(
            of_type(&events, "kv.write", "app/x").len(),
            1,
            "node {}",
            i + 1
        );
        assert!(
            !events.iter().any(|e| e["type"] == "kv.batch"),
            "node {}: a failed transaction fired",
            i + 1
        );
    }

    // Restart: node 3 is killed right after writes it may have applied and not yet
    // delivered, misses more while down, then catches up: each once, none twice.
    let c = Arc::new(c);
    let write_keys = |prefix: &'static str| {
        let c = c.clone();
        async move {
            let mut tasks = Vec::new();
            for i in 0..10 {
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    c.write_one(put(&format!("{prefix}/{i}"), "v"))
                        .await
                        .expect("put");
                }));
            }
            for t in tasks {
                t.await.expect("writer");
            }
        }
    };
    write_keys("before").await;
    cluster.kill(2);
    write_keys("down").await;
    cluster.restart(2);
    let spool = &spools[2];
    for prefix in ["before", "down"] {
        for i in 0..10 {
            let key = format!("{prefix}/{i}");
            wait_for(&format!("{key} on restarted node 3"), || {
                !of_type(&spool_events(spool), "kv.write", &key).is_empty()
            })
            .await;
        }
    }
    // One more write after the restart, then count.
    c.write_one(put("after/1", "v")).await.expect("put");
    wait_for("after/1 on node 3", || {
        !of_type(&spool_events(spool), "kv.write", "after/1").is_empty()
    })
    .await;
    for (i, spool) in spools.iter().enumerate() {
        let events = spool_events(spool);
        assert_no_repeats(&events, i + 1);
        for prefix in ["before", "down"] {
            for k in 0..10 {
                let key = format!("{prefix}/{k}");
                assert_eq!(
                    of_type(&events, "kv.write", &key).len(),
                    1,
                    "node {}: {key}",
                    i + 1
                );
            }
        }
    }
}

const TOKEN: &[u8] = b"hooks-test-token-0123456789abcdef";

async fn local_node(dir: &Path, hooks: HookConfig) -> Arc<Node> {
    let node = Node::start(NodeConfig {
        id: 1,
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        advertise: None,
        keys: Keys {
            cluster_secret: b"hooks-test-secret-0123456789abcdef".to_vec(),
            client_token: TOKEN.to_vec(),
        },
        max_value_bytes: 1024 * 1024,
        bootstrap: Bootstrap::Init(BTreeMap::new()),
        hooks,
        age_identity: None,
    })
    .await
    .expect("node starts");
    let start = Instant::now();
    while node.raft.metrics().borrow().current_leader != Some(1) {
        assert!(start.elapsed() < DEADLINE, "single node never led");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_counts_logs_and_shows_in_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = local_node(
        dir.path(),
        HookConfig {
            spool_dir: Some(dir.path().join("spool")),
            queue_events: 4,
        },
    )
    .await;
    // Let the cluster's first events through, then hold delivery.
    wait_for("initial events delivered", || {
        node.hooks().stats().pending == 0
    })
    .await;
    node.hooks().pause();
    for i in 0..10 {
        node.write_one(7, put(&format!("k{i}"), "v"))
            .await
            .expect("put");
    }
    let stats = node.hooks().stats();
    assert_eq!(stats.pending, 4, "{stats:?}");
    assert_eq!(stats.overflow, 6, "{stats:?}");
    let status = node.status().expect("status");
    let metrics = aspen::mount::status::render("metrics", &status, Some(&stats)).expect("metrics");
    let metrics = String::from_utf8(metrics).expect("utf8");
    assert!(
        metrics.contains("aspen_hook_overflow_total{node=\"1\"} 6"),
        "{metrics}"
    );
    // Delivery resumes with what was queued; nothing is lost silently.
    node.hooks().resume();
    wait_for("queued events delivered", || {
        node.hooks().stats().pending == 0
    })
    .await;
    let events = spool_events(&dir.path().join("spool"));
    let delivered: Vec<&Value> = events.iter().filter(|e| e["type"] == "kv.write").collect();
    assert_eq!(delivered.len(), 4);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_fires_its_type_and_tail_streams_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = local_node(dir.path(), HookConfig::default()).await;
    let client = Client::new(vec![node.addr.clone()], TOKEN.to_vec()).expect("client");
    let mut tail = client.hook_tail("kv.*").await.expect("tail");
    // The stream follows events from when the node registered it: warm up until it does.
    let mut n = 0;
    loop {
        n += 1;
        node.write_one(7, put(&format!("warm/{n}"), "v"))
            .await
            .expect("put");
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), tail.next()).await {
            break;
        }
        assert!(n < 30, "tail stream never started");
    }
    let w = |c: Command| {
        let node = node.clone();
        async move { node.write_one(7, c).await.expect("write") }
    };
    w(put("t/a", "12345")).await;
    w(Command::Delete {
        key: "t/a".into(),
        mode: DeleteMode::NonDir,
    })
    .await;
    w(Command::Txn(Txn {
        compare: vec![],
        success: vec![
            TxnOp::Put(PutOp::file("t/b", b"1".to_vec())),
            TxnOp::Put(PutOp::file("t/c", b"2".to_vec())),
        ],
        failure: vec![],
    }))
    .await;
    w(Command::Rename {
        from: "t/b".into(),
        to: "t/d".into(),
        mode: RenameMode::NoReplace,
    })
    .await;
    let lease = match w(Command::LeaseGrant { ttl_secs: 1, id: 0 }).await {
        WriteResult::Lease { lease, .. } => lease.id,
        other => panic!("{other:?}"),
    };
    let mut op = PutOp::file("t/e", b"x".to_vec());
    op.lease = Some(lease);
    w(Command::Put(op)).await;

    let mut got: Vec<Value> = Vec::new();
    let start = Instant::now();
    while !got.iter().any(|e| e["type"] == "kv.expire") {
        assert!(start.elapsed() < DEADLINE, "no kv.expire; got {got:?}");
        let lines = tokio::time::timeout(DEADLINE, tail.next())
            .await
            .expect("tail line")
            .expect("tail");
        for l in lines {
            assert!(l.ends_with('\n'));
            got.push(serde_json::from_str(&l).expect("json line"));
        }
    }
    let got: Vec<&Value> = got
        .iter()
        .filter(|e| {
            !e["keys"].as_array().is_some_and(|k| {
                k.iter()
                    .any(|k| k.as_str().is_some_and(|k| k.starts_with("warm")))
            })
        })
        .collect();
    let summary: Vec<(String, Vec<String>)> = got
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["keys"]
                    .as_array()
                    .map(|k| {
                        k.iter()
                            .map(|k| k.as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect();
    let s = |t: &str, k: &[&str]| (t.to_string(), k.iter().map(|k| k.to_string()).collect());
    assert_eq!(
        summary,
        vec![
            s("kv.write", &["t", "t/a"]),
            s("kv.delete", &["t/a"]),
            s("kv.batch", &["t/b", "t/c"]),
            s("kv.batch", &["t/b", "t/d"]),
            s("kv.write", &["t/e"]),
            s("kv.expire", &["t/e"]),
        ]
    );
    assert_eq!(got[0]["value_bytes"].as_u64(), Some(5));

    // Raft events are in the recent ring (and the spool), not in a kv.* tail.
    node.snapshot_now().await.expect("snapshot");
    wait_for("raft.snapshot_created", || {
        node.hooks()
            .recent()
            .iter()
            .any(|e| e.kind == "raft.snapshot_created")
    })
    .await;
    let recent = node.hooks().recent();
    for kind in [
        "cluster.membership_change",
        "raft.leader_change",
        "kv.write",
    ] {
        assert!(
            recent.iter().any(|e| e.kind == kind),
            "no {kind} in {recent:?}"
        );
    }
    // Remote readers see the same ring.
    let remote = client.hook_recent().await.expect("hook_recent");
    assert_eq!(remote.events.len(), node.hooks().recent().len());
    // A bad pattern is refused with a reason.
    let mut bad = client.hook_tail("kv.>.x").await.expect("stream");
    let e = bad.next().await.expect_err("bad pattern");
    assert_eq!(e.kind, aspen::error::ErrorKind::InvalidInput);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_hooks_tail_prints_events_of_another_nodes_writes() {
    let cluster = Cluster::start(2);
    cluster.wait_leader(None).await;
    let c = cluster.client_of(0);
    let out = cluster.dir.path().join("tail.out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aspen"))
        .args(["--endpoints", &cluster.nodes[1].addr])
        .args(["--token-file", common::path_str(&cluster.token_file)])
        .args(["hooks", "tail", "--type", "kv.*", "--count", "1"])
        .stdout(std::fs::File::create(&out).expect("out file"))
        .spawn()
        .expect("aspen hooks tail");
    // The stream starts when node 2 registers it: write until the tail has its event.
    let start = Instant::now();
    let mut n = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(start.elapsed() < DEADLINE, "hooks tail printed nothing");
        n += 1;
        c.write_one(put(&format!("cli/{n}"), "v"))
            .await
            .expect("put");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("output");
    assert_eq!(text.lines().count(), 1, "{text}");
    let e: Value = serde_json::from_str(text.trim_end()).expect("json");
    assert_eq!(e["type"], "kv.write");
    assert_eq!(e["node"].as_u64(), Some(2));
    assert!(
        e["keys"].as_array().is_some_and(|k| k
            .iter()
            .any(|k| k.as_str().is_some_and(|k| k.starts_with("cli/")))),
        "{e}"
    );
    // A bad pattern is refused before connecting, with a reason.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_aspen"))
        .args(["--endpoints", &cluster.nodes[1].addr])
        .args(["--token-file", common::path_str(&cluster.token_file)])
        .args(["hooks", "tail", "--type", "kv.>.x"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'>'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_fire_created_on_the_builder_and_installed_on_a_node_that_receives_one() {
    let mut cluster = Cluster::start(2);
    let leader = cluster.wait_leader(None).await;
    let client = cluster.client_of(leader);
    for i in 0..5 {
        client
            .write_one(put(&format!("s/{i}"), "v"))
            .await
            .expect("put");
    }
    // Snapshot and purge the log on the leader: a new node can only get a snapshot.
    client.snapshot().await.expect("snapshot");
    let status = cluster.status(leader).await.expect("status");
    let snap = status.snapshot_index.expect("snapshot index");
    let leader_spool = cluster.nodes[leader].data_dir.join("hooks");
    wait_for("raft.snapshot_created on the leader", || {
        spool_events(&leader_spool)
            .iter()
            .any(|e| e["type"] == "raft.snapshot_created" && e["index"].as_u64() == Some(snap))
    })
    .await;
    assert!(leader_spool
        .join("raft.snapshot_created")
        .join(format!("{snap}.json"))
        .exists());

    let new = cluster.add_node(&[]);
    client
        .add_learner(cluster.nodes[new].id, cluster.nodes[new].addr.clone())
        .await
        .expect("add learner");
    let spool = cluster.nodes[new].data_dir.join("hooks");
    wait_for("raft.snapshot_installed on the new node", || {
        spool_events(&spool)
            .iter()
            .any(|e| e["type"] == "raft.snapshot_installed")
    })
    .await;
    let events = spool_events(&spool);
    let installed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "raft.snapshot_installed")
        .collect();
    assert_eq!(installed.len(), 1, "{events:?}");
    assert!(installed[0]["index"].as_u64() >= Some(snap));
    // What the snapshot covered is not replayed as kv events on the new node.
    assert!(of_type(&events, "kv.write", "s/0").is_empty(), "{events:?}");
    // Changes after it are.
    client.write_one(put("s/after", "v")).await.expect("put");
    wait_for("s/after on the new node", || {
        !of_type(&spool_events(&spool), "kv.write", "s/after").is_empty()
    })
    .await;
}
