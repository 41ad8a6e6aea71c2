//! The hook-stream check of a robustness run: each node's spool `events` file (with the
//! rotated `events.1` before it) must hold its events in log order without duplicates,
//! and every node must have delivered the same events for the replicated entries
//! (`kv.*`, `raft.leader_change`, `cluster.membership_change`, `topic.publish`; snapshot
//! events are each node's own). Faults include kill -9 between apply and delivery, so
//! this checks exactly-once delivery across crashes. Rotation drops old lines, so nodes
//! are compared over the window all of them still hold.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The fields of an event line the check needs.
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    index: u64,
    #[serde(default)]
    revision: u64,
}

/// One node's delivered events, in file order: (index, type).
pub type Delivered = Vec<(u64, String)>;

/// What a node's spool holds: its events, and whether the file has rotated (so older
/// events may be gone).
#[derive(Debug, Clone, Default)]
pub struct SpoolEvents {
    pub events: Delivered,
    pub rotated: bool,
    /// The highest store revision a `kv.*` event reached.
    pub kv_revision: u64,
}

/// The spool directory of a node with data dir `data_dir` (the default `--hook-dir`).
pub fn spool_of(data_dir: &Path) -> PathBuf {
    data_dir.join("hooks")
}

/// Reads a node's delivered events; problems reading them are anomalies.
pub fn read_spool(dir: &Path) -> Result<SpoolEvents, String> {
    let mut out = SpoolEvents::default();
    for name in ["events.1", "events"] {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        out.rotated |= name == "events.1";
        for (n, line) in text.lines().enumerate() {
            let l: Line = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}: {line}", path.display(), n + 1))?;
            if l.kind.starts_with("kv.") {
                out.kv_revision = out.kv_revision.max(l.revision);
            }
            out.events.push((l.index, l.kind));
        }
    }
    Ok(out)
}

fn replicated(kind: &str) -> bool {
    !kind.starts_with("raft.snapshot_")
}

/// The highest log index of a replicated event a node delivered.
pub fn last_index(s: &SpoolEvents) -> u64 {
    s.events
        .iter()
        .filter(|(_, k)| replicated(k))
        .map(|(i, _)| *i)
        .max()
        .unwrap_or(0)
}

/// Problems across the nodes' delivered events (`nodes[i]` is node i + 1): out of order,
/// twice, different between nodes, or short of `final_revision` (the store revision
/// after the run, which the last `kv.*` event must reach on every node).
pub fn check(spools: &[SpoolEvents], final_revision: u64) -> Vec<String> {
    let nodes: Vec<&Delivered> = spools.iter().map(|s| &s.events).collect();
    let mut anomalies = Vec::new();
    for (i, s) in spools.iter().enumerate() {
        if s.kv_revision < final_revision {
            anomalies.push(format!(
                "node {}: hook events reach revision {}, the store {final_revision}",
                i + 1,
                s.kv_revision
            ));
        }
    }
    for (i, d) in nodes.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let mut prev = 0u64;
        for (index, kind) in d.iter().filter(|(_, k)| replicated(k)) {
            if *index < prev {
                anomalies.push(format!(
                    "node {}: hook event {kind} at index {index} after index {prev}",
                    i + 1
                ));
            }
            prev = prev.max(*index);
            if !seen.insert((*index, kind.clone())) {
                anomalies.push(format!(
                    "node {}: hook event {kind} at index {index} delivered twice",
                    i + 1
                ));
            }
        }
    }
    // Compare over the window every node still holds (rotation drops old lines).
    let any_rotated = spools.iter().any(|s| s.rotated);
    let from = nodes
        .iter()
        .filter(|_| any_rotated)
        .map(|d| {
            d.iter()
                .filter(|(_, k)| replicated(k))
                .map(|(i, _)| *i)
                .min()
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    let sets: Vec<BTreeSet<(u64, &str)>> = nodes
        .iter()
        .map(|d| {
            d.iter()
                .filter(|(i, k)| replicated(k) && *i >= from)
                .map(|(i, k)| (*i, k.as_str()))
                .collect()
        })
        .collect();
    if let Some(first) = sets.first() {
        for (i, s) in sets.iter().enumerate().skip(1) {
            let missing: Vec<_> = first.difference(s).take(5).collect();
            let extra: Vec<_> = s.difference(first).take(5).collect();
            if !missing.is_empty() || !extra.is_empty() {
                anomalies.push(format!(
                    "hook events differ between node 1 and node {} from index {from}: \
                     node {} lacks {missing:?}, has extra {extra:?}",
                    i + 1,
                    i + 1
                ));
            }
        }
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(events: &[(u64, &str)]) -> SpoolEvents {
        SpoolEvents {
            events: events.iter().map(|(i, k)| (*i, k.to_string())).collect(),
            rotated: false,
            kv_revision: 9,
        }
    }

    #[test]
    fn agreeing_nodes_pass_and_every_kind_of_divergence_fails() {
        let a = d(&[
            (3, "kv.write"),
            (4, "raft.snapshot_created"),
            (5, "kv.delete"),
        ]);
        let b = d(&[(3, "kv.write"), (5, "kv.delete")]);
        assert!(check(&[a.clone(), b.clone()], 9).is_empty());
        let dup = d(&[(3, "kv.write"), (5, "kv.delete"), (5, "kv.delete")]);
        assert_eq!(check(&[a.clone(), dup], 9).len(), 1);
        let lost = d(&[(3, "kv.write")]);
        assert_eq!(check(&[a.clone(), lost], 9).len(), 1);
        let unordered = d(&[(5, "kv.delete"), (3, "kv.write")]);
        assert_eq!(check(&[b.clone(), unordered], 9).len(), 1);
        // Short of the final revision.
        assert_eq!(check(std::slice::from_ref(&b), 10).len(), 1);
        // A node that lost its first event fails; after a rotation (which drops old
        // lines) nodes are compared from the first index all of them hold.
        let first_lost = d(&[(5, "kv.delete")]);
        assert_eq!(check(&[a.clone(), first_lost.clone()], 9).len(), 1);
        let rotated = SpoolEvents {
            rotated: true,
            ..first_lost
        };
        assert!(check(&[a, rotated], 9).is_empty());
    }
}
