//! What the cluster page shows, taken from the manager's node core in one piece: the same data
//! as `show cluster membership`, the DuraVIP bindings, the results buffer of `retrieve` and
//! `show cluster config`, as plain serialisable values. Built by the daemon loop
//! ([`Publisher::publish`]) and handed to the page server over a `watch` channel, so the
//! server never touches the core and the loop never waits for a browser.
//!
//! Times are wall-clock milliseconds since the Unix epoch, converted from the core's
//! `Instant`s with one fixed pair taken at start, so an unchanged cluster gives an equal
//! snapshot and nothing is pushed.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eccluster_proto::node::Node;
use serde::Serialize;
use tokio::sync::watch;

/// Commands of the results buffer shown, newest first.
pub const LATEST_COMMANDS: usize = 12;
/// Longest answer body shown per node (bytes; the rest is cut at a character boundary).
pub const MAX_BODY: usize = 512;

/// One member row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRow {
    /// Member name.
    pub name: String,
    /// Subcluster.
    pub subcluster: String,
    /// `node` or `manager`.
    pub role: String,
    /// QUIC address.
    pub address: String,
    /// `up`, `suspect` or `down`.
    pub state: String,
    /// When it entered that state (ms since the epoch), if the manager saw it change.
    pub since: Option<u64>,
    /// Incarnation.
    pub incarnation: u64,
}

/// One DuraVIP binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipRow {
    /// The address.
    pub address: String,
    /// The binding's name.
    pub binding: String,
    /// The nodes that may hold it.
    pub candidates: Vec<String>,
    /// The node preferred, if one is.
    pub preferred: Option<String>,
    /// The one node holding it, as the nodes report to the manager, when exactly one does.
    pub owner: Option<String>,
    /// More than one node holds it.
    pub conflict: bool,
    /// Every node holding or acquiring it.
    pub holders: Vec<VipHolder>,
}

/// A node holding or acquiring a DuraVIP address, as it reported to the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipHolder {
    /// The node.
    pub name: String,
    /// `held` or `acquiring`.
    pub state: String,
    /// The term it claims under (`epoch.seq`; `0.0`: by election).
    pub term: String,
}

/// One node's answer to an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerRow {
    /// Node name.
    pub node: String,
    /// `ok`, `error`, `pending`, `no answer`, `node left` (as `retrieve` prints them).
    pub status: String,
    /// What it printed (cut at [`MAX_BODY`]).
    pub body: String,
    /// Its operation (`epoch.seq`): an older one when this node missed the latest.
    pub op: String,
}

/// One command of the results buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationRow {
    /// Latest operation id, `epoch.seq`.
    pub op: String,
    /// The command text.
    pub command: String,
    /// Each node's answer.
    pub answers: Vec<AnswerRow>,
}

/// What one node runs of the configuration repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeConfigRow {
    /// Node name.
    pub node: String,
    /// `repo@rev` it runs, comma separated.
    pub running: String,
    /// Whether it runs the newest revisions it follows.
    pub current: bool,
    /// Why not, while that stands.
    pub error: Option<String>,
}

/// The whole page's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Snapshot {
    /// The manager's name.
    pub manager: String,
    /// Every member, by name.
    pub members: Vec<MemberRow>,
    /// DuraVIP bindings.
    pub duravip: Vec<VipRow>,
    /// The latest commands, newest first.
    pub operations: Vec<OperationRow>,
    /// Operations sequenced this epoch (the latest sequence number).
    pub sequenced: u64,
    /// The newest revision of each repository, `repo@rev`.
    pub revisions: Vec<String>,
    /// What each live node runs.
    pub configs: Vec<NodeConfigRow>,
}

/// Converts the core's instants to wall-clock milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    wall_ms: u64,
}

impl Clock {
    /// The pair taken now.
    pub fn now() -> Clock {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Clock { instant: tokio::time::Instant::now().into_std(), wall_ms }
    }

    /// `at` in ms since the epoch.
    pub fn wall(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.wall_ms.saturating_add(after.as_millis() as u64),
            None => self.wall_ms.saturating_sub(self.instant.duration_since(at).as_millis() as u64),
        }
    }
}

fn cut(body: &str) -> String {
    if body.len() <= MAX_BODY {
        return body.to_owned();
    }
    let mut end = MAX_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

fn listed(revisions: &eccluster_proto::revisions::Revisions) -> String {
    revisions.iter().map(|(repo, rev)| format!("{repo}@{rev}")).collect::<Vec<_>>().join(", ")
}

impl Snapshot {
    /// The snapshot of `node`'s state.
    pub fn of(node: &Node, clock: &Clock) -> Snapshot {
        let members = node
            .members()
            .into_iter()
            .map(|m| MemberRow {
                name: m.id.name.clone(),
                subcluster: m.id.subcluster.clone(),
                role: m.id.role.to_string(),
                address: m.id.addr.to_string(),
                state: m.state.as_str().to_owned(),
                since: m.since.map(|at| clock.wall(at)),
                incarnation: m.id.incarnation,
            })
            .collect();
        // The page leaves out how long ago each state was reported, so that an unchanged
        // cluster gives an equal snapshot.
        let mut holders = crate::commands::holders::rows(node, clock.instant).unwrap_or_default().into_iter();
        let duravip = node
            .bindings()
            .values()
            .map(|b| {
                let reported = holders.next().filter(|r| r.address == b.addr.to_string());
                VipRow {
                    address: b.addr.to_string(),
                    binding: b.name.clone(),
                    candidates: b.candidates.clone(),
                    preferred: b.preference.clone(),
                    owner: reported.as_ref().and_then(|r| r.holder.clone()),
                    conflict: reported.as_ref().is_some_and(|r| r.conflict),
                    holders: reported
                        .map(|r| r.holders)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|h| VipHolder { name: h.name, state: h.state.to_owned(), term: h.term })
                        .collect(),
                }
            })
            .collect();
        let (operations, sequenced) = match node.sequencer() {
            Some(seq) => (
                seq.results()
                    .latest(LATEST_COMMANDS)
                    .into_iter()
                    .map(|c| OperationRow {
                        op: c.id.to_string(),
                        command: c.command.to_owned(),
                        answers: c
                            .nodes
                            .iter()
                            .map(|(name, r)| AnswerRow {
                                node: (*name).to_owned(),
                                status: r.status.as_str().to_owned(),
                                body: cut(&r.body),
                                op: r.id.to_string(),
                            })
                            .collect(),
                    })
                    .collect(),
                seq.results().latest(1).first().map_or(0, |c| c.id.seq),
            ),
            None => (Vec::new(), 0),
        };
        let (revisions, configs) = match node.config_publisher() {
            Some(p) => (
                p.newest().iter().map(|(repo, rev)| format!("{repo}@{rev}")).collect(),
                p.nodes()
                    .iter()
                    .map(|(name, n)| NodeConfigRow {
                        node: name.clone(),
                        running: listed(&n.running),
                        current: eccluster_proto::revisions::covers(&n.running, &p.newest_for(n)),
                        error: n.error.clone(),
                    })
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Snapshot { manager: node.identity().name.clone(), members, duravip, operations, sequenced, revisions, configs }
    }
}

/// The daemon loop's side: builds a snapshot every [`Publisher::EVERY`] and sends it when it
/// differs from the last one sent.
pub struct Publisher {
    clock: Clock,
    tx: watch::Sender<Arc<Snapshot>>,
    interval: tokio::time::Interval,
}

impl Publisher {
    /// How often the core is looked at.
    pub const EVERY: Duration = Duration::from_millis(250);

    /// A publisher and the receiving side for the page server.
    pub fn new() -> (Publisher, watch::Receiver<Arc<Snapshot>>) {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let mut interval = tokio::time::interval(Self::EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        (Publisher { clock: Clock::now(), tx, interval }, rx)
    }

    /// Completes when the next look is due.
    pub async fn tick(&mut self) {
        self.interval.tick().await;
    }

    /// Sends `node`'s snapshot if it changed.
    pub fn publish(&mut self, node: &Node) {
        let snapshot = Snapshot::of(node, &self.clock);
        let changed = self.tx.send_if_modified(|current| {
            if **current == snapshot {
                return false;
            }
            *current = Arc::new(snapshot);
            true
        });
        if changed {
            tracing::debug!("cluster page: the snapshot changed");
        }
    }
}
