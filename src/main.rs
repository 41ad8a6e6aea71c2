//! The `aspen` binary. Invoked as `mount.aspen` it acts as mount(8)'s helper (with the
//! file-system work); otherwise it is the CLI in `cli`.

use clap::Parser;

fn main() {
    let cli = aspen::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
