//! Names through a mount: mkdir/rmdir, rename (renameat2 flags), symlinks, link,
//! large listings, long names, the top-level layout and /cluster.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use aspen_fs::{Backend, EntryKind, PutCondition, PutRequest};
use common::*;

fn renameat2(from: &Path, to: &Path, flags: u32) -> std::io::Result<()> {
    let (from, to) = (cstr(from), cstr(to));
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    check(rc).map(|_| ())
}

#[test]
fn mkdir_rmdir_unlink() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("d")).unwrap();
    assert_eq!(f.attr("d").kind, EntryKind::Dir);
    assert_eq!(errno(fs::create_dir(f.kv("d"))), libc::EEXIST);
    fs::write(f.kv("d/f"), b"1").unwrap();
    assert_eq!(errno(fs::remove_dir(f.kv("d"))), libc::ENOTEMPTY);
    assert_eq!(errno(fs::remove_file(f.kv("d"))), libc::EISDIR);
    assert_eq!(errno(fs::remove_dir(f.kv("d/f"))), libc::ENOTDIR);
    assert_eq!(errno(fs::write(f.kv("nope/f"), b"")), libc::ENOENT);
    fs::remove_file(f.kv("d/f")).unwrap();
    fs::remove_dir(f.kv("d")).unwrap();
    assert!(f.backend.stat("d").unwrap().is_none());
    assert!(!f.kv("d").exists());
    // mknod of a regular file (special kinds: tests/special.rs).
    let p = cstr(&f.kv("node"));
    check(unsafe { libc::mknod(p.as_ptr(), libc::S_IFREG | 0o640, 0) }.into()).unwrap();
    assert_eq!(f.attr("node").mode, 0o640);
    assert_eq!(f.attr("node").kind, EntryKind::File);
}

#[test]
fn rename_modes() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("dir")).unwrap();
    fs::write(f.kv("dir/x"), b"x").unwrap();
    fs::write(f.kv("a"), b"A").unwrap();
    fs::write(f.kv("b"), b"B").unwrap();

    // Plain rename replaces.
    fs::rename(f.kv("a"), f.kv("c")).unwrap();
    assert_eq!(fs::read(f.kv("c")).unwrap(), b"A");
    assert!(!f.kv("a").exists());
    fs::rename(f.kv("c"), f.kv("b")).unwrap();
    assert_eq!(fs::read(f.kv("b")).unwrap(), b"A");
    assert_eq!(f.value("b").unwrap(), b"A");

    // RENAME_NOREPLACE refuses an existing target.
    fs::write(f.kv("n"), b"N").unwrap();
    assert_eq!(
        errno(renameat2(&f.kv("n"), &f.kv("b"), libc::RENAME_NOREPLACE)),
        libc::EEXIST
    );
    renameat2(&f.kv("n"), &f.kv("n2"), libc::RENAME_NOREPLACE).unwrap();
    assert_eq!(fs::read(f.kv("n2")).unwrap(), b"N");

    // RENAME_EXCHANGE swaps, also a file with a directory; inodes follow their entries.
    let ino_b = fs::metadata(f.kv("b")).unwrap().ino();
    let ino_dir = fs::metadata(f.kv("dir")).unwrap().ino();
    renameat2(&f.kv("b"), &f.kv("dir"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(f.kv("dir")).unwrap(), b"A");
    assert_eq!(fs::read(f.kv("b/x")).unwrap(), b"x");
    assert_eq!(fs::metadata(f.kv("dir")).unwrap().ino(), ino_b);
    assert_eq!(fs::metadata(f.kv("b")).unwrap().ino(), ino_dir);
    assert_eq!(f.value("dir").unwrap(), b"A");
    assert_eq!(f.value("b/x").unwrap(), b"x");
    assert_eq!(
        errno(renameat2(
            &f.kv("b"),
            &f.kv("missing"),
            libc::RENAME_EXCHANGE
        )),
        libc::ENOENT
    );

    // A directory moves with its contents; its children keep their inodes.
    let ino_x = fs::metadata(f.kv("b/x")).unwrap().ino();
    fs::create_dir(f.kv("deep")).unwrap();
    fs::rename(f.kv("b"), f.kv("deep/moved")).unwrap();
    assert_eq!(fs::read(f.kv("deep/moved/x")).unwrap(), b"x");
    assert_eq!(fs::metadata(f.kv("deep/moved/x")).unwrap().ino(), ino_x);
    assert!(!f.kv("b").exists());

    // Not across trees.
    assert_eq!(
        errno(fs::rename(f.kv("dir"), f.path("secrets/dir"))),
        libc::EXDEV
    );
}

#[test]
fn symlinks_and_no_hard_links() {
    let Some(f) = Fixture::new() else { return };
    fs::write(f.kv("target"), b"T").unwrap();
    std::os::unix::fs::symlink("target", f.kv("link")).unwrap();
    assert_eq!(fs::read_link(f.kv("link")).unwrap(), Path::new("target"));
    assert_eq!(fs::read(f.kv("link")).unwrap(), b"T");
    assert!(fs::symlink_metadata(f.kv("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    let a = f.attr("link");
    assert_eq!(a.kind, EntryKind::Symlink);
    assert_eq!(f.value("link").unwrap(), b"target");
    assert_eq!(
        errno(fs::hard_link(f.kv("target"), f.kv("hard"))),
        libc::EPERM
    );
}

#[test]
fn readdir_has_no_cap() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("many")).unwrap();
    let mut expect = BTreeSet::new();
    for i in 0..3000 {
        let name = format!("entry-{i:05}-{}", "x".repeat(i % 40));
        f.backend
            .put(PutRequest {
                key: format!("many/{name}"),
                kind: EntryKind::File,
                value: vec![],
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime_ns: None,
                xattrs: None,
                condition: PutCondition::MustNotExist,
                rdev: 0,
            })
            .unwrap();
        expect.insert(name);
    }
    let got: BTreeSet<String> = fs::read_dir(f.kv("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(got.len(), 3000);
    assert_eq!(got, expect);
    // Listing again (now with cached inodes) and stat-ing each entry, like `ls -l`.
    let mut n = 0;
    for e in fs::read_dir(f.kv("many")).unwrap() {
        let e = e.unwrap();
        assert!(e.metadata().unwrap().is_file());
        n += 1;
    }
    assert_eq!(n, 3000);
    // telldir/seekdir land on the same entries again.
    let dir = cstr(&f.kv("many"));
    unsafe {
        let d = libc::opendir(dir.as_ptr());
        assert!(!d.is_null());
        let next = |d: *mut libc::DIR| -> String {
            let e = libc::readdir(d);
            assert!(!e.is_null());
            std::ffi::CStr::from_ptr((*e).d_name.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        for _ in 0..1500 {
            next(d);
        }
        let pos = libc::telldir(d);
        let a: Vec<String> = (0..10).map(|_| next(d)).collect();
        for _ in 0..700 {
            next(d);
        }
        libc::seekdir(d, pos);
        let b: Vec<String> = (0..10).map(|_| next(d)).collect();
        assert_eq!(a, b);
        libc::rewinddir(d);
        assert_eq!(next(d), ".");
        libc::closedir(d);
    }
    // `ls -a` sees "." and "..".
    let out = std::process::Command::new("ls")
        .arg("-a")
        .arg(f.kv(""))
        .output();
    if let Ok(out) = out {
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(
            s.lines().any(|l| l == ".") && s.lines().any(|l| l == ".."),
            "{s}"
        );
    }
}

#[test]
fn long_names() {
    let Some(f) = Fixture::new() else { return };
    let ok = "n".repeat(255);
    fs::write(f.kv(&ok), b"1").unwrap();
    assert_eq!(f.value(&ok).unwrap(), b"1");
    let long = "n".repeat(256);
    assert_eq!(errno(fs::write(f.kv(&long), b"1")), libc::ENAMETOOLONG);
    assert_eq!(errno(fs::create_dir(f.kv(&long))), libc::ENAMETOOLONG);
    assert_eq!(errno(fs::metadata(f.kv(&long))), libc::ENAMETOOLONG);
}

#[test]
fn layout_cluster_and_placeholders() {
    let Some(f) = Fixture::new() else { return };
    let top: BTreeSet<String> = fs::read_dir(&f.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let want: BTreeSet<String> = ["kv", "cluster", "secrets", "topics", "hooks"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(top, want);
    let m = fs::metadata(&f.mnt).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o755, 0));

    // /cluster files: listed, readable in full, sized from their contents.
    let names: BTreeSet<String> = fs::read_dir(f.path("cluster"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains("health"), "{names:?}");
    assert_eq!(
        fs::read_to_string(f.path("cluster/health")).unwrap(),
        "ok\n"
    );
    let big = "m".repeat(100_000);
    f.backend.set_cluster_file("metrics", big.as_bytes());
    assert_eq!(fs::read_to_string(f.path("cluster/metrics")).unwrap(), big);
    assert_eq!(
        fs::metadata(f.path("cluster/metrics")).unwrap().len(),
        100_000
    );
    f.backend.set_cluster_file("metrics", b"short\n");
    assert_eq!(
        fs::read_to_string(f.path("cluster/metrics")).unwrap(),
        "short\n"
    );
    assert_eq!(
        errno(fs::write(f.path("cluster/health"), b"x")),
        libc::EACCES
    );
    assert_eq!(
        errno(fs::remove_file(f.path("cluster/health"))),
        libc::EPERM
    );

    // Placeholders exist, are empty (but for hooks' event log, see tests/hooks.rs), and
    // refuse changes with EOPNOTSUPP.
    for dir in ["secrets", "topics", "hooks"] {
        assert!(fs::metadata(f.path(dir)).unwrap().is_dir());
        let expected = usize::from(dir == "hooks");
        assert_eq!(fs::read_dir(f.path(dir)).unwrap().count(), expected);
        assert_eq!(
            errno(fs::write(f.path(&format!("{dir}/x")), b"1")),
            libc::EOPNOTSUPP
        );
        assert_eq!(
            errno(fs::create_dir(f.path(&format!("{dir}/d")))),
            libc::EOPNOTSUPP
        );
        assert_eq!(
            errno(fs::metadata(f.path(&format!("{dir}/x")))),
            libc::ENOENT
        );
    }
    // Nothing can be created at the root.
    assert_eq!(errno(fs::write(f.path("new"), b"1")), libc::EPERM);
    assert_eq!(errno(fs::create_dir(f.path("new"))), libc::EPERM);
    assert_eq!(errno(fs::remove_dir(f.path("kv"))), libc::EPERM);
}
