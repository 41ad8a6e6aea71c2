//! The `/secrets` tree (DESIGN.md section 4), over `Backend::secrets`:
//!
//! ```text
//! /secrets/kv/                     secret paths as directories and files (listing shows
//!                                  paths, never values); directories are implicit: they
//!                                  exist while a secret is below them (mkdir makes one
//!                                  this mount remembers until a secret is written in it)
//!     <path>                       mode 0600: read gives the latest version; what a handle
//!                                  wrote becomes one new version at close (or fsync); an
//!                                  open that writes nothing (`touch`, `: >`) stores
//!                                  nothing; unlink soft-deletes the latest version
//!     <path>@<N>                   lookup-only, read-only: version N
//! ```
//!
//! Values are decrypted by the node; a node without the identity answers EACCES. Values
//! change elsewhere at any time: zero TTLs and direct I/O throughout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FileType, FopenFlags};

use super::dir::{add_dots, DirSink};
use super::{backend_errno, AspenFs, OpResult};
use crate::attr;
use crate::backend::SecretBackend;
use crate::limits::{
    MAX_OPEN_HANDLES, MAX_SECRET_FILE_BYTES, MAX_SECRET_LIST_PATHS, MAX_SECRET_MADE_DIRS,
    UNKNOWN_INO,
};
use crate::tree::valid_backend_name;

/// What a path below `/secrets` names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SecretPath {
    /// `/secrets/kv`.
    Kv,
    /// A secret or a directory of secrets below `kv/`.
    Entry(String),
    /// `<path>@<N>`.
    Version(String, u64),
}

/// Parses a path below `/secrets` ("" is `/secrets` itself, not handled here).
fn parse(path: &str) -> Option<SecretPath> {
    if path == "kv" {
        return Some(SecretPath::Kv);
    }
    let rest = path.strip_prefix("kv/")?;
    let (dir, name) = match rest.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, rest),
    };
    match name.rsplit_once('@') {
        Some((base, n)) => {
            let v: u64 = n.parse().ok()?;
            // One spelling per version: "007" is not "7"; versions start at 1.
            if v == 0 || v.to_string() != n || base.is_empty() {
                return None;
            }
            let full = match dir {
                Some(d) => format!("{d}/{base}"),
                None => base.to_string(),
            };
            Some(SecretPath::Version(full, v))
        }
        None => Some(SecretPath::Entry(rest.to_string())),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn file_attr(ino: u64, read_only: bool) -> FileAttr {
    let mode = if read_only { 0o400 } else { 0o600 };
    attr::synthesized(ino, FileType::RegularFile, mode, 0, SystemTime::now())
}

fn dir_attr(ino: u64) -> FileAttr {
    attr::synthesized(ino, FileType::Directory, 0o755, 0, SystemTime::now())
}

/// Per-mount state of `/secrets`: what open handles wrote and not yet stored, and the
/// directories made here.
#[derive(Default)]
pub(crate) struct SecretState {
    writes: Mutex<HashMap<u64, Unwritten>>,
    made_dirs: Mutex<BTreeSet<String>>,
}

struct Unwritten {
    path: String,
    data: Vec<u8>,
    dirty: bool,
}

impl AspenFs {
    fn secret_service(&self) -> OpResult<&dyn SecretBackend> {
        self.backend.secrets().ok_or(Errno::EOPNOTSUPP)
    }

    fn made_dir(&self, path: &str) -> OpResult<bool> {
        Ok(self
            .secret_state
            .made_dirs
            .lock()
            .map_err(|_| Errno::EIO)?
            .contains(path))
    }

    /// Whether a handle of this mount is writing a first version of `path` (created
    /// here, stored at close).
    fn being_written(&self, path: &str) -> OpResult<bool> {
        Ok(self
            .secret_state
            .writes
            .lock()
            .map_err(|_| Errno::EIO)?
            .values()
            .any(|u| u.path == path))
    }

    /// Whether `p` is a directory (`Ok(true)`) or a file (`Ok(false)`); ENOENT if neither.
    fn secret_kind(&self, p: &SecretPath) -> OpResult<bool> {
        let s = self.secret_service()?;
        match p {
            SecretPath::Kv => Ok(true),
            SecretPath::Version(path, v) => match s.secret_version(path).map_err(backend_errno)? {
                Some(cur) if *v <= cur => Ok(false),
                _ => Err(Errno::ENOENT),
            },
            SecretPath::Entry(path) => {
                if self.being_written(path)?
                    || s.secret_version(path).map_err(backend_errno)?.is_some()
                {
                    return Ok(false);
                }
                if self.made_dir(path)?
                    || !s.secret_paths(path, 1).map_err(backend_errno)?.is_empty()
                {
                    return Ok(true);
                }
                Err(Errno::ENOENT)
            }
        }
    }

    fn secret_attr(&self, ino: u64, p: &SecretPath) -> OpResult<FileAttr> {
        Ok(if self.secret_kind(p)? {
            dir_attr(ino)
        } else {
            file_attr(ino, matches!(p, SecretPath::Version(..)))
        })
    }

    /// lookup of `name` in the `/secrets` directory `dir` ("" is `/secrets`).
    pub(crate) fn secrets_lookup(
        &self,
        parent: u64,
        dir: &str,
        name: &str,
    ) -> OpResult<(FileAttr, Duration)> {
        if self.backend.secrets().is_none() {
            return Err(Errno::ENOENT);
        }
        let p = parse(&join(dir, name)).ok_or(Errno::ENOENT)?;
        let mut a = self.secret_attr(UNKNOWN_INO, &p)?;
        a.ino = fuser::INodeNo(self.inodes.lookup(parent, name, a.kind, None)?);
        Ok((a, Duration::ZERO))
    }

    /// getattr of a path below `/secrets` (not `/secrets` itself).
    pub(crate) fn secrets_getattr(&self, ino: u64, path: &str) -> OpResult<(FileAttr, Duration)> {
        let p = parse(path).ok_or(Errno::ENOENT)?;
        Ok((self.secret_attr(ino, &p)?, Duration::ZERO))
    }

    /// Whether opendir may open this path below `/secrets` ("" is `/secrets`).
    pub(crate) fn secrets_check_dir(&self, path: &str) -> OpResult<()> {
        if path.is_empty() {
            return Ok(());
        }
        let p = parse(path).ok_or(Errno::ENOENT)?;
        if self.secret_kind(&p)? {
            Ok(())
        } else {
            Err(Errno::ENOTDIR)
        }
    }

    /// open of a file below `/secrets`: its contents are fixed at open; a writable
    /// handle keeps what is written to it for one new version.
    pub(crate) fn secrets_open(
        &self,
        ino: u64,
        path: &str,
        writable: bool,
        truncate: bool,
    ) -> OpResult<(u64, FopenFlags)> {
        let p = parse(path).ok_or(Errno::ENOENT)?;
        if self.secret_kind(&p)? {
            return Err(Errno::EISDIR);
        }
        let s = self.secret_service()?;
        let (secret, data) = match &p {
            SecretPath::Version(_, _) if writable || truncate => return Err(Errno::EACCES),
            SecretPath::Version(path, v) => (None, s.secret_read(path, Some(*v))),
            SecretPath::Entry(path) if truncate => (Some(path.clone()), Ok(Vec::new())),
            SecretPath::Entry(path) => (writable.then(|| path.clone()), s.secret_read(path, None)),
            SecretPath::Kv => return Err(Errno::EISDIR),
        };
        if writable || truncate {
            self.writable()?;
        }
        let data = data.map_err(backend_errno)?;
        self.secret_handle(ino, secret, data)
            .map(|fh| (fh, FopenFlags::FOPEN_DIRECT_IO))
    }

    /// A handle over `data`; with `secret`, one whose writes make a version of it.
    fn secret_handle(&self, ino: u64, secret: Option<String>, data: Vec<u8>) -> OpResult<u64> {
        let fh = self
            .handles
            .open_file(ino, false, false, data.clone(), false, None)?;
        if let Err(e) = self.inodes.open(ino) {
            self.handles.close_file(fh)?;
            return Err(e);
        }
        if let Some(path) = secret {
            let mut all = self.secret_state.writes.lock().map_err(|_| Errno::EIO)?;
            if all.len() >= MAX_OPEN_HANDLES {
                drop(all);
                let _ = self.handles.close_file(fh);
                let _ = self.inodes.close(ino);
                return Err(Errno::ENFILE);
            }
            // Only writes make a version: a shell's `>` opens, closes a duplicate of the
            // descriptor (a flush) before it writes, and that must store nothing.
            all.insert(
                fh,
                Unwritten {
                    path,
                    data,
                    dirty: false,
                },
            );
        }
        Ok(fh)
    }

    /// create of a secret in `dir` below `/secrets`: an empty handle whose contents
    /// become a version at close.
    pub(crate) fn secrets_create(
        &self,
        parent: u64,
        dir: &str,
        name: &str,
    ) -> OpResult<(FileAttr, u64, FopenFlags, Duration)> {
        self.writable()?;
        self.secret_service()?;
        if !valid_backend_name(name) || name.contains('@') {
            return Err(Errno::EINVAL);
        }
        let path = match parse(&join(dir, name)) {
            Some(SecretPath::Entry(p)) => p,
            _ => return Err(Errno::EPERM),
        };
        let ino = self
            .inodes
            .lookup(parent, name, FileType::RegularFile, None)?;
        let fh = match self.secret_handle(ino, Some(path), Vec::new()) {
            Ok(fh) => fh,
            Err(e) => {
                self.inodes.forget(ino, 1)?;
                return Err(e);
            }
        };
        Ok((
            file_attr(ino, false),
            fh,
            FopenFlags::FOPEN_DIRECT_IO,
            Duration::ZERO,
        ))
    }

    /// A write to a writable `/secrets` handle; `None` when `fh` is not one.
    pub(crate) fn secrets_write(&self, fh: u64, offset: u64, data: &[u8]) -> OpResult<Option<u32>> {
        let mut all = self.secret_state.writes.lock().map_err(|_| Errno::EIO)?;
        let Some(u) = all.get_mut(&fh) else {
            return Ok(None);
        };
        let n = u32::try_from(data.len()).map_err(|_| Errno::EFBIG)?;
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = start.checked_add(data.len()).ok_or(Errno::EFBIG)?;
        if end > MAX_SECRET_FILE_BYTES {
            return Err(Errno::EFBIG);
        }
        if u.data.len() < end {
            u.data.resize(end, 0);
        }
        u.data
            .get_mut(start..end)
            .ok_or(Errno::EIO)?
            .copy_from_slice(data);
        u.dirty = true;
        Ok(Some(n))
    }

    /// Flush or fsync: what the handle wrote becomes one new version, stored before this
    /// returns (the error, if any, is close(2)'s; it is not retried).
    pub(crate) fn secrets_flush(&self, fh: u64) -> OpResult<()> {
        let job = {
            let mut all = self.secret_state.writes.lock().map_err(|_| Errno::EIO)?;
            match all.get_mut(&fh) {
                Some(u) if u.dirty => {
                    u.dirty = false;
                    Some((u.path.clone(), u.data.clone()))
                }
                _ => None,
            }
        };
        let Some((path, data)) = job else {
            return Ok(());
        };
        self.secret_service()?
            .secret_write(&path, data)
            .map(|_| ())
            .map_err(backend_errno)?;
        // The directory it was made in is implicit from now on.
        if let Ok(mut dirs) = self.secret_state.made_dirs.lock() {
            dirs.retain(|d| !path.starts_with(&format!("{d}/")));
        }
        Ok(())
    }

    /// Release: a handle closed without a flush stores what it wrote now.
    pub(crate) fn secrets_release(&self, fh: u64) -> OpResult<()> {
        if let Err(e) = self.secrets_flush(fh) {
            tracing::error!(fh, errno = e.code(), "writing a secret at release failed");
        }
        self.secret_state
            .writes
            .lock()
            .map_err(|_| Errno::EIO)?
            .remove(&fh);
        Ok(())
    }

    /// mkdir below `/secrets/kv`: a directory this mount remembers until a secret is
    /// written below it.
    pub(crate) fn secrets_mkdir(&self, parent: u64, dir: &str, name: &str) -> OpResult<FileAttr> {
        self.writable()?;
        self.secret_service()?;
        if !valid_backend_name(name) || name.contains('@') {
            return Err(Errno::EINVAL);
        }
        let p = parse(&join(dir, name)).ok_or(Errno::EPERM)?;
        let SecretPath::Entry(path) = &p else {
            return Err(Errno::EPERM);
        };
        if self.secret_kind(&p).is_ok() {
            return Err(Errno::EEXIST);
        }
        {
            let mut dirs = self.secret_state.made_dirs.lock().map_err(|_| Errno::EIO)?;
            if dirs.len() >= MAX_SECRET_MADE_DIRS {
                return Err(Errno::ENOSPC);
            }
            dirs.insert(path.clone());
        }
        let ino = self
            .inodes
            .lookup(parent, name, FileType::Directory, None)?;
        Ok(dir_attr(ino))
    }

    /// unlink (soft-deletes the latest version) and rmdir (of a directory made here and
    /// still empty) below `/secrets`.
    pub(crate) fn secrets_remove(
        &self,
        parent: u64,
        dir: &str,
        name: &str,
        rmdir: bool,
    ) -> OpResult<()> {
        self.writable()?;
        let s = self.secret_service()?;
        let p = parse(&join(dir, name)).ok_or(Errno::ENOENT)?;
        let is_dir = self.secret_kind(&p)?;
        match (&p, rmdir, is_dir) {
            (SecretPath::Entry(path), false, false) => {
                s.secret_delete(path).map_err(backend_errno)?
            }
            (SecretPath::Entry(path), true, true) => {
                if !s.secret_paths(path, 1).map_err(backend_errno)?.is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
                self.secret_state
                    .made_dirs
                    .lock()
                    .map_err(|_| Errno::EIO)?
                    .remove(path);
            }
            (_, true, false) => return Err(Errno::ENOTDIR),
            (_, false, true) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EPERM),
        }
        self.inodes.unlink(parent, name)?;
        Ok(())
    }

    /// readdir of `/secrets` or a directory below it: names only.
    pub(crate) fn secrets_readdir(
        &self,
        ino: u64,
        parent: u64,
        path: &str,
        offset: u64,
        sink: &mut dyn DirSink,
    ) -> OpResult<()> {
        let s = self.secret_service()?;
        // name -> is a directory
        let mut names: BTreeMap<String, bool> = BTreeMap::new();
        if path.is_empty() {
            names.insert("kv".into(), true);
        } else {
            let p = parse(path).ok_or(Errno::ENOENT)?;
            let prefix = match &p {
                SecretPath::Kv => String::new(),
                SecretPath::Entry(d) if self.secret_kind(&p)? => d.clone(),
                _ => return Err(Errno::ENOTDIR),
            };
            let below = |full: &str| -> Option<(String, bool)> {
                let rest = if prefix.is_empty() {
                    full
                } else {
                    full.strip_prefix(prefix.as_str())?.strip_prefix('/')?
                };
                let (first, more) = match rest.split_once('/') {
                    Some((f, _)) => (f, true),
                    None => (rest, false),
                };
                Some((first.to_string(), more))
            };
            for full in s
                .secret_paths(&prefix, MAX_SECRET_LIST_PATHS)
                .map_err(backend_errno)?
            {
                if let Some((name, is_dir)) = below(&full) {
                    // A name that is a secret and a directory shows as the secret.
                    let e = names.entry(name).or_insert(is_dir);
                    *e = *e && is_dir;
                }
            }
            let made: Vec<String> = self
                .secret_state
                .made_dirs
                .lock()
                .map_err(|_| Errno::EIO)?
                .iter()
                .cloned()
                .collect();
            for d in made {
                if let Some((name, false)) = below(&d) {
                    names.entry(name).or_insert(true);
                }
            }
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let Some(pos) = add_dots(sink, start, &dir_attr(ino), &dir_attr(parent)) else {
            return Ok(());
        };
        for (i, (name, is_dir)) in names.iter().enumerate().skip(pos - 2) {
            if !valid_backend_name(name) {
                continue;
            }
            let off = (i + 3) as u64;
            let kind = if *is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            let a = |child| {
                if *is_dir {
                    dir_attr(child)
                } else {
                    file_attr(child, false)
                }
            };
            let full = self.add_synthesized(sink, ino, name, off, kind, a)?;
            if full {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("kv"), Some(SecretPath::Kv));
        assert_eq!(parse("kv/a/b"), Some(SecretPath::Entry("a/b".into())));
        assert_eq!(
            parse("kv/a/b@3"),
            Some(SecretPath::Version("a/b".into(), 3))
        );
        assert_eq!(parse("kv/b@12"), Some(SecretPath::Version("b".into(), 12)));
        assert_eq!(parse("kv/b@012"), None);
        assert_eq!(parse("kv/b@0"), None);
        assert_eq!(parse("kv/@1"), None);
        assert_eq!(parse("kv/b@x"), None);
        assert_eq!(parse("other"), None);
    }
}
