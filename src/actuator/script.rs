//! The script actuator: one run of `PROGRAM add|del IP INTERFACE` per address, without a
//! shell, stdin and stdout on /dev/null, stderr kept (truncated) for the report. A run that
//! outlives its timeout is killed with its whole process group.
//!
//! Only running the program here; which addresses to add or delete is the worker's business.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tracing::{debug, warn};

use super::ActuatorError;

/// How much of a run's stderr a report keeps.
const STDERR_LIMIT: usize = 4096;

/// Add or delete, the program's first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    /// `add`
    Add,
    /// `del`
    Del,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "add",
            Verb::Del => "del",
        }
    }
}

/// The configured program and its timeout.
#[derive(Debug, Clone)]
pub(super) struct Script {
    pub(super) program: PathBuf,
    pub(super) timeout: Duration,
}

impl Script {
    /// Runs `PROGRAM VERB ADDR INTERFACE` (INTERFACE empty if `None`) to completion or
    /// timeout. Exiting with status 0 is success; anything else is an error carrying stderr.
    pub(super) async fn run(
        &self,
        verb: Verb,
        addr: IpAddr,
        interface: Option<&str>,
    ) -> Result<(), ActuatorError> {
        let mut command = Command::new(&self.program);
        command
            .arg(verb.as_str())
            .arg(addr.to_string())
            .arg(interface.unwrap_or(""))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|source| ActuatorError::ScriptStart { program: self.program.clone(), source })?;
        // Until the child is reaped its pid names its process group; the guard kills the group
        // if this future is dropped (shutdown) or the run times out.
        let mut group = GroupGuard { pgid: child.id() };
        let stderr = child.stderr.take();
        let mut captured = Vec::new();
        let run = async {
            let (status, read) = tokio::join!(child.wait(), capture(stderr, &mut captured));
            if let Err(error) = read {
                debug!(%error, program = %self.program.display(), "reading the program's stderr");
            }
            status
        };
        let finished = tokio::time::timeout(self.timeout, run).await;
        let status: io::Result<ExitStatus> = match finished {
            Ok(status) => {
                group.pgid = None;
                status
            }
            Err(_elapsed) => {
                group.kill();
                if let Err(error) = child.kill().await {
                    warn!(%error, program = %self.program.display(), "reaping a timed-out program");
                }
                return Err(ActuatorError::ScriptTimeout {
                    program: self.program.clone(),
                    verb: verb.as_str(),
                    addr,
                    timeout: self.timeout,
                    stderr: text(&captured),
                });
            }
        };
        let status =
            status.map_err(|source| ActuatorError::ScriptWait { program: self.program.clone(), source })?;
        if status.success() {
            Ok(())
        } else {
            Err(ActuatorError::ScriptFailed {
                program: self.program.clone(),
                verb: verb.as_str(),
                addr,
                status,
                stderr: text(&captured),
            })
        }
    }
}

/// Reads `stderr` into `into`, keeping the first [`STDERR_LIMIT`] bytes and discarding the
/// rest (still reading, so the program never blocks on a full pipe).
async fn capture(stderr: Option<impl AsyncRead + Unpin>, into: &mut Vec<u8>) -> io::Result<()> {
    let Some(mut stderr) = stderr else { return Ok(()) };
    let mut chunk = [0u8; 1024];
    loop {
        let n = stderr.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        let room = STDERR_LIMIT.saturating_sub(into.len());
        into.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Captured stderr as text for a report: lossy UTF-8, trimmed, marked when truncated.
fn text(captured: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(captured).trim().to_owned();
    if captured.len() >= STDERR_LIMIT {
        text.push_str(" [truncated]");
    }
    text
}

/// Kills the process group of an unreaped child when armed.
struct GroupGuard {
    pgid: Option<u32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        let Some(pgid) = self.pgid.take() else { return };
        let Ok(raw) = i32::try_from(pgid) else { return };
        match killpg(Pid::from_raw(raw), Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => warn!(%error, pgid, "killing a program's process group"),
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_text_is_trimmed_and_marked_when_truncated() {
        assert_eq!(text(b"  boom\n"), "boom");
        let long = vec![b'x'; STDERR_LIMIT];
        assert!(text(&long).ends_with(" [truncated]"));
    }

    #[tokio::test]
    async fn capture_keeps_the_first_bytes_and_drains_the_rest() {
        let input = vec![b'a'; STDERR_LIMIT * 3];
        let mut into = Vec::new();
        capture(Some(&input[..]), &mut into).await.expect("read");
        assert_eq!(into.len(), STDERR_LIMIT);
    }
}
