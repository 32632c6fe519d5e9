//! Scenario files: TOML describing a topology, network defaults, membership tuning, invariant
//! bounds and a timeline of actions and assertions. Parsed once, at the edge, into
//! [`Scenario`]; every error names the file and what is wrong ([`ScenarioError`]).
//!
//! ```toml
//! name = "partition-east-west"
//! duration = "120s"
//! [topology]
//! segments = "segments/two-dc.conf"      # or: nodes = 32, subclusters = ["east", "west"]
//! [network]
//! latency = "1ms"
//! jitter = "1ms"
//! [[network.links]]
//! between = ["east", "west"]
//! latency = "30ms"
//! [invariants]
//! false_down_bound = "30s"
//! [[timeline]]
//! at = "30s"
//! action = "partition"
//! groups = ["east", "west"]
//! ```
//!
//! A step's `at` is absolute (`"30s"`) or relative to the previous step (`"+10s"`); without
//! `at` a step runs when the previous one did, after any `wait`. Steps are written in time
//! order: an absolute `at` earlier than the step before it is an error. Selectors name a host,
//! a subcluster, `managers` or `all`, or are a list of those.

mod action;
mod duravip;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::net::IpAddr;

use eccluster_proto::duravip::{Binding, DuraVipConfig, Policy};
use eccluster_proto::membership::MembershipConfig;
use eccluster_proto::Role;
use serde::Deserialize;

pub use self::action::{Action, Links, OpsTarget, Pick};
use crate::network::{LinkParams, LinkPatch};
use crate::time::{parse_duration, SimTime};
use crate::topology::Topology;

/// A scenario file that cannot be run as written. Nothing has run when this is returned.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// What is wrong and where.
    pub message: String,
}

impl ScenarioError {
    /// An error about `file`.
    pub fn new(file: &Path, message: impl Into<String>) -> ScenarioError {
        ScenarioError { file: file.display().to_string(), message: message.into() }
    }
}

/// One selector or a list of them: `"east"` or `["east1", "east2"]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, expecting = "a host or subcluster name, `all`, `managers`, or a list of them")]
pub enum Selector {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl Selector {
    /// The names, in order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Selector::One(s) => vec![s.as_str()],
            Selector::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }

    /// The node indices named, in topology order without repeats, or the first unknown name.
    pub fn resolve(&self, topology: &Topology) -> Result<Vec<usize>, String> {
        let mut out = Vec::new();
        for name in self.names() {
            let found = topology.resolve(name).ok_or_else(|| name.to_string())?;
            out.extend(found);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().join("+"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    duration: Option<String>,
    sample_every: Option<String>,
    topology: TopologyFile,
    #[serde(default)]
    network: NetworkFile,
    #[serde(default)]
    membership: MembershipFile,
    #[serde(default)]
    invariants: InvariantsFile,
    #[serde(default)]
    disk: DiskFile,
    duravip: Option<DuraVipFile>,
    #[serde(default)]
    timeline: Vec<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DuraVipFile {
    policy: Option<String>,
    settle: Option<String>,
    beat: Option<String>,
    lease: Option<String>,
    claim_silence: Option<String>,
    #[serde(default)]
    bindings: Vec<BindingFile>,
    #[serde(default)]
    ranges: Vec<RangeFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingFile {
    addr: String,
    name: Option<String>,
    candidates: Option<Selector>,
    preference: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeFile {
    network: String,
    count: usize,
    candidates: Option<Selector>,
}

/// One DuraVIP binding of a scenario; candidates are resolved against the topology.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingSpec {
    /// Binding name.
    pub name: String,
    /// The virtual address.
    pub addr: IpAddr,
    /// Who may hold it (default: every node).
    pub candidates: Option<Selector>,
    /// `Duravip_Preference`.
    pub preference: Option<String>,
}

/// The `[duravip]` section: every node runs a DuraVIP core with these bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct DuraVipSpec {
    /// Partition policy.
    pub policy: Policy,
    /// Timing overrides of `DuraVipConfig` (settle, beat, lease, claim_silence).
    pub timing: [Option<Duration>; 4],
    /// The bindings, in file order (explicit ones, then ranges).
    pub bindings: Vec<BindingSpec>,
}

impl DuraVipSpec {
    /// The core configuration and bindings for `topology` (selectors already validated).
    pub fn resolve(&self, topology: &Topology) -> (Vec<Binding>, DuraVipConfig) {
        let mut config = DuraVipConfig { policy: self.policy, ..DuraVipConfig::default() };
        let [settle, beat, lease, claim_silence] = self.timing;
        if let Some(d) = settle {
            config.settle = d;
        }
        if let Some(d) = beat {
            config.beat = d;
        }
        if let Some(d) = lease {
            config.lease = d;
        }
        if let Some(d) = claim_silence {
            config.claim_silence = d;
        }
        let bindings = self
            .bindings
            .iter()
            .map(|b| Binding {
                name: b.name.clone(),
                addr: b.addr,
                candidates: match &b.candidates {
                    Some(sel) => sel.resolve(topology).unwrap_or_default(),
                    None => (0..topology.len()).collect(),
                }
                .into_iter()
                .filter(|&i| topology.host(i).role == Role::Node)
                .map(|i| topology.name(i).to_string())
                .collect(),
                preference: b.preference.as_ref().map(|p| p.to_ascii_lowercase()),
            })
            .collect();
        (bindings, config)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyFile {
    segments: Option<String>,
    nodes: Option<usize>,
    subclusters: Option<Vec<String>>,
    boot_spread: Option<String>,
    clock_drift: Option<f64>,
    start: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    latency: Option<String>,
    jitter: Option<String>,
    loss: Option<f64>,
    duplicate: Option<f64>,
    reorder: Option<f64>,
    reorder_delay: Option<String>,
    #[serde(default)]
    links: Vec<LinkFile>,
}

/// A `[[network.links]]` entry or the arguments of `set_network`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkFile {
    between: Option<[Selector; 2]>,
    from: Option<Selector>,
    to: Option<Selector>,
    latency: Option<String>,
    jitter: Option<String>,
    loss: Option<f64>,
    duplicate: Option<f64>,
    reorder: Option<f64>,
    reorder_delay: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipFile {
    preset_size: Option<usize>,
    probe_period: Option<String>,
    probe_rtt: Option<String>,
    indirect_probes: Option<usize>,
    suspect_to_down_after: Option<String>,
    max_transmissions: Option<u8>,
    gossip_period: Option<String>,
    gossip_fanout: Option<usize>,
    rejoin_period: Option<String>,
    announce_period: Option<String>,
    announce_down_period: Option<String>,
    remember_down_for: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskFile {
    fsync: Option<String>,
}

/// The managers' disk, as their journal sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskModel {
    /// How long one fsync takes (`[disk] fsync`). The journal is then group-committed as the
    /// daemon does it ([`crate::group_commit`]); `None`: every write is durable at once.
    pub fsync: Option<Duration>,
    /// A shell that breaks the durability rule: console replies (acknowledgements) go out
    /// at once instead of waiting for the fsync, the rest still waits. No scenario file sets
    /// this; tests do, to show that the invariants catch what the rule prevents.
    pub replies_before_sync: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvariantsFile {
    false_down_bound: Option<String>,
    false_down_window: Option<String>,
    max_false_downs: Option<u64>,
}

/// Where the hosts come from.
#[derive(Debug, Clone, PartialEq)]
pub enum TopologySource {
    /// A segment file (path as found on disk).
    Segments(PathBuf),
    /// `nodes` hosts spread evenly over `subclusters` (the first ones get the remainder).
    Generated {
        /// Host count.
        nodes: usize,
        /// Subcluster names.
        subclusters: Vec<String>,
    },
}

/// Membership tuning: `MembershipConfig::lan(preset_size or host count)` with overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MembershipTuning {
    preset_size: Option<usize>,
    durations: Vec<(&'static str, Duration)>,
    indirect_probes: Option<usize>,
    max_transmissions: Option<u8>,
    gossip_fanout: Option<usize>,
}

impl MembershipTuning {
    /// The configuration every node of an `n`-host cluster runs with.
    pub fn config(&self, n: usize) -> MembershipConfig {
        let mut c = MembershipConfig::lan(self.preset_size.unwrap_or(n));
        for &(field, d) in &self.durations {
            match field {
                "probe_period" => c.probe_period = d,
                "probe_rtt" => c.probe_rtt = d,
                "suspect_to_down_after" => c.suspect_to_down_after = d,
                "gossip_period" => c.gossip_period = d,
                "rejoin_period" => c.rejoin_period = d,
                "announce_period" => c.announce_period = d,
                "announce_down_period" => c.announce_down_period = d,
                _ => c.remember_down_for = d,
            }
        }
        if let Some(v) = self.indirect_probes.and_then(std::num::NonZeroUsize::new) {
            c.indirect_probes = v;
        }
        if let Some(v) = self.gossip_fanout.and_then(std::num::NonZeroUsize::new) {
            c.gossip_fanout = v;
        }
        if let Some(v) = self.max_transmissions.and_then(std::num::NonZeroU8::new) {
            c.max_transmissions = v;
        }
        c
    }
}

/// Bounds of the invariants checked after every event.
#[derive(Debug, Clone, PartialEq)]
pub struct InvariantLimits {
    /// No running member may believe a running, reachable member down for longer than this.
    pub false_down_bound: Duration,
    /// A down declaration counts as false only if the two could reach each other throughout
    /// this window before it (default: probe period + probe rtt + suspicion time).
    pub false_down_window: Option<Duration>,
    /// Fail as soon as more false downs than this have happened.
    pub max_false_downs: Option<u64>,
}

/// One timeline step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position in the file's timeline, from 0.
    pub index: usize,
    /// When it runs.
    pub at: Duration,
    /// What it does.
    pub action: Action,
}

/// A parsed scenario file. Selectors are checked against a topology by [`Scenario::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Its name (default: the file stem).
    pub name: String,
    /// What it rehearses.
    pub description: String,
    /// The seed the file pins, if any.
    pub seed: Option<u64>,
    /// Simulated time to run (default: after the last step's extent, plus 5 s).
    pub duration: Option<Duration>,
    /// Interval of the plotted series (default: duration / 600, at least 100 ms).
    pub sample_every: Option<Duration>,
    /// The hosts.
    pub topology: TopologySource,
    /// Nodes start at random times within this window (default: all at 0).
    pub boot_spread: Duration,
    /// Each node's clock runs at a rate drawn uniformly from `1 ± clock_drift`.
    pub clock_drift: f64,
    /// `start = "seeded"`: every node boots at 0 with every other already in its member table
    /// (the state a formed cluster reaches), instead of forming the cluster by gossip.
    pub seeded: bool,
    /// Link parameters of every link at start.
    pub network: LinkParams,
    /// Link overrides at start, in order.
    pub links: Vec<(Links, LinkPatch)>,
    /// Membership tuning.
    pub membership: MembershipTuning,
    /// Invariant bounds.
    pub invariants: InvariantLimits,
    /// The managers' disk.
    pub disk: DiskModel,
    /// DuraVIP bindings, if the scenario runs DuraVIP.
    pub duravip: Option<DuraVipSpec>,
    /// The timeline, in file order, which is time order (equal times keep file order).
    pub steps: Vec<Step>,
}

fn in_section<T>(path: &Path, section: &str, r: Result<T, String>) -> Result<T, ScenarioError> {
    r.map_err(|m| ScenarioError::new(path, format!("[{section}] {m}")))
}

pub(crate) fn duration_field(field: &str, text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| format!("`{field}`: {e}"))
}

fn opt_duration(field: &str, text: &Option<String>) -> Result<Option<Duration>, String> {
    text.as_deref().map(|t| duration_field(field, t)).transpose()
}

impl Scenario {
    /// Reads and parses `path`. A relative segment path is looked up from the scenario's
    /// directory upwards (so `segments/two-dc.conf` finds the repository's), then from the
    /// current directory.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::new(path, format!("cannot read the scenario file: {e}")))?;
        Scenario::parse(path, &text)
    }

    /// Parses the text of a scenario file; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let err = |m: String| ScenarioError::new(path, m);
        let file: ScenarioFile = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        let topology = match (&file.topology.segments, file.topology.nodes, &file.topology.subclusters) {
            (Some(seg), None, None) => TopologySource::Segments(find_segments(path, seg).map_err(err)?),
            (None, Some(nodes), subclusters) => {
                let subclusters: Vec<String> = match subclusters {
                    Some(names) => names.iter().map(|n| n.trim().to_ascii_lowercase()).collect(),
                    None => vec!["east".into(), "west".into()],
                };
                if subclusters.iter().any(|n| n.is_empty() || n.contains(char::is_whitespace)) {
                    return Err(err("[topology] `subclusters` names must be single words".into()));
                }
                if subclusters.is_empty() {
                    return Err(err("[topology] `subclusters` must name at least one subcluster".into()));
                }
                let mut seen = subclusters.clone();
                seen.sort();
                seen.dedup();
                if seen.len() != subclusters.len() {
                    return Err(err("[topology] `subclusters` has a name twice".into()));
                }
                TopologySource::Generated { nodes, subclusters }
            }
            (Some(_), _, _) => {
                return Err(err("[topology] give either `segments` or `nodes` (with `subclusters`), not both".into()))
            }
            (None, None, _) => {
                return Err(err("[topology] needs `segments = \"FILE\"` or `nodes = N` (with optional `subclusters`)".into()))
            }
        };
        let clock_drift = file.topology.clock_drift.unwrap_or(0.0);
        if !(0.0..0.5).contains(&clock_drift) {
            return Err(err(format!("[topology] `clock_drift` must be in 0 ..< 0.5, not {clock_drift}")));
        }
        let boot_spread = in_section(path, "topology", opt_duration("boot_spread", &file.topology.boot_spread))?;
        let seeded = match file.topology.start.as_deref() {
            None | Some("cold") => false,
            Some("seeded") if boot_spread.is_some_and(|b| !b.is_zero()) => {
                return Err(err("[topology] `start = \"seeded\"` boots every node at 0: drop `boot_spread`".into()))
            }
            Some("seeded") => true,
            Some(other) => return Err(err(format!("[topology] `start` is \"cold\" or \"seeded\", not \"{other}\""))),
        };

        let n = &file.network;
        let base = LinkFile {
            latency: n.latency.clone(),
            jitter: n.jitter.clone(),
            loss: n.loss,
            duplicate: n.duplicate,
            reorder: n.reorder,
            reorder_delay: n.reorder_delay.clone(),
            ..LinkFile::default()
        };
        let (_, base_patch) = in_section(path, "network", action::link_file(base))?;
        let mut network = LinkParams::default();
        base_patch.apply(&mut network);
        let mut links = Vec::new();
        for (i, link) in file.network.links.into_iter().enumerate() {
            let checked = in_section(path, &format!("network.links[{i}]"), action::link_file(link))?;
            if checked.0 == Links::All {
                return Err(err(format!("[network.links[{i}]] needs `between = [A, B]` or `from` and `to`")));
            }
            links.push(checked);
        }

        let m = &file.membership;
        let mut durations = Vec::new();
        for (field, value) in [
            ("probe_period", &m.probe_period),
            ("probe_rtt", &m.probe_rtt),
            ("suspect_to_down_after", &m.suspect_to_down_after),
            ("gossip_period", &m.gossip_period),
            ("rejoin_period", &m.rejoin_period),
            ("announce_period", &m.announce_period),
            ("announce_down_period", &m.announce_down_period),
            ("remember_down_for", &m.remember_down_for),
        ] {
            if let Some(d) = in_section(path, "membership", opt_duration(field, value))? {
                if d.is_zero() {
                    return Err(err(format!("[membership] `{field}` must be more than 0")));
                }
                durations.push((field, d));
            }
        }
        let membership = MembershipTuning {
            preset_size: m.preset_size,
            durations,
            indirect_probes: m.indirect_probes,
            max_transmissions: m.max_transmissions,
            gossip_fanout: m.gossip_fanout,
        };

        let inv = &file.invariants;
        let invariants = InvariantLimits {
            false_down_bound: in_section(path, "invariants", opt_duration("false_down_bound", &inv.false_down_bound))?
                .unwrap_or(Duration::from_secs(30)),
            false_down_window: in_section(path, "invariants", opt_duration("false_down_window", &inv.false_down_window))?,
            max_false_downs: inv.max_false_downs,
        };

        let fsync = in_section(path, "disk", opt_duration("fsync", &file.disk.fsync))?;
        if fsync.is_some_and(|d| d.is_zero()) {
            return Err(err("[disk] `fsync` must be more than 0 (leave it out for writes durable at once)".to_owned()));
        }
        let disk = DiskModel { fsync, replies_before_sync: false };
        let duravip = file.duravip.map(|d| duravip::parse_duravip(path, d)).transpose()?;
        let steps = parse_timeline(file.timeline).map_err(err)?;
        if let (None, Some(step)) = (fsync, steps.iter().find(|s| matches!(s.action, Action::SetDiskFull(..)))) {
            return Err(err(format!(
                "timeline[{}] {} needs a disk model: add [disk] fsync = \"3ms\" (or another time)",
                step.index,
                step.action.name()
            )));
        }
        let top = |field: &str, t: &Option<String>| opt_duration(field, t).map_err(err);
        Ok(Scenario {
            path: path.to_path_buf(),
            name: file.name.unwrap_or_else(|| {
                path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
            }),
            description: file.description.unwrap_or_default(),
            seed: file.seed,
            duration: top("duration", &file.duration)?,
            sample_every: top("sample_every", &file.sample_every)?,
            topology,
            boot_spread: boot_spread.unwrap_or_default(),
            clock_drift,
            seeded,
            network,
            links,
            membership,
            invariants,
            disk,
            duravip,
            steps,
        })
    }

    /// Checks every selector and assertion target against `topology`, and the steps against
    /// the end of the run.
    pub fn validate(&self, topology: &Topology, end: Duration) -> Result<(), ScenarioError> {
        let err = |m: String| ScenarioError::new(&self.path, m);
        let check = |what: String, selector: &Selector| -> Result<(), ScenarioError> {
            match selector.resolve(topology) {
                Ok(nodes) if nodes.is_empty() => Err(err(format!("{what}: {selector} names no host"))),
                Ok(_) => Ok(()),
                Err(unknown) => Err(err(format!(
                    "{what}: no host or subcluster named {unknown:?} ({})",
                    topology.selector_hint()
                ))),
            }
        };
        for (i, (links, _)) in self.links.iter().enumerate() {
            match links {
                Links::Between(a, b) | Links::Directed(a, b) => {
                    check(format!("[network.links[{i}]]"), a)?;
                    check(format!("[network.links[{i}]]"), b)?;
                }
                Links::All => {}
            }
        }
        if let Some(vip) = &self.duravip {
            for (i, b) in vip.bindings.iter().enumerate() {
                if let Some(sel) = &b.candidates {
                    check(format!("[duravip] binding {} ({}) `candidates`", i, b.addr), sel)?;
                    let nodes = sel.resolve(topology).unwrap_or_default();
                    if nodes.iter().all(|&n| topology.host(n).role != Role::Node) {
                        return Err(err(format!(
                            "[duravip] binding {} ({}) `candidates`: {sel} names no node (managers never hold addresses)",
                            i, b.addr
                        )));
                    }
                }
                if let Some(p) = &b.preference {
                    if topology.index_of_name(&p.to_ascii_lowercase()).is_none() {
                        return Err(err(format!(
                            "[duravip] binding {} ({}) `preference`: no host named {p:?} ({})",
                            i,
                            b.addr,
                            topology.selector_hint()
                        )));
                    }
                }
            }
        }
        for step in &self.steps {
            let what = |field: &str| {
                format!("timeline[{}] ({} at {}) `{field}`", step.index, step.action.name(), SimTime::from_duration(step.at))
            };
            for (field, selector) in step.action.selectors() {
                check(what(field), selector)?;
            }
            if let Action::AssertDown { member, .. } | Action::AssertUp { member, .. } = &step.action {
                if topology.index_of_name(&member.to_ascii_lowercase()).is_none() {
                    return Err(err(format!(
                        "{}: no host named {member:?} ({})",
                        what("member"),
                        topology.selector_hint()
                    )));
                }
            }
            match &step.action {
                Action::Broadcast { target: OpsTarget::Subcluster(sc), .. }
                    if !topology.subclusters().iter().any(|s| s == sc) =>
                {
                    return Err(err(format!("{}: no subcluster named {sc:?} ({})", what("subcluster"), topology.selector_hint())));
                }
                Action::Broadcast { target: OpsTarget::Node(n), .. } if topology.index_of_name(n).is_none() => {
                    return Err(err(format!("{}: no host named {n:?} ({})", what("node"), topology.selector_hint())));
                }
                Action::AssertManagerView { .. } if self.duravip.is_none() => {
                    return Err(err(format!("{}: the scenario has no [duravip] section", what("action"))));
                }
                Action::AssertHolders { addr, .. } => {
                    let Some(vip) = &self.duravip else {
                        return Err(err(format!("{}: the scenario has no [duravip] section", what("addr"))));
                    };
                    if let Some(a) = addr {
                        if !vip.bindings.iter().any(|b| b.addr == *a) {
                            return Err(err(format!("{}: {a} is not a binding of [duravip]", what("addr"))));
                        }
                    }
                }
                _ => {}
            }
            if step.at > end {
                return Err(err(format!(
                    "timeline[{}] ({}) is at {}, after the end of the run at {}",
                    step.index,
                    step.action.name(),
                    SimTime::from_duration(step.at),
                    SimTime::from_duration(end)
                )));
            }
        }
        Ok(())
    }

    /// The simulated time the run lasts: `duration`, or 5 s after the last step's extent.
    pub fn end(&self, nodes: usize) -> Duration {
        self.duration.unwrap_or_else(|| {
            self.steps.iter().map(|s| s.at + s.action.extent(nodes)).max().unwrap_or_default()
                + Duration::from_secs(5)
        })
    }
}

/// Reads the `[[timeline]]` steps in file order. Times only move forward: a step without `at`
/// runs when the one before it did (after its `wait`), `"+5s"` is relative to that, and an
/// absolute `at` earlier than that is an error rather than a silent reordering.
fn parse_timeline(entries: Vec<toml::Table>) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut cursor = Duration::ZERO;
    let mut after_wait = false;
    for (index, mut table) in entries.into_iter().enumerate() {
        let place = |m: &str| format!("timeline[{index}]: {m}");
        let at = match table.remove("at") {
            None => cursor,
            Some(toml::Value::String(s)) => match s.trim().strip_prefix('+') {
                Some(rel) => cursor + parse_duration(rel).map_err(|e| place(&format!("`at`: {e}")))?,
                None => {
                    let at = parse_duration(&s).map_err(|e| place(&format!("`at`: {e}")))?;
                    if at < cursor {
                        let before = if after_wait { "the end of the wait before it" } else { "the step before it" };
                        return Err(place(&format!(
                            "at = {s:?} is earlier than {before} ({}); steps must be in time order \
                             (use \"+5s\" for relative times)",
                            SimTime::from_duration(cursor)
                        )));
                    }
                    at
                }
            },
            Some(other) => {
                return Err(place(&format!("`at` must be a string such as \"30s\" or \"+5s\", not {other}")))
            }
        };
        let name = match table.get("action") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => return Err(place("`action` must be a string such as \"partition\"")),
            None => return Err(place("missing `action` (e.g. action = \"partition\")")),
        };
        let file: action::ActionFile = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| place(&format!("{name} at {}: {}", SimTime::from_duration(at), e.message())))?;
        let action = file
            .check()
            .map_err(|m| place(&format!("{name} at {}: {m}", SimTime::from_duration(at))))?;
        cursor = at;
        after_wait = false;
        if let Action::Wait(d) = action {
            cursor += d;
            after_wait = !d.is_zero();
        }
        steps.push(Step { index, at, action });
    }
    Ok(steps)
}

/// Finds the segment file a scenario names. An absolute path is taken as it is; a relative one
/// is looked up from the scenario file's directory upwards, then from the current directory.
fn find_segments(scenario: &Path, segments: &str) -> Result<PathBuf, String> {
    find_segments_from(&scenario_dir(scenario), segments)
}

/// The directory a scenario file is in; `"."` for a bare file name such as `x.toml`.
fn scenario_dir(scenario: &Path) -> PathBuf {
    match scenario.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// [`find_segments`] from the directory `base` (made absolute when it exists, so the search
/// walks its real parents and the error names the directory actually searched).
fn find_segments_from(base: &Path, segments: &str) -> Result<PathBuf, String> {
    let wanted = Path::new(segments);
    if wanted.is_absolute() {
        return if wanted.is_file() { Ok(wanted.to_path_buf()) } else { Err(format!("[topology] segment file {segments} not found")) };
    }
    let start = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    for dir in start.ancestors() {
        let candidate = dir.join(wanted);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    if wanted.is_file() {
        return Ok(wanted.to_path_buf());
    }
    let current = std::env::current_dir().map_or_else(|e| format!("unknown: {e}"), |d| d.display().to_string());
    Err(format!(
        "[topology] segment file {segments:?} not found in {} or its parents, nor in the current directory ({current})",
        start.display()
    ))
}

#[cfg(test)]
mod tests;
