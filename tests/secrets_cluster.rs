//! Secrets on a real 3-node cluster of `aspen node` processes sharing one age identity:
//! concurrent cas writes to one secret (exactly one succeeds per expected version), and
//! the at-rest check: plaintext secrets written through the CLI, a snapshot on every
//! node, a restart of the whole cluster, then every byte of every file under the data
//! dirs and of the node logs is scanned for the plaintexts: zero hits. The same scan
//! must find a plain KV value written in the same run, so it can fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aspen::client::Client;
use aspen::error::{Error, ErrorKind};
use aspen::net::proto::Consistency;
use aspen::secrets::*;
use common::{Cluster, DEADLINE};

mod common;

fn cluster_with_identity() -> (Cluster, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("keys.txt");
    Keyring::generate_file(&key).expect("identity");
    let args = vec!["--age-identity".to_string(), common::path_str(&key).into()];
    (Cluster::start_with(3, dir, args), key)
}

async fn put(c: &Client, path: &str, value: &[u8], cas: Option<u64>) -> Result<u64, Error> {
    let req = SecretRequest::Put {
        path: path.into(),
        value: value.to_vec(),
        cas,
    };
    match c.secret(req).await? {
        SecretReply::Outcome(SecretOutcome::Written { version }) => Ok(version),
        other => panic!("unexpected {other:?}"),
    }
}

async fn current_version(c: &Client, path: &str) -> u64 {
    let req = SecretRequest::Query {
        query: SecretQuery::Metadata { path: path.into() },
        consistency: Consistency::Linearizable,
    };
    match c.secret(req).await.expect("metadata") {
        SecretReply::Answer(SecretAnswer::Metadata(Some(m))) => m.current_version,
        other => panic!("unexpected {other:?}"),
    }
}

/// Retries while the cluster has no leader yet; other outcomes return.
async fn put_retrying(
    c: &Client,
    path: &str,
    value: &[u8],
    cas: Option<u64>,
) -> Result<u64, Error> {
    let start = Instant::now();
    loop {
        match put(c, path, value, cas).await {
            Err(e)
                if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::NotLeader)
                    && start.elapsed() < DEADLINE =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_writes_one_winner_per_expected_version() {
    let (cluster, _key) = cluster_with_identity();
    cluster.wait_leader(None).await;
    let first = cluster.client();
    assert_eq!(
        put_retrying(&first, "race", b"v1", Some(0)).await.unwrap(),
        1
    );
    // Rounds of 6 writers spread over the 3 nodes (followers forward to the leader),
    // all expecting the same current version.
    const ROUNDS: u64 = 5;
    const WRITERS: usize = 6;
    for round in 0..ROUNDS {
        let expected = round + 1;
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let c = cluster.client_of(w % 3);
            tasks.push(tokio::spawn(async move {
                let value = format!("round{round}-writer{w}");
                put(&c, "race", value.as_bytes(), Some(expected)).await
            }));
        }
        let mut winners = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(v) => {
                    assert_eq!(v, expected + 1);
                    winners += 1;
                }
                Err(e) => assert_eq!(e.kind, ErrorKind::CompareFailed, "round {round}: {e}"),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one writer wins");
        for i in 0..3 {
            assert_eq!(
                current_version(&cluster.client_of(i), "race").await,
                expected + 1
            );
        }
    }
    // Every node decrypts with the shared identity.
    for i in 0..3 {
        let req = SecretRequest::Get {
            path: "race".into(),
            version: None,
            consistency: Consistency::Linearizable,
        };
        match cluster.client_of(i).secret(req).await.unwrap() {
            SecretReply::Value(v) => {
                assert_eq!(v.version, ROUNDS + 1);
                assert!(v
                    .data
                    .starts_with(format!("round{}", ROUNDS - 1).as_bytes()));
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Runs the aspen CLI against the cluster, with `stdin` as its input.
fn cli(cluster: &Cluster, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aspen"))
        .args(["--endpoints", &endpoints.join(",")])
        .args(["--token-file", common::path_str(&cluster.token_file)])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aspen");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(bytes) = stdin {
            input.write_all(bytes).expect("write stdin");
        }
    }
    let out = child.wait_with_output().expect("aspen output");
    assert!(
        out.status.success(),
        "aspen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every regular file below `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        let t = e.file_type().expect("file type");
        if t.is_dir() {
            files(&p, out);
        } else if t.is_file() {
            out.push(p);
        }
    }
}

/// Files (under `root`) whose bytes contain `needle`.
fn holders(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(root, &mut all);
    all.into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_plaintext_secret_in_any_file_after_snapshot_and_restart() {
    let (mut cluster, _key) = cluster_with_identity();
    cluster.wait_leader(None).await;
    let tag = format!("{:016x}", rand_u64());
    let secret_stdin = format!("PLAINTEXT-stdin-{tag}");
    let secret_arg = format!("PLAINTEXT-arg-{tag}");
    let secret_old = format!("PLAINTEXT-old-version-{tag}");
    let canary = format!("CANARY-plain-kv-{tag}");

    cli(
        &cluster,
        &["secrets", "kv", "put", "app/db/password", "-"],
        Some(secret_old.as_bytes()),
    );
    cli(
        &cluster,
        &["secrets", "kv", "put", "app/db/password"],
        Some(secret_stdin.as_bytes()),
    );
    cli(
        &cluster,
        &["secrets", "kv", "put", "app/api/token", &secret_arg],
        None,
    );
    cli(
        &cluster,
        &[
            "secrets",
            "kv",
            "metadata",
            "put",
            "app/api/token",
            "--custom",
            "owner=ops",
        ],
        None,
    );
    cli(&cluster, &["kv", "put", "plain/canary", &canary], None);
    // Read back through the CLI from every node.
    for i in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_aspen"))
            .args(["--endpoints", &cluster.nodes[i].addr])
            .args(["--token-file", common::path_str(&cluster.token_file)])
            .args(["secrets", "kv", "get", "app/db/password"])
            .output()
            .expect("aspen get");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, secret_stdin.as_bytes());
    }
    let json = cli(
        &cluster,
        &[
            "-w",
            "json",
            "secrets",
            "kv",
            "get",
            "app/db/password",
            "--version",
            "1",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["value"], secret_old.as_str());

    // A snapshot on every node (the log is purged up to it), then a full restart.
    for i in 0..3 {
        let start = Instant::now();
        loop {
            match cluster.client_of(i).snapshot().await {
                Ok(()) => break,
                Err(e) => assert!(
                    start.elapsed() < DEADLINE,
                    "snapshot on node {}: {e}",
                    i + 1
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let s = cluster.status(i).await.expect("status");
        assert!(s.snapshot_index.is_some(), "node {} has a snapshot", i + 1);
    }
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.spawn(i, &[]);
    }
    cluster.wait_leader(None).await;
    let after = cli(&cluster, &["secrets", "kv", "get", "app/api/token"], None);
    assert_eq!(
        after,
        secret_arg.as_bytes(),
        "the secret survived the restart"
    );
    let ls = cli(&cluster, &["secrets", "kv", "ls", "app"], None);
    assert_eq!(
        String::from_utf8_lossy(&ls),
        "app/api/token\napp/db/password\n"
    );
    // Let the restarted nodes write whatever they write at start.
    for i in 0..3 {
        cluster.wait_revision(i, 1).await;
    }

    let root = cluster.dir.path().to_path_buf();
    let mut scanned = Vec::new();
    files(&root, &mut scanned);
    let bytes: u64 = scanned
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    eprintln!("scanned {} files, {bytes} bytes", scanned.len());
    assert!(
        scanned
            .iter()
            .any(|p| p.to_string_lossy().contains("snapshot")),
        "snapshot files are among the scanned: {scanned:?}"
    );
    // The scanner works: the plain KV value is on disk.
    let found = holders(&root, canary.as_bytes());
    eprintln!("plain KV value found in {found:?}");
    assert!(
        !found.is_empty(),
        "the scanner must find the plain KV value somewhere: {scanned:?}"
    );
    let in_snapshot = |hits: &[PathBuf]| {
        hits.iter()
            .any(|p| p.to_string_lossy().contains("snapshots"))
    };
    assert!(
        in_snapshot(&found),
        "the plain KV value is in a snapshot: {found:?}"
    );
    // The secrets are there, as age ciphertext, snapshots included.
    let sealed = holders(&root, aspen::secrets::apply::AGE_MAGIC);
    assert!(
        in_snapshot(&sealed),
        "age ciphertext in the snapshots: {sealed:?}"
    );
    for s in [&secret_stdin, &secret_arg, &secret_old] {
        let hits = holders(&root, s.as_bytes());
        assert!(hits.is_empty(), "plaintext {s:?} found in {hits:?}");
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}
