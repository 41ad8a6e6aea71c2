//! The `/hooks` tree, read-only, from `Backend::hook_types` and `Backend::hook_events`:
//!
//! - `/hooks/events`: the recent events (a bounded ring), JSON lines. Reads are served
//!   from the ring at read time, so a reader that keeps the file open (`tail -f`) sees
//!   new lines while the ring has not wrapped.
//! - `/hooks/<type>/`: one directory per event type;
//! - `/hooks/<type>/<log-index>.json`: one file per recent event of that type.
//!
//! Everything here changes all the time: attributes carry a zero TTL and files are
//! opened with direct I/O. Changes answer EOPNOTSUPP (see `AspenFs::no_change_here`).

use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FileType, FopenFlags};

use super::dir::DirSink;
use super::{backend_errno, AspenFs, OpResult};
use crate::attr;
use crate::backend::HookRecord;
use crate::limits::{MAX_HOOK_NAME_BYTES, UNKNOWN_INO};
use crate::tree::valid_backend_name;

/// The name of the recent event log under `/hooks`.
const EVENTS_FILE: &str = "events";

/// What a path below `/hooks` names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HookPath {
    Events,
    TypeDir(String),
    EventFile(String, u64),
}

/// Parses a path below `/hooks` ("" is `/hooks` itself, not handled here).
fn parse(path: &str) -> Option<HookPath> {
    if path == EVENTS_FILE {
        return Some(HookPath::Events);
    }
    match path.split_once('/') {
        None => Some(HookPath::TypeDir(path.to_string())),
        Some((kind, name)) => {
            if name.len() > MAX_HOOK_NAME_BYTES {
                return None;
            }
            let index = name.strip_suffix(".json")?.parse().ok()?;
            // One spelling per event: "007.json" is not "7.json".
            if format!("{index}.json") != name {
                return None;
            }
            Some(HookPath::EventFile(kind.to_string(), index))
        }
    }
}

/// The contents of a hooks file in `events`; ENOENT when it is not there.
fn contents_in(events: &[HookRecord], p: &HookPath) -> OpResult<Vec<u8>> {
    match p {
        HookPath::Events => Ok(events.iter().flat_map(|e| e.line.iter().copied()).collect()),
        HookPath::EventFile(kind, index) => events
            .iter()
            .rev()
            .find(|e| &e.kind == kind && e.index == *index)
            .map(|e| e.line.clone())
            .ok_or(Errno::ENOENT),
        HookPath::TypeDir(_) => Err(Errno::EISDIR),
    }
}

fn file_attr(ino: u64, size: u64) -> FileAttr {
    attr::synthesized(ino, FileType::RegularFile, 0o444, size, SystemTime::now())
}

fn dir_attr(ino: u64) -> FileAttr {
    attr::synthesized(ino, FileType::Directory, 0o555, 0, SystemTime::now())
}

impl AspenFs {
    fn hook_events(&self) -> OpResult<Vec<HookRecord>> {
        self.backend.hook_events().map_err(backend_errno)
    }

    fn is_hook_type(&self, kind: &str) -> bool {
        self.backend.hook_types().iter().any(|t| t == kind)
    }

    /// Current contents of a hooks file; ENOENT when it is gone (or never was).
    fn hook_contents(&self, p: &HookPath) -> OpResult<Vec<u8>> {
        contents_in(&self.hook_events()?, p)
    }

    /// Attributes of an existing path below `/hooks`, from one read of the backend.
    fn hook_attr(&self, ino: u64, p: &HookPath) -> OpResult<FileAttr> {
        match p {
            HookPath::TypeDir(kind) if self.is_hook_type(kind) => Ok(dir_attr(ino)),
            HookPath::TypeDir(_) => Err(Errno::ENOENT),
            file => Ok(file_attr(ino, self.hook_contents(file)?.len() as u64)),
        }
    }

    /// lookup of `name` in the `/hooks` directory `dir` ("" is `/hooks`).
    pub(crate) fn hooks_lookup(
        &self,
        parent: u64,
        dir: &str,
        name: &str,
    ) -> OpResult<(FileAttr, Duration)> {
        let path = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let p = match (dir.is_empty(), parse(&path)) {
            (true, Some(p @ (HookPath::Events | HookPath::TypeDir(_)))) => p,
            (false, Some(p @ HookPath::EventFile(..))) if self.is_hook_type(dir) => p,
            (false, _) if !self.is_hook_type(dir) => return Err(Errno::ENOTDIR),
            _ => return Err(Errno::ENOENT),
        };
        // Checked before counting a lookup, so that a missing name costs no inode.
        let mut a = self.hook_attr(UNKNOWN_INO, &p)?;
        a.ino = fuser::INodeNo(self.inodes.lookup(parent, name, a.kind, None)?);
        Ok((a, Duration::ZERO))
    }

    /// getattr of a path below `/hooks` (not `/hooks` itself).
    pub(crate) fn hooks_getattr(&self, ino: u64, path: &str) -> OpResult<(FileAttr, Duration)> {
        let p = parse(path).ok_or(Errno::ENOENT)?;
        Ok((self.hook_attr(ino, &p)?, Duration::ZERO))
    }

    /// Whether opendir may open this path below `/hooks` ("" is `/hooks`).
    pub(crate) fn hooks_check_dir(&self, path: &str) -> OpResult<()> {
        match parse(path) {
            _ if path.is_empty() => Ok(()),
            Some(HookPath::TypeDir(kind)) if self.is_hook_type(&kind) => Ok(()),
            Some(HookPath::TypeDir(_)) => Err(Errno::ENOENT),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// open of a file below `/hooks`: read-only; reads go to the backend each time.
    pub(crate) fn hooks_open(
        &self,
        ino: u64,
        path: &str,
        writable: bool,
    ) -> OpResult<(u64, FopenFlags)> {
        let p = parse(path).ok_or(Errno::ENOENT)?;
        if let HookPath::TypeDir(_) = p {
            return Err(Errno::EISDIR);
        }
        if writable {
            return Err(Errno::EACCES);
        }
        self.hook_contents(&p)?;
        let fh = self
            .handles
            .open_file(ino, false, false, Vec::new(), false, None)?;
        if let Err(e) = self.inodes.open(ino) {
            self.handles.close_file(fh)?;
            return Err(e);
        }
        Ok((fh, FopenFlags::FOPEN_DIRECT_IO))
    }

    /// A read of the `/hooks` file at `path` from its current contents.
    pub(crate) fn hooks_read(&self, path: &str, offset: u64, size: u32) -> OpResult<Vec<u8>> {
        let p = parse(path).ok_or(Errno::ENOENT)?;
        let data = self.hook_contents(&p)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        Ok(data.get(start..end).unwrap_or_default().to_vec())
    }

    /// readdir of `/hooks` or of one of its type directories.
    pub(crate) fn hooks_readdir(
        &self,
        ino: u64,
        parent: u64,
        path: &str,
        offset: u64,
        sink: &mut dyn DirSink,
    ) -> OpResult<()> {
        // (name, is_dir)
        let mut items: Vec<(String, bool)> = vec![(".".into(), true), ("..".into(), true)];
        // One read of the backend for the whole reply.
        let events = self.hook_events()?;
        if path.is_empty() {
            items.push((EVENTS_FILE.to_string(), false));
            items.extend(
                self.backend
                    .hook_types()
                    .into_iter()
                    .filter(|t| valid_backend_name(t) && t != EVENTS_FILE)
                    .map(|t| (t, true)),
            );
        } else {
            self.hooks_check_dir(path)?;
            let mut names: Vec<u64> = events
                .iter()
                .filter(|e| e.kind == path)
                .map(|e| e.index)
                .collect();
            names.sort_unstable();
            names.dedup();
            items.extend(names.into_iter().map(|i| (format!("{i}.json"), false)));
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (name, is_dir)) in items.iter().enumerate().skip(start) {
            let off = i as u64 + 1;
            let full = match name.as_str() {
                "." => sink.add(".", off, &dir_attr(ino), Duration::ZERO),
                ".." => sink.add("..", off, &dir_attr(parent), Duration::ZERO),
                _ if sink.plus() => {
                    let kind = if *is_dir {
                        FileType::Directory
                    } else {
                        FileType::RegularFile
                    };
                    let child = self.inodes.lookup(ino, name, kind, None)?;
                    let full_path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}/{name}")
                    };
                    let a = if *is_dir {
                        dir_attr(child)
                    } else {
                        match parse(&full_path).map(|p| contents_in(&events, &p)) {
                            Some(Ok(data)) => file_attr(child, data.len() as u64),
                            // Not a file after all: leave it out.
                            _ => {
                                self.inodes.forget(child, 1)?;
                                continue;
                            }
                        }
                    };
                    let full = sink.add(name, off, &a, Duration::ZERO);
                    if full {
                        self.inodes.forget(child, 1)?;
                    }
                    full
                }
                _ => {
                    let child = self.inodes.peek(ino, name)?.unwrap_or(UNKNOWN_INO);
                    let a = if *is_dir {
                        dir_attr(child)
                    } else {
                        file_attr(child, 0)
                    };
                    sink.add(name, off, &a, Duration::ZERO)
                }
            };
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
        assert_eq!(parse("events"), Some(HookPath::Events));
        assert_eq!(
            parse("kv.write"),
            Some(HookPath::TypeDir("kv.write".into()))
        );
        assert_eq!(
            parse("kv.write/12.json"),
            Some(HookPath::EventFile("kv.write".into(), 12))
        );
        assert_eq!(parse("kv.write/012.json"), None);
        assert_eq!(parse("kv.write/x.json"), None);
        assert_eq!(parse("kv.write/12"), None);
    }
}
