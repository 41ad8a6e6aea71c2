//! Where secret records live in the state keyspace (next to the KV, topic and hook
//! families). Paths never contain NUL, so NUL ends the path in a version key; versions
//! are big-endian, so a prefix scan returns them in order.
//!
//! | tag | key                             | value              |
//! |-----|---------------------------------|--------------------|
//! | `S` | path                            | `SecretMetaRecord` |
//! | `V` | path, 0x00, version (u64 BE)    | `VersionRecord`    |
//! | `R` | (nothing)                       | `RecipientsRecord` |

use crate::error::{Error, Result};

const TAG_META: u8 = b'S';
const TAG_VERSION: u8 = b'V';
const TAG_RECIPIENTS: u8 = b'R';

pub fn meta_key(path: &str) -> Vec<u8> {
    let mut k = vec![TAG_META];
    k.extend_from_slice(path.as_bytes());
    k
}

/// Prefix of every metadata record.
pub fn metas_prefix() -> Vec<u8> {
    vec![TAG_META]
}

/// The path a metadata record key names.
pub fn path_of(record_key: &[u8]) -> Result<String> {
    let name = record_key
        .strip_prefix(&[TAG_META])
        .ok_or_else(|| Error::corrupt("malformed secret record key"))?;
    String::from_utf8(name.to_vec()).map_err(|_| Error::corrupt("secret path is not UTF-8"))
}

pub fn version_key(path: &str, version: u64) -> Vec<u8> {
    let mut k = vec![TAG_VERSION];
    k.extend_from_slice(path.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn recipients_key() -> Vec<u8> {
    vec![TAG_RECIPIENTS]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_and_round_trip() {
        assert!(version_key("a", 1) < version_key("a", 256));
        assert!(!version_key("a/b", 1).starts_with(&version_key("a", 1)));
        assert_eq!(path_of(&meta_key("app/db")).unwrap(), "app/db");
    }
}
