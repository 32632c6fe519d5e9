//! Named points where a test can freeze `ecconfigd` or `eccfg` to kill it at an exact moment
//! (mid-commit, mid-pull, mid-swap): when the environment variable `ECCFG_STOP_AT` names the
//! point, the process stops itself with SIGSTOP there, and the test, which sees the stop as an
//! event (`waitpid` with `WUNTRACED`), kills it. Unset, nothing happens. Operators never set it.

use nix::sys::signal::{raise, Signal};

/// The environment variable naming the point to stop at.
pub const VAR: &str = "ECCFG_STOP_AT";

/// Stops the process with SIGSTOP if [`VAR`] names `point`; it continues on SIGCONT.
pub fn stop_point(point: &str) {
    if std::env::var_os(VAR).is_some_and(|v| v == point) {
        tracing::warn!(point, "stopping at a test stop point ({VAR})");
        if let Err(error) = raise(Signal::SIGSTOP) {
            tracing::warn!(%error, point, "could not stop at the test stop point");
        }
    }
}
