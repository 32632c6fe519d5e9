//! Command lines of the binaries (clap derive). The `///` docs are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Options shared by `eccmgr` and `ecnode`.
#[derive(Debug, Args, Clone)]
pub struct DaemonArgs {
    /// This member's name: a host of the segment file.
    #[arg(long)]
    pub name: String,
    /// The mbus.conf-style segment file listing every member.
    #[arg(long)]
    pub segments: PathBuf,
    /// Directory with ca.pem and this member's NAME.pem / NAME.key.
    #[arg(long)]
    pub tls_dir: PathBuf,
    /// Configuration file (Momentum syntax).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Control_Listener socket path (default: the config's Control_Listener, else /tmp/2025).
    #[arg(long)]
    pub console: Option<PathBuf>,
    /// Directory for state that survives restarts (the incarnation counter).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Accepted for compatibility; the daemon always runs in the foreground.
    #[arg(short = 'd', long = "daemonize")]
    pub daemonize: bool,
    /// Parse and validate the segment file, certificates and configuration, print any
    /// warnings, then exit: 0 if everything is valid, 2 with the error if not.
    #[arg(long)]
    pub check_config: bool,
}

/// eccmgr: the cluster manager.
#[derive(Debug, Parser)]
#[command(name = "eccmgr", version, about = "eccluster cluster manager")]
pub struct EccmgrCli {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub daemon: DaemonArgs,
}

/// ecnode: the node agent of an MTA host.
#[derive(Debug, Parser)]
#[command(name = "ecnode", version, about = "eccluster node agent")]
pub struct EcnodeCli {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub daemon: DaemonArgs,
}

/// eccluster: tooling for certificates and local clusters.
#[derive(Debug, Parser)]
#[command(name = "eccluster", version, about = "eccluster tooling: certificates, local clusters")]
pub struct EcclusterCli {
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub command: EcclusterCommand,
}

/// Subcommands of `eccluster`.
#[derive(Debug, Subcommand)]
pub enum EcclusterCommand {
    /// The cluster certificate authority.
    Ca {
        #[command(subcommand)]
        #[allow(missing_docs)]
        command: CaCommand,
    },
    /// Clusters of local processes on 127.0.0.0/8.
    Local {
        #[command(subcommand)]
        #[allow(missing_docs)]
        command: LocalCommand,
    },
    /// The deterministic network-partition simulator.
    #[cfg(feature = "sim")]
    Sim {
        #[command(subcommand)]
        #[allow(missing_docs)]
        command: SimCommand,
    },
}

/// `eccluster sim ...`
#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run a scenario file (simulations/scenarios/*.toml): prints a report, writes SVG charts.
    Run {
        /// The scenario file.
        scenario: PathBuf,
        /// The seed (else SIM_SEED, else the scenario's, else random); the same seed replays a run exactly.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the node count of a generated topology.
        #[arg(long)]
        nodes: Option<usize>,
        /// Directory for the SVG charts.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `eccluster ca ...`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the cluster CA (ca.pem, ca.key) in DIR.
    Init {
        /// Where to write the CA.
        #[arg(long)]
        dir: PathBuf,
        /// A label for the CA's common name.
        #[arg(long, default_value = "eccluster")]
        cluster: String,
    },
    /// Issue NAME.pem / NAME.key for each member name, signed by the CA in DIR.
    Issue {
        /// The directory holding the CA.
        #[arg(long)]
        dir: PathBuf,
        /// Member names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `eccluster local ...`
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Start the manager and one ecnode per host of the segment file, as separate processes.
    Up {
        /// The segment file (addresses on 127.0.0.0/8).
        #[arg(long)]
        segments: PathBuf,
        /// Working directory: certificates, pid files, logs, console sockets.
        #[arg(long)]
        dir: PathBuf,
        /// Configuration file (Momentum syntax) given to every member: nodes and the manager.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}
