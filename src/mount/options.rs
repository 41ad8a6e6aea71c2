//! Mount options (`-o a,b=c`), as `mount -t aspen`, `aspen mount`, `aspen up` and
//! `aspen node --mount` accept them.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::net::proto::Consistency;

#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    pub read_only: bool,
    pub allow_other: bool,
    pub default_permissions: bool,
    pub attr_timeout: Duration,
    pub entry_timeout: Duration,
    pub consistency: Consistency,
    pub token_file: Option<PathBuf>,
    pub claim_wait: Duration,
}

impl Default for MountOptions {
    fn default() -> Self {
        let fs = aspen_fs::MountConfig::default();
        MountOptions {
            read_only: false,
            allow_other: false,
            default_permissions: true,
            attr_timeout: fs.attr_timeout,
            entry_timeout: fs.entry_timeout,
            consistency: Consistency::Linearizable,
            token_file: None,
            claim_wait: fs.claim_wait,
        }
    }
}

/// Options mount(8) and fstab pass that mean nothing to Aspen.
const IGNORED: &[&str] = &[
    "_netdev",
    "defaults",
    "auto",
    "noauto",
    "nofail",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "noatime",
    "relatime",
    "atime",
    "nodiratime",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "async",
    "sync",
];

fn seconds(key: &str, v: &str) -> Result<Duration> {
    let secs: f64 = v
        .parse()
        .map_err(|_| Error::invalid(format!("{key}={v}: not a number of seconds")))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(Error::invalid(format!(
            "{key}={v}: must be between 0 and 86400 seconds"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl MountOptions {
    /// Parses a comma-separated option string; `sloppy` ignores unknown options.
    pub fn parse(opts: &str, sloppy: bool) -> Result<MountOptions> {
        let mut o = MountOptions::default();
        for opt in opts.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            match (key, value) {
                ("ro", None) => o.read_only = true,
                ("rw", None) => o.read_only = false,
                ("allow_other", None) => o.allow_other = true,
                ("default_permissions", None) => o.default_permissions = true,
                ("no_default_permissions", None) => o.default_permissions = false,
                ("attr_timeout", Some(v)) => o.attr_timeout = seconds(key, v)?,
                ("entry_timeout", Some(v)) => o.entry_timeout = seconds(key, v)?,
                ("consistency", Some("local")) => o.consistency = Consistency::Local,
                ("consistency", Some("linearizable")) => o.consistency = Consistency::Linearizable,
                ("token_file", Some(v)) => o.token_file = Some(PathBuf::from(v)),
                ("claim_wait", Some(v)) => {
                    o.claim_wait = seconds(key, v)?;
                    let max = Duration::from_millis(aspen_fs::limits::MAX_CLAIM_WAIT_MS);
                    if o.claim_wait > max {
                        return Err(Error::invalid(format!(
                            "claim_wait={v}: at most {} seconds",
                            max.as_secs()
                        )));
                    }
                }
                (k, _) if IGNORED.contains(&k) || k.starts_with("x-") || k == "comment" => {}
                _ if sloppy => {}
                _ => return Err(Error::invalid(format!("unknown mount option {opt:?}"))),
            }
        }
        Ok(o)
    }

    /// The file system's mount configuration for source `fsname`.
    pub fn fs_config(&self, fsname: &str) -> aspen_fs::MountConfig {
        aspen_fs::MountConfig {
            attr_timeout: self.attr_timeout,
            entry_timeout: self.entry_timeout,
            read_only: self.read_only,
            allow_other: self.allow_other,
            default_permissions: self.default_permissions,
            fsname: fsname.to_string(),
            subtype: "aspen".to_string(),
            claim_wait: self.claim_wait,
            ..aspen_fs::MountConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_refuses_unknown() {
        let o = MountOptions::parse("rw,_netdev,attr_timeout=2.5,entry_timeout=0,consistency=local,token_file=/t,allow_other,x-systemd.foo", false).unwrap();
        assert_eq!(o.attr_timeout, Duration::from_millis(2500));
        assert_eq!(o.entry_timeout, Duration::ZERO);
        assert_eq!(o.consistency, Consistency::Local);
        assert_eq!(o.token_file, Some(PathBuf::from("/t")));
        assert!(o.allow_other && o.default_permissions && !o.read_only);
        assert!(MountOptions::parse("ro", false).unwrap().read_only);
        assert!(MountOptions::parse("frobnicate", false).is_err());
        assert!(MountOptions::parse("frobnicate", true).is_ok());
        assert!(MountOptions::parse("attr_timeout=-1", false).is_err());
        let o = MountOptions::parse("claim_wait=0.5", false).unwrap();
        assert_eq!(o.fs_config("x").claim_wait, Duration::from_millis(500));
        assert!(MountOptions::parse("claim_wait=301", false).is_err());
        assert!(MountOptions::parse("consistency=eventual", false).is_err());
    }
}
