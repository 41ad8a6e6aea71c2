//! Secrets (KV v2) semantics through a real single node in this process: versions, cas
//! checked at apply, soft delete / undelete / destroy, max_versions, delete_version_after,
//! custom metadata, listing, recipients, and bad input (wrong or missing identity,
//! malformed requests) giving clear errors with nothing half-written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aspen::error::{Error, ErrorKind};
use aspen::kv::{Command, WriteResult};
use aspen::net::auth::Keys;
use aspen::net::proto::Consistency;
use aspen::node::{Bootstrap, Node, NodeConfig};
use aspen::secrets::*;

const DEADLINE: Duration = Duration::from_secs(60);

async fn start(dir: &Path, identity: Option<PathBuf>) -> Arc<Node> {
    let node = Node::start(NodeConfig {
        id: 1,
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        advertise: None,
        keys: Keys {
            cluster_secret: b"secrets-test-secret-0123456789abcdef".to_vec(),
            client_token: b"secrets-test-token-0123456789abcdef".to_vec(),
        },
        max_value_bytes: 1024 * 1024,
        bootstrap: Bootstrap::Init(BTreeMap::new()),
        hooks: Default::default(),
        age_identity: identity,
    })
    .await
    .expect("node starts");
    let t = Instant::now();
    while node.raft.metrics().borrow().current_leader != Some(1) {
        assert!(t.elapsed() < DEADLINE, "single node never led");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node
}

struct Fixture {
    dir: tempfile::TempDir,
    key: PathBuf,
    node: Arc<Node>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys.txt");
    Keyring::generate_file(&key).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let node = start(&data, Some(key.clone())).await;
    Fixture { dir, key, node }
}

async fn put(n: &Node, path: &str, value: &[u8], cas: Option<u64>) -> Result<u64, Error> {
    let req = SecretRequest::Put {
        path: path.into(),
        value: value.to_vec(),
        cas,
    };
    match n.secret(1, req).await? {
        SecretReply::Outcome(SecretOutcome::Written { version }) => Ok(version),
        other => panic!("unexpected {other:?}"),
    }
}

async fn get(n: &Node, path: &str, version: Option<u64>) -> Result<(u64, Vec<u8>), Error> {
    let req = SecretRequest::Get {
        path: path.into(),
        version,
        consistency: Consistency::Linearizable,
    };
    match n.secret(1, req).await? {
        SecretReply::Value(v) => Ok((v.version, v.data)),
        other => panic!("unexpected {other:?}"),
    }
}

async fn cmd(n: &Node, c: SecretCommand) -> Result<SecretOutcome, Error> {
    match n.secret(1, SecretRequest::Command(c)).await? {
        SecretReply::Outcome(o) => Ok(o),
        other => panic!("unexpected {other:?}"),
    }
}

async fn ask(n: &Node, q: SecretQuery) -> Result<SecretAnswer, Error> {
    let req = SecretRequest::Query {
        query: q,
        consistency: Consistency::Linearizable,
    };
    match n.secret(1, req).await? {
        SecretReply::Answer(a) => Ok(a),
        other => panic!("unexpected {other:?}"),
    }
}

async fn meta(n: &Node, path: &str) -> SecretMetadata {
    match ask(n, SecretQuery::Metadata { path: path.into() })
        .await
        .unwrap()
    {
        SecretAnswer::Metadata(Some(m)) => m,
        other => panic!("no metadata for {path}: {other:?}"),
    }
}

fn versions(o: SecretOutcome) -> Vec<u64> {
    match o {
        SecretOutcome::Changed { versions } => versions,
        other => panic!("unexpected {other:?}"),
    }
}

fn set_meta(path: &str, update: MetaUpdate) -> SecretCommand {
    SecretCommand::SetMeta {
        path: path.into(),
        update,
    }
}

#[tokio::test]
async fn every_write_makes_a_version_and_reads_pick_latest_or_n() {
    let f = fixture().await;
    let n = &f.node;
    assert_eq!(put(n, "app/db/password", b"one", None).await.unwrap(), 1);
    assert_eq!(put(n, "app/db/password", b"two", None).await.unwrap(), 2);
    // Binary-safe values, the empty value included.
    let bin: Vec<u8> = (0..=255u8).collect();
    assert_eq!(put(n, "app/db/password", &bin, None).await.unwrap(), 3);
    assert_eq!(put(n, "app/empty", b"", None).await.unwrap(), 1);
    assert_eq!(get(n, "app/db/password", None).await.unwrap(), (3, bin));
    assert_eq!(
        get(n, "app/db/password", Some(1)).await.unwrap(),
        (1, b"one".to_vec())
    );
    assert_eq!(get(n, "app/empty", None).await.unwrap(), (1, vec![]));
    let e = get(n, "app/db/password", Some(9)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e = get(n, "nope", None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let m = meta(n, "app/db/password").await;
    assert_eq!((m.current_version, m.oldest_version), (3, 1));
    assert_eq!(m.max_versions, 10);
    assert_eq!(m.versions.len(), 3);
    // Listing: paths, never values; path semantics for the prefix.
    put(n, "apple", b"x", None).await.unwrap();
    match ask(
        n,
        SecretQuery::List {
            prefix: "app".into(),
            after: None,
            limit: 100,
        },
    )
    .await
    .unwrap()
    {
        SecretAnswer::Paths { paths, more } => {
            assert_eq!(paths, vec!["app/db/password", "app/empty"]);
            assert!(!more);
        }
        other => panic!("{other:?}"),
    }
    match ask(
        n,
        SecretQuery::List {
            prefix: "".into(),
            after: Some("app/db/password".into()),
            limit: 1,
        },
    )
    .await
    .unwrap()
    {
        SecretAnswer::Paths { paths, more } => {
            assert_eq!(paths, vec!["app/empty"]);
            assert!(more);
        }
        other => panic!("{other:?}"),
    }
    n.shutdown().await;
}

#[tokio::test]
async fn cas_is_checked_at_apply_and_cas_required_enforced() {
    let f = fixture().await;
    let n = &f.node;
    assert_eq!(put(n, "s", b"a", Some(0)).await.unwrap(), 1);
    let e = put(n, "s", b"b", Some(0)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::CompareFailed, "{e}");
    let e = put(n, "s", b"b", Some(5)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::CompareFailed, "{e}");
    assert_eq!(put(n, "s", b"b", Some(1)).await.unwrap(), 2);
    cmd(
        n,
        set_meta(
            "s",
            MetaUpdate {
                cas_required: Some(true),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    let e = put(n, "s", b"c", None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::CompareFailed, "{e}");
    assert!(e.message.contains("requires cas"), "{e}");
    // Nothing half-written by the refused writes.
    assert_eq!(meta(n, "s").await.current_version, 2);
    assert_eq!(get(n, "s", None).await.unwrap(), (2, b"b".to_vec()));
    assert_eq!(put(n, "s", b"c", Some(2)).await.unwrap(), 3);
    // Many concurrent writers expecting the same version: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let n = n.clone();
        tasks.push(tokio::spawn(async move {
            put(&n, "s", &[b'w', i], Some(3)).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => {
                assert_eq!(v, 4);
                won += 1;
            }
            Err(e) => assert_eq!(e.kind, ErrorKind::CompareFailed, "{e}"),
        }
    }
    assert_eq!(won, 1);
    n.shutdown().await;
}

#[tokio::test]
async fn soft_delete_undelete_and_destroy() {
    let f = fixture().await;
    let n = &f.node;
    for v in [b"v1", b"v2", b"v3"] {
        put(n, "d", v, None).await.unwrap();
    }
    // Delete the latest.
    let changed = cmd(
        n,
        SecretCommand::Delete {
            path: "d".into(),
            versions: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(versions(changed), vec![3]);
    let e = get(n, "d", None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("deleted"), "{e}");
    assert_eq!(get(n, "d", Some(2)).await.unwrap().1, b"v2");
    // Undelete restores it; versions not kept are skipped.
    let changed = cmd(
        n,
        SecretCommand::Undelete {
            path: "d".into(),
            versions: vec![3, 77],
        },
    )
    .await
    .unwrap();
    assert_eq!(versions(changed), vec![3]);
    assert_eq!(get(n, "d", None).await.unwrap(), (3, b"v3".to_vec()));
    // Destroy is for good: undelete cannot bring it back.
    let changed = cmd(
        n,
        SecretCommand::Destroy {
            path: "d".into(),
            versions: vec![1, 3],
        },
    )
    .await
    .unwrap();
    assert_eq!(versions(changed), vec![1, 3]);
    for v in [1, 3] {
        let e = get(n, "d", Some(v)).await.unwrap_err();
        assert!(e.message.contains("destroyed"), "{e}");
    }
    let changed = cmd(
        n,
        SecretCommand::Undelete {
            path: "d".into(),
            versions: vec![1],
        },
    )
    .await
    .unwrap();
    assert!(versions(changed).is_empty());
    let m = meta(n, "d").await;
    let states: Vec<(u64, bool, bool)> = m
        .versions
        .iter()
        .map(|v| (v.version, v.deleted_ns.is_some(), v.destroyed))
        .collect();
    assert_eq!(
        states,
        vec![(1, false, true), (2, false, false), (3, false, true)]
    );
    // The destroyed ciphertext is gone from the state (answers carry none).
    match ask(
        n,
        SecretQuery::Version {
            path: "d".into(),
            version: Some(1),
        },
    )
    .await
    .unwrap()
    {
        SecretAnswer::Version(Some(v)) => assert!(v.ciphertext.is_empty() && v.destroyed),
        other => panic!("{other:?}"),
    }
    // Metadata delete removes everything; the next write starts again at 1.
    let o = cmd(n, SecretCommand::DeleteAll { path: "d".into() })
        .await
        .unwrap();
    assert_eq!(o, SecretOutcome::Removed { versions: 3 });
    assert!(matches!(
        ask(n, SecretQuery::Metadata { path: "d".into() })
            .await
            .unwrap(),
        SecretAnswer::Metadata(None)
    ));
    assert_eq!(put(n, "d", b"again", None).await.unwrap(), 1);
    n.shutdown().await;
}

#[tokio::test]
async fn max_versions_prunes_the_oldest() {
    let f = fixture().await;
    let n = &f.node;
    for i in 1..=12u8 {
        put(n, "default", &[i], None).await.unwrap();
    }
    let m = meta(n, "default").await;
    assert_eq!((m.oldest_version, m.current_version), (3, 12));
    assert_eq!(m.versions.len(), 10);
    assert_eq!(
        get(n, "default", Some(2)).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(get(n, "default", Some(3)).await.unwrap().1, vec![3]);
    // Lowering max_versions prunes at once.
    cmd(
        n,
        set_meta(
            "default",
            MetaUpdate {
                max_versions: Some(2),
                custom: Some(vec![("owner".into(), "team-a".into())]),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    let m = meta(n, "default").await;
    assert_eq!((m.oldest_version, m.current_version), (11, 12));
    assert_eq!(m.custom, vec![("owner".to_string(), "team-a".to_string())]);
    put(n, "default", b"13", None).await.unwrap();
    let m = meta(n, "default").await;
    assert_eq!((m.oldest_version, m.current_version), (12, 13));
    // A max_versions over the ceiling is refused, nothing changes.
    let e = cmd(
        n,
        set_meta(
            "default",
            MetaUpdate {
                max_versions: Some(100_000),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert_eq!(meta(n, "default").await.max_versions, 2);
    n.shutdown().await;
}

#[tokio::test]
async fn delete_version_after_hides_old_versions_and_marks_them_at_the_next_write() {
    let f = fixture().await;
    let n = &f.node;
    cmd(
        n,
        set_meta(
            "short",
            MetaUpdate {
                delete_version_after_secs: Some(1),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    put(n, "short", b"fleeting", None).await.unwrap();
    // Waits for the clock (not for another task): the version expires one second after
    // its write; until then it reads.
    let t = Instant::now();
    loop {
        match get(n, "short", None).await {
            Ok((1, v)) => assert_eq!(v, b"fleeting"),
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::NotFound);
                assert!(e.message.contains("delete_version_after"), "{e}");
                break;
            }
        }
        assert!(t.elapsed() < DEADLINE, "version never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The next write marks it deleted in the state, at its expiry time.
    put(n, "short", b"next", None).await.unwrap();
    let m = meta(n, "short").await;
    let v1 = m.versions.iter().find(|v| v.version == 1).unwrap();
    let deleted = v1.deleted_ns.expect("version 1 marked deleted");
    assert_eq!(deleted, v1.created_ns + 1_000_000_000);
    assert_eq!(get(n, "short", None).await.unwrap().1, b"next");
    n.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_clearly_with_nothing_written() {
    let f = fixture().await;
    let n = &f.node;
    for bad in ["", "a//b", "a/../b", "x@1", "/"] {
        let e = put(n, bad, b"v", None).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    let big = vec![b'x'; aspen::limits::MAX_SECRET_VALUE_BYTES + 1];
    let e = put(n, "big", &big, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooBig, "{e}");
    let e = cmd(
        n,
        SecretCommand::SetRecipients {
            recipients: vec!["not-a-key".into()],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
    let e = cmd(
        n,
        SecretCommand::Destroy {
            path: "x".into(),
            versions: vec![],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
    let e = cmd(
        n,
        SecretCommand::Delete {
            path: "missing".into(),
            versions: vec![],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    // Values only enter through the encrypting put; not as commands, not as KV writes.
    let sealed = SecretCommand::Put {
        path: "raw".into(),
        ciphertext: b"age-encryption.org/v1\nnot really".to_vec(),
        cas: None,
    };
    let e = cmd(n, sealed.clone()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    let e = n.write_one(1, Command::Secret(sealed)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    let e = n
        .write_one(
            1,
            Command::Secret(SecretCommand::DeleteAll { path: "x".into() }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    match ask(
        n,
        SecretQuery::List {
            prefix: "".into(),
            after: None,
            limit: 10,
        },
    )
    .await
    .unwrap()
    {
        SecretAnswer::Paths { paths, .. } => assert!(paths.is_empty(), "{paths:?}"),
        other => panic!("{other:?}"),
    }
    // Secret commands make no KV revision.
    assert!(matches!(
        n.write_one(1, Command::Put(aspen::kv::PutOp::file("k", b"v".to_vec())))
            .await
            .unwrap(),
        WriteResult::Put { revision: 1, .. }
    ));
    n.shutdown().await;
}

#[tokio::test]
async fn a_node_without_the_identity_serves_metadata_and_refuses_values() {
    let f = fixture().await;
    let data = f.dir.path().join("data");
    put(&f.node, "db/pw", b"s3cr3t", None).await.unwrap();
    let own = f.node.age_recipient().expect("recipient");
    f.node.shutdown().await;
    drop(f.node);

    // Another identity: metadata yes, value no (PermissionDenied, EACCES in the mount).
    let other = f.dir.path().join("other.txt");
    Keyring::generate_file(&other).unwrap();
    let n = start(&data, Some(other.clone())).await;
    assert_eq!(meta(&n, "db/pw").await.current_version, 1);
    let e = get(&n, "db/pw", None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    assert!(e.message.contains("not a recipient"), "{e}");
    // Writes from here go to this node's own key while no recipient set exists, so
    // they stay readable here...
    put(&n, "db/pw", b"from-other", None).await.unwrap();
    assert_eq!(get(&n, "db/pw", None).await.unwrap().1, b"from-other");
    // ...and with a recipient set, to exactly that set.
    let theirs = n.age_recipient().unwrap();
    cmd(
        &n,
        SecretCommand::SetRecipients {
            recipients: vec![own.clone(), theirs],
        },
    )
    .await
    .unwrap();
    put(&n, "shared", b"both", None).await.unwrap();
    cmd(
        &n,
        SecretCommand::SetRecipients {
            recipients: vec![own],
        },
    )
    .await
    .unwrap();
    put(&n, "only-first", b"first", None).await.unwrap();
    assert_eq!(get(&n, "shared", None).await.unwrap().1, b"both");
    assert_eq!(
        get(&n, "only-first", None).await.unwrap_err().kind,
        ErrorKind::PermissionDenied
    );
    n.shutdown().await;
    drop(n);

    // No identity at all: metadata only, and a clear reason.
    let n = start(&data, None).await;
    let e = get(&n, "shared", None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    assert!(e.message.contains("no age identity"), "{e}");
    assert_eq!(meta(&n, "shared").await.current_version, 1);
    // It can still encrypt to the recipient set.
    put(&n, "only-first", b"again", None).await.unwrap();
    n.shutdown().await;
    drop(n);

    // The first identity reads what was encrypted to it.
    let n = start(&data, Some(f.key.clone())).await;
    assert_eq!(get(&n, "db/pw", Some(1)).await.unwrap().1, b"s3cr3t");
    assert_eq!(get(&n, "shared", None).await.unwrap().1, b"both");
    assert_eq!(get(&n, "only-first", None).await.unwrap().1, b"again");
    n.shutdown().await;
}

#[test]
fn identity_files_in_keys_txt_format_load_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keys.txt");
    let public = Keyring::generate_file(&p).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let k = Keyring::load(&p).unwrap();
    assert_eq!(k.recipient().unwrap(), public);
    // Never overwrites an existing identity.
    assert!(Keyring::generate_file(&p).is_err());
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "# created: now\nAGE-SECRET-KEY-1QQQQ\n").unwrap();
    let e = Keyring::load(&bad).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.message.contains("line 2"), "{e}");
    assert!(Keyring::load(&dir.path().join("missing")).is_err());
}

/// Figures, not a check: `cargo test --test secrets latency -- --ignored --nocapture`.
/// Sequential secret writes and reads next to plain KV puts and gets on one in-process
/// node (one raft commit with an fsync per write in both cases).
#[tokio::test]
#[ignore]
async fn latency_of_secret_writes_and_reads_next_to_kv() {
    use aspen::kv::{PutOp, ReadQuery};
    const N: usize = 300;
    let f = fixture().await;
    let n = &f.node;
    let value = vec![b'v'; 64];
    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }
    let mut kv_put = Vec::new();
    let mut s_put = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        n.write_one(1, Command::Put(PutOp::file(format!("k{i}"), value.clone())))
            .await
            .unwrap();
        kv_put.push(t.elapsed());
        let t = Instant::now();
        put(n, &format!("s{i}"), &value, None).await.unwrap();
        s_put.push(t.elapsed());
    }
    let mut kv_get = Vec::new();
    let mut s_get = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        n.read(
            ReadQuery::Get {
                key: format!("k{i}"),
            },
            Consistency::Linearizable,
            0,
        )
        .await
        .unwrap();
        kv_get.push(t.elapsed());
        let t = Instant::now();
        get(n, &format!("s{i}"), None).await.unwrap();
        s_get.push(t.elapsed());
    }
    eprintln!(
        "median of {N}: kv put {:?}, secret put {:?}, kv get {:?}, secret get {:?}",
        median(kv_put),
        median(s_put),
        median(kv_get),
        median(s_get)
    );
    n.shutdown().await;
}
