//! The top-level layout of a mount and name rules.
//!
//! The root directory (inode 1) holds one directory per [`Tree`]; each tree has a fixed
//! inode number and its own semantics, chosen by `match` in the operation modules:
//! `kv/` is the backend's tree, `cluster/` holds read-only status files, and
//! `topics/`, `hooks/` and `secrets/` are served from the backend's services
//! (`ops::topics`, `ops::hooks`, `ops::secrets`; a backend without a service leaves its
//! directory empty, and every change there answers EOPNOTSUPP). Adding a service means
//! giving its variant real arms in those matches.

use fuser::Errno;

use crate::limits::MAX_NAME_BYTES;

/// Inode number of the mount's root directory.
pub(crate) const ROOT_INO: u64 = 1;

/// A top-level directory of the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Tree {
    Kv,
    Cluster,
    Secrets,
    Topics,
    Hooks,
}

impl Tree {
    /// Every tree, in the order the root directory lists them.
    pub(crate) const ALL: [Tree; 5] = [
        Tree::Kv,
        Tree::Cluster,
        Tree::Secrets,
        Tree::Topics,
        Tree::Hooks,
    ];

    /// The fixed inode number of the tree's directory.
    pub(crate) fn ino(self) -> u64 {
        match self {
            Tree::Kv => 2,
            Tree::Cluster => 3,
            Tree::Secrets => 4,
            Tree::Topics => 5,
            Tree::Hooks => 6,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tree::Kv => "kv",
            Tree::Cluster => "cluster",
            Tree::Secrets => "secrets",
            Tree::Topics => "topics",
            Tree::Hooks => "hooks",
        }
    }

    pub(crate) fn from_ino(ino: u64) -> Option<Tree> {
        Tree::ALL.into_iter().find(|t| t.ino() == ino)
    }

    pub(crate) fn from_name(name: &str) -> Option<Tree> {
        Tree::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Permission bits of the tree's directory.
    pub(crate) fn dir_mode(self) -> u32 {
        match self {
            Tree::Cluster => 0o555,
            _ => 0o755,
        }
    }
}

/// Checks one directory entry name from the kernel and returns it as UTF-8.
/// The kernel never sends `/` or NUL, but the checks are cheap.
pub(crate) fn entry_name(name: &std::ffi::OsStr) -> Result<&str, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    if bytes.len() > MAX_NAME_BYTES {
        return Err(Errno::ENAMETOOLONG);
    }
    if bytes.is_empty()
        || bytes == b"."
        || bytes == b".."
        || bytes.contains(&b'/')
        || bytes.contains(&0)
    {
        return Err(Errno::EINVAL);
    }
    // Keys are UTF-8: a name that is not cannot exist, nor be created.
    std::str::from_utf8(bytes).map_err(|_| Errno::EILSEQ)
}

/// Whether a name coming from the backend may be shown as a directory entry.
pub(crate) fn valid_backend_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
}

/// The key of `name` inside the directory with key `dir` ("" is `/kv`).
pub(crate) fn join_key(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Splits a key into its parent key and last component.
pub(crate) fn split_key(key: &str) -> (&str, &str) {
    match key.rfind('/') {
        Some(i) => (key.get(..i).unwrap_or(""), key.get(i + 1..).unwrap_or("")),
        None => ("", key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn names() {
        assert_eq!(entry_name(OsStr::new("a.txt")), Ok("a.txt"));
        assert_eq!(
            entry_name(OsStr::new(&"x".repeat(256))),
            Err(Errno::ENAMETOOLONG)
        );
        assert_eq!(
            entry_name(OsStr::new(&"x".repeat(255))).map(str::len),
            Ok(255)
        );
        assert_eq!(entry_name(OsStr::new("a/b")), Err(Errno::EINVAL));
        assert_eq!(entry_name(OsStr::new("..")), Err(Errno::EINVAL));
        assert_eq!(entry_name(OsStr::from_bytes(b"\xff")), Err(Errno::EILSEQ));
        assert_eq!(join_key("", "a"), "a");
        assert_eq!(join_key("a/b", "c"), "a/b/c");
        assert_eq!(split_key("a/b/c"), ("a/b", "c"));
        assert_eq!(split_key("c"), ("", "c"));
        for t in Tree::ALL {
            assert_eq!(Tree::from_ino(t.ino()), Some(t));
            assert_eq!(Tree::from_name(t.name()), Some(t));
        }
    }
}
