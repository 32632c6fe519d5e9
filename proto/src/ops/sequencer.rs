//! The manager's side of ordered operations: assigns ids, fixes each operation's target set
//! when it is sequenced, delivers operations to each node in its per-node order, retransmits
//! what is unanswered, records answers in the results buffer, journals all of it, and after a
//! restart finishes delivering what the journal holds. No I/O here.
//!
//! Contract: inputs are [`Sequencer::submit`], [`Sequencer::handle_message`],
//! [`Sequencer::handle_timer`], [`Sequencer::handle_member_up`] and
//! [`Sequencer::handle_member_down`]; [`Sequencer::recover`] once, before the first of them.
//! After any of them drain [`Sequencer::poll_journal`] first, then [`Sequencer::poll_output`];
//! a journal write must be on disk before any send or reply that follows it is performed.
//! The shell may make the writes of several drains durable with one fsync while it goes on
//! handing inputs in, provided it holds every output that follows them, in order, until that
//! fsync is done (group commit): a crash then loses only writes nothing was performed for.
//! Operations submitted before a drain travel together in one message per node.
//!
//! # Durability
//!
//! Every operation is journaled ([`JournalRecord::Sequenced`]: id, command, and each target's
//! incarnation and place in its node's order) before it is acknowledged or sent, and every
//! change of a result after it. A restarted manager replays the journal: the results buffer
//! comes back, and every operation some target had not answered is delivered again *under its
//! original id and per-node place*, before any operation of the new epoch reaches that node.
//! A node that already ran it answers from memory (its applier deduplicates by `node_seq`);
//! one that did not runs it, in order. A target that restarted meanwhile (another incarnation)
//! is recorded "node left"; one that does not come back within the answer timeout too. While
//! recovered operations are undelivered, new submissions are refused with a clear error, so
//! the new epoch never overtakes the old one at any node.
//!
//! A node the manager declared down is recorded "node left" for what it had not answered, but
//! that is not the end of it: the manager may have been the one cut off. Its operations are
//! kept ([`JournalRecord::Departed`]), across restarts of the manager too, without holding up
//! anything new; if the node comes back in the same incarnation it gets them, in its order
//! (from an earlier run of the manager: before anything of this run, new submissions again
//! refused meanwhile), and its answers replace "node left". A node that comes back as another
//! run had lost them with its old run ([`JournalRecord::Abandoned`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use crate::stats::OpsCounters;
use std::time::{Duration, Instant};

use super::journal::{Assigned, JournalRecord, StoredStatus};
use super::{AnswerStatus, Op, OpId, OpMessage, OpsConfig, ResultStatus, Results, Target};
use crate::error::OpsError;
use crate::ids::{MemberId, Role};

mod durable;

/// What `submit` sequenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The new operation's id.
    pub id: OpId,
    /// The nodes it was sent to (its fixed target set), by name.
    pub targets: Vec<String>,
}

/// Timers of the sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequencerTimer {
    /// Record "no answer" for targets that have not answered `OpId`.
    AnswerTimeout(OpId),
    /// Send unanswered operations to `node` again.
    Retransmit {
        /// The node.
        node: String,
        /// Its incarnation when the timer was set.
        incarnation: u64,
    },
    /// Recovery's bound: recovered operations whose target has not come back are recorded
    /// "node left", and new operations are taken. Only the latest deadline set counts (a node
    /// that comes back with operations of an earlier run sets a new one).
    RecoveryDeadline(u64),
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequencerOutput {
    /// Send `payload` (an encoded [`OpMessage`]) to node `to` on a reliable stream.
    Send {
        /// Node name.
        to: String,
        /// The message, in its envelope.
        payload: Bytes,
    },
    /// Fire `timer` after `after`.
    SetTimer {
        /// Delay.
        after: Duration,
        /// Timer.
        timer: SequencerTimer,
    },
    /// Every target of the operation answered, left, or timed out.
    Completed(OpId),
}

/// The journal is compacted once this much has been appended since the last snapshot, or
/// twice the snapshot's size, whichever is larger.
const COMPACT_MIN: usize = 1 << 20;

struct Channel {
    incarnation: u64,
    subcluster: String,
    /// The epoch of this channel's per-node sequence (an earlier one while recovered
    /// operations are delivered).
    epoch: u64,
    next_node_seq: u64,
    /// node_seq → (operation, whether it has been sent at least once)
    unacked: BTreeMap<u64, (Op, bool)>,
    retransmit_armed: bool,
}

/// Recovered operations for a node the manager has not seen up yet.
struct Awaiting {
    incarnation: u64,
    subcluster: String,
    epoch: u64,
    ops: BTreeMap<u64, Op>,
}

struct Record {
    pending: BTreeSet<String>,
    /// When this run sequenced it (`None` for an operation recovered from the journal).
    sequenced: Option<Instant>,
}

/// The manager's sequencer and results buffer.
pub struct Sequencer {
    epoch: u64,
    next_seq: u64,
    config: OpsConfig,
    nodes: BTreeMap<String, Channel>,
    ops: BTreeMap<OpId, Record>,
    results: Results,
    outputs: VecDeque<SequencerOutput>,
    unsent: BTreeSet<String>,
    /// Recovered operations per node not yet up.
    awaiting: BTreeMap<String, Awaiting>,
    /// Channels of nodes declared down, kept with their unanswered operations: a node that
    /// comes back in the same incarnation (only this manager lost it) continues its per-node
    /// sequence, and gets what it missed, instead of a new sequence its applier would take
    /// for operations it already ran.
    departed: BTreeMap<String, Channel>,
    /// True from a recovery with undelivered operations until they are delivered or the
    /// answer timeout has passed.
    recovering: bool,
    /// The generation of the latest recovery deadline set.
    deadline: u64,
    /// Nodes of the roster, and when the sequencer started: its view is formed once every
    /// node is up or `view_settle` has passed.
    roster_nodes: usize,
    started: Option<Instant>,
    view_formed: bool,
    /// Frames not yet handed out, a compaction to hand out, and the sizes that trigger one.
    journal: BytesMut,
    replace: Option<Bytes>,
    appended: usize,
    snapshot_bytes: usize,
    latest: Option<OpId>,
    /// Why the shell cannot write the journal, while it cannot.
    journal_fault: Option<String>,
    /// Sequenced, completed, timed out, latency (see [`Sequencer::counters`]).
    counters: OpsCounters,
}

impl Sequencer {
    /// A sequencer for manager epoch `epoch` (which must be larger than any earlier run's).
    pub fn new(epoch: u64, config: OpsConfig) -> Self {
        Sequencer {
            epoch,
            next_seq: 1,
            results: Results::with_limits(config.results),
            config,
            nodes: BTreeMap::new(),
            ops: BTreeMap::new(),
            outputs: VecDeque::new(),
            unsent: BTreeSet::new(),
            awaiting: BTreeMap::new(),
            departed: BTreeMap::new(),
            recovering: false,
            deadline: 0,
            roster_nodes: 0,
            started: None,
            view_formed: false,
            journal: BytesMut::new(),
            replace: None,
            appended: 0,
            snapshot_bytes: 0,
            latest: None,
            journal_fault: None,
            counters: OpsCounters::default(),
        }
    }

    /// The number of nodes (not managers) in the roster: the view is formed at once when all
    /// of them are up.
    pub fn with_cluster_nodes(mut self, nodes: usize) -> Self {
        self.roster_nodes = nodes;
        self
    }

    /// The sequencer starts taking part (the member started): the view forms from now. A
    /// sequencer that recovered nothing starts its journal afresh.
    pub fn start(&mut self, now: Instant) {
        self.started = Some(now);
        if self.snapshot_bytes == 0 {
            self.compact();
        }
    }

    /// The epoch of this run.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The results buffer.
    pub fn results(&self) -> &Results {
        &self.results
    }

    /// Empties the results buffer (`flush control cache`); returns the entries dropped.
    pub fn flush_results(&mut self) -> usize {
        self.append(&JournalRecord::Flushed);
        self.results.flush()
    }

    /// What this run counted: operations sequenced, completed and timed out, the latency from
    /// sequencing to the last answer, and the operations in flight.
    pub fn counters(&self) -> OpsCounters {
        let mut counters = self.counters.clone();
        counters.in_flight = self.ops.len() as u64;
        counters
    }

    /// Operations sequenced but not yet completed.
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// True while recovered operations are still being delivered (new ones are refused).
    pub fn recovering(&self) -> bool {
        self.recovering
    }

    /// The live nodes the sequencer delivers to: (name, subcluster).
    pub fn live_nodes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.nodes.iter().map(|(n, c)| (n.as_str(), c.subcluster.as_str()))
    }

    // ---- membership ----

    /// A member is up (or restarted with a new incarnation). Managers are not targets.
    pub fn handle_member_up(&mut self, now: Instant, id: &MemberId) {
        if id.role != Role::Node {
            return;
        }
        if let Some(ch) = self.nodes.get(&id.name) {
            if ch.incarnation == id.incarnation {
                return;
            }
            // A restarted node starts its per-node sequence afresh; what the old run did not
            // answer is recorded as lost with it.
            self.fail_node(now, &id.name);
        }
        if let Some(mut ch) = self.departed.remove(&id.name) {
            if ch.incarnation == id.incarnation {
                // Declared down, yet the same run: its sequence goes on where it stopped, and
                // what it has not answered is sent again (an answer replaces "node left").
                for (_, sent) in ch.unacked.values_mut() {
                    *sent = false;
                }
                if !ch.unacked.is_empty() {
                    self.unsent.insert(id.name.clone());
                }
                if ch.epoch != self.epoch && !ch.unacked.is_empty() {
                    // Operations of an earlier run of the manager: the node gets them before
                    // anything of this run, which would start a new sequence at it.
                    tracing::info!(node = %id.name, operations = ch.unacked.len(), "delivering what an earlier run sequenced for a node now back");
                    self.start_recovery();
                }
                self.nodes.insert(id.name.clone(), ch);
                if self.nodes.len() >= self.roster_nodes {
                    self.view_formed = true;
                }
                self.check_recovered();
                return;
            }
            // Another run of the node: what the old one did not answer is lost with it.
            for (op, _) in ch.unacked.into_values() {
                self.append(&JournalRecord::Abandoned { id: op.id, node: id.name.clone() });
            }
        }
        let mut channel = Channel {
            incarnation: id.incarnation,
            subcluster: id.subcluster.clone(),
            epoch: self.epoch,
            next_node_seq: 1,
            unacked: BTreeMap::new(),
            retransmit_armed: false,
        };
        if let Some(w) = self.awaiting.remove(&id.name) {
            if w.incarnation == id.incarnation {
                // Recovered operations go first, under their original ids and places.
                channel.epoch = w.epoch;
                // After the last place there is none: `submit` refuses in this epoch, and a new
                // epoch starts the node's order afresh anyway.
                channel.next_node_seq = w.ops.keys().next_back().map_or(1, |s| s.saturating_add(1));
                channel.unacked = w.ops.into_iter().map(|(s, op)| (s, (op, false))).collect();
                self.unsent.insert(id.name.clone());
            } else {
                for op in w.ops.into_values() {
                    self.set_result(now, &id.name, op.id, ResultStatus::NodeLeft, "");
                    self.append(&JournalRecord::Abandoned { id: op.id, node: id.name.clone() });
                    self.settle(now, op.id, &id.name);
                }
            }
        }
        self.nodes.insert(id.name.clone(), channel);
        if self.nodes.len() >= self.roster_nodes {
            self.view_formed = true;
        }
        self.check_recovered();
    }

    /// A member was declared down or left: its unanswered operations are recorded as
    /// "node left" and it receives no more.
    pub fn handle_member_down(&mut self, now: Instant, name: &str) {
        if let Some(ch) = self.nodes.get(name) {
            let ops: Vec<(OpId, u64)> = ch.unacked.values().map(|(op, _)| (op.id, op.node_seq)).collect();
            for (id, _) in ops {
                self.set_result(now, name, id, ResultStatus::NodeLeft, "");
                self.settle(now, id, name);
            }
            self.unsent.remove(name);
            if let Some(mut ch) = self.nodes.remove(name) {
                ch.retransmit_armed = false;
                if !ch.unacked.is_empty() {
                    self.append(&JournalRecord::Departed { node: name.to_owned() });
                }
                self.departed.insert(name.to_owned(), ch);
            }
        }
        self.check_recovered();
    }

    fn fail_node(&mut self, now: Instant, name: &str) {
        let Some(ch) = self.nodes.get_mut(name) else { return };
        let lost: Vec<Op> = std::mem::take(&mut ch.unacked).into_values().map(|(op, _)| op).collect();
        for op in lost {
            self.set_result(now, name, op.id, ResultStatus::NodeLeft, "");
            self.append(&JournalRecord::Abandoned { id: op.id, node: name.to_owned() });
            self.settle(now, op.id, name);
        }
        self.unsent.remove(name);
    }

    /// Records a node's result and journals it if it changed anything.
    fn set_result(&mut self, now: Instant, node: &str, id: OpId, status: ResultStatus, body: &str) -> bool {
        let changed = self.results.update(now, node, id, status, body);
        if changed {
            self.append(&JournalRecord::Result {
                id,
                node: node.to_owned(),
                status: StoredStatus::from(status),
                body: body.to_owned(),
            });
        }
        changed
    }

    fn settle(&mut self, now: Instant, id: OpId, node: &str) {
        if let Some(rec) = self.ops.get_mut(&id) {
            rec.pending.remove(node);
            if rec.pending.is_empty() {
                if let Some(at) = rec.sequenced {
                    self.counters.latency.record(now.saturating_duration_since(at));
                }
                self.counters.completed += 1;
                self.ops.remove(&id);
                self.outputs.push_back(SequencerOutput::Completed(id));
            }
        }
    }

    // ---- submissions ----

    /// The shell's report on the journal: `Some(why)` while its writes fail (the shell keeps
    /// retrying them and holds what follows them), `None` once they succeed again. While it
    /// fails, new operations are refused ([`OpsError::JournalUnwritable`]); those sequenced
    /// before go on as soon as their writes are durable.
    pub fn set_journal_fault(&mut self, fault: Option<String>) {
        self.journal_fault = fault;
    }

    /// Why the journal cannot be written, while it cannot.
    pub fn journal_fault(&self) -> Option<&str> {
        self.journal_fault.as_deref()
    }

    fn check_view(&mut self, now: Instant) -> Result<(), OpsError> {
        if let Some(fault) = &self.journal_fault {
            return Err(OpsError::JournalUnwritable(fault.clone()));
        }
        if self.recovering {
            let pending = self.awaiting.values().map(|w| w.ops.len()).sum::<usize>()
                + self.nodes.values().map(|c| c.unacked.values().filter(|(op, _)| op.id.epoch != self.epoch).count()).sum::<usize>();
            return Err(OpsError::Recovering(pending));
        }
        if !self.view_formed {
            let settled = self.started.is_some_and(|s| now.saturating_duration_since(s) >= self.config.view_settle);
            if !settled {
                return Err(OpsError::ViewForming { up: self.nodes.len(), nodes: self.roster_nodes });
            }
            self.view_formed = true;
        }
        Ok(())
    }

    /// Sequences `command` for `target`: the target set is fixed now, from the live nodes.
    ///
    /// Refused, with nothing sequenced, while the journal cannot be written, while recovered
    /// operations are being delivered, while
    /// the manager's view of the cluster is still forming (just after start), when the target
    /// is a node that is not a live member, a subcluster with no live node, or the cluster
    /// with no live node at all, and when no id or place in a target's order is left after
    /// the journal's.
    pub fn submit(&mut self, now: Instant, command: &str, target: Target) -> Result<Submitted, OpsError> {
        self.check_view(now)?;
        let targets: Vec<(String, String)> = match &target {
            Target::Cluster => {
                let t: Vec<_> = self.nodes.iter().map(|(n, c)| (n.clone(), c.subcluster.clone())).collect();
                if t.is_empty() {
                    return Err(OpsError::NoLiveNodes);
                }
                t
            }
            Target::Subcluster(sc) => {
                let t: Vec<_> = self
                    .nodes
                    .iter()
                    .filter(|(_, c)| &c.subcluster == sc)
                    .map(|(n, c)| (n.clone(), c.subcluster.clone()))
                    .collect();
                if t.is_empty() {
                    return Err(OpsError::NoLiveNode(sc.clone()));
                }
                t
            }
            Target::Node(n) => match self.nodes.get(n) {
                Some(c) => vec![(n.clone(), c.subcluster.clone())],
                None => return Err(OpsError::NotAMember(n.clone())),
            },
        };
        let id = OpId { epoch: self.epoch, seq: self.next_seq };
        // Only after recovering a journal of the last epoch (see `recover`) can the last id,
        // or the last place in a node's order, be taken: nothing follows them.
        let placeless = targets
            .iter()
            .filter_map(|(n, _)| self.nodes.get(n))
            .any(|ch| ch.epoch == self.epoch && ch.next_node_seq == u64::MAX);
        if placeless || self.latest.is_some_and(|latest| id <= latest) {
            return Err(OpsError::IdsExhausted);
        }
        self.next_seq = self.next_seq.saturating_add(1);
        self.latest = Some(id);
        let mut assigned = Vec::with_capacity(targets.len());
        let mut abandoned = Vec::new();
        for (name, _) in &targets {
            if let Some(ch) = self.nodes.get_mut(name) {
                if ch.epoch != self.epoch {
                    // Recovered operations this node never answered within the answer timeout:
                    // the new epoch's sequence replaces them (an answer that still comes is
                    // recorded as late).
                    abandoned.extend(std::mem::take(&mut ch.unacked).into_values().map(|(op, _)| (name.clone(), op.id)));
                    ch.epoch = self.epoch;
                    ch.next_node_seq = 1;
                }
                let node_seq = ch.next_node_seq;
                ch.next_node_seq += 1;
                ch.unacked.insert(node_seq, (Op { id, node_seq, command: command.to_owned() }, false));
                assigned.push(Assigned {
                    node: name.clone(),
                    subcluster: ch.subcluster.clone(),
                    incarnation: ch.incarnation,
                    node_seq,
                });
                self.unsent.insert(name.clone());
            }
        }
        for (node, old) in abandoned {
            self.set_result(now, &node, old, ResultStatus::NoAnswer, "");
            self.append(&JournalRecord::Abandoned { id: old, node: node.clone() });
            self.settle(now, old, &node);
        }
        self.append(&JournalRecord::Sequenced { id, command: command.to_owned(), target: target.clone(), nodes: assigned });
        self.results.record_sent(now, id, command, &target, &targets);
        let names: Vec<String> = targets.into_iter().map(|(n, _)| n).collect();
        self.ops.insert(id, Record { pending: names.iter().cloned().collect(), sequenced: Some(now) });
        self.counters.sequenced += 1;
        self.outputs.push_back(SequencerOutput::SetTimer {
            after: self.config.answer_timeout,
            timer: SequencerTimer::AnswerTimeout(id),
        });
        Ok(Submitted { id, targets: names })
    }

    /// A message from node `from`. An answer to an operation this node still owes is taken;
    /// any other answer from it to an operation of the results buffer (from an earlier
    /// incarnation, after it was declared down, after the answer timeout) is late but is what
    /// ran, and is recorded as such. An `Apply` is not something a manager accepts.
    pub fn handle_message(&mut self, now: Instant, from: &str, message: OpMessage) -> Result<(), OpsError> {
        let OpMessage::Answers { answers, .. } = message else {
            return Err(OpsError::Unexpected { from: from.to_owned(), what: "apply" });
        };
        for a in answers {
            let status = match a.status {
                AnswerStatus::Ok => ResultStatus::Ok,
                AnswerStatus::Error => ResultStatus::Error,
            };
            // Ids are unique: the operation at this place of the channel is this one or not.
            let owed = self
                .nodes
                .get_mut(from)
                .filter(|ch| ch.unacked.get(&a.node_seq).is_some_and(|(op, _)| op.id == a.id))
                .and_then(|ch| ch.unacked.remove(&a.node_seq));
            if owed.is_some() {
                self.set_result(now, from, a.id, status, &a.body);
                self.settle(now, a.id, from);
                continue;
            }
            // From a node declared down: it is not sent again when the node is back.
            if let Some(ch) = self.departed.get_mut(from) {
                if ch.unacked.get(&a.node_seq).is_some_and(|(op, _)| op.id == a.id) {
                    ch.unacked.remove(&a.node_seq);
                }
            }
            let late = self
                .results
                .retrieve_node(from, self.results.command_of(a.id).unwrap_or_default())
                .is_some_and(|r| r.result.id == a.id && matches!(r.result.status, ResultStatus::NoAnswer | ResultStatus::NodeLeft));
            if late && self.set_result(now, from, a.id, status, &a.body) {
                tracing::info!(node = from, op = %a.id, "late answer recorded");
            }
        }
        self.check_recovered();
        Ok(())
    }

    /// A timer fired.
    pub fn handle_timer(&mut self, now: Instant, timer: SequencerTimer) {
        match timer {
            SequencerTimer::AnswerTimeout(id) => {
                if let Some(rec) = self.ops.remove(&id) {
                    self.counters.timed_out += 1;
                    for node in &rec.pending {
                        self.set_result(now, node, id, ResultStatus::NoAnswer, "");
                    }
                    self.outputs.push_back(SequencerOutput::Completed(id));
                }
            }
            SequencerTimer::RecoveryDeadline(generation) => {
                if generation != self.deadline {
                    return;
                }
                for (node, w) in std::mem::take(&mut self.awaiting) {
                    for op in w.ops.into_values() {
                        self.set_result(now, &node, op.id, ResultStatus::NodeLeft, "");
                        self.append(&JournalRecord::Abandoned { id: op.id, node: node.clone() });
                        self.settle(now, op.id, &node);
                    }
                }
                if self.recovering {
                    tracing::warn!("recovery reached the answer timeout; taking new operations");
                    self.recovering = false;
                }
            }
            SequencerTimer::Retransmit { node, incarnation } => {
                let after = self.config.retransmit_after;
                let max = self.config.max_batch;
                let Some(ch) = self.nodes.get_mut(&node) else { return };
                if ch.incarnation != incarnation {
                    return;
                }
                ch.retransmit_armed = false;
                let ops: Vec<Op> = ch.unacked.values().filter(|(_, sent)| *sent).map(|(op, _)| op.clone()).collect();
                for chunk in ops.chunks(max.max(1)) {
                    let message = OpMessage::Apply { incarnation, ops: chunk.to_vec() };
                    push_send(&mut self.outputs, &node, &message);
                }
                if !ch.unacked.is_empty() {
                    ch.retransmit_armed = true;
                    self.outputs.push_back(SequencerOutput::SetTimer {
                        after,
                        timer: SequencerTimer::Retransmit { node, incarnation },
                    });
                }
            }
        }
    }

    /// The next thing to do. Operations submitted since the last drain are batched into one
    /// `Apply` per node (up to `max_batch` operations each).
    pub fn poll_output(&mut self) -> Option<SequencerOutput> {
        if self.outputs.is_empty() && !self.unsent.is_empty() {
            self.flush_unsent();
        }
        self.outputs.pop_front()
    }

    fn flush_unsent(&mut self) {
        let max = self.config.max_batch.max(1);
        let after = self.config.retransmit_after;
        for name in std::mem::take(&mut self.unsent) {
            let Some(ch) = self.nodes.get_mut(&name) else { continue };
            let mut batch = Vec::new();
            for (op, sent) in ch.unacked.values_mut().filter(|(_, sent)| !*sent) {
                *sent = true;
                batch.push(op.clone());
            }
            for chunk in batch.chunks(max) {
                let message = OpMessage::Apply { incarnation: ch.incarnation, ops: chunk.to_vec() };
                push_send(&mut self.outputs, &name, &message);
            }
            if !ch.retransmit_armed && !ch.unacked.is_empty() {
                ch.retransmit_armed = true;
                self.outputs.push_back(SequencerOutput::SetTimer {
                    after,
                    timer: SequencerTimer::Retransmit { node: name.clone(), incarnation: ch.incarnation },
                });
            }
        }
    }
}

/// Queues `message` for `to`, encoded. A message too large for a stream (a batch of huge
/// commands) cannot be sent at all: it is dropped with an error, and its operations end as
/// "no answer" at their timeout.
fn push_send(outputs: &mut VecDeque<SequencerOutput>, to: &str, message: &OpMessage) {
    match message.encode() {
        Ok(payload) => outputs.push_back(SequencerOutput::Send { to: to.to_owned(), payload }),
        Err(error) => tracing::error!(node = to, %error, "cannot encode operations for a node"),
    }
}

#[cfg(test)]
mod tests;
