//! Extended attribute names and encodings.
//!
//! `user.aspen.*` is reserved: `revision`, `create_revision`, `version` and `lease` are
//! generated from the entry's metadata (decimal text) and cannot be set or removed (EPERM).
//! Other `user.*` attributes are stored with the entry by the backend. Every other
//! namespace (security, system, trusted) is not supported (EOPNOTSUPP).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use fuser::Errno;

use crate::backend::EntryAttr;
use crate::limits::{MAX_XATTR_LIST_BYTES, MAX_XATTR_VALUE_BYTES};

const RESERVED_PREFIX: &str = "user.aspen.";

/// The generated, read-only attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generated {
    Revision,
    CreateRevision,
    Version,
    Lease,
}

impl Generated {
    pub(crate) const ALL: [Generated; 4] = [
        Generated::Revision,
        Generated::CreateRevision,
        Generated::Version,
        Generated::Lease,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Generated::Revision => "user.aspen.revision",
            Generated::CreateRevision => "user.aspen.create_revision",
            Generated::Version => "user.aspen.version",
            Generated::Lease => "user.aspen.lease",
        }
    }

    pub(crate) fn value(self, a: &EntryAttr) -> Vec<u8> {
        let n = match self {
            Generated::Revision => a.mod_revision,
            Generated::CreateRevision => a.create_revision,
            Generated::Version => a.version,
            Generated::Lease => a.lease,
        };
        n.to_string().into_bytes()
    }
}

/// What an xattr name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XattrName<'a> {
    Generated(Generated),
    /// Another name under `user.aspen.`: reserved, never stored.
    Reserved,
    /// A stored `user.*` attribute.
    User(&'a str),
    /// Another namespace, or not UTF-8.
    Unsupported,
}

pub(crate) fn classify(name: &OsStr) -> XattrName<'_> {
    let Ok(name) = std::str::from_utf8(name.as_bytes()) else {
        return XattrName::Unsupported;
    };
    if let Some(g) = Generated::ALL.into_iter().find(|g| g.name() == name) {
        return XattrName::Generated(g);
    }
    if name.starts_with(RESERVED_PREFIX) {
        return XattrName::Reserved;
    }
    match name.strip_prefix("user.") {
        Some(rest) if !rest.is_empty() => XattrName::User(name),
        _ => XattrName::Unsupported,
    }
}

/// The answer to a getxattr/listxattr of `size` bytes: the length when `size` is 0,
/// the bytes when they fit, ERANGE otherwise.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Size(u32),
    Data(Vec<u8>),
}

pub(crate) fn answer(bytes: Vec<u8>, size: u32, max: usize) -> Result<Answer, Errno> {
    if bytes.len() > max {
        return Err(Errno::E2BIG);
    }
    let len = u32::try_from(bytes.len()).map_err(|_| Errno::E2BIG)?;
    if size == 0 {
        Ok(Answer::Size(len))
    } else if len > size {
        Err(Errno::ERANGE)
    } else {
        Ok(Answer::Data(bytes))
    }
}

pub(crate) fn value_answer(bytes: Vec<u8>, size: u32) -> Result<Answer, Errno> {
    answer(bytes, size, MAX_XATTR_VALUE_BYTES)
}

/// The listxattr buffer: NUL-terminated names, generated ones first (when the entry
/// has metadata), then the stored `user.*` names.
pub(crate) fn list(
    with_generated: bool,
    stored: &[(String, Vec<u8>)],
    size: u32,
) -> Result<Answer, Errno> {
    let mut out = Vec::new();
    if with_generated {
        for g in Generated::ALL {
            out.extend_from_slice(g.name().as_bytes());
            out.push(0);
        }
    }
    for (name, _) in stored {
        if name.starts_with("user.") && !name.starts_with(RESERVED_PREFIX) && !name.contains('\0') {
            if out.len() + name.len() + 1 > MAX_XATTR_LIST_BYTES {
                return Err(Errno::E2BIG);
            }
            out.extend_from_slice(name.as_bytes());
            out.push(0);
        }
    }
    answer(out, size, MAX_XATTR_LIST_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_answers() {
        assert_eq!(
            classify(OsStr::new("user.aspen.revision")),
            XattrName::Generated(Generated::Revision)
        );
        assert_eq!(
            classify(OsStr::new("user.aspen.other")),
            XattrName::Reserved
        );
        assert_eq!(classify(OsStr::new("user.x")), XattrName::User("user.x"));
        assert_eq!(classify(OsStr::new("user.")), XattrName::Unsupported);
        assert_eq!(
            classify(OsStr::new("security.selinux")),
            XattrName::Unsupported
        );
        assert_eq!(value_answer(b"12".to_vec(), 0), Ok(Answer::Size(2)));
        assert_eq!(value_answer(b"12".to_vec(), 1), Err(Errno::ERANGE));
        assert_eq!(
            value_answer(b"12".to_vec(), 2),
            Ok(Answer::Data(b"12".to_vec()))
        );
        let stored = vec![
            ("user.a".to_string(), vec![]),
            ("trusted.b".to_string(), vec![]),
        ];
        assert_eq!(
            list(false, &stored, 100),
            Ok(Answer::Data(b"user.a\0".to_vec()))
        );
        match list(true, &stored, 0) {
            Ok(Answer::Size(n)) => assert!(n > 7),
            other => panic!("{other:?}"),
        }
    }
}
