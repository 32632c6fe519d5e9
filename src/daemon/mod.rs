//! Start-up of a member daemon (`eccmgr`, `ecnode`): command line and files are read and
//! validated here, at the edge, into a [`DaemonConfig`]; then the [`driver`] loop runs until a
//! signal.

pub mod control_cache;
pub mod driver;
pub mod follow;
pub mod group_commit;
pub mod notify;
pub mod stop;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use eccluster_proto::membership::MembershipConfig;
use eccluster_proto::ops::OpsConfig;
use eccluster_proto::segments::Segments;
use eccluster_proto::Role;
use tokio_util::sync::CancellationToken;

use crate::cli::DaemonArgs;
use crate::config;
use crate::config::duravip::{ConfigWarning, DuravipSettings};
use crate::console::listener::ListenerConfig;
use self::driver::DaemonConfig;
use crate::registry::Registry;
use crate::tls::TlsIdentity;

/// Default Control_Listener socket, as Momentum's.
pub const DEFAULT_CONSOLE: &str = "/tmp/2025";

/// Reads and validates a segment file: a regular file of at most [`config::MAX_FILE_BYTES`]
/// (a FIFO or a device is refused, never waited on), UTF-8 text.
pub fn load_segments(path: &Path) -> Result<Segments> {
    let bytes = config::read_regular_file(path, config::MAX_FILE_BYTES)
        .with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|error| {
        anyhow::anyhow!("{}: not UTF-8 text (invalid byte at offset {})", path.display(), error.utf8_error().valid_up_to())
    })?;
    Ok(Segments::parse(&path.display().to_string(), &text)?)
}

/// The Control_Listener path a configuration names: the first `Listen` of `Control_Listener`
/// that is a path (starts with '/').
fn console_from_config(scope: &config::Scope) -> Option<PathBuf> {
    scope
        .scopes("Control_Listener")
        .flat_map(|cl| cl.scopes("Listen"))
        .filter_map(|l| l.name.as_deref())
        .find(|n| n.starts_with('/'))
        .map(PathBuf::from)
}

/// The next value of a counter that must grow on every start (the member incarnation, the
/// manager epoch). With a state directory the last value is stored there in `file`; the wall
/// clock in milliseconds is the floor either way, so a lost state directory still yields a
/// fresh, larger value. The new value is on disk before it is returned.
pub fn next_counter(state_dir: Option<&Path>, file: &str) -> Result<u64> {
    let clock = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(1);
    let Some(dir) = state_dir else { return Ok(clock) };
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(file);
    let previous = match fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{}: not a number: {:?}", path.display(), s.trim()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let next = clock.max(previous + 1);
    let tmp = dir.join(format!("{file}.tmp"));
    fs::write(&tmp, format!("{next}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(next)
}

/// The DuraVIP settings of member `name` in the configuration `cfg` read from `origin`, checked
/// by the reader and by building the ownership core (which checks what the reader cannot see
/// alone: timings against each other, preferences against candidate lists). Used at start and
/// on a reload (SIGHUP).
pub fn read_duravip(
    cfg: &config::Scope,
    origin: &Path,
    segments: &Segments,
    name: &str,
) -> Result<(DuravipSettings, Vec<ConfigWarning>)> {
    let managers = segments.managers();
    let nodes: Vec<&str> = segments.hosts.iter().map(|h| h.name.as_str()).filter(|n| !managers.contains(*n)).collect();
    let (duravip, warnings) = config::duravip::read(cfg, &nodes)?;
    let host = segments.host(name).with_context(|| format!("{name} is not a host of the segment file"))?;
    let probe = eccluster_proto::MemberId {
        name: name.to_owned(),
        addr: host.socket_addr(),
        role: Role::Node,
        subcluster: host.subcluster.clone(),
        incarnation: 1,
    };
    let setup = eccluster_proto::node::DuravipSetup { bindings: duravip.bindings.clone(), config: duravip.core.clone() };
    setup.check(&probe).with_context(|| format!("{}: DuraVIP bindings", origin.display()))?;
    Ok((duravip, warnings))
}

/// Everything a daemon takes from its configuration file, read and checked. Read at start and
/// again for every change of the running configuration (SIGHUP, `config reload`, `config
/// set` ...), so that a change is checked exactly as a start would check it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Control_Listener: socket path and bounds (taken at start only).
    pub console: ListenerConfig,
    /// The Control_Listener's TCP listeners, logins, authorization and audit log (taken at
    /// start only).
    pub access: crate::console::remote::AccessConfig,
    /// `Broadcast_Timeout` (taken at start only).
    pub answer_timeout: Option<Duration>,
    /// `Control_Command` scopes (nodes).
    pub registry: Registry,
    /// DuraVIP bindings, policy and plumbing.
    pub duravip: DuravipSettings,
    /// `ECCluster_Listener { }` (taken at start only).
    pub listener: crate::transport::Limits,
    /// `Logs { Control_Cache ... }` (managers; taken at start only).
    pub cache: control_cache::CacheSettings,
    /// `Metrics_Listener { Listen = ... }`: where to serve Prometheus metrics, if anywhere
    /// (taken at start only).
    pub metrics: Option<config::metrics::MetricsListener>,
    /// `Cluster_Page { }` (managers; taken at start only).
    pub page: Option<crate::page::PageConfig>,
}

/// Reads [`Settings`] for one member: what the command line fixed, to read configurations
/// against.
#[derive(Debug, Clone)]
pub struct SettingsReader {
    /// Node or manager.
    pub role: Role,
    /// The segment file.
    pub segments: Segments,
    /// The member's name.
    pub name: String,
    /// `--console`, which wins over the configuration's Control_Listener.
    pub console_override: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--metrics`, which wins over the configuration's Metrics_Listener.
    pub metrics_override: Option<std::net::SocketAddr>,
}

impl SettingsReader {
    /// The settings `tree` (read from `origin`; `None`: no configuration file) gives, with the
    /// warnings it deserves; the error names the option and where it was set.
    pub fn read(&self, tree: Option<&config::Scope>, origin: &Path) -> Result<(Settings, Vec<ConfigWarning>)> {
        let mut console = ListenerConfig::new(
            self.console_override
                .clone()
                .or_else(|| tree.and_then(console_from_config))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONSOLE)),
        );
        let mut answer_timeout = None;
        let mut registry = Registry::default();
        let mut duravip = DuravipSettings::default();
        let mut listener = crate::transport::Limits::default();
        let mut metrics = None;
        let mut warnings = Vec::new();
        let mut access = crate::console::remote::AccessConfig::default();
        let mut page = None;
        if let Some(cfg) = tree {
            if self.role == Role::Manager {
                page = crate::page::config::read(cfg)?;
            }
            crate::console::limits::apply(cfg, &mut console)?;
            access = crate::console::remote::AccessConfig::read(cfg, &console.path)?;
            if let Some(o) = cfg.option("Broadcast_Timeout") {
                answer_timeout = Some(o.as_secs_in(Duration::from_secs(1), Duration::from_secs(86_400))?);
            }
            if self.role == Role::Node {
                registry = Registry::from_config(cfg)?;
            }
            (duravip, warnings) = read_duravip(cfg, origin, &self.segments, &self.name)?;
            let listener_warnings;
            (listener, listener_warnings) = config::listener::read(cfg)?;
            warnings.extend(listener_warnings);
            metrics = config::metrics::read(cfg)?;
        }
        if let Some(addr) = self.metrics_override {
            metrics = Some(config::metrics::MetricsListener::from_command_line(addr));
        }
        let cache = match self.role {
            Role::Manager => control_cache::read_settings(tree, self.state_dir.as_deref())?,
            Role::Node => control_cache::CacheSettings { path: None, limits: OpsConfig::default().results },
        };
        Ok((Settings { console, access, answer_timeout, registry, duravip, listener, cache, metrics, page }, warnings))
    }
}

/// Validates the command line and files into a daemon configuration, with the warnings the
/// configuration gave. With `args.check_config` nothing is written (the start counters are
/// not advanced).
pub fn prepare(role: Role, args: &DaemonArgs) -> Result<(DaemonConfig, Vec<ConfigWarning>)> {
    let segments = load_segments(&args.segments)?;
    let name = args.name.to_ascii_lowercase();
    if segments.host(&name).is_none() {
        bail!("{}: no host named {:?} (hosts: {})", args.segments.display(), args.name,
            segments.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    let manager_host = segments.managers().contains(&name);
    if manager_host != (role == Role::Manager) {
        let (program, wanted) = if manager_host { ("ecnode", "eccmgr") } else { ("eccmgr", "ecnode") };
        bail!(
            "{}: {name} is {} host, so it runs {wanted}, not {program} (members check each other's role against the file)",
            args.segments.display(),
            if manager_host { "a manager" } else { "a node" }
        );
    }
    let follow = match &args.cluster_boot {
        None => None,
        Some(_) if role == Role::Manager => {
            bail!("--cluster-boot: eccmgr does not follow the configuration repository; ecnode does")
        }
        Some(_) if args.config.is_some() => bail!(
            "-c and --cluster-boot together: a node following the repository runs its working copy's \
             NODE/{file} (else default/{file}); give one of them",
            file = follow::CONFIG_FILE
        ),
        Some(path) => Some(follow::FollowSettings::new(crate::confrepo::boot::ClusterBoot::load(path)?, &name, &segments)),
    };
    // A following node runs its working copy's file, when the working copy has one.
    let config_path = args.config.clone().or_else(|| follow.as_ref().and_then(|f| f.config_file(f.wc())));
    let tree = match &config_path {
        Some(path) => Some(config::load(path)?),
        None => None,
    };
    let tls = TlsIdentity::load(&args.tls_dir, &name)?;
    let (incarnation, epoch) = match (args.check_config, role) {
        (true, _) => (1, 1),
        (false, Role::Manager) => (
            next_counter(args.state_dir.as_deref(), "incarnation")?,
            next_counter(args.state_dir.as_deref(), "epoch")?,
        ),
        (false, Role::Node) => (next_counter(args.state_dir.as_deref(), "incarnation")?, 0),
    };
    let reader = SettingsReader {
        role,
        segments: segments.clone(),
        name: name.clone(),
        console_override: args.console.clone(),
        state_dir: args.state_dir.clone(),
        metrics_override: args.metrics,
    };
    let origin = config_path.as_deref().unwrap_or(Path::new("-"));
    let (settings, warnings) = reader.read(tree.as_ref(), origin)?;
    let mut ops = OpsConfig::default();
    if let Some(timeout) = settings.answer_timeout {
        ops.answer_timeout = timeout;
    }
    ops.results = settings.cache.limits;
    ops.journal = settings.cache.path.is_some();
    Ok((DaemonConfig {
        role,
        membership: MembershipConfig::lan(segments.hosts.len()),
        name,
        segments,
        segments_path: args.segments.clone(),
        tls,
        console: settings.console.clone(),
        access: settings.access.clone(),
        incarnation,
        epoch,
        ops,
        registry: settings.registry.clone(),
        duravip: settings.duravip.clone(),
        follow: follow.map(|f| (f, config_path.is_some())),
        config_path,
        listener: settings.listener,
        metrics: settings.metrics.clone(),
        control_cache: settings.cache.path.clone(),
        page: settings.page.clone(),
        tree: tree.unwrap_or_else(|| config::Scope::new("", None, config::Span::new(std::sync::Arc::new(PathBuf::from("-")), 1, 1))),
        settings,
        reader,
    }, warnings))
}

/// The log filter of a daemon: `spec` (`RUST_LOG`), default `info`. quinn and rustls log a
/// warning per bad packet or TLS record, which anyone who can send UDP to the port can turn
/// into a flood of lines naming no one; the transport accounts for those packets itself, one
/// line per source and interval (`transport::admission`). So their warnings are off unless
/// `spec` names them (`RUST_LOG=info,quinn_proto=debug`).
pub fn log_filter(spec: Option<&str>) -> tracing_subscriber::EnvFilter {
    let spec = spec.filter(|s| !s.trim().is_empty()).unwrap_or("info");
    let mut directives = vec![spec.to_owned()];
    for library in QUIET_LIBRARIES {
        if !spec.contains(library) {
            directives.push(format!("{library}=error"));
        }
    }
    tracing_subscriber::EnvFilter::try_new(directives.join(","))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(QUIET_LIBRARIES.map(|l| format!("{l}=error")).join(",") + ",info"))
}

/// Libraries whose per-packet warnings [`log_filter`] turns off.
const QUIET_LIBRARIES: [&str; 3] = ["quinn_proto", "quinn", "rustls"];

/// Installs the tracing subscriber of a daemon: stderr, [`log_filter`] of `RUST_LOG`.
pub fn init_tracing() {
    let spec = std::env::var("RUST_LOG").ok();
    let filter = log_filter(spec.as_deref());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

/// A token cancelled on SIGTERM or SIGINT, for tools that run on a runtime of their own
/// (`eccluster local up`); the daemons use [`stop::Stop`].
pub fn shutdown_on_signals() -> Result<CancellationToken> {
    use tokio::signal::unix::{signal, SignalKind};
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let t = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
            _ = t.cancelled() => {}
        }
        t.cancel();
    });
    Ok(token)
}

/// The whole life of a daemon process; returns the exit code.
pub fn main(role: Role, args: DaemonArgs) -> std::process::ExitCode {
    init_tracing();
    let program = crate::commands::program(role);
    let cfg = match prepare(role, &args) {
        Ok((cfg, warnings)) => {
            for w in &warnings {
                if args.check_config {
                    eprintln!("{program}: {w}");
                } else {
                    tracing::warn!("{w}");
                }
            }
            cfg
        }
        Err(e) => {
            eprintln!("{program}: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    if args.check_config {
        let what = cfg.config_path.as_deref().map_or_else(|| args.segments.display().to_string(), |c| c.display().to_string());
        return match crate::say!("{program}: configuration ok ({what}; {} DuraVIP address(es))", cfg.duravip.bindings.len()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{program}: {error}");
                std::process::ExitCode::from(1)
            }
        };
    }
    // Before any other thread starts: the signal thread must be the only one taking signals.
    let stop = match stop::Stop::install() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // One thread: the daemon is one loop plus I/O tasks, and a single-threaded runtime has no
    // cross-thread wake-ups (idle CPU) and fewer thread stacks and allocator arenas (memory).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: starting the runtime: {e}", crate::commands::program(role));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        stop.arm_deadline();
        driver::run(cfg, stop.token(), stop.progress()).await
    });
    // Blocking work still running (a slow file system call) does not hold the exit up.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e:#}", crate::commands::program(role));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnation_only_grows_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = next_counter(Some(dir.path()), "incarnation").expect("first");
        let b = next_counter(Some(dir.path()), "incarnation").expect("second");
        assert!(b > a);
        fs::write(dir.path().join("incarnation"), format!("{}\n", u64::MAX / 2)).expect("write");
        let c = next_counter(Some(dir.path()), "incarnation").expect("third");
        assert_eq!(c, u64::MAX / 2 + 1);
        fs::write(dir.path().join("incarnation"), "garbage").expect("write");
        let err = next_counter(Some(dir.path()), "incarnation").expect_err("garbage");
        assert!(format!("{err:#}").contains("not a number"), "{err:#}");
    }
}
