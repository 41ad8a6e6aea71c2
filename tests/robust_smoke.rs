//! The harness's cluster behind its proxies: clients fail over past a dead node.

use std::time::{Duration, Instant};

use aspen::client::Client;
use aspen::kv::{Command, PutOp, ReadQuery};
use aspen::net::proto::Consistency;
use aspen::robust::cluster::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reach_the_cluster_past_a_dead_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aspen = std::path::PathBuf::from(env!("CARGO_BIN_EXE_aspen"));
    let mut c = Cluster::start(3, dir.path(), &aspen)
        .await
        .expect("cluster");
    c.wait_healthy(Duration::from_secs(60))
        .await
        .expect("healthy");
    let client = c.client().expect("client");
    client
        .write_one(Command::Put(PutOp::file("a", b"1".to_vec())))
        .await
        .expect("put before");
    c.kill(0);
    c.wait_healthy(Duration::from_secs(60))
        .await
        .expect("healthy without node 1");
    for i in 0..20 {
        let r = client
            .write_one(Command::Put(PutOp::file("a", format!("{i}").into_bytes())))
            .await;
        assert!(r.is_ok() || i < 3, "put {i} after the kill: {r:?}");
    }
    // A partition of node 2 from the others: the rest keep working, and a client that
    // reaches node 2 first moves on to a node that can answer.
    c.links.partition(&[2], &[1, 3]);
    c.restart(0).expect("restart");
    let order = [1usize, 0, 2];
    let endpoints = order.iter().map(|&i| c.nodes[i].public.clone()).collect();
    let partitioned_first = Client::new(endpoints, c.token.clone()).expect("client");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match partitioned_first
            .read(ReadQuery::Revision, Consistency::Linearizable)
            .await
        {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no linearizable read past the partitioned node: {e:?}"
            ),
        }
    }
    c.wait_healthy(Duration::from_secs(60))
        .await
        .expect("healthy");
    c.links.heal();
}
