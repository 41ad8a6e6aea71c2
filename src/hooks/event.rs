//! Hook events: their payload (versioned JSON lines on the outside, postcard records in
//! the node-local outbox), the event types, how the events of one applied raft entry are
//! derived from its commands and their results, and the `*` / `>` type patterns.
//!
//! Derivation is deterministic (it reads only the entry, its results and its KV change
//! events), so every node derives the same events for the same entry; only `node` differs.

use serde::{Deserialize, Serialize};

use crate::kv::{Command, CommandResult, Event, EventKind, WriteResult};
use crate::limits::{MAX_HOOK_EVENT_KEYS, MAX_HOOK_EVENT_KEY_BYTES, MAX_HOOK_PATTERN_BYTES};
use crate::raft::types::NodeId;
use crate::secrets::{SecretCommand, SecretOutcome};
use crate::topics::{TopicCommand, TopicOutcome};

/// Version of the event payload (`"v"` in every JSON line).
pub const HOOK_EVENT_VERSION: u32 = 1;

pub const KV_WRITE: &str = "kv.write";
pub const KV_DELETE: &str = "kv.delete";
pub const KV_BATCH: &str = "kv.batch";
pub const KV_EXPIRE: &str = "kv.expire";
pub const RAFT_LEADER_CHANGE: &str = "raft.leader_change";
pub const RAFT_SNAPSHOT_CREATED: &str = "raft.snapshot_created";
pub const RAFT_SNAPSHOT_INSTALLED: &str = "raft.snapshot_installed";
pub const CLUSTER_MEMBERSHIP_CHANGE: &str = "cluster.membership_change";
pub const TOPIC_PUBLISH: &str = "topic.publish";
pub const SECRET_WRITE: &str = "secret.write";

/// Every event type this version produces, in the order `/hooks` lists them.
pub const EVENT_TYPES: [&str; 10] = [
    KV_WRITE,
    KV_DELETE,
    KV_BATCH,
    KV_EXPIRE,
    RAFT_LEADER_CHANGE,
    RAFT_SNAPSHOT_CREATED,
    RAFT_SNAPSHOT_INSTALLED,
    CLUSTER_MEMBERSHIP_CHANGE,
    TOPIC_PUBLISH,
    SECRET_WRITE,
];

/// One hook event. Never carries a value, only its size. Field order is the outbox
/// record format (postcard): append, never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookEvent {
    /// Payload version, `HOOK_EVENT_VERSION`.
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    /// Raft log index of the entry (for snapshots: the last index they cover).
    pub index: u64,
    /// Store revision after the event (the last one when it covers several commands).
    pub revision: u64,
    /// Keys changed, in apply order, at most `MAX_HOOK_EVENT_KEYS` and
    /// `MAX_HOOK_EVENT_KEY_BYTES`.
    pub keys: Vec<String>,
    /// How many keys changed (more than `keys` lists when it was cut).
    pub key_count: u64,
    /// Total bytes of the values written (puts only).
    pub value_bytes: u64,
    /// The node that delivered the event.
    pub node: NodeId,
    /// Leader-stamped time in milliseconds since the epoch, when the entry carries one.
    pub time_ms: Option<i64>,
    /// `raft.leader_change`: the new leader and its term.
    pub leader: Option<NodeId>,
    pub term: Option<u64>,
    /// `cluster.membership_change`: every member (voters and learners) after the change.
    pub members: Option<Vec<NodeId>>,
    /// `topic.publish`: the offset of the first message published and how many were
    /// (`keys` lists the topics; `value_bytes` counts the message bytes).
    pub first_offset: Option<u64>,
    pub messages: Option<u64>,
    /// Bytes of `keys`, kept while the event is built (not part of the payload).
    #[serde(skip)]
    listed_key_bytes: usize,
}

impl HookEvent {
    pub fn new(kind: &str, index: u64, revision: u64, node: NodeId) -> HookEvent {
        HookEvent {
            v: HOOK_EVENT_VERSION,
            kind: kind.to_string(),
            index,
            revision,
            keys: Vec::new(),
            key_count: 0,
            value_bytes: 0,
            node,
            time_ms: None,
            leader: None,
            term: None,
            members: None,
            first_offset: None,
            messages: None,
            listed_key_bytes: 0,
        }
    }

    /// The event as one JSON line, newline included.
    pub fn json_line(&self) -> String {
        match serde_json::to_string(self) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            // invariant: the struct has only strings, numbers and lists; serde_json
            // cannot fail on it. Still, never panic: say so in the line itself.
            Err(e) => format!(
                "{{\"v\":{HOOK_EVENT_VERSION},\"type\":\"hooks.encode_error\",\"index\":{},\"error\":{:?}}}\n",
                self.index,
                e.to_string()
            ),
        }
    }

    /// The spool and mount file name: `<index>.json`.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.index)
    }

    fn add_key(&mut self, key: &str) {
        self.key_count = self.key_count.saturating_add(1);
        let listed = self.listed_key_bytes.saturating_add(key.len());
        if self.keys.len() < MAX_HOOK_EVENT_KEYS && listed <= MAX_HOOK_EVENT_KEY_BYTES {
            self.keys.push(key.to_string());
            self.listed_key_bytes = listed;
        }
    }
}

/// The event type of a command's changes, `None` for commands that change no key.
fn command_type(c: &Command) -> Option<&'static str> {
    match c {
        Command::Put(_) | Command::SetAttr { .. } => Some(KV_WRITE),
        Command::Delete { .. } | Command::DeletePrefix { .. } | Command::LeaseRevoke { .. } => {
            Some(KV_DELETE)
        }
        Command::Txn(_) | Command::Rename { .. } => Some(KV_BATCH),
        Command::ExpireLeases { .. } => Some(KV_EXPIRE),
        // Publishes are handled apart (`publish_of`); other topic commands make none.
        // Secret writes are handled apart (`secret_write_of`); other secret commands
        // make none.
        Command::LeaseGrant { .. }
        | Command::LeaseKeepAlive { .. }
        | Command::Topic(_)
        | Command::Secret(_) => None,
    }
}

/// What one applied normal entry tells hooks.
pub struct AppliedEntry<'a> {
    pub index: u64,
    pub stamp_ns: i64,
    pub commands: &'a [(u64, Command)],
    pub results: &'a [CommandResult],
    /// The KV change events of the entry, in apply order (revisions ascending).
    pub changes: &'a [Event],
    /// Store revision before the entry.
    pub revision_before: u64,
}

/// The events of one normal entry: one per event type present, in order of first
/// appearance, each listing the keys of all its commands (several client commands
/// batched into one entry make one event per type). Failed commands (a compare-and-swap
/// that did not hold) and commands that changed nothing make none.
pub fn from_entry(e: &AppliedEntry<'_>, node: NodeId) -> Vec<HookEvent> {
    let mut out: Vec<HookEvent> = Vec::new();
    let mut prev = e.revision_before;
    let mut next_change = 0usize;
    for ((_, command), result) in e.commands.iter().zip(e.results.iter()) {
        let Ok(r) = result else { continue };
        if let Some(published) = publish_of(command, r) {
            add_publish(&mut out, e, node, r.revision(), published);
            continue;
        }
        if let Some(written) = secret_write_of(command, r) {
            add_secret_write(&mut out, e, node, r.revision(), written);
            continue;
        }
        let rev = r.revision();
        if rev <= prev {
            continue;
        }
        prev = rev;
        let Some(kind) = command_type(command) else {
            continue;
        };
        let pos = match out.iter().position(|h| h.kind == kind) {
            Some(p) => p,
            None => {
                let mut h = HookEvent::new(kind, e.index, rev, node);
                h.time_ms = Some(e.stamp_ns.div_euclid(1_000_000));
                out.push(h);
                out.len() - 1
            }
        };
        let Some(h) = out.get_mut(pos) else { continue };
        h.revision = rev;
        while let Some(ch) = e.changes.get(next_change) {
            if ch.revision > rev {
                break;
            }
            next_change += 1;
            if ch.revision < rev {
                continue;
            }
            h.add_key(&ch.key);
            if ch.kind == EventKind::Put {
                if let Some(entry) = &ch.entry {
                    h.value_bytes = h.value_bytes.saturating_add(entry.value.len() as u64);
                }
            }
        }
    }
    out
}

/// A publish that added messages: (topic, first offset, count, bytes).
fn publish_of<'c>(command: &'c Command, r: &WriteResult) -> Option<(&'c str, u64, u64, u64)> {
    match (command, r) {
        (
            Command::Topic(TopicCommand::Publish { topic, messages }),
            WriteResult::Topic {
                outcome: TopicOutcome::Published { first, count },
                ..
            },
        ) if *count > 0 => {
            let bytes = messages.iter().map(|m| m.len() as u64).sum();
            Some((topic, *first, *count, bytes))
        }
        _ => None,
    }
}

/// A secret write that made a version: (path, ciphertext bytes). The value itself, even
/// encrypted, never goes into an event.
fn secret_write_of<'c>(command: &'c Command, r: &WriteResult) -> Option<(&'c str, u64)> {
    match (command, r) {
        (
            Command::Secret(SecretCommand::Put {
                path, ciphertext, ..
            }),
            WriteResult::Secret {
                outcome: SecretOutcome::Written { .. },
                ..
            },
        ) => Some((path, ciphertext.len() as u64)),
        _ => None,
    }
}

/// Adds a secret write to the entry's `secret.write` event (one per entry; `keys` lists
/// the secret paths, `value_bytes` counts ciphertext bytes).
fn add_secret_write(
    out: &mut Vec<HookEvent>,
    e: &AppliedEntry<'_>,
    node: NodeId,
    revision: u64,
    (path, bytes): (&str, u64),
) {
    let pos = match out.iter().position(|h| h.kind == SECRET_WRITE) {
        Some(p) => p,
        None => {
            let mut h = HookEvent::new(SECRET_WRITE, e.index, revision, node);
            h.time_ms = Some(e.stamp_ns.div_euclid(1_000_000));
            out.push(h);
            out.len() - 1
        }
    };
    if let Some(h) = out.get_mut(pos) {
        h.add_key(path);
        h.value_bytes = h.value_bytes.saturating_add(bytes);
    }
}

/// Adds a publish to the entry's `topic.publish` event (one per entry, like the others:
/// several publishes batched into one entry list their topics in one event).
fn add_publish(
    out: &mut Vec<HookEvent>,
    e: &AppliedEntry<'_>,
    node: NodeId,
    revision: u64,
    (topic, first, count, bytes): (&str, u64, u64, u64),
) {
    let pos = match out.iter().position(|h| h.kind == TOPIC_PUBLISH) {
        Some(p) => p,
        None => {
            let mut h = HookEvent::new(TOPIC_PUBLISH, e.index, revision, node);
            h.time_ms = Some(e.stamp_ns.div_euclid(1_000_000));
            h.first_offset = Some(first);
            out.push(h);
            out.len() - 1
        }
    };
    if let Some(h) = out.get_mut(pos) {
        h.add_key(topic);
        h.value_bytes = h.value_bytes.saturating_add(bytes);
        h.messages = Some(h.messages.unwrap_or(0).saturating_add(count));
    }
}

/// Checks an event type pattern: dot-separated segments, each a name, `*` (exactly one
/// segment) or, last only, `>` (one or more segments).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > MAX_HOOK_PATTERN_BYTES {
        return Err(format!(
            "an event pattern has 1 to {MAX_HOOK_PATTERN_BYTES} bytes"
        ));
    }
    let segments: Vec<&str> = pattern.split('.').collect();
    let last = segments.len().saturating_sub(1);
    for (i, s) in segments.iter().enumerate() {
        if s.is_empty() {
            return Err(format!("empty segment in event pattern {pattern:?}"));
        }
        if *s == ">" && i != last {
            return Err(format!("'>' must be the last segment of {pattern:?}"));
        }
        if s.len() > 1 && (s.contains('*') || s.contains('>')) {
            return Err(format!(
                "'*' and '>' stand for whole segments in {pattern:?}"
            ));
        }
    }
    Ok(())
}

/// Whether event type `kind` matches `pattern` (already checked).
pub fn pattern_matches(pattern: &str, kind: &str) -> bool {
    let mut want = pattern.split('.');
    let mut have = kind.split('.');
    loop {
        match (want.next(), have.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(h)) if w == h => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{EntryKind, EntryRecord, PutOp, WriteResult};

    fn record(value: &[u8]) -> EntryRecord {
        EntryRecord {
            kind: EntryKind::File,
            value: value.to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            create_revision: 1,
            mod_revision: 1,
            version: 1,
            lease: 0,
            xattrs: Vec::new(),
            rdev: 0,
            subdirs: 0,
        }
    }

    fn change(rev: u64, key: &str, value: Option<&[u8]>) -> Event {
        Event {
            revision: rev,
            kind: if value.is_some() {
                EventKind::Put
            } else {
                EventKind::Delete
            },
            key: key.to_string(),
            entry: value.map(record),
            origin: 0,
            log_index: 9,
        }
    }

    fn put_result(rev: u64) -> CommandResult {
        Ok(WriteResult::Deleted {
            revision: rev,
            deleted: 0,
        })
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("kv.write", "kv.write"));
        assert!(pattern_matches("kv.*", "kv.write"));
        assert!(pattern_matches("*.write", "kv.write"));
        assert!(pattern_matches(">", "raft.snapshot_created"));
        assert!(pattern_matches("kv.>", "kv.delete"));
        assert!(!pattern_matches("kv.>", "kv"));
        assert!(!pattern_matches("kv.*", "raft.leader_change"));
        assert!(!pattern_matches("*", "kv.write"));
        assert!(!pattern_matches("kv.write.x", "kv.write"));
        assert!(check_pattern("kv.*").is_ok());
        assert!(check_pattern("kv.>").is_ok());
        assert!(check_pattern(">.kv").is_err());
        assert!(check_pattern("kv..x").is_err());
        assert!(check_pattern("kv.wr*").is_err());
        assert!(check_pattern("").is_err());
    }

    /// Publishes make one `topic.publish` event per entry, with the topics, the first
    /// offset, the message count and bytes; a failed publish and other topic commands
    /// make none.
    #[test]
    fn topic_publishes() {
        let publish = |topic: &str, ms: &[&[u8]]| {
            Command::Topic(TopicCommand::Publish {
                topic: topic.into(),
                messages: ms.iter().map(|m| m.to_vec()).collect(),
            })
        };
        let published = |first, count| {
            Ok(WriteResult::Topic {
                revision: 10,
                outcome: TopicOutcome::Published { first, count },
            })
        };
        let commands = vec![
            (1, publish("orders", &[b"abc", b"de"])),
            (1, publish("missing", &[b"x"])),
            (
                1,
                Command::Topic(TopicCommand::Ack {
                    topic: "orders".into(),
                    group: "g".into(),
                    offset: 0,
                }),
            ),
            (2, publish("audit", &[b"f"])),
        ];
        let results = vec![
            published(5, 2),
            Err(crate::error::Error::not_found("topic")),
            Ok(WriteResult::Topic {
                revision: 10,
                outcome: TopicOutcome::Done,
            }),
            published(0, 1),
        ];
        let entry = AppliedEntry {
            index: 4,
            stamp_ns: 7_000_000,
            commands: &commands,
            results: &results,
            changes: &[],
            revision_before: 10,
        };
        let events = from_entry(&entry, 1);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, TOPIC_PUBLISH);
        assert_eq!(e.keys, vec!["orders", "audit"]);
        assert_eq!(
            (e.first_offset, e.messages, e.value_bytes),
            (Some(5), Some(3), 6)
        );
        assert!(e.json_line().contains("\"type\":\"topic.publish\""));
    }

    #[test]
    fn secret_writes_make_one_event_with_paths_and_sizes_never_values() {
        let put = |path: &str, ct: &[u8]| {
            Command::Secret(SecretCommand::Put {
                path: path.into(),
                ciphertext: ct.to_vec(),
                cas: None,
            })
        };
        let written = |version| {
            Ok(WriteResult::Secret {
                revision: 3,
                outcome: SecretOutcome::Written { version },
            })
        };
        let commands = vec![
            (1, put("app/db", b"age-encryption.org/v1\nAAAA")),
            (1, put("app/cas-failed", b"age-encryption.org/v1\nBBBB")),
            (
                2,
                Command::Secret(SecretCommand::Delete {
                    path: "app/db".into(),
                    versions: vec![],
                }),
            ),
            (2, put("app/api", b"age-encryption.org/v1\nCC")),
        ];
        let results = vec![
            written(1),
            Err(crate::error::Error::new(
                crate::error::ErrorKind::CompareFailed,
                "cas",
            )),
            Ok(WriteResult::Secret {
                revision: 3,
                outcome: SecretOutcome::Changed { versions: vec![1] },
            }),
            written(4),
        ];
        let entry = AppliedEntry {
            index: 9,
            stamp_ns: 5_000_000,
            commands: &commands,
            results: &results,
            changes: &[],
            revision_before: 3,
        };
        let events = from_entry(&entry, 2);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, SECRET_WRITE);
        assert_eq!(e.keys, vec!["app/db", "app/api"]);
        assert_eq!(e.value_bytes, 26 + 24);
        let line = e.json_line();
        assert!(line.contains("\"type\":\"secret.write\""), "{line}");
        assert!(
            !line.contains("AAAA") && !line.contains("age-encryption"),
            "{line}"
        );
    }

    #[test]
    fn one_event_per_type_and_failed_commands_make_none() {
        let cas_fail = Command::Put(PutOp::file("c", b"x".to_vec()));
        let commands = vec![
            (1, Command::Put(PutOp::file("a", b"12345".to_vec()))),
            (1, cas_fail),
            (
                2,
                Command::Delete {
                    key: "b".into(),
                    mode: crate::kv::DeleteMode::Any,
                },
            ),
            (2, Command::Put(PutOp::file("d", b"xy".to_vec()))),
        ];
        let results = vec![
            put_result(11),
            Err(crate::error::Error::new(
                crate::error::ErrorKind::CompareFailed,
                "no",
            )),
            put_result(12),
            put_result(13),
        ];
        let changes = vec![
            change(11, "a", Some(b"12345")),
            change(12, "b", None),
            change(13, "d", Some(b"xy")),
        ];
        let entry = AppliedEntry {
            index: 9,
            stamp_ns: 5_000_000,
            commands: &commands,
            results: &results,
            changes: &changes,
            revision_before: 10,
        };
        let events = from_entry(&entry, 3);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, KV_WRITE);
        assert_eq!(events[0].keys, vec!["a", "d"]);
        assert_eq!(events[0].revision, 13);
        assert_eq!(events[0].value_bytes, 7);
        assert_eq!(events[0].time_ms, Some(5));
        assert_eq!(events[0].node, 3);
        assert_eq!(events[1].kind, KV_DELETE);
        assert_eq!(events[1].keys, vec!["b"]);
        let line = events[0].json_line();
        assert!(line.starts_with("{\"v\":1,\"type\":\"kv.write\",\"index\":9,"));
        assert!(line.ends_with("}\n"));
    }

    #[test]
    fn listed_keys_are_bounded_and_counted() {
        let commands = vec![(1, Command::DeletePrefix { prefix: "p".into() })];
        let results = vec![put_result(2)];
        for (n, len, listed) in [(2000, 4, MAX_HOOK_EVENT_KEYS), (100, 300, 27)] {
            let changes: Vec<Event> = (0..n)
                .map(|i| change(2, &format!("{i:0len$}"), None))
                .collect();
            let entry = AppliedEntry {
                index: 3,
                stamp_ns: 0,
                commands: &commands,
                results: &results,
                changes: &changes,
                revision_before: 1,
            };
            let events = from_entry(&entry, 1);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, KV_DELETE);
            assert_eq!(events[0].key_count, n as u64);
            assert_eq!(events[0].keys.len(), listed);
            let bytes: usize = events[0].keys.iter().map(String::len).sum();
            assert!(bytes <= MAX_HOOK_EVENT_KEY_BYTES);
        }
    }

    #[test]
    fn a_command_that_changed_nothing_makes_no_event() {
        let commands = vec![(
            1,
            Command::Delete {
                key: "missing".into(),
                mode: crate::kv::DeleteMode::Any,
            },
        )];
        let results = vec![put_result(10)];
        let entry = AppliedEntry {
            index: 4,
            stamp_ns: 0,
            commands: &commands,
            results: &results,
            changes: &[],
            revision_before: 10,
        };
        assert!(from_entry(&entry, 1).is_empty());
    }
}
