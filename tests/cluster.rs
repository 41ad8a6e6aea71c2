//! Multi-node behaviour with real processes on loopback: election, replication, leader
//! failure, follower catch-up, learner via snapshot, and whole-cluster kill -9.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aspen::kv::{Command, PutOp, ReadQuery, ReadResult, WriteResult};
use aspen::net::proto::Consistency;
use common::*;

async fn put(c: &aspen::client::Client, key: &str, value: &str) -> WriteResult {
    c.write_one(Command::Put(PutOp::file(key, value.as_bytes().to_vec())))
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"))
}

/// Writes from `writers` concurrent tasks; a writer stops at its first failed put. Returns
/// the keys whose puts were acknowledged (and their values).
async fn write_load(
    c: Arc<aspen::client::Client>,
    writers: usize,
    per_writer: usize,
    tag: &str,
) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = c.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_writer {
                let key = format!("load/{tag}/{w}/{i}");
                let value = format!("{tag}-{w}-{i}");
                match c
                    .write_one(Command::Put(PutOp::file(
                        key.clone(),
                        value.clone().into_bytes(),
                    )))
                    .await
                {
                    Ok(_) => acked.push((key, value)),
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer task"));
    }
    all
}

async fn assert_all_present(c: &aspen::client::Client, acked: &[(String, String)]) {
    for (k, v) in acked {
        let got = get(c, k, Consistency::Linearizable).await;
        assert_eq!(
            got.as_deref(),
            Some(v.as_bytes()),
            "acknowledged write {k} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_survive_leader_kill() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(None).await;
    let client = Arc::new(cluster.client());

    let acked = write_load(client.clone(), 4, 50, "a").await;
    assert_eq!(
        acked.len(),
        200,
        "all writes succeed with a healthy cluster"
    );
    let rev = match client
        .read(ReadQuery::Revision, Consistency::Linearizable)
        .await
        .expect("revision")
    {
        ReadResult::Revision(r) => r,
        other => panic!("{other:?}"),
    };
    // Every node applies everything (replication).
    for i in 0..3 {
        cluster.wait_revision(i, rev).await;
        let c = cluster.client_of(i);
        for (k, v) in acked.iter().step_by(17) {
            assert_eq!(
                get(&c, k, Consistency::Local).await.as_deref(),
                Some(v.as_bytes())
            );
        }
    }

    // Kill the leader while writes are running.
    let load = tokio::spawn(write_load(client.clone(), 4, 60, "b"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed_at = Instant::now();
    cluster.kill(leader);
    let new_leader = cluster.wait_leader(Some(leader)).await;
    let failover = killed_at.elapsed();
    assert_ne!(new_leader, leader);
    eprintln!("new leader (node {}) after {failover:?}", new_leader + 1);
    assert!(
        failover < Duration::from_secs(30),
        "failover took {failover:?}"
    );

    // Writers that hit the failover stop; the rest finish.
    let acked_b = load.await.expect("load");
    put(&client, "after/failover", "yes").await;
    assert_all_present(&client, &acked).await;
    assert_all_present(&client, &acked_b).await;
    assert_eq!(
        get(&client, "after/failover", Consistency::Linearizable)
            .await
            .as_deref(),
        Some(&b"yes"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(None).await;
    let follower = (leader + 1) % 3;
    let client = Arc::new(cluster.client_of(leader));
    put(&client, "before", "1").await;
    cluster.kill(follower);
    let acked = write_load(client.clone(), 2, 100, "c").await;
    assert_eq!(acked.len(), 200, "two of three nodes are a quorum");
    let rev = match client
        .read(ReadQuery::Revision, Consistency::Linearizable)
        .await
        .expect("rev")
    {
        ReadResult::Revision(r) => r,
        other => panic!("{other:?}"),
    };
    cluster.restart(follower);
    cluster.wait_revision(follower, rev).await;
    let fc = cluster.client_of(follower);
    for (k, v) in &acked {
        assert_eq!(
            get(&fc, k, Consistency::Local).await.as_deref(),
            Some(v.as_bytes()),
            "{k} missing on restarted follower"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_added_after_compaction_receives_a_snapshot_and_is_promoted() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(None).await;
    let client = Arc::new(cluster.client_of(leader));
    let acked = write_load(client.clone(), 4, 50, "d").await;
    // Snapshot and purge the log on the leader, so a new node cannot be sent log entries.
    client.snapshot().await.expect("snapshot");
    let status = cluster.status(leader).await.expect("status");
    assert!(status.snapshot_index.is_some(), "leader has a snapshot");

    let new = cluster.add_node(&[]);
    let new_id = cluster.nodes[new].id;
    client
        .add_learner(new_id, cluster.nodes[new].addr.clone())
        .await
        .expect("add learner");
    let rev = status.revision;
    cluster.wait_revision(new, rev).await;
    let learner = cluster.status(new).await.expect("learner status");
    assert_eq!(learner.role, "learner");
    assert!(
        learner.snapshot_index.is_some(),
        "the learner was brought up by a snapshot: {learner:?}"
    );
    let lc = cluster.client_of(new);
    for (k, v) in &acked {
        assert_eq!(
            get(&lc, k, Consistency::Local).await.as_deref(),
            Some(v.as_bytes())
        );
    }
    client
        .change_membership(BTreeSet::from([new_id]), BTreeSet::new())
        .await
        .expect("promote");
    let s = cluster.status(leader).await.expect("status");
    assert!(s.members.iter().any(|m| m.id == new_id && m.voter), "{s:?}");

    // Remove it again: the cluster keeps working with its three original voters.
    client
        .change_membership(BTreeSet::new(), BTreeSet::from([new_id]))
        .await
        .expect("remove");
    let s = cluster.status(leader).await.expect("status");
    assert!(!s.members.iter().any(|m| m.id == new_id), "{s:?}");
    put(&client, "after/remove", "ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_kill9_and_restart_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    cluster.wait_leader(None).await;
    let client = Arc::new(cluster.client());
    let load = tokio::spawn(write_load(client.clone(), 8, 80, "e"));
    // Kill everything mid-load, with no warning.
    let start = Instant::now();
    loop {
        let rev = match client.read(ReadQuery::Revision, Consistency::Local).await {
            Ok(ReadResult::Revision(r)) => r,
            _ => 0,
        };
        if rev >= 100 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "load never got going\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..3 {
        cluster.kill(i);
    }
    let acked = load.await.expect("load");
    assert!(
        acked.len() >= 100,
        "at least the writes seen applied were acknowledged: {}",
        acked.len()
    );
    for i in 0..3 {
        cluster.spawn(i, &[]);
    }
    cluster.wait_leader(None).await;
    let client = cluster.client();
    assert_all_present(&client, &acked).await;
    eprintln!(
        "{} acknowledged writes all present after kill -9 of every node",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_old_leader_never_serves_stale_linearizable_reads() {
    let cluster = Cluster::start(3);
    let old = cluster.wait_leader(None).await;
    let all = cluster.client();
    put(&all, "k", "old").await;
    // Freeze the leader long past the election timeout; the others elect a new one.
    cluster.pause(old, true);
    let new = cluster.wait_leader(Some(old)).await;
    let nc = cluster.client_of(new);
    put(&nc, "k", "new").await;
    // Thaw it: it still believes it leads until it hears otherwise. Its lease is long
    // gone, so a linearizable read through it must see the new value (never "old").
    cluster.pause(old, false);
    let oc = cluster.client_of(old);
    for _ in 0..20 {
        let got = get(&oc, "k", Consistency::Linearizable).await;
        assert_eq!(
            got.as_deref(),
            Some(&b"new"[..]),
            "stale read from a deposed leader"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_stops_serving_linearizable_reads() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(None).await;
    let lc = cluster.client_of(leader);
    put(&lc, "k", "v").await;
    for i in 0..3 {
        if i != leader {
            cluster.kill(i);
        }
    }
    // Reads may succeed for at most the lease; after that every one fails.
    let start = Instant::now();
    loop {
        let r = lc
            .read(
                ReadQuery::Get { key: "k".into() },
                Consistency::Linearizable,
            )
            .await;
        if r.is_err() {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "a leader without a quorum kept serving linearizable reads"
        );
    }
    eprintln!(
        "linearizable reads stopped {:?} after the quorum was lost",
        start.elapsed()
    );
    assert!(lc
        .read(
            ReadQuery::Get { key: "k".into() },
            Consistency::Linearizable
        )
        .await
        .is_err());
    // Local reads still answer.
    assert_eq!(
        get(&lc, "k", Consistency::Local).await.as_deref(),
        Some(&b"v"[..])
    );
}
