//! Bad input over the wire and through the API: each gets a clear error, the node keeps
//! serving, nothing panics.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aspen::error::ErrorKind;
use aspen::kv::{Command, PutOp};
use aspen::net::proto::{Consistency, Request, Role};
use aspen::net::rpc::RpcConn;
use common::*;

/// Connects raw, reads the server hello frame, returns the stream.
fn raw(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("hello length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("hello body");
    s
}

/// True when the server closed the connection (EOF or reset) instead of answering.
fn closed_by_server(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a refusal frame may come first
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

async fn still_serves(cluster: &Cluster) {
    let c = cluster.client();
    c.write_one(Command::Put(PutOp::file("alive", b"yes".to_vec())))
        .await
        .expect("node still serves writes");
    assert_eq!(
        get(&c, "alive", Consistency::Linearizable).await.as_deref(),
        Some(&b"yes"[..])
    );
    let mut cluster_nodes_alive = true;
    // The process is still running.
    for n in &cluster.nodes {
        if n.child.is_none() {
            cluster_nodes_alive = false;
        }
    }
    assert!(cluster_nodes_alive);
    assert!(
        !cluster.logs().contains("panicked"),
        "a node panicked:\n{}",
        cluster.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_connections_are_refused_and_the_node_keeps_serving() {
    let cluster = Cluster::start(1);
    cluster.wait_leader(None).await;
    let addr = cluster.nodes[0].addr.clone();

    // An oversized frame header.
    let mut s = raw(&addr);
    s.write_all(&[0xff, 0xff, 0xff, 0xf0, 1]).expect("write");
    assert!(closed_by_server(s), "oversized frame not refused");

    // Garbage bytes.
    let mut s = raw(&addr);
    s.write_all(&[
        0, 0, 0, 9, 1, 0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x00, 0xff,
    ])
    .expect("write");
    assert!(closed_by_server(s), "garbage not refused");

    // A frame of another protocol version.
    let mut s = raw(&addr);
    s.write_all(&[0, 0, 0, 3, 99, 0, 0]).expect("write");
    assert!(closed_by_server(s), "wrong protocol version not refused");

    // A silent client is dropped after the handshake timeout, not kept forever.
    let s = raw(&addr);
    assert!(closed_by_server(s), "a silent connection must time out");

    // Wrong cluster secret and wrong client token.
    let e = RpcConn::connect(
        &addr,
        Role::Peer { node_id: 9 },
        b"not-the-cluster-secret-at-all",
    )
    .await
    .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    let e = RpcConn::connect(&addr, Role::Client, b"not-the-client-token-at-all!")
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");

    // A client may not speak raft.
    let conn = RpcConn::connect(&addr, Role::Client, TOKEN.as_bytes())
        .await
        .expect("client connects");
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(99, 9), None);
    let resp = conn
        .call(&Request::Vote(vote), Duration::from_secs(10))
        .await
        .expect("answer");
    assert!(
        matches!(resp, aspen::net::proto::Response::Failed(ref e) if e.kind == ErrorKind::PermissionDenied),
        "{resp:?}"
    );

    tokio::time::sleep(Duration::from_millis(100)).await; // let the log lines land
    let logs = cluster.logs();
    for reason in [
        "exceeds",
        "protocol version 99",
        "wrong cluster secret",
        "wrong client token",
    ] {
        assert!(
            logs.contains(reason),
            "no logged reason {reason:?} in:\n{logs}"
        );
    }
    still_serves(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_values_get_clear_errors() {
    let cluster = Cluster::start(1);
    cluster.wait_leader(None).await;
    let c = cluster.client();
    let put = |k: String, v: Vec<u8>| Command::Put(PutOp::file(k, v));
    let cases: Vec<(Command, ErrorKind)> = vec![
        (put("x".repeat(5000), b"v".to_vec()), ErrorKind::NameTooLong),
        (
            put(format!("a/{}", "n".repeat(256)), b"v".to_vec()),
            ErrorKind::NameTooLong,
        ),
        (
            put("big".into(), vec![0u8; 1024 * 1024 + 1]),
            ErrorKind::TooBig,
        ),
        (put("a//b".into(), b"v".to_vec()), ErrorKind::InvalidInput),
        (put("../etc".into(), b"v".to_vec()), ErrorKind::InvalidInput),
        (put("".into(), b"v".to_vec()), ErrorKind::InvalidInput),
        (
            put("nul\0byte".into(), b"v".to_vec()),
            ErrorKind::InvalidInput,
        ),
        (
            Command::ExpireLeases { ids: vec![1] },
            ErrorKind::PermissionDenied,
        ),
        (
            Command::LeaseGrant { ttl_secs: 0, id: 0 },
            ErrorKind::InvalidInput,
        ),
    ];
    for (cmd, kind) in cases {
        let name = format!("{:?}", cmd).chars().take(60).collect::<String>();
        let e = c
            .write_one(cmd)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} accepted"));
        assert_eq!(e.kind, kind, "{name}: {e}");
        assert!(!e.message.is_empty());
    }
    // A file where a directory is needed, and the reverse.
    c.write_one(put("f".into(), b"1".to_vec()))
        .await
        .expect("put f");
    let e = c
        .write_one(put("f/child".into(), b"1".to_vec()))
        .await
        .expect_err("child of a file");
    assert_eq!(e.kind, ErrorKind::NotDir, "{e}");
    // Largest allowed value works, binary-safe.
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    c.write_one(put("max".into(), value.clone()))
        .await
        .expect("1 MiB value");
    assert_eq!(get(&c, "max", Consistency::Linearizable).await, Some(value));
    // A request bigger than a frame is refused before it leaves the client.
    let e = c
        .write_one(put("huge".into(), vec![1u8; 20 * 1024 * 1024]))
        .await
        .expect_err("huge refused");
    assert_eq!(e.kind, ErrorKind::TooBig, "{e}");
    still_serves(&cluster).await;
}
