//! KV semantics through a real single node in this process: revisions, conditions,
//! transactions, directories, rename, listings, leases and watches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aspen::client::{Client, WatchItem};
use aspen::error::ErrorKind;
use aspen::kv::*;
use aspen::net::auth::Keys;
use aspen::net::proto::Consistency;
use aspen::node::{Bootstrap, Node, NodeConfig};

const TOKEN: &[u8] = b"kv-semantics-token-0123456789";

struct One {
    _dir: tempfile::TempDir,
    node: Arc<Node>,
}

async fn node() -> One {
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

async fn w(n: &Node, c: Command) -> Result<WriteResult, aspen::error::Error> {
    n.write_one(7, c).await
}

fn put(key: &str, v: &str) -> Command {
    Command::Put(PutOp::file(key, v.as_bytes().to_vec()))
}

async fn get(n: &Node, key: &str) -> Option<EntryRecord> {
    match n
        .read(
            ReadQuery::Get { key: key.into() },
            Consistency::Linearizable,
            0,
        )
        .await
        .expect("read")
    {
        ReadResult::Entry(e) => e,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_versions_and_conditions() {
    let one = node().await;
    let n = &one.node;
    let r1 = w(n, put("a", "1")).await.expect("put").revision();
    let r2 = w(n, put("a", "2")).await.expect("put").revision();
    assert_eq!(r2, r1 + 1);
    let a = get(n, "a").await.expect("a");
    assert_eq!((a.create_revision, a.mod_revision, a.version), (r1, r2, 2));

    // Failed conditions change nothing and do not bump the revision.
    let mut op = PutOp::file("a", b"3".to_vec());
    op.condition = PutCondition::ModRevision(r1);
    let e = w(n, Command::Put(op.clone()))
        .await
        .expect_err("stale mod_revision");
    assert_eq!(e.kind, ErrorKind::CompareFailed);
    op.condition = PutCondition::Version(1);
    assert_eq!(
        w(n, Command::Put(op.clone()))
            .await
            .expect_err("stale")
            .kind,
        ErrorKind::CompareFailed
    );
    op.condition = PutCondition::Value(b"nope".to_vec());
    assert_eq!(
        w(n, Command::Put(op.clone()))
            .await
            .expect_err("stale")
            .kind,
        ErrorKind::CompareFailed
    );
    op.condition = PutCondition::MustNotExist;
    assert_eq!(
        w(n, Command::Put(op.clone()))
            .await
            .expect_err("exists")
            .kind,
        ErrorKind::AlreadyExists
    );
    assert_eq!(n.revision().expect("rev"), r2);
    // Matching conditions succeed.
    op.condition = PutCondition::ModRevision(r2);
    let r3 = w(n, Command::Put(op.clone()))
        .await
        .expect("cas")
        .revision();
    op.condition = PutCondition::Value(b"3".to_vec());
    op.value = b"4".to_vec();
    w(n, Command::Put(op.clone())).await.expect("cas on value");
    assert_eq!(get(n, "a").await.expect("a").value, b"4");
    assert!(r3 > r2);

    // Binary values round-trip exactly.
    let bin: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    w(n, Command::Put(PutOp::file("bin", bin.clone())))
        .await
        .expect("binary");
    assert_eq!(get(n, "bin").await.expect("bin").value, bin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_atomic_and_take_one_revision() {
    let one = node().await;
    let n = &one.node;
    let r = w(n, put("cfg/x", "1")).await.expect("put").revision();
    let txn = Txn {
        compare: vec![Compare {
            key: "cfg/x".into(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(r),
        }],
        success: vec![
            TxnOp::Put(PutOp::file("cfg/x", b"2".to_vec())),
            TxnOp::Put(PutOp::file("cfg/y", b"2".to_vec())),
            TxnOp::Get {
                key: "cfg/x".into(),
            },
        ],
        failure: vec![TxnOp::Put(PutOp::file("cfg/failed", b"1".to_vec()))],
    };
    match w(n, Command::Txn(txn.clone())).await.expect("txn") {
        WriteResult::Txn {
            revision,
            succeeded,
            results,
        } => {
            assert!(succeeded);
            assert_eq!(revision, r + 1, "one revision for the whole transaction");
            assert!(matches!(&results[2], TxnOpResult::Get(Some(e)) if e.value == b"2"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(get(n, "cfg/y").await.expect("y").mod_revision, r + 1);
    // Same transaction again: the compare fails, the failure branch runs.
    match w(n, Command::Txn(txn)).await.expect("txn") {
        WriteResult::Txn { succeeded, .. } => assert!(!succeeded),
        other => panic!("{other:?}"),
    }
    assert!(get(n, "cfg/failed").await.is_some());
    // A transaction whose operation fails leaves nothing behind.
    let bad = Txn {
        compare: vec![],
        success: vec![
            TxnOp::Put(PutOp::file("cfg/partial", b"1".to_vec())),
            TxnOp::Put(PutOp::file("cfg/x/under-a-file", b"1".to_vec())),
        ],
        failure: vec![],
    };
    let before = n.revision().expect("rev");
    assert_eq!(
        w(n, Command::Txn(bad)).await.expect_err("fails").kind,
        ErrorKind::NotDir
    );
    assert!(
        get(n, "cfg/partial").await.is_none(),
        "a failed transaction applied part of itself"
    );
    assert_eq!(n.revision().expect("rev"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_rename_and_listing() {
    let one = node().await;
    let n = &one.node;
    w(n, put("d/a/1", "x")).await.expect("put");
    w(n, put("d/a/2", "y")).await.expect("put");
    assert_eq!(get(n, "d/a").await.expect("dir").kind, EntryKind::Dir);
    // rmdir of a non-empty dir.
    let e = w(
        n,
        Command::Delete {
            key: "d/a".into(),
            mode: DeleteMode::EmptyDir,
        },
    )
    .await
    .expect_err("not empty");
    assert_eq!(e.kind, ErrorKind::NotEmpty);
    // Directory rename moves the subtree in one command.
    w(
        n,
        Command::Rename {
            from: "d/a".into(),
            to: "d/b".into(),
            mode: RenameMode::Replace,
        },
    )
    .await
    .expect("rename dir");
    assert!(get(n, "d/a/1").await.is_none());
    assert_eq!(get(n, "d/b/2").await.expect("moved").value, b"y");
    // Into itself, onto a non-empty dir, NOREPLACE, EXCHANGE.
    let e = w(
        n,
        Command::Rename {
            from: "d/b".into(),
            to: "d/b/c".into(),
            mode: RenameMode::Replace,
        },
    )
    .await
    .expect_err("into itself");
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    w(n, put("d/c/keep", "k")).await.expect("put");
    let e = w(
        n,
        Command::Rename {
            from: "d/b".into(),
            to: "d/c".into(),
            mode: RenameMode::Replace,
        },
    )
    .await
    .expect_err("target not empty");
    assert_eq!(e.kind, ErrorKind::NotEmpty);
    let e = w(
        n,
        Command::Rename {
            from: "d/b".into(),
            to: "d/c".into(),
            mode: RenameMode::NoReplace,
        },
    )
    .await
    .expect_err("noreplace");
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    w(
        n,
        Command::Rename {
            from: "d/b".into(),
            to: "d/c".into(),
            mode: RenameMode::Exchange,
        },
    )
    .await
    .expect("exchange");
    assert_eq!(get(n, "d/b/keep").await.expect("swapped").value, b"k");
    assert_eq!(get(n, "d/c/1").await.expect("swapped").value, b"x");

    // Listing pages through thousands of children with no fixed cap.
    for chunk in 0..5 {
        let cmds: Vec<Command> = (0..500)
            .map(|i| put(&format!("many/{:05}", chunk * 500 + i), "v"))
            .collect();
        for r in n.write(1, cmds).await.expect("batch") {
            r.expect("put");
        }
    }
    let mut names = Vec::new();
    let mut after = None;
    loop {
        match n
            .read(
                ReadQuery::ListDir {
                    dir: "many".into(),
                    after: after.clone(),
                    limit: 700,
                },
                Consistency::Local,
                0,
            )
            .await
            .expect("ls")
        {
            ReadResult::Dir { entries, more } => {
                after = entries.last().map(|(name, _)| name.clone());
                names.extend(entries.into_iter().map(|(name, _)| name));
                if !more {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names.len(), 2500);
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    // Range listing (path semantics: "d" does not match "dd").
    w(n, put("dd", "other")).await.expect("put");
    match n
        .read(
            ReadQuery::Range {
                prefix: "d".into(),
                after: None,
                limit: 100,
                keys_only: true,
            },
            Consistency::Local,
            0,
        )
        .await
        .expect("range")
    {
        ReadResult::Range { entries, more } => {
            assert!(!more);
            assert!(
                entries.iter().all(|(k, _)| k == "d" || k.starts_with("d/")),
                "{entries:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // delete-prefix removes the subtree and nothing else.
    match w(n, Command::DeletePrefix { prefix: "d".into() })
        .await
        .expect("delete prefix")
    {
        WriteResult::Deleted { deleted, .. } => {
            assert_eq!(deleted, 6, "d, d/b, d/b/keep, d/c, d/c/1, d/c/2")
        }
        other => panic!("{other:?}"),
    }
    assert!(get(n, "dd").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_through_raft_and_watches_see_everything_in_order() {
    let one = node().await;
    let n = &one.node;
    let client = Client::new(vec![n.addr.clone()], TOKEN.to_vec()).expect("client");
    let start_rev = n.revision().expect("rev") + 1;
    let mut live = client.watch("w", 0).await.expect("watch");

    let lease = match w(n, Command::LeaseGrant { ttl_secs: 1, id: 0 })
        .await
        .expect("grant")
    {
        WriteResult::Lease { lease, .. } => lease.id,
        other => panic!("{other:?}"),
    };
    let mut op = PutOp::file("w/leased", b"tmp".to_vec());
    op.lease = Some(lease);
    w(n, Command::Put(op)).await.expect("leased put");
    w(n, put("w/plain", "p")).await.expect("put");
    let mut cas = PutOp::file("w/plain", b"nope".to_vec());
    cas.condition = PutCondition::Version(99);
    assert!(w(n, Command::Put(cas)).await.is_err());
    // The leader expires the lease by proposing it; the key goes away on its own.
    let t = Instant::now();
    while get(n, "w/leased").await.is_some() {
        assert!(t.elapsed() < Duration::from_secs(30), "lease never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w(
        n,
        Command::Delete {
            key: "w/plain".into(),
            mode: DeleteMode::Any,
        },
    )
    .await
    .expect("delete");

    let expected = vec![
        (EventKind::Put, "w".to_string()),
        (EventKind::Put, "w/leased".to_string()),
        (EventKind::Put, "w/plain".to_string()),
        (EventKind::Expire, "w/leased".to_string()),
        (EventKind::Delete, "w/plain".to_string()),
    ];
    let mut seen = Vec::new();
    let mut revs = Vec::new();
    while seen.len() < expected.len() {
        match tokio::time::timeout(Duration::from_secs(30), live.next())
            .await
            .expect("event in time")
            .expect("stream")
        {
            WatchItem::Events(evs) => {
                for e in evs {
                    revs.push(e.revision);
                    seen.push((e.kind, e.key));
                }
            }
            WatchItem::Reset { .. } => panic!("unexpected reset"),
        }
    }
    assert_eq!(
        seen, expected,
        "the failed compare-and-swap produced no event"
    );
    assert!(
        revs.windows(2).all(|w| w[0] <= w[1]),
        "ordered by revision: {revs:?}"
    );

    // A watch from a past revision replays the same history.
    let mut replay = client.watch("w", start_rev).await.expect("watch");
    let mut again = Vec::new();
    while again.len() < expected.len() {
        if let WatchItem::Events(evs) = tokio::time::timeout(Duration::from_secs(30), replay.next())
            .await
            .expect("in time")
            .expect("stream")
        {
            again.extend(evs.into_iter().map(|e| (e.kind, e.key)));
        }
    }
    assert_eq!(again, expected);
}

async fn stat(n: &Node, key: &str) -> EntryMeta {
    match n
        .read(
            ReadQuery::Stat { key: key.into() },
            Consistency::Linearizable,
            0,
        )
        .await
        .expect("stat")
    {
        ReadResult::Meta(Some(m)) => m,
        other => panic!("{key}: {other:?}"),
    }
}

fn special(key: &str, kind: EntryKind, rdev: u32) -> Command {
    let mut op = PutOp::file(key, Vec::new());
    op.kind = kind;
    op.rdev = rdev;
    op.create_parents = false;
    Command::Put(op)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_track_children_and_special_files_are_metadata_only() {
    let one = node().await;
    let n = &one.node;
    let mkdir = |k: &str| {
        let mut op = PutOp::file(k, Vec::new());
        op.kind = EntryKind::Dir;
        Command::Put(op)
    };
    w(n, mkdir("p")).await.expect("mkdir p");
    w(n, mkdir("q")).await.expect("mkdir q");
    assert_eq!(stat(n, "p").await.nlink, 2);
    let before = stat(n, "p").await;
    w(n, mkdir("p/sub")).await.expect("mkdir p/sub");
    let after = stat(n, "p").await;
    assert_eq!(after.nlink, 3, "a subdirectory adds a link");
    assert!(
        after.mtime_ns > before.mtime_ns && after.ctime_ns > before.ctime_ns,
        "parent times move on create"
    );
    assert_eq!(
        after.mod_revision, before.mod_revision,
        "the parent entry itself did not change"
    );
    w(n, put("p/file", "x")).await.expect("file");
    assert_eq!(stat(n, "p").await.nlink, 3, "files add no link");
    w(
        n,
        Command::Rename {
            from: "p/sub".into(),
            to: "q/sub".into(),
            mode: RenameMode::Replace,
        },
    )
    .await
    .expect("rename");
    assert_eq!((stat(n, "p").await.nlink, stat(n, "q").await.nlink), (2, 3));
    let t = stat(n, "q").await.mtime_ns;
    w(
        n,
        Command::Delete {
            key: "q/sub".into(),
            mode: DeleteMode::EmptyDir,
        },
    )
    .await
    .expect("rmdir");
    let q = stat(n, "q").await;
    assert_eq!(q.nlink, 2);
    assert!(q.mtime_ns > t, "parent times move on delete");

    // Special files: kind and rdev kept, no value allowed, not truncatable.
    w(n, special("p/fifo", EntryKind::Fifo, 0))
        .await
        .expect("fifo");
    w(n, special("p/tty", EntryKind::CharDevice, 0x0501))
        .await
        .expect("char device");
    let tty = stat(n, "p/tty").await;
    assert_eq!(
        (tty.kind, tty.rdev, tty.size),
        (EntryKind::CharDevice, 0x0501, 0)
    );
    let mut bad = PutOp::file("p/sock", b"data".to_vec());
    bad.kind = EntryKind::Socket;
    assert_eq!(
        w(n, Command::Put(bad))
            .await
            .expect_err("socket with data")
            .kind,
        ErrorKind::InvalidInput
    );
    let change = AttrChange {
        size: Some(3),
        ..Default::default()
    };
    assert_eq!(
        w(
            n,
            Command::SetAttr {
                key: "p/fifo".into(),
                change
            }
        )
        .await
        .expect_err("truncate fifo")
        .kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        w(
            n,
            Command::Delete {
                key: "p/fifo".into(),
                mode: DeleteMode::EmptyDir
            }
        )
        .await
        .expect_err("rmdir fifo")
        .kind,
        ErrorKind::NotDir
    );
    w(
        n,
        Command::Delete {
            key: "p/fifo".into(),
            mode: DeleteMode::NonDir,
        },
    )
    .await
    .expect("unlink fifo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_a_tree_touches_only_the_two_parents() {
    let one = node().await;
    let n = &one.node;
    w(n, put("from/tree/a/b/file", "x")).await.expect("put");
    w(n, put("to/keep", "y")).await.expect("put");
    let inner_before = stat(n, "from/tree/a").await;
    let tree_before = stat(n, "from/tree").await;
    let from_before = stat(n, "from").await;
    w(
        n,
        Command::Rename {
            from: "from/tree".into(),
            to: "to/tree".into(),
            mode: RenameMode::Replace,
        },
    )
    .await
    .expect("rename");
    let inner_after = stat(n, "to/tree/a").await;
    assert_eq!(
        (inner_after.mtime_ns, inner_after.ctime_ns),
        (inner_before.mtime_ns, inner_before.ctime_ns)
    );
    assert_eq!(inner_after.nlink, 3, "a still holds b");
    let tree_after = stat(n, "to/tree").await;
    assert_eq!(tree_after.nlink, tree_before.nlink);
    assert!(
        tree_after.ctime_ns > tree_before.ctime_ns,
        "the moved entry's ctime changes"
    );
    let from_after = stat(n, "from").await;
    assert_eq!((from_before.nlink, from_after.nlink), (3, 2));
    assert_eq!(stat(n, "to").await.nlink, 3);
    assert_eq!(get(n, "to/tree/a/b/file").await.expect("moved").value, b"x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_listing_pages_through_a_tree_exactly_once() {
    let one = node().await;
    let n = &one.node;
    let keys = ["t/a/x", "t/a/y/z", "t/a-b", "t/b/c/d/e", "t/c", "tt"];
    for k in keys {
        w(n, put(k, "v")).await.expect("put");
    }
    for limit in [1u32, 2, 3, 100] {
        let mut seen: Vec<String> = Vec::new();
        let mut after = None;
        loop {
            let q = ReadQuery::Range {
                prefix: "t".into(),
                after: after.clone(),
                limit,
                keys_only: true,
            };
            match n.read(q, Consistency::Local, 0).await.expect("range") {
                ReadResult::Range { entries, more } => {
                    after = entries.last().map(|(k, _)| k.clone());
                    seen.extend(entries.into_iter().map(|(k, _)| k));
                    if !more {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        let mut expected: Vec<String> = [
            "t",
            "t/a",
            "t/a/x",
            "t/a/y",
            "t/a/y/z",
            "t/a-b",
            "t/b",
            "t/b/c",
            "t/b/c/d",
            "t/b/c/d/e",
            "t/c",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut sorted = seen.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "page size {limit}: {seen:?}");
        for (i, k) in seen.iter().enumerate() {
            let (parent, _) = aspen::kv::key::split(k);
            if k != "t" {
                let p = seen
                    .iter()
                    .position(|x| x == parent)
                    .expect("parent listed");
                assert!(p < i, "{parent} listed after {k}");
            }
        }
    }
}
