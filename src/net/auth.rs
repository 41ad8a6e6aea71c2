//! Mutual authentication on connect (HMAC-SHA256 challenge and response).
//!
//! 1. server -> `ServerHello { node_id, nonce_s }`
//! 2. client -> `ClientHello { role, nonce_c, proof = HMAC(key, "aspen-auth-v1/client" | role | nonce_s | nonce_c) }`
//! 3. server -> `Accepted { HMAC(key, "aspen-auth-v1/server" | nonce_c | nonce_s) }` or `Refused`.
//!
//! The key is the cluster secret for a `Peer` and the client token for a `Client`. Neither
//! is ever sent; fresh nonces on both sides stop replay in either direction.

use hmac::{Hmac, Mac as _};
use rand::RngCore;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, ErrorKind, Result};
use crate::limits::{HANDSHAKE_TIMEOUT_MS, MAX_SECRET_FILE_BYTES, MIN_SECRET_BYTES};
use crate::net::frame::{read_msg, write_msg};
use crate::net::proto::{ClientHello, Mac, Nonce, Role, ServerHello, ServerVerdict};
use crate::raft::types::NodeId;

/// The keys a node checks connections against.
#[derive(Clone)]
pub struct Keys {
    pub cluster_secret: Vec<u8>,
    pub client_token: Vec<u8>,
}

impl Keys {
    fn for_role(&self, role: Role) -> &[u8] {
        match role {
            Role::Peer { .. } => &self.cluster_secret,
            Role::Client => &self.client_token,
        }
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Result<Mac> {
    let mut m =
        Hmac::<Sha256>::new_from_slice(key).map_err(|e| Error::internal(format!("hmac: {e}")))?;
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    Ok(m.finalize().into_bytes().into())
}

fn verify(key: &[u8], parts: &[&[u8]], proof: &Mac) -> Result<bool> {
    let mut m =
        Hmac::<Sha256>::new_from_slice(key).map_err(|e| Error::internal(format!("hmac: {e}")))?;
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    Ok(m.verify_slice(proof).is_ok())
}

fn nonce() -> Nonce {
    let mut n = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

fn role_bytes(role: Role) -> Result<Vec<u8>> {
    postcard::to_stdvec(&role).map_err(|e| Error::internal(format!("encode role: {e}")))
}

async fn timed<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(std::time::Duration::from_millis(HANDSHAKE_TIMEOUT_MS), f)
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout, "authentication handshake timed out"))?
}

/// Client side. Returns the server's node id once both sides are proven.
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    role: Role,
    key: &[u8],
) -> Result<NodeId> {
    timed(async {
        let hello: ServerHello = read_msg(s).await?;
        let nonce_c = nonce();
        let rb = role_bytes(role)?;
        let proof = mac(key, &[b"aspen-auth-v1/client", &rb, &hello.nonce, &nonce_c])?;
        write_msg(
            s,
            &ClientHello {
                role,
                nonce: nonce_c,
                proof,
            },
        )
        .await?;
        match read_msg::<_, ServerVerdict>(s).await? {
            ServerVerdict::Accepted { proof } => {
                if verify(
                    key,
                    &[b"aspen-auth-v1/server", &nonce_c, &hello.nonce],
                    &proof,
                )? {
                    Ok(hello.node_id)
                } else {
                    Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "the server could not prove it knows the key",
                    ))
                }
            }
            ServerVerdict::Refused { reason } => {
                Err(Error::new(ErrorKind::PermissionDenied, reason))
            }
        }
    })
    .await
}

/// Server side. Returns the proven role of the other end.
pub async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    node_id: NodeId,
    keys: &Keys,
) -> Result<Role> {
    timed(async {
        let nonce_s = nonce();
        write_msg(
            s,
            &ServerHello {
                node_id,
                nonce: nonce_s,
            },
        )
        .await?;
        let hello: ClientHello = read_msg(s).await?;
        let key = keys.for_role(hello.role);
        let rb = role_bytes(hello.role)?;
        if !verify(
            key,
            &[b"aspen-auth-v1/client", &rb, &nonce_s, &hello.nonce],
            &hello.proof,
        )? {
            let reason = match hello.role {
                Role::Peer { .. } => "wrong cluster secret",
                Role::Client => "wrong client token",
            };
            let _ = write_msg(
                s,
                &ServerVerdict::Refused {
                    reason: reason.into(),
                },
            )
            .await;
            return Err(Error::new(ErrorKind::PermissionDenied, reason));
        }
        let proof = mac(key, &[b"aspen-auth-v1/server", &hello.nonce, &nonce_s])?;
        write_msg(s, &ServerVerdict::Accepted { proof }).await?;
        Ok(hello.role)
    })
    .await
}

/// Reads a secret or token file (whitespace trimmed), refusing short or huge ones.
pub fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(Error::invalid(format!(
            "{} is larger than {MAX_SECRET_FILE_BYTES} bytes",
            path.display()
        )));
    }
    let text = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read {}: {e}", path.display())))?;
    let key = text.trim_ascii().to_vec();
    if key.len() < MIN_SECRET_BYTES {
        return Err(Error::invalid(format!(
            "{} holds {} bytes; a key needs at least {MIN_SECRET_BYTES}",
            path.display(),
            key.len()
        )));
    }
    Ok(key)
}

/// Creates `path` (it must not exist) readable by its owner only (mode 0600), with
/// `contents`, synced to disk: for files that hold keys.
pub fn create_private_file(path: &std::path::Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// Reads `path`, or creates it with a new random key (mode 0600) when it does not exist.
pub fn read_or_create_key_file(path: &std::path::Path) -> Result<Vec<u8>> {
    if !path.exists() {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        create_private_file(path, format!("{hex}\n").as_bytes())?;
    }
    read_key_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            cluster_secret: b"cluster-secret-0123456789".to_vec(),
            client_token: b"client-token-0123456789".to_vec(),
        }
    }

    #[tokio::test]
    async fn accepts_right_keys_and_refuses_wrong_ones() {
        for (role, key, ok) in [
            (Role::Client, b"client-token-0123456789".to_vec(), true),
            (
                Role::Peer { node_id: 2 },
                b"cluster-secret-0123456789".to_vec(),
                true,
            ),
            (Role::Client, b"cluster-secret-0123456789".to_vec(), false),
            (
                Role::Peer { node_id: 2 },
                b"wrong-wrong-wrong-wrong".to_vec(),
                false,
            ),
        ] {
            let (mut a, mut b) = tokio::io::duplex(4096);
            let server = tokio::spawn(async move { server_handshake(&mut b, 1, &keys()).await });
            let client = client_handshake(&mut a, role, &key).await;
            let server = server.await.unwrap();
            assert_eq!(client.is_ok(), ok, "{role:?} client: {client:?}");
            assert_eq!(server.is_ok(), ok, "{role:?} server: {server:?}");
            if ok {
                assert_eq!(server.unwrap(), role);
                assert_eq!(client.unwrap(), 1);
            }
        }
    }
}
