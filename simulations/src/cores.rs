//! The cores that run beside membership on every simulated host, exactly as the daemons run
//! them: the manager's ordered-operations [`Sequencer`], each node's [`Applier`] and, when
//! the scenario declares bindings, its [`DuraVip`] ownership core.
//!
//! [`ClusterCore`] is the simulator's shell around them, as `src/driver.rs` is the real one:
//! messages travel as the bytes `wire::encode_ops` and the DuraVIP codec produce, membership
//! events go to the cores that follow the view, timers become tokens, and a node "runs" an
//! operation's command at once — `cluster duravip move` and `cluster duravip announce view`
//! through its DuraVIP core, anything else answered as done. What the invariants watch comes
//! out as [`Observation`]s.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use eccluster_proto::duravip::{Binding, DuraVip, DuraVipConfig, DuraVipOutput, DuraVipTimer};
use eccluster_proto::membership::ClusterEvent;
use eccluster_proto::ops::{
    AnswerStatus, Applier, ApplierOutput, Op, OpsConfig, Sequencer, SequencerOutput, SequencerTimer, Target,
};
use eccluster_proto::{wire, MemberId, Role};

use crate::node::{CoreFactory, CoreOutput, NodeCore, Observation};
use crate::topology::Host;
use crate::world::Channel;

/// What every host of a run gets beside membership.
#[derive(Debug, Clone, Default)]
pub struct ClusterCores {
    /// Tuning of ordered operations.
    pub ops: OpsConfig,
    /// DuraVIP bindings and tuning; `None` runs no DuraVIP core.
    pub duravip: Option<(Vec<Binding>, DuraVipConfig)>,
}

impl CoreFactory for ClusterCores {
    fn cores(&self, host: &Host, incarnation: u64, _seed: u64) -> Vec<Box<dyn NodeCore>> {
        vec![Box::new(ClusterCore::new(host.member_id(incarnation), self))]
    }
}

/// What a host runs beside membership, by role.
enum Inner {
    Manager(Sequencer),
    Node { applier: Applier, duravip: Option<Box<DuraVip>> },
}

/// A timer a core set, behind the token the simulation knows it by.
enum Armed {
    Ops(SequencerTimer),
    Vip(DuraVipTimer),
}

/// One host's operations core (sequencer or applier) and DuraVIP core.
pub struct ClusterCore {
    role: Inner,
    timers: BTreeMap<u64, Armed>,
    next_token: u64,
    out: VecDeque<CoreOutput>,
}

impl ClusterCore {
    /// The cores of a host running as `me`. The manager's epoch is its incarnation (both are
    /// start counters that only grow, as in the daemons). Bindings were checked when the
    /// scenario was loaded ([`ClusterCores::check`]), so a node whose DuraVIP core cannot be
    /// built cannot happen; it would run without one.
    pub fn new(me: MemberId, setup: &ClusterCores) -> ClusterCore {
        let role = match me.role {
            Role::Manager => Inner::Manager(Sequencer::new(me.incarnation, setup.ops.clone())),
            Role::Node => {
                let duravip = setup
                    .duravip
                    .as_ref()
                    .and_then(|(bindings, config)| DuraVip::new(me.clone(), bindings.clone(), config.clone()).ok())
                    .map(Box::new);
                Inner::Node { applier: Applier::new(me.incarnation, setup.ops.clone()), duravip }
            }
        };
        ClusterCore { role, timers: BTreeMap::new(), next_token: 0, out: VecDeque::new() }
    }

    /// Moves every output of the inner cores into `out`, running operations as the applier
    /// hands them over, until all are drained.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            match &mut self.role {
                Inner::Manager(seq) => {
                    while let Some(o) = seq.poll_output() {
                        progressed = true;
                        match o {
                            SequencerOutput::Send { to, message } => {
                                if let Ok(payload) = wire::encode_ops(&message) {
                                    self.out.push_back(CoreOutput::Send { to, channel: Channel::Stream, payload });
                                }
                            }
                            SequencerOutput::SetTimer { after, timer } => {
                                self.next_token += 1;
                                self.timers.insert(self.next_token, Armed::Ops(timer));
                                self.out.push_back(CoreOutput::SetTimer { after, token: self.next_token });
                            }
                            SequencerOutput::Completed(id) => {
                                self.out.push_back(CoreOutput::Observe(Observation::Completed {
                                    epoch: id.epoch,
                                    seq: id.seq,
                                }));
                            }
                        }
                    }
                }
                Inner::Node { applier, duravip } => {
                    let mut executed = Vec::new();
                    while let Some(o) = applier.poll_output() {
                        progressed = true;
                        match o {
                            ApplierOutput::Execute(op) => executed.push(op),
                            ApplierOutput::Send { to, message } => {
                                if let Ok(payload) = wire::encode_ops(&message) {
                                    self.out.push_back(CoreOutput::Send { to, channel: Channel::Stream, payload });
                                }
                            }
                        }
                    }
                    if let Some(vip) = duravip.as_mut() {
                        while let Some(o) = vip.poll_output() {
                            progressed = true;
                            match o {
                                DuraVipOutput::Send { to, payload } => {
                                    self.out.push_back(CoreOutput::Send { to, channel: Channel::Datagram, payload });
                                }
                                DuraVipOutput::SetTimer { after, timer } => {
                                    self.next_token += 1;
                                    self.timers.insert(self.next_token, Armed::Vip(timer));
                                    self.out.push_back(CoreOutput::SetTimer { after, token: self.next_token });
                                }
                                DuraVipOutput::Acquire(addr) => {
                                    self.out.push_back(CoreOutput::Observe(Observation::Holds(addr)));
                                }
                                DuraVipOutput::Release(addr) => {
                                    self.out.push_back(CoreOutput::Observe(Observation::Released(addr)));
                                }
                            }
                        }
                    }
                    for op in executed {
                        self.out.push_back(CoreOutput::Observe(Observation::Applied { epoch: op.id.epoch, seq: op.id.seq }));
                        let (status, body) = execute(duravip.as_deref_mut(), now, &op);
                        applier.handle_executed(op.id, status, body);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }
}

/// Runs one operation's command on a node, as the node's console would.
fn execute(duravip: Option<&mut DuraVip>, now: Instant, op: &Op) -> (AnswerStatus, String) {
    let words: Vec<&str> = op.command.split_whitespace().collect();
    let term = (op.id.epoch, op.id.seq);
    match (words.as_slice(), duravip) {
        (["cluster", "duravip", "move", addr, "to", host], Some(vip)) => match addr.parse::<IpAddr>() {
            Ok(addr) => match vip.move_to(now, term, addr, host) {
                Ok(body) => (AnswerStatus::Ok, body),
                Err(e) => (AnswerStatus::Error, format!("{e}\n")),
            },
            Err(_) => (AnswerStatus::Error, format!("cluster duravip move: {addr:?} is not an IP address\n")),
        },
        (["cluster", "duravip", "announce", "view"], Some(vip)) => (AnswerStatus::Ok, vip.announce_view(now, term)),
        (["cluster", "duravip", ..], None) => (AnswerStatus::Error, "DuraVIP is not enabled on this node\n".into()),
        _ => (AnswerStatus::Ok, String::new()),
    }
}

impl NodeCore for ClusterCore {
    fn name(&self) -> &'static str {
        match self.role {
            Inner::Manager(_) => "sequencer",
            Inner::Node { .. } => "applier+duravip",
        }
    }

    fn accepts(&self, kind: u8) -> bool {
        kind == wire::Kind::Ops as u8 || kind == wire::Kind::Duravip as u8
    }

    fn start(&mut self, now: Instant) {
        if let Inner::Node { duravip: Some(vip), .. } = &mut self.role {
            vip.start(now);
        }
        self.pump(now);
    }

    fn leave(&mut self, now: Instant) {
        if let Inner::Node { duravip: Some(vip), .. } = &mut self.role {
            vip.leave(now);
        }
        self.pump(now);
    }

    fn handle_command(&mut self, now: Instant, command: &str, target: &Target) -> Result<String, String> {
        let Inner::Manager(seq) = &mut self.role else {
            return Err("only the manager sequences operations".into());
        };
        let submitted = seq.submit(now, command, target.clone()).map_err(|e| e.to_string())?;
        let (epoch, seq) = (submitted.id.epoch, submitted.id.seq);
        self.out.push_back(CoreOutput::Observe(Observation::Sequenced { epoch, seq }));
        self.pump(now);
        Ok(format!("operation {} sent to {} node(s)", submitted.id, submitted.targets.len()))
    }

    fn handle_datagram(&mut self, now: Instant, from: &str, payload: &[u8]) -> Result<(), String> {
        let result = match payload.get(1).copied() {
            Some(k) if k == wire::Kind::Ops as u8 => {
                let message = wire::decode_ops(payload).map_err(|e| e.to_string())?;
                match &mut self.role {
                    Inner::Manager(seq) => seq.handle_message(now, from, message).map_err(|e| e.to_string()),
                    Inner::Node { applier, .. } => applier.handle_message(from, message).map_err(|e| e.to_string()),
                }
            }
            Some(k) if k == wire::Kind::Duravip as u8 => match &mut self.role {
                Inner::Node { duravip: Some(vip), .. } => vip.handle_datagram(now, from, payload).map_err(|e| e.to_string()),
                _ => Err("DuraVIP message at a host without DuraVIP".into()),
            },
            _ => Err("not an operations or DuraVIP message".into()),
        };
        self.pump(now);
        result
    }

    fn handle_timer(&mut self, now: Instant, token: u64) {
        match (self.timers.remove(&token), &mut self.role) {
            (Some(Armed::Ops(t)), Inner::Manager(seq)) => seq.handle_timer(now, t),
            (Some(Armed::Vip(t)), Inner::Node { duravip: Some(vip), .. }) => vip.handle_timer(now, t),
            _ => {}
        }
        self.pump(now);
    }

    fn handle_cluster_event(&mut self, now: Instant, event: &ClusterEvent) {
        match (&mut self.role, event) {
            (Inner::Manager(seq), ClusterEvent::MemberUp(m)) => seq.handle_member_up(now, m),
            (Inner::Manager(seq), ClusterEvent::MemberRenewed { to, .. }) => seq.handle_member_up(now, to),
            (Inner::Manager(seq), ClusterEvent::MemberDown(m)) => seq.handle_member_down(now, &m.name),
            (Inner::Node { applier, .. }, ClusterEvent::Rejoined(m)) => applier.set_incarnation(m.incarnation),
            _ => {}
        }
        if let Inner::Node { duravip: Some(vip), .. } = &mut self.role {
            match event {
                ClusterEvent::MemberUp(m) => vip.handle_member_up(now, m),
                ClusterEvent::MemberRenewed { to, .. } => vip.handle_member_up(now, to),
                ClusterEvent::MemberDown(m) => vip.handle_member_down(now, m),
                _ => {}
            }
        }
        self.pump(now);
    }

    fn poll_output(&mut self) -> Option<CoreOutput> {
        self.out.pop_front()
    }
}

impl ClusterCores {
    /// Checks the DuraVIP bindings by building the core of `host`, as every node will.
    pub fn check(&self, host: &Host) -> Result<(), String> {
        match &self.duravip {
            Some((bindings, config)) => DuraVip::new(host.member_id(1), bindings.clone(), config.clone())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}
