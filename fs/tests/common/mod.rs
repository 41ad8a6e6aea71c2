//! Shared fixture of the mount tests: a `MemoryBackend` mounted in a fresh temp dir.

#![allow(dead_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aspen_fs::memory::MemoryBackend;
use aspen_fs::{mount, MountConfig, MountHandle};

/// Generous deadline for conditions that depend on background threads.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Fixture {
    pub backend: MemoryBackend,
    pub handle: Option<MountHandle>,
    pub mnt: PathBuf,
    // Dropped last: the directory goes away after the unmount.
    _dir: tempfile::TempDir,
}

/// True (after printing a loud notice) when FUSE is unavailable and the test must skip.
pub fn fuse_missing() -> bool {
    if Path::new("/dev/fuse").exists() {
        return false;
    }
    eprintln!("SKIPPED: /dev/fuse missing");
    true
}

/// Settings for tests: a few threads, and TTLs long enough that only the
/// file system's own invalidations can make other mounts' changes visible.
pub fn test_config() -> MountConfig {
    MountConfig {
        attr_timeout: Duration::from_secs(60),
        entry_timeout: Duration::from_secs(60),
        threads: 4,
        ..MountConfig::default()
    }
}

impl Fixture {
    /// Mounts a fresh backend; `None` (test skipped) without /dev/fuse.
    pub fn new() -> Option<Fixture> {
        Self::with(MemoryBackend::new(), test_config())
    }

    pub fn with(backend: MemoryBackend, cfg: MountConfig) -> Option<Fixture> {
        if fuse_missing() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mountpoint");
        let handle = mount(Arc::new(backend.clone()), &mnt, cfg).expect("mount");
        Some(Fixture {
            backend,
            handle: Some(handle),
            mnt,
            _dir: dir,
        })
    }

    pub fn kv(&self, rel: &str) -> PathBuf {
        self.mnt.join("kv").join(rel)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// The stored value of `key`, read straight from the backend.
    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        use aspen_fs::Backend;
        self.backend.get(key).expect("backend get").map(|e| e.value)
    }

    pub fn attr(&self, key: &str) -> aspen_fs::EntryAttr {
        use aspen_fs::Backend;
        self.backend
            .stat(key)
            .expect("backend stat")
            .expect("entry exists")
    }

    pub fn handle(&self) -> &MountHandle {
        self.handle.as_ref().expect("mounted")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            if let Err(e) = h.unmount() {
                eprintln!("unmount of {} failed: {e}", self.mnt.display());
            }
        }
    }
}

/// The errno of a failed call (panics on success).
pub fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.raw_os_error().expect("an OS error"),
    }
}

/// Polls `cond` until it holds or the deadline passes.
pub fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in path")
}

/// Converts a libc return value (-1 with errno) to a Result.
pub fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Whether `dir` is a mount point of this process's mount namespace.
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let d = dir.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*d))
}
