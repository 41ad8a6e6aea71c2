//! Test aid: mounts a `MemoryBackend` at the given directory (other users allowed, as
//! external suites such as pjdfstest need), creates `kv/<subdir>` if asked, and keeps
//! the mount until standard input ends.
//!
//! `cargo run -p aspen-fs --example memory_mount -- MOUNTPOINT [SUBDIR] < some-fifo`

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use aspen_fs::memory::MemoryBackend;
use aspen_fs::{mount, MountConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let mnt = PathBuf::from(
        args.next()
            .ok_or("usage: memory_mount MOUNTPOINT [SUBDIR]")?,
    );
    let sub = args.next();
    let cfg = MountConfig {
        allow_other: true,
        ..MountConfig::default()
    };
    let handle = mount(Arc::new(MemoryBackend::new()), &mnt, cfg)?;
    if let Some(sub) = sub {
        let dir = mnt.join("kv").join(sub);
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    }
    eprintln!("mounted at {}; close stdin to unmount", mnt.display());
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    handle.unmount()?;
    Ok(())
}
