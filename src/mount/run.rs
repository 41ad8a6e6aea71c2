//! Running a mount: checks on the mount point, mounting a backend, waiting until the mount
//! ends (unmounted from outside, or asked to stop by a signal), and the `mount.aspen`
//! helper that mount(8) runs, which detaches only once the mount is live.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::mount::backend::{KvBackend, Target};
use crate::mount::options::MountOptions;

/// Exit code of a failed mount helper (mount(8)'s "mount failure").
pub const MOUNT_FAILURE_EXIT: i32 = 32;

/// Refuses mount points that do not exist, are not directories, or are stale mounts left
/// by a daemon that died, with a message saying how to fix it.
pub fn check_mount_point(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::new(ErrorKind::NotDir, format!("{}: not a directory", dir.display()))),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(Error::new(
            ErrorKind::Io,
            format!(
                "{d} is a stale mount left by a file-system daemon that stopped; clear it with `umount {d}` (or `fusermount3 -u {d}`) and try again",
                d = dir.display()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::not_found(format!(
            "mount point {} (create it with mkdir)",
            dir.display()
        ))),
        Err(e) => Err(Error::io(format!("{}: {e}", dir.display()))),
    }
}

/// Mounts `target` at `dir`.
pub fn mount(
    target: Target,
    dir: &Path,
    fsname: &str,
    opts: &MountOptions,
) -> Result<aspen_fs::MountHandle> {
    check_mount_point(dir)?;
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::internal("mount needs a tokio runtime"))?;
    let backend = Arc::new(KvBackend::new(target, rt, opts.consistency));
    aspen_fs::mount(backend, dir, opts.fs_config(fsname)).map_err(|e| {
        let hint =
            if e.raw_os_error() == Some(libc::ENOENT) || e.kind() == std::io::ErrorKind::NotFound {
                " (is /dev/fuse present, and fusermount3 from Debian's fuse3 installed?)"
            } else {
                ""
            };
        Error::io(format!("cannot mount {}: {e}{hint}", dir.display()))
    })
}

/// Unmounts `dir` from outside the session (the way `umount DIR` would).
pub fn unmount_path(dir: &Path) -> Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| Error::invalid("mount point has a NUL"))?;
    // SAFETY: `c` is a valid C string.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EBUSY) {
        // Files are still open: detach now, the kernel finishes when they close.
        // SAFETY: as above.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            return Ok(());
        }
    }
    // Not root: ask the setuid helper.
    let status = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(dir)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(Error::io(format!(
            "cannot unmount {}: {err}",
            dir.display()
        ))),
    }
}

/// Serves until the mount is unmounted from outside or a stop signal arrives (then
/// unmounts). Returns once the file system is gone.
pub async fn serve_until_done(handle: aspen_fs::MountHandle) {
    let dir = handle.mountpoint().to_path_buf();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        handle.wait();
        let _ = done_tx.send(());
    });
    tokio::select! {
        _ = done_rx => {
            tracing::info!(dir = %dir.display(), "unmounted");
        }
        _ = crate::cli::wait_for_signal() => {
            tracing::info!(dir = %dir.display(), "stopping: unmounting");
            if let Err(e) = tokio::task::spawn_blocking({
                let dir = dir.clone();
                move || unmount_path(&dir)
            })
            .await
            .unwrap_or_else(|e| Err(Error::internal(e.to_string())))
            {
                tracing::warn!(error = %e, "unmount failed");
            }
        }
    }
}

/// Arguments of a mount request: `SRC DIR [-sfnv] [-o OPTS]`.
#[derive(Debug, Default)]
pub struct HelperArgs {
    pub source: String,
    pub dir: PathBuf,
    pub options: String,
    pub sloppy: bool,
    pub fake: bool,
    pub verbose: bool,
    pub foreground: bool,
}

impl HelperArgs {
    /// Parses mount(8)'s helper convention.
    pub fn parse(args: &[OsString]) -> Result<HelperArgs> {
        let mut out = HelperArgs::default();
        let mut positional = Vec::new();
        let mut opts = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let s = a
                .to_str()
                .ok_or_else(|| Error::invalid("arguments must be UTF-8"))?;
            if s == "-o" {
                let v = it
                    .next()
                    .and_then(|v| v.to_str())
                    .ok_or_else(|| Error::invalid("-o needs options"))?;
                opts.push(v.to_string());
            } else if let Some(v) = s.strip_prefix("-o") {
                opts.push(v.to_string());
            } else if s == "--foreground" {
                out.foreground = true;
            } else if let Some(flags) = s.strip_prefix('-').filter(|f| !f.is_empty()) {
                for f in flags.chars() {
                    match f {
                        's' => out.sloppy = true,
                        'f' => out.fake = true,
                        'n' => {}
                        'v' => out.verbose = true,
                        other => return Err(Error::invalid(format!("unknown flag -{other}"))),
                    }
                }
            } else {
                positional.push(s.to_string());
            }
        }
        match positional.as_slice() {
            [src, dir] => {
                out.source = src.clone();
                out.dir = PathBuf::from(dir);
            }
            _ => {
                return Err(Error::invalid(
                    "usage: mount.aspen HOST:PORT DIR [-sfnv] [-o OPTIONS]",
                ))
            }
        }
        out.options = opts.join(",");
        Ok(out)
    }
}

/// The client token for a mount: `token_file=`, `$ASPEN_TOKEN_FILE`, `/etc/aspen/client.token`,
/// then the default data dir's token.
fn token_for(opts: &MountOptions) -> Result<Vec<u8>> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = &opts.token_file {
        return crate::net::auth::read_key_file(p);
    }
    if let Some(p) = std::env::var_os("ASPEN_TOKEN_FILE") {
        return crate::net::auth::read_key_file(Path::new(&p));
    }
    candidates.push(PathBuf::from("/etc/aspen/client.token"));
    if let Ok(d) = crate::cli::default_data_dir() {
        candidates.push(d.join("client.token"));
    }
    for c in &candidates {
        if c.exists() {
            return crate::net::auth::read_key_file(c);
        }
    }
    Err(Error::invalid(
        "no client token: give -o token_file=PATH (or put it in /etc/aspen/client.token)",
    ))
}

/// Connects, mounts, and tells `ready` the outcome; then serves until unmounted.
async fn mount_remote(args: &HelperArgs, ready: impl FnOnce(Result<()>)) -> Result<()> {
    let prepared = async {
        let opts = MountOptions::parse(&args.options, args.sloppy)?;
        let token = token_for(&opts)?;
        // `HOST:PORT[,HOST:PORT...]`: the mount fails over between the endpoints.
        let endpoints: Vec<String> = args
            .source
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        let client = Arc::new(Client::new(endpoints, token)?);
        client.status().await.map_err(|e| {
            Error::new(
                e.kind,
                format!("cannot reach {}: {}", args.source, e.message),
            )
        })?;
        mount(Target::Remote(client), &args.dir, &args.source, &opts)
    }
    .await;
    match prepared {
        Ok(handle) => {
            ready(Ok(()));
            serve_until_done(handle).await;
            Ok(())
        }
        Err(e) => {
            let message = e.clone();
            ready(Err(e));
            Err(message)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

/// `mount.aspen SRC DIR [-sfnv] -o OPTS` and `aspen mount ...`: returns the exit code.
/// Must run before any other thread exists (it forks).
pub fn helper_main(args: &[OsString]) -> i32 {
    let args = match HelperArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mount.aspen: {e}");
            return MOUNT_FAILURE_EXIT;
        }
    };
    if let Err(e) = MountOptions::parse(&args.options, args.sloppy) {
        eprintln!("mount.aspen: {e}");
        return MOUNT_FAILURE_EXIT;
    }
    if args.fake {
        return 0;
    }
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    crate::cli::init_logging(crate::cli::LogFormat::Human);
    if args.foreground {
        let code = runtime().and_then(|rt| rt.block_on(mount_remote(&args, |_| {})));
        return match code {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("mount.aspen: {e}");
                MOUNT_FAILURE_EXIT
            }
        };
    }
    daemonize_and_mount(&args)
}

/// Forks: the child mounts and serves; the parent exits 0 once the child reports the
/// mount live, or 32 with the child's message.
fn daemonize_and_mount(args: &HelperArgs) -> i32 {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        eprintln!("mount.aspen: pipe: {}", std::io::Error::last_os_error());
        return MOUNT_FAILURE_EXIT;
    }
    let [read_fd, write_fd] = fds;
    // SAFETY: no other threads exist yet (checked by the caller's contract), so the child
    // may run arbitrary code.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("mount.aspen: fork: {}", std::io::Error::last_os_error());
            MOUNT_FAILURE_EXIT
        }
        0 => {
            // Child.
            // SAFETY: closing our copy of the read end; setsid detaches from the terminal.
            unsafe {
                libc::close(read_fd);
                libc::setsid();
            }
            // SAFETY: `write_fd` is a valid, owned descriptor from pipe().
            let mut report =
                unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(write_fd) };
            let code = match runtime() {
                Ok(rt) => rt.block_on(mount_remote(args, move |r| {
                    let msg = match r {
                        Ok(()) => "OK\n".to_string(),
                        Err(e) => format!("{e}\n"),
                    };
                    let _ = report.write_all(msg.as_bytes());
                    let _ = report.flush();
                    drop(report);
                    detach_stdio();
                })),
                Err(e) => {
                    eprintln!("mount.aspen: {e}");
                    Err(e)
                }
            };
            std::process::exit(if code.is_ok() { 0 } else { MOUNT_FAILURE_EXIT });
        }
        _child => {
            // SAFETY: closing our copy of the write end; `read_fd` is owned by us.
            unsafe { libc::close(write_fd) };
            // SAFETY: `read_fd` is a valid, owned descriptor from pipe().
            let mut from_child =
                unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(read_fd) };
            // One line: "OK" or the reason. The child keeps running, so read no further.
            let mut msg = String::new();
            let mut byte = [0u8; 1];
            while msg.len() < 64 * 1024 && !msg.ends_with('\n') {
                match from_child.read(&mut byte) {
                    Ok(1) => msg.push(char::from(byte[0])),
                    _ => break,
                }
            }
            if msg == "OK\n" {
                if args.verbose {
                    eprintln!(
                        "mount.aspen: {} mounted on {}",
                        args.source,
                        args.dir.display()
                    );
                }
                0
            } else if msg.is_empty() {
                eprintln!("mount.aspen: the mount daemon exited without mounting");
                MOUNT_FAILURE_EXIT
            } else {
                eprintln!("mount.aspen: {}", msg.trim_end());
                MOUNT_FAILURE_EXIT
            }
        }
    }
}

/// Points stdin, stdout and stderr at /dev/null so the daemon holds no terminal.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors with a valid source fd.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_mount8_convention() {
        let a = HelperArgs::parse(&os(&["h:1", "/mnt", "-n", "-o", "rw,_netdev", "-sv"])).unwrap();
        assert_eq!(a.source, "h:1");
        assert_eq!(a.dir, PathBuf::from("/mnt"));
        assert_eq!(a.options, "rw,_netdev");
        assert!(a.sloppy && a.verbose && !a.fake);
        assert!(HelperArgs::parse(&os(&["h:1"])).is_err());
        assert!(HelperArgs::parse(&os(&["h:1", "/m", "-q"])).is_err());
        assert!(HelperArgs::parse(&os(&["h:1", "/m", "-f"])).unwrap().fake);
    }
}
