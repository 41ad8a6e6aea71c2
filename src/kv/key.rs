//! Key syntax (DESIGN.md section 3): a path below `/kv` with `/` separators, UTF-8,
//! no empty, `.` or `..` components, no NUL, at most `MAX_KEY_BYTES` in all and
//! `MAX_NAME_BYTES` per component. The empty key is the root directory.

use crate::error::{Error, ErrorKind, Result};
use crate::limits::{MAX_KEY_BYTES, MAX_NAME_BYTES};

/// Checks a key (not the root) and explains the first problem found.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(
            "empty key (the root directory cannot be written)",
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::new(
            ErrorKind::NameTooLong,
            format!("key is {} bytes; the limit is {MAX_KEY_BYTES}", key.len()),
        ));
    }
    for component in key.split('/') {
        validate_name(component)
            .map_err(|e| Error::new(e.kind, format!("key {key:?}: {}", e.message)))?;
    }
    Ok(())
}

/// Checks one path component.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(
            "empty path component (leading, trailing or double '/')",
        ));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid(format!(
            "path component {name:?} is not allowed"
        )));
    }
    if name.contains('\0') {
        return Err(Error::invalid("NUL byte in name"));
    }
    if name.contains('/') {
        return Err(Error::invalid("'/' in a name"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::new(
            ErrorKind::NameTooLong,
            format!(
                "component is {} bytes; the limit is {MAX_NAME_BYTES}",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Normalizes user input: strips leading and trailing `/`.
pub fn normalize(key: &str) -> &str {
    key.trim_matches('/')
}

/// Parent key ("" for a top-level key) and last component.
pub fn split(key: &str) -> (&str, &str) {
    match key.rfind('/') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => ("", key),
    }
}

/// Joins a directory key and a child name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `key` is `ancestor` or lies below it. The root "" contains everything.
pub fn is_within(key: &str, ancestor: &str) -> bool {
    ancestor.is_empty()
        || key == ancestor
        || (key.len() > ancestor.len()
            && key.starts_with(ancestor)
            && key.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// Proper ancestors of `key`, outermost first ("a/b/c" -> ["a", "a/b"]).
pub fn ancestors(key: &str) -> Vec<&str> {
    key.match_indices('/').map(|(i, _)| &key[..i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        assert!(validate_key("a").is_ok());
        assert!(validate_key("app/db/url").is_ok());
        assert!(validate_key("ünï/cödé").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a/./b", "../x", "a/..", "a\0b"] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        let long_name = "x".repeat(256);
        assert_eq!(
            validate_key(&long_name).unwrap_err().kind,
            ErrorKind::NameTooLong
        );
        let long_key = vec!["y".repeat(200); 25].join("/");
        assert_eq!(
            validate_key(&long_key).unwrap_err().kind,
            ErrorKind::NameTooLong
        );
    }

    #[test]
    fn path_helpers() {
        assert_eq!(split("a/b/c"), ("a/b", "c"));
        assert_eq!(split("a"), ("", "a"));
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
        assert!(is_within("a/b", "a"));
        assert!(is_within("a", "a"));
        assert!(!is_within("ab", "a"));
        assert!(is_within("x", ""));
        assert_eq!(ancestors("a/b/c"), vec!["a", "a/b"]);
        assert!(ancestors("a").is_empty());
        assert_eq!(normalize("/a/b/"), "a/b");
    }
}
