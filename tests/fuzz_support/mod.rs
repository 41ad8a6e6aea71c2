//! Shared by the `fuzz_*` property tests: seed-corpus files, byte mutations, and proptest
//! strategies for the values Aspen puts on the wire and on disk.
//!
//! Seed corpora live in `tests/corpus/<target>/`. A file named `ok-*` must be accepted,
//! `bad-*` must be refused with an error; every file must be answered without a panic.
//! Binary seeds are produced by code in each test; run a test with `ASPEN_WRITE_CORPUS=1`
//! to (re)write them.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aspen::error::{Error, ErrorKind};
use aspen::kv::layout::{LeaseRecord, SmMeta};
use aspen::kv::{
    AttrChange, Command, Compare, CompareOp, CompareTarget, DeleteMode, EntryKind, EntryMeta,
    EntryRecord, Event, EventKind, LeaseInfo, PutCondition, PutOp, ReadQuery, ReadResult,
    RenameMode, StoreStats, Txn, TxnOp, TxnOpResult, WriteResult, XattrMode,
};
use aspen::net::proto::{
    ClientHello, ClusterStatus, Consistency, MemberStatus, Request, Response, Role, ServerHello,
    ServerVerdict,
};
use aspen::raft::snapshot::Meta as SnapshotMeta;
use aspen::raft::types::{LogEntry, RaftNode, RaftRequest, TypeConfig};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, StoredMembership, Vote};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------- seed corpora

pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target)
}

/// Every file of a seed corpus, sorted by name; the corpus must not be empty.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("corpus file name")
            .to_string();
        out.push((name, std::fs::read(&path).expect("corpus file")));
    }
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

/// Writes generated seeds when `ASPEN_WRITE_CORPUS` is set (to refresh the committed files).
pub fn maybe_write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    if std::env::var_os("ASPEN_WRITE_CORPUS").is_none() {
        return;
    }
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// A refusal must say what is wrong.
pub fn assert_clear_error(e: &Error, what: &str) {
    assert!(
        !e.message.trim().is_empty(),
        "{what}: empty error message ({e:?})"
    );
}

// ---------------------------------------------------------------- mutations

/// One edit of a byte string; indices are taken modulo the length.
#[derive(Debug, Clone)]
pub enum Mutation {
    Truncate(Index),
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Append(Vec<u8>),
    /// Overwrites with a big-endian u32 (lengths are where framing bugs hide).
    SetU32(Index, u32),
    /// Overwrites with a varint-looking run of continuation bytes.
    Overlong(Index, u8),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting_u32 = prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(0x7fff_ffff),
        Just(16 * 1024 * 1024),
        Just(16 * 1024 * 1024 + 1),
        Just(64 * 1024 * 1024 + 1),
        any::<u32>(),
    ];
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        2 => (any::<Index>(), prop_oneof![Just(0u8), Just(1), Just(0x7f), Just(0x80), Just(0xff), any::<u8>()])
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => prop::collection::vec(any::<u8>(), 1..8).prop_map(Mutation::Append),
        1 => (any::<Index>(), interesting_u32).prop_map(|(i, v)| Mutation::SetU32(i, v)),
        1 => (any::<Index>(), 1u8..12).prop_map(|(i, n)| Mutation::Overlong(i, n)),
    ]
}

pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

pub fn apply(m: &Mutation, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let n = b.len();
    match m {
        Mutation::Truncate(i) => b.truncate(i.index(n.max(1))),
        Mutation::Flip(i, x) if n > 0 => b[i.index(n)] ^= x,
        Mutation::Set(i, v) if n > 0 => b[i.index(n)] = *v,
        Mutation::Insert(i, v) => b.insert(i.index(n + 1), *v),
        Mutation::Remove(i) if n > 0 => {
            b.remove(i.index(n));
        }
        Mutation::Append(tail) => b.extend_from_slice(tail),
        Mutation::SetU32(i, v) if n >= 4 => {
            let at = i.index(n - 3);
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        Mutation::Overlong(i, k) if n > 0 => {
            let at = i.index(n);
            for j in 0..usize::from(*k) {
                if let Some(x) = b.get_mut(at + j) {
                    *x |= 0x80;
                }
            }
        }
        _ => {}
    }
    b
}

pub fn apply_all(ms: &[Mutation], input: &[u8]) -> Vec<u8> {
    ms.iter().fold(input.to_vec(), |acc, m| apply(m, &acc))
}

/// Arbitrary bytes, biased towards short inputs and small varints.
pub fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        2 => prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(0x80), Just(0xff), any::<u8>()], 0..128),
        1 => prop::collection::vec(any::<u8>(), 0..1024),
    ]
}

// ---------------------------------------------------------------- strategies

pub fn key() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,3}",
        1 => any::<String>(),
        1 => "\\PC{0,24}",
    ]
    .boxed()
}

pub fn bytes(max: usize) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..max.min(24)),
        1 => prop::collection::vec(any::<u8>(), 0..max),
    ]
    .boxed()
}

pub fn entry_kind() -> impl Strategy<Value = EntryKind> {
    prop::sample::select(vec![
        EntryKind::File,
        EntryKind::Dir,
        EntryKind::Symlink,
        EntryKind::Fifo,
        EntryKind::Socket,
        EntryKind::CharDevice,
        EntryKind::BlockDevice,
    ])
}

pub fn xattrs() -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    prop::collection::vec(
        (prop_oneof!["user\\.[a-z]{1,8}", any::<String>()], bytes(32)),
        0..4,
    )
    .boxed()
}

pub fn entry_record() -> BoxedStrategy<EntryRecord> {
    (
        (
            entry_kind(),
            bytes(300),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<i64>(),
            any::<i64>(),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            xattrs(),
            any::<u32>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (kind, value, mode, uid, gid, mtime_ns, ctime_ns),
                (create_revision, mod_revision, version, lease, xattrs, rdev, subdirs),
            )| EntryRecord {
                kind,
                value,
                mode,
                uid,
                gid,
                mtime_ns,
                ctime_ns,
                create_revision,
                mod_revision,
                version,
                lease,
                xattrs,
                rdev,
                subdirs,
            },
        )
        .boxed()
}

pub fn entry_meta() -> BoxedStrategy<EntryMeta> {
    entry_record().prop_map(|r| r.meta()).boxed()
}

pub fn event() -> BoxedStrategy<Event> {
    (
        any::<u64>(),
        prop::sample::select(vec![EventKind::Put, EventKind::Delete, EventKind::Expire]),
        key(),
        prop::option::of(entry_record()),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(revision, kind, key, entry, origin, log_index)| Event {
            revision,
            kind,
            key,
            entry,
            origin,
            log_index,
        })
        .boxed()
}

pub fn put_condition() -> BoxedStrategy<PutCondition> {
    prop_oneof![
        Just(PutCondition::Any),
        Just(PutCondition::MustNotExist),
        Just(PutCondition::MustExist),
        any::<u64>().prop_map(PutCondition::ModRevision),
        any::<u64>().prop_map(PutCondition::Version),
        bytes(32).prop_map(PutCondition::Value),
    ]
    .boxed()
}

pub fn put_op() -> BoxedStrategy<PutOp> {
    (
        (key(), entry_kind(), bytes(300), any::<Option<u32>>()),
        (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<i64>>(),
        ),
        (
            prop::option::of(xattrs()),
            any::<Option<u64>>(),
            put_condition(),
            any::<bool>(),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (key, kind, value, mode),
                (uid, gid, mtime_ns),
                (xattrs, lease, condition, create_parents, rdev),
            )| PutOp {
                key,
                kind,
                value,
                mode,
                uid,
                gid,
                mtime_ns,
                xattrs,
                lease,
                condition,
                create_parents,
                rdev,
            },
        )
        .boxed()
}

pub fn attr_change() -> BoxedStrategy<AttrChange> {
    (
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        any::<Option<u64>>(),
        any::<Option<Option<i64>>>(),
        prop::option::of((
            "user\\.[a-z]{1,6}",
            bytes(16),
            prop::sample::select(vec![
                XattrMode::Upsert,
                XattrMode::Create,
                XattrMode::Replace,
            ]),
        )),
        prop::option::of("user\\.[a-z]{1,6}"),
    )
        .prop_map(
            |(mode, uid, gid, size, mtime_ns, set_xattr, remove_xattr)| AttrChange {
                mode,
                uid,
                gid,
                size,
                mtime_ns,
                set_xattr,
                remove_xattr,
            },
        )
        .boxed()
}

pub fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Equal,
        CompareOp::NotEqual,
        CompareOp::Less,
        CompareOp::Greater,
    ])
}

pub fn compare() -> BoxedStrategy<Compare> {
    (
        key(),
        compare_op(),
        prop_oneof![
            bytes(16).prop_map(CompareTarget::Value),
            any::<u64>().prop_map(CompareTarget::Version),
            any::<u64>().prop_map(CompareTarget::ModRevision),
            any::<u64>().prop_map(CompareTarget::CreateRevision),
            any::<u64>().prop_map(CompareTarget::Lease),
        ],
    )
        .prop_map(|(key, op, target)| Compare { key, op, target })
        .boxed()
}

pub fn txn_op() -> BoxedStrategy<TxnOp> {
    prop_oneof![
        put_op().prop_map(TxnOp::Put),
        key().prop_map(|key| TxnOp::Delete { key }),
        key().prop_map(|prefix| TxnOp::DeletePrefix { prefix }),
        key().prop_map(|key| TxnOp::Get { key }),
    ]
    .boxed()
}

pub fn txn() -> BoxedStrategy<Txn> {
    (
        prop::collection::vec(compare(), 0..3),
        prop::collection::vec(txn_op(), 0..3),
        prop::collection::vec(txn_op(), 0..3),
    )
        .prop_map(|(compare, success, failure)| Txn {
            compare,
            success,
            failure,
        })
        .boxed()
}

pub fn command() -> BoxedStrategy<Command> {
    prop_oneof![
        4 => put_op().prop_map(Command::Put),
        1 => (key(), attr_change()).prop_map(|(key, change)| Command::SetAttr { key, change }),
        1 => (key(), prop::sample::select(vec![DeleteMode::Any, DeleteMode::NonDir, DeleteMode::EmptyDir]))
            .prop_map(|(key, mode)| Command::Delete { key, mode }),
        1 => key().prop_map(|prefix| Command::DeletePrefix { prefix }),
        1 => (key(), key(), prop::sample::select(vec![RenameMode::Replace, RenameMode::NoReplace, RenameMode::Exchange]))
            .prop_map(|(from, to, mode)| Command::Rename { from, to, mode }),
        1 => txn().prop_map(Command::Txn),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(ttl_secs, id)| Command::LeaseGrant { ttl_secs, id }),
        1 => any::<u64>().prop_map(|id| Command::LeaseKeepAlive { id }),
        1 => any::<u64>().prop_map(|id| Command::LeaseRevoke { id }),
        1 => prop::collection::vec(any::<u64>(), 0..4).prop_map(|ids| Command::ExpireLeases { ids }),
    ]
    .boxed()
}

pub fn log_id() -> BoxedStrategy<LogId<u64>> {
    (
        prop_oneof![0u64..8, any::<u64>()],
        prop_oneof![0u64..8, any::<u64>()],
        prop_oneof![0u64..1000, any::<u64>()],
    )
        .prop_map(|(term, node, index)| LogId::new(CommittedLeaderId::new(term, node), index))
        .boxed()
}

pub fn vote() -> BoxedStrategy<Vote<u64>> {
    (any::<u64>(), 0u64..8, any::<bool>())
        .prop_map(|(term, node, committed)| {
            if committed {
                Vote::new_committed(term, node)
            } else {
                Vote::new(term, node)
            }
        })
        .boxed()
}

pub fn membership() -> BoxedStrategy<Membership<u64, RaftNode>> {
    (
        prop::collection::vec(prop::collection::btree_set(0u64..8, 1..4), 1..3),
        prop::collection::btree_map(0u64..12, "[a-z0-9.:]{0,16}", 0..4),
    )
        .prop_map(|(configs, nodes)| {
            let nodes: BTreeMap<u64, RaftNode> = nodes
                .into_iter()
                .map(|(id, addr)| (id, RaftNode::new(addr)))
                .collect();
            Membership::new(configs, nodes)
        })
        .boxed()
}

pub fn stored_membership() -> BoxedStrategy<StoredMembership<u64, RaftNode>> {
    (prop::option::of(log_id()), membership())
        .prop_map(|(id, m)| StoredMembership::new(id, m))
        .boxed()
}

pub fn sm_meta() -> BoxedStrategy<SmMeta> {
    (
        prop::option::of(log_id()),
        prop_oneof![Just(StoredMembership::default()), stored_membership()],
        any::<u64>(),
        any::<u64>(),
        any::<i64>(),
        any::<u64>(),
    )
        .prop_map(
            |(last_applied, membership, revision, next_lease_id, last_stamp_ns, history_low)| {
                SmMeta {
                    last_applied,
                    membership,
                    revision,
                    next_lease_id,
                    last_stamp_ns,
                    history_low,
                }
            },
        )
        .boxed()
}

pub fn lease_record() -> BoxedStrategy<LeaseRecord> {
    (any::<u64>(), any::<u64>(), any::<i64>(), any::<u64>())
        .prop_map(|(id, ttl_secs, expires_at_ns, keys)| LeaseRecord {
            id,
            ttl_secs,
            expires_at_ns,
            keys,
        })
        .boxed()
}

pub fn raft_request() -> BoxedStrategy<RaftRequest> {
    (
        any::<i64>(),
        prop::collection::vec((any::<u64>(), command()), 0..4),
    )
        .prop_map(|(stamp_ns, commands)| RaftRequest::V1 { stamp_ns, commands })
        .boxed()
}

pub fn log_entry() -> BoxedStrategy<LogEntry> {
    (
        log_id(),
        prop_oneof![
            1 => Just(EntryPayload::<TypeConfig>::Blank),
            4 => raft_request().prop_map(EntryPayload::Normal),
            1 => membership().prop_map(EntryPayload::Membership),
        ],
    )
        .prop_map(|(log_id, payload)| LogEntry { log_id, payload })
        .boxed()
}

pub fn snapshot_meta() -> BoxedStrategy<SnapshotMeta> {
    (
        prop::option::of(log_id()),
        prop_oneof![Just(StoredMembership::default()), stored_membership()],
        "\\PC{0,24}",
    )
        .prop_map(|(last_log_id, last_membership, snapshot_id)| SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        })
        .boxed()
}

pub fn read_query() -> BoxedStrategy<ReadQuery> {
    prop_oneof![
        key().prop_map(|key| ReadQuery::Get { key }),
        key().prop_map(|key| ReadQuery::Stat { key }),
        (key(), prop::option::of(key()), any::<u32>())
            .prop_map(|(dir, after, limit)| ReadQuery::ListDir { dir, after, limit }),
        (key(), prop::option::of(key()), any::<u32>(), any::<bool>()).prop_map(
            |(prefix, after, limit, keys_only)| ReadQuery::Range {
                prefix,
                after,
                limit,
                keys_only
            }
        ),
        Just(ReadQuery::Revision),
        Just(ReadQuery::LeaseList),
        Just(ReadQuery::Stats),
    ]
    .boxed()
}

pub fn consistency() -> impl Strategy<Value = Consistency> {
    prop::sample::select(vec![Consistency::Linearizable, Consistency::Local])
}

pub fn request() -> BoxedStrategy<Request> {
    prop_oneof![
        3 => (read_query(), consistency(), any::<u8>())
            .prop_map(|(query, consistency, hops)| Request::Read { query, consistency, hops }),
        3 => (any::<u64>(), prop::collection::vec(command(), 0..4), any::<u8>())
            .prop_map(|(origin, commands, hops)| Request::Write { origin, commands, hops }),
        1 => Just(Request::Status),
        1 => Just(Request::TriggerSnapshot),
        1 => (key(), any::<u64>()).prop_map(|(prefix, from_revision)| Request::Watch { prefix, from_revision }),
        1 => prop::collection::vec((any::<u64>(), command()), 0..3)
            .prop_map(|commands| Request::Propose { commands }),
        1 => prop::collection::btree_map(any::<u64>(), "[a-z0-9.:]{0,20}", 0..4)
            .prop_map(|members| Request::Init { members }),
        1 => (any::<u64>(), "[a-z0-9.:]{0,20}", any::<u8>())
            .prop_map(|(id, addr, hops)| Request::AddLearner { id, addr, hops }),
        1 => (prop::collection::btree_set(any::<u64>(), 0..4), prop::collection::btree_set(any::<u64>(), 0..4), any::<u8>())
            .prop_map(|(voters, remove, hops): (BTreeSet<u64>, BTreeSet<u64>, u8)| Request::ChangeMembership { voters, remove, hops }),
        1 => (vote(), prop::option::of(log_id()))
            .prop_map(|(vote, last_log_id)| Request::Vote(VoteRequest { vote, last_log_id })),
        1 => (vote(), prop::option::of(log_id()), prop::collection::vec(log_entry(), 0..3), prop::option::of(log_id()))
            .prop_map(|(vote, prev_log_id, entries, leader_commit)| Request::Append(AppendEntriesRequest {
                vote, prev_log_id, entries, leader_commit,
            })),
        1 => (vote(), snapshot_meta(), any::<u64>(), bytes(200), any::<bool>())
            .prop_map(|(vote, meta, offset, data, done)| Request::InstallSnapshot(InstallSnapshotRequest {
                vote, meta, offset, data, done,
            })),
    ]
    .boxed()
}

pub fn error() -> BoxedStrategy<Error> {
    (
        prop::sample::select(vec![
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::NotDir,
            ErrorKind::IsDir,
            ErrorKind::NotEmpty,
            ErrorKind::NameTooLong,
            ErrorKind::TooBig,
            ErrorKind::InvalidInput,
            ErrorKind::PermissionDenied,
            ErrorKind::CompareFailed,
            ErrorKind::NoData,
            ErrorKind::NoSpace,
            ErrorKind::CrossDevice,
            ErrorKind::NotLeader,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Compacted,
            ErrorKind::Corrupt,
            ErrorKind::Io,
            ErrorKind::ShuttingDown,
            ErrorKind::Internal,
        ]),
        "\\PC{0,40}",
    )
        .prop_map(|(kind, message)| Error::new(kind, message))
        .boxed()
}

pub fn lease_info() -> BoxedStrategy<LeaseInfo> {
    (any::<u64>(), any::<u64>(), any::<i64>())
        .prop_map(|(id, ttl_secs, expires_at_ns)| LeaseInfo {
            id,
            ttl_secs,
            expires_at_ns,
        })
        .boxed()
}

pub fn write_result() -> BoxedStrategy<WriteResult> {
    let txn_result = prop_oneof![
        entry_meta().prop_map(TxnOpResult::Put),
        any::<u64>().prop_map(TxnOpResult::Deleted),
        prop::option::of(entry_record()).prop_map(TxnOpResult::Get),
    ];
    prop_oneof![
        (any::<u64>(), entry_meta())
            .prop_map(|(revision, entry)| WriteResult::Put { revision, entry }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(revision, deleted)| WriteResult::Deleted { revision, deleted }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(revision, moved)| WriteResult::Renamed { revision, moved }),
        (
            any::<u64>(),
            any::<bool>(),
            prop::collection::vec(txn_result, 0..3)
        )
            .prop_map(|(revision, succeeded, results)| WriteResult::Txn {
                revision,
                succeeded,
                results
            }),
        (any::<u64>(), lease_info())
            .prop_map(|(revision, lease)| WriteResult::Lease { revision, lease }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(revision, deleted)| WriteResult::LeaseRevoked { revision, deleted }),
        (any::<u64>(), prop::collection::vec(any::<u64>(), 0..4))
            .prop_map(|(revision, leases)| WriteResult::Expired { revision, leases }),
    ]
    .boxed()
}

pub fn read_result() -> BoxedStrategy<ReadResult> {
    prop_oneof![
        prop::option::of(entry_record()).prop_map(ReadResult::Entry),
        prop::option::of(entry_meta()).prop_map(ReadResult::Meta),
        (
            prop::collection::vec((key(), entry_meta()), 0..3),
            any::<bool>()
        )
            .prop_map(|(entries, more)| ReadResult::Dir { entries, more }),
        (
            prop::collection::vec((key(), entry_record()), 0..3),
            any::<bool>()
        )
            .prop_map(|(entries, more)| ReadResult::Range { entries, more }),
        any::<u64>().prop_map(ReadResult::Revision),
        prop::collection::vec(lease_info(), 0..3).prop_map(ReadResult::Leases),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |(total_bytes, free_bytes, available_bytes, records, max_value_bytes)| {
                    ReadResult::Stats(StoreStats {
                        total_bytes,
                        free_bytes,
                        available_bytes,
                        records,
                        max_value_bytes,
                    })
                }
            ),
    ]
    .boxed()
}

pub fn cluster_status() -> BoxedStrategy<ClusterStatus> {
    let member = (
        any::<u64>(),
        "[a-z0-9.:]{0,20}",
        any::<bool>(),
        any::<Option<u64>>(),
    )
        .prop_map(|(id, addr, voter, matched)| MemberStatus {
            id,
            addr,
            voter,
            matched,
        });
    (
        (
            any::<u64>(),
            "[a-z0-9.:]{0,20}",
            "[a-z]{0,10}",
            any::<Option<u64>>(),
            prop::option::of("[a-z0-9.:]{0,20}"),
            any::<u64>(),
        ),
        (
            any::<Option<u64>>(),
            any::<Option<u64>>(),
            any::<Option<u64>>(),
            any::<u64>(),
            prop::collection::vec(member, 0..4),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (id, addr, role, leader, leader_addr, term),
                (last_log_index, last_applied, snapshot_index, revision, members, initialized),
            )| ClusterStatus {
                id,
                addr,
                role,
                leader,
                leader_addr,
                term,
                last_log_index,
                last_applied,
                snapshot_index,
                revision,
                members,
                initialized,
            },
        )
        .boxed()
}

pub fn response() -> BoxedStrategy<Response> {
    let command_result = prop_oneof![write_result().prop_map(Ok), error().prop_map(Err)];
    prop_oneof![
        2 => prop_oneof![
            prop::collection::vec(command_result, 0..3).prop_map(Ok),
            error().prop_map(Err),
        ]
        .prop_map(Response::Write),
        2 => prop_oneof![read_result().prop_map(Ok), error().prop_map(Err)].prop_map(Response::Read),
        1 => prop::collection::vec(event(), 0..3).prop_map(Response::Events),
        1 => any::<u64>().prop_map(|revision| Response::Reset { revision }),
        1 => prop::option::of(error()).prop_map(Response::StreamEnd),
        1 => prop_oneof![cluster_status().prop_map(Ok), error().prop_map(Err)].prop_map(Response::Status),
        1 => prop_oneof![Just(Ok(())), error().prop_map(Err)].prop_map(Response::Done),
        1 => error().prop_map(Response::Failed),
        1 => (vote(), any::<bool>(), prop::option::of(log_id()))
            .prop_map(|(vote, vote_granted, last_log_id)| Response::Vote(Ok(VoteResponse { vote, vote_granted, last_log_id }))),
        1 => (0u8..4, prop::option::of(log_id()), vote()).prop_map(|(which, id, vote)| {
            Response::Append(Ok(match which {
                0 => AppendEntriesResponse::Success,
                1 => AppendEntriesResponse::Conflict,
                2 => AppendEntriesResponse::PartialSuccess(id),
                _ => AppendEntriesResponse::HigherVote(vote),
            }))
        }),
        1 => vote().prop_map(|vote| Response::InstallSnapshot(Ok(InstallSnapshotResponse { vote }))),
    ]
    .boxed()
}

pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Client),
        any::<u64>().prop_map(|node_id| Role::Peer { node_id }),
    ]
}

pub fn client_hello() -> BoxedStrategy<ClientHello> {
    (role(), any::<[u8; 32]>(), any::<[u8; 32]>())
        .prop_map(|(role, nonce, proof)| ClientHello { role, nonce, proof })
        .boxed()
}

pub fn server_hello() -> BoxedStrategy<ServerHello> {
    (any::<u64>(), any::<[u8; 32]>())
        .prop_map(|(node_id, nonce)| ServerHello { node_id, nonce })
        .boxed()
}

pub fn server_verdict() -> BoxedStrategy<ServerVerdict> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|proof| ServerVerdict::Accepted { proof }),
        "\\PC{0,40}".prop_map(|reason| ServerVerdict::Refused { reason }),
    ]
    .boxed()
}
