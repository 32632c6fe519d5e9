//! How a member daemon stops: the first SIGTERM or SIGINT (or the console's `shutdown`) begins
//! a graceful stop; a second SIGTERM or SIGINT ends the process at once; and a hard deadline,
//! [`HARD_DEADLINE`] after the stop began, ends it if the graceful stop still hangs, logging the
//! stage it was in.
//!
//! Signals are taken by a thread of their own with sigwait(2), not by the async runtime:
//! SIGTERM and SIGINT are blocked in every thread (threads inherit the mask of the thread that
//! starts them, so [`Stop::install`] runs before any other thread exists), and the signal thread
//! and the deadline thread act even when the runtime's one thread is stuck. Programs the daemon
//! starts begin with an empty signal mask (the standard library resets it in the child), so
//! they can still be stopped with signals.

use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// The longest a stop may take, from its start to the end of the process.
pub const HARD_DEADLINE: Duration = Duration::from_secs(10);

/// Exit status of a stop cut short (a second signal, the hard deadline): the stop did not finish.
pub const FORCED_EXIT: i32 = 1;

/// What a stopping daemon is doing, for the log line of a stop cut short.
#[derive(Debug, Clone, Default)]
pub struct StopProgress(Arc<Mutex<String>>);

impl StopProgress {
    /// Records the stage a stop has reached (`closing the QUIC endpoint`).
    pub fn set(&self, stage: impl Into<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = stage.into();
    }

    /// The stage last recorded; `not stopping yet` before any.
    pub fn get(&self) -> String {
        let stage = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if stage.is_empty() {
            "not stopping yet".to_owned()
        } else {
            stage.clone()
        }
    }
}

/// The stop of one daemon process: the token that begins the graceful stop and the threads that
/// end the process when the graceful stop takes too long.
#[derive(Debug)]
pub struct Stop {
    token: CancellationToken,
    progress: StopProgress,
    /// Starts the hard deadline (the first message counts).
    begun: mpsc::Sender<&'static str>,
}

impl Stop {
    /// Blocks SIGTERM and SIGINT and starts the signal thread and the deadline thread. Call it
    /// from the main thread before any other thread starts.
    pub fn install() -> Result<Stop> {
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGTERM);
        signals.add(Signal::SIGINT);
        signals.thread_block().context("blocking SIGTERM and SIGINT for the signal thread")?;
        let token = CancellationToken::new();
        let progress = StopProgress::default();
        let (begun, started) = mpsc::channel();

        let (t, p, b) = (token.clone(), progress.clone(), begun.clone());
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || take_signals(signals, &t, &p, &b))
            .context("starting the signal thread")?;
        let p = progress.clone();
        thread::Builder::new()
            .name("stop-deadline".into())
            .spawn(move || enforce_deadline(&started, &p))
            .context("starting the stop deadline thread")?;
        Ok(Stop { token, progress, begun })
    }

    /// The token cancelled when the stop begins.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Where the driver records the stage of its stop.
    pub fn progress(&self) -> StopProgress {
        self.progress.clone()
    }

    /// Starts the hard deadline whenever the token is cancelled, whoever cancels it (the
    /// console's `shutdown`, a failed console listener). Call inside the runtime.
    pub fn arm_deadline(&self) {
        let (token, begun) = (self.token.clone(), self.begun.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            if begun.send("the stop began").is_err() {
                warn!("the stop deadline thread is gone; a stuck stop will not be cut short");
            }
        });
    }
}

/// The signal thread: the first signal begins the stop, the second ends the process.
fn take_signals(signals: SigSet, token: &CancellationToken, progress: &StopProgress, begun: &mpsc::Sender<&'static str>) {
    let mut stopping = false;
    loop {
        let signal = match signals.wait() {
            Ok(signal) => signal,
            Err(error) => {
                error!(%error, "waiting for SIGTERM or SIGINT failed; the daemon can only be stopped by SIGKILL or its console");
                return;
            }
        };
        if stopping {
            warn!(signal = signal.as_str(), stage = %progress.get(), "second signal: exiting at once");
            std::process::exit(FORCED_EXIT);
        }
        stopping = true;
        info!(signal = signal.as_str(), "stopping; a second SIGTERM or SIGINT exits at once");
        if begun.send(signal.as_str()).is_err() {
            warn!("the stop deadline thread is gone; a stuck stop will not be cut short");
        }
        token.cancel();
    }
}

/// The deadline thread: once the stop has begun, waits [`HARD_DEADLINE`] and ends the process.
/// A process whose stop finishes in time exits before this thread wakes.
fn enforce_deadline(started: &mpsc::Receiver<&'static str>, progress: &StopProgress) {
    if started.recv().is_err() {
        return;
    }
    thread::sleep(HARD_DEADLINE);
    error!(
        deadline_secs = HARD_DEADLINE.as_secs(),
        still_running = %progress.get(),
        "the stop did not finish in time; exiting"
    );
    std::process::exit(FORCED_EXIT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_names_the_last_stage() {
        let progress = StopProgress::default();
        assert_eq!(progress.get(), "not stopping yet");
        let shared = progress.clone();
        shared.set("closing the QUIC endpoint");
        assert_eq!(progress.get(), "closing the QUIC endpoint");
    }
}
