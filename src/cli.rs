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
    /// Nodes: follow the configuration repository as this cluster.boot says (pull at start,
    /// when the manager announces a new revision, and every poll_interval; run the working
    /// copy's NODE/ecelerity.conf, else default/ecelerity.conf). Not with -c.
    #[arg(long, value_name = "FILE")]
    pub cluster_boot: Option<PathBuf>,
    /// Control_Listener socket path (default: the config's Control_Listener, else /tmp/2025).
    #[arg(long)]
    pub console: Option<PathBuf>,
    /// Directory for state that survives restarts (the incarnation counter).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP on this address (GET /metrics); wins over the
    /// configuration's Metrics_Listener.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
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
    /// The users file of the console's logins (Control_Listener AuthLoginParameters).
    ConsoleUser {
        #[command(subcommand)]
        #[allow(missing_docs)]
        command: ConsoleUserCommand,
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

/// `eccluster console-user ...`
#[derive(Debug, Subcommand)]
pub enum ConsoleUserCommand {
    /// Add user NAME to the users file, or set a new password: an Argon2id hash is stored,
    /// never the password. The password is asked on the terminal, or read from a file.
    Add {
        /// The users file (NAME:$argon2id$... lines, written owner-only).
        #[arg(long)]
        file: PathBuf,
        /// The user name.
        name: String,
        /// A file whose first line is the password.
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
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

/// ecconfigd: the configuration server (git repositories served over HTTPS).
#[derive(Debug, Parser)]
#[command(name = "ecconfigd", version, about = "eccluster configuration server: versioned configuration repositories over HTTPS")]
pub struct EcconfigdCli {
    /// Directory holding all of ecconfigd's state: repos/, users, tls/ (and cluster.boot).
    #[arg(long, global = true, default_value = "/var/ecconfigd")]
    pub state_dir: PathBuf,
    /// Names (host names or addresses) clients use to reach this server, for the certificate
    /// made at first start and by renew-cert; the host name, localhost and loopback are added.
    #[arg(long = "hostname", global = true)]
    pub hostnames: Vec<String>,
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub command: Option<EcconfigdCommand>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub serve: EcconfigdServe,
}

/// Options of the server itself.
#[derive(Debug, Args, Clone)]
pub struct EcconfigdServe {
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:2027")]
    pub listen: std::net::SocketAddr,
    /// Create a repository for this subcluster if missing (repeatable; global and default
    /// always exist).
    #[arg(long = "subcluster")]
    pub subclusters: Vec<String>,
    /// Create a repository for every subcluster of this segment file (mbus.conf style).
    #[arg(long)]
    pub segments: Option<PathBuf>,
    /// Run in the foreground at log level 7 (debug).
    #[arg(long)]
    pub debug: bool,
    /// Log level 0..7 (syslog numbering: 3 errors, 4 warnings, 6 info, 7 debug).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=7))]
    pub log_level: u8,
    /// Accepted for compatibility; ecconfigd always runs in the foreground.
    #[arg(short = 'd', long = "daemonize")]
    pub daemonize: bool,
    /// Read and validate the segment file, the users file and the certificate, then exit: 0
    /// if they are valid, 2 with the error if not.
    #[arg(long)]
    pub check_config: bool,
    /// Tell the manager whose console listens on this unix socket the newest revision of
    /// every repository: at start, after every commit and rollback, and every
    /// --announce-interval (repeatable: one per manager).
    #[arg(long = "announce", value_name = "SOCKET")]
    pub announce: Vec<PathBuf>,
    /// Seconds between two announcements when nothing changes (so that a restarted manager
    /// learns the revisions again).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_interval)]
    pub announce_interval: std::time::Duration,
    /// Serve Prometheus metrics over HTTP on this address (GET /metrics): revisions, commits,
    /// failed logins. Off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// A time between announcements: seconds, fractions allowed, from 0.1 to one day.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.1..=86_400.0).contains(&secs) {
        return Err(format!("{text} s is out of range (0.1 to 86400 seconds)"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Subcommands of `ecconfigd` (without one, it serves).
#[derive(Debug, Subcommand)]
pub enum EcconfigdCommand {
    /// Make a new certificate, valid one year, for the same key (working copies that pinned
    /// the key keep working); restart ecconfigd to serve it.
    RenewCert {
        /// Make a new key too (every working copy must be told to trust it again).
        #[arg(long)]
        new_key: bool,
    },
    /// Print the key fingerprint working copies pin (`eccfg bootstrap --trust FINGERPRINT`).
    Fingerprint,
    /// Manage the users file.
    User {
        #[command(subcommand)]
        #[allow(missing_docs)]
        command: UserCommand,
    },
}

/// `ecconfigd user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user, or set an existing user's password.
    Add {
        /// User name.
        name: String,
        /// Read the password from the first line of this file instead of prompting.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Remove a user.
    Del {
        /// User name.
        name: String,
    },
    /// List the users.
    List,
}

/// eccfg: the configuration client: working copies of ecconfigd's repositories.
#[derive(Debug, Parser)]
#[command(name = "eccfg", version, about = "eccluster configuration client")]
pub struct EccfgCli {
    /// The working copy.
    #[arg(long = "wc", visible_alias = "dir", global = true, default_value = crate::confrepo::wc::DEFAULT_WC)]
    pub wc: PathBuf,
    /// User name (default: the one the working copy was made with, else $USER).
    #[arg(long = "username", visible_alias = "user", global = true)]
    pub username: Option<String>,
    /// Read the password from the first line of this file (else ECCFG_PASSWORD, else the file
    /// given at bootstrap, else a prompt). Never on the command line itself.
    #[arg(long, global = true)]
    pub password_file: Option<PathBuf>,
    /// Longest wait for the server, in seconds.
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub command: EccfgCommand,
}

/// Subcommands of `eccfg`.
#[derive(Debug, Subcommand)]
pub enum EccfgCommand {
    /// Make a working copy: global/, default/ and the node's directory.
    Bootstrap {
        /// ecconfigd's HOST[:PORT] (port 2027 by default).
        #[arg(long)]
        server: String,
        /// The subcluster (its repository).
        #[arg(long)]
        clustername: String,
        /// The node whose directory to hold; without it, every directory of the subcluster.
        #[arg(long)]
        node: Option<String>,
        /// Trust the server's certificate through this PEM file (a CA, or ecconfigd's own
        /// certificate).
        #[arg(long, conflicts_with = "trust")]
        ca: Option<PathBuf>,
        /// Pin the server's key: give the fingerprint ecconfigd prints, or no value to trust
        /// the one shown now.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        trust: Option<String>,
    },
    /// Commit the local changes (of PATHs only, when given).
    Commit {
        /// The log message.
        #[arg(short = 'm', long = "message", default_value = "")]
        message: String,
        /// Working-copy paths to commit.
        paths: Vec<String>,
    },
    /// Bring the working copy to the newest revisions, keeping local changes.
    Pull {
        /// Keep the working copy's version of conflicting files.
        #[arg(long, conflicts_with = "theirs")]
        mine: bool,
        /// Take the server's version of conflicting files.
        #[arg(long)]
        theirs: bool,
    },
    /// Show the local changes and the revisions the working copy is at.
    Status,
    /// Show the history of the subcluster's repository (or --repo global).
    Log {
        /// Repository (default: the working copy's subcluster).
        #[arg(long)]
        repo: Option<String>,
        /// Most entries shown.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show the local changes as unified diffs.
    Diff {
        /// Working-copy paths to show.
        paths: Vec<String>,
    },
    /// Make a new revision with the files of revision REV, then pull it.
    Rollback {
        /// The revision to restore.
        rev: u64,
        /// Repository (default: the working copy's subcluster).
        #[arg(long)]
        repo: Option<String>,
        /// The log message.
        #[arg(short = 'm', long = "message")]
        message: Option<String>,
    },
    /// Copy SOURCE to the working-copy path DEST and commit that file alone.
    Put {
        /// The file to copy.
        source: PathBuf,
        /// Its working-copy path (e.g. default/ecelerity.conf).
        dest: String,
        /// The log message.
        #[arg(short = 'm', long = "message")]
        message: Option<String>,
    },
}
