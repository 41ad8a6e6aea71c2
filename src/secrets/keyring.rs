//! The node-local side of secrets: this node's age identity (a `keys.txt` file as
//! `age-keygen` and SOPS write it), encryption of new values to the cluster's recipient
//! set, and decryption of stored ciphertext. Nothing here is replicated; plaintext never
//! leaves this module except to the caller that asked for it.

use std::io::{Read, Write};
use std::path::Path;

use age::secrecy::ExposeSecret;
use age::x25519;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::{MAX_AGE_IDENTITIES, MAX_AGE_IDENTITY_FILE_BYTES, MAX_SECRET_VALUE_BYTES};

/// A node's age identities (possibly none: such a node serves metadata only).
#[derive(Default)]
pub struct Keyring {
    identities: Vec<x25519::Identity>,
    /// Where the identities came from, for messages.
    source: Option<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("identities", &self.identities.len())
            .field("source", &self.source)
            .finish()
    }
}

impl Keyring {
    /// No identity: values can be encrypted to configured recipients but never read.
    pub fn empty() -> Keyring {
        Keyring::default()
    }

    /// Parses `keys.txt` text: `#` comments, blank lines and `AGE-SECRET-KEY-1...` lines.
    pub fn parse(text: &str, source: &str) -> Result<Keyring> {
        let mut identities = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if identities.len() >= MAX_AGE_IDENTITIES {
                return Err(Error::invalid(format!(
                    "{source}: more than {MAX_AGE_IDENTITIES} identities"
                )));
            }
            // The error never quotes the line: it is secret key material.
            let id = line.parse::<x25519::Identity>().map_err(|_| {
                Error::invalid(format!(
                    "{source}, line {}: not an age x25519 identity (AGE-SECRET-KEY-1...)",
                    n + 1
                ))
            })?;
            identities.push(id);
        }
        if identities.is_empty() {
            return Err(Error::invalid(format!("{source}: no age identity in it")));
        }
        Ok(Keyring {
            identities,
            source: Some(source.to_string()),
        })
    }

    /// Reads an identity file.
    pub fn load(path: &Path) -> Result<Keyring> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("cannot open age identity file {shown}: {e}")))?;
        let mut text = String::new();
        file.take(MAX_AGE_IDENTITY_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::io(format!("cannot read age identity file {shown}: {e}")))?;
        if text.len() as u64 > MAX_AGE_IDENTITY_FILE_BYTES {
            return Err(Error::invalid(format!(
                "{shown}: larger than {MAX_AGE_IDENTITY_FILE_BYTES} bytes"
            )));
        }
        Keyring::parse(&text, &shown)
    }

    /// Writes a new identity file (mode 0600) unless one exists; returns its public key.
    pub fn generate_file(path: &Path) -> Result<String> {
        let id = x25519::Identity::generate();
        let public = id.to_public().to_string();
        let text = format!(
            "# created by aspen for this node's secrets\n# public key: {public}\n{}\n",
            id.to_string().expose_secret()
        );
        crate::net::auth::create_private_file(path, text.as_bytes())?;
        Ok(public)
    }

    pub fn has_identity(&self) -> bool {
        !self.identities.is_empty()
    }

    /// The public key of this node's first identity.
    pub fn recipient(&self) -> Option<String> {
        self.identities.first().map(|i| i.to_public().to_string())
    }

    /// Encrypts `plaintext` to `recipients` (age x25519 public keys); none: to this
    /// node's own identity.
    pub fn seal(&self, recipients: &[String], plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > MAX_SECRET_VALUE_BYTES {
            return Err(Error::new(
                ErrorKind::TooBig,
                format!("secret value over {MAX_SECRET_VALUE_BYTES} bytes"),
            ));
        }
        let mut parsed = Vec::with_capacity(recipients.len());
        for r in recipients {
            parsed.push(
                r.parse::<x25519::Recipient>()
                    .map_err(|e| Error::invalid(format!("bad recipient {r:?}: {e}")))?,
            );
        }
        if parsed.is_empty() {
            match self.identities.first() {
                Some(id) => parsed.push(id.to_public()),
                None => {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "no recipients configured (aspen secrets recipients set) and this node \
                         has no age identity (--age-identity): cannot encrypt",
                    ))
                }
            }
        }
        let encryptor =
            age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| Error::internal(format!("age: {e}")))?;
        let mut out = Vec::with_capacity(plaintext.len().saturating_add(512));
        let mut w = encryptor
            .wrap_output(&mut out)
            .map_err(|e| Error::internal(format!("age: {e}")))?;
        w.write_all(plaintext)
            .map_err(|e| Error::internal(format!("age: {e}")))?;
        w.finish()
            .map_err(|e| Error::internal(format!("age: {e}")))?;
        Ok(out)
    }

    /// Decrypts stored ciphertext. No identity, or none that opens it: PermissionDenied;
    /// damaged ciphertext: Corrupt.
    pub fn open(&self, ciphertext: &[u8]) -> Result<Vec<u8>> {
        if self.identities.is_empty() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "this node has no age identity (--age-identity or ASPEN_AGE_KEY_FILE): \
                 it serves secret metadata only",
            ));
        }
        let decryptor = age::Decryptor::new_buffered(ciphertext).map_err(|e| corrupt(&e))?;
        let mut reader = decryptor
            .decrypt(self.identities.iter().map(|i| i as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "this node's age identity ({}) is not a recipient of this secret",
                        self.source.as_deref().unwrap_or("?")
                    ),
                ),
                other => corrupt(&other),
            })?;
        let mut out = Vec::new();
        reader
            .by_ref()
            .take(MAX_SECRET_VALUE_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::corrupt(format!(
                    "secret ciphertext is damaged (does not authenticate): {e}"
                ))
            })?;
        if out.len() > MAX_SECRET_VALUE_BYTES {
            return Err(Error::corrupt("secret plaintext over the size limit"));
        }
        Ok(out)
    }
}

fn corrupt(e: &age::DecryptError) -> Error {
    Error::corrupt(format!("secret ciphertext is damaged: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        let id = x25519::Identity::generate();
        Keyring::parse(
            &format!("# test\n\n{}\n", id.to_string().expose_secret()),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_no_plaintext_in_ciphertext() {
        let k = ring();
        let ct = k.seal(&[], b"hunter2-plaintext").unwrap();
        assert!(ct.starts_with(crate::secrets::apply::AGE_MAGIC));
        assert!(!ct.windows(17).any(|w| w == b"hunter2-plaintext"));
        assert_eq!(k.open(&ct).unwrap(), b"hunter2-plaintext");
    }

    #[test]
    fn wrong_identity_is_permission_denied() {
        let ct = ring().seal(&[], b"x").unwrap();
        let e = ring().open(&ct).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
        let e = Keyring::empty().open(&ct).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    }

    #[test]
    fn damaged_ciphertext_is_corrupt() {
        let k = ring();
        let ct = k.seal(&[], b"some secret value").unwrap();
        // A flipped byte in the payload, in the header, and a truncation.
        for i in [ct.len() - 3, 40] {
            let mut bad = ct.clone();
            bad[i] ^= 0x55;
            let e = k.open(&bad).unwrap_err();
            assert!(
                matches!(e.kind, ErrorKind::Corrupt | ErrorKind::PermissionDenied),
                "{e:?}"
            );
        }
        let e = k.open(&ct[..ct.len() - 5]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt, "{e}");
        let last = ct.len() - 3;
        let mut bad = ct.clone();
        bad[last] ^= 0x55;
        assert_eq!(k.open(&bad).unwrap_err().kind, ErrorKind::Corrupt);
    }

    #[test]
    fn bad_identity_files_are_refused_without_quoting_them() {
        let e = Keyring::parse("AGE-SECRET-KEY-1NOTAKEY\n", "f").unwrap_err();
        assert!(!e.message.contains("NOTAKEY"));
        assert!(Keyring::parse("# only comments\n", "f").is_err());
    }

    #[test]
    fn several_recipients_each_decrypt() {
        let (a, b) = (ring(), ring());
        let rs = vec![a.recipient().unwrap(), b.recipient().unwrap()];
        let ct = a.seal(&rs, b"shared").unwrap();
        assert_eq!(b.open(&ct).unwrap(), b"shared");
        assert_eq!(a.open(&ct).unwrap(), b"shared");
    }
}
