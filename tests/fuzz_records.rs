//! Fuzz-style property tests of every persisted record decoder (`aspen::store::decode`):
//! entries, watch-history events, state-machine meta, leases and raft log entries, plus the
//! in-place `EntryRecordRef` decoder that listings use.
//!
//! Properties: generated values round-trip exactly; every strict prefix of a valid
//! encoding, a trailing byte and an unknown version byte are refused; arbitrary and mutated
//! bytes never panic, are refused with a `Corrupt` error that says what is wrong, or decode
//! to a value whose own encoding decodes back to it; the owned and borrowed entry decoders
//! agree on every input. Seed corpus: `tests/corpus/records/<ok|bad>-<type>-<what>.bin`.

mod fuzz_support;

use std::fmt::Debug;

use aspen::error::ErrorKind;
use aspen::kv::layout::{attach_key, attach_prefix, history_key, lease_key, LeaseRecord, SmMeta};
use aspen::kv::{
    Command, Compare, CompareOp, CompareTarget, EntryKind, EntryRecord, EntryRecordRef, Event,
    EventKind, PutOp, Txn, TxnOp,
};
use aspen::raft::types::{LogEntry, RaftRequest, TypeConfig};
use aspen::store::{decode, decode_borrowed, encode, RECORD_FORMAT_V1};
use fuzz_support::*;
use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, StoredMembership};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

const CASES: u32 = 512;

/// Decodes `bytes` as `T`: a refusal must be `Corrupt` with a message; an acceptance must
/// be stable (its encoding decodes back to the same encoding).
fn check_decode<T: Serialize + DeserializeOwned>(bytes: &[u8], what: &str) -> Option<T> {
    match decode::<T>(bytes, what) {
        Ok(v) => {
            assert_eq!(
                bytes.first(),
                Some(&RECORD_FORMAT_V1),
                "{what}: accepted without the version byte"
            );
            let e1 = encode(&v).expect("encode decoded value");
            let v2: T = decode(&e1, what)
                .unwrap_or_else(|e| panic!("{what}: own encoding of a decoded value refused: {e}"));
            assert_eq!(
                encode(&v2).expect("encode"),
                e1,
                "{what}: unstable re-encoding"
            );
            Some(v)
        }
        Err(e) => {
            assert_clear_error(&e, what);
            assert_eq!(e.kind, ErrorKind::Corrupt, "{what}: {e}");
            assert!(
                e.message.contains(what),
                "{what}: message does not name the record: {e}"
            );
            None
        }
    }
}

/// The owned and the in-place entry decoders agree: both refuse, or both accept with the
/// same metadata, value and xattrs.
fn check_entry_ref_agrees(bytes: &[u8]) {
    let owned = decode::<EntryRecord>(bytes, "entry");
    let borrowed = decode_borrowed::<EntryRecordRef>(bytes, "entry");
    match (owned, borrowed) {
        (Ok(o), Ok(b)) => {
            assert_eq!(o.meta(), b.meta(), "metadata differs for {bytes:02x?}");
            assert_eq!(o.value, b.value);
            let bx: Vec<(String, Vec<u8>)> = b
                .xattrs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect();
            assert_eq!(o.xattrs, bx);
        }
        (Err(_), Err(e)) => assert_clear_error(&e, "entry ref"),
        (o, b) => panic!(
            "decoders disagree on {bytes:02x?}: owned {:?}, borrowed {:?}",
            o.map(|_| ()),
            b.map(|_| ())
        ),
    }
}

/// Every decoder on one input.
fn check_all_decoders(bytes: &[u8]) {
    check_decode::<EntryRecord>(bytes, "entry");
    check_decode::<Event>(bytes, "event");
    check_decode::<SmMeta>(bytes, "sm meta");
    check_decode::<LeaseRecord>(bytes, "lease");
    check_decode::<LogEntry>(bytes, "log entry");
    check_entry_ref_agrees(bytes);
}

/// Cut points to try on an encoding of `len` bytes: the ends and a spread in between.
fn cut_points(len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..len.min(8)).collect();
    let step = (len / 24).max(1);
    cuts.extend((0..len).step_by(step));
    cuts.extend(len.saturating_sub(8)..len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Exact round trip, and the refusals every valid encoding implies.
fn check_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(x: &T, what: &str) {
    let enc = encode(x).expect("encode");
    assert_eq!(enc.first(), Some(&RECORD_FORMAT_V1));
    let back: T = decode(&enc, what).unwrap_or_else(|e| panic!("{what}: round trip failed: {e}"));
    assert_eq!(&back, x);
    for cut in cut_points(enc.len()) {
        let e = decode::<T>(&enc[..cut], what)
            .err()
            .unwrap_or_else(|| panic!("{what}: prefix of {cut}/{} bytes accepted", enc.len()));
        assert_clear_error(&e, what);
    }
    let mut long = enc.clone();
    long.push(0);
    let e = decode::<T>(&long, what).expect_err("trailing byte accepted");
    assert!(e.message.contains("trailing"), "{e}");
    for v in [0u8, 2, 0xff] {
        let mut other = enc.clone();
        other[0] = v;
        let e = decode::<T>(&other, what).expect_err("unknown version accepted");
        assert!(e.message.contains(&format!("version {v}")), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn entry_record_round_trip(x in entry_record(), ms in mutations()) {
        check_round_trip(&x, "entry");
        let enc = encode(&x).expect("encode");
        check_entry_ref_agrees(&enc);
        let b = decode_borrowed::<EntryRecordRef>(&enc, "entry").expect("borrowed decode");
        prop_assert_eq!(b.meta(), x.meta());
        let bad = apply_all(&ms, &enc);
        check_all_decoders(&bad);
    }

    #[test]
    fn event_round_trip(x in event(), ms in mutations()) {
        check_round_trip(&x, "event");
        check_all_decoders(&apply_all(&ms, &encode(&x).expect("encode")));
    }

    #[test]
    fn sm_meta_round_trip(x in sm_meta(), ms in mutations()) {
        check_round_trip(&x, "sm meta");
        check_all_decoders(&apply_all(&ms, &encode(&x).expect("encode")));
    }

    #[test]
    fn lease_record_round_trip(x in lease_record(), ms in mutations()) {
        check_round_trip(&x, "lease");
        check_all_decoders(&apply_all(&ms, &encode(&x).expect("encode")));
    }

    #[test]
    fn log_entry_round_trip(x in log_entry(), ms in mutations()) {
        check_round_trip(&x, "log entry");
        check_all_decoders(&apply_all(&ms, &encode(&x).expect("encode")));
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in arbitrary_bytes()) {
        check_all_decoders(&body);
        let mut versioned = vec![RECORD_FORMAT_V1];
        versioned.extend_from_slice(&body);
        check_all_decoders(&versioned);
    }

    #[test]
    fn unknown_versions_refused(v in any::<u8>(), body in arbitrary_bytes()) {
        prop_assume!(v != RECORD_FORMAT_V1);
        let mut bytes = vec![v];
        bytes.extend_from_slice(&body);
        for e in [
            decode::<EntryRecord>(&bytes, "entry").err(),
            decode::<LogEntry>(&bytes, "log entry").err(),
            decode_borrowed::<EntryRecordRef>(&bytes, "entry").err(),
        ] {
            let e = e.expect("unknown version accepted");
            prop_assert_eq!(e.kind, ErrorKind::Corrupt);
            prop_assert!(e.message.contains(&format!("version {v}")), "{}", e);
        }
    }

    #[test]
    fn history_and_lease_keys_order(a in any::<(u64, u32)>(), b in any::<(u64, u32)>(), k in key()) {
        // The watch history is scanned in (revision, sequence) order.
        prop_assert_eq!(history_key(a.0, a.1).cmp(&history_key(b.0, b.1)), a.cmp(&b));
        prop_assert_eq!(lease_key(a.0).cmp(&lease_key(b.0)), a.0.cmp(&b.0));
        // A lease's attached keys are one prefix range, and no other lease's keys fall in it.
        prop_assert!(attach_key(a.0, &k).starts_with(&attach_prefix(a.0)));
        prop_assert_eq!(attach_key(b.0, &k).starts_with(&attach_prefix(a.0)), a.0 == b.0);
    }
}

// ---------------------------------------------------------------- seed corpus

fn seed_entry(kind: EntryKind) -> EntryRecord {
    EntryRecord {
        kind,
        value: b"hello".to_vec(),
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        mtime_ns: 1_700_000_000_000_000_000,
        ctime_ns: 1_700_000_000_000_000_001,
        create_revision: 3,
        mod_revision: 7,
        version: 2,
        lease: 0,
        xattrs: vec![("user.a".to_string(), b"1".to_vec())],
        rdev: 0,
        subdirs: 0,
    }
}

fn seed_log_id() -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(2, 1), 9)
}

fn seed_membership() -> Membership<u64, aspen::raft::types::RaftNode> {
    let nodes = [
        (1u64, "127.0.0.1:7701"),
        (2, "127.0.0.1:7702"),
        (3, "127.0.0.1:7703"),
    ]
    .into_iter()
    .map(|(id, a)| (id, aspen::raft::types::RaftNode::new(a)))
    .collect::<std::collections::BTreeMap<_, _>>();
    Membership::new(vec![[1u64, 2].into_iter().collect()], nodes)
}

fn seed_commands() -> Vec<(u64, Command)> {
    vec![
        (5, Command::Put(PutOp::file("app/config", b"v1".to_vec()))),
        (
            5,
            Command::Txn(Txn {
                compare: vec![Compare {
                    key: "app/config".into(),
                    op: CompareOp::Equal,
                    target: CompareTarget::ModRevision(3),
                }],
                success: vec![TxnOp::Delete {
                    key: "app/old".into(),
                }],
                failure: vec![TxnOp::Get {
                    key: "app/config".into(),
                }],
            }),
        ),
        (
            0,
            Command::LeaseGrant {
                ttl_secs: 30,
                id: 4,
            },
        ),
        (0, Command::ExpireLeases { ids: vec![1, 2] }),
    ]
}

fn enc<T: Serialize>(x: &T) -> Vec<u8> {
    encode(x).expect("encode seed")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut s: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| s.push((format!("{name}.bin"), bytes));

    // Valid records.
    let file = seed_entry(EntryKind::File);
    add("ok-entry-file", enc(&file));
    add(
        "ok-entry-dir",
        enc(&EntryRecord {
            value: Vec::new(),
            subdirs: 3,
            mode: 0o755,
            xattrs: Vec::new(),
            ..seed_entry(EntryKind::Dir)
        }),
    );
    add(
        "ok-entry-extremes",
        enc(&EntryRecord {
            kind: EntryKind::BlockDevice,
            value: Vec::new(),
            mode: u32::MAX,
            uid: u32::MAX,
            gid: u32::MAX,
            mtime_ns: i64::MIN,
            ctime_ns: i64::MAX,
            create_revision: u64::MAX,
            mod_revision: u64::MAX,
            version: u64::MAX,
            lease: u64::MAX,
            xattrs: vec![
                (String::new(), Vec::new()),
                ("user.ü".into(), vec![0xff; 300]),
            ],
            rdev: u32::MAX,
            subdirs: u64::MAX,
        }),
    );
    add(
        "ok-event-put",
        enc(&Event {
            revision: 7,
            kind: EventKind::Put,
            key: "app/config".into(),
            entry: Some(file.clone()),
            origin: 5,
            log_index: 12,
        }),
    );
    let deleted = Event {
        revision: 5,
        kind: EventKind::Delete,
        key: "k".into(),
        entry: None,
        origin: 0,
        log_index: 0,
    };
    add("ok-event-delete", enc(&deleted));
    add("ok-sm_meta-default", enc(&SmMeta::default()));
    let meta = SmMeta {
        last_applied: Some(seed_log_id()),
        membership: StoredMembership::new(Some(seed_log_id()), seed_membership()),
        revision: 42,
        next_lease_id: 5,
        last_stamp_ns: 1_700_000_000_000_000_000,
        history_low: 1,
    };
    add("ok-sm_meta-members", enc(&meta));
    let lease = LeaseRecord {
        id: 1,
        ttl_secs: 30,
        expires_at_ns: 1_700_000_030_000_000_000,
        keys: 2,
    };
    add("ok-lease-basic", enc(&lease));
    let blank = LogEntry {
        log_id: seed_log_id(),
        payload: EntryPayload::<TypeConfig>::Blank,
    };
    add("ok-log_entry-blank", enc(&blank));
    add(
        "ok-log_entry-normal",
        enc(&LogEntry {
            log_id: seed_log_id(),
            payload: EntryPayload::Normal(RaftRequest::V1 {
                stamp_ns: 1_700_000_000_000_000_000,
                commands: seed_commands(),
            }),
        }),
    );
    add(
        "ok-log_entry-membership",
        enc(&LogEntry {
            log_id: seed_log_id(),
            payload: EntryPayload::Membership(seed_membership()),
        }),
    );

    // Invalid records.
    let file_bytes = enc(&file);
    add("bad-entry-empty", Vec::new());
    add("bad-entry-version-only", vec![RECORD_FORMAT_V1]);
    let mut v2 = file_bytes.clone();
    v2[0] = 2;
    add("bad-entry-version2", v2);
    add(
        "bad-entry-truncated",
        file_bytes[..file_bytes.len() - 1].to_vec(),
    );
    let mut trailing = file_bytes.clone();
    trailing.push(0);
    add("bad-entry-trailing", trailing);
    let mut kind = file_bytes.clone();
    assert_eq!(kind[1], 0, "EntryKind::File is variant 0, the first field");
    kind[1] = 99;
    add("bad-entry-unknown-kind", kind);
    let mut utf8 = file_bytes.clone();
    let at = utf8
        .windows(6)
        .position(|w| w == b"user.a")
        .expect("xattr name in the encoding");
    utf8[at + 5] = 0xff;
    add("bad-entry-xattr-name-not-utf8", utf8);
    let mut huge_len = file_bytes.clone();
    // The value length (after kind) claims 2^63 bytes.
    huge_len.splice(2..3, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    add("bad-entry-huge-value-length", huge_len);
    let mut tag = enc(&deleted);
    // revision 5, kind 1, key len 1, 'k', then the Option tag of `entry`.
    assert_eq!(&tag[1..6], &[5, 1, 1, b'k', 0]);
    tag[5] = 2;
    add("bad-event-option-tag", tag);
    let meta_bytes = enc(&meta);
    add(
        "bad-sm_meta-truncated",
        meta_bytes[..meta_bytes.len() / 2].to_vec(),
    );
    let lease_bytes = enc(&lease);
    let mut overlong = vec![RECORD_FORMAT_V1];
    overlong.extend_from_slice(&[0x80; 10]);
    overlong.push(0x01);
    overlong.extend_from_slice(&lease_bytes[2..]);
    add("bad-lease-overlong-varint", overlong);
    let mut payload = enc(&blank);
    let last = payload.len() - 1;
    assert_eq!(
        payload[last], 0,
        "Blank is payload variant 0, the last byte"
    );
    payload[last] = 7;
    add("bad-log_entry-unknown-payload", payload);
    let mut unknown_v = enc(&LogEntry {
        log_id: seed_log_id(),
        payload: EntryPayload::Normal(RaftRequest::V1 {
            stamp_ns: 0,
            commands: Vec::new(),
        }),
    });
    // ... payload Normal (1), RaftRequest::V1 (0), stamp 0, no commands.
    let n = unknown_v.len();
    assert_eq!(&unknown_v[n - 4..], &[1, 0, 0, 0]);
    unknown_v[n - 3] = 1;
    add("bad-log_entry-unknown-request-version", unknown_v);
    s
}

/// Decodes a corpus file as the type its name gives; `Ok(true)` when accepted.
fn decode_as(ty: &str, bytes: &[u8]) -> Result<bool, String> {
    let stable = |re: Vec<u8>| {
        assert_eq!(re, bytes, "{ty}: seed does not re-encode to itself");
        true
    };
    Ok(match ty {
        "entry" => {
            check_entry_ref_agrees(bytes);
            check_decode::<EntryRecord>(bytes, "entry")
                .map(|v| stable(enc(&v)))
                .is_some()
        }
        "event" => check_decode::<Event>(bytes, "event")
            .map(|v| stable(enc(&v)))
            .is_some(),
        "sm_meta" => check_decode::<SmMeta>(bytes, "sm meta")
            .map(|v| stable(enc(&v)))
            .is_some(),
        "lease" => check_decode::<LeaseRecord>(bytes, "lease")
            .map(|v| stable(enc(&v)))
            .is_some(),
        "log_entry" => check_decode::<LogEntry>(bytes, "log entry")
            .map(|v| stable(enc(&v)))
            .is_some(),
        other => return Err(format!("unknown record type {other:?}")),
    })
}

#[test]
fn seed_corpus() {
    maybe_write_seeds("records", &seeds());
    let files = corpus("records");
    let (mut ok, mut bad) = (0, 0);
    for (name, bytes) in &files {
        check_all_decoders(bytes);
        let (expect_ok, rest) = if let Some(r) = name.strip_prefix("ok-") {
            (true, r)
        } else if let Some(r) = name.strip_prefix("bad-") {
            (false, r)
        } else {
            continue;
        };
        let ty = rest.split('-').next().unwrap_or_default();
        let accepted = decode_as(ty, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(accepted, expect_ok, "{name}");
        if expect_ok {
            ok += 1;
        } else {
            bad += 1;
        }
    }
    assert!(
        ok >= 5 && bad >= 5,
        "corpus needs valid and invalid seeds of each kind"
    );
}
