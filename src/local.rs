//! `eccluster local up`: a whole cluster as separate local processes on 127.0.0.0/8 — the
//! manager and one `ecnode` per host of the segment file — for demos, tests and benchmarks.
//!
//! Files in DIR: `tls/` (CA and certificates, created when absent), `<name>.pid`,
//! `<name>.log`, the manager console `console`, each node's console `<name>.console`, and
//! `state/<name>/` (incarnation counters).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use eccluster_proto::segments::Segments;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use crate::console::frame;
use crate::daemon::load_segments;
use crate::tls;

/// One started member process.
struct Member {
    name: String,
    manager: bool,
    console: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    child: Child,
}

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

/// Starts the cluster, prints `ready: N members` once every member sees all N, and stops
/// everything on SIGINT/SIGTERM.
pub async fn up(segments_path: &Path, dir: &Path, config: Option<&Path>) -> Result<()> {
    let segments = load_segments(segments_path)?;
    for h in &segments.hosts {
        if !h.addr.is_loopback() {
            bail!("{}:{}: host {} has address {}, not on 127.0.0.0/8", segments_path.display(), h.line, h.name, h.addr);
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
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
    for h in &segments.hosts {
        let manager = managers.contains(&h.name);
        let console = if manager { dir.join("console") } else { dir.join(format!("{}.console", h.name)) };
        let log = dir.join(format!("{}.log", h.name));
        let log_file = fs::OpenOptions::new().create(true).append(true).open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = Command::new(if manager { &eccmgr } else { &ecnode });
        cmd.arg("--name").arg(&h.name)
            .arg("--segments").arg(&segments_abs)
            .arg("--tls-dir").arg(&tls_dir)
            .arg("--console").arg(&console)
            .arg("--state-dir").arg(dir.join("state").join(&h.name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        // The manager reads the same file: it checks `duravip move` against the bindings.
        if let Some(c) = &config_abs {
            cmd.arg("-c").arg(c);
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", h.name))?;
        let pid_file = dir.join(format!("{}.pid", h.name));
        if let Some(pid) = child.id() {
            fs::write(&pid_file, format!("{pid}\n")).with_context(|| format!("writing {}", pid_file.display()))?;
        }
        members.push(Member { name: h.name.clone(), manager, console, log, pid_file, child });
    }

    let shutdown = crate::daemon::shutdown_on_signals()?;
    let n = members.len();
    let ready = tokio::select! {
        r = wait_ready(&mut members, n) => r,
        _ = shutdown.cancelled() => Err(anyhow::anyhow!("interrupted before the cluster was ready")),
    };
    if let Err(e) = ready {
        stop(&mut members).await;
        return Err(e);
    }
    println!("ready: {n} members");
    println!("manager console: ec_console {}", dir.join("console").display());
    shutdown.cancelled().await;
    stop(&mut members).await;
    Ok(())
}

async fn wait_ready(members: &mut [Member], n: usize) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        let mut all = true;
        for m in members.iter_mut() {
            if let Ok(Some(status)) = m.child.try_wait() {
                bail!("{} exited ({status}) before the cluster was ready; see {}", m.name, m.log.display());
            }
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

async fn stop(members: &mut [Member]) {
    for m in members.iter() {
        if let Some(pid) = m.child.id() {
            if let Err(error) = kill(Pid::from_raw(pid as i32), Signal::SIGTERM) {
                tracing::warn!(member = %m.name, %error, "cannot signal");
            }
        }
    }
    for m in members.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), m.child.wait()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(member = %m.name, %error, "waiting for exit"),
            Err(_) => {
                tracing::warn!(member = %m.name, "did not stop within 10 s; killing");
                if let Err(error) = m.child.kill().await {
                    tracing::warn!(member = %m.name, %error, "kill");
                }
            }
        }
        if let Err(error) = fs::remove_file(&m.pid_file) {
            tracing::debug!(member = %m.name, %error, "removing pid file");
        }
    }
}
