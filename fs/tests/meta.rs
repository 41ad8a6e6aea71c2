//! Metadata through a mount: chmod, chown, utimens, xattrs, statfs, access.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use aspen_fs::memory::MemoryBackend;
use aspen_fs::{Backend, MountConfig};
use common::*;

fn setxattr(p: &Path, name: &str, value: &[u8], flags: i32) -> std::io::Result<()> {
    let n = CString::new(name).unwrap();
    let rc = unsafe {
        libc::setxattr(
            cstr(p).as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    check(rc.into()).map(|_| ())
}

/// getxattr with a buffer of `size` bytes (0: ask for the size).
fn getxattr(p: &Path, name: &str, size: usize) -> std::io::Result<(usize, Vec<u8>)> {
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; size];
    let rc = unsafe { libc::getxattr(cstr(p).as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), size) };
    let len = check(rc as libc::c_long)? as usize;
    buf.truncate(len.min(size));
    Ok((len, buf))
}

fn listxattr(p: &Path, size: usize) -> std::io::Result<(usize, Vec<u8>)> {
    let mut buf = vec![0u8; size];
    let rc = unsafe { libc::listxattr(cstr(p).as_ptr(), buf.as_mut_ptr().cast(), size) };
    let len = check(rc as libc::c_long)? as usize;
    buf.truncate(len.min(size));
    Ok((len, buf))
}

fn removexattr(p: &Path, name: &str) -> std::io::Result<()> {
    let n = CString::new(name).unwrap();
    check(unsafe { libc::removexattr(cstr(p).as_ptr(), n.as_ptr()) }.into()).map(|_| ())
}

#[test]
fn chmod_chown_utimens_persist() {
    let Some(f) = Fixture::new() else { return };
    fs::write(f.kv("f"), b"x").unwrap();
    let a = f.attr("f");
    assert_eq!((a.uid, a.gid), (0, 0), "created with the caller's ids");

    fs::set_permissions(f.kv("f"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(f.attr("f").mode, 0o640);
    assert_eq!(fs::metadata(f.kv("f")).unwrap().mode() & 0o7777, 0o640);

    std::os::unix::fs::chown(f.kv("f"), Some(1234), Some(5678)).unwrap();
    let a = f.attr("f");
    assert_eq!((a.uid, a.gid), (1234, 5678));
    let m = fs::metadata(f.kv("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));

    // utimensat with a specific mtime, then UTIME_NOW.
    let p = cstr(&f.kv("f"));
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 123,
        },
    ];
    check(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), 0) }.into())
        .unwrap();
    assert_eq!(f.attr("f").mtime_ns, 1_000_000_000_000_000_123);
    assert_eq!(fs::metadata(f.kv("f")).unwrap().mtime(), 1_000_000_000);
    let now = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
    ];
    check(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), now.as_ptr(), 0) }.into()).unwrap();
    let recent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        - 60_000_000_000;
    assert!(f.attr("f").mtime_ns > recent);

    // umask applies to creates: mkdir 0777 under umask 022 gives 0755.
    fs::create_dir(f.kv("d")).unwrap();
    let mode = f.attr("d").mode;
    assert_eq!(mode & 0o022, 0, "umask applied: {mode:o}");

    // /kv itself is a root-owned 0755 directory from the backend.
    let m = fs::metadata(f.kv("")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.is_dir()), (0o755, 0, true));
}

#[test]
fn xattrs() {
    let Some(f) = Fixture::new() else { return };
    let p = f.kv("f");
    fs::write(&p, b"v1").unwrap();

    // Generated attributes follow the entry's metadata.
    let (len, _) = getxattr(&p, "user.aspen.revision", 0).unwrap();
    let (_, rev) = getxattr(&p, "user.aspen.revision", len).unwrap();
    assert_eq!(
        String::from_utf8(rev).unwrap(),
        f.attr("f").mod_revision.to_string()
    );
    let (_, ver) = getxattr(&p, "user.aspen.version", 64).unwrap();
    assert_eq!(ver, b"1", "created with its contents in one put");
    let (_, lease) = getxattr(&p, "user.aspen.lease", 64).unwrap();
    assert_eq!(lease, b"0");
    let (_, crev) = getxattr(&p, "user.aspen.create_revision", 64).unwrap();
    assert_eq!(
        String::from_utf8(crev).unwrap(),
        f.attr("f").create_revision.to_string()
    );
    assert_eq!(
        errno(setxattr(&p, "user.aspen.revision", b"1", 0)),
        libc::EPERM
    );
    assert_eq!(errno(removexattr(&p, "user.aspen.version")), libc::EPERM);
    assert_eq!(errno(setxattr(&p, "user.aspen.mine", b"1", 0)), libc::EPERM);

    // Stored user attributes.
    setxattr(&p, "user.color", b"blue", 0).unwrap();
    assert_eq!(getxattr(&p, "user.color", 0).unwrap().0, 4, "size query");
    assert_eq!(getxattr(&p, "user.color", 100).unwrap().1, b"blue");
    assert_eq!(errno(getxattr(&p, "user.color", 2)), libc::ERANGE);
    assert_eq!(
        errno(setxattr(&p, "user.color", b"red", libc::XATTR_CREATE)),
        libc::EEXIST
    );
    assert_eq!(
        errno(setxattr(&p, "user.other", b"x", libc::XATTR_REPLACE)),
        libc::ENODATA
    );
    setxattr(&p, "user.color", b"red", libc::XATTR_REPLACE).unwrap();
    assert_eq!(getxattr(&p, "user.color", 100).unwrap().1, b"red");
    {
        use aspen_fs::Backend;
        let e = f.backend.get("f").unwrap().unwrap();
        assert_eq!(e.xattrs, vec![("user.color".to_string(), b"red".to_vec())]);
    }
    let (len, _) = listxattr(&p, 0).unwrap();
    let (_, list) = listxattr(&p, len).unwrap();
    let names: Vec<&[u8]> = list.split(|b| *b == 0).filter(|s| !s.is_empty()).collect();
    for want in [
        "user.aspen.revision",
        "user.aspen.create_revision",
        "user.aspen.version",
        "user.aspen.lease",
        "user.color",
    ] {
        assert!(
            names.contains(&want.as_bytes()),
            "{want} missing from {names:?}"
        );
    }
    assert_eq!(errno(listxattr(&p, 3)), libc::ERANGE);
    assert_eq!(errno(getxattr(&p, "user.none", 10)), libc::ENODATA);
    removexattr(&p, "user.color").unwrap();
    assert_eq!(errno(removexattr(&p, "user.color")), libc::ENODATA);

    // Other namespaces are not supported.
    assert_eq!(errno(setxattr(&p, "trusted.x", b"1", 0)), libc::EOPNOTSUPP);
    assert_eq!(
        errno(getxattr(&p, "security.selinux", 10)),
        libc::EOPNOTSUPP
    );

    // An xattr set while the file is open for writing survives the commit.
    let mut file = fs::OpenOptions::new().write(true).open(&p).unwrap();
    std::io::Write::write_all(&mut file, b"v2").unwrap();
    setxattr(&p, "user.kept", b"yes", 0).unwrap();
    drop(file);
    assert_eq!(getxattr(&p, "user.kept", 10).unwrap().1, b"yes");
    assert_eq!(fs::read(&p).unwrap(), b"v2");
}

#[test]
fn statfs_reports_backend_figures() {
    let Some(f) = Fixture::new() else { return };
    let c = cstr(&f.mnt);
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statvfs(c.as_ptr(), &mut s) }.into()).unwrap();
    let stats = f.backend.stats().unwrap();
    assert_eq!(s.f_namemax, 255);
    assert_eq!(s.f_bsize, 4096);
    assert_eq!(s.f_blocks, stats.total_bytes / 4096);
    assert_eq!(s.f_files, stats.total_files);
}

#[test]
fn access_without_default_permissions() {
    let cfg = MountConfig {
        default_permissions: false,
        ..test_config()
    };
    let Some(f) = Fixture::with(MemoryBackend::new(), cfg) else {
        return;
    };
    fs::write(f.kv("plain"), b"x").unwrap();
    fs::set_permissions(f.kv("plain"), fs::Permissions::from_mode(0o644)).unwrap();
    let p = cstr(&f.kv("plain"));
    check(unsafe { libc::access(p.as_ptr(), libc::R_OK | libc::W_OK) }.into()).unwrap();
    assert_eq!(
        errno(check(
            unsafe { libc::access(p.as_ptr(), libc::X_OK) }.into()
        )),
        libc::EACCES
    );
    let missing = cstr(&f.kv("missing"));
    assert_eq!(
        errno(check(
            unsafe { libc::access(missing.as_ptr(), libc::F_OK) }.into()
        )),
        libc::ENOENT
    );
}

#[test]
fn read_only_mount() {
    let backend = MemoryBackend::new();
    backend.external_put("f", b"data").unwrap();
    let cfg = MountConfig {
        read_only: true,
        ..test_config()
    };
    let Some(f) = Fixture::with(backend, cfg) else {
        return;
    };
    assert_eq!(fs::read(f.kv("f")).unwrap(), b"data");
    assert_eq!(errno(fs::write(f.kv("f"), b"x")), libc::EROFS);
    assert_eq!(errno(fs::create_dir(f.kv("d"))), libc::EROFS);
    assert_eq!(f.value("f").unwrap(), b"data");
}

#[test]
fn creates_use_the_callers_ids_and_permissions_are_enforced() {
    let cfg = MountConfig {
        allow_other: true,
        ..test_config()
    };
    let Some(f) = Fixture::with(MemoryBackend::new(), cfg) else {
        return;
    };
    fs::create_dir(f.kv("pub")).unwrap();
    fs::set_permissions(f.kv("pub"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(f.kv("pub/roots"), b"r").unwrap();
    let (mine, theirs) = (f.kv("pub/mine"), f.kv("pub/roots"));
    // fsuid/fsgid are per thread: only this thread acts as uid 1000, gid 2000.
    let (created, denied) = std::thread::spawn(move || {
        unsafe {
            libc::syscall(libc::SYS_setfsgid, 2000);
            libc::syscall(libc::SYS_setfsuid, 1000);
        }
        let created = fs::write(&mine, b"m");
        let denied = fs::OpenOptions::new().write(true).open(&theirs).map(|_| ());
        (created, denied)
    })
    .join()
    .unwrap();
    created.unwrap();
    assert_eq!(errno(denied), libc::EACCES);
    let a = f.attr("pub/mine");
    assert_eq!((a.uid, a.gid), (1000, 2000));
    assert_eq!(f.value("pub/roots").unwrap(), b"r");
}
