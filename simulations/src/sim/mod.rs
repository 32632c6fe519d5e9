//! The simulation: the event loop that drives every node's real cores with virtual time
//! through the simulated network, runs the scenario's timeline, and keeps the observers
//! (beliefs, invariants, assertions, stats, trace) up to date after every event.
//!
//! Determinism: one RNG (`StdRng`'s ChaCha12) seeded from the run's seed makes every random choice — message
//! fates, boot times, clock rates, random victims, churn times, and the seeds of the cores'
//! own RNGs — in event order; events run in (time, scheduling sequence) order; every
//! collection iterated is a `Vec`, a `BTreeMap` or a bit set. The wall clock is read only for
//! the one epoch `Instant` the cores' `now` is built on, and for the wall time in the report.
//!
//! Split by role: this file owns the state and the loop; [`node_io`] starts and stops nodes
//! and performs their outputs; [`steps`] runs timeline actions.

mod node_io;
mod seeding;
mod steps;

pub use seeding::default_seed_threads;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use eccluster_proto::duravip::Policy;
use eccluster_proto::membership::MembershipConfig;
use eccluster_proto::node::DuravipSetup;
use eccluster_proto::ops::{OpsConfig, Target};
use eccluster_proto::segments::Segments;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::{ChaCha12Rng, StdRng};
use rand::{RngExt, SeedableRng};

use crate::assertions::{Assertions, View};
use crate::beliefs::Beliefs;
use crate::bitset::NodeSet;
use crate::invariants::{EventRef, EventWhat, FalseDowns, OpsOrder, Ownership, Violation};
use crate::network::Network;
use crate::node::{Setup, SimNode};
use crate::scenario::{Links, Scenario, ScenarioError, Step, TopologySource};
use crate::stats::{Change, Stats};
use crate::time::SimTime;
use crate::topology::Topology;
use crate::trace::Trace;
use crate::world::{Event, World};

/// Violations kept for the report (all are counted).
const MAX_VIOLATIONS_KEPT: usize = 1000;

/// How long two reachable holders of one address may coexist while membership settles.
const OWNERSHIP_SETTLE: Duration = Duration::from_secs(10);

/// What to run and how.
pub struct SimOptions {
    /// The parsed scenario.
    pub scenario: Scenario,
    /// The seed of the one RNG.
    pub seed: u64,
    /// Overrides the node count of a generated topology.
    pub nodes: Option<usize>,
    /// Writes the trace as text lines here as well.
    pub trace_text: Option<Box<dyn Write>>,
    /// Shows a progress bar on stderr when it is a terminal.
    pub progress: bool,
    /// Threads that fill the member tables of a seeded start (`None`: one per core). The
    /// run is the same with any number.
    pub seed_threads: Option<usize>,
}

/// What a finished run leaves behind for the report.
pub struct Finished {
    /// The scenario.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// The node-count override used, if any.
    pub nodes_override: Option<usize>,
    /// The hosts.
    pub topology: Topology,
    /// The membership tuning every node ran.
    pub config: MembershipConfig,
    /// Measurements.
    pub stats: Stats,
    /// Assertions and verdicts.
    pub assertions: Assertions,
    /// Broken invariants, in order (the first 1000).
    pub violations: Vec<Violation>,
    /// Broken invariants, all counted.
    pub violations_total: u64,
    /// False downs counted.
    pub false_downs: u64,
    /// Ordered operations applied (0 without an operations core).
    pub ops_applied: u64,
    /// What the node cores counted (`Node::counters`), summed over every node and run: the
    /// figures the daemons export as metrics.
    pub core_counters: eccluster_proto::stats::Counters,
    /// Ordered operations submitted by the timeline and what became of them.
    pub ops: OpsLog,
    /// DuraVIP addresses bound (empty without `[duravip]`).
    pub vips: Vec<IpAddr>,
    /// Every change of an address's holders: (time, address, holders after the change).
    pub vip_timeline: Vec<(SimTime, IpAddr, Vec<u32>)>,
    /// Simulated time covered.
    pub simulated: Duration,
    /// Wall time the loop took.
    pub wall: Duration,
    /// Wall time the events at simulated time 0 took (a seeded start: filling the member
    /// tables).
    pub start_wall: Duration,
    /// Trace hash.
    pub trace_hash: String,
    /// Records in the trace.
    pub trace_records: u64,
    /// Nodes running at the end.
    pub running_at_end: usize,
    /// Survivors that never saw a crashed (still down) member down.
    pub missed_crashes: u64,
    /// Survivors that never saw a departed (still down) member down.
    pub missed_leaves: u64,
    /// Remarks about the run (e.g. fewer random victims than asked for).
    pub notes: Vec<String>,
    /// True if a [`Budget`] cut the run short.
    pub stopped_early: bool,
    /// Events still scheduled when the run ended (timers and messages in flight).
    pub pending_events: usize,
    /// Threads that filled the member tables of a seeded start.
    pub seed_threads: usize,
    /// Nodes whose seeded core was built ahead on those threads (the others built their own).
    pub seeded_ahead: u64,
}

/// Limits that stop a benchmark run early.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// Stop after this much wall time.
    pub wall: Option<Duration>,
    /// Stop once the resident set exceeds this many KiB.
    pub max_rss_kib: Option<u64>,
}

impl Budget {
    fn spent(&self, started: Instant) -> Option<String> {
        if let Some(wall) = self.wall {
            if started.elapsed() > wall {
                return Some(format!("wall-time budget of {:.0}s spent", wall.as_secs_f64()));
            }
        }
        if let (Some(max), Some(rss)) = (self.max_rss_kib, crate::memory::rss_kib()) {
            if rss > max {
                return Some(format!("memory budget of {} MiB exceeded ({} MiB resident)", max / 1024, rss / 1024));
            }
        }
        None
    }
}

/// State of a running churn action.
struct Churn {
    candidates: Vec<usize>,
    every: Duration,
    until: SimTime,
    down_for: (Duration, Duration),
    graceful: bool,
}

/// A `broadcast` step with `every` and `for`.
struct Repeat {
    command: String,
    target: Target,
    label: String,
    every: Duration,
    until: SimTime,
}

/// A command the manager refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When.
    pub at: SimTime,
    /// The timeline step that submitted it.
    pub step: String,
    /// The command.
    pub command: String,
    /// Why it was refused.
    pub why: String,
}

/// What happened to the ordered operations the timeline submitted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsLog {
    /// Operations the manager sequenced.
    pub submitted: u64,
    /// Submissions refused (no manager running, no live target, ...).
    pub refused: u64,
    /// Every refusal: when, the step, the command and why (a refused `duravip move` names
    /// the address or host that was wrong).
    pub refusals: Vec<Refusal>,
    /// From submission to the manager's "complete" (every target answered, left or timed
    /// out), per completed operation.
    pub completion: Vec<Duration>,
    started: BTreeMap<(u64, u64), SimTime>,
}

impl OpsLog {
    /// Operations submitted and not yet complete.
    pub fn incomplete(&self) -> usize {
        self.started.len()
    }
}

/// A simulation in progress.
pub struct Simulation {
    world: World,
    epoch: Instant,
    /// `StdRng`'s generator by name: its state can be read, so [`seeding`] can look ahead.
    rng: ChaCha12Rng,
    seed: u64,
    nodes_override: Option<usize>,
    scenario: Scenario,
    topo: Topology,
    config: MembershipConfig,
    nodes: Vec<SimNode>,
    running: NodeSet,
    net: Network,
    beliefs: Beliefs,
    truth_dirty: bool,
    false_downs: FalseDowns,
    ops: OpsOrder,
    ownership: Ownership,
    vips: Vec<IpAddr>,
    ops_log: OpsLog,
    repeats: Vec<Repeat>,
    assertions: Assertions,
    stats: Stats,
    trace: Trace,
    violations: Vec<Violation>,
    violations_total: u64,
    notes: Vec<String>,
    steps: Vec<Step>,
    churns: Vec<Churn>,
    end: SimTime,
    sample_every: Duration,
    current: EventRef,
    scheduled_check: SimTime,
    poll_scheduled: bool,
    stopped_early: bool,
    setup: Setup,
    /// Console requests handed to a manager and waiting for their reply: step, command.
    submits: BTreeMap<u64, (String, String)>,
    next_request: u64,
    progress: ProgressBar,
    revisions: ConfigRevisions,
    /// Threads that fill the member tables of a seeded start, and the cores they built ahead.
    seed_threads: usize,
    ahead: seeding::SeededAhead,
}

/// Configuration revisions in the run: what the timeline committed, what each node's core
/// runs (set when its modelled pull is done).
#[derive(Debug, Default)]
pub(crate) struct ConfigRevisions {
    pub(crate) committed: eccluster_proto::revisions::Revisions,
    pub(crate) running: BTreeMap<usize, eccluster_proto::revisions::Revisions>,
    /// Nodes follow a repository (the timeline has configuration steps): their cores schedule
    /// pulls at start, on announcements, polling and retrying, as a daemon's with
    /// `--cluster-boot` does.
    pub(crate) follow: bool,
    /// The configuration server does not answer: pulls fail.
    pub(crate) server_down: bool,
}

/// Builds the hosts of a scenario, applying a node-count override.
pub fn build_topology(scenario: &Scenario, nodes: Option<usize>) -> Result<Topology, ScenarioError> {
    let err = |m: String| ScenarioError::new(&scenario.path, m);
    match &scenario.topology {
        TopologySource::Segments(path) => {
            if nodes.is_some() {
                return Err(err(format!(
                    "--nodes applies only to generated topologies; this scenario imports {}",
                    path.display()
                )));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(format!("[topology] cannot read segment file {}: {e}", path.display())))?;
            let segments = Segments::parse(&path.display().to_string(), &text)
                .map_err(|e| err(format!("[topology] bad segment file: {e}")))?;
            let topo = Topology::from_segments(&segments);
            if topo.len() < 2 {
                return Err(err(format!("[topology] {} lists {} host(s); a cluster needs at least 2", path.display(), topo.len())));
            }
            Ok(topo)
        }
        TopologySource::Generated { nodes: count, subclusters } => {
            let n = nodes.unwrap_or(*count);
            if n < 2 || n < subclusters.len() {
                return Err(err(format!(
                    "[topology] {n} nodes cannot fill {} subclusters (at least 2 nodes and one per subcluster)",
                    subclusters.len()
                )));
            }
            let k = subclusters.len();
            if k > 250 || n.div_ceil(k) > 65_000 {
                return Err(err(format!(
                    "[topology] {n} nodes in {k} subclusters is beyond what the generator lays out (at most 250 subclusters of 65000 nodes)"
                )));
            }
            let counts: Vec<(String, usize)> = subclusters
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), n / k + usize::from(i < n % k)))
                .collect();
            Ok(Topology::generate(&counts))
        }
    }
}

/// Operations acknowledged this close to the end of a run are not required to have arrived.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

impl Simulation {
    /// Prepares a run: builds and checks the topology and timeline against each other, sets
    /// up the network and nodes, and schedules boots, steps and samples.
    pub fn new(options: SimOptions) -> Result<Simulation, ScenarioError> {
        let SimOptions { scenario, seed, nodes: nodes_override, trace_text, progress, seed_threads } = options;
        let topo = build_topology(&scenario, nodes_override)?;
        let n = topo.len();
        let end_d = scenario.end(n);
        scenario.validate(&topo, end_d)?;
        let end = SimTime::from_duration(end_d);
        let config = scenario.membership.config(n);
        let duravip = match &scenario.duravip {
            Some(spec) => {
                let (bindings, config) = spec.resolve(&topo);
                DuravipSetup { bindings, config }
            }
            None => DuravipSetup::default(),
        };
        let setup = Setup::new(&topo, config.clone(), OpsConfig::default(), duravip);
        // Every node builds the same DuraVIP core: build one now so bad bindings stop the run
        // before it starts.
        if let Some(host) = topo.hosts().iter().find(|h| h.role == eccluster_proto::Role::Node) {
            eccluster_proto::node::Node::new(setup.node_config(host, 1), StdRng::seed_from_u64(0))
                .map_err(|e| ScenarioError::new(&scenario.path, format!("[duravip] {e}")))?;
        }
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        let follow = scenario.steps.iter().any(|s| {
            use crate::scenario::Action;
            matches!(s.action, Action::ConfigCommit(_) | Action::AssertConfig { .. } | Action::ConfigServerDown(_))
        });

        let mut net = Network::new(n, scenario.network);
        for (links, patch) in &scenario.links {
            let set = |s: &crate::scenario::Selector| NodeSet::from_indices(n, s.resolve(&topo).unwrap_or_default());
            match links {
                Links::Between(a, b) => {
                    net.patch_links(set(a), set(b), patch.clone());
                    net.patch_links(set(b), set(a), patch.clone());
                }
                Links::Directed(a, b) => net.patch_links(set(a), set(b), patch.clone()),
                Links::All => net.patch_all(patch),
            }
        }
        let drift = scenario.clock_drift;
        let nodes: Vec<SimNode> = (0..n)
            .map(|_| SimNode::new(if drift > 0.0 { 1.0 + rng.random_range(-drift..=drift) } else { 1.0 }))
            .collect();

        let mut world = World::new();
        for i in 0..n {
            let at = if scenario.boot_spread.is_zero() {
                SimTime::ZERO
            } else {
                let max = u64::try_from(scenario.boot_spread.as_nanos()).unwrap_or(u64::MAX);
                SimTime::from_duration(Duration::from_nanos(rng.random_range(0..=max)))
            };
            world.schedule(at, Event::Start(i as u32));
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            world.schedule(SimTime::from_duration(step.at), Event::Step(i as u32));
        }
        let sample_every = scenario
            .sample_every
            .unwrap_or_else(|| (end_d / 600).max(Duration::from_millis(100)));
        world.schedule(SimTime::ZERO, Event::Sample);

        let window = config.probe_period + config.probe_rtt + config.suspect_to_down_after;
        let limits = &scenario.invariants;
        let false_downs = FalseDowns::new(
            limits.false_down_bound,
            limits.false_down_window.unwrap_or(window),
            limits.max_false_downs,
        );
        let progress = if progress && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(end.as_nanos() / 1_000_000), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {msg} simulated, {elapsed} wall") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(scenario.name.clone());
            bar
        } else {
            ProgressBar::hidden()
        };
        let (vips, majority): (Vec<IpAddr>, Vec<IpAddr>) = match &scenario.duravip {
            Some(spec) => {
                let vips: Vec<IpAddr> = spec.bindings.iter().map(|b| b.addr).collect();
                let majority = if spec.policy == Policy::Majority { vips.clone() } else { Vec::new() };
                (vips, majority)
            }
            None => (Vec::new(), Vec::new()),
        };
        let mut stats = Stats::new(n, topo.subclusters().to_vec());
        stats.begin_episode("boot", SimTime::ZERO);
        Ok(Simulation {
            world,
            epoch: Instant::now(),
            rng,
            seed,
            nodes_override,
            steps: scenario.steps.clone(),
            scenario,
            config,
            nodes,
            running: NodeSet::new(n),
            net,
            beliefs: Beliefs::new(n),
            truth_dirty: true,
            false_downs,
            ops: OpsOrder::default(),
            ownership: Ownership::new(OWNERSHIP_SETTLE, majority),
            vips,
            ops_log: OpsLog::default(),
            repeats: Vec::new(),
            assertions: Assertions::default(),
            stats,
            trace: Trace::new(trace_text),
            violations: Vec::new(),
            violations_total: 0,
            notes: Vec::new(),
            churns: Vec::new(),
            end,
            sample_every,
            current: EventRef { seq: 0, at: SimTime::ZERO, what: EventWhat::Boot },
            scheduled_check: SimTime::NEVER,
            poll_scheduled: false,
            revisions: ConfigRevisions { follow, ..ConfigRevisions::default() },
            stopped_early: false,
            setup,
            submits: BTreeMap::new(),
            next_request: 0,
            progress,
            topo,
            seed_threads: seed_threads.unwrap_or_else(default_seed_threads).max(1),
            ahead: seeding::SeededAhead::default(),
        })
    }

    /// The hosts.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// The current virtual time.
    pub fn now(&self) -> SimTime {
        self.world.now()
    }

    /// What node `i`'s clock reads now, as the `Instant` its cores are handed.
    #[inline]
    fn node_instant(&self, i: usize) -> Instant {
        self.epoch + self.nodes[i].clock(self.world.now())
    }

    /// Runs the timeline to the end and hands back what was measured.
    pub fn run(self) -> Finished {
        self.run_within(&Budget::default())
    }

    /// Runs the timeline to the end, or until the budget is spent (benchmarks only: the
    /// budget is the one place the wall clock and the process's memory can end a run, and
    /// they only cut it short — everything up to the stop is as deterministic as ever).
    pub fn run_within(mut self, budget: &Budget) -> Finished {
        let started = Instant::now();
        let mut stopped_early = None;
        let mut start_wall = None;
        while let Some((seq, event)) = self.world.pop_until(self.end) {
            if start_wall.is_none() && self.world.now() > SimTime::ZERO {
                start_wall = Some(started.elapsed());
            }
            self.stats.events += 1;
            if self.stats.events.is_multiple_of(8192) {
                self.progress.set_position(self.world.now().as_nanos() / 1_000_000);
                self.progress.set_message(format!("{}", self.world.now()));
                if self.stats.events.is_multiple_of(65_536) {
                    stopped_early = budget.spent(started);
                    if stopped_early.is_some() {
                        self.end = self.world.now();
                        break;
                    }
                }
            }
            self.handle(seq, event);
        }
        if let Some(why) = stopped_early {
            self.notes.push(format!("stopped early at {}: {why}", self.world.now()));
            self.stopped_early = true;
        }
        self.world.advance_to(self.end);
        self.ensure_truth();
        let wall = started.elapsed();
        self.progress.finish_and_clear();
        let mut finished = self.finish(wall);
        finished.start_wall = start_wall.unwrap_or(wall);
        finished
    }

    fn handle(&mut self, seq: u64, event: Event) {
        let at = self.world.now();
        // Consecutive starts (a boot) share one recomputation of the truth.
        if !matches!(event, Event::Start(_)) {
            self.ensure_truth();
        }
        match event {
            Event::Deliver { from, to, channel, payload } => {
                self.current = EventRef { seq, at, what: EventWhat::Deliver { from, to } };
                self.deliver(from as usize, to as usize, channel, payload);
            }
            Event::Timer { node, run, timer } => {
                self.current = EventRef { seq, at, what: node_io::timer_what(node, &timer) };
                self.fire_timer(node as usize, run, timer);
            }
            Event::Synced { node, run } => {
                self.current = EventRef { seq, at, what: EventWhat::Synced(node) };
                self.journal_synced(node as usize, run);
            }
            Event::Fetched { node, run, revisions } => {
                self.current = EventRef { seq, at, what: EventWhat::Fetched(node) };
                self.config_fetched(node as usize, run, revisions);
            }
            Event::Step(i) => {
                let action = self.steps[i as usize].action.name();
                self.current = EventRef { seq, at, what: EventWhat::Step { index: self.steps[i as usize].index as u32, action } };
                self.run_step(i as usize);
            }
            Event::Start(node) => {
                self.current = EventRef { seq, at, what: EventWhat::Start(node) };
                if !self.nodes[node as usize].is_running() {
                    self.start_node(node as usize);
                }
            }
            Event::Stop { node, graceful } => {
                self.current = EventRef { seq, at, what: EventWhat::Stop(node) };
                self.stop_node(node as usize, graceful);
            }
            Event::ChurnTick(i) => {
                self.current = EventRef { seq, at, what: EventWhat::Churn };
                self.churn_tick(i as usize);
            }
            Event::RepeatTick(i) => {
                self.current = EventRef { seq, at, what: EventWhat::Repeat };
                self.repeat_tick(i as usize);
            }
            Event::Sample => {
                self.current = EventRef { seq, at, what: EventWhat::Sample };
                self.sample();
                self.world.schedule(at.after(self.sample_every), Event::Sample);
            }
            Event::Check => {
                self.current = EventRef { seq, at, what: EventWhat::Check };
                self.scheduled_check = SimTime::NEVER;
                let mut found = Vec::new();
                let next = self.false_downs.check(at, &self.topo, &mut found);
                self.ownership.check(at, self.current, &self.topo, &mut found);
                self.record_violations(found);
                self.schedule_check(next);
            }
            Event::PollAssertions => {
                self.current = EventRef { seq, at, what: EventWhat::AssertionDeadline };
                self.poll_scheduled = false;
                self.poll_assertions();
            }
            Event::AssertionDeadline(i) => {
                self.current = EventRef { seq, at, what: EventWhat::AssertionDeadline };
                let view = View { beliefs: &self.beliefs, running: &self.running, net: &self.net, topo: &self.topo, ownership: &self.ownership, config: &self.revisions.running, holders: manager_book(&self.nodes, &self.topo) };
                self.assertions.expire(i as usize, at, false, &view);
            }
        }
    }

    /// Marks the truth (who runs, who can reach whom) as changed by `label`, at node `node`
    /// (`None`: in the network).
    fn truth_changed(&mut self, label: &'static str, node: Option<usize>) {
        let now = self.world.now();
        self.stats.changes.push(Change { at: now, what: label, node: node.map(|i| i as u32) });
        self.stats.begin_episode(label, now);
        self.truth_dirty = true;
    }

    /// Recomputes what depends on the truth, if it changed since the last time.
    fn ensure_truth(&mut self) {
        if !self.truth_dirty {
            return;
        }
        self.truth_dirty = false;
        let now = self.world.now();
        self.beliefs.recompute(&self.running, &self.net);
        let next = self.false_downs.on_truth_change(now, &self.running, &self.net);
        self.schedule_check(next);
        let next = self.ownership.refresh(now, &self.net);
        self.schedule_check(next);
        self.views_changed();
    }

    /// After any change of beliefs or truth: convergence and waiting assertions.
    fn views_changed(&mut self) {
        if self.beliefs.converged() {
            self.stats.on_converged(self.world.now());
        }
        if self.assertions.has_pending() {
            let now = self.world.now();
            let next = self.assertions.next_poll(now);
            if next == now {
                self.poll_assertions();
            } else if !self.poll_scheduled {
                self.poll_scheduled = true;
                self.world.schedule(next, Event::PollAssertions);
            }
        }
    }

    fn poll_assertions(&mut self) {
        let view = View { beliefs: &self.beliefs, running: &self.running, net: &self.net, topo: &self.topo, ownership: &self.ownership, config: &self.revisions.running, holders: manager_book(&self.nodes, &self.topo) };
        self.assertions.poll(self.world.now(), &view);
    }

    /// Keeps the first [`MAX_VIOLATIONS_KEPT`] violations and counts them all.
    fn record_violations(&mut self, found: impl IntoIterator<Item = Violation>) {
        for v in found {
            self.violations_total += 1;
            if self.violations.len() < MAX_VIOLATIONS_KEPT {
                self.violations.push(v);
            }
        }
    }

    fn schedule_check(&mut self, at: Option<SimTime>) {
        if let Some(at) = at {
            if at < self.scheduled_check {
                self.scheduled_check = at;
                self.world.schedule(at, Event::Check);
            }
        }
    }

    fn sample(&mut self) {
        let groups = self.topo.subclusters().len();
        let mut per_group: Vec<Vec<usize>> = vec![Vec::new(); groups];
        for x in self.running.iter() {
            per_group[self.topo.subcluster_index(x)].push(self.beliefs.up_count(x));
        }
        self.stats.sample(self.world.now(), &per_group, self.running.count());
    }

    fn finish(mut self, wall: Duration) -> Finished {
        let now = self.world.now();
        self.stats.set_running(now, self.running.count());
        self.sample();
        let view = View { beliefs: &self.beliefs, running: &self.running, net: &self.net, topo: &self.topo, ownership: &self.ownership, config: &self.revisions.running, holders: manager_book(&self.nodes, &self.topo) };
        for i in self.assertions.pending() {
            self.assertions.expire(i, now, true, &view);
        }
        // Every acknowledged operation reached its targets, across manager crashes, as long as
        // a manager runs to deliver it (those acknowledged in the last seconds may be on the way).
        let manager_up = self.topo.hosts().iter().enumerate().any(|(i, h)| h.role == eccluster_proto::Role::Manager && self.nodes[i].is_running());
        if manager_up {
            let nodes = &self.nodes;
            let incarnation = |j: usize| nodes[j].core.as_ref().filter(|_| nodes[j].is_running()).map(|c| c.identity().incarnation);
            let lost = self.ops.lost(now.before(DELIVERY_GRACE), incarnation, &self.topo);
            self.record_violations(lost);
        }
        if let Err(e) = self.trace.finish() {
            self.notes.push(format!("writing the text trace failed: {e}"));
        }
        let run_started: Vec<SimTime> = self.nodes.iter().map(|n| n.run_started).collect();
        let mut core_counters = eccluster_proto::stats::Counters::default();
        for node in &self.nodes {
            core_counters.add(&node.counters());
        }
        Finished {
            core_counters,
            missed_crashes: self.stats.missed(false, &self.running, &run_started),
            missed_leaves: self.stats.missed(true, &self.running, &run_started),
            running_at_end: self.running.count(),
            trace_hash: self.trace.hash(),
            trace_records: self.trace.records(),
            simulated: now.as_duration(),
            wall,
            start_wall: Duration::ZERO,
            false_downs: self.false_downs.false_downs,
            ops_applied: self.ops.applied,
            ops: self.ops_log,
            vips: self.vips,
            vip_timeline: self.ownership.timeline,
            scenario: self.scenario,
            seed: self.seed,
            nodes_override: self.nodes_override,
            topology: self.topo,
            config: self.config,
            stats: self.stats,
            assertions: self.assertions,
            violations: self.violations,
            violations_total: self.violations_total,
            notes: self.notes,
            stopped_early: self.stopped_early,
            pending_events: self.world.pending(),
            seed_threads: self.seed_threads,
            seeded_ahead: self.ahead.taken,
        }
    }
}

/// The DuraVIP holders book of the first running manager, for the assertions.
pub(super) fn manager_book<'a>(nodes: &'a [SimNode], topo: &Topology) -> Option<&'a eccluster_proto::holders::HolderBook> {
    (0..topo.len())
        .filter(|&i| topo.host(i).role == eccluster_proto::Role::Manager)
        .find_map(|i| nodes.get(i).and_then(|n| n.core.as_ref()).and_then(|core| core.duravip_holders()))
}
