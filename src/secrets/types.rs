//! Secret commands, queries and answers as they travel in raft entries and on the wire,
//! the client requests a node turns into them, and the records the state machine stores.
//! All postcard-encoded: no serde attributes that skip fields, new variants and fields at
//! the end only.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kv::key::validate_key;
use crate::net::proto::Consistency;

/// Checks a secret path: a KV key (`/` separators, no empty, `.` or `..` components)
/// without `@`, which the mount reserves for `<path>@<version>` names.
pub fn validate_path(path: &str) -> Result<()> {
    validate_key(path)?;
    if path.contains('@') {
        return Err(Error::invalid(format!(
            "secret path {path:?}: '@' is reserved for <path>@<version> names"
        )));
    }
    Ok(())
}

/// A change of a secret's settings; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaUpdate {
    /// Versions kept (oldest pruned beyond); 0 means the default.
    pub max_versions: Option<u32>,
    /// Every write must then give `cas`.
    pub cas_required: Option<bool>,
    /// Versions read as deleted this many seconds after their write (0: never).
    pub delete_version_after_secs: Option<u64>,
    /// Replaces the custom metadata (string map, sorted by key).
    pub custom: Option<Vec<(String, String)>>,
}

/// A state change of the secrets service: one raft command. Values arrive here only as
/// age ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretCommand {
    /// A new version. `cas: Some(n)` writes only while the current version is `n`
    /// (0: the secret has no version yet).
    Put {
        path: String,
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
        cas: Option<u64>,
    },
    /// Soft-deletes these versions (none: the current one).
    Delete {
        path: String,
        versions: Vec<u64>,
    },
    Undelete {
        path: String,
        versions: Vec<u64>,
    },
    /// Removes these versions' ciphertext for good.
    Destroy {
        path: String,
        versions: Vec<u64>,
    },
    /// Creates or updates the secret's settings.
    SetMeta {
        path: String,
        update: MetaUpdate,
    },
    /// Removes the secret: every version and its metadata.
    DeleteAll {
        path: String,
    },
    /// Replaces the cluster's recipient set (age x25519 public keys).
    SetRecipients {
        recipients: Vec<String>,
    },
}

impl SecretCommand {
    pub fn name(&self) -> &'static str {
        match self {
            SecretCommand::Put { .. } => "secret-put",
            SecretCommand::Delete { .. } => "secret-delete",
            SecretCommand::Undelete { .. } => "secret-undelete",
            SecretCommand::Destroy { .. } => "secret-destroy",
            SecretCommand::SetMeta { .. } => "secret-metadata-put",
            SecretCommand::DeleteAll { .. } => "secret-metadata-delete",
            SecretCommand::SetRecipients { .. } => "secret-recipients",
        }
    }

    /// The secret path, if the command is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            SecretCommand::Put { path, .. }
            | SecretCommand::Delete { path, .. }
            | SecretCommand::Undelete { path, .. }
            | SecretCommand::Destroy { path, .. }
            | SecretCommand::SetMeta { path, .. }
            | SecretCommand::DeleteAll { path } => Some(path),
            SecretCommand::SetRecipients { .. } => None,
        }
    }
}

/// What a secret command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretOutcome {
    Written {
        version: u64,
    },
    /// The versions whose state changed (others were already so, or are gone).
    Changed {
        versions: Vec<u64>,
    },
    Done,
    /// Versions removed with the secret.
    Removed {
        versions: u64,
    },
}

/// Reads of the secrets service. Answers carry ciphertext, never plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretQuery {
    /// One version (none: the current one).
    Version {
        path: String,
        version: Option<u64>,
    },
    Metadata {
        path: String,
    },
    /// Secret paths at or below `prefix` (path semantics; "" is all), after `after`.
    List {
        prefix: String,
        after: Option<String>,
        limit: u32,
    },
    Recipients,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretAnswer {
    Version(Option<SealedVersion>),
    Metadata(Option<SecretMetadata>),
    Paths { paths: Vec<String>, more: bool },
    Recipients(Vec<String>),
}

/// One version as stored; `ciphertext` is empty unless the version is live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedVersion {
    pub version: u64,
    pub created_ns: i64,
    pub deleted_ns: Option<i64>,
    pub destroyed: bool,
    pub delete_version_after_secs: u64,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

impl SealedVersion {
    /// When the version stops being readable through `delete_version_after`, if ever.
    pub fn expires_ns(&self) -> Option<i64> {
        expiry(self.created_ns, self.delete_version_after_secs)
    }
}

/// `created + after` in ns, `None` for 0 (never).
pub fn expiry(created_ns: i64, after_secs: u64) -> Option<i64> {
    if after_secs == 0 {
        return None;
    }
    let after_ns = i64::try_from(after_secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
    Some(created_ns.saturating_add(after_ns))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: u64,
    pub created_ns: i64,
    pub deleted_ns: Option<i64>,
    pub destroyed: bool,
}

/// A secret's metadata and the state of its kept versions (never values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMetadata {
    pub path: String,
    pub current_version: u64,
    pub oldest_version: u64,
    pub created_ns: i64,
    pub updated_ns: i64,
    /// Effective value (the default when unset).
    pub max_versions: u32,
    pub cas_required: bool,
    pub delete_version_after_secs: u64,
    pub custom: Vec<(String, String)>,
    pub versions: Vec<VersionInfo>,
}

// ---- client requests (wire) ----

/// What a client asks of the secrets service. A node encrypts `Put` values before they
/// become commands and decrypts `Get` answers itself. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretRequest {
    Put {
        path: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        cas: Option<u64>,
    },
    Get {
        path: String,
        version: Option<u64>,
        consistency: Consistency,
    },
    /// Any command but `Put` (values only enter through `Put`, to be encrypted here).
    Command(SecretCommand),
    Query {
        query: SecretQuery,
        consistency: Consistency,
    },
}

impl std::fmt::Debug for SecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRequest::Put { path, value, cas } => f
                .debug_struct("Put")
                .field("path", path)
                .field("value", &format_args!("<{} bytes>", value.len()))
                .field("cas", cas)
                .finish(),
            SecretRequest::Get {
                path,
                version,
                consistency,
            } => f
                .debug_struct("Get")
                .field("path", path)
                .field("version", version)
                .field("consistency", consistency)
                .finish(),
            SecretRequest::Command(c) => f.debug_tuple("Command").field(&c.name()).finish(),
            SecretRequest::Query { query, consistency } => f
                .debug_struct("Query")
                .field("query", query)
                .field("consistency", consistency)
                .finish(),
        }
    }
}

/// A decrypted version.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretValue {
    pub version: u64,
    pub created_ns: i64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for SecretValue {
    // Never prints the value (logs must not hold plaintext).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("version", &self.version)
            .field("created_ns", &self.created_ns)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretReply {
    Outcome(SecretOutcome),
    Value(SecretValue),
    Answer(SecretAnswer),
}

// ---- stored records ----

/// `S` record: a secret's settings and version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMetaRecord {
    pub current_version: u64,
    /// Oldest kept version (0 while there is none).
    pub oldest_version: u64,
    pub created_ns: i64,
    pub updated_ns: i64,
    /// 0: the default.
    pub max_versions: u32,
    pub cas_required: bool,
    pub delete_version_after_secs: u64,
    pub custom: Vec<(String, String)>,
}

/// `V` record: one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub created_ns: i64,
    pub deleted_ns: Option<i64>,
    pub destroyed: bool,
    /// Empty once destroyed.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// `R` record: the recipients new secret values are encrypted to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientsRecord {
    pub recipients: Vec<String>,
}
