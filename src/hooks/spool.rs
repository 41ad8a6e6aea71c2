//! The spool directory (`--hook-dir`, default `<data-dir>/hooks`): a node's delivered
//! hook events as files on a local file system, where inotify works natively.
//!
//! - `<type>/<log-index>.json`: one file per event, written to `.tmp/` and renamed in
//!   place, so a watcher sees MOVED_TO of a complete file; at most
//!   `MAX_HOOK_SPOOL_FILES_PER_TYPE` per type, the oldest removed first.
//! - `events`: every event as a JSON line, appended; past `MAX_HOOK_EVENTS_FILE_BYTES`
//!   it is renamed to `events.1` (replacing the previous one) and a new one starts.
//!
//! Delivery after a crash may offer events again (see `outbox`): an event file that
//! exists is not rewritten, and an event already at the end of `events` is not appended.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hooks::event::{HookEvent, EVENT_TYPES};
use crate::limits::{
    HOOK_EVENTS_TAIL_READ_BYTES, MAX_HOOK_EVENTS_FILE_BYTES, MAX_HOOK_SPOOL_FILES_PER_TYPE,
};

const EVENTS_FILE: &str = "events";
const EVENTS_ROTATED: &str = "events.1";
const TMP_DIR: &str = ".tmp";

pub struct Spool {
    dir: PathBuf,
    /// Indices of the event files of each type, oldest first.
    files: HashMap<String, BTreeSet<u64>>,
    events_bytes: u64,
    /// The log index of the last event in `events` and the types appended at it.
    last_appended: Option<(u64, Vec<String>)>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("hook spool: {what} {}: {e}", path.display()))
}

/// The index of an event file name `<index>.json`.
fn index_of(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

impl Spool {
    /// Opens (creating) the spool; returns it with the recent events found at the end
    /// of its `events` file, oldest first.
    pub fn open(dir: &Path) -> Result<(Spool, Vec<HookEvent>)> {
        let tmp = dir.join(TMP_DIR);
        std::fs::create_dir_all(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        // Temporaries of a write a crash interrupted.
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            files: HashMap::new(),
            events_bytes: 0,
            last_appended: None,
        };
        for kind in EVENT_TYPES {
            spool.scan_type(kind);
        }
        let events = dir.join(EVENTS_FILE);
        let recent = match std::fs::metadata(&events) {
            Ok(m) => {
                spool.events_bytes = m.len();
                read_tail(&events, m.len())
            }
            Err(_) => Vec::new(),
        };
        if let Some(last) = recent.last() {
            let kinds = recent
                .iter()
                .filter(|e| e.index == last.index)
                .map(|e| e.kind.clone())
                .collect();
            spool.last_appended = Some((last.index, kinds));
        }
        Ok((spool, recent))
    }

    /// Learns the event files of one type, trimming beyond the bound.
    fn scan_type(&mut self, kind: &str) {
        let type_dir = self.dir.join(kind);
        let Ok(entries) = std::fs::read_dir(&type_dir) else {
            return;
        };
        let mut found = BTreeSet::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(index) = name.to_str().and_then(index_of) else {
                continue;
            };
            found.insert(index);
            if found.len() > MAX_HOOK_SPOOL_FILES_PER_TYPE {
                if let Some(old) = found.pop_first() {
                    let _ = std::fs::remove_file(type_dir.join(format!("{old}.json")));
                }
            }
        }
        self.files.insert(kind.to_string(), found);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one event: its file (unless it exists) and its `events` line (unless it
    /// is there already).
    pub fn write(&mut self, event: &HookEvent, line: &str) -> Result<()> {
        self.write_file(event, line)?;
        self.append_line(event, line)
    }

    fn write_file(&mut self, event: &HookEvent, line: &str) -> Result<()> {
        let type_dir = self.dir.join(&event.kind);
        let name = event.file_name();
        let path = type_dir.join(&name);
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&type_dir).map_err(|e| io_err("cannot create", &type_dir, e))?;
        let tmp = self
            .dir
            .join(TMP_DIR)
            .join(format!("{}-{name}", event.kind));
        std::fs::write(&tmp, line.as_bytes()).map_err(|e| io_err("cannot write", &tmp, e))?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err("cannot rename into", &path, e));
        }
        let files = self.files.entry(event.kind.clone()).or_default();
        files.insert(event.index);
        while files.len() > MAX_HOOK_SPOOL_FILES_PER_TYPE {
            let Some(old) = files.pop_first() else { break };
            let old_path = type_dir.join(format!("{old}.json"));
            match std::fs::remove_file(&old_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("cannot remove", &old_path, e)),
            }
        }
        Ok(())
    }

    fn already_appended(&self, event: &HookEvent) -> bool {
        match &self.last_appended {
            Some((index, _)) if event.index < *index => true,
            Some((index, kinds)) if event.index == *index => kinds.contains(&event.kind),
            _ => false,
        }
    }

    fn append_line(&mut self, event: &HookEvent, line: &str) -> Result<()> {
        if self.already_appended(event) {
            return Ok(());
        }
        let events = self.dir.join(EVENTS_FILE);
        let len = line.len() as u64;
        if self.events_bytes > 0
            && self.events_bytes.saturating_add(len) > MAX_HOOK_EVENTS_FILE_BYTES
        {
            let rotated = self.dir.join(EVENTS_ROTATED);
            std::fs::rename(&events, &rotated).map_err(|e| io_err("cannot rotate", &events, e))?;
            self.events_bytes = 0;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&events)
            .map_err(|e| io_err("cannot open", &events, e))?;
        f.write_all(line.as_bytes())
            .map_err(|e| io_err("cannot append to", &events, e))?;
        self.events_bytes = self.events_bytes.saturating_add(len);
        match &mut self.last_appended {
            Some((index, kinds)) if *index == event.index => kinds.push(event.kind.clone()),
            other => *other = Some((event.index, vec![event.kind.clone()])),
        }
        Ok(())
    }
}

/// The events in the last `HOOK_EVENTS_TAIL_READ_BYTES` of `path` (a cut first line and
/// lines that do not parse are skipped).
fn read_tail(path: &Path, len: u64) -> Vec<HookEvent> {
    let start = len.saturating_sub(HOOK_EVENTS_TAIL_READ_BYTES);
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.take(HOOK_EVENTS_TAIL_READ_BYTES)
        .read_to_end(&mut buf)
        .is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.lines();
    if start > 0 {
        lines.next();
    }
    lines
        .filter_map(|l| serde_json::from_str::<HookEvent>(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, index: u64) -> HookEvent {
        HookEvent::new(kind, index, index, 1)
    }

    #[test]
    fn files_lines_bounds_and_no_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, recent) = Spool::open(dir.path()).unwrap();
        assert!(recent.is_empty());
        let total = MAX_HOOK_SPOOL_FILES_PER_TYPE as u64 + 5;
        for i in 1..=total {
            let e = ev("kv.write", i);
            spool.write(&e, &e.json_line()).unwrap();
        }
        let names: Vec<String> = std::fs::read_dir(dir.path().join("kv.write"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), MAX_HOOK_SPOOL_FILES_PER_TYPE);
        assert!(!names.contains(&"5.json".to_string()));
        assert!(names.contains(&"6.json".to_string()));
        let body = std::fs::read_to_string(dir.path().join("kv.write/6.json")).unwrap();
        assert_eq!(body, ev("kv.write", 6).json_line());
        assert!(std::fs::read_dir(dir.path().join(".tmp"))
            .unwrap()
            .next()
            .is_none());
        // Reopened (a restart): the last events are offered again and skipped.
        drop(spool);
        let (mut spool, recent) = Spool::open(dir.path()).unwrap();
        assert_eq!(recent.last().unwrap().index, total);
        let e = ev("kv.write", total);
        spool.write(&e, &e.json_line()).unwrap();
        let e = ev("kv.delete", total);
        spool.write(&e, &e.json_line()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("events")).unwrap();
        assert_eq!(text.lines().count() as u64, total + 1);
        assert_eq!(
            text.lines()
                .filter(|l| l.contains(&format!("\"index\":{total},")))
                .count(),
            2
        );
    }
}
