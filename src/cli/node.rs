//! `aspen node` and `aspen up`: run a node in the foreground until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};
use crate::hooks::HookConfig;
use crate::limits::DEFAULT_MAX_VALUE_BYTES;
use crate::mount::backend::Target;
use crate::mount::options::MountOptions;
use crate::mount::run::{check_mount_point, serve_until_done};
use crate::net::auth::{read_key_file, read_or_create_key_file, Keys};
use crate::node::{Bootstrap, Node, NodeConfig};
use crate::raft::types::NodeId;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// This node's id (a positive integer, unique in the cluster, fixed for its data dir).
    #[arg(long)]
    pub id: NodeId,
    /// Where the node keeps its data [default: ~/.local/share/aspen].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on for peers and clients.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// Address others use to reach this node [default: the listen address].
    #[arg(long)]
    pub advertise: Option<String>,
    /// Initialize a new cluster on first start. With --peers, those nodes are the first voters.
    #[arg(long)]
    pub init: bool,
    /// Initial voters for --init, as ID=ADDR,ID=ADDR.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Join the cluster that the node at ADDR belongs to (as a learner, then a voter).
    #[arg(long, conflicts_with = "init")]
    pub join: Option<String>,
    /// Cluster secret shared by all nodes [default: <data-dir>/cluster.secret, created if missing].
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Client token that clients must prove [default: <data-dir>/client.token, created if missing].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Largest value this node accepts, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_VALUE_BYTES)]
    pub max_value_bytes: usize,
    /// Log format on stderr (filter with RUST_LOG).
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Also mount the file system here.
    #[arg(long)]
    pub mount: Option<PathBuf>,
    /// Mount options for --mount (see aspen(5)).
    #[arg(short = 'o', long = "options", default_value = "")]
    pub options: String,
    /// Spool directory for hook event files [default: <data-dir>/hooks].
    #[arg(long)]
    pub hook_dir: Option<PathBuf>,
    /// Age identity file (keys.txt format) that decrypts secrets
    /// [default: <data-dir>/age.key if it exists; without one the node serves secret metadata only].
    #[arg(long, env = "ASPEN_AGE_KEY_FILE")]
    pub age_identity: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Mount point.
    pub dir: Option<PathBuf>,
    /// Mount options (see aspen(5)).
    #[arg(short = 'o', long = "options", default_value = "")]
    pub options: String,
    /// Where the node keeps its data [default: ~/.local/share/aspen].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// Largest value accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_VALUE_BYTES)]
    pub max_value_bytes: usize,
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Spool directory for hook event files [default: <data-dir>/hooks].
    #[arg(long)]
    pub hook_dir: Option<PathBuf>,
    /// Age identity file (keys.txt format) that decrypts secrets
    /// [default: <data-dir>/age.key, created (mode 0600) on first start].
    #[arg(long, env = "ASPEN_AGE_KEY_FILE")]
    pub age_identity: Option<PathBuf>,
}

/// `~/.local/share/aspen` (or `$XDG_DATA_HOME/aspen`).
pub fn default_data_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("aspen"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| Error::invalid("HOME is not set; give --data-dir"))?;
    Ok(PathBuf::from(home).join(".local/share/aspen"))
}

pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,lsm_tree=warn,fjall=warn,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn keys(data_dir: &Path, secret: Option<&Path>, token: Option<&Path>) -> Result<Keys> {
    let cluster_secret = match secret {
        Some(p) => read_key_file(p)?,
        None => read_or_create_key_file(&data_dir.join("cluster.secret"))?,
    };
    let client_token = match token {
        Some(p) => read_key_file(p)?,
        None => read_or_create_key_file(&data_dir.join("client.token"))?,
    };
    Ok(Keys {
        cluster_secret,
        client_token,
    })
}

/// The node's age identity file: the one given, else `<data-dir>/age.key` when it exists
/// (or, with `create`, after writing a new one there, mode 0600).
fn age_identity(data_dir: &Path, given: Option<PathBuf>, create: bool) -> Result<Option<PathBuf>> {
    if given.is_some() {
        return Ok(given);
    }
    let path = data_dir.join(AGE_KEY_FILE);
    if path.exists() {
        return Ok(Some(path));
    }
    if !create {
        return Ok(None);
    }
    let public = crate::secrets::Keyring::generate_file(&path)?;
    tracing::info!(file = %path.display(), recipient = %public, "created an age identity for secrets");
    Ok(Some(path))
}

/// Name of the default age identity file in a data dir.
pub const AGE_KEY_FILE: &str = "age.key";

fn parse_peers(peers: &[String]) -> Result<BTreeMap<NodeId, String>> {
    let mut out = BTreeMap::new();
    for p in peers {
        let (id, addr) = p
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("--peers entry {p:?} is not ID=ADDR")))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| Error::invalid(format!("bad node id in {p:?}")))?;
        out.insert(id, addr.trim().to_string());
    }
    Ok(out)
}

pub async fn run_node(args: NodeArgs) -> Result<()> {
    init_logging(args.log_format);
    if args.id == 0 {
        return Err(Error::invalid("--id must be a positive integer"));
    }
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", data_dir.display())))?;
    let bootstrap = if args.init {
        Bootstrap::Init(parse_peers(&args.peers)?)
    } else if let Some(j) = args.join {
        Bootstrap::Join(j)
    } else {
        Bootstrap::None
    };
    let age_identity = age_identity(&data_dir, args.age_identity, false)?;
    let config = NodeConfig {
        id: args.id,
        age_identity,
        keys: keys(
            &data_dir,
            args.secret_file.as_deref(),
            args.token_file.as_deref(),
        )?,
        data_dir,
        listen: args.listen,
        advertise: args.advertise,
        max_value_bytes: args.max_value_bytes,
        bootstrap,
        hooks: HookConfig {
            spool_dir: args.hook_dir,
            ..HookConfig::default()
        },
    };
    let opts = MountOptions::parse(&args.options, false)?;
    if let Some(dir) = &args.mount {
        check_mount_point(dir)?;
    }
    let node = Node::start(config).await?;
    match &args.mount {
        Some(dir) => {
            let handle = mount_node(&node, dir, &opts)?;
            serve_until_done(handle).await;
        }
        None => wait_for_signal().await,
    }
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

fn mount_node(node: &Arc<Node>, dir: &Path, opts: &MountOptions) -> Result<aspen_fs::MountHandle> {
    let handle = crate::mount::run::mount(Target::Local(node.clone()), dir, &node.addr, opts)?;
    tracing::info!(dir = %dir.display(), "mounted");
    Ok(handle)
}

pub async fn run_up(args: UpArgs) -> Result<()> {
    init_logging(args.log_format);
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", data_dir.display())))?;
    let age_identity = age_identity(&data_dir, args.age_identity.clone(), true)?;
    let config = NodeConfig {
        id: 1,
        age_identity,
        keys: keys(&data_dir, None, None)?,
        data_dir: data_dir.clone(),
        listen: args.listen.clone(),
        advertise: None,
        max_value_bytes: args.max_value_bytes,
        bootstrap: Bootstrap::Init(BTreeMap::new()),
        hooks: HookConfig {
            spool_dir: args.hook_dir.clone(),
            ..HookConfig::default()
        },
    };
    let opts = MountOptions::parse(&args.options, false)?;
    if let Some(dir) = &args.dir {
        check_mount_point(dir)?;
    }
    let node = Node::start(config).await?;
    match &args.dir {
        Some(dir) => {
            let handle = match mount_node(&node, dir, &opts) {
                Ok(h) => h,
                Err(e) => {
                    node.shutdown().await;
                    return Err(e);
                }
            };
            eprintln!(
                "aspen is up: node 1 on {}, data in {}, mounted at {d}. Try: echo hello > {d}/kv/greeting && cat {d}/kv/greeting (Ctrl-C stops and unmounts)",
                node.addr,
                data_dir.display(),
                d = dir.display()
            );
            serve_until_done(handle).await;
        }
        None => {
            eprintln!(
                "aspen is up: node 1 on {}, data in {}. Try: aspen kv put hello world && aspen kv get hello",
                node.addr,
                data_dir.display()
            );
            wait_for_signal().await;
        }
    }
    node.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
