//! The `aspen` command line: argument definitions and dispatch. Each group of subcommands
//! lives in its own module; errors print as one line and exit non-zero.

mod bench;
mod cluster;
mod hooks;
mod kv;
mod node;
mod output;
mod secrets;
mod topic;
mod txn_parse;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::net::proto::Consistency;

pub use node::{default_data_dir, init_logging, wait_for_signal, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "aspen",
    version,
    about = "Aspen: a replicated key-value store you use through a mounted file system"
)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a cluster node.
    Node(node::NodeArgs),
    /// Run a single-node Aspen in DIR's data dir, initialized on first start (the embedded default).
    Up(node::UpArgs),
    /// Cluster membership and status.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Keys and values.
    #[command(subcommand)]
    Kv(kv::KvCmd),
    /// Topics: durable message logs.
    #[command(subcommand)]
    Topic(topic::TopicCmd),
    /// Consumer groups of topics.
    #[command(subcommand)]
    Group(topic::GroupCmd),
    /// Load generators.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Hook events (aspen hooks tail).
    #[command(subcommand)]
    Hooks(hooks::HooksCmd),
    /// Secrets, age-encrypted at rest: aspen secrets kv put|get|delete|undelete|destroy|metadata|ls.
    #[command(subcommand)]
    Secrets(secrets::SecretsCmd),
    /// Mount a cluster: aspen mount HOST:PORT DIR [-o OPTIONS] [--foreground] (what mount -t aspen runs).
    Mount {
        source: String,
        dir: PathBuf,
        #[arg(short = 'o')]
        options: Option<String>,
        #[arg(long)]
        foreground: bool,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Simple,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsistencyArg {
    Linearizable,
    Local,
}

/// How a client command reaches the cluster.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Comma-separated node addresses.
    #[arg(
        long,
        env = "ASPEN_ENDPOINTS",
        default_value = "127.0.0.1:7700",
        value_delimiter = ',',
        global = true
    )]
    pub endpoints: Vec<String>,
    /// File holding the client token [default: <default data dir>/client.token].
    #[arg(long, env = "ASPEN_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Output format.
    #[arg(
        short = 'w',
        long = "write-out",
        value_enum,
        default_value = "simple",
        global = true
    )]
    pub write_out: OutputFormat,
    /// Read consistency.
    #[arg(long, value_enum, default_value = "linearizable", global = true)]
    pub consistency: ConsistencyArg,
}

impl ClientArgs {
    pub fn client(&self) -> Result<Client> {
        let path = match &self.token_file {
            Some(p) => p.clone(),
            None => default_data_dir()?.join("client.token"),
        };
        let token = crate::net::auth::read_key_file(&path).map_err(|e| {
            Error::new(
                e.kind,
                format!(
                    "{} (give the cluster's client token with --token-file or ASPEN_TOKEN_FILE)",
                    e.message
                ),
            )
        })?;
        Client::new(self.endpoints.clone(), token)
    }

    pub fn consistency(&self) -> Consistency {
        match self.consistency {
            ConsistencyArg::Linearizable => Consistency::Linearizable,
            ConsistencyArg::Local => Consistency::Local,
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Node(args) => node::run_node(args).await,
        Cmd::Up(args) => node::run_up(args).await,
        Cmd::Cluster(cmd) => cluster::run(cmd, &cli.client).await,
        Cmd::Kv(cmd) => kv::run(cmd, &cli.client).await,
        Cmd::Topic(cmd) => topic::run_topic(cmd, &cli.client).await,
        Cmd::Group(cmd) => topic::run_group(cmd, &cli.client).await,
        Cmd::Bench(cmd) => bench::run(cmd, &cli.client).await,
        Cmd::Hooks(cmd) => hooks::run(cmd, &cli.client).await,
        Cmd::Secrets(cmd) => secrets::run(cmd, &cli.client).await,
        // Handled in main before the runtime starts (it may fork).
        Cmd::Mount { .. } => Err(Error::internal("aspen mount must be run as a command")),
    }
}
