//! The audit log of the console: one line per command (and per login attempt) saying who,
//! from where, what, with which result and how long it took.
//!
//! Every record goes to the tracing target `audit` (level info), and, with
//! `Control_Listener { Audit_Log = "PATH" }`, to that file as a JSON line, appended; the file
//! is created owner-only (0600). A record:
//!
//! ```text
//! {"time":"2026-12-02T08:15:02.114Z","user":"alice","from":"127.0.0.1:50312","command":"show cluster membership","result":"ok","duration_ms":3}
//! ```
//!
//! `from` is the peer address of a TCP session, or `unix:PATH uid=UID` for the unix socket.
//! `result` is `ok`, `error` (the command ran, or was attempted, and failed; or the line did
//! not parse), `denied` (refused by authorization, nothing ran) or, for `"command":"login"`,
//! `ok` / `denied`. Passwords are never recorded. A failed write is logged and the command
//! is answered anyway.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tracing::{info, warn};

/// How a command ended, as the audit log says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It ran and succeeded (or a login was accepted).
    Ok,
    /// It failed, or did not parse.
    Error,
    /// Authorization refused it (or a login was refused); nothing ran.
    Denied,
}

/// One audit record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// When it ended, RFC 3339 UTC.
    pub time: String,
    /// The session's user (`-` when the session has none).
    pub user: &'a str,
    /// Where the session comes from.
    pub from: &'a str,
    /// The command line (format prefix included), or `login`.
    pub command: &'a str,
    /// How it ended.
    pub result: Outcome,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// The audit log of one daemon.
#[derive(Debug, Default)]
pub struct Audit {
    file: Option<(PathBuf, Mutex<File>)>,
}

impl Audit {
    /// An audit log to the tracing target only.
    pub fn tracing_only() -> Audit {
        Audit { file: None }
    }

    /// An audit log appended to `path` (created owner-only) as well.
    pub fn to_file(path: &Path) -> anyhow::Result<Audit> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening the audit log {} (Control_Listener Audit_Log)", path.display()))?;
        Ok(Audit { file: Some((path.to_owned(), Mutex::new(file))) })
    }

    /// Records one command.
    pub fn record(&self, user: Option<&str>, from: &str, command: &str, result: Outcome, took: Duration) {
        let record = Record {
            time: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            user: user.unwrap_or("-"),
            from,
            command,
            result,
            duration_ms: took.as_millis() as u64,
        };
        info!(target: "audit", user = record.user, from, command, result = ?result, duration_ms = record.duration_ms, "console");
        let Some((path, file)) = &self.file else { return };
        let mut line = match serde_json::to_string(&record) {
            Ok(line) => line,
            Err(error) => {
                warn!(%error, "could not encode an audit record");
                return;
            }
        };
        line.push('\n');
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = file.write_all(line.as_bytes()) {
            warn!(path = %path.display(), %error, "could not write the audit log");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn records_are_json_lines_appended_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::to_file(&path).unwrap();
        audit.record(Some("alice"), "127.0.0.1:5000", "show \"x\"", Outcome::Ok, Duration::from_millis(7));
        audit.record(None, "unix:/tmp/2025 uid=0", "shutdown", Outcome::Denied, Duration::ZERO);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["user"], "alice");
        assert_eq!(lines[0]["command"], "show \"x\"");
        assert_eq!(lines[0]["result"], "ok");
        assert_eq!(lines[0]["duration_ms"], 7);
        assert_eq!(lines[1]["user"], "-");
        assert_eq!(lines[1]["result"], "denied");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
