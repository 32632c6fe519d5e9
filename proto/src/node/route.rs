//! The inside of [`Node`]: received messages routed to their core by envelope kind,
//! membership events passed to the cores that follow the view, timers handed back to their
//! core, and every core's outputs turned into the node's one [`Output`] stream. No I/O here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::{Channel, CommandError, HolderCore, Node, NodeError, Output, Reply, Requester, RoleCore, Timer};
use crate::duravip::DuraVipOutput;
use crate::holders::{HoldingsReport, ReporterOutput};
use crate::ids::Role;
use crate::membership::{self, ClusterEvent};
use crate::ops::{AnswerStatus, ApplierOutput, Op, OpMessage, Receipt, SequencerOutput, Target};
use crate::revisions::{FollowerOutput, PublisherOutput, RevisionMessage};
use crate::wire::{self, Kind};

impl Node {
    pub(super) fn on_datagram(&mut self, now: Instant, from: &str, payload: &[u8]) -> Result<(), NodeError> {
        let (kind, _) = wire::decode(payload)?;
        match kind {
            Kind::Swim => Ok(self.membership.handle_datagram(now, from, payload)?),
            Kind::Duravip if self.managers.contains(from) => {
                Err(NodeError::NotHere(format!("DuraVIP datagram from manager {from}: managers hold no addresses")))
            }
            Kind::Duravip => match &mut self.duravip {
                Some(vip) => Ok(vip.handle_datagram(now, from, payload)?),
                None => Err(NodeError::NotHere(format!("DuraVIP datagram from {from}, but this member has no bindings"))),
            },
            Kind::Ops => Err(NodeError::NotHere(format!("operations datagram from {from}: operations travel on streams"))),
            Kind::Config => Err(NodeError::NotHere(format!("configuration datagram from {from}: revisions travel on streams"))),
            Kind::Holders => Err(NodeError::NotHere(format!("DuraVIP holdings datagram from {from}: reports travel on streams"))),
        }
    }

    pub(super) fn on_message(&mut self, now: Instant, from: &str, payload: &[u8]) -> Result<(), NodeError> {
        match wire::decode_message(payload)? {
            (Kind::Config, _) => return self.on_revisions(now, from, payload),
            (Kind::Holders, _) => return self.on_holders(now, from, payload),
            _ => {}
        }
        let message = OpMessage::decode(payload)?;
        match (&mut self.role, message) {
            (RoleCore::Node(applier), message @ OpMessage::Apply { .. }) => {
                if !self.managers.contains(from) {
                    return Err(NodeError::NotHere(format!("operations from {from}, which is not a manager")));
                }
                Ok(applier.handle_message(from, message)?)
            }
            (RoleCore::Manager(seq), message @ OpMessage::Answers { .. }) => Ok(seq.handle_message(now, from, message)?),
            (RoleCore::Manager(_), OpMessage::Submit { request, command }) => {
                info!(node = from, %command, "command forwarded by a node");
                // A node may only ask for what its own console forwards: a DuraVIP move. Anything
                // else would let one node run commands on every other.
                let forwardable = super::line::parse_line(&command)
                    .ok()
                    .and_then(|r| super::Command::parse(Role::Node, &r.words))
                    .is_some_and(|c| matches!(c, Ok(super::Command::DuravipMove { .. })));
                let result = if !forwardable {
                    warn!(node = from, %command, "refused a forwarded command that is not a duravip move");
                    Err(format!("a node may forward only 'cluster duravip move', not '{command}'"))
                } else {
                    match self.submit(now, Target::Cluster, command) {
                        Ok(Reply::Submitted { id, targets, .. }) => Ok(Receipt { id, targets }),
                        Ok(_) => Err("unexpected answer".to_owned()),
                        Err(e) => Err(e.to_string()),
                    }
                };
                self.send_ops(from, &OpMessage::Submitted { request, result });
                Ok(())
            }
            (RoleCore::Node(_), OpMessage::Submitted { request, result }) => {
                if self.forwards.get(&request).is_some_and(|f| f.manager != from) {
                    return Err(NodeError::NotHere(format!("{from} answered a request sent to another manager")));
                }
                let Some(forward) = self.forwards.remove(&request) else {
                    debug!(manager = from, request, "answer to a forwarded command that timed out");
                    return Ok(());
                };
                let result = match result {
                    Ok(receipt) => {
                        let command = String::new();
                        Ok(Reply::Submitted { id: receipt.id, target: Target::Cluster, targets: receipt.targets, command })
                    }
                    Err(why) => Err(CommandError::Forwarded(why)),
                };
                self.outputs.push_back(Output::Reply { to: forward.to, result });
                Ok(())
            }
            (_, message) => {
                let what = match message {
                    OpMessage::Apply { .. } => "apply",
                    OpMessage::Answers { .. } => "answers",
                    OpMessage::Submit { .. } => "submit",
                    OpMessage::Submitted { .. } => "submitted",
                };
                Err(NodeError::Ops(crate::OpsError::Unexpected { from: from.to_owned(), what }))
            }
        }
    }

    /// A configuration-revision message: the newest revisions from a manager at a node, or
    /// what a node runs at a manager.
    fn on_revisions(&mut self, now: Instant, from: &str, payload: &[u8]) -> Result<(), NodeError> {
        let message = RevisionMessage::decode(payload)?;
        let from_manager = self.managers.contains(from);
        match (&mut self.revisions, message) {
            (super::RevisionCore::Follower(f), RevisionMessage::Newest(newest)) if from_manager => {
                f.handle_newest(from, &newest);
                Ok(())
            }
            (super::RevisionCore::Publisher(p), RevisionMessage::Running { revisions, error, knows }) if !from_manager => {
                p.handle_running(now, from, revisions, error, knows);
                Ok(())
            }
            (_, RevisionMessage::Newest(_)) => Err(NodeError::NotHere(format!("newest revisions from {from}, which is not a manager, or at a manager"))),
            (_, RevisionMessage::Running { .. }) => Err(NodeError::NotHere(format!("a node's revisions from {from} at a member that is not a manager, or from a manager"))),
        }
    }

    /// A node's report of the DuraVIP addresses it holds, at a manager. Only nodes report,
    /// each for itself (the report is filed under the authenticated peer); a report that
    /// does not decode is refused and counted.
    fn on_holders(&mut self, now: Instant, from: &str, payload: &[u8]) -> Result<(), NodeError> {
        let HolderCore::Book(book) = &mut self.holders else {
            return Err(NodeError::NotHere(format!("DuraVIP holdings from {from} at a member that is not a manager")));
        };
        if self.managers.contains(from) || !self.roster.contains(from) {
            return Err(NodeError::NotHere(format!("DuraVIP holdings from {from}, which is not a node of the cluster")));
        }
        let report = match HoldingsReport::decode(payload) {
            Ok(report) => report,
            Err(error) => {
                book.handle_refused();
                return Err(error.into());
            }
        };
        let bindings = &self.bindings;
        book.handle_report(now, from, report, |addr| bindings.contains_key(&addr));
        Ok(())
    }

    pub(super) fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Holders => {
                if let HolderCore::Reporter(r) = &mut self.holders {
                    r.handle_timer();
                }
            }
            Timer::Revisions => match &mut self.revisions {
                super::RevisionCore::Publisher(p) => p.handle_timer(),
                super::RevisionCore::Follower(f) => f.handle_timer(now),
            },
            Timer::Membership(t) => self.membership.handle_timer(now, t),
            Timer::Ops(t) => {
                if let RoleCore::Manager(seq) = &mut self.role {
                    seq.handle_timer(now, t);
                }
            }
            Timer::DuraVip(t) => {
                if let Some(vip) = &mut self.duravip {
                    vip.handle_timer(now, t);
                }
            }
            Timer::Forwarded(request) => {
                if let Some(forward) = self.forwards.remove(&request) {
                    let result = Err(CommandError::ForwardTimeout(forward.manager));
                    self.outputs.push_back(Output::Reply { to: forward.to, result });
                }
            }
        }
    }

    /// The address of member `name`, from the roster.
    fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        self.roster.addr(name)
    }

    pub(super) fn send_ops(&mut self, to: &str, message: &OpMessage) {
        let Some(addr) = self.addr_of(to) else {
            warn!(member = to, "no address for an operations message");
            return;
        };
        match message.encode() {
            Ok(payload) => {
                self.outputs.push_back(Output::Send { to: Arc::from(to), addr, channel: Channel::Stream, payload })
            }
            Err(error) => warn!(member = to, %error, "cannot encode an operations message"),
        }
    }

    /// Moves every core's outputs into the node's queue until all are drained (one core's
    /// output can feed another: a membership event changes the DuraVIP view, an applied
    /// operation moves an address).
    pub(super) fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(output) = self.membership.poll_output() {
                progressed = true;
                match output {
                    membership::Output::Send { to, addr, payload } => {
                        self.outputs.push_back(Output::Send { to, addr, channel: Channel::Datagram, payload });
                    }
                    membership::Output::SetTimer { after, timer } => {
                        self.outputs.push_back(Output::SetTimer { after, timer: Timer::Membership(timer) })
                    }
                    membership::Output::Event(event) => {
                        self.route_event(now, &event);
                        self.outputs.push_back(Output::Event(*event));
                    }
                }
            }
            progressed |= self.pump_role(now);
            progressed |= self.pump_duravip();
            progressed |= self.pump_revisions();
            progressed |= self.pump_holders();
            if !progressed {
                break;
            }
        }
    }

    /// Moves the sequencer's journal writes into the node's queue.
    pub(super) fn take_journal(&mut self) -> bool {
        let mut progressed = false;
        if let RoleCore::Manager(seq) = &mut self.role {
            while let Some(write) = seq.poll_journal() {
                progressed = true;
                self.outputs.push_back(Output::Journal(write));
            }
        }
        progressed
    }

    fn pump_role(&mut self, now: Instant) -> bool {
        let mut progressed = self.take_journal();
        loop {
            self.take_journal();
            let output = match &mut self.role {
                RoleCore::Manager(seq) => seq.poll_output().map(Err),
                RoleCore::Node(applier) => applier.poll_output().map(Ok),
            };
            let Some(output) = output else { return progressed };
            progressed = true;
            match output {
                Err(SequencerOutput::Send { to, payload }) | Ok(ApplierOutput::Send { to, payload }) => {
                    match self.addr_of(&to) {
                        Some(addr) => self.outputs.push_back(Output::Send { to: Arc::from(to), addr, channel: Channel::Stream, payload }),
                        None => warn!(member = %to, "no address for an operations message"),
                    }
                }
                Err(SequencerOutput::SetTimer { after, timer }) => {
                    self.outputs.push_back(Output::SetTimer { after, timer: Timer::Ops(timer) })
                }
                Err(SequencerOutput::Completed(id)) => self.outputs.push_back(Output::Completed(id)),
                Ok(ApplierOutput::Execute(op)) => self.run_op(now, op),
            }
        }
    }

    fn pump_duravip(&mut self) -> bool {
        let mut progressed = false;
        while let Some(output) = self.duravip.as_mut().and_then(|v| v.poll_output()) {
            progressed = true;
            match output {
                DuraVipOutput::Send { to, payload } => match self.addr_of(&to) {
                    Some(addr) => self.outputs.push_back(Output::Send { to: Arc::from(to), addr, channel: Channel::Datagram, payload }),
                    None => warn!(member = %to, "no address for a DuraVIP datagram"),
                },
                DuraVipOutput::SetTimer { after, timer } => {
                    self.outputs.push_back(Output::SetTimer { after, timer: Timer::DuraVip(timer) })
                }
                DuraVipOutput::Acquire(addr) => self.outputs.push_back(Output::Acquire(addr)),
                DuraVipOutput::Release(addr) => self.outputs.push_back(Output::Release(addr)),
                DuraVipOutput::Announce(addr) => self.outputs.push_back(Output::Announce(addr)),
            }
        }
        progressed
    }

    fn pump_revisions(&mut self) -> bool {
        let mut progressed = false;
        loop {
            let output = match &mut self.revisions {
                super::RevisionCore::Publisher(p) => p.poll_output().map(Err),
                super::RevisionCore::Follower(f) => f.poll_output().map(Ok),
            };
            let Some(output) = output else { return progressed };
            progressed = true;
            match output {
                Err(PublisherOutput::Send { to, payload }) | Ok(FollowerOutput::Send { to, payload }) => {
                    match self.addr_of(&to) {
                        Some(addr) => self.outputs.push_back(Output::Send { to: Arc::from(to), addr, channel: Channel::Stream, payload }),
                        None => warn!(member = %to, "no address for a revisions message"),
                    }
                }
                Err(PublisherOutput::SetTimer(after)) | Ok(FollowerOutput::SetTimer(after)) => {
                    self.outputs.push_back(Output::SetTimer { after, timer: Timer::Revisions })
                }
                Ok(FollowerOutput::Fetch(revisions)) => self.outputs.push_back(Output::ConfigFetch(revisions)),
            }
        }
    }

    /// Tells the reporter where the DuraVIP core stands now, then moves its reports out.
    fn pump_holders(&mut self) -> bool {
        let HolderCore::Reporter(reporter) = &mut self.holders else { return false };
        if let Some(vip) = &self.duravip {
            reporter.observe(vip.holdings());
        }
        let mut progressed = false;
        while let Some(output) = reporter.poll_output() {
            progressed = true;
            match output {
                ReporterOutput::Send { to, payload } => match self.roster.addr(&to) {
                    Some(addr) => self.outputs.push_back(Output::Send { to: Arc::from(to), addr, channel: Channel::Stream, payload }),
                    None => warn!(member = %to, "no address for a DuraVIP holdings report"),
                },
                ReporterOutput::SetTimer(after) => self.outputs.push_back(Output::SetTimer { after, timer: Timer::Holders }),
            }
        }
        progressed
    }

    /// An operation's turn came: a command of the cores runs here, anything else goes to the
    /// shell.
    fn run_op(&mut self, now: Instant, op: Op) {
        let request = match super::line::parse_line(&op.command) {
            Ok(request) => request,
            Err(e) => {
                if let RoleCore::Node(applier) = &mut self.role {
                    applier.handle_executed(op.id, AnswerStatus::Error, format!("{e}\n"));
                }
                return;
            }
        };
        let to = Requester::Operation { id: op.id, format: request.format };
        match super::Command::parse(Role::Node, &request.words) {
            Some(Ok(command)) => self.run_command(now, to, command),
            Some(Err(e)) => self.outputs.push_back(Output::Reply { to, result: Err(e) }),
            None => self.outputs.push_back(Output::Execute(op)),
        }
    }

    /// A membership event reaches the cores that follow the view.
    fn route_event(&mut self, now: Instant, event: &ClusterEvent) {
        match event {
            ClusterEvent::MemberUp(m) | ClusterEvent::MemberRenewed { to: m, .. } => {
                if let RoleCore::Manager(seq) = &mut self.role {
                    seq.handle_member_up(now, m);
                }
                match (&mut self.revisions, m.role) {
                    (super::RevisionCore::Publisher(p), Role::Node) => p.handle_node_up(&m.name, &m.subcluster),
                    (super::RevisionCore::Follower(f), Role::Manager) => f.handle_manager_up(&m.name),
                    _ => {}
                }
                match (&mut self.holders, m.role) {
                    (HolderCore::Book(b), Role::Node) => {
                        let bindings = &self.bindings;
                        b.handle_node_up(now, &m.name, |addr| bindings.contains_key(&addr))
                    }
                    (HolderCore::Reporter(r), Role::Manager) => r.handle_manager_up(&m.name),
                    _ => {}
                }
                if let Some(vip) = &mut self.duravip {
                    vip.handle_member_up(now, m);
                }
            }
            ClusterEvent::MemberDown(m) => {
                if let RoleCore::Manager(seq) = &mut self.role {
                    seq.handle_member_down(now, &m.name);
                }
                match &mut self.revisions {
                    super::RevisionCore::Publisher(p) => p.handle_node_down(&m.name),
                    super::RevisionCore::Follower(f) => f.handle_manager_down(&m.name),
                }
                match &mut self.holders {
                    HolderCore::Book(b) => b.handle_node_down(&m.name),
                    HolderCore::Reporter(r) => r.handle_manager_down(&m.name),
                }
                if let Some(vip) = &mut self.duravip {
                    vip.handle_member_down(now, m);
                }
            }
            ClusterEvent::Rejoined(m) => {
                if let RoleCore::Node(applier) = &mut self.role {
                    applier.set_incarnation(m.incarnation);
                }
                if let HolderCore::Reporter(r) = &mut self.holders {
                    r.set_incarnation(m.incarnation);
                }
            }
            ClusterEvent::Joined | ClusterEvent::Isolated => {}
        }
    }
}
