//! The secrets API of a node: turns client requests into secret commands and queries.
//! Values are encrypted here, on the node that received them, before they become raft
//! commands; reads are answered with ciphertext by the (possibly remote) leader and
//! decrypted here. Plaintext is never logged.

use crate::error::{Error, ErrorKind, Result};
use crate::kv::{Command, ReadQuery, ReadResult, WriteResult};
use crate::net::proto::Consistency;
use crate::secrets::*;

use super::{now_ns, Node};

impl Node {
    /// Serves one secrets request.
    pub async fn secret(&self, origin: u64, req: SecretRequest) -> Result<SecretReply> {
        match req {
            SecretRequest::Put { path, value, cas } => {
                validate_path(&path)?;
                let recipients = self.secret_recipients().await?;
                let ciphertext = self.keyring.seal(&recipients, &value)?;
                drop(value);
                let cmd = SecretCommand::Put {
                    path,
                    ciphertext,
                    cas,
                };
                self.secret_command(origin, cmd).await
            }
            SecretRequest::Command(SecretCommand::Put { .. }) => Err(Error::new(
                ErrorKind::PermissionDenied,
                "secret values are written with a put request, which this node encrypts",
            )),
            SecretRequest::Command(cmd) => self.secret_command(origin, cmd).await,
            SecretRequest::Get {
                path,
                version,
                consistency,
            } => {
                validate_path(&path)?;
                let q = SecretQuery::Version {
                    path: path.clone(),
                    version,
                };
                match self.secret_query(q, consistency).await? {
                    SecretAnswer::Version(Some(v)) => self.unseal(&path, v).map(SecretReply::Value),
                    SecretAnswer::Version(None) => Err(Error::not_found(match version {
                        Some(n) => format!("secret {path:?} version {n}"),
                        None => format!("secret {path:?}"),
                    })),
                    _ => Err(Error::internal("unexpected answer to a secret read")),
                }
            }
            SecretRequest::Query { query, consistency } => self
                .secret_query(query, consistency)
                .await
                .map(SecretReply::Answer),
        }
    }

    /// This node's age public key, if it has an identity.
    pub fn age_recipient(&self) -> Option<String> {
        self.keyring.recipient()
    }

    async fn secret_command(&self, origin: u64, cmd: SecretCommand) -> Result<SecretReply> {
        match self.write_checked(origin, Command::Secret(cmd)).await? {
            WriteResult::Secret { outcome, .. } => Ok(SecretReply::Outcome(outcome)),
            _ => Err(Error::internal("unexpected result of a secret command")),
        }
    }

    async fn secret_query(&self, q: SecretQuery, c: Consistency) -> Result<SecretAnswer> {
        match self.read(ReadQuery::Secret(q), c, 0).await? {
            ReadResult::Secret(a) => Ok(a),
            _ => Err(Error::internal("unexpected answer to a secret query")),
        }
    }

    /// The cluster's recipient set as this node has applied it (empty: this node's own).
    async fn secret_recipients(&self) -> Result<Vec<String>> {
        match self.read_local(&ReadQuery::Secret(SecretQuery::Recipients))? {
            ReadResult::Secret(SecretAnswer::Recipients(r)) => Ok(r),
            _ => Err(Error::internal("unexpected answer to a recipients query")),
        }
    }

    /// Decrypts a live version; deleted, destroyed and expired versions are NotFound.
    fn unseal(&self, path: &str, v: SealedVersion) -> Result<SecretValue> {
        let gone =
            |why: &str| Error::not_found(format!("secret {path:?} version {} ({why})", v.version));
        if v.destroyed {
            return Err(gone("destroyed"));
        }
        if v.deleted_ns.is_some() {
            return Err(gone("deleted; undelete restores it"));
        }
        if v.expires_ns().is_some_and(|at| at <= now_ns()) {
            return Err(gone("deleted by delete_version_after"));
        }
        let data = self.keyring.open(&v.ciphertext)?;
        Ok(SecretValue {
            version: v.version,
            created_ns: v.created_ns,
            data,
        })
    }
}
