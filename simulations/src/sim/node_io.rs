//! Driving nodes: starting and stopping runs, handing datagrams and timers to the cores, and
//! performing what they output — sends go through the network as the exact bytes produced,
//! timers are scheduled on the node's own clock, events update the observers.

use bytes::Bytes;
use eccluster_proto::membership::{ClusterEvent, Membership, Output, Timer};
use eccluster_proto::wire;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Simulation;
use crate::invariants::Declaration;
use crate::network::{DropReason, Fate};
use crate::node::{CoreOutput, Observation, Status};
use crate::world::{Channel, Event};

/// foca's name for a membership timer, for violation reports.
pub(super) fn timer_kind(timer: &Timer) -> &'static str {
    match timer {
        Timer::Rejoin => "Rejoin",
        Timer::Swim { timer, .. } => match timer {
            foca::Timer::ProbeRandomMember(_) => "ProbeRandomMember",
            foca::Timer::SendIndirectProbe { .. } => "SendIndirectProbe",
            foca::Timer::ChangeSuspectToDown { .. } => "ChangeSuspectToDown",
            foca::Timer::PeriodicAnnounce(_) => "PeriodicAnnounce",
            foca::Timer::PeriodicAnnounceDown(_) => "PeriodicAnnounceDown",
            foca::Timer::PeriodicGossip(_) => "PeriodicGossip",
            foca::Timer::RemoveDown(_) => "RemoveDown",
        },
    }
}

impl Simulation {
    /// Starts a new run of node `i`: a fresh `Membership` (and plugged-in cores) at an
    /// incarnation above every earlier one, seeded from the simulation's RNG.
    pub(super) fn start_node(&mut self, i: usize) {
        let now = self.world.now();
        let node = &mut self.nodes[i];
        let first_start = node.run == 0;
        let incarnation = node.next_incarnation(now);
        let seed = self.rng.next_u64();
        let host = self.topo.host(i);
        let membership = Membership::new(
            host.member_id(incarnation),
            self.roster.clone(),
            self.config.clone(),
            StdRng::seed_from_u64(seed),
        );
        node.cores = match &self.factory {
            Some(f) => f.cores(host, incarnation, seed.rotate_left(17)),
            None => Vec::new(),
        };
        node.membership = Some(membership);
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
        self.truth_changed(if first_start { "boot" } else { "restart" });
        let instant = self.node_instant(i);
        if let Some(m) = self.nodes[i].membership.as_mut() {
            m.start(instant);
        }
        for core in &mut self.nodes[i].cores {
            core.start(instant);
        }
        self.drain(i);
    }

    /// Stops node `i`: after `Membership::leave` (its goodbyes are sent) when `graceful`,
    /// else at once. In-flight messages it sent still arrive; those to it are dropped.
    pub(super) fn stop_node(&mut self, i: usize, graceful: bool) {
        if !self.nodes[i].is_running() {
            return;
        }
        self.ensure_truth();
        let now = self.world.now();
        if graceful {
            let instant = self.node_instant(i);
            if let Some(m) = self.nodes[i].membership.as_mut() {
                m.leave(instant);
            }
            for core in &mut self.nodes[i].cores {
                core.leave(instant);
            }
            self.drain(i);
        }
        let node = &mut self.nodes[i];
        let last = node.membership.as_ref().map_or(node.run_first_incarnation, |m| m.identity().incarnation);
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
        self.truth_changed(if graceful { "leave" } else { "crash" });
    }

    pub(super) fn deliver(&mut self, from: usize, to: usize, payload: Bytes) {
        if !self.nodes[to].is_running() {
            self.stats.traffic.dropped_dead += 1;
            return;
        }
        self.stats.traffic.delivered += 1;
        self.stats.traffic.delivered_bytes += payload.len() as u64;
        let now = self.world.now();
        self.trace.delivery(now, from, to, &payload, &self.topo);
        let instant = self.node_instant(to);
        let kind = payload.get(1).copied();
        let node = &mut self.nodes[to];
        let sender = self.topo.name(from);
        let result = if kind == Some(wire::Kind::Swim as u8) {
            match node.membership.as_mut() {
                Some(m) => m.handle_datagram(instant, sender, &payload).map_err(|e| e.to_string()),
                None => Ok(()),
            }
        } else {
            match node.cores.iter_mut().find(|c| kind.is_some_and(|k| c.accepts(k))) {
                Some(core) => core.handle_datagram(instant, sender, &payload),
                None => Err("no core for this envelope kind".into()),
            }
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
        if let Some(m) = node.membership.as_mut() {
            m.handle_timer(instant, timer);
        }
        self.drain(i);
    }

    pub(super) fn fire_core_timer(&mut self, i: usize, run: u32, core: usize, token: u64) {
        let node = &mut self.nodes[i];
        if node.run != run || !node.is_running() {
            return;
        }
        let instant = self.epoch + node.clock(self.world.now());
        if let Some(c) = node.cores.get_mut(core) {
            c.handle_timer(instant, token);
        }
        self.drain(i);
    }

    /// Performs node `i`'s outputs until every core is drained.
    pub(super) fn drain(&mut self, i: usize) {
        loop {
            let Some(output) = self.nodes[i].membership.as_mut().and_then(Membership::poll_output) else {
                break;
            };
            match output {
                Output::Send { to, payload } => {
                    let Some(j) = self.topo.index_of_addr(&to.addr) else {
                        self.stats.traffic.sent += 1;
                        self.stats.traffic.unroutable += 1;
                        continue;
                    };
                    self.send(i, j, Channel::Datagram, payload);
                }
                Output::SetTimer { after, timer } => {
                    let node = &self.nodes[i];
                    let at = self.world.now().after(node.timer_delay(after));
                    self.world.schedule(at, Event::Timer { node: i as u32, run: node.run, timer });
                }
                Output::Event(event) => self.on_cluster_event(i, event),
            }
        }
        if !self.nodes[i].cores.is_empty() {
            self.drain_cores(i);
        }
    }

    fn drain_cores(&mut self, i: usize) {
        for c in 0..self.nodes[i].cores.len() {
            while let Some(output) = self.nodes[i].cores.get_mut(c).and_then(|core| core.poll_output()) {
                match output {
                    CoreOutput::Send { to, channel, payload } => match self.topo.index_of_name(&to) {
                        Some(j) => self.send(i, j, channel, payload),
                        None => {
                            self.stats.traffic.sent += 1;
                            self.stats.traffic.unroutable += 1;
                        }
                    },
                    CoreOutput::SetTimer { after, token } => {
                        let node = &self.nodes[i];
                        let at = self.world.now().after(node.timer_delay(after));
                        let event = Event::CoreTimer { node: i as u32, run: node.run, core: c as u16, token };
                        self.world.schedule(at, event);
                    }
                    CoreOutput::Observe(observation) => self.on_observation(i, observation),
                }
            }
        }
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
        if !self.nodes[i].cores.is_empty() {
            let instant = self.node_instant(i);
            for core in &mut self.nodes[i].cores {
                core.handle_cluster_event(instant, &event);
            }
        }
    }

    fn on_observation(&mut self, i: usize, observation: Observation) {
        let now = self.world.now();
        match observation {
            Observation::Applied { epoch, seq } => {
                let v = self.ops.on_applied(i, (epoch, seq), self.current, &self.topo);
                self.record_violations(v);
            }
            Observation::Holds(addr) | Observation::Released(addr) => {
                let holds = matches!(observation, Observation::Holds(_));
                let line = format!("{} {} {addr}", self.topo.name(i), if holds { "acquires" } else { "releases" });
                self.trace.note(now, &line);
                let next = self.ownership.on_change(i, addr, holds, now, &self.net);
                self.schedule_check(next);
                self.views_changed();
            }
            Observation::Sequenced { epoch, seq } => {
                self.ops_log.started.insert((epoch, seq), now);
            }
            Observation::Completed { epoch, seq } => {
                if let Some(started) = self.ops_log.started.remove(&(epoch, seq)) {
                    self.ops_log.completion.push(now.since(started));
                }
            }
        }
    }
}
