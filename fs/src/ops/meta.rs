//! statfs, access and the xattr operations. Xattrs of a file created here and not yet
//! stored are those of the stored entry: the file is committed first.

use std::ffi::OsStr;

use fuser::Errno;

use super::{backend_errno, AspenFs, OpResult};
use crate::backend::{AttrChange, XattrMode};
use crate::inode::Place;
use crate::limits::{BLOCK_SIZE, MAX_NAME_BYTES, MAX_XATTR_VALUE_BYTES};
use crate::tree::Tree;
use crate::xattr::{self, Answer, XattrName};

/// statfs figures: blocks, bfree, bavail, files, ffree, bsize, namelen, frsize.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

impl AspenFs {
    pub(crate) fn do_statfs(&self) -> OpResult<StatFs> {
        let s = self.backend.stats().map_err(backend_errno)?;
        self.set_max_value(s.max_value_bytes);
        let bs = u64::from(BLOCK_SIZE);
        Ok(StatFs {
            blocks: s.total_bytes / bs,
            bfree: s.free_bytes / bs,
            bavail: s.available_bytes / bs,
            files: s.total_files,
            ffree: s.free_files,
            bsize: BLOCK_SIZE,
            // invariant: 255 fits u32.
            namelen: MAX_NAME_BYTES as u32,
            frsize: BLOCK_SIZE,
        })
    }

    /// access(2) when the kernel does not check permissions itself (no
    /// `default_permissions`): mode bits against the caller's uid and primary gid.
    pub(crate) fn do_access(&self, ino: u64, mask: i32, uid: u32, gid: u32) -> OpResult<()> {
        let (a, _) = self.do_getattr(ino)?;
        if mask == libc::F_OK {
            return Ok(());
        }
        if mask & libc::W_OK != 0 && self.settings.read_only {
            return Err(Errno::EROFS);
        }
        let perm = u32::from(a.perm);
        if uid == 0 {
            // root may do anything but execute a file nobody may execute.
            let exec_denied =
                mask & libc::X_OK != 0 && a.kind != fuser::FileType::Directory && perm & 0o111 == 0;
            return if exec_denied {
                Err(Errno::EACCES)
            } else {
                Ok(())
            };
        }
        let bits = if uid == a.uid {
            (perm >> 6) & 7
        } else if gid == a.gid {
            (perm >> 3) & 7
        } else {
            perm & 7
        };
        let want = (mask & 7) as u32;
        if bits & want == want {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    fn kv_key(&self, ino: u64) -> OpResult<Option<String>> {
        Ok(match self.place(ino)? {
            Place::In(Tree::Kv, key) => Some(key),
            _ => None,
        })
    }

    pub(crate) fn do_getxattr(&self, ino: u64, name: &OsStr, size: u32) -> OpResult<Answer> {
        if let Some(attrs) = self.topics_xattrs(ino)? {
            let value = attrs
                .into_iter()
                .find(|(n, _)| std::ffi::OsStr::new(n) == name)
                .map(|(_, v)| v)
                .ok_or(Errno::ENODATA)?;
            return xattr::value_answer(value, size);
        }
        let which = xattr::classify(name);
        if which == XattrName::Unsupported {
            return Err(Errno::EOPNOTSUPP);
        }
        self.settle(ino)?;
        let Some(key) = self.kv_key(ino)? else {
            return Err(Errno::ENODATA);
        };
        let value = match which {
            XattrName::Generated(g) => g.value(&self.stat_key(&key)?.ok_or(Errno::ENOENT)?),
            XattrName::User(n) => {
                let e = self
                    .backend
                    .get(&key)
                    .map_err(backend_errno)?
                    .ok_or(Errno::ENOENT)?;
                e.xattrs
                    .into_iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v)
                    .ok_or(Errno::ENODATA)?
            }
            XattrName::Reserved | XattrName::Unsupported => return Err(Errno::ENODATA),
        };
        xattr::value_answer(value, size)
    }

    pub(crate) fn do_listxattr(&self, ino: u64, size: u32) -> OpResult<Answer> {
        if let Some(attrs) = self.topics_xattrs(ino)? {
            let mut names = Vec::new();
            for (n, _) in attrs {
                names.extend_from_slice(n.as_bytes());
                names.push(0);
            }
            return xattr::answer(names, size, crate::limits::MAX_XATTR_LIST_BYTES);
        }
        self.settle(ino)?;
        let Some(key) = self.kv_key(ino)? else {
            return xattr::list(false, &[], size);
        };
        let e = self
            .backend
            .get(&key)
            .map_err(backend_errno)?
            .ok_or(Errno::ENOENT)?;
        xattr::list(true, &e.xattrs, size)
    }

    pub(crate) fn do_setxattr(
        &self,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        position: u32,
    ) -> OpResult<()> {
        let n = self.user_xattr_for_change(name)?;
        if position != 0 {
            return Err(Errno::EINVAL);
        }
        if value.len() > MAX_XATTR_VALUE_BYTES {
            return Err(Errno::E2BIG);
        }
        let mode = match flags {
            0 => XattrMode::Upsert,
            libc::XATTR_CREATE => XattrMode::Create,
            libc::XATTR_REPLACE => XattrMode::Replace,
            _ => return Err(Errno::EINVAL),
        };
        self.change_xattr(
            ino,
            AttrChange {
                set_xattr: Some((n.to_string(), value.to_vec(), mode)),
                ..AttrChange::default()
            },
        )
    }

    pub(crate) fn do_removexattr(&self, ino: u64, name: &OsStr) -> OpResult<()> {
        let n = self.user_xattr_for_change(name)?;
        self.change_xattr(
            ino,
            AttrChange {
                remove_xattr: Some(n.to_string()),
                ..AttrChange::default()
            },
        )
    }

    /// The stored `user.*` name a change may touch: EPERM for Aspen's own names.
    fn user_xattr_for_change<'a>(&self, name: &'a OsStr) -> OpResult<&'a str> {
        match xattr::classify(name) {
            XattrName::Generated(_) | XattrName::Reserved => Err(Errno::EPERM),
            XattrName::Unsupported => Err(Errno::EOPNOTSUPP),
            XattrName::User(n) => {
                self.writable()?;
                Ok(n)
            }
        }
    }

    fn change_xattr(&self, ino: u64, change: AttrChange) -> OpResult<()> {
        self.settle(ino)?;
        let Some(key) = self.kv_key(ino)? else {
            return Err(Errno::EOPNOTSUPP);
        };
        let a = self.backend.set_attr(&key, change).map_err(backend_errno)?;
        self.changed_attr(ino, &a)
    }
}
