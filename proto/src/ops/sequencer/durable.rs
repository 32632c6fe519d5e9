//! The sequencer's journal: what it appends, the snapshot it compacts to, and its recovery
//! from the journal of an earlier run (see the parent module's "Durability").

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::BytesMut;

use super::{Awaiting, Channel, Record, Sequencer, SequencerOutput, SequencerTimer, COMPACT_MIN};
use crate::ops::journal::{self, Assigned, JournalRecord, JournalWrite, StoredStatus};
use crate::ops::{Op, OpId, ResultStatus};

impl Sequencer {
    pub(super) fn append(&mut self, record: &JournalRecord) {
        if !self.config.journal {
            return;
        }
        let before = self.journal.len();
        journal::frame(record, &mut self.journal);
        self.appended += self.journal.len() - before;
        if self.appended > COMPACT_MIN.max(2 * self.snapshot_bytes) {
            self.compact();
        }
    }

    /// Replaces the journal with a snapshot of the state: the results buffer, what is still
    /// to deliver, and the latest id.
    pub(super) fn compact(&mut self) {
        if !self.config.journal {
            return;
        }
        let mut file = BytesMut::new();
        file.extend_from_slice(journal::MAGIC);
        self.results.snapshot(|record| journal::frame(record, &mut file));
        let mut deliveries: BTreeMap<OpId, (String, Vec<Assigned>)> = BTreeMap::new();
        let channels = self.nodes.iter().map(|(n, c)| (n, c.incarnation, &c.subcluster, c.unacked.values().map(|(op, _)| op).collect::<Vec<_>>()));
        let waiting = self.awaiting.iter().map(|(n, w)| (n, w.incarnation, &w.subcluster, w.ops.values().collect::<Vec<_>>()));
        let departed = self.departed.iter().map(|(n, c)| (n, c.incarnation, &c.subcluster, c.unacked.values().map(|(op, _)| op).collect::<Vec<_>>()));
        for (node, incarnation, subcluster, ops) in channels.chain(waiting).chain(departed) {
            for op in ops {
                let d = deliveries.entry(op.id).or_insert_with(|| (op.command.clone(), Vec::new()));
                d.1.push(Assigned { node: node.clone(), subcluster: subcluster.clone(), incarnation, node_seq: op.node_seq });
            }
        }
        for (id, (command, nodes)) in deliveries {
            journal::frame(&JournalRecord::Delivery { id, command, nodes }, &mut file);
        }
        for (node, ch) in &self.departed {
            if !ch.unacked.is_empty() {
                journal::frame(&JournalRecord::Departed { node: node.clone() }, &mut file);
            }
        }
        if let Some(latest) = self.latest {
            journal::frame(&JournalRecord::Latest(latest), &mut file);
        }
        let file = file.freeze();
        self.snapshot_bytes = file.len();
        self.appended = 0;
        // The snapshot holds everything the pending frames said.
        self.journal.clear();
        self.replace = Some(file);
    }

    /// The next journal write, if any. Drain it before [`Sequencer::poll_output`]; it must be
    /// on disk before what follows is performed.
    pub fn poll_journal(&mut self) -> Option<JournalWrite> {
        if let Some(file) = self.replace.take() {
            return Some(JournalWrite::Replace(file));
        }
        if self.journal.is_empty() {
            return None;
        }
        Some(JournalWrite::Append(self.journal.split().freeze()))
    }

    /// Rebuilds the results buffer and the operations still to deliver from the journal of
    /// an earlier run. Call once, before anything else; then the journal is rewritten as a
    /// snapshot (which also drops a damaged tail).
    pub fn recover(&mut self, now: Instant, records: &[JournalRecord]) {
        let mut deliveries: BTreeMap<OpId, (String, BTreeMap<String, Assigned>)> = BTreeMap::new();
        // Nodes the earlier run had declared down and not seen back (as far as it journaled).
        let mut departed: BTreeSet<String> = BTreeSet::new();
        for record in records {
            match record {
                JournalRecord::Sequenced { id, command, target, nodes } => {
                    for a in nodes {
                        departed.remove(&a.node);
                    }
                    let pairs: Vec<(String, String)> = nodes.iter().map(|a| (a.node.clone(), a.subcluster.clone())).collect();
                    self.results.record_sent(now, *id, command, target, &pairs);
                    let assigned = nodes.iter().map(|a| (a.node.clone(), a.clone())).collect();
                    deliveries.insert(*id, (command.clone(), assigned));
                    self.latest = self.latest.max(Some(*id));
                }
                JournalRecord::Result { id, node, status, body } => {
                    self.results.update(now, node, *id, ResultStatus::from(*status), body);
                    // "Node left" is not the end of a delivery: the node may come back in the
                    // same incarnation. What is given up on is journaled as abandoned.
                    if matches!(status, StoredStatus::Ok | StoredStatus::Error) {
                        if let Some((_, nodes)) = deliveries.get_mut(id) {
                            nodes.remove(node);
                        }
                    }
                }
                JournalRecord::Flushed => {
                    self.results.flush();
                }
                JournalRecord::Command { .. } => self.results.restore(now, record),
                JournalRecord::Delivery { id, command, nodes } => {
                    let assigned = nodes.iter().map(|a| (a.node.clone(), a.clone())).collect();
                    deliveries.insert(*id, (command.clone(), assigned));
                    self.latest = self.latest.max(Some(*id));
                }
                JournalRecord::Abandoned { id, node } => {
                    if let Some((_, nodes)) = deliveries.get_mut(id) {
                        nodes.remove(node);
                    }
                }
                JournalRecord::Latest(id) => self.latest = self.latest.max(Some(*id)),
                JournalRecord::Departed { node } => {
                    departed.insert(node.clone());
                }
            }
        }
        if let Some(latest) = self.latest {
            // A journal from a run whose epoch is not below ours (a state directory lost while
            // the journal was kept): ids must still grow.
            if latest.epoch >= self.epoch {
                tracing::warn!(journal = %latest, epoch = self.epoch, "the journal holds ids of this epoch or later; moving past them");
                match latest.epoch.checked_add(1) {
                    Some(epoch) => self.epoch = epoch,
                    None => {
                        // No epoch follows the last one (nodes ignore operations of an older
                        // epoch): this run goes on in it, after the journal's latest id.
                        self.epoch = latest.epoch;
                        self.next_seq = self.next_seq.max(latest.seq.saturating_add(1));
                    }
                }
            }
        }
        // Per node, what is still to deliver, in its order. All of one node's belong to one
        // (epoch, incarnation): an older group can only be left over from damage, and is lost.
        let mut ids = BTreeSet::new();
        let mut gone: BTreeMap<String, Awaiting> = BTreeMap::new();
        for (id, (command, nodes)) in deliveries {
            for (node, a) in nodes {
                let op = Op { id, node_seq: a.node_seq, command: command.clone() };
                let place = if departed.contains(&node) { &mut gone } else { &mut self.awaiting };
                let w = place.entry(node.clone()).or_insert_with(|| Awaiting {
                    incarnation: a.incarnation,
                    subcluster: a.subcluster.clone(),
                    epoch: id.epoch,
                    ops: BTreeMap::new(),
                });
                if (id.epoch, a.incarnation) > (w.epoch, w.incarnation) {
                    for old in std::mem::take(&mut w.ops).into_values() {
                        self.results.update(now, &node, old.id, ResultStatus::NodeLeft, "");
                    }
                    *w = Awaiting { incarnation: a.incarnation, subcluster: a.subcluster.clone(), epoch: id.epoch, ops: BTreeMap::new() };
                }
                if (id.epoch, a.incarnation) == (w.epoch, w.incarnation) {
                    w.ops.insert(a.node_seq, op);
                    if departed.contains(&node) {
                        // Already recorded "node left": nothing waits for it, but it is kept
                        // for the node's return.
                        continue;
                    }
                    self.ops
                        .entry(id)
                        .or_insert_with(|| Record { pending: BTreeSet::new(), sequenced: None })
                        .pending
                        .insert(node.clone());
                    ids.insert(id);
                }
            }
        }
        // A node declared down keeps its channel, as it would have in the earlier run.
        for (node, w) in gone {
            let next_node_seq = w.ops.keys().next_back().map_or(1, |s| s.saturating_add(1));
            let unacked = w.ops.into_iter().map(|(s, op)| (s, (op, false))).collect();
            let channel = Channel { incarnation: w.incarnation, subcluster: w.subcluster, epoch: w.epoch, next_node_seq, unacked, retransmit_armed: false };
            self.departed.insert(node, channel);
        }
        let undelivered = ids.len();
        for id in ids {
            self.outputs.push_back(SequencerOutput::SetTimer {
                after: self.config.answer_timeout,
                timer: SequencerTimer::AnswerTimeout(id),
            });
        }
        if undelivered > 0 {
            tracing::info!(operations = undelivered, "recovering operations from the journal");
            self.start_recovery();
        }
        self.compact();
    }

    /// Refuses new operations until what an earlier run sequenced is delivered, or the answer
    /// timeout has passed.
    pub(super) fn start_recovery(&mut self) {
        self.recovering = true;
        self.deadline += 1;
        self.outputs.push_back(SequencerOutput::SetTimer {
            after: self.config.answer_timeout,
            timer: SequencerTimer::RecoveryDeadline(self.deadline),
        });
    }

    /// Ends recovery once nothing recovered is left to deliver.
    pub(super) fn check_recovered(&mut self) {
        if !self.recovering {
            return;
        }
        let epoch = self.epoch;
        let left = !self.awaiting.is_empty()
            || self.nodes.values().any(|c| c.unacked.values().any(|(op, _)| op.id.epoch != epoch));
        if !left {
            tracing::info!("recovered operations delivered; taking new ones");
            self.recovering = false;
        }
    }
}
