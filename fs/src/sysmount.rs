//! Mounting as root with mount(2) directly, so that the mount table shows the file system
//! as `fuse.<subtype>` with `fsname` as its source, the way mount(8) and fstab users
//! expect (`aspen` behind `mount -t aspen`). fuser's own root path always says `fuse`.
//! Without root, fuser's fusermount3 path is used instead.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::MountConfig;

/// A mount made here; it is unmounted with umount(2).
#[derive(Debug)]
pub(crate) struct RootMount {
    dir: PathBuf,
}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount argument"))
}

/// Mounts `/dev/fuse` on `dir` when running as root; `Ok(None)` otherwise.
pub(crate) fn mount_as_root(
    dir: &Path,
    cfg: &MountConfig,
) -> io::Result<Option<(OwnedFd, RootMount)>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let mode = std::fs::metadata(dir)?.mode();
    let dev = cstring(b"/dev/fuse")?;
    // SAFETY: `dev` is a valid C string.
    let raw = unsafe { libc::open(dev.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!("fd={raw},rootmode={mode:o},user_id={uid},group_id={gid}");
    if cfg.default_permissions {
        data.push_str(",default_permissions");
    }
    if cfg.allow_other {
        data.push_str(",allow_other");
    }
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME;
    if cfg.read_only {
        flags |= libc::MS_RDONLY;
    }
    let source = cstring(cfg.fsname.as_bytes())?;
    let target = cstring(dir.as_os_str().as_bytes())?;
    let fstype = cstring(format!("fuse.{}", cfg.subtype).as_bytes())?;
    let data = cstring(data.as_bytes())?;
    // SAFETY: all pointers are valid C strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EPERM) {
            // Root without CAP_SYS_ADMIN (a container): let fusermount3 try.
            return Ok(None);
        }
        return Err(err);
    }
    Ok(Some((
        fd,
        RootMount {
            dir: dir.to_path_buf(),
        },
    )))
}

impl RootMount {
    /// umount(2); EBUSY (files open, a cwd inside) is returned and the mount stays.
    pub(crate) fn umount(&self) -> io::Result<()> {
        let target = cstring(self.dir.as_os_str().as_bytes())?;
        // SAFETY: `target` is a valid C string.
        if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // Already gone (unmounted from outside).
            Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
            _ => Err(err),
        }
    }
}
