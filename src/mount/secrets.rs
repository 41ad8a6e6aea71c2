//! The mount's `/secrets`: `aspen_fs::SecretBackend` over the node in this process or a
//! client connection, through the same secrets requests as the CLI (the node encrypts
//! what is written and decrypts what is read).

use aspen_fs as fs;

use super::backend::{to_fs, KvBackend, Target};
use crate::error::{Error, Result};
use crate::limits::MAX_SECRET_LIST_ENTRIES;
use crate::net::proto::Consistency;
use crate::secrets::*;

impl Target {
    async fn secret(&self, origin: u64, req: SecretRequest) -> Result<SecretReply> {
        match self {
            Target::Local(n) => n.secret(origin, req).await,
            Target::Remote(c) => c.secret(req).await,
        }
    }
}

fn unexpected() -> fs::BackendError {
    to_fs(Error::internal("unexpected answer to a secrets request"))
}

impl KvBackend {
    fn secret_call(&self, req: SecretRequest) -> fs::BackendResult<SecretReply> {
        self.rt
            .block_on(self.target.secret(self.origin, req))
            .map_err(to_fs)
    }

    fn secret_query(&self, query: SecretQuery) -> fs::BackendResult<SecretAnswer> {
        let req = SecretRequest::Query {
            query,
            consistency: Consistency::Linearizable,
        };
        match self.secret_call(req)? {
            SecretReply::Answer(a) => Ok(a),
            _ => Err(unexpected()),
        }
    }
}

impl fs::SecretBackend for KvBackend {
    fn secret_version(&self, path: &str) -> fs::BackendResult<Option<u64>> {
        if validate_path(path).is_err() {
            return Ok(None);
        }
        match self.secret_query(SecretQuery::Metadata { path: path.into() })? {
            SecretAnswer::Metadata(m) => Ok(m
                .filter(|m| m.current_version > 0)
                .map(|m| m.current_version)),
            _ => Err(unexpected()),
        }
    }

    fn secret_paths(&self, prefix: &str, limit: usize) -> fs::BackendResult<Vec<String>> {
        if !prefix.is_empty() && validate_path(prefix).is_err() {
            return Ok(Vec::new());
        }
        let limit = limit.clamp(1, MAX_SECRET_LIST_ENTRIES);
        let q = SecretQuery::List {
            prefix: prefix.into(),
            after: None,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        match self.secret_query(q)? {
            SecretAnswer::Paths { paths, .. } => Ok(paths),
            _ => Err(unexpected()),
        }
    }

    fn secret_read(&self, path: &str, version: Option<u64>) -> fs::BackendResult<Vec<u8>> {
        let req = SecretRequest::Get {
            path: path.into(),
            version,
            consistency: Consistency::Linearizable,
        };
        match self.secret_call(req)? {
            SecretReply::Value(v) => Ok(v.data),
            _ => Err(unexpected()),
        }
    }

    fn secret_write(&self, path: &str, value: Vec<u8>) -> fs::BackendResult<u64> {
        let req = SecretRequest::Put {
            path: path.into(),
            value,
            cas: None,
        };
        match self.secret_call(req)? {
            SecretReply::Outcome(SecretOutcome::Written { version }) => Ok(version),
            _ => Err(unexpected()),
        }
    }

    fn secret_delete(&self, path: &str) -> fs::BackendResult<()> {
        let req = SecretRequest::Command(SecretCommand::Delete {
            path: path.into(),
            versions: Vec::new(),
        });
        match self.secret_call(req)? {
            SecretReply::Outcome(_) => Ok(()),
            _ => Err(unexpected()),
        }
    }
}
