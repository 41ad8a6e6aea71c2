//! The `aspen` binary. Invoked as `mount.aspen` (mount(8)'s helper) or as `aspen mount`,
//! it mounts a remote cluster; otherwise it is the CLI in `cli`.

use std::ffi::OsString;
use std::path::Path;

use clap::Parser;

/// mimalloc: measurably less time in malloc/free on the write path than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // No transparent huge pages for this process: the allocator's arenas would otherwise
    // fault in and zero a 2 MiB page at a time as buffers come and go, which cost most of
    // a directory listing's time when measured.
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The mount helper forks, so it runs before any thread (the async runtime) exists.
    if invoked_as == "mount.aspen" {
        std::process::exit(aspen::mount::run::helper_main(
            args.get(1..).unwrap_or_default(),
        ));
    }
    if args.get(1).is_some_and(|a| a == "mount") && !args.iter().any(|a| a == "--help" || a == "-h")
    {
        std::process::exit(aspen::mount::run::helper_main(
            args.get(2..).unwrap_or_default(),
        ));
    }
    let cli = aspen::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(aspen::cli::run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
