//! Aspen's error type: a kind that maps to an errno, an exit code and a wire frame,
//! plus a one-line message for people.

use serde::{Deserialize, Serialize};

/// What went wrong, in categories a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    NotDir,
    IsDir,
    NotEmpty,
    /// A key or a path component is too long.
    NameTooLong,
    /// A value (or request) is larger than the limit.
    TooBig,
    InvalidInput,
    /// Authentication failed or the caller may not do this.
    PermissionDenied,
    /// A compare-and-swap or transaction precondition failed.
    CompareFailed,
    /// An xattr that does not exist.
    NoData,
    /// A per-entry table (xattrs) or the disk is full.
    NoSpace,
    /// A directory rename larger than one command may carry.
    CrossDevice,
    /// This node is not the leader (the message names it when known).
    NotLeader,
    /// No quorum or no leader: the cluster cannot accept writes right now.
    Unavailable,
    /// The request did not complete in time; it may or may not have been applied.
    Timeout,
    /// A watch asked for history that has been compacted away.
    Compacted,
    /// A frame or record that does not decode, or an unknown format version.
    Corrupt,
    /// Storage or network failure.
    Io,
    /// The node is shutting down.
    ShuttingDown,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Error::new(ErrorKind::NotFound, format!("{what}: not found"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub fn io(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Io, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Corrupt, message)
    }

    /// Whether a client may retry the same request elsewhere or later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::NotLeader | ErrorKind::Unavailable | ErrorKind::ShuttingDown
        )
    }

    /// The errno a file-system call reports for this error.
    pub fn errno(&self) -> i32 {
        match self.kind {
            ErrorKind::NotFound => libc::ENOENT,
            ErrorKind::AlreadyExists => libc::EEXIST,
            ErrorKind::NotDir => libc::ENOTDIR,
            ErrorKind::IsDir => libc::EISDIR,
            ErrorKind::NotEmpty => libc::ENOTEMPTY,
            ErrorKind::NameTooLong => libc::ENAMETOOLONG,
            ErrorKind::TooBig => libc::EFBIG,
            ErrorKind::InvalidInput => libc::EINVAL,
            ErrorKind::PermissionDenied => libc::EACCES,
            ErrorKind::CompareFailed => libc::ESTALE,
            ErrorKind::NoData => libc::ENODATA,
            ErrorKind::NoSpace => libc::ENOSPC,
            ErrorKind::CrossDevice => libc::EXDEV,
            ErrorKind::Unavailable | ErrorKind::NotLeader => libc::EROFS,
            ErrorKind::Timeout
            | ErrorKind::Compacted
            | ErrorKind::Corrupt
            | ErrorKind::Io
            | ErrorKind::ShuttingDown
            | ErrorKind::Internal => libc::EIO,
        }
    }
}

impl From<fjall::Error> for Error {
    fn from(e: fjall::Error) -> Self {
        Error::io(format!("storage: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e.to_string())
    }
}
