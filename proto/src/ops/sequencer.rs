//! The manager's side of ordered operations: assigns ids, fixes each operation's target set
//! when it is sequenced, delivers operations to each node in its per-node order, retransmits
//! what is unanswered, and records answers in the results buffer. No I/O here.
//!
//! Contract: inputs are [`Sequencer::submit`], [`Sequencer::handle_message`],
//! [`Sequencer::handle_timer`], [`Sequencer::handle_member_up`] and
//! [`Sequencer::handle_member_down`]; after any of them drain [`Sequencer::poll_output`].
//! Operations submitted before a drain travel together in one message per node.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use std::time::{Duration, Instant};

use super::{AnswerStatus, Op, OpId, OpMessage, OpsConfig, ResultStatus, Results, Target};
use crate::error::OpsError;
use crate::ids::{MemberId, Role};

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

struct Channel {
    incarnation: u64,
    subcluster: String,
    next_node_seq: u64,
    /// node_seq → (operation, whether it has been sent at least once)
    unacked: BTreeMap<u64, (Op, bool)>,
    retransmit_armed: bool,
}

struct Record {
    command: String,
    pending: BTreeSet<String>,
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
}

impl Sequencer {
    /// A sequencer for manager epoch `epoch` (which must be larger than any earlier run's).
    pub fn new(epoch: u64, config: OpsConfig) -> Self {
        Sequencer {
            epoch,
            next_seq: 1,
            config,
            nodes: BTreeMap::new(),
            ops: BTreeMap::new(),
            results: Results::new(),
            outputs: VecDeque::new(),
            unsent: BTreeSet::new(),
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
        self.results.flush()
    }

    /// Operations sequenced but not yet completed.
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// The live nodes the sequencer delivers to: (name, subcluster).
    pub fn live_nodes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.nodes.iter().map(|(n, c)| (n.as_str(), c.subcluster.as_str()))
    }

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
        self.nodes.insert(
            id.name.clone(),
            Channel {
                incarnation: id.incarnation,
                subcluster: id.subcluster.clone(),
                next_node_seq: 1,
                unacked: BTreeMap::new(),
                retransmit_armed: false,
            },
        );
    }

    /// A member was declared down or left: its unanswered operations are recorded as
    /// "node left" and it receives no more.
    pub fn handle_member_down(&mut self, now: Instant, name: &str) {
        if self.nodes.contains_key(name) {
            self.fail_node(now, name);
            self.nodes.remove(name);
        }
    }

    fn fail_node(&mut self, now: Instant, name: &str) {
        let Some(ch) = self.nodes.get_mut(name) else { return };
        let lost: Vec<Op> = std::mem::take(&mut ch.unacked).into_values().map(|(op, _)| op).collect();
        for op in lost {
            self.results.update(now, &op.command, name, op.id, ResultStatus::NodeLeft, "");
            self.settle(op.id, name);
        }
        self.unsent.remove(name);
    }

    fn settle(&mut self, id: OpId, node: &str) {
        if let Some(rec) = self.ops.get_mut(&id) {
            rec.pending.remove(node);
            if rec.pending.is_empty() {
                self.ops.remove(&id);
                self.outputs.push_back(SequencerOutput::Completed(id));
            }
        }
    }

    /// Sequences `command` for `target`: the target set is fixed now, from the live nodes.
    ///
    /// Refused, with nothing sequenced, when the target is a node that is not a live member
    /// or a subcluster with no live node.
    pub fn submit(&mut self, now: Instant, command: &str, target: Target) -> Result<Submitted, OpsError> {
        let targets: Vec<(String, String)> = match &target {
            Target::Cluster => self.nodes.iter().map(|(n, c)| (n.clone(), c.subcluster.clone())).collect(),
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
        self.next_seq += 1;
        for (name, _) in &targets {
            if let Some(ch) = self.nodes.get_mut(name) {
                let node_seq = ch.next_node_seq;
                ch.next_node_seq += 1;
                ch.unacked.insert(node_seq, (Op { id, node_seq, command: command.to_owned() }, false));
                self.unsent.insert(name.clone());
            }
        }
        self.results.record_sent(now, id, command, &target, &targets);
        let names: Vec<String> = targets.into_iter().map(|(n, _)| n).collect();
        if names.is_empty() {
            self.outputs.push_back(SequencerOutput::Completed(id));
        } else {
            self.ops.insert(id, Record { command: command.to_owned(), pending: names.iter().cloned().collect() });
            self.outputs.push_back(SequencerOutput::SetTimer {
                after: self.config.answer_timeout,
                timer: SequencerTimer::AnswerTimeout(id),
            });
        }
        Ok(Submitted { id, targets: names })
    }

    /// A message from node `from`. Answers for another incarnation of the node are stale
    /// and ignored; an `Apply` is not something a manager accepts.
    pub fn handle_message(&mut self, now: Instant, from: &str, message: OpMessage) -> Result<(), OpsError> {
        let OpMessage::Answers { incarnation, answers } = message else {
            return Err(OpsError::Unexpected { from: from.to_owned(), what: "apply" });
        };
        let Some(ch) = self.nodes.get_mut(from) else {
            return Err(OpsError::NotAMember(from.to_owned()));
        };
        if ch.incarnation != incarnation {
            return Ok(());
        }
        for a in answers {
            let matches = ch.unacked.get(&a.node_seq).is_some_and(|(op, _)| op.id == a.id);
            if !matches {
                continue; // a duplicate answer
            }
            let Some((op, _)) = ch.unacked.remove(&a.node_seq) else { continue };
            let status = match a.status {
                AnswerStatus::Ok => ResultStatus::Ok,
                AnswerStatus::Error => ResultStatus::Error,
            };
            self.results.update(now, &op.command, from, op.id, status, &a.body);
            if let Some(rec) = self.ops.get_mut(&op.id) {
                rec.pending.remove(from);
                if rec.pending.is_empty() {
                    self.ops.remove(&op.id);
                    self.outputs.push_back(SequencerOutput::Completed(op.id));
                }
            }
        }
        Ok(())
    }

    /// A timer fired.
    pub fn handle_timer(&mut self, now: Instant, timer: SequencerTimer) {
        match timer {
            SequencerTimer::AnswerTimeout(id) => {
                if let Some(rec) = self.ops.remove(&id) {
                    for node in &rec.pending {
                        self.results.update(now, &rec.command, node, id, ResultStatus::NoAnswer, "");
                    }
                    self.outputs.push_back(SequencerOutput::Completed(id));
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
