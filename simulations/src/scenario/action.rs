//! The timeline actions of a scenario file, as written (`action = "partition"`, ...), and
//! their checked form [`Action`] with durations parsed. Selectors stay names here; they are
//! checked against the topology by [`super::Scenario::validate`] and resolved when a step runs.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{duration_field, LinkFile, Selector};
use crate::network::LinkPatch;

/// An action without arguments (`heal`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartitionArgs {
    groups: Vec<Selector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OneWayArgs {
    from: Selector,
    to: Selector,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IsolateArgs {
    node: Selector,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PickArgs {
    node: Option<Selector>,
    count: Option<usize>,
    among: Option<Selector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetLossArgs {
    loss: f64,
    between: Option<[Selector; 2]>,
    from: Option<Selector>,
    to: Option<Selector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetLatencyArgs {
    latency: String,
    jitter: Option<String>,
    between: Option<[Selector; 2]>,
    from: Option<Selector>,
    to: Option<Selector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClockArgs {
    node: Selector,
    rate: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollingArgs {
    among: Option<Selector>,
    interval: String,
    down_for: String,
    graceful: Option<bool>,
}

/// `"10s"` or `["5s", "20s"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a duration such as \"10s\" or a range such as [\"5s\", \"20s\"]")]
pub(crate) enum DurationRange {
    One(String),
    Range([String; 2]),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChurnArgs {
    among: Option<Selector>,
    every: String,
    #[serde(rename = "for")]
    period: String,
    down_for: DurationRange,
    graceful: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitArgs {
    #[serde(rename = "for")]
    period: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssertMembersArgs {
    node: Option<Selector>,
    up: usize,
    within: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssertConvergedArgs {
    within: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigCommitArgs {
    repo: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssertSeenArgs {
    member: String,
    by: Option<Selector>,
    within: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BroadcastArgs {
    command: String,
    subcluster: Option<String>,
    node: Option<String>,
    every: Option<String>,
    #[serde(rename = "for")]
    period: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssertHoldersArgs {
    addr: Option<String>,
    among: Option<Selector>,
    count: usize,
    within: Option<String>,
}

/// One timeline entry as written, without its `at`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum ActionFile {
    Partition(PartitionArgs),
    OneWayPartition(OneWayArgs),
    Isolate(IsolateArgs),
    Heal(NoArgs),
    Crash(PickArgs),
    Restart(PickArgs),
    Leave(PickArgs),
    SetLoss(SetLossArgs),
    SetLatency(SetLatencyArgs),
    SetNetwork(LinkFile),
    SetClockRate(ClockArgs),
    RollingRestart(RollingArgs),
    Churn(ChurnArgs),
    Wait(WaitArgs),
    AssertMembers(AssertMembersArgs),
    AssertConverged(AssertConvergedArgs),
    AssertDown(AssertSeenArgs),
    AssertUp(AssertSeenArgs),
    Broadcast(BroadcastArgs),
    AssertHolders(AssertHoldersArgs),
    AssertManagerView(AssertConvergedArgs),
    DiskFull(IsolateArgs),
    DiskFree(IsolateArgs),
    ConfigCommit(ConfigCommitArgs),
    AssertConfig(AssertConvergedArgs),
    ConfigServerDown(NoArgs),
    ConfigServerUp(NoArgs),
}

/// Which nodes a `crash`, `restart` or `leave` acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Pick {
    /// Exactly these nodes.
    Nodes(Selector),
    /// `count` nodes chosen at random (with the simulation's RNG) among `among` (default: all)
    /// that are in the right state (running for crash and leave, stopped for restart).
    Random {
        /// How many.
        count: usize,
        /// Candidates.
        among: Option<Selector>,
    },
    /// Every node in the right state (`restart` with no argument: every stopped node).
    All,
}

/// Which directed links a network change applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Links {
    /// Every link.
    All,
    /// Both directions between two groups.
    Between(Selector, Selector),
    /// One direction.
    Directed(Selector, Selector),
}

/// Where a `broadcast` step sends its command (through the manager's sequencer).
#[derive(Debug, Clone, PartialEq)]
pub enum OpsTarget {
    /// Every live node (`broadcast`).
    Cluster,
    /// Every live node of a subcluster (`subcluster broadcast NAME`).
    Subcluster(String),
    /// One node (`unicast NAME`).
    Node(String),
}

/// A checked timeline action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Cut every link between nodes of different groups.
    Partition(Vec<Selector>),
    /// Cut the links from one group to another only.
    OneWayPartition(Selector, Selector),
    /// Cut every link between these nodes and everyone else.
    Isolate(Selector),
    /// Remove every cut.
    Heal,
    /// Kill nodes without warning.
    Crash(Pick),
    /// Start stopped nodes again, or restart running ones, with a higher incarnation.
    Restart(Pick),
    /// Leave gracefully (`Membership::leave`), then stop.
    Leave(Pick),
    /// Change link parameters.
    SetNetwork(Links, LinkPatch),
    /// Make these nodes' timers run at `rate` (1.0 is true time).
    SetClockRate(Selector, f64),
    /// These hosts' disks fill up (`true`: every journal write and fsync fails, as with
    /// ENOSPC) or have room again (`false`). Needs `[disk] fsync`.
    SetDiskFull(Selector, bool),
    /// Stop and start nodes one after another.
    RollingRestart {
        /// Which nodes, in topology order (default: all).
        among: Option<Selector>,
        /// Between two nodes' stops.
        interval: Duration,
        /// How long each node stays down.
        down_for: Duration,
        /// Leave gracefully (true) or crash.
        graceful: bool,
    },
    /// Random crashes for a while, each node restarting after a random time.
    Churn {
        /// Candidates (default: all).
        among: Option<Selector>,
        /// Mean time between crashes (exponentially distributed).
        every: Duration,
        /// How long the churn lasts.
        period: Duration,
        /// Each crashed node restarts after a time drawn uniformly from this range.
        down_for: (Duration, Duration),
        /// Leave gracefully instead of crashing.
        graceful: bool,
    },
    /// Nothing; moves the time of the following steps.
    Wait(Duration),
    /// Every running node of the selector sees exactly `up` members up (itself included).
    AssertMembers {
        /// Whose view (default: all).
        node: Option<Selector>,
        /// Members seen up, the node itself included.
        up: usize,
        /// How long it may take.
        within: Option<Duration>,
    },
    /// Every running node sees exactly the running nodes it can reach as up.
    /// A commit to configuration repository `repo` (its next revision), told to the running
    /// manager as the configuration server tells it. Nodes follow `global` and their
    /// subcluster's repository.
    ConfigCommit(String),
    /// The configuration server stops answering (`true`) or answers again: pulls that end
    /// while it is down fail, and the nodes retry, backing off.
    ConfigServerDown(bool),
    /// Every running node runs the newest revision of every repository committed to.
    AssertConfig {
        /// How long it may take.
        within: Option<Duration>,
    },
    AssertConverged {
        /// How long it may take.
        within: Option<Duration>,
    },
    /// No running node of `by` (default: all others) sees `member` up.
    AssertDown {
        /// The member.
        member: String,
        /// Whose view.
        by: Option<Selector>,
        /// How long it may take.
        within: Option<Duration>,
    },
    /// Every running node of `by` (default: all others) sees `member` up.
    AssertUp {
        /// The member.
        member: String,
        /// Whose view.
        by: Option<Selector>,
        /// How long it may take.
        within: Option<Duration>,
    },    /// The manager sequences `command` as an ordered operation for `target`; with `repeat`
    /// (every, for) it does so again every `every` for `for`.
    Broadcast {
        /// The console command the nodes run.
        command: String,
        /// Its targets.
        target: OpsTarget,
        /// `(every, for)`.
        repeat: Option<(Duration, Duration)>,
    },
    /// The running manager's view of who holds each bound address (what the nodes reported
    /// to it) names exactly the running nodes that hold it.
    AssertManagerView {
        /// How long it may take.
        within: Option<Duration>,
    },
    /// Exactly `count` running nodes of `among` (default all) hold `addr` (default: each
    /// bound address).
    AssertHolders {
        /// The address, or every binding's.
        addr: Option<IpAddr>,
        /// Whose holdings count.
        among: Option<Selector>,
        /// Expected holders.
        count: usize,
        /// How long it may take.
        within: Option<Duration>,
    },
}

impl Action {
    /// The action's name as written in files.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Partition(_) => "partition",
            Action::OneWayPartition(..) => "one_way_partition",
            Action::Isolate(_) => "isolate",
            Action::Heal => "heal",
            Action::Crash(_) => "crash",
            Action::Restart(_) => "restart",
            Action::Leave(_) => "leave",
            Action::SetNetwork(..) => "set_network",
            Action::SetClockRate(..) => "set_clock_rate",
            Action::SetDiskFull(_, true) => "disk_full",
            Action::SetDiskFull(_, false) => "disk_free",
            Action::RollingRestart { .. } => "rolling_restart",
            Action::Churn { .. } => "churn",
            Action::Wait(_) => "wait",
            Action::AssertMembers { .. } => "assert_members",
            Action::AssertConverged { .. } => "assert_converged",
            Action::ConfigCommit(_) => "config_commit",
            Action::AssertConfig { .. } => "assert_config",
            Action::ConfigServerDown(true) => "config_server_down",
            Action::ConfigServerDown(false) => "config_server_up",
            Action::AssertDown { .. } => "assert_down",
            Action::AssertUp { .. } => "assert_up",
            Action::Broadcast { .. } => "broadcast",
            Action::AssertHolders { .. } => "assert_holders",
            Action::AssertManagerView { .. } => "assert_manager_view",
        }
    }

    /// How long after its start the action may still be doing something (for the default end).
    pub fn extent(&self, nodes: usize) -> Duration {
        match self {
            Action::RollingRestart { interval, down_for, .. } => {
                interval.saturating_mul(u32::try_from(nodes).unwrap_or(u32::MAX)) + *down_for
            }
            Action::Churn { period, down_for, .. } => *period + down_for.1,
            Action::AssertMembers { within, .. }
            | Action::AssertConverged { within }
            | Action::AssertConfig { within }
            | Action::AssertManagerView { within }
            | Action::AssertDown { within, .. }
            | Action::AssertUp { within, .. }
            | Action::AssertHolders { within, .. } => within.unwrap_or_default(),
            Action::Broadcast { repeat, .. } => repeat.map(|(_, period)| period).unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    /// Every selector the action uses, with the field it came from.
    pub fn selectors(&self) -> Vec<(&'static str, &Selector)> {
        let mut out = Vec::new();
        match self {
            Action::Partition(groups) => out.extend(groups.iter().map(|g| ("groups", g))),
            Action::OneWayPartition(from, to) => out.extend([("from", from), ("to", to)]),
            Action::Isolate(node) | Action::SetClockRate(node, _) | Action::SetDiskFull(node, _) => out.push(("node", node)),
            Action::Crash(pick) | Action::Restart(pick) | Action::Leave(pick) => match pick {
                Pick::Nodes(s) => out.push(("node", s)),
                Pick::Random { among: Some(s), .. } => out.push(("among", s)),
                _ => {}
            },
            Action::SetNetwork(Links::Between(a, b), _) => out.extend([("between", a), ("between", b)]),
            Action::SetNetwork(Links::Directed(a, b), _) => out.extend([("from", a), ("to", b)]),
            Action::RollingRestart { among: Some(s), .. } | Action::Churn { among: Some(s), .. } => {
                out.push(("among", s))
            }
            Action::AssertMembers { node: Some(s), .. } => out.push(("node", s)),
            Action::AssertDown { by: Some(s), .. } | Action::AssertUp { by: Some(s), .. } => out.push(("by", s)),
            Action::AssertHolders { among: Some(s), .. } => out.push(("among", s)),
            _ => {}
        }
        out
    }
}

fn links(
    between: Option<[Selector; 2]>,
    from: Option<Selector>,
    to: Option<Selector>,
) -> Result<Links, String> {
    match (between, from, to) {
        (None, None, None) => Ok(Links::All),
        (Some([a, b]), None, None) => Ok(Links::Between(a, b)),
        (None, Some(from), Some(to)) => Ok(Links::Directed(from, to)),
        (None, Some(_), None) => Err("`from` needs `to`".into()),
        (None, None, Some(_)) => Err("`to` needs `from`".into()),
        _ => Err("give either `between = [A, B]` or `from` and `to`, not both".into()),
    }
}

fn pick(args: PickArgs) -> Result<Pick, String> {
    match (args.node, args.count, args.among) {
        (Some(node), None, None) => Ok(Pick::Nodes(node)),
        (None, Some(0), _) => Err("`count` must be at least 1".into()),
        (None, Some(count), among) => Ok(Pick::Random { count, among }),
        (None, None, None) => Ok(Pick::All),
        (None, None, Some(_)) => Err("`among` needs `count`".into()),
        (Some(_), _, _) => Err("give either `node` or `count` (with optional `among`), not both".into()),
    }
}

fn probability(field: &str, p: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("`{field}` must be a probability between 0 and 1, not {p}"))
    }
}

fn optional_duration(field: &str, text: Option<String>) -> Result<Option<Duration>, String> {
    text.map(|t| duration_field(field, &t)).transpose()
}

/// Checks a link section (`[[network.links]]` or `set_network`) into its links and patch.
pub(crate) fn link_file(file: LinkFile) -> Result<(Links, LinkPatch), String> {
    let patch = LinkPatch {
        latency: optional_duration("latency", file.latency)?,
        jitter: optional_duration("jitter", file.jitter)?,
        loss: file.loss.map(|p| probability("loss", p)).transpose()?,
        duplicate: file.duplicate.map(|p| probability("duplicate", p)).transpose()?,
        reorder: file.reorder.map(|p| probability("reorder", p)).transpose()?,
        reorder_delay: optional_duration("reorder_delay", file.reorder_delay)?,
    };
    Ok((links(file.between, file.from, file.to)?, patch))
}

impl ActionFile {
    /// Checks the arguments: parses durations, checks ranges and combinations.
    pub(crate) fn check(self) -> Result<Action, String> {
        Ok(match self {
            ActionFile::Partition(a) => {
                if a.groups.len() < 2 {
                    return Err("`groups` needs at least two groups, e.g. groups = [\"east\", \"west\"]".into());
                }
                Action::Partition(a.groups)
            }
            ActionFile::OneWayPartition(a) => Action::OneWayPartition(a.from, a.to),
            ActionFile::Isolate(a) => Action::Isolate(a.node),
            ActionFile::Heal(NoArgs {}) => Action::Heal,
            ActionFile::DiskFull(a) => Action::SetDiskFull(a.node, true),
            ActionFile::DiskFree(a) => Action::SetDiskFull(a.node, false),
            ActionFile::Crash(a) => Action::Crash(pick(a)?),
            ActionFile::Restart(a) => Action::Restart(pick(a)?),
            ActionFile::Leave(a) => Action::Leave(pick(a)?),
            ActionFile::SetLoss(a) => {
                let patch = LinkPatch { loss: Some(probability("loss", a.loss)?), ..LinkPatch::default() };
                Action::SetNetwork(links(a.between, a.from, a.to)?, patch)
            }
            ActionFile::SetLatency(a) => {
                let patch = LinkPatch {
                    latency: Some(duration_field("latency", &a.latency)?),
                    jitter: optional_duration("jitter", a.jitter)?,
                    ..LinkPatch::default()
                };
                Action::SetNetwork(links(a.between, a.from, a.to)?, patch)
            }
            ActionFile::SetNetwork(file) => {
                let (links, patch) = link_file(file)?;
                Action::SetNetwork(links, patch)
            }
            ActionFile::SetClockRate(a) => {
                if !(a.rate.is_finite() && a.rate >= 0.01 && a.rate <= 100.0) {
                    return Err(format!("`rate` must be between 0.01 and 100, not {}", a.rate));
                }
                Action::SetClockRate(a.node, a.rate)
            }
            ActionFile::RollingRestart(a) => Action::RollingRestart {
                among: a.among,
                interval: duration_field("interval", &a.interval)?,
                down_for: duration_field("down_for", &a.down_for)?,
                graceful: a.graceful.unwrap_or(true),
            },
            ActionFile::Churn(a) => {
                let every = duration_field("every", &a.every)?;
                if every.is_zero() {
                    return Err("`every` must be more than 0".into());
                }
                let down_for = match a.down_for {
                    DurationRange::One(d) => {
                        let d = duration_field("down_for", &d)?;
                        (d, d)
                    }
                    DurationRange::Range([lo, hi]) => {
                        let (lo, hi) = (duration_field("down_for", &lo)?, duration_field("down_for", &hi)?);
                        if lo > hi {
                            return Err("`down_for` range must be [shortest, longest]".into());
                        }
                        (lo, hi)
                    }
                };
                Action::Churn {
                    among: a.among,
                    every,
                    period: duration_field("for", &a.period)?,
                    down_for,
                    graceful: a.graceful.unwrap_or(false),
                }
            }
            ActionFile::Wait(a) => Action::Wait(duration_field("for", &a.period)?),
            ActionFile::AssertMembers(a) => Action::AssertMembers {
                node: a.node,
                up: a.up,
                within: optional_duration("within", a.within)?,
            },
            ActionFile::ConfigCommit(a) => {
                if a.repo.is_empty() || a.repo.len() > eccluster_proto::revisions::MAX_NAME {
                    return Err(format!("`repo` must be 1 to {} bytes", eccluster_proto::revisions::MAX_NAME));
                }
                Action::ConfigCommit(a.repo)
            }
            ActionFile::AssertConfig(a) => Action::AssertConfig { within: optional_duration("within", a.within)? },
            ActionFile::AssertManagerView(a) => Action::AssertManagerView { within: optional_duration("within", a.within)? },
            ActionFile::ConfigServerDown(NoArgs {}) => Action::ConfigServerDown(true),
            ActionFile::ConfigServerUp(NoArgs {}) => Action::ConfigServerDown(false),
            ActionFile::AssertConverged(a) => {
                Action::AssertConverged { within: optional_duration("within", a.within)? }
            }
            ActionFile::AssertDown(a) => Action::AssertDown {
                member: a.member,
                by: a.by,
                within: optional_duration("within", a.within)?,
            },
            ActionFile::AssertUp(a) => Action::AssertUp {
                member: a.member,
                by: a.by,
                within: optional_duration("within", a.within)?,
            },
            ActionFile::Broadcast(a) => {
                if a.command.trim().is_empty() {
                    return Err("`command` is empty".into());
                }
                let target = match (a.subcluster, a.node) {
                    (None, None) => OpsTarget::Cluster,
                    (Some(s), None) => OpsTarget::Subcluster(s.to_ascii_lowercase()),
                    (None, Some(n)) => OpsTarget::Node(n.to_ascii_lowercase()),
                    (Some(_), Some(_)) => return Err("give `subcluster` or `node`, not both".into()),
                };
                let repeat = match (optional_duration("every", a.every)?, optional_duration("for", a.period)?) {
                    (None, None) => None,
                    (Some(every), Some(period)) if !every.is_zero() => Some((every, period)),
                    (Some(_), Some(_)) => return Err("`every` must be more than 0".into()),
                    _ => return Err("`every` and `for` go together".into()),
                };
                Action::Broadcast { command: a.command.trim().to_string(), target, repeat }
            }
            ActionFile::AssertHolders(a) => Action::AssertHolders {
                addr: a
                    .addr
                    .map(|t| t.parse::<IpAddr>().map_err(|_| format!("`addr`: {t:?} is not an IP address")))
                    .transpose()?,
                among: a.among,
                count: a.count,
                within: optional_duration("within", a.within)?,
            },
        })
    }
}
