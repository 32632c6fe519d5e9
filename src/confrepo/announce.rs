//! ecconfigd tells the managers the newest revision of every repository, so that they tell the
//! nodes (`ecconfigd --announce SOCKET`): the console command `cluster config announce REPO
//! REV ...` sent to each manager's console socket at start, after every commit and rollback
//! that made revisions, and every `--announce-interval` (so that a restarted manager, which
//! knows no revision, learns the heads again).
//!
//! A commit never waits for this: the server raises the shared heads ([`Heads::raise`], a
//! watch channel) and returns; one task per socket sends the newest heads, one connection at
//! a time, each attempt bounded by [`ASK_TIMEOUT`]. Heads raised while an attempt is under way
//! are sent next, in one announcement: an announcement not yet sent is superseded by a later
//! one, never queued behind it. Revisions only go up and the manager ignores what is not
//! newer, so repeating an announcement is harmless.
//!
//! A manager that cannot be reached (not up yet, restarting, a wrong path) is logged once when
//! the attempts start failing and once when it answers again; the attempts in between are
//! logged at debug level only.

use std::path::PathBuf;
use std::time::Duration;

use eccluster_proto::node::line::join_words;
use eccluster_proto::revisions::{Revisions, MAX_REPOS};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::RepoHead;
use crate::console::frame::Status;

/// The default time between two announcements of unchanged heads.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The longest one announcement may take (connect, send, answer).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how often to announce.
#[derive(Debug, Clone)]
pub struct AnnounceConfig {
    /// Console sockets of the managers (none: nothing is announced).
    pub sockets: Vec<PathBuf>,
    /// Time between two announcements when nothing changes.
    pub interval: Duration,
}

impl Default for AnnounceConfig {
    fn default() -> AnnounceConfig {
        AnnounceConfig { sockets: Vec::new(), interval: DEFAULT_INTERVAL }
    }
}

/// The newest revision of every repository, as announced. Cheap to raise: a commit calls
/// [`Heads::raise`] and goes on.
#[derive(Clone)]
pub struct Heads(watch::Sender<Revisions>);

impl Heads {
    /// Heads starting at `initial`, with no announcer listening yet.
    pub fn new(initial: &[RepoHead]) -> Heads {
        Heads(watch::Sender::new(initial.iter().map(|h| (h.repo.clone(), h.revision)).collect()))
    }

    /// A commit or rollback made these revisions: the announcers send the heads again (a
    /// revision not above the one known changes nothing).
    pub fn raise(&self, committed: &[RepoHead]) {
        self.0.send_if_modified(|heads| {
            let mut rose = false;
            for head in committed {
                let known = heads.entry(head.repo.clone()).or_insert(0);
                if head.revision > *known {
                    *known = head.revision;
                    rose = true;
                }
            }
            rose
        });
    }

    /// A receiver of the heads, for readers outside the server (the metrics).
    pub fn subscribe(&self) -> watch::Receiver<Revisions> {
        self.0.subscribe()
    }

    /// The heads now.
    pub fn current(&self) -> Revisions {
        self.0.borrow().clone()
    }

    /// Starts one announcing task per socket of `config` on `tracker`; they stop when `stop`
    /// is cancelled.
    pub fn announce(&self, config: &AnnounceConfig, tracker: &TaskTracker, stop: &CancellationToken) {
        let interval = config.interval.max(Duration::from_millis(100));
        for socket in &config.sockets {
            tracker.spawn(announce_to(socket.clone(), self.0.subscribe(), interval, stop.clone()));
        }
    }
}

/// The console commands that announce `heads`: `cluster config announce REPO REV ...`, at most
/// [`MAX_REPOS`] pairs each (what one command may carry). Repositories without a commit
/// (revision 0) are left out: there is nothing to fetch. Empty when nothing is committed.
pub fn announcements(heads: &Revisions) -> Vec<String> {
    let pairs: Vec<(&String, &u64)> = heads.iter().filter(|(_, rev)| **rev > 0).collect();
    pairs
        .chunks(MAX_REPOS)
        .map(|chunk| {
            let mut words = vec!["cluster".to_owned(), "config".to_owned(), "announce".to_owned()];
            for (repo, rev) in chunk {
                words.push((*repo).clone());
                words.push(rev.to_string());
            }
            join_words(&words)
        })
        .collect()
}

/// Whether a manager answers, as last logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// No attempt yet.
    Unknown,
    /// The last attempt was answered.
    Answering,
    /// The last attempt failed.
    Failing,
}

/// Sends the announcements of `heads` once; the reason when the manager did not take them.
async fn send(socket: &std::path::Path, heads: &Revisions) -> Result<(), String> {
    for line in announcements(heads) {
        match tokio::time::timeout(ASK_TIMEOUT, crate::local::ask(socket, &line)).await {
            Err(_) => return Err(format!("no answer within {} s", ASK_TIMEOUT.as_secs())),
            Ok(Err(error)) => return Err(format!("{error:#}")),
            Ok(Ok(reply)) if reply.status != Status::Ok => return Err(format!("refused: {}", reply.body.trim_end())),
            Ok(Ok(reply)) => tracing::debug!(socket = %socket.display(), answer = %reply.body.trim_end(), "announced"),
        }
    }
    Ok(())
}

/// Announces to the manager at `socket` at start, whenever `heads` change, and every
/// `interval`, until `stop`.
async fn announce_to(socket: PathBuf, mut heads: watch::Receiver<Revisions>, interval: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reach = Reach::Unknown;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            changed = heads.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {}
        }
        let current = heads.borrow_and_update().clone();
        if announcements(&current).is_empty() {
            continue;
        }
        let outcome = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            outcome = send(&socket, &current) => outcome,
        };
        tick.reset();
        reach = logged(&socket, reach, outcome, interval);
    }
}

/// Logs an attempt's outcome when it changes whether the manager answers; the new state.
fn logged(socket: &std::path::Path, reach: Reach, outcome: Result<(), String>, interval: Duration) -> Reach {
    let socket = socket.display();
    match (reach, outcome) {
        (Reach::Answering, Ok(())) => Reach::Answering,
        (Reach::Unknown, Ok(())) => {
            tracing::info!(%socket, "announcing configuration revisions to the manager");
            Reach::Answering
        }
        (Reach::Failing, Ok(())) => {
            tracing::warn!(%socket, "the manager answers again: configuration revisions announced");
            Reach::Answering
        }
        (Reach::Failing, Err(error)) => {
            tracing::debug!(%socket, %error, "the manager still does not answer");
            Reach::Failing
        }
        (Reach::Unknown | Reach::Answering, Err(error)) => {
            tracing::warn!(
                %socket,
                %error,
                retry_secs = interval.as_secs_f64(),
                "cannot announce configuration revisions to the manager (not up yet, or gone); \
                 retrying, logged again once it answers"
            );
            Reach::Failing
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn head(repo: &str, revision: u64) -> RepoHead {
        RepoHead { repo: repo.to_owned(), revision }
    }

    #[test]
    fn heads_only_rise() {
        let heads = Heads::new(&[head("global", 2), head("west", 0)]);
        let mut seen = heads.0.subscribe();
        heads.raise(&[head("west", 1)]);
        assert!(seen.has_changed().unwrap());
        seen.borrow_and_update();
        heads.raise(&[head("west", 1), head("global", 1)]);
        assert!(!seen.has_changed().unwrap(), "nothing rose, yet the announcers were woken");
        assert_eq!(heads.current(), Revisions::from([("global".into(), 2), ("west".into(), 1)]));
    }

    #[test]
    fn announcements_leave_out_empty_repositories_and_split_at_the_message_bound() {
        assert!(announcements(&Revisions::from([("default".into(), 0)])).is_empty());
        let heads = Revisions::from([("default".into(), 0), ("global".into(), 3), ("west".into(), 12)]);
        assert_eq!(announcements(&heads), vec!["cluster config announce global 3 west 12".to_owned()]);
        let many: Revisions = (0..MAX_REPOS + 1).map(|i| (format!("r{i:03}"), 1)).collect();
        let lines = announcements(&many);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], format!("cluster config announce r{MAX_REPOS:03} 1"));
    }

    #[test]
    fn only_changes_between_answering_and_failing_are_logged_above_debug() {
        let s = std::path::Path::new("/tmp/x");
        let i = Duration::from_secs(1);
        let failed = || Err("down".to_owned());
        assert_eq!(logged(s, Reach::Unknown, failed(), i), Reach::Failing);
        assert_eq!(logged(s, Reach::Failing, failed(), i), Reach::Failing);
        assert_eq!(logged(s, Reach::Failing, Ok(()), i), Reach::Answering);
        assert_eq!(logged(s, Reach::Answering, Ok(()), i), Reach::Answering);
        assert_eq!(logged(s, Reach::Answering, failed(), i), Reach::Failing);
    }
}
