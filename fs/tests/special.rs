//! Special files and directory metadata through a mount: FIFOs, sockets and device
//! nodes (mknod), directory link counts, and parent times after changes made here.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use aspen_fs::EntryKind;
use common::*;

fn mknod(p: &Path, mode: u32, dev: libc::dev_t) -> std::io::Result<()> {
    check(unsafe { libc::mknod(cstr(p).as_ptr(), mode, dev) }.into()).map(|_| ())
}

fn mkfifo(p: &Path, mode: u32) -> std::io::Result<()> {
    check(unsafe { libc::mkfifo(cstr(p).as_ptr(), mode) }.into()).map(|_| ())
}

/// The process umask, read without changing it (tests run in parallel threads).
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(line.trim(), 8).unwrap()
}

/// Lets the clock move so that a change of time is visible.
fn tick() {
    std::thread::sleep(Duration::from_millis(5));
}

fn lstat(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

/// (mtime, ctime) in nanoseconds.
fn times(m: &fs::Metadata) -> (i128, i128) {
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    (ns(m.mtime(), m.mtime_nsec()), ns(m.ctime(), m.ctime_nsec()))
}

/// Runs `op` and asserts that every directory in `dirs` then shows a later mtime and
/// ctime than before it, through the mount (whose kernel caches hold attributes 60 s).
fn assert_changes_dirs(what: &str, dirs: &[&Path], op: impl FnOnce()) {
    let before: Vec<_> = dirs.iter().map(|d| times(&lstat(d))).collect();
    tick();
    op();
    for (d, (m0, c0)) in dirs.iter().zip(before) {
        let (m1, c1) = times(&lstat(d));
        assert!(m1 > m0, "{what}: mtime of {} did not move", d.display());
        assert!(c1 > c0, "{what}: ctime of {} did not move", d.display());
    }
}

#[test]
fn mknod_of_each_kind() {
    let Some(f) = Fixture::new() else { return };
    let mask = umask();
    let dev_c = libc::makedev(1, 3);
    let dev_b = libc::makedev(8, 1);
    mkfifo(&f.kv("fifo"), 0o640).unwrap();
    mknod(&f.kv("sock"), libc::S_IFSOCK | 0o604, 0).unwrap();
    mknod(&f.kv("chr"), libc::S_IFCHR | 0o620, dev_c).unwrap();
    mknod(&f.kv("blk"), libc::S_IFBLK | 0o660, dev_b).unwrap();
    mknod(&f.kv("reg"), libc::S_IFREG | 0o751, 0).unwrap();
    mknod(&f.kv("sticky"), libc::S_IFIFO | 0o1777, 0).unwrap();

    let cases = [
        ("fifo", libc::S_IFIFO, 0o640, 0, EntryKind::Fifo),
        ("sock", libc::S_IFSOCK, 0o604, 0, EntryKind::Socket),
        ("chr", libc::S_IFCHR, 0o620, dev_c, EntryKind::CharDevice),
        ("blk", libc::S_IFBLK, 0o660, dev_b, EntryKind::BlockDevice),
        ("reg", libc::S_IFREG, 0o751, 0, EntryKind::File),
        ("sticky", libc::S_IFIFO, 0o1777, 0, EntryKind::Fifo),
    ];
    for (name, fmt, mode, dev, kind) in cases {
        let m = lstat(&f.kv(name));
        assert_eq!(m.mode() & libc::S_IFMT, fmt, "{name}: type");
        assert_eq!(m.mode() & 0o7777, mode & !mask, "{name}: mode");
        assert_eq!(m.rdev(), dev, "{name}: rdev");
        assert_eq!(m.nlink(), 1, "{name}: nlink");
        assert_eq!(m.size(), 0, "{name}: size");
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{name}: owner");
        let a = f.attr(name);
        assert_eq!(a.kind, kind, "{name}: stored kind");
        assert_eq!(a.mode, mode & !mask, "{name}: stored mode");
        assert_eq!(u64::from(a.rdev), dev, "{name}: stored rdev");
        assert_eq!(f.value(name).unwrap(), b"", "{name}: no value");
    }

    // Listings carry the type too.
    let mut types = std::collections::BTreeMap::new();
    for e in fs::read_dir(f.kv("")).unwrap() {
        let e = e.unwrap();
        types.insert(e.file_name().into_string().unwrap(), e.file_type().unwrap());
    }
    assert!(types["fifo"].is_fifo());
    assert!(types["sock"].is_socket());
    assert!(types["chr"].is_char_device());
    assert!(types["blk"].is_block_device());
    assert!(types["reg"].is_file());

    // ls -l shows the type letter and the device numbers.
    let out = std::process::Command::new("ls")
        .arg("-l")
        .arg(f.kv(""))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} missing from ls -l:\n{text}"))
            .to_string()
    };
    assert!(line("fifo").starts_with('p'), "{text}");
    assert!(line("sock").starts_with('s'), "{text}");
    assert!(line("chr").starts_with('c'), "{text}");
    assert!(line("chr").contains("1, 3"), "{text}");
    assert!(line("blk").starts_with('b'), "{text}");
    assert!(line("blk").contains("8, 1"), "{text}");
    assert!(line("reg").starts_with('-'), "{text}");
    assert_eq!(line("sticky").chars().nth(9), Some('t'), "{text}");

    // Existing names and bad types.
    assert_eq!(errno(mkfifo(&f.kv("fifo"), 0o644)), libc::EEXIST);
    assert_eq!(
        errno(mknod(&f.kv("reg"), libc::S_IFCHR, dev_c)),
        libc::EEXIST
    );
    // Outside /kv nothing can be created.
    assert_eq!(errno(mkfifo(&f.path("cluster/p"), 0o644)), libc::EPERM);
}

#[test]
fn special_files_open_through_the_kernel() {
    let Some(f) = Fixture::new() else { return };
    mkfifo(&f.kv("fifo"), 0o600).unwrap();
    let puts = f.backend.put_count();
    // O_RDWR on a FIFO does not block: the kernel's pipe code serves it.
    let mut p = OpenOptions::new()
        .read(true)
        .write(true)
        .open(f.kv("fifo"))
        .unwrap();
    p.write_all(b"through the pipe").unwrap();
    let mut buf = [0u8; 16];
    p.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"through the pipe");
    drop(p);
    assert_eq!(
        f.backend.put_count(),
        puts,
        "a FIFO's data never reaches the store"
    );
    assert_eq!(f.attr("fifo").kind, EntryKind::Fifo);
    assert_eq!(f.attr("fifo").size, 0);

    // The mount is nodev: device nodes cannot be opened as devices.
    mknod(&f.kv("null"), libc::S_IFCHR | 0o666, libc::makedev(1, 3)).unwrap();
    let e = errno(OpenOptions::new().read(true).open(f.kv("null")));
    assert!(e == libc::EACCES || e == libc::ENXIO, "errno {e}");
    // A socket node cannot be opened.
    mknod(&f.kv("sock"), libc::S_IFSOCK | 0o666, 0).unwrap();
    assert_eq!(
        errno(OpenOptions::new().read(true).open(f.kv("sock"))),
        libc::ENXIO
    );
    // Truncating a special file is refused by the kernel.
    let rc = unsafe { libc::truncate(cstr(&f.kv("fifo")).as_ptr(), 0) };
    assert_eq!(errno(check(rc.into())), libc::EINVAL);
}

#[test]
fn special_files_rename_unlink_and_metadata() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("d")).unwrap();
    mkfifo(&f.kv("p"), 0o644).unwrap();
    mknod(&f.kv("c"), libc::S_IFCHR | 0o644, libc::makedev(4, 5)).unwrap();
    mknod(&f.kv("s"), libc::S_IFSOCK | 0o644, 0).unwrap();
    fs::write(f.kv("file"), b"x").unwrap();

    // chmod, chown, utimens on them, seen by lstat and stored.
    fs::set_permissions(
        f.kv("p"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::lchown(f.kv("c"), Some(12), Some(34)).unwrap();
    let ts = [
        libc::timespec {
            tv_sec: 1_000_000,
            tv_nsec: 5,
        },
        libc::timespec {
            tv_sec: 2_000_000,
            tv_nsec: 7,
        },
    ];
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            cstr(&f.kv("s")).as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc.into()).unwrap();
    assert_eq!(lstat(&f.kv("p")).mode() & 0o7777, 0o600);
    assert_eq!(f.attr("p").mode, 0o600);
    let m = lstat(&f.kv("c"));
    assert_eq!((m.uid(), m.gid(), m.rdev()), (12, 34, libc::makedev(4, 5)));
    let m = lstat(&f.kv("s"));
    assert_eq!((m.mtime(), m.mtime_nsec()), (2_000_000, 7));
    assert_eq!(f.attr("s").mtime_ns, 2_000_000_000_000_007);

    // Rename into a directory, over a regular file, and back.
    fs::rename(f.kv("p"), f.kv("d/p")).unwrap();
    assert!(lstat(&f.kv("d/p")).file_type().is_fifo());
    assert_eq!(f.attr("d/p").kind, EntryKind::Fifo);
    fs::rename(f.kv("c"), f.kv("file")).unwrap();
    let m = lstat(&f.kv("file"));
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), libc::makedev(4, 5));
    assert_eq!(f.value("file").unwrap(), b"");
    assert_eq!(errno(fs::symlink_metadata(f.kv("c"))), libc::ENOENT);
    fs::write(f.kv("plain"), b"y").unwrap();
    fs::rename(f.kv("plain"), f.kv("s")).unwrap();
    assert!(lstat(&f.kv("s")).file_type().is_file());
    assert_eq!(fs::read(f.kv("s")).unwrap(), b"y");
    // A special file cannot replace a directory, nor be removed by rmdir.
    assert_eq!(errno(fs::rename(f.kv("file"), f.kv("d"))), libc::EISDIR);
    assert_eq!(errno(fs::remove_dir(f.kv("d/p"))), libc::ENOTDIR);

    // Unlink.
    fs::remove_file(f.kv("d/p")).unwrap();
    fs::remove_file(f.kv("file")).unwrap();
    assert_eq!(errno(fs::symlink_metadata(f.kv("d/p"))), libc::ENOENT);
    use aspen_fs::Backend;
    assert!(f.backend.stat("d/p").unwrap().is_none());
    assert!(f.backend.stat("file").unwrap().is_none());
}

#[test]
fn directory_link_counts() {
    let Some(f) = Fixture::new() else { return };
    assert_eq!(
        lstat(&f.path("")).nlink(),
        7,
        "root: 2 + five top-level dirs"
    );
    fs::create_dir(f.kv("src")).unwrap();
    fs::create_dir(f.kv("dst")).unwrap();
    let kv_links = lstat(&f.kv("")).nlink();
    assert_eq!(kv_links, 4);
    assert_eq!(lstat(&f.kv("src")).nlink(), 2);
    fs::create_dir(f.kv("src/sub")).unwrap();
    fs::write(f.kv("src/file"), b"").unwrap();
    mkfifo(&f.kv("src/fifo"), 0o644).unwrap();
    assert_eq!(lstat(&f.kv("src")).nlink(), 3, "files are no links");
    assert_eq!(lstat(&f.kv("dst")).nlink(), 2);
    assert_eq!(lstat(&f.kv("src/file")).nlink(), 1);

    // The pjdfstest case: a subdirectory moves between parents.
    fs::rename(f.kv("src/sub"), f.kv("dst/sub")).unwrap();
    assert_eq!(lstat(&f.kv("src")).nlink(), 2);
    assert_eq!(lstat(&f.kv("dst")).nlink(), 3);
    assert_eq!(lstat(&f.kv("dst/sub")).nlink(), 2);
    assert_eq!(f.attr("src").nlink, 2);
    assert_eq!(f.attr("dst").nlink, 3);

    // A directory moving with its own subdirectory keeps its count.
    fs::create_dir(f.kv("dst/sub/inner")).unwrap();
    assert_eq!(lstat(&f.kv("dst/sub")).nlink(), 3);
    fs::rename(f.kv("dst/sub"), f.kv("src/sub")).unwrap();
    assert_eq!(lstat(&f.kv("src/sub")).nlink(), 3);
    assert_eq!(lstat(&f.kv("src")).nlink(), 3);
    assert_eq!(lstat(&f.kv("dst")).nlink(), 2);

    // rmdir.
    fs::remove_dir(f.kv("src/sub/inner")).unwrap();
    assert_eq!(lstat(&f.kv("src/sub")).nlink(), 2);
    fs::remove_dir(f.kv("src/sub")).unwrap();
    assert_eq!(lstat(&f.kv("src")).nlink(), 2);
    fs::remove_dir(f.kv("dst")).unwrap();
    assert_eq!(lstat(&f.kv("")).nlink(), kv_links - 1);
}

#[test]
fn parent_times_follow_changes_made_here() {
    let Some(f) = Fixture::new() else { return };
    fs::create_dir(f.kv("a")).unwrap();
    fs::create_dir(f.kv("b")).unwrap();
    let (a, b) = (f.kv("a"), f.kv("b"));
    // Warm the kernel's attribute cache of both directories.
    lstat(&a);
    lstat(&b);
    assert_changes_dirs("create", &[&a], || {
        fs::write(f.kv("a/f"), b"x").unwrap();
    });
    assert_changes_dirs("mkfifo", &[&a], || mkfifo(&f.kv("a/p"), 0o644).unwrap());
    assert_changes_dirs("mknod", &[&a], || {
        mknod(&f.kv("a/c"), libc::S_IFCHR | 0o644, libc::makedev(1, 7)).unwrap()
    });
    assert_changes_dirs("mkdir", &[&a], || fs::create_dir(f.kv("a/d")).unwrap());
    assert_changes_dirs("symlink", &[&a], || {
        std::os::unix::fs::symlink("f", f.kv("a/l")).unwrap()
    });
    assert_changes_dirs("rename within", &[&a], || {
        fs::rename(f.kv("a/f"), f.kv("a/g")).unwrap()
    });
    assert_changes_dirs("rename file across", &[&a, &b], || {
        fs::rename(f.kv("a/g"), f.kv("b/g")).unwrap()
    });
    assert_changes_dirs("rename dir across", &[&a, &b], || {
        fs::rename(f.kv("a/d"), f.kv("b/d")).unwrap()
    });
    assert_changes_dirs("unlink", &[&b], || fs::remove_file(f.kv("b/g")).unwrap());
    assert_changes_dirs("unlink special", &[&a], || {
        fs::remove_file(f.kv("a/p")).unwrap()
    });
    assert_changes_dirs("rmdir", &[&b], || fs::remove_dir(f.kv("b/d")).unwrap());
    // The moved entry's ctime moves too.
    let before = times(&lstat(&f.kv("a/c")));
    tick();
    fs::rename(f.kv("a/c"), f.kv("b/c")).unwrap();
    assert!(
        times(&lstat(&f.kv("b/c"))).1 > before.1,
        "renamed entry's ctime"
    );
    // A write to an existing file changes no directory.
    fs::write(f.kv("a/w"), b"1").unwrap();
    let dir_before = times(&lstat(&a));
    tick();
    fs::write(f.kv("a/w"), b"two").unwrap();
    assert_eq!(times(&lstat(&a)), dir_before);
}
