//! A simulated node: the real `Membership` core of one host plus any other cores plugged in
//! beside it, its run state (running, crashed, left), its clock rate and incarnation history.
//!
//! Other cores (ordered operations, DuraVIP ownership) plug in through [`NodeCore`], built
//! per node run by a [`CoreFactory`]. A core receives the datagrams whose envelope kind it
//! [accepts](NodeCore::accepts), its own timers (as tokens), and every membership
//! [`ClusterEvent`] of its node (the view it follows); it reports what the invariants watch —
//! operations applied, addresses held — as [`Observation`]s. Nothing here schedules or
//! delivers anything: the simulation drives the node and performs its outputs.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eccluster_proto::membership::{ClusterEvent, Membership};
use eccluster_proto::ops::Target;

use crate::time::SimTime;
use crate::topology::Host;
use crate::world::Channel;

/// What a plugged-in core asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreOutput {
    /// Send `payload` to the member named `to`.
    Send {
        /// Destination host name.
        to: String,
        /// Datagram or stream.
        channel: Channel,
        /// The encoded message, in its envelope.
        payload: Bytes,
    },
    /// Call `handle_timer(token)` after `after` of the node's own clock.
    SetTimer {
        /// Delay on the node's clock.
        after: Duration,
        /// The core's token.
        token: u64,
    },
    /// Something the invariants check.
    Observe(Observation),
}

/// A fact a core reports for the invariants of ordered operations and DuraVIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The node applied ordered operation `(epoch, seq)`: applied ids must grow on each node
    /// and none may be applied twice.
    Applied {
        /// Manager epoch.
        epoch: u64,
        /// Sequence within the epoch.
        seq: u64,
    },
    /// The node now holds (has configured) this address.
    Holds(IpAddr),
    /// The node no longer holds this address.
    Released(IpAddr),
    /// The manager sequenced operation `(epoch, seq)`.
    Sequenced {
        /// Manager epoch.
        epoch: u64,
        /// Sequence within the epoch.
        seq: u64,
    },
    /// The manager's operation `(epoch, seq)` is complete: every target answered, left, or
    /// timed out.
    Completed {
        /// Manager epoch.
        epoch: u64,
        /// Sequence within the epoch.
        seq: u64,
    },
}

/// A sans-io core run beside membership on every node.
pub trait NodeCore {
    /// Short name for reports and traces.
    fn name(&self) -> &'static str;
    /// True if datagrams whose envelope kind byte is `kind` are for this core.
    fn accepts(&self, kind: u8) -> bool;
    /// The node's run started (called once, right after the core was built).
    fn start(&mut self, _now: Instant) {}
    /// The node is leaving gracefully; its outputs are still sent before it stops.
    fn leave(&mut self, _now: Instant) {}
    /// A console command submitted at this node (the scenario's `broadcast` steps go to a
    /// running manager). Returns what the console would print, or why it was refused.
    fn handle_command(&mut self, _now: Instant, _command: &str, _target: &Target) -> Result<String, String> {
        Err(format!("{} takes no console commands", self.name()))
    }
    /// A message arrived from the member named `from`.
    fn handle_datagram(&mut self, now: Instant, from: &str, payload: &[u8]) -> Result<(), String>;
    /// A timer set by [`CoreOutput::SetTimer`] fired.
    fn handle_timer(&mut self, now: Instant, token: u64);
    /// The node's membership core published an event.
    fn handle_cluster_event(&mut self, now: Instant, event: &ClusterEvent);
    /// The next output, drained to empty after every input.
    fn poll_output(&mut self) -> Option<CoreOutput>;
}

/// Builds the cores that run beside membership, once per node run.
pub trait CoreFactory {
    /// The cores for a new run of `host` at `incarnation`; `seed` seeds any RNG they need.
    fn cores(&self, host: &Host, incarnation: u64, seed: u64) -> Vec<Box<dyn NodeCore>>;
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
    /// The membership core of the current run (`None` while stopped).
    pub membership: Option<Membership>,
    /// Cores plugged in beside membership for the current run.
    pub cores: Vec<Box<dyn NodeCore>>,
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
}

impl SimNode {
    /// A node that has not started.
    pub fn new(clock_rate: f64) -> SimNode {
        SimNode {
            membership: None,
            cores: Vec::new(),
            status: Status::NotStarted,
            run: 0,
            clock_rate,
            clock_anchor: (SimTime::ZERO, Duration::ZERO),
            max_incarnation: 0,
            run_first_incarnation: 0,
            run_started: SimTime::ZERO,
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

    /// Stops the current run, dropping its cores. Returns false if it was not running.
    pub fn stop(&mut self, status: Status) -> bool {
        if !self.is_running() {
            return false;
        }
        if let Some(m) = &self.membership {
            self.max_incarnation = self.max_incarnation.max(m.identity().incarnation);
        }
        self.membership = None;
        self.cores.clear();
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
