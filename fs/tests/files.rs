//! File contents through a mount: write-back, O_APPEND, O_EXCL, O_TRUNC, truncate,
//! sparse writes, EFBIG, errors at close, unlink and rename while open.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::IntoRawFd;

use aspen_fs::memory::MemoryBackend;
use common::*;

#[test]
fn create_write_read_and_one_put_per_close() {
    let Some(f) = Fixture::new() else { return };
    fs::write(f.kv("hello"), b"hello world\n").unwrap();
    assert_eq!(fs::read(f.kv("hello")).unwrap(), b"hello world\n");
    assert_eq!(f.value("hello").unwrap(), b"hello world\n");

    // Many writes on one handle become a single put at close.
    let before = f.backend.put_count();
    let mut file = OpenOptions::new().write(true).open(f.kv("hello")).unwrap();
    for i in 0..200u32 {
        file.write_all(format!("line {i:04}\n").as_bytes()).unwrap();
    }
    // Not committed before flush: the backend still has the old value.
    assert_eq!(f.value("hello").unwrap(), b"hello world\n");
    drop(file);
    assert_eq!(f.backend.put_count(), before + 1);
    let v = f.value("hello").unwrap();
    assert_eq!(v.len(), 200 * 10);
    assert!(v.starts_with(b"line 0000\nline 0001\n"));
    assert_eq!(fs::read(f.kv("hello")).unwrap(), v);

    // Binary-safe, and a handle reads its own uncommitted writes.
    let mut rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(f.kv("bin"))
        .unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    rw.write_all(&bytes).unwrap();
    rw.seek(SeekFrom::Start(0)).unwrap();
    let mut back = Vec::new();
    rw.read_to_end(&mut back).unwrap();
    assert_eq!(back, bytes);
    assert_eq!(
        rw.metadata().unwrap().len(),
        70_000,
        "size of uncommitted data"
    );
    rw.sync_all().unwrap();
    assert_eq!(f.value("bin").unwrap(), bytes, "fsync commits");
}

#[test]
fn append_excl_and_trunc() {
    let Some(f) = Fixture::new() else { return };
    fs::write(f.kv("log"), b"a").unwrap();
    for part in [&b"b"[..], b"cd"] {
        let mut file = OpenOptions::new().append(true).open(f.kv("log")).unwrap();
        file.write_all(part).unwrap();
    }
    assert_eq!(f.value("log").unwrap(), b"abcd");
    // O_APPEND writes at the end whatever the offset.
    let file = OpenOptions::new().append(true).open(f.kv("log")).unwrap();
    file.write_at(b"e", 0).unwrap();
    drop(file);
    assert_eq!(fs::read(f.kv("log")).unwrap(), b"abcde");

    // O_EXCL on an existing name fails; on a new one it creates.
    let e = errno(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(f.kv("log")),
    );
    assert_eq!(e, libc::EEXIST);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(f.kv("fresh"))
        .unwrap();
    assert_eq!(f.value("fresh").unwrap(), b"");

    // O_TRUNC without writing still empties the file at close.
    drop(
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(f.kv("log"))
            .unwrap(),
    );
    assert_eq!(f.value("log").unwrap(), b"");
    assert_eq!(fs::metadata(f.kv("log")).unwrap().len(), 0);
}

#[test]
fn truncate_and_sparse_writes() {
    let Some(f) = Fixture::new() else { return };
    fs::write(f.kv("t"), b"0123456789").unwrap();
    // truncate(2) by path goes straight to the backend.
    let rc = unsafe { libc::truncate(cstr(&f.kv("t")).as_ptr(), 4) };
    check(rc.into()).unwrap();
    assert_eq!(f.value("t").unwrap(), b"0123");
    assert_eq!(fs::read(f.kv("t")).unwrap(), b"0123");
    // ftruncate on a writable handle is committed with its buffer.
    let file = OpenOptions::new().write(true).open(f.kv("t")).unwrap();
    file.set_len(6).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 6);
    drop(file);
    assert_eq!(f.value("t").unwrap(), b"0123\0\0");
    // Shrinking through a handle is reported before it is committed.
    let file = OpenOptions::new().write(true).open(f.kv("t")).unwrap();
    file.set_len(1).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 1);
    assert_eq!(fs::metadata(f.kv("t")).unwrap().len(), 1);
    file.write_at(b"xy", 1).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 3);
    assert_eq!(f.value("t").unwrap(), b"0123\0\0", "not committed yet");
    drop(file);
    assert_eq!(f.value("t").unwrap(), b"0xy");
    assert_eq!(fs::read(f.kv("t")).unwrap(), b"0xy");

    // A write far past the end zero-fills the gap.
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(f.kv("sparse"))
        .unwrap();
    file.write_at(b"end", 10_000).unwrap();
    drop(file);
    let v = f.value("sparse").unwrap();
    assert_eq!(v.len(), 10_003);
    assert!(v[..10_000].iter().all(|b| *b == 0));
    assert_eq!(&v[10_000..], b"end");
    assert_eq!(fs::read(f.kv("sparse")).unwrap(), v);
}

#[test]
fn efbig_past_max_value() {
    let Some(f) = Fixture::with(
        MemoryBackend::new().with_max_value_bytes(4096),
        test_config(),
    ) else {
        return;
    };
    let mut file = fs::File::create(f.kv("big")).unwrap();
    file.write_all(&[7u8; 4096]).unwrap();
    assert_eq!(errno(file.write(&[1])), libc::EFBIG);
    drop(file);
    assert_eq!(f.value("big").unwrap().len(), 4096);
    assert_eq!(errno(fs::write(f.kv("big2"), vec![1u8; 5000])), libc::EFBIG);
    let file = OpenOptions::new().write(true).open(f.kv("big")).unwrap();
    assert_eq!(errno(file.set_len(4097)), libc::EFBIG);
    assert_eq!(errno(file.write_at(b"x", 1 << 40)), libc::EFBIG);
}

#[test]
fn commit_errors_surface_at_fsync_and_close() {
    let Some(f) = Fixture::new() else { return };
    fs::write(f.kv("f"), b"old").unwrap();
    let mut file = OpenOptions::new().write(true).open(f.kv("f")).unwrap();
    file.write_all(b"new").unwrap();
    f.backend.set_read_only(true);
    assert_eq!(errno(file.sync_all()), libc::EROFS);
    let fd = file.into_raw_fd();
    let rc = unsafe { libc::close(fd) };
    assert_eq!(
        errno(check(rc.into())),
        libc::EROFS,
        "close reports the failed commit"
    );
    f.backend.set_read_only(false);
    // The release that follows close() must not store what close() said failed.
    assert!(wait_for(|| f.handle().stats().open_handles == 0));
    assert_eq!(f.value("f").unwrap(), b"old");
    fs::write(f.kv("g"), b"x").unwrap();
    assert_eq!(f.value("g").unwrap(), b"x", "writable again");
}

#[test]
fn unlink_and_rename_while_open() {
    let Some(f) = Fixture::new() else { return };
    // Writes to a file removed while open go nowhere; the name is not recreated.
    let mut file = fs::File::create(f.kv("gone")).unwrap();
    file.write_all(b"data").unwrap();
    fs::remove_file(f.kv("gone")).unwrap();
    drop(file);
    assert!(f.value("gone").is_none());
    assert!(!f.kv("gone").exists());

    // A file renamed while open is committed under its new name.
    let mut file = fs::File::create(f.kv("a")).unwrap();
    file.write_all(b"moved").unwrap();
    fs::rename(f.kv("a"), f.kv("b")).unwrap();
    drop(file);
    assert!(f.value("a").is_none());
    assert_eq!(f.value("b").unwrap(), b"moved");

    // Metadata changed while open survives the commit.
    let mut file = fs::File::create(f.kv("c")).unwrap();
    file.write_all(b"x").unwrap();
    fs::set_permissions(
        f.kv("c"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    drop(file);
    assert_eq!(f.attr("c").mode, 0o600);
    assert_eq!(f.value("c").unwrap(), b"x");
}

#[test]
fn parallel_writers() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("par")).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let f = &f;
            s.spawn(move || {
                for i in 0..25 {
                    fs::write(f.kv(&format!("par/{t}-{i}")), format!("{t}:{i}")).unwrap();
                }
            });
        }
    });
    for t in 0..4 {
        for i in 0..25 {
            assert_eq!(
                f.value(&format!("par/{t}-{i}")).unwrap(),
                format!("{t}:{i}").as_bytes()
            );
        }
    }
    assert_eq!(fs::read_dir(f.kv("par")).unwrap().count(), 100);
}

/// Two writers of one file, as on a local file system: another open with O_TRUNC (or a
/// truncate by path) empties the file, and a writer that has written nothing since never
/// stores stale or empty contents over what came after. Found by the robustness
/// harness's two-mount workload: a file read back empty after its writer's close.
#[test]
fn truncation_by_another_party_leaves_clean_writers_clean() {
    let Some(f) = Fixture::new() else { return };
    let w = || {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        o
    };
    // A created file opened again with O_TRUNC: the second writer's data is the file.
    let first = w().open(f.kv("d")).unwrap();
    let mut second = w().open(f.kv("d")).unwrap();
    second.write_all(b"GG").unwrap();
    drop(second);
    assert_eq!(fs::read(f.kv("d")).unwrap(), b"GG");
    assert_eq!(f.value("d").unwrap(), b"GG");
    drop(first);
    assert_eq!(f.value("d").unwrap(), b"GG");
    // A writer with unstored writes, then O_TRUNC elsewhere: its writes are stored
    // before the truncation (they were in the file), then erased by it.
    let version = f.attr("d").version;
    let mut first = OpenOptions::new().write(true).open(f.kv("d")).unwrap();
    first.write_all(b"XX").unwrap();
    let mut second = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(f.kv("d"))
        .unwrap();
    assert_eq!(f.value("d").unwrap(), b"XX");
    second.write_all(b"YYY").unwrap();
    drop(second);
    drop(first);
    assert_eq!(f.value("d").unwrap(), b"YYY");
    assert_eq!(f.attr("d").version, version + 2);
    // A truncate by path keeps what a writer wrote below the new size.
    let mut first = OpenOptions::new().write(true).open(f.kv("d")).unwrap();
    first.write_all(b"ZZ").unwrap();
    let rc = unsafe { libc::truncate(cstr(&f.kv("d")).as_ptr(), 1) };
    check(rc.into()).unwrap();
    drop(first);
    assert_eq!(f.value("d").unwrap(), b"Z");
}
