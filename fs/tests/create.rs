//! Deferred create through a mount: a file created without O_EXCL is stored with its
//! contents in one put at its first flush/fsync/close; until then this mount shows it
//! (lookup, stat, readdir), unlink cancels it, other operations store it first, and a
//! failed store is reported at close.

mod common;

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::{AsRawFd, IntoRawFd};
use std::path::Path;
use std::process::Command;

use aspen_fs::memory::MemoryBackend;
use aspen_fs::MountConfig;
use common::*;

/// Closes `file` with close(2) and returns its result (the errno of a failed commit).
fn close(file: fs::File) -> std::io::Result<()> {
    let fd = file.into_raw_fd();
    check(unsafe { libc::close(fd) }.into()).map(|_| ())
}

/// Runs a command line of `shell` with `$1` set to `arg`; false (after a notice) when
/// that shell is not installed.
fn run(shell: &str, script: &str, arg: &Path) -> bool {
    match Command::new(shell)
        .arg("-c")
        .arg(script)
        .arg(shell)
        .arg(arg)
        .status()
    {
        Ok(s) => {
            assert!(s.success(), "{shell} -c {script:?} failed: {s}");
            true
        }
        Err(e) => {
            eprintln!("SKIPPED part: no {shell} ({e})");
            false
        }
    }
}

fn sh(script: &str, arg: &Path) -> bool {
    run("sh", script, arg)
}

fn listed(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Waits until every handle of the mount is released (release follows close() later).
fn wait_released(f: &Fixture) {
    assert!(
        wait_for(|| f.handle().stats().open_handles == 0),
        "handles still open: {:?}",
        f.handle().stats()
    );
}

#[test]
fn a_new_file_is_stored_by_the_first_close() {
    let Some(f) = Fixture::new() else { return };
    // A shell redirection closes a duplicate before it writes: the empty file is stored
    // there, the contents at the last close. Two puts, neither under the directory lock.
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    if sh("printf x > \"$1\"", &f.kv("f")) {
        assert_eq!(f.backend.put_count(), puts + 2, "empty file, then contents");
        assert_eq!(f.backend.revision(), rev + 2, "and no other write");
        assert_eq!(f.value("f").unwrap(), b"x");
        assert_eq!(fs::read(f.kv("f")).unwrap(), b"x");
    }
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    if run("bash", "printf x > \"$1\"", &f.kv("g")) {
        assert_eq!(f.backend.put_count(), puts + 2, "the same in bash");
        assert_eq!(f.backend.revision(), rev + 2);
        assert_eq!(f.value("g").unwrap(), b"x");
    }

    // An empty redirection closes twice; the second close has nothing new to store.
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    if sh(": > \"$1\"", &f.kv("redirected")) {
        assert_eq!(f.backend.put_count(), puts + 1);
        assert_eq!(f.backend.revision(), rev + 1);
        assert_eq!(f.value("redirected").unwrap(), b"");
    }

    // The same by hand: once close(2) returns, the file exists for everyone.
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    let file = fs::File::create(f.kv("dup")).unwrap();
    let mut dup = file.try_clone().unwrap();
    close(file).unwrap();
    assert_eq!(f.value("dup").unwrap(), b"", "stored by the first close");
    dup.write_all(b"via dup").unwrap();
    close(dup).unwrap();
    assert_eq!(f.value("dup").unwrap(), b"via dup");
    assert_eq!(f.backend.put_count(), puts + 2);
    assert_eq!(f.backend.revision(), rev + 2);

    // create + write + close: one put, stored before close(2) returns.
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    let mut file = fs::File::create(f.kv("one")).unwrap();
    file.write_all(b"once").unwrap();
    close(file).unwrap();
    assert_eq!(f.value("one").unwrap(), b"once");
    assert_eq!(f.backend.put_count(), puts + 1);
    assert_eq!(f.backend.revision(), rev + 1);

    // create + close with nothing written: an empty file, one put, at close.
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    close(fs::File::create(f.kv("empty")).unwrap()).unwrap();
    assert_eq!(f.value("empty").unwrap(), b"");
    wait_released(&f);
    assert_eq!(f.backend.put_count(), puts + 1);
    assert_eq!(f.backend.revision(), rev + 1);

    // touch(1): the empty file is stored when it closes the descriptor it duplicated,
    // then utimensat sets the times on the stored file.
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    match Command::new("touch").arg(f.kv("touched")).status() {
        Ok(s) => {
            assert!(s.success());
            assert_eq!(f.backend.put_count(), puts + 1, "one put for touch");
            assert_eq!(f.backend.revision(), rev + 2, "and the times");
            assert_eq!(f.value("touched").unwrap(), b"");
            let m = fs::metadata(f.kv("touched")).unwrap();
            assert_eq!(m.len(), 0);
            assert_eq!(m.mtime(), f.attr("touched").mtime_ns / 1_000_000_000);
        }
        Err(e) => eprintln!("SKIPPED part: no touch ({e})"),
    }

    // The new file has the caller's ids and the requested mode under the umask.
    let a = f.attr("empty");
    assert_eq!(
        (a.uid, a.gid),
        (unsafe { libc::geteuid() }, unsafe { libc::getegid() })
    );
    let umask = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:").map(|u| u.trim().to_string()))
        .map(|u| u32::from_str_radix(&u, 8).unwrap())
        .unwrap();
    assert_eq!(a.mode, 0o666 & !umask);
    assert_eq!(a.version, 1);
    assert_eq!(f.handle().stats().pending_creates, 0);
}

#[test]
fn excl_create_is_stored_at_once() {
    let Some(f) = Fixture::new() else { return };
    fs::write(f.kv("taken"), b"t").unwrap();
    let e = errno(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(f.kv("taken")),
    );
    assert_eq!(e, libc::EEXIST);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(f.kv("new"))
        .unwrap();
    assert_eq!(f.value("new").unwrap(), b"", "in the backend before close");
    assert_eq!(f.handle().stats().pending_creates, 0);
    file.write_all(b"excl").unwrap();
    drop(file);
    assert_eq!(f.value("new").unwrap(), b"excl");
    // The name is now taken for another O_EXCL create.
    let e = errno(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(f.kv("new")),
    );
    assert_eq!(e, libc::EEXIST);
}

#[test]
fn a_pending_file_is_shown_here_only() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("d")).unwrap();
    for n in ["a", "c", "e"] {
        fs::write(f.kv(&format!("d/{n}")), n).unwrap();
    }
    let puts = f.backend.put_count();
    let dir_before = fs::metadata(f.kv("d")).unwrap();
    // Let the clock move past the directory's last change.
    assert!(wait_for(|| std::time::SystemTime::now()
        > dir_before.modified().unwrap()
            + std::time::Duration::from_millis(2)));
    let mut b = fs::File::create(f.kv("d/b")).unwrap();
    let mut z = fs::File::create(f.kv("d/z")).unwrap();
    let a0 = fs::File::create(f.kv("d/0")).unwrap();
    b.write_all(b"hello").unwrap();
    z.write_all(b"zz").unwrap();
    assert_eq!(f.backend.put_count(), puts, "nothing stored before close");
    assert!(f.value("d/b").is_none());
    assert_eq!(f.handle().stats().pending_creates, 3);

    // The directory's times moved with the creates, before anything is stored.
    assert!(dir_before.modified().unwrap() < fs::metadata(f.kv("d")).unwrap().modified().unwrap());

    // ls shows them, in order, once; stat shows what was written.
    assert_eq!(listed(&f.kv("d")), ["0", "a", "b", "c", "e", "z"]);
    for e in fs::read_dir(f.kv("d")).unwrap() {
        e.unwrap().metadata().unwrap();
    }
    assert_eq!(fs::metadata(f.kv("d/b")).unwrap().len(), 5);
    assert_eq!(b.metadata().unwrap().len(), 5);
    assert_eq!(fs::metadata(f.kv("d/z")).unwrap().len(), 2);
    assert!(fs::metadata(f.kv("d/0")).unwrap().is_file());
    b.write_all(b" world").unwrap();
    assert_eq!(fs::metadata(f.kv("d/b")).unwrap().len(), 11);

    // A name that appears in the backend meanwhile is listed once; the last writer
    // (the close below) wins.
    let before = f.handle().stats().applied_changes;
    f.backend.external_put("d/z", b"theirs").unwrap();
    assert!(wait_for(|| f.handle().stats().applied_changes > before));
    assert_eq!(listed(&f.kv("d")), ["0", "a", "b", "c", "e", "z"]);

    drop(b);
    drop(z);
    drop(a0);
    // "0" was closed with nothing written: its release stores it.
    wait_released(&f);
    assert_eq!(f.value("d/b").unwrap(), b"hello world");
    assert_eq!(f.value("d/z").unwrap(), b"zz");
    assert_eq!(f.value("d/0").unwrap(), b"");
    assert_eq!(f.handle().stats().pending_creates, 0);
    assert_eq!(listed(&f.kv("d")), ["0", "a", "b", "c", "e", "z"]);
    assert_eq!(fs::read(f.kv("d/b")).unwrap(), b"hello world");
}

#[test]
fn pending_files_in_a_large_listing() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("big")).unwrap();
    let mut want = BTreeSet::new();
    for i in 0..600 {
        let n = format!("n{i:04}");
        fs::write(f.kv(&format!("big/{n}")), b"").unwrap();
        want.insert(n);
    }
    // Pending names around the backend's page boundaries (pages of 256 entries).
    let mut open = Vec::new();
    for n in ["a", "n0000a", "n0255z", "n0256", "n0511a", "n0599z", "zz"] {
        open.push(fs::File::create(f.kv(&format!("big/{n}"))).unwrap());
        want.insert(n.to_string());
    }
    let names = listed(&f.kv("big"));
    let sorted: Vec<String> = want.iter().cloned().collect();
    assert_eq!(names, sorted, "every name once, in order");
    drop(open);
    assert_eq!(listed(&f.kv("big")), sorted);
}

#[test]
fn unlink_of_a_pending_file_stores_nothing() {
    let Some(f) = Fixture::new() else { return };
    let (puts, rev) = (f.backend.put_count(), f.backend.revision());
    let mut file = fs::File::create(f.kv("gone")).unwrap();
    file.write_all(b"data").unwrap();
    fs::remove_file(f.kv("gone")).unwrap();
    assert!(!f.kv("gone").exists());
    assert_eq!(listed(&f.kv("")), Vec::<String>::new());
    // The open file lives on, unlinked.
    file.write_all(b" more").unwrap();
    assert_eq!(file.metadata().unwrap().nlink(), 0);
    close(file).unwrap();
    wait_released(&f);
    assert!(f.value("gone").is_none(), "not created at close");
    assert_eq!((f.backend.put_count(), f.backend.revision()), (puts, rev));
    assert!(!f.kv("gone").exists());
    assert_eq!(f.handle().stats().pending_creates, 0);

    // The name is free for a new file.
    fs::write(f.kv("gone"), b"again").unwrap();
    assert_eq!(f.value("gone").unwrap(), b"again");
}

#[test]
fn other_operations_store_a_pending_file_first() {
    let Some(f) = Fixture::new() else { return };
    // rename
    let mut file = fs::File::create(f.kv("a")).unwrap();
    file.write_all(b"before ").unwrap();
    fs::rename(f.kv("a"), f.kv("b")).unwrap();
    assert!(f.value("a").is_none());
    assert_eq!(f.value("b").unwrap(), b"before ");
    file.write_all(b"after").unwrap();
    drop(file);
    assert_eq!(f.value("b").unwrap(), b"before after");

    // chmod
    let mut file = fs::File::create(f.kv("c")).unwrap();
    file.write_all(b"1").unwrap();
    fs::set_permissions(f.kv("c"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(f.value("c").unwrap(), b"1");
    assert_eq!(f.attr("c").mode, 0o600);
    file.write_all(b"2").unwrap();
    drop(file);
    assert_eq!(f.value("c").unwrap(), b"12");
    assert_eq!(f.attr("c").mode, 0o600);

    // Another open (cat) sees what was written so far.
    let mut file = fs::File::create(f.kv("r")).unwrap();
    file.write_all(b"abc").unwrap();
    assert_eq!(fs::read(f.kv("r")).unwrap(), b"abc");
    assert_eq!(f.value("r").unwrap(), b"abc");
    file.write_all(b"def").unwrap();
    drop(file);
    assert_eq!(f.value("r").unwrap(), b"abcdef");

    // A rename over a pending file replaces it.
    fs::write(f.kv("src"), b"src").unwrap();
    let mut file = fs::File::create(f.kv("dst")).unwrap();
    file.write_all(b"replaced").unwrap();
    fs::rename(f.kv("src"), f.kv("dst")).unwrap();
    drop(file);
    wait_released(&f);
    assert_eq!(f.value("dst").unwrap(), b"src");
    assert!(f.value("src").is_none());

    // fsync stores it; a specific mtime is set after that.
    let file = fs::File::create(f.kv("t")).unwrap();
    file.sync_all().unwrap();
    assert_eq!(f.value("t").unwrap(), b"");
    let file2 = fs::File::create(f.kv("t2")).unwrap();
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    ];
    check(unsafe { libc::futimens(file2.as_raw_fd(), times.as_ptr()) }.into()).unwrap();
    assert_eq!(f.attr("t2").mtime_ns, 1_000_000_000_000_000_000);
    drop(file2);
    drop(file);
    assert_eq!(f.attr("t2").mtime_ns, 1_000_000_000_000_000_000);
    assert_eq!(f.handle().stats().pending_creates, 0);
}

#[test]
fn a_failed_store_is_reported_at_close() {
    let Some(f) = Fixture::new() else { return };
    // No quorum: EROFS at close, and nothing is stored later.
    let mut file = fs::File::create(f.kv("ro")).unwrap();
    file.write_all(b"x").unwrap();
    f.backend.set_read_only(true);
    assert_eq!(errno(close(file)), libc::EROFS);
    f.backend.set_read_only(false);
    wait_released(&f);
    assert!(f.value("ro").is_none());
    assert!(!f.kv("ro").exists(), "dropped after the failure");
    assert_eq!(f.handle().stats().pending_creates, 0);

    // Closed with nothing written: the store at close fails, and close says so.
    let file = fs::File::create(f.kv("quiet")).unwrap();
    f.backend.set_read_only(true);
    assert_eq!(errno(close(file)), libc::EROFS);
    wait_released(&f);
    f.backend.set_read_only(false);
    assert!(f.value("quiet").is_none());
    assert!(!f.kv("quiet").exists(), "dropped after the failure");

    // The error sticks to the handle: fsync, write and close report it again.
    let mut file = fs::File::create(f.kv("sticky")).unwrap();
    f.backend.set_read_only(true);
    assert_eq!(errno(file.sync_all()), libc::EROFS);
    f.backend.set_read_only(false);
    assert_eq!(errno(file.sync_all()), libc::EROFS);
    assert_eq!(errno(file.write_all(b"y")), libc::EROFS);
    assert_eq!(errno(close(file)), libc::EROFS);
    wait_released(&f);
    assert!(f.value("sticky").is_none());

    // The directory was removed elsewhere: ENOENT.
    fs::create_dir(f.kv("d")).unwrap();
    let mut file = fs::File::create(f.kv("d/f")).unwrap();
    file.write_all(b"x").unwrap();
    f.backend.external_delete("d").unwrap();
    assert_eq!(errno(close(file)), libc::ENOENT);

    // A directory took the name elsewhere: EISDIR.
    let mut file = fs::File::create(f.kv("x")).unwrap();
    file.write_all(b"x").unwrap();
    f.backend.external_mkdir("x").unwrap();
    assert_eq!(errno(close(file)), libc::EISDIR);
    wait_released(&f);
    assert!(wait_for(
        || fs::metadata(f.kv("x")).is_ok_and(|m| m.is_dir())
    ));

    // The value limit shrank below what was written: EFBIG.
    let mut file = fs::File::create(f.kv("big")).unwrap();
    file.write_all(&[1u8; 100]).unwrap();
    let _ = f.backend.clone().with_max_value_bytes(10);
    assert_eq!(errno(close(file)), libc::EFBIG);
    wait_released(&f);
    assert!(f.value("big").is_none());
    assert_eq!(f.handle().stats().pending_creates, 0);
}

#[test]
fn parallel_creates_in_one_directory() {
    let cfg = MountConfig {
        threads: 16,
        ..test_config()
    };
    let Some(f) = Fixture::with(MemoryBackend::new(), cfg) else {
        return;
    };
    const THREADS: usize = 16;
    const FILES: usize = 500;
    fs::create_dir(f.kv("par")).unwrap();
    let puts = f.backend.put_count();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let f = &f;
            s.spawn(move || {
                for i in 0..FILES {
                    fs::write(f.kv(&format!("par/{t}-{i}")), format!("{t}:{i}")).unwrap();
                }
            });
        }
    });
    assert_eq!(
        f.backend.put_count(),
        puts + (THREADS * FILES) as u64,
        "one put per file"
    );
    for t in 0..THREADS {
        for i in 0..FILES {
            assert_eq!(
                f.value(&format!("par/{t}-{i}")).unwrap(),
                format!("{t}:{i}").as_bytes()
            );
        }
    }
    assert_eq!(listed(&f.kv("par")).len(), THREADS * FILES);
    wait_released(&f);
    assert_eq!(f.handle().stats().pending_creates, 0);
}
