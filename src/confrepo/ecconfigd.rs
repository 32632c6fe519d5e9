//! `ecconfigd`: its command line turned into actions — serve (the default), `renew-cert`,
//! `fingerprint`, `user add|del|list` — with Momentum's logging options: `--log-level 0..7`
//! (default 4, warnings and errors) and `--debug` (level 7). It always runs in the foreground;
//! SIGTERM or SIGINT stops it after the requests under way.
//!
//! Once it serves it prints one line on stdout, `ecconfigd listening on ADDR key FINGERPRINT`,
//! which scripts and tests wait for.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::{EcconfigdCli, EcconfigdCommand, UserCommand};
use crate::confrepo::announce::AnnounceConfig;
use crate::confrepo::cert;
use crate::confrepo::server::{self, users_path, ServerConfig};
use crate::confrepo::users::{new_password, Users};
use crate::daemon::notify;

/// The tracing filter of a syslog-style level 0..7.
fn filter(level: u8) -> &'static str {
    match level {
        0..=3 => "error",
        4 => "warn",
        5 | 6 => "info",
        _ => "debug",
    }
}

/// Runs the command line.
pub fn main(cli: EcconfigdCli) -> ExitCode {
    let level = if cli.serve.debug { 7 } else { cli.serve.log_level };
    let spec = std::env::var("RUST_LOG").ok().unwrap_or_else(|| filter(level).to_owned());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(crate::daemon::log_filter(Some(&spec)))
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    if cli.serve.check_config && cli.command.is_none() {
        return match check(&cli) {
            Ok(summary) => match crate::say!("{summary}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("ecconfigd: {error}");
                    ExitCode::from(1)
                }
            },
            Err(error) => {
                eprintln!("ecconfigd: {error:#}");
                ExitCode::from(2)
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ecconfigd: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn config(cli: &EcconfigdCli) -> Result<ServerConfig> {
    let mut subclusters = cli.serve.subclusters.clone();
    if let Some(path) = &cli.serve.segments {
        let segments = crate::daemon::load_segments(path)?;
        subclusters.extend(segments.subclusters.into_iter().map(|s| s.name));
    }
    Ok(ServerConfig {
        listen: cli.serve.listen,
        state_dir: cli.state_dir.clone(),
        hostnames: cli.hostnames.clone(),
        subclusters,
        announce: AnnounceConfig { sockets: cli.serve.announce.clone(), interval: cli.serve.announce_interval },
        metrics: cli.serve.metrics,
    })
}

/// `--check-config`: the segment file, the users file and the certificate (when made), read
/// and checked without serving or changing anything.
fn check(cli: &EcconfigdCli) -> Result<String> {
    let config = config(cli)?;
    for name in &config.subclusters {
        crate::confrepo::path::check_repo_name(name)?;
    }
    let state = &cli.state_dir;
    let users = Users::load(&users_path(state))?;
    let mut summary = format!("ecconfigd configuration valid: {} user(s)", users.names().count());
    if cert::paths(state).0.exists() {
        let identity = cert::load_server(state)?;
        summary.push_str(&format!(", certificate valid until {}, key {}", identity.not_after, identity.fingerprint));
    } else {
        summary.push_str(", certificate not made yet (made at first start)");
    }
    if !config.subclusters.is_empty() {
        summary.push_str(&format!(", subclusters {}", config.subclusters.join(" ")));
    }
    Ok(summary)
}

fn run(cli: EcconfigdCli) -> Result<()> {
    let state = cli.state_dir.clone();
    match &cli.command {
        None => {
            let config = config(&cli)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(async {
                let stop = crate::daemon::shutdown_on_signals()?;
                let stopping = async move {
                    stop.cancelled().await;
                    notify::stopping("ecconfigd stopping: finishing the requests under way");
                };
                server::run(config, stopping, |addr, fingerprint| {
                    // The daemon serves whether or not anyone reads this line.
                    if let Err(error) = crate::say!("ecconfigd listening on {addr} key {fingerprint}") {
                        tracing::warn!(%error, "the listening line was not printed");
                    }
                    notify::ready(&format!("ecconfigd serving on {addr}"));
                })
                .await
            })
        }
        Some(EcconfigdCommand::RenewCert { new_key }) => {
            let config = config(&cli)?;
            cert::renew(&state, &server::certificate_names(&config), *new_key)?;
            let identity = cert::load_server(&state)?;
            crate::say!("New certificate {}, valid until {}.", cert::paths(&state).0.display(), identity.not_after)?;
            crate::say!("Key fingerprint: {}{}", identity.fingerprint, if *new_key { " (new key: working copies must trust it again)" } else { " (unchanged)" })?;
            crate::say!("Restart ecconfigd to serve it.")?;
            Ok(())
        }
        Some(EcconfigdCommand::Fingerprint) => {
            let config = config(&cli)?;
            cert::ensure(&state, &server::certificate_names(&config))?;
            crate::say!("{}", cert::load_server(&state)?.fingerprint)?;
            Ok(())
        }
        Some(EcconfigdCommand::User { command }) => user(&state, command),
    }
}

fn user(state: &std::path::Path, command: &UserCommand) -> Result<()> {
    std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    let path = users_path(state);
    let mut users = Users::load(&path)?;
    match command {
        UserCommand::Add { name, password_file } => {
            let password = new_password(name, password_file.as_deref())?;
            let existed = users.contains(name);
            users.set(name, &password)?;
            users.save(&path)?;
            crate::say!("{} user {name} in {}.", if existed { "Updated" } else { "Added" }, path.display())?;
        }
        UserCommand::Del { name } => {
            if !users.remove(name) {
                bail!("no user {name} in {}", path.display());
            }
            users.save(&path)?;
            crate::say!("Removed user {name}.")?;
        }
        UserCommand::List => {
            for name in users.names() {
                crate::say!("{name}")?;
            }
        }
    }
    Ok(())
}
