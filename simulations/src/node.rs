//! A simulated node: the real node core (`eccluster_proto::node::Node`) of one host — the
//! membership, ordered-operations and DuraVIP cores composed exactly as the daemons run them —
//! plus its run state (running, crashed, left), its clock rate and incarnation history.
//! Nothing here schedules or delivers anything: the simulation drives the node and performs
//! its outputs.

use std::collections::BTreeSet;
use std::time::Duration;

use eccluster_proto::membership::{MembershipConfig, Roster};
use eccluster_proto::node::{DuravipSetup, Node, NodeConfig};
use eccluster_proto::ops::OpsConfig;
use eccluster_proto::stats::Counters;
use eccluster_proto::Role;

use crate::group_commit::GroupCommit;
use crate::time::SimTime;
use crate::topology::{Host, Topology};

/// What every node of a run is configured with, beside its own identity.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The hosts of the topology.
    pub roster: Roster,
    /// The hosts that run a manager.
    pub managers: BTreeSet<String>,
    /// SWIM tuning.
    pub membership: MembershipConfig,
    /// Ordered-operations tuning.
    pub ops: OpsConfig,
    /// DuraVIP bindings and tuning (no bindings: no DuraVIP).
    pub duravip: DuravipSetup,
}

impl Setup {
    /// The setup of `topology` with these tunings.
    pub fn new(topology: &Topology, membership: MembershipConfig, ops: OpsConfig, duravip: DuravipSetup) -> Setup {
        let managers = topology.hosts().iter().filter(|h| h.role == Role::Manager).map(|h| h.name.clone()).collect();
        Setup { roster: topology.roster(), managers, membership, ops, duravip }
    }

    /// The node core configuration of a run of `host` at `incarnation`. A manager's epoch is
    /// its incarnation (both are start counters that only grow, as in the daemons).
    pub fn node_config(&self, host: &Host, incarnation: u64) -> NodeConfig {
        NodeConfig {
            id: host.member_id(incarnation),
            roster: self.roster.clone(),
            managers: self.managers.clone(),
            membership: self.membership.clone(),
            ops: self.ops.clone(),
            epoch: incarnation,
            duravip: self.duravip.clone(),
        }
    }
}

/// Whether a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not started yet (boot spread).
    NotStarted,
    /// Running.
    Running,
    /// Killed without warning.
    Crashed,
    /// Left gracefully and stopped.
    Left,
}

/// One host of the simulated cluster.
pub struct SimNode {
    /// The node core of the current run (`None` while stopped).
    pub core: Option<Node>,
    /// Run state.
    pub status: Status,
    /// Number of runs started; timers of earlier runs are ignored.
    pub run: u32,
    /// The node's clock runs at this rate: a timer of `after` fires after `after / rate`, and
    /// the time its cores are handed advances `rate` seconds per simulated second.
    clock_rate: f64,
    /// (simulated time, node clock reading) when the rate last changed.
    clock_anchor: (SimTime, Duration),
    /// Highest incarnation any run of this node has used (a restart goes above it).
    pub max_incarnation: u64,
    /// First incarnation of the current (or last) run.
    pub run_first_incarnation: u64,
    /// When the current (or last) run started.
    pub run_started: SimTime,
    /// The host's disk: a manager's journal. It survives a crash and a restart of the node.
    /// Without a `[disk] fsync` time every write is durable once the drain that produced it
    /// ends, and a crash happens between events, never inside a drain. With one, writes reach
    /// it through [`SimNode::commit`], as the daemon's group commit makes them durable.
    pub disk: Vec<u8>,
    /// Journal writes not yet durable and the outputs held for them (`[disk] fsync`).
    pub commit: GroupCommit,
    /// The disk is full (`disk_full`): every journal write fails until `disk_free`.
    pub disk_full: bool,
    /// The running core was told its journal writes fail.
    pub journal_fault: bool,
    /// What the cores of this node's earlier runs counted (`Node::counters`), summed: a
    /// crash drops the core, not what it counted.
    pub past_counters: Counters,
}

impl SimNode {
    /// A node that has not started.
    pub fn new(clock_rate: f64) -> SimNode {
        SimNode {
            core: None,
            status: Status::NotStarted,
            run: 0,
            clock_rate,
            clock_anchor: (SimTime::ZERO, Duration::ZERO),
            max_incarnation: 0,
            run_first_incarnation: 0,
            run_started: SimTime::ZERO,
            disk: Vec::new(),
            commit: GroupCommit::default(),
            disk_full: false,
            journal_fault: false,
            past_counters: Counters::default(),
        }
    }

    /// True if running.
    #[inline]
    pub fn is_running(&self) -> bool {
        self.status == Status::Running
    }

    /// The incarnation a new run started at `now` uses. The daemons take the wall clock in
    /// milliseconds, or one more than the stored last incarnation if that is higher; the
    /// simulator does the same with virtual time, so restarts always go up.
    pub fn next_incarnation(&self, now: SimTime) -> u64 {
        let clock = u64::try_from(now.as_duration().as_millis()).unwrap_or(u64::MAX).max(1);
        clock.max(self.max_incarnation + 1)
    }

    /// The node's clock at simulated time `now`: time elapsed on its own clock since the run
    /// of the simulation began. It never goes backwards and keeps running across restarts (it
    /// is the host's clock, not the process's).
    pub fn clock(&self, now: SimTime) -> Duration {
        let (at, reading) = self.clock_anchor;
        let elapsed = now.since(at);
        if self.clock_rate == 1.0 {
            reading + elapsed
        } else {
            reading + elapsed.mul_f64(self.clock_rate)
        }
    }

    /// The clock's rate.
    pub fn clock_rate(&self) -> f64 {
        self.clock_rate
    }

    /// From `now` on, the clock runs at `rate`.
    pub fn set_clock_rate(&mut self, now: SimTime, rate: f64) {
        self.clock_anchor = (now, self.clock(now));
        self.clock_rate = rate;
    }

    /// Delay in virtual time of a timer of `after` on this node's clock.
    #[inline]
    pub fn timer_delay(&self, after: Duration) -> Duration {
        if self.clock_rate == 1.0 {
            after
        } else {
            after.div_f64(self.clock_rate)
        }
    }

    /// What every run of this node counted, the current one included.
    pub fn counters(&self) -> Counters {
        let mut all = self.past_counters.clone();
        if let Some(core) = &self.core {
            all.add(&core.counters());
        }
        all
    }

    /// Stops the current run, dropping its cores. Returns false if it was not running.
    pub fn stop(&mut self, status: Status) -> bool {
        if !self.is_running() {
            return false;
        }
        if let Some(m) = &self.core {
            self.max_incarnation = self.max_incarnation.max(m.identity().incarnation);
            self.past_counters.add(&m.counters());
        }
        self.core = None;
        self.status = status;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnations_grow_and_clocks_scale_timers() {
        let mut node = SimNode::new(2.0);
        assert_eq!(node.next_incarnation(SimTime::ZERO), 1);
        node.max_incarnation = 90_000;
        let t = SimTime::from_duration(Duration::from_secs(30));
        assert_eq!(node.clock(t), Duration::from_secs(60), "twice as fast");
        assert_eq!(node.next_incarnation(t), 90_001);
        node.max_incarnation = 5;
        assert_eq!(node.next_incarnation(t), 30_000);
        assert_eq!(node.timer_delay(Duration::from_secs(1)), Duration::from_millis(500));
        node.set_clock_rate(t, 0.5);
        assert_eq!(node.clock(SimTime::from_duration(Duration::from_secs(40))), Duration::from_secs(65));
        assert_eq!(node.timer_delay(Duration::from_secs(1)), Duration::from_secs(2));
        assert!(!node.stop(Status::Crashed), "not running");
    }
}
