//! `aspen hooks ...`: follow hook events without a mount.

use clap::Subcommand;

use super::output::print_bytes;
use super::ClientArgs;
use crate::error::{Error, Result};
use crate::hooks::check_pattern;

#[derive(Subcommand, Debug)]
pub enum HooksCmd {
    /// Print the hook events one node delivers from now on, one JSON line each.
    Tail {
        /// Event types to show: dot-separated segments, `*` matches one, `>` the rest
        /// (e.g. `kv.*`, `raft.>`).
        #[arg(long = "type", default_value = ">")]
        pattern: String,
        /// Stop after this many events (0: never).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
}

pub async fn run(cmd: HooksCmd, c: &ClientArgs) -> Result<()> {
    match cmd {
        HooksCmd::Tail { pattern, count } => {
            check_pattern(&pattern).map_err(Error::invalid)?;
            let client = c.client()?;
            let mut stream = client.hook_tail(&pattern).await?;
            let mut printed = 0u64;
            loop {
                for line in stream.next().await? {
                    print_bytes(line.as_bytes())?;
                    printed = printed.saturating_add(1);
                    if count > 0 && printed >= count {
                        return Ok(());
                    }
                }
            }
        }
    }
}
