//! The `/hooks` tree of a mount over a `MemoryBackend`: the recent event log, one
//! directory per type with one file per event, read-only, and a reader that keeps
//! `/hooks/events` open sees lines added after its open.

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom};

use common::*;

fn line(kind: &str, index: u64) -> String {
    format!("{{\"v\":1,\"type\":\"{kind}\",\"index\":{index}}}\n")
}

#[test]
fn events_types_and_files() {
    let Some(f) = Fixture::new() else { return };
    let b = &f.backend;
    b.push_hook_event("kv.write", 7, line("kv.write", 7).as_bytes());
    b.push_hook_event("kv.delete", 9, line("kv.delete", 9).as_bytes());
    b.push_hook_event("kv.write", 12, line("kv.write", 12).as_bytes());

    let mut names: Vec<String> = fs::read_dir(f.path("hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["events", "kv.delete", "kv.write"]);
    assert!(fs::metadata(f.path("hooks/kv.write")).unwrap().is_dir());

    let all = format!(
        "{}{}{}",
        line("kv.write", 7),
        line("kv.delete", 9),
        line("kv.write", 12)
    );
    assert_eq!(fs::read_to_string(f.path("hooks/events")).unwrap(), all);
    assert_eq!(
        fs::metadata(f.path("hooks/events")).unwrap().len(),
        all.len() as u64
    );

    let mut files: Vec<String> = fs::read_dir(f.path("hooks/kv.write"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["12.json", "7.json"]);
    assert_eq!(
        fs::read_to_string(f.path("hooks/kv.write/7.json")).unwrap(),
        line("kv.write", 7)
    );
    assert_eq!(
        errno(fs::metadata(f.path("hooks/kv.write/9.json"))),
        libc::ENOENT
    );
    assert_eq!(
        errno(fs::metadata(f.path("hooks/kv.write/007.json"))),
        libc::ENOENT
    );
    assert_eq!(errno(fs::metadata(f.path("hooks/no.such"))), libc::ENOENT);

    // Read-only.
    assert_eq!(
        errno(fs::write(f.path("hooks/kv.write/7.json"), b"x")),
        libc::EACCES
    );
    assert_eq!(
        errno(fs::write(f.path("hooks/kv.write/99.json"), b"x")),
        libc::EOPNOTSUPP
    );
    assert_eq!(
        errno(fs::remove_file(f.path("hooks/events"))),
        libc::EOPNOTSUPP
    );
}

#[test]
fn an_open_reader_follows_new_events() {
    let Some(f) = Fixture::new() else { return };
    let b = &f.backend;
    b.push_hook_event("kv.write", 1, line("kv.write", 1).as_bytes());
    let mut file = fs::File::open(f.path("hooks/events")).unwrap();
    let mut first = String::new();
    file.read_to_string(&mut first).unwrap();
    assert_eq!(first, line("kv.write", 1));
    b.push_hook_event("kv.write", 2, line("kv.write", 2).as_bytes());
    // What `tail -f` does: stat the open file, then read from where it stopped.
    let len = file.metadata().unwrap().len();
    assert_eq!(len, (first.len() + line("kv.write", 2).len()) as u64);
    file.seek(SeekFrom::Start(first.len() as u64)).unwrap();
    let mut more = String::new();
    file.read_to_string(&mut more).unwrap();
    assert_eq!(more, line("kv.write", 2));
}
