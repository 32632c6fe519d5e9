//! Configuration revisions across the cluster: which revision of each configuration repository
//! is the newest, and which one each node runs. No I/O here.
//!
//! The manager's shell learns of a new revision (the configuration server tells it after a
//! commit) and hands it to the [`Publisher`], which tells every live node the newest revisions
//! of what it follows (`global` and its subcluster's) and keeps telling a node, every `resend`,
//! until the node reports that it knows them and either runs them or says why it cannot (a
//! node's report answers every telling, so a lost report is made up for too). A node's
//! [`Follower`] asks its shell to bring the working copy up to the newest revisions
//! ([`FollowerOutput::Fetch`]) once per newer revision it hears of, and reports to every
//! manager what it runs, with the reason when it cannot run the newest (a pull that failed, a
//! revision that does not parse). Revisions only go up: an older or equal number changes
//! nothing, so messages may be lost, repeated or reordered.
//!
//! Messages travel on streams in the [`Kind::Config`] envelope; both are small (bounded by
//! [`MAX_REPOS`], [`MAX_NAME`] and [`MAX_ERROR`]).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::wire::{self, Kind};

/// Repository name → revision number.
pub type Revisions = BTreeMap<String, u64>;

/// The most repositories a message carries (the subclusters and `global`).
pub const MAX_REPOS: usize = 256;
/// The longest repository name.
pub const MAX_NAME: usize = 64;
/// The longest error a node reports (longer ones are cut at a character boundary).
pub const MAX_ERROR: usize = 400;
/// The largest message, envelope included: room for the bounds above, checked before decoding.
pub const MAX_BYTES: usize = 32 * 1024;

/// A configuration-revision message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevisionMessage {
    /// Manager → node: the newest revision of every repository.
    Newest(Revisions),
    /// Node → manager: the revisions its working copy runs, and why not the newest, if so.
    Running {
        /// Repository → revision in force.
        revisions: Revisions,
        /// The last pull's or reload's failure, while it stands.
        error: Option<String>,
        /// The newest revisions the node has heard of: the manager stops telling a node what
        /// it knows (a node that cannot run them keeps saying why, and is not told again).
        knows: Revisions,
    },
}

impl RevisionMessage {
    /// The message in its envelope.
    pub fn encode(&self) -> Result<Bytes, DecodeError> {
        wire::encode_body(Kind::Config, self, MAX_BYTES)
    }

    /// A message read from a stream: the envelope, then one message within the bounds.
    pub fn decode(message: &[u8]) -> Result<RevisionMessage, DecodeError> {
        if message.len() > MAX_BYTES {
            return Err(DecodeError::Oversize { len: message.len(), limit: MAX_BYTES });
        }
        let (kind, body) = wire::decode_message(message)?;
        let decoded: RevisionMessage = wire::decode_body(Kind::Config, kind, body)?;
        let (maps, error) = match &decoded {
            RevisionMessage::Newest(r) => ([r, r], None),
            RevisionMessage::Running { revisions, error, knows } => ([revisions, knows], error.as_ref()),
        };
        for revisions in maps {
            if revisions.len() > MAX_REPOS {
                return Err(DecodeError::Body(format!("{} repositories, at most {MAX_REPOS}", revisions.len())));
            }
            if let Some(name) = revisions.keys().find(|n| n.is_empty() || n.len() > MAX_NAME) {
                return Err(DecodeError::Body(format!("repository name of {} bytes (1 to {MAX_NAME})", name.len())));
            }
        }
        if error.is_some_and(|e| e.len() > MAX_ERROR) {
            return Err(DecodeError::Body(format!("error text over {MAX_ERROR} bytes")));
        }
        Ok(decoded)
    }
}

/// Raises `into` to `from` repository by repository; true if anything rose.
fn raise(into: &mut Revisions, from: &Revisions) -> bool {
    let mut rose = false;
    for (repo, rev) in from {
        let have = into.entry(repo.clone()).or_insert(0);
        if rev > have {
            *have = *rev;
            rose = true;
        }
    }
    rose
}

/// True if `running` has every revision of `newest` (or a later one).
pub fn covers(running: &Revisions, newest: &Revisions) -> bool {
    newest.iter().all(|(repo, rev)| running.get(repo).is_some_and(|r| r >= rev))
}

/// The repository every node follows besides its subcluster's.
pub const GLOBAL: &str = "global";

/// The part of `newest` a node of `subcluster` follows: `global` and its subcluster's.
pub fn followed_by(newest: &Revisions, subcluster: &str) -> Revisions {
    newest.iter().filter(|(repo, _)| *repo == GLOBAL || *repo == subcluster).map(|(r, n)| (r.clone(), *n)).collect()
}

/// Cuts `text` to at most [`MAX_ERROR`] bytes at a character boundary.
pub fn bounded_error(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// What a node last reported, as the manager knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeRevisions {
    /// Its subcluster: it follows `global` and this repository.
    pub subcluster: String,
    /// The revisions it runs.
    pub running: Revisions,
    /// Why not the newest, while that stands.
    pub error: Option<String>,
    /// The newest revisions it said it has heard of.
    pub knows: Revisions,
    /// When it last reported (`None`: not since it came up).
    pub heard: Option<Instant>,
}

/// What the publisher asks of the node core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublisherOutput {
    /// Send this (encoded [`RevisionMessage`]) to node `to`.
    Send {
        /// The node.
        to: String,
        /// The message.
        payload: Bytes,
    },
    /// Hand back [`Publisher::handle_timer`] after this long.
    SetTimer(Duration),
}

/// The manager's side: the newest revisions, and what each live node runs. A node is told,
/// and compared against, only the repositories it follows ([`followed_by`]).
#[derive(Debug)]
pub struct Publisher {
    newest: Revisions,
    nodes: BTreeMap<String, NodeRevisions>,
    resend: Duration,
    timer_set: bool,
    outputs: VecDeque<PublisherOutput>,
}

impl Publisher {
    /// A publisher that tells a lagging node again every `resend`.
    pub fn new(resend: Duration) -> Publisher {
        Publisher { newest: Revisions::new(), nodes: BTreeMap::new(), resend, timer_set: false, outputs: VecDeque::new() }
    }

    /// The newest revisions known.
    pub fn newest(&self) -> &Revisions {
        &self.newest
    }

    /// Every live node and what it last reported.
    pub fn nodes(&self) -> &BTreeMap<String, NodeRevisions> {
        &self.nodes
    }

    /// Revision `rev` of `repo` is the newest: every live node that does not run it is told.
    /// An older or equal revision changes nothing; false then.
    pub fn publish(&mut self, repo: &str, rev: u64) -> bool {
        if repo.is_empty() || repo.len() > MAX_NAME || (self.newest.len() >= MAX_REPOS && !self.newest.contains_key(repo)) {
            return false;
        }
        if !raise(&mut self.newest, &Revisions::from([(repo.to_owned(), rev)])) {
            return false;
        }
        for node in self.unaware() {
            self.tell(node);
        }
        self.arm();
        true
    }

    /// The newest revisions of what node `n` follows.
    pub fn newest_for(&self, n: &NodeRevisions) -> Revisions {
        followed_by(&self.newest, &n.subcluster)
    }

    /// Live nodes that have not said they know the newest revisions of what they follow (they
    /// are told, and told again until they do; what they run is theirs to report).
    fn unaware(&self) -> Vec<String> {
        self.nodes.iter().filter(|(_, n)| !covers(&n.knows, &self.newest_for(n))).map(|(name, _)| name.clone()).collect()
    }

    /// Whether node `n` is told again at the next resend: it has not said it knows the newest
    /// of what it follows, or it knows them but has said neither that it runs them nor why it
    /// cannot (its fetch is under way, or the report that it runs them was lost; telling it
    /// again asks for a report).
    fn lags(&self, n: &NodeRevisions) -> bool {
        let newest = self.newest_for(n);
        !covers(&n.knows, &newest) || (n.error.is_none() && !covers(&n.running, &newest))
    }

    /// Node `name` of `subcluster` is up (again): it is told the newest revisions of what it
    /// follows, if there are any.
    pub fn handle_node_up(&mut self, name: &str, subcluster: &str) {
        let node = NodeRevisions { subcluster: subcluster.to_owned(), ..NodeRevisions::default() };
        let any = !self.newest_for(&node).is_empty();
        self.nodes.insert(name.to_owned(), node);
        if any {
            self.tell(name.to_owned());
            self.arm();
        }
    }

    /// Node `name` is down or gone.
    pub fn handle_node_down(&mut self, name: &str) {
        self.nodes.remove(name);
    }

    /// Node `from` reports what it runs. Reports of nodes not up are ignored (the node is
    /// told on its way up).
    pub fn handle_running(&mut self, now: Instant, from: &str, revisions: Revisions, error: Option<String>, knows: Revisions) {
        let Some(node) = self.nodes.get_mut(from) else { return };
        node.running = revisions;
        node.error = error;
        node.knows = knows;
        node.heard = Some(now);
        if self.nodes.get(from).is_some_and(|n| self.lags(n)) {
            self.arm();
        }
    }

    /// The resend timer fired: every node that has not said it knows the newest, or that
    /// knows it but has not said it runs it or why not, is told again.
    pub fn handle_timer(&mut self) {
        self.timer_set = false;
        let lagging: Vec<String> = self.nodes.iter().filter(|(_, n)| self.lags(n)).map(|(name, _)| name.clone()).collect();
        if lagging.is_empty() {
            return;
        }
        for node in lagging {
            self.tell(node);
        }
        self.arm();
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<PublisherOutput> {
        self.outputs.pop_front()
    }

    fn tell(&mut self, to: String) {
        let Some(node) = self.nodes.get(&to) else { return };
        if let Ok(payload) = RevisionMessage::Newest(self.newest_for(node)).encode() {
            self.outputs.push_back(PublisherOutput::Send { to, payload });
        }
    }

    fn arm(&mut self) {
        if !self.timer_set {
            self.timer_set = true;
            self.outputs.push_back(PublisherOutput::SetTimer(self.resend));
        }
    }
}

/// What the follower asks of the node core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerOutput {
    /// Send this (encoded [`RevisionMessage`]) to manager `to`.
    Send {
        /// The manager.
        to: String,
        /// The message.
        payload: Bytes,
    },
    /// Bring the working copy up to at least these revisions, then say how it went with
    /// [`Follower::fetch_done`] and report what runs with [`Follower::set_running`].
    Fetch(Revisions),
    /// Hand back [`Follower::handle_timer`] after this long.
    SetTimer(Duration),
}

/// How much earlier than due a follower's timer may fire and still count.
const TIMER_SLACK: Duration = Duration::from_millis(100);

/// How a fetch the follower asked for went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The working copy is at the newest revisions the server has, or the newest were refused
    /// for a reason a new fetch would not change (they do not load, local changes conflict):
    /// the next look is a poll interval away, or when a newer revision is announced.
    Done,
    /// The server could not be reached or failed: tried again soon, backing off.
    Unreachable,
}

/// When a following node looks for new revisions without being told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowTiming {
    /// Between looks when nothing fails.
    pub poll: Duration,
    /// The first retry after [`FetchOutcome::Unreachable`]; each next one waits twice as long.
    pub first_retry: Duration,
    /// The longest wait between retries (never longer than `poll`).
    pub last_retry: Duration,
}

impl FollowTiming {
    /// Polling every `poll`, retrying after 1 s doubling to 10 s.
    pub fn polling(poll: Duration) -> FollowTiming {
        FollowTiming { poll, first_retry: Duration::from_secs(1), last_retry: Duration::from_secs(10) }
    }
}

/// A node's side: what it runs, and the newest it has heard of. A node whose shell follows a
/// repository ([`Follower::follow`]) also has its fetches scheduled here: one at a time (a
/// newer revision heard of during a fetch makes one more after it), at start, on every newer
/// revision announced, every poll interval, and after a failure with a backing-off retry.
#[derive(Debug, Default)]
pub struct Follower {
    running: Revisions,
    error: Option<String>,
    newest: Revisions,
    managers: Vec<String>,
    outputs: VecDeque<FollowerOutput>,
    /// Polling and retries, once the shell follows a repository.
    timing: Option<FollowTiming>,
    fetching: bool,
    again: bool,
    retry: Duration,
    /// When the armed timer is due; timers that fire at another time are stale.
    due: Option<Instant>,
}

impl Follower {
    /// A follower that runs nothing known yet.
    pub fn new() -> Follower {
        Follower::default()
    }

    /// The revisions in force.
    pub fn running(&self) -> &Revisions {
        &self.running
    }

    /// Why the newest revisions are not in force, while that stands.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The newest revisions heard of.
    pub fn newest(&self) -> &Revisions {
        &self.newest
    }

    /// A fetch is under way.
    pub fn fetching(&self) -> bool {
        self.fetching
    }

    /// The shell follows a repository: fetch now (the pull at start), then as `timing` says.
    pub fn follow(&mut self, timing: FollowTiming) {
        self.retry = timing.first_retry;
        self.timing = Some(timing);
        self.fetch();
    }

    /// Manager `name` is up: it is told what this node runs, if anything is known (a node
    /// that follows no repository stays silent until a manager tells it of one).
    pub fn handle_manager_up(&mut self, name: &str) {
        if !self.managers.iter().any(|m| m == name) {
            self.managers.push(name.to_owned());
        }
        if !self.running.is_empty() || self.error.is_some() {
            self.report_to(name.to_owned());
        }
    }

    /// Manager `name` is down or gone.
    pub fn handle_manager_down(&mut self, name: &str) {
        self.managers.retain(|m| m != name);
    }

    /// Manager `from` says which revisions are the newest. The shell is asked to fetch them
    /// if any is newer than any heard of before; the manager is told what runs.
    pub fn handle_newest(&mut self, from: &str, newest: &Revisions) {
        if raise(&mut self.newest, newest) && !covers(&self.running, &self.newest) {
            self.fetch();
        }
        self.report_to(from.to_owned());
    }

    /// The fetch asked for ended. A newer revision heard of meanwhile is fetched at once;
    /// otherwise the next look is armed (a retry after [`FetchOutcome::Unreachable`]).
    pub fn fetch_done(&mut self, now: Instant, outcome: FetchOutcome) {
        if !self.fetching {
            return;
        }
        self.fetching = false;
        if std::mem::take(&mut self.again) {
            self.fetch();
            return;
        }
        let Some(timing) = self.timing else { return };
        let wait = match outcome {
            FetchOutcome::Unreachable => {
                let wait = self.retry.min(timing.poll);
                self.retry = (self.retry * 2).min(timing.last_retry);
                wait
            }
            FetchOutcome::Done => {
                self.retry = timing.first_retry;
                timing.poll
            }
        };
        self.due = Some(now + wait);
        self.outputs.push_back(FollowerOutput::SetTimer(wait));
    }

    /// A timer armed by the follower fired: time to look again. Timers armed before the
    /// last one, which fire well before it is due, do nothing (the slack lets the due one
    /// fire a little early, as clocks and timer wheels round).
    pub fn handle_timer(&mut self, now: Instant) {
        if self.due.is_some_and(|due| now + TIMER_SLACK >= due) {
            self.fetch();
        }
    }

    /// The shell's working copy now runs `revisions` (after a start, a pull, a reload), with
    /// the failure that keeps it from the newest, if one does. Every manager is told.
    pub fn set_running(&mut self, revisions: Revisions, error: Option<String>) {
        self.running = revisions;
        self.error = error.map(|e| bounded_error(&e));
        let managers = self.managers.clone();
        for m in managers {
            self.report_to(m);
        }
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<FollowerOutput> {
        self.outputs.pop_front()
    }

    /// Asks the shell for a fetch, or for one more after the one under way.
    fn fetch(&mut self) {
        if self.fetching {
            self.again = true;
            return;
        }
        self.fetching = true;
        self.due = None;
        self.outputs.push_back(FollowerOutput::Fetch(self.newest.clone()));
    }

    fn report_to(&mut self, to: String) {
        let message = RevisionMessage::Running { revisions: self.running.clone(), error: self.error.clone(), knows: self.newest.clone() };
        if let Ok(payload) = message.encode() {
            self.outputs.push_back(FollowerOutput::Send { to, payload });
        }
    }
}

#[cfg(test)]
mod tests;
