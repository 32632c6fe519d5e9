//! A node's side of ordered operations: runs the operations addressed to it strictly in
//! per-node order, one at a time, exactly once; answers each; answers retransmissions of
//! what it already ran from memory. No I/O here: running a command is an output
//! ([`ApplierOutput::Execute`]) whose result comes back through [`Applier::handle_executed`].

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::{Answer, AnswerStatus, Op, OpId, OpMessage, OpsConfig};
use crate::error::OpsError;

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplierOutput {
    /// Run this command, then call `handle_executed` with its result.
    Execute(Op),
    /// Send `payload` (an encoded [`OpMessage`]) to `to` (the manager) on a reliable stream.
    Send {
        /// Manager name.
        to: String,
        /// The message, in its envelope.
        payload: Bytes,
    },
}

/// The applier of one node incarnation.
pub struct Applier {
    incarnation: u64,
    config: OpsConfig,
    epoch: u64,
    next: u64,
    manager: Option<String>,
    buffered: BTreeMap<u64, Op>,
    /// The operation being run, and the generation of the sequence it belongs to.
    running: Option<(Op, u64)>,
    /// Grows whenever the per-node sequence starts afresh (new incarnation, new epoch).
    generation: u64,
    remembered: BTreeMap<u64, Answer>,
    remembered_order: VecDeque<u64>,
    unsent: Vec<Answer>,
    applied: VecDeque<OpId>,
    applied_total: u64,
    outputs: VecDeque<ApplierOutput>,
}

impl Applier {
    /// The applier of a node whose current incarnation is `incarnation`.
    pub fn new(incarnation: u64, config: OpsConfig) -> Self {
        Applier {
            incarnation,
            config,
            epoch: 0,
            next: 1,
            manager: None,
            buffered: BTreeMap::new(),
            running: None,
            generation: 0,
            remembered: BTreeMap::new(),
            remembered_order: VecDeque::new(),
            unsent: Vec::new(),
            applied: VecDeque::new(),
            applied_total: 0,
            outputs: VecDeque::new(),
        }
    }

    /// Our incarnation changed (we were declared down and rejoined): operations for the old
    /// one will be refused, and the manager starts a new per-node sequence.
    pub fn set_incarnation(&mut self, incarnation: u64) {
        if incarnation != self.incarnation {
            self.incarnation = incarnation;
            self.reset(self.epoch);
        }
    }

    /// A fresh per-node sequence. An operation still running belongs to the old one: it runs
    /// to its end and its answer is still sent (the manager records it as late), but it
    /// moves nothing in the new sequence.
    fn reset(&mut self, epoch: u64) {
        self.generation += 1;
        self.epoch = epoch;
        self.next = 1;
        self.buffered.clear();
        self.remembered.clear();
        self.remembered_order.clear();
    }

    /// The most recent applied operation ids, oldest first (up to `applied_memory`).
    pub fn applied(&self) -> impl Iterator<Item = &OpId> {
        self.applied.iter()
    }

    /// How many operations this incarnation has applied in all.
    pub fn applied_total(&self) -> u64 {
        self.applied_total
    }

    /// The operation being run, if any.
    pub fn running(&self) -> Option<&Op> {
        self.running.as_ref().map(|(op, _)| op)
    }

    /// Operations received but waiting for an earlier one (a gap) or for the running one.
    pub fn waiting(&self) -> usize {
        self.buffered.len()
    }

    /// A message from `from`. Operations for another incarnation of this node, or from an
    /// older manager epoch, are ignored; an operation already run is answered again.
    pub fn handle_message(&mut self, from: &str, message: OpMessage) -> Result<(), OpsError> {
        let OpMessage::Apply { incarnation, ops } = message else {
            return Err(OpsError::Unexpected { from: from.to_owned(), what: "answers" });
        };
        if incarnation != self.incarnation {
            return Ok(());
        }
        for op in ops {
            if op.id.epoch < self.epoch {
                continue;
            }
            if op.id.epoch > self.epoch {
                // A new manager run: its per-node sequence starts at 1.
                self.reset(op.id.epoch);
            }
            self.manager = Some(from.to_owned());
            if op.node_seq < self.next {
                match self.remembered.get(&op.node_seq) {
                    Some(a) if a.id == op.id => self.unsent.push(a.clone()),
                    Some(_) => {}
                    None => self.unsent.push(Answer {
                        id: op.id,
                        node_seq: op.node_seq,
                        status: AnswerStatus::Error,
                        body: "already applied; its answer is no longer held".to_owned(),
                    }),
                }
                continue;
            }
            if self.running.as_ref().is_some_and(|(r, g)| *g == self.generation && r.node_seq == op.node_seq) {
                continue;
            }
            self.buffered.entry(op.node_seq).or_insert(op);
        }
        self.run_next();
        Ok(())
    }

    fn run_next(&mut self) {
        if self.running.is_some() {
            return;
        }
        if let Some(op) = self.buffered.remove(&self.next) {
            self.running = Some((op.clone(), self.generation));
            self.outputs.push_back(ApplierOutput::Execute(op));
        }
    }

    /// The command of operation `id` finished. Results for anything but the running
    /// operation are ignored.
    pub fn handle_executed(&mut self, id: OpId, status: AnswerStatus, body: String) {
        let Some((op, generation)) = self.running.take_if(|(r, _)| r.id == id) else { return };
        let answer = Answer { id, node_seq: op.node_seq, status, body };
        if generation != self.generation {
            // It ran, for a sequence since replaced: say so, but leave the new one alone.
            self.record_applied(id);
            self.unsent.push(answer);
            self.run_next();
            return;
        }
        self.remembered.insert(op.node_seq, answer.clone());
        self.remembered_order.push_back(op.node_seq);
        while self.remembered_order.len() > self.config.answer_memory {
            if let Some(old) = self.remembered_order.pop_front() {
                self.remembered.remove(&old);
            }
        }
        self.record_applied(id);
        self.unsent.push(answer);
        self.next = op.node_seq + 1;
        self.run_next();
    }

    fn record_applied(&mut self, id: OpId) {
        self.applied.push_back(id);
        self.applied_total += 1;
        while self.applied.len() > self.config.applied_memory {
            self.applied.pop_front();
        }
    }

    /// The next thing to do. Answers produced since the last drain go out together.
    pub fn poll_output(&mut self) -> Option<ApplierOutput> {
        if let Some(o) = self.outputs.pop_front() {
            return Some(o);
        }
        if self.unsent.is_empty() {
            return None;
        }
        let to = self.manager.clone()?;
        let answers = std::mem::take(&mut self.unsent);
        let message = OpMessage::Answers { incarnation: self.incarnation, answers };
        match message.encode() {
            Ok(payload) => Some(ApplierOutput::Send { to, payload }),
            Err(error) => {
                // Answers are bounded by the output limits of the commands; a batch too large
                // for a stream is dropped, and the manager retransmits and asks again.
                tracing::error!(manager = %to, %error, "cannot encode answers");
                None
            }
        }
    }
}
