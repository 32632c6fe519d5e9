//! `eccluster local up`: a whole cluster as separate local processes on 127.0.0.0/8 — the
//! manager and one `ecnode` per host of the segment file — for demos, tests and benchmarks.
//!
//! Files in DIR: `tls/` (CA and certificates, created when absent), `<name>.pid` (while the
//! member runs), `<name>.log`, the manager console `console`, each node's console
//! `<name>.console`, and `state/<name>/` (incarnation counters). The configuration server
//! runs beside them (`ecconfigd.pid`, `ecconfigd.log`, `ecconfigd/`, `admin.password`, the
//! operator's working copy `conf/`; see [`crate::confrepo::local`]). The manager also has a
//! remote console (TLS) and the cluster page (HTTPS), each on a free port of its address, both
//! logging in the configuration server's users (`admin`, password in `admin.password`): its
//! configuration is `<name>.eccmgr.conf`, written at each start, which includes `--config
//! FILE` when one is given. Every daemon serves Prometheus metrics on a free port of its own
//! address (the manager's printed `metrics: http://…/metrics`, the others' `metrics (NAME): …`).
//!
//! A member that exits is reported at once on stdout (which, how, its log) and stays down;
//! see [`up`].

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use eccluster_proto::segments::Segments;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::console::frame;
use crate::daemon::load_segments;
use crate::tls;

/// One started member process.
struct Member {
    name: String,
    manager: bool,
    /// False for ecconfigd, which runs beside the cluster but is not a member of it.
    in_cluster: bool,
    console: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    /// Process id while it runs.
    pid: Option<u32>,
    /// How it ended, once it has.
    exit: Option<ExitStatus>,
}

/// A member process ended: its index in the member list and how.
type Exited = (usize, std::io::Result<ExitStatus>);

/// The names that run `eccmgr`: every subcluster's manager host.
pub fn manager_names(segments: &Segments) -> BTreeSet<String> {
    segments.managers()
}

fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating eccluster")?;
    let dir = exe.parent().context("eccluster has no parent directory")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!("cannot find {} next to eccluster (build all binaries: cargo build --release --bins)", path.display());
    }
    Ok(path)
}

/// Sends one console command over a unix socket and returns the reply.
pub async fn ask(socket: &Path, line: &str) -> Result<frame::Reply> {
    let mut stream = UnixStream::connect(socket)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))?;
    frame::write_request(&mut stream, line).await?;
    frame::read_reply(&mut stream)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", socket.display()))?
        .with_context(|| format!("{} closed the connection", socket.display()))
}

/// How many members a member's console reports up, if it answers.
pub async fn members_up(socket: &Path, manager: bool) -> Option<usize> {
    let cmd = if manager { "json show cluster membership" } else { "json cluster membership" };
    let reply = ask(socket, cmd).await.ok()?;
    let rows: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
    Some(rows.as_array()?.iter().filter(|r| r["state"] == "up").count())
}

/// Starts the cluster, prints `ready: N members` once every member sees all N, reports each
/// member that exits (one line: `NAME exited (HOW); log: PATH; ...`), and stops everything on
/// SIGINT/SIGTERM. Fails if every member has exited.
pub async fn up(segments_path: &Path, dir: &Path, config: Option<&Path>) -> Result<()> {
    let segments = load_segments(segments_path)?;
    for h in &segments.hosts {
        if !h.addr.is_loopback() {
            bail!("{}:{}: host {} has address {}, not on 127.0.0.0/8", segments_path.display(), h.line, h.name, h.addr);
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = &fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let tls_dir = dir.join("tls");
    if !tls::ca_exists(&tls_dir) {
        tls::ca_init(&tls_dir, "local")?;
    }
    let missing: Vec<String> = segments
        .hosts
        .iter()
        .filter(|h| !tls_dir.join(format!("{}.pem", h.name)).exists())
        .map(|h| h.name.clone())
        .collect();
    if !missing.is_empty() {
        tls::ca_issue(&tls_dir, &missing)?;
    }
    let managers = manager_names(&segments);
    let eccmgr = sibling_binary("eccmgr")?;
    let ecnode = sibling_binary("ecnode")?;
    let segments_abs = fs::canonicalize(segments_path).with_context(|| format!("{}", segments_path.display()))?;
    let config_abs = match config {
        Some(c) => Some(fs::canonicalize(c).with_context(|| format!("{}", c.display()))?),
        None => None,
    };

    let mut members = Vec::new();
    // Every member has a task that owns its process and reports its end here, once.
    let (exits_tx, mut exits) = mpsc::channel::<Exited>(segments.hosts.len() + 1);
    // Every daemon serves metrics on a free port of its own address.
    let mut metrics = Vec::new();
    let repo_metrics = free_port(repo_ip(&segments))?;
    metrics.push(("ecconfigd".to_owned(), repo_metrics));
    let repo = start_config_server(dir, &segments, &segments_abs, config_abs.as_deref(), repo_metrics).await?;
    let (repo_addr, repo_key) = (repo.addr, repo.fingerprint.clone());
    let mut remote_console = None;
    let pid_file = dir.join("ecconfigd.pid");
    let ecconfigd = Member {
        name: "ecconfigd".to_owned(),
        manager: false,
        in_cluster: false,
        console: PathBuf::new(),
        log: repo.log,
        pid_file,
        pid: None,
        exit: None,
    };
    track(&mut members, &exits_tx, ecconfigd, repo.child)?;
    let mut pages = Vec::new();
    for h in &segments.hosts {
        let manager = managers.contains(&h.name);
        let console = if manager { dir.join("console") } else { dir.join(format!("{}.console", h.name)) };
        let log = dir.join(format!("{}.log", h.name));
        let metrics_addr = free_port(std::net::IpAddr::V4(h.addr))?;
        metrics.push((h.name.clone(), metrics_addr));
        let log_file = fs::OpenOptions::new().create(true).append(true).open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = Command::new(if manager { &eccmgr } else { &ecnode });
        cmd.arg("--name").arg(&h.name)
            .arg("--segments").arg(&segments_abs)
            .arg("--tls-dir").arg(&tls_dir)
            .arg("--console").arg(&console)
            .arg("--state-dir").arg(dir.join("state").join(&h.name))
            .arg("--metrics").arg(metrics_addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        if manager {
            // The manager reads the file itself (it checks `duravip move` against the
            // bindings), through its own file that adds the remote console and the page.
            let (conf, console, page) = manager_config(dir, &h.name, h.addr, config_abs.as_deref())?;
            cmd.arg("-c").arg(conf);
            remote_console.get_or_insert(console);
            pages.push(page);
        } else {
            // Nodes run the repository's copy of it (default/ecelerity.conf), and follow it.
            cmd.arg("--cluster-boot").arg(crate::confrepo::local::write_boot(dir, repo_addr, &repo_key, &h.name, &h.subcluster)?);
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", h.name))?;
        let pid_file = dir.join(format!("{}.pid", h.name));
        let member = Member { name: h.name.clone(), manager, in_cluster: true, console, log, pid_file, pid: None, exit: None };
        track(&mut members, &exits_tx, member, child)?;
    }
    drop(exits_tx);

    let shutdown = crate::daemon::shutdown_on_signals()?;
    let n = members.iter().filter(|m| m.in_cluster).count();
    let ready = tokio::select! {
        r = wait_ready(&mut members, &mut exits, n) => r,
        _ = shutdown.cancelled() => Err(anyhow::anyhow!("interrupted before the cluster was ready")),
    };
    if let Err(e) = ready {
        stop(&mut members, &mut exits).await;
        return Err(e);
    }
    say(&format!("ready: {n} members"));
    say(&format!("manager console: ec_console {}", dir.join("console").display()));
    say(&format!("config repository: https://{repo_addr}"));
    if let Some(addr) = remote_console {
        say(&format!("console tcp: {addr}"));
        say(&format!(
            "console login: ec_console admin@{addr} --ca {} --password-file {}",
            tls_dir.join("ca.pem").display(),
            dir.join("admin.password").display()
        ));
    }
    // The manager's first, as `metrics: URL`; then every other daemon's, named.
    metrics.sort_by_key(|(name, _)| !managers.contains(name));
    for (name, addr) in &metrics {
        if managers.contains(name) {
            say(&format!("metrics: http://{addr}/metrics"));
        } else {
            say(&format!("metrics ({name}): http://{addr}/metrics"));
        }
    }
    for page in &pages {
        say(&format!("page: https://{page}/"));
    }
    if !pages.is_empty() {
        say(&format!("page login: admin, password in {}", dir.join("admin.password").display()));
    }
    let watched = watch(&mut members, &mut exits, &shutdown).await;
    stop(&mut members, &mut exits).await;
    watched
}

/// Writes the configuration of manager `name` (address `ip`): `--config FILE` included when
/// given, the remote console (TLS) and the cluster page each on a free port of `ip`, both
/// logging in the configuration server's users. Returns the file, the console's and the
/// page's addresses.
fn manager_config(
    dir: &Path,
    name: &str,
    ip: std::net::Ipv4Addr,
    config: Option<&Path>,
) -> Result<(PathBuf, std::net::SocketAddr, std::net::SocketAddr)> {
    let dir = fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    // Ports free now; the manager binds them a moment later (loopback, this machine only).
    let console = free_port(std::net::IpAddr::V4(ip))?;
    let page = free_port(std::net::IpAddr::V4(ip))?;
    let quoted = |path: &Path| -> Result<String> {
        let text = path.display().to_string();
        if text.contains(['"', '\\']) {
            bail!("{text}: a path with '\"' or '\\' cannot be written in a configuration file");
        }
        Ok(text)
    };
    let users = crate::confrepo::server::users_path(&dir.join("ecconfigd"));
    let mut text = String::from("# The manager's configuration under `eccluster local up` (written at each start).\n");
    if let Some(config) = config {
        text.push_str(&format!("include \"{}\"\n", quoted(config)?));
    }
    // The page logs in the console's users (the first AuthLoginParameters of Control_Listener).
    text.push_str(&format!(
        "Control_Listener {{\n  AuthLoginParameters = [ uri = \"file://{}\" ]\n  Listen \"{console}\" {{ }}\n}}\n\
         Cluster_Page {{\n  Listen = \"{page}\"\n}}\n",
        quoted(&users)?
    ));
    let path = dir.join(format!("{name}.eccmgr.conf"));
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, console, page))
}

/// The address ecconfigd runs on: the first manager's (127.0.0.1 without one).
fn repo_ip(segments: &Segments) -> std::net::IpAddr {
    let manager = manager_names(segments).into_iter().next();
    let ip = segments
        .hosts
        .iter()
        .find(|h| Some(&h.name) == manager.as_ref())
        .map_or(std::net::Ipv4Addr::LOCALHOST, |h| h.addr);
    std::net::IpAddr::V4(ip)
}

/// A TCP port of `ip` that is free now (the system's choice), for a daemon to listen on.
fn free_port(ip: std::net::IpAddr) -> Result<std::net::SocketAddr> {
    let probe = std::net::TcpListener::bind((ip, 0)).with_context(|| format!("finding a free port on {ip}"))?;
    probe.local_addr().with_context(|| format!("finding a free port on {ip}"))
}

/// Starts ecconfigd on port 2027 of the first manager's address (127.0.0.1 without one),
/// serving metrics on `metrics`.
async fn start_config_server(
    dir: &Path,
    segments: &Segments,
    segments_path: &Path,
    config: Option<&Path>,
    metrics: std::net::SocketAddr,
) -> Result<crate::confrepo::local::LocalRepo> {
    let manager = manager_names(segments).into_iter().next();
    let listen = std::net::SocketAddr::from((repo_ip(segments), crate::confrepo::server::DEFAULT_PORT));
    let binary = sibling_binary("ecconfigd")?;
    // ecconfigd tells the manager of every commit through its console, which is up only after
    // ecconfigd: the first announcements fail (logged once) until the manager answers.
    let announce: Vec<PathBuf> = manager.iter().map(|_| dir.join("console")).collect();
    crate::confrepo::local::start(dir, &binary, listen, (segments, segments_path), config, &announce, Some(metrics)).await
}

/// Writes `member`'s pid file, has a task own `child` and report its end (once, on `exits`,
/// by the member's index), and adds the member to `members`.
fn track(members: &mut Vec<Member>, exits: &mpsc::Sender<Exited>, mut member: Member, mut child: Child) -> Result<()> {
    member.pid = child.id();
    if let Some(pid) = member.pid {
        fs::write(&member.pid_file, format!("{pid}\n")).with_context(|| format!("writing {}", member.pid_file.display()))?;
    }
    let (index, tx) = (members.len(), exits.clone());
    tokio::spawn(async move {
        let status = child.wait().await;
        if tx.send((index, status)).await.is_err() {
            tracing::debug!("local up is gone; a member's exit goes unreported");
        }
    });
    members.push(member);
    Ok(())
}

/// Records that member `index` ended with `status`, removes its pid file (the pid no longer
/// names it) and returns the member.
fn ended(members: &mut [Member], index: usize, status: std::io::Result<ExitStatus>) -> Option<&Member> {
    let m = members.get_mut(index)?;
    m.pid = None;
    match status {
        Ok(status) => m.exit = Some(status),
        Err(error) => tracing::warn!(member = %m.name, %error, "waiting for the member's exit"),
    }
    if let Err(error) = fs::remove_file(&m.pid_file) {
        tracing::debug!(member = %m.name, %error, "removing pid file");
    }
    Some(m)
}

/// How a member ended, for the operator: `exit status: 1`, `signal: 9 (SIGKILL)`.
fn how(m: &Member) -> String {
    m.exit.map_or_else(|| "status unknown".to_owned(), |status| status.to_string())
}

async fn wait_ready(members: &mut [Member], exits: &mut mpsc::Receiver<Exited>, n: usize) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            biased;
            Some((index, status)) = exits.recv() => {
                if let Some(m) = ended(members, index, status) {
                    bail!("{} exited ({}) before the cluster was ready; see {}", m.name, how(m), m.log.display());
                }
                continue;
            }
            _ = interval.tick() => {}
        }
        let mut all = true;
        for m in members.iter().filter(|m| m.in_cluster) {
            if members_up(&m.console, m.manager).await != Some(n) {
                all = false;
            }
        }
        if all {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the cluster did not converge within 60 s; see the logs in the working directory");
        }
    }
}

/// Runs until `shutdown`, reporting on stdout, as it happens, each member that exits: which
/// one, how, and where its log is. The others keep running and the member stays down (a local
/// cluster is where failures are rehearsed: a node killed on purpose is not brought back behind
/// the operator's back). Without the manager the nodes keep their membership and DuraVIP
/// addresses, but console operations have no sequencer; that is said once, plainly. When every
/// member has exited there is nothing left to run: an error.
async fn watch(members: &mut [Member], exits: &mut mpsc::Receiver<Exited>, shutdown: &CancellationToken) -> Result<()> {
    loop {
        let (index, status) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            exited = exits.recv() => match exited {
                Some(exited) => exited,
                None => bail!("every member has exited; see the logs in the working directory"),
            },
        };
        let Some(m) = ended(members, index, status) else { continue };
        let consequence = if !m.in_cluster {
            "it was ecconfigd: the configuration repository is unavailable (eccfg cannot pull or commit)"
        } else if m.manager {
            "it was the manager: broadcast, unicast and retrieve are unavailable; the nodes keep their membership \
             and DuraVIP addresses"
        } else {
            "the cluster goes on without it"
        };
        say(&format!("{} exited ({}); log: {}; {consequence}", m.name, how(m), m.log.display()));
        tracing::warn!(member = %m.name, how = %how(m), log = %m.log.display(), "member exited");
    }
}

/// Stops every member still running: SIGTERM, then SIGKILL for one that has not exited 10 s
/// later (a daemon's own stop takes at most 10 s).
async fn stop(members: &mut [Member], exits: &mut mpsc::Receiver<Exited>) {
    for m in members.iter() {
        if let Some(pid) = m.pid {
            if let Err(error) = kill(Pid::from_raw(pid as i32), Signal::SIGTERM) {
                tracing::warn!(member = %m.name, %error, "cannot signal");
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(11);
    while members.iter().any(|m| m.pid.is_some()) {
        match tokio::time::timeout_at(deadline, exits.recv()).await {
            Ok(Some((index, status))) => {
                ended(members, index, status);
            }
            Ok(None) => break,
            Err(_) => {
                for m in members.iter().filter(|m| m.pid.is_some()) {
                    tracing::warn!(member = %m.name, "did not stop within 11 s; killing");
                    if let Some(pid) = m.pid {
                        if let Err(error) = kill(Pid::from_raw(pid as i32), Signal::SIGKILL) {
                            tracing::warn!(member = %m.name, %error, "kill");
                        }
                    }
                }
                deadline_passed(members, exits).await;
                break;
            }
        }
    }
}

/// After SIGKILL: collects the exits (they come at once) so the pid files go.
async fn deadline_passed(members: &mut [Member], exits: &mut mpsc::Receiver<Exited>) {
    while members.iter().any(|m| m.pid.is_some()) {
        match tokio::time::timeout(Duration::from_secs(2), exits.recv()).await {
            Ok(Some((index, status))) => {
                ended(members, index, status);
            }
            Ok(None) | Err(_) => break,
        }
    }
}

/// One line to the operator. Standard output failing (`local up` on a full disk) is no reason
/// to stop the cluster: the line is dropped, the members keep running.
fn say(line: &str) {
    if let Err(error) = crate::say!("{line}") {
        tracing::debug!(line, %error, "a line to the operator was not printed");
    }
}
