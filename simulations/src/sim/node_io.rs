//! Driving nodes: starting and stopping runs, handing messages and timers to each node's
//! core, and performing what it outputs — sends go through the network as the exact bytes
//! produced, timers are scheduled on the node's own clock, events and address changes update
//! the observers, operations' commands are answered as a node's console would, and a
//! manager's journal writes reach its disk (at once, or group-committed with `[disk] fsync`,
//! what follows them held until they are durable, as the daemon does).

use bytes::Bytes;
use eccluster_proto::membership::{self, ClusterEvent};
use eccluster_proto::node::{Command, Input, Node, Output, Requester, Timer};
use eccluster_proto::ops::journal;
use eccluster_proto::ops::AnswerStatus;
use eccluster_proto::revisions::{FetchOutcome, FollowTiming};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use super::Simulation;
use crate::group_commit;
use crate::invariants::{Declaration, EventWhat};
use crate::network::{DropReason, Fate};
use crate::node::Status;
use crate::world::{Channel, Event};

/// What fired, for violation reports: foca's name for a membership timer.
pub(super) fn timer_what(node: u32, timer: &Timer) -> EventWhat {
    let kind = match timer {
        Timer::Membership(membership::Timer::Rejoin) => "Rejoin",
        Timer::Membership(membership::Timer::Swim { timer, .. }) => match timer {
            foca::Timer::ProbeRandomMember(_) => "ProbeRandomMember",
            foca::Timer::SendIndirectProbe { .. } => "SendIndirectProbe",
            foca::Timer::ChangeSuspectToDown { .. } => "ChangeSuspectToDown",
            foca::Timer::PeriodicAnnounce(_) => "PeriodicAnnounce",
            foca::Timer::PeriodicAnnounceDown(_) => "PeriodicAnnounceDown",
            foca::Timer::PeriodicGossip(_) => "PeriodicGossip",
            foca::Timer::RemoveDown(_) => "RemoveDown",
        },
        Timer::Ops(_) | Timer::DuraVip(_) | Timer::Forwarded(_) | Timer::Revisions | Timer::Holders => return EventWhat::CoreTimer { node },
    };
    EventWhat::Timer { node, kind }
}

/// How long a node's shell takes to pull a configuration revision and reload.
const CONFIG_PULL: std::time::Duration = std::time::Duration::from_millis(20);
/// When a following node looks for revisions without an announcement, and retries.
const CONFIG_FOLLOW: FollowTiming = FollowTiming {
    poll: std::time::Duration::from_secs(30),
    first_retry: std::time::Duration::from_secs(1),
    last_retry: std::time::Duration::from_secs(10),
};

/// Why the simulated journal fails on a full disk, as the daemon's writer reports it.
const JOURNAL_FULL: &str = "appending to control_cache: No space left on device (os error 28)";

/// How long a writer waits before it tries failed journal writes again (the daemon starts at
/// 50 ms and doubles up to 2 s; a fixed wait keeps traces short).
const JOURNAL_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

impl Simulation {
    /// Starts a new run of node `i`: a fresh node core at an incarnation above every earlier
    /// one, seeded from the simulation's RNG.
    pub(super) fn start_node(&mut self, i: usize) {
        let now = self.world.now();
        let node = &mut self.nodes[i];
        let first_start = node.run == 0;
        let incarnation = node.next_incarnation(now);
        let replay = journal::read(&node.disk);
        let seeded = first_start && self.scenario.seeded;
        // A core built ahead was seeded before any of this start's other inputs: only when
        // there are none.
        let plain = replay.records.is_empty()
            && (self.topo.host(i).role != eccluster_proto::Role::Manager || self.revisions.committed.is_empty());
        let (seed, ahead) = if seeded && plain { self.seeded_core_ahead(i, incarnation) } else { (self.rng.next_u64(), None) };
        let seeded_ahead = ahead.is_some();
        let host = self.topo.host(i);
        let core = match ahead.map(Ok).unwrap_or_else(|| Node::new(self.setup.node_config(host, incarnation), StdRng::seed_from_u64(seed))) {
            Ok(core) => core,
            Err(e) => {
                // The bindings were checked when the run was prepared; this cannot happen.
                self.notes.push(format!("at {now}: {} cannot start: {e}", host.name));
                return;
            }
        };
        let node = &mut self.nodes[i];
        node.core = Some(core);
        node.journal_fault = false;
        node.status = Status::Running;
        node.run += 1;
        node.max_incarnation = node.max_incarnation.max(incarnation);
        node.run_first_incarnation = incarnation;
        node.run_started = now;
        self.running.insert(i);
        self.stats.set_running(now, self.running.count());
        self.beliefs.clear_row(i);
        let line = format!("start {}#{incarnation}", self.topo.name(i));
        self.trace.note(now, &line);
        self.truth_changed(if first_start { "boot" } else { "restart" }, Some(i));
        // The configuration server tells a manager that starts the newest revisions (it
        // re-announces them); a node starts on nothing known and hears of them.
        self.revisions.running.remove(&i);
        if self.topo.host(i).role == eccluster_proto::Role::Manager {
            let instant = self.node_instant(i);
            let committed = self.revisions.committed.clone();
            if let Some(core) = self.nodes[i].core.as_mut() {
                for (repo, rev) in &committed {
                    core.config_published(instant, repo, *rev);
                }
            }
        }
        if let Some(d) = &replay.damage {
            self.notes.push(format!("at {now}: {} journal damaged at offset {}: {}", self.topo.name(i), d.offset, d.reason));
        }
        let instant = self.node_instant(i);
        if let Some(core) = self.nodes[i].core.as_mut() {
            if !replay.records.is_empty() {
                core.recover(instant, &replay.records);
            }
            if seeded_ahead {
                // Built and seeded ahead (seeding.rs).
            } else if seeded {
                core.start_seeded(instant, super::seeding::seed_members(&self.topo));
            } else {
                core.start(instant);
            }
            if self.revisions.follow {
                core.config_follow(instant, CONFIG_FOLLOW);
            }
        }
        self.drain(i);
    }

    /// Stops node `i`: after `Node::leave` (its goodbyes are sent) when `graceful`, else at
    /// once. In-flight messages it sent still arrive; those to it are dropped.
    pub(super) fn stop_node(&mut self, i: usize, graceful: bool) {
        if !self.nodes[i].is_running() {
            return;
        }
        self.ensure_truth();
        let now = self.world.now();
        // A graceful stop on a full disk: the daemon gives up on its writer after a while,
        // and what it held is lost as in a crash.
        let graceful_journal = graceful && !self.nodes[i].disk_full;
        if graceful {
            let instant = self.node_instant(i);
            if let Some(core) = self.nodes[i].core.as_mut() {
                core.leave(instant);
            }
            self.drain(i);
            // The daemon waits for its journal writer before it exits.
            while graceful_journal && self.nodes[i].commit.unsynced() + self.nodes[i].commit.held() > 0 {
                let node = &mut self.nodes[i];
                node.commit.flush(&mut node.disk);
                self.release(i);
            }
        }
        if !graceful_journal {
            let unsynced = self.nodes[i].commit.unsynced();
            let held = self.nodes[i].commit.held();
            if unsynced + held > 0 {
                // Any prefix of the writes not yet synced may have reached the disk anyway
                // (none on a full disk).
                let survive = if self.nodes[i].disk_full { 0 } else { self.rng.random_range(0..=unsynced) };
                let node = &mut self.nodes[i];
                node.commit.crash(&mut node.disk, survive);
                let lost = unsynced - survive;
                let line = format!("{} loses {lost} journal write(s) of {unsynced} not synced, and {held} held output(s)", self.topo.name(i));
                self.trace.note(now, &line);
            }
        }
        let node = &mut self.nodes[i];
        let last = node.core.as_ref().map_or(node.run_first_incarnation, |m| m.identity().incarnation);
        let incarnations = (node.run_first_incarnation, last);
        node.stop(if graceful { Status::Left } else { Status::Crashed });
        self.running.remove(i);
        self.stats.set_running(now, self.running.count());
        self.beliefs.clear_row(i);
        self.false_downs.on_stop(i);
        let next = self.ownership.on_stop(i, now, &self.net);
        self.schedule_check(next);
        self.stats.on_stop(i, now, incarnations, graceful, self.topo.len());
        let line = format!("{} {}#{}", if graceful { "leave" } else { "crash" }, self.topo.name(i), last);
        self.trace.note(now, &line);
        self.truth_changed(if graceful { "leave" } else { "crash" }, Some(i));
    }

    pub(super) fn deliver(&mut self, from: usize, to: usize, channel: Channel, payload: Bytes) {
        if !self.nodes[to].is_running() {
            self.stats.traffic.dropped_dead += 1;
            return;
        }
        self.stats.traffic.delivered += 1;
        self.stats.traffic.delivered_bytes += payload.len() as u64;
        let now = self.world.now();
        self.trace.delivery(now, from, to, &payload, &self.topo);
        let instant = self.node_instant(to);
        let sender = self.topo.name(from);
        let input = match channel {
            Channel::Datagram => Input::Datagram { from: sender, payload: &payload },
            Channel::Stream => Input::Message { from: sender, payload: &payload },
        };
        let result = match self.nodes[to].core.as_mut() {
            Some(core) => core.handle(instant, input).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        if result.is_err() {
            self.stats.traffic.rejected += 1;
        }
        self.drain(to);
    }

    pub(super) fn fire_timer(&mut self, i: usize, run: u32, timer: Timer) {
        let node = &mut self.nodes[i];
        if node.run != run || !node.is_running() {
            return;
        }
        let instant = self.epoch + node.clock(self.world.now());
        if let Some(core) = node.core.as_mut() {
            // A timer is never refused.
            if let Err(e) = core.handle(instant, Input::Timer(timer)) {
                self.notes.push(format!("timer refused: {e}"));
            }
        }
        self.drain(i);
    }

    /// Hands node `i` a console command of its cores (a scenario's `broadcast` at a manager);
    /// the answer comes out of [`Simulation::drain`] as a reply to request `request`.
    pub(super) fn command(&mut self, i: usize, request: u64, command: Command) {
        let instant = self.node_instant(i);
        if let Some(core) = self.nodes[i].core.as_mut() {
            core.command(instant, request, command);
        }
        self.drain(i);
    }

    /// Performs node `i`'s outputs until its core is drained. With `[disk] fsync`, journal
    /// writes go to the group commit and every other output waits behind the writes before
    /// it (a console reply goes out at once only in a model of a shell that breaks the rule);
    /// an fsync begins if none runs.
    pub(super) fn drain(&mut self, i: usize) {
        let fsync = self.scenario.disk.fsync;
        let replies_early = self.scenario.disk.replies_before_sync;
        loop {
            let Some(output) = self.nodes[i].core.as_mut().and_then(Node::poll_output) else {
                break;
            };
            if fsync.is_some() {
                let commit = &mut self.nodes[i].commit;
                match output {
                    Output::Journal(write) => commit.write(write),
                    Output::Reply { to: Requester::Console(_), .. } if replies_early => self.perform(i, output),
                    // Acknowledges nothing: not held behind the disk, as in the daemon.
                    output if output.is_refusal() => self.perform(i, output),
                    output if commit.must_hold() => commit.hold(output),
                    output => self.perform(i, output),
                }
                continue;
            }
            self.perform(i, output);
        }
        if let Some(after) = fsync {
            let node = &mut self.nodes[i];
            if node.is_running() && node.commit.begin_sync() {
                let run = node.run;
                let at = self.world.now().after(after);
                self.world.schedule(at, Event::Synced { node: i as u32, run });
            }
        }
    }

    /// The fsync under way at node `i` is done: its writes are on disk, and what waited for
    /// them is performed.
    ///
    /// On a full disk it failed instead: the writes go back to be tried again after
    /// `JOURNAL_RETRY`, nothing held is released, and the core is told (once) that its
    /// journal fails; the first fsync that succeeds again tells it the journal works.
    pub(super) fn journal_synced(&mut self, i: usize, run: u32) {
        let now = self.world.now();
        let instant = self.node_instant(i);
        let name = self.topo.name(i).to_owned();
        let node = &mut self.nodes[i];
        if node.run != run || !node.is_running() {
            return;
        }
        if node.disk_full {
            node.commit.failed();
            if !node.journal_fault {
                node.journal_fault = true;
                if let Some(core) = node.core.as_mut() {
                    core.journal_failed(instant, Some(JOURNAL_FULL.to_owned()));
                }
                self.trace.note(now, &format!("{name} journal write failed: disk full"));
            }
            if node.commit.begin_sync() {
                self.world.schedule(now.after(JOURNAL_RETRY), Event::Synced { node: i as u32, run });
            }
            self.drain(i);
            return;
        }
        node.commit.synced(&mut node.disk);
        if node.journal_fault {
            node.journal_fault = false;
            if let Some(core) = node.core.as_mut() {
                core.journal_failed(instant, None);
            }
            self.trace.note(now, &format!("{name} journal written again"));
        }
        self.release(i);
    }

    /// Node `i`'s shell pulled: a node that follows the repository runs what the server has
    /// now (or, with the server down, keeps what it runs and says why); one that does not runs
    /// what it was asked to fetch. A node restarted since starts from nothing and asks again.
    pub(super) fn config_fetched(&mut self, i: usize, run: u32, revisions: eccluster_proto::revisions::Revisions) {
        if self.nodes[i].run != run || !self.nodes[i].is_running() {
            return;
        }
        let instant = self.node_instant(i);
        let now = self.world.now();
        let name = self.topo.name(i).to_owned();
        let (running, error, outcome) = if self.revisions.server_down {
            self.trace.note(now, &format!("{name} cannot pull: the configuration server is down"));
            let running = self.revisions.running.get(&i).cloned().unwrap_or_default();
            (running, Some("the configuration server does not answer".to_owned()), FetchOutcome::Unreachable)
        } else {
            let subcluster = &self.topo.host(i).subcluster;
            let revisions = if self.revisions.follow {
                eccluster_proto::revisions::followed_by(&self.revisions.committed, subcluster)
            } else {
                revisions
            };
            self.trace.note(now, &format!("{name} runs configuration {revisions:?}"));
            self.revisions.running.insert(i, revisions.clone());
            (revisions, None, FetchOutcome::Done)
        };
        if let Some(core) = self.nodes[i].core.as_mut() {
            core.config_running(instant, running, error);
            core.config_fetch_done(instant, outcome);
        }
        self.drain(i);
        self.views_changed();
    }

    /// Performs node `i`'s held outputs whose writes are durable, then drains its core.
    fn release(&mut self, i: usize) {
        while let Some(output) = self.nodes[i].commit.pop_ready() {
            self.perform(i, output);
        }
        self.drain(i);
    }

    /// Performs one output of node `i`.
    fn perform(&mut self, i: usize, output: Output) {
        match output {
            Output::Send { addr, channel, payload, .. } => {
                let Some(j) = self.topo.index_of_addr(&addr) else {
                    self.stats.traffic.sent += 1;
                    self.stats.traffic.unroutable += 1;
                    return;
                };
                self.send(i, j, channel, payload);
            }
            Output::SetTimer { after, timer } => {
                let node = &self.nodes[i];
                let at = self.world.now().after(node.timer_delay(after));
                self.world.schedule(at, Event::Timer { node: i as u32, run: node.run, timer });
            }
            Output::Event(event) => self.on_cluster_event(i, event),
            Output::Execute(op) => {
                // Commands that are not the cores' run instantly and succeed: the simulator
                // checks their order, not their output.
                self.on_applied(i, (op.id.epoch, op.id.seq));
                self.executed(i, Input::Executed { op: op.id, status: AnswerStatus::Ok, body: String::new() });
            }
            Output::Reply { to: Requester::Operation { id, .. }, result } => {
                self.on_applied(i, (id.epoch, id.seq));
                let (status, body) = match result {
                    Ok(_) => (AnswerStatus::Ok, String::new()),
                    Err(e) => {
                        let why = e.to_string();
                        self.trace.note(self.world.now(), &format!("{} refused operation {id}: {why}", self.topo.name(i)));
                        (AnswerStatus::Error, why)
                    }
                };
                self.executed(i, Input::Executed { op: id, status, body });
            }
            Output::Reply { to: Requester::Console(request), result } => self.on_reply(request, result),
            Output::Acquire(addr) | Output::Release(addr) => {
                let holds = matches!(output, Output::Acquire(_));
                let now = self.world.now();
                let line = format!("{} {} {addr}", self.topo.name(i), if holds { "acquires" } else { "releases" });
                self.trace.note(now, &line);
                let next = self.ownership.on_change(i, addr, holds, now, &self.net);
                self.schedule_check(next);
                self.views_changed();
            }
            Output::Announce(addr) => {
                let line = format!("{} announces {addr} again", self.topo.name(i));
                self.trace.note(self.world.now(), &line);
            }
            Output::Journal(write) => group_commit::apply(&mut self.nodes[i].disk, write),
            Output::ConfigFetch(revisions) => {
                // The shell pulls the working copy: CONFIG_PULL later it runs the revisions.
                let now = self.world.now();
                self.trace.note(now, &format!("{} fetches configuration {revisions:?}", self.topo.name(i)));
                let run = self.nodes[i].run;
                self.world.schedule(now.after(CONFIG_PULL), Event::Fetched { node: i as u32, run, revisions });
            }
            Output::Completed(id) => {
                if let Some(started) = self.ops_log.started.remove(&(id.epoch, id.seq)) {
                    self.ops_log.completion.push(self.world.now().since(started));
                }
            }
        }
    }

    /// Hands node `i` the result of an operation's command (its outputs are drained by the
    /// caller's loop).
    fn executed(&mut self, i: usize, input: Input<'_>) {
        let instant = self.node_instant(i);
        if let Some(core) = self.nodes[i].core.as_mut() {
            if let Err(e) = core.handle(instant, input) {
                self.notes.push(format!("{}: result refused: {e}", self.topo.name(i)));
            }
        }
    }

    fn on_applied(&mut self, i: usize, id: (u64, u64)) {
        let v = self.ops.on_applied(i, id, self.current, &self.topo);
        self.record_violations(v);
    }

    fn send(&mut self, from: usize, to: usize, channel: Channel, payload: Bytes) {
        let traffic = &mut self.stats.traffic;
        traffic.sent += 1;
        traffic.sent_bytes += payload.len() as u64;
        match self.net.route(from, to, self.world.now(), channel, &mut self.rng) {
            Fate::Dropped(DropReason::Loss) => traffic.dropped_loss += 1,
            Fate::Dropped(DropReason::Partition) => traffic.dropped_partition += 1,
            Fate::Arrives { at, duplicate_at } => {
                let (from, to) = (from as u32, to as u32);
                if let Some(dup) = duplicate_at {
                    traffic.duplicated += 1;
                    self.world.schedule(dup, Event::Deliver { from, to, channel, payload: payload.clone() });
                }
                self.world.schedule(at, Event::Deliver { from, to, channel, payload });
            }
        }
    }

    fn on_cluster_event(&mut self, i: usize, event: ClusterEvent) {
        let now = self.world.now();
        self.trace.cluster_event(now, i, &event, &self.topo);
        match &event {
            ClusterEvent::MemberUp(id) => {
                if let Some(y) = self.topo.index_of_addr(&id.addr) {
                    self.ensure_truth();
                    let truth = self.running.contains(y) && self.net.reachable(i, y);
                    self.beliefs.set(i, y, true, truth);
                    self.false_downs.on_up(i, y);
                    self.views_changed();
                }
            }
            ClusterEvent::MemberDown(id) => {
                if let Some(y) = self.topo.index_of_addr(&id.addr) {
                    self.ensure_truth();
                    let member_running = self.running.contains(y);
                    let truth = member_running && self.net.reachable(i, y);
                    self.beliefs.set(i, y, false, truth);
                    let declaration = Declaration {
                        observer: i,
                        member: y,
                        member_running,
                        current_run: member_running && id.incarnation >= self.nodes[y].run_first_incarnation,
                    };
                    let (violation, deadline) = self.false_downs.on_down(declaration, &self.net, self.current, &self.topo);
                    self.record_violations(violation);
                    self.schedule_check(deadline);
                    self.stats.on_member_down(i, self.nodes[i].run_started, y, id.incarnation, now);
                    self.views_changed();
                }
            }
            ClusterEvent::Rejoined(id) => {
                let node = &mut self.nodes[i];
                node.max_incarnation = node.max_incarnation.max(id.incarnation);
            }
            ClusterEvent::MemberRenewed { .. } | ClusterEvent::Joined | ClusterEvent::Isolated => {}
        }
    }
}
