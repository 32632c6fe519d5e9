//! `eccfg`: runs one command of the configuration client and prints what happened, in the
//! words Momentum operators know (`Sending …`, `Committed revision 47.`, `Nothing to commit`).
//!
//! Exit codes: 0 done, 1 refused or failed (conflict, authentication, unreachable, invalid
//! configuration), 2 bad usage (not a working copy, a malformed argument).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{EccfgCli, EccfgCommand};
use crate::confrepo::client::{Credentials, Endpoint};
use crate::confrepo::users::read_password_file;
use crate::confrepo::wc::{self, BootstrapOptions, Connection, PullOutcome, Resolve, TrustChoice, WcError, WorkingCopy};

/// Environment variable that may hold the password.
pub const PASSWORD_ENV: &str = "ECCFG_PASSWORD";

/// A failure and its exit code.
struct Failure(u8, String);

impl From<crate::stdout::StdoutError> for Failure {
    fn from(error: crate::stdout::StdoutError) -> Failure {
        Failure(1, error.to_string())
    }
}

impl From<WcError> for Failure {
    fn from(error: WcError) -> Failure {
        let code = match error {
            WcError::NotAWorkingCopy(_) => 2,
            _ => 1,
        };
        Failure(code, error.to_string())
    }
}

/// Runs the command line; prints errors as `eccfg: …` on stderr.
pub fn main(cli: EccfgCli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(error) => {
            eprintln!("eccfg: starting the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("eccfg: {message}");
            ExitCode::from(code)
        }
    }
}

fn connection(cli: &EccfgCli, wc: Option<&WorkingCopy>) -> Result<Connection, Failure> {
    let user = cli
        .username
        .clone()
        .or_else(|| wc.map(|w| w.meta().user.clone()))
        .or_else(|| std::env::var("USER").ok())
        .ok_or_else(|| Failure(2, "no user name: give --username".into()))?;
    let remembered = wc.and_then(|w| w.meta().password_file.clone());
    let password = if let Some(path) = &cli.password_file {
        read_password_file(path).map_err(|e| Failure(2, e.to_string()))?
    } else if let Ok(password) = std::env::var(PASSWORD_ENV) {
        password
    } else if let Some(path) = remembered {
        read_password_file(&path).map_err(|e| Failure(2, format!("{e} (the password file given at bootstrap)")))?
    } else if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password(format!("Password for {user}: ")).map_err(|e| Failure(2, format!("reading the password: {e}")))?
    } else {
        return Err(Failure(2, format!("no password: give --password-file FILE or set {PASSWORD_ENV}")));
    };
    Ok(Connection { credentials: Credentials { user, password }, timeout: Duration::from_secs(cli.timeout.max(1)) })
}

fn print_pull(outcome: &PullOutcome, wc: &Path) -> Result<(), Failure> {
    if outcome.cleaned > 0 {
        crate::say!("Removed {} temporary director{} left by an interrupted pull.", outcome.cleaned, if outcome.cleaned == 1 { "y" } else { "ies" })?;
    }
    for (letter, path) in &outcome.changed {
        let letter = if outcome.merged.contains(path) { 'G' } else { *letter };
        crate::say!("{letter}    {path}")?;
    }
    for path in &outcome.resolved {
        crate::say!("Conflict in {path} resolved as asked.")?;
    }
    for (repo, to) in &outcome.to {
        match outcome.from.get(repo) {
            Some(from) if from != to => crate::say!("Updated {repo} from revision {from} to {to}.")?,
            _ => crate::say!("At revision {to} of {repo}.")?,
        }
    }
    crate::say!("{}", if outcome.files_changed() { "Files changed." } else { "No files changed." })?;
    let inside = std::env::current_dir().ok().zip(std::path::absolute(wc).ok()).is_some_and(|(cwd, wc)| cwd.starts_with(wc));
    if inside && outcome.files_changed() {
        crate::say!("Note: the working copy was replaced; run \"cd {}\" to see the new files.", wc.display())?;
    }
    Ok(())
}

async fn run(cli: EccfgCli) -> Result<(), Failure> {
    let root = cli.wc.clone();
    if let EccfgCommand::Bootstrap { server, clustername, node, ca, trust } = &cli.command {
        let server = Endpoint::parse(server).map_err(|e| Failure(2, e))?;
        let conn = connection(&cli, None)?;
        let trust = match (ca, trust.as_deref()) {
            (Some(path), _) => TrustChoice::Ca(path.clone()),
            (None, Some("")) => TrustChoice::AcceptShown,
            (None, Some(fp)) => TrustChoice::Fingerprint(fp.to_owned()),
            (None, None) => TrustChoice::Ask,
        };
        let opts = BootstrapOptions {
            server,
            clustername: clustername.clone(),
            node: node.clone(),
            wc: root.clone(),
            trust,
            password_file: cli.password_file.clone(),
        };
        let (wc, pinned) = wc::bootstrap(&opts, &conn).await?;
        if let Some(fp) = pinned {
            crate::say!("Trusting the key of ecconfigd at {}: {fp}", opts.server)?;
        }
        for (repo, rev) in &wc.meta().bases {
            crate::say!("Checked out revision {rev} of {repo}.")?;
        }
        crate::say!("Working copy: {}", root.display())?;
        return Ok(());
    }
    let opened = WorkingCopy::open(&root)?;
    match &cli.command {
        EccfgCommand::Bootstrap { .. } => Ok(()),
        EccfgCommand::Status => {
            for (path, change) in opened.changes()? {
                crate::say!("{}       {path}", change.letter())?;
            }
            let bases: Vec<String> = opened.meta().bases.iter().map(|(r, n)| format!("{r} at revision {n}")).collect();
            crate::say!("Working copy {}: {}.", root.display(), bases.join(", "))?;
            Ok(())
        }
        EccfgCommand::Diff { paths } => {
            crate::stdout::write(format_args!("{}", wc::diff(&root, paths)?))?;
            Ok(())
        }
        EccfgCommand::Pull { mine, theirs } => {
            let resolve = if *mine { Resolve::Mine } else if *theirs { Resolve::Theirs } else { Resolve::Refuse };
            let outcome = wc::pull(&root, &connection(&cli, Some(&opened))?, resolve).await?;
            print_pull(&outcome, &root)?;
            Ok(())
        }
        EccfgCommand::Commit { message, paths } => {
            let outcome = wc::commit(&root, &connection(&cli, Some(&opened))?, message, (!paths.is_empty()).then_some(paths)).await?;
            print_commit(&outcome)?;
            Ok(())
        }
        EccfgCommand::Put { source, dest, message } => {
            let message = message.clone().unwrap_or_else(|| format!("put {dest}"));
            let outcome = wc::put(&root, &connection(&cli, Some(&opened))?, source, dest, &message).await?;
            print_commit(&outcome)?;
            Ok(())
        }
        EccfgCommand::Rollback { rev, repo, message } => {
            let conn = connection(&cli, Some(&opened))?;
            let (committed, pulled) = wc::rollback(&root, &conn, repo.as_deref(), *rev, message.as_deref()).await?;
            match committed.first() {
                Some(head) => crate::say!("Committed revision {} (the files of revision {rev} of {}).", head.revision, head.repo)?,
                None => crate::say!("Nothing to commit: the newest revision already has the files of revision {rev}.")?,
            }
            print_pull(&pulled, &root)?;
            Ok(())
        }
        EccfgCommand::Log { repo, limit } => {
            let conn = connection(&cli, Some(&opened))?;
            for line in wc::log(&root, &conn, repo.as_deref(), *limit).await? {
                let e = &line.entry;
                let when = chrono::DateTime::from_timestamp(e.time, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
                crate::say!("------------------------------------------------------------------------")?;
                crate::say!("r{} | {} | {} | {}", e.revision, e.author, when, line.repo)?;
                for path in &e.changed {
                    crate::say!("   {path}")?;
                }
                crate::say!("\n{}\n", e.message)?;
            }
            Ok(())
        }
    }
}

fn print_commit(outcome: &wc::CommitOutcome) -> Result<(), Failure> {
    if outcome.committed.is_empty() {
        crate::say!("Nothing to commit")?;
        return Ok(());
    }
    for (path, change) in &outcome.sent {
        let verb = if *change == wc::Change::Deleted { "Deleting" } else if *change == wc::Change::Added { "Adding" } else { "Sending" };
        crate::say!("{verb:<15}{path}")?;
    }
    crate::say!("Transmitting file data.")?;
    for head in &outcome.committed {
        if head.repo == crate::confrepo::path::GLOBAL {
            crate::say!("Committed global revision {}.", head.revision)?;
        } else {
            crate::say!("Committed revision {}.", head.revision)?;
        }
    }
    Ok(())
}
