//! The file-system workload: two mounts (`aspen mount`, each a client of the cluster
//! that fails over between endpoints, preferring a different node) and threads doing
//! whole-file writes, reads and unlinks through them with plain system calls. Every
//! operation is recorded like a client's, under the file's key, so the same per-key
//! checker judges close-to-open semantics: a write is open..close (committed by the
//! close, whose result is checked), a read is open..close.

use std::io::Write;
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::robust::history::{Op, OpKind, Outcome, Recorder};

/// Directory (under each mount's `kv/`) the workload's files live in.
pub const FS_DIR: &str = "fs";
/// How long a mount may take to come up.
const MOUNT_DEADLINE: Duration = Duration::from_secs(30);
/// Pause of a worker after an operation failed.
const FS_BACKOFF: Duration = Duration::from_millis(250);

/// Why the file-system workload cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("mounting for the harness needs root".into());
    }
    None
}

struct Mount {
    dir: PathBuf,
    child: Option<Child>,
}

pub struct Mounts {
    mounts: Vec<Mount>,
}

fn is_mounted(dir: &Path) -> bool {
    dir.join("kv").is_dir()
}

impl Mounts {
    /// Mounts each source (`HOST:PORT[,HOST:PORT...]`) at `run_dir/mN`.
    pub fn start(
        aspen: &Path,
        sources: &[String],
        token_file: &Path,
        run_dir: &Path,
    ) -> Result<Mounts> {
        let mut out = Mounts { mounts: Vec::new() };
        for (i, src) in sources.iter().enumerate() {
            let dir = run_dir.join(format!("m{}", i + 1));
            std::fs::create_dir_all(&dir)?;
            let log = std::fs::File::create(run_dir.join(format!("m{}.log", i + 1)))?;
            let child = Command::new(aspen)
                .arg("mount")
                .arg(src)
                .arg(&dir)
                .arg("-o")
                .arg(format!("token_file={}", token_file.display()))
                .arg("--foreground")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| Error::io(format!("cannot start aspen mount: {e}")))?;
            out.mounts.push(Mount {
                dir: dir.clone(),
                child: Some(child),
            });
            let start = Instant::now();
            while !is_mounted(&dir) {
                if start.elapsed() > MOUNT_DEADLINE {
                    return Err(Error::io(format!("{} did not mount", dir.display())));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(out)
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        self.mounts.iter().map(|m| m.dir.clone()).collect()
    }

    pub fn stop(&mut self) {
        for m in &mut self.mounts {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&m.dir)
                .stderr(Stdio::null())
                .status();
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The path of a key's file under a mount.
fn file_of(mount: &Path, key: &str) -> PathBuf {
    mount.join("kv").join(key)
}

/// Writes the whole file and closes it, reporting close(2)'s error (the commit).
fn write_file(path: &Path, value: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(value)?;
    let fd = f.into_raw_fd();
    // SAFETY: `fd` was just taken from the File, which no longer owns it.
    if unsafe { libc::close(fd) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a file through a mount: `Read(None)` when it does not exist.
pub fn read_outcome(path: &Path) -> Outcome {
    match std::fs::read(path) {
        Ok(v) => Outcome::Read(Some(String::from_utf8_lossy(&v).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Read(None),
        Err(e) => Outcome::Unknown(e.to_string()),
    }
}

/// One worker: random whole-file operations until `stop`.
fn worker(
    mount: PathBuf,
    client: u64,
    keys: Vec<String>,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let Some(key) = keys.get(rng.gen_range(0..keys.len().max(1))) else {
            return;
        };
        let path = file_of(&mount, key);
        let roll: u32 = rng.gen_range(0..100);
        let t0 = rec.now();
        let unknown = if roll < 45 {
            let value = format!("f{client}-{seq}");
            let outcome = match write_file(&path, value.as_bytes()) {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Unknown(e.to_string()),
            };
            let done = rec.now();
            let unknown = matches!(outcome, Outcome::Unknown(_));
            let write = rec.push(Op {
                id: 0,
                client,
                key: key.clone(),
                kind: OpKind::Put { value },
                invoke_ns: t0,
                complete_ns: (!unknown).then_some(done),
                outcome: outcome.clone(),
                before: None,
                via_file: true,
            });
            // As on any file system, a reader may see the file empty while it is being
            // written (created or truncated, not yet written): the empty value may take
            // effect before the write's own, within the write's interval (or later, if
            // the write's outcome is unknown).
            rec.push(Op {
                id: 0,
                client,
                key: key.clone(),
                kind: OpKind::Put {
                    value: String::new(),
                },
                invoke_ns: t0,
                complete_ns: (!unknown).then_some(done),
                outcome: if unknown { outcome } else { Outcome::MayHappen },
                before: Some(write),
                via_file: true,
            });
            unknown
        } else if roll < 85 {
            let outcome = read_outcome(&path);
            rec.record_file_op(client, key, OpKind::Get, t0, outcome)
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => rec.record_file_op(client, key, OpKind::Delete, t0, Outcome::Done),
                // Nothing to remove: it observed the file absent.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    rec.record_file_op(client, key, OpKind::Get, t0, Outcome::Read(None))
                }
                Err(e) => rec.record_file_op(
                    client,
                    key,
                    OpKind::Delete,
                    t0,
                    Outcome::Unknown(e.to_string()),
                ),
            }
        };
        if unknown {
            std::thread::sleep(FS_BACKOFF);
        }
    }
}

/// Starts `per_mount` workers on each mount; client ids start at `first_client`.
pub fn start_workers(
    mounts: &[PathBuf],
    per_mount: usize,
    first_client: u64,
    keys: &[String],
    rec: &Arc<Recorder>,
    stop: &Arc<AtomicBool>,
    seed: u64,
) -> Vec<JoinHandle<()>> {
    let mut out = Vec::new();
    let mut client = first_client;
    for m in mounts {
        for _ in 0..per_mount {
            let (m, keys, rec, stop) = (m.clone(), keys.to_vec(), rec.clone(), stop.clone());
            let seed = seed.wrapping_mul(131).wrapping_add(client);
            out.push(std::thread::spawn(move || {
                worker(m, client, keys, rec, stop, seed)
            }));
            client += 1;
        }
    }
    out
}
