//! The manager's results buffer: per (command text, node) the latest answer, its time and
//! status, plus which nodes each operation targeted, so `retrieve` can mark missing answers.
//! Emptied by `flush control cache`. No I/O here.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{OpId, Target};

/// The state of one node's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResultStatus {
    /// Sent; no answer yet.
    Pending,
    /// Answered: success.
    Ok,
    /// Answered: the command failed.
    Error,
    /// No answer within the answer timeout.
    NoAnswer,
    /// The node left, died or restarted before answering.
    NodeLeft,
}

impl ResultStatus {
    /// The lowercase name used in output: `pending`, `ok`, `error`, `no answer`, `node left`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Pending => "pending",
            ResultStatus::Ok => "ok",
            ResultStatus::Error => "error",
            ResultStatus::NoAnswer => "no answer",
            ResultStatus::NodeLeft => "node left",
        }
    }
}

/// One node's latest result for one command text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResult {
    /// The operation this result belongs to.
    pub id: OpId,
    /// The node's subcluster.
    pub subcluster: String,
    /// Its state.
    pub status: ResultStatus,
    /// What the node printed (empty until answered).
    pub body: String,
    /// When the status last changed.
    pub at: Instant,
}

/// One row of a `retrieve`: the node and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveRow {
    /// Node name.
    pub node: String,
    /// Its result.
    pub result: NodeResult,
}

#[derive(Debug, Clone)]
struct Sent {
    target: Target,
    nodes: Vec<String>,
}

/// The results buffer.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// command text → node → result (nested so that lookups borrow, not allocate, keys).
    entries: BTreeMap<String, BTreeMap<String, NodeResult>>,
    ops: BTreeMap<String, BTreeMap<OpId, Sent>>,
}

impl Results {
    /// An empty buffer.
    pub fn new() -> Self {
        Results::default()
    }

    /// Records that `id` (command `command`) was sent to `nodes` (name, subcluster).
    pub fn record_sent(
        &mut self,
        now: Instant,
        id: OpId,
        command: &str,
        target: &Target,
        nodes: &[(String, String)],
    ) {
        let per_node = match self.entries.get_mut(command) {
            Some(m) => m,
            None => self.entries.entry(command.to_owned()).or_default(),
        };
        for (node, sc) in nodes {
            let fresh = NodeResult { id, subcluster: sc.clone(), status: ResultStatus::Pending, body: String::new(), at: now };
            match per_node.get_mut(node) {
                Some(r) => *r = fresh,
                None => {
                    per_node.insert(node.clone(), fresh);
                }
            }
        }
        // Only the latest operation per (command, target) is ever retrieved: drop older ones
        // so the buffer stays bounded by distinct commands, not by operations sent.
        let sent = self.ops.entry(command.to_owned()).or_default();
        sent.retain(|_, s| s.target != *target);
        sent.insert(id, Sent { target: target.clone(), nodes: nodes.iter().map(|(n, _)| n.clone()).collect() });
    }

    /// Updates one node's result for operation `id`, unless a newer operation of the same
    /// command has replaced it, or it already holds a final answer and `status` is not one.
    pub fn update(
        &mut self,
        now: Instant,
        command: &str,
        node: &str,
        id: OpId,
        status: ResultStatus,
        body: &str,
    ) {
        let Some(entry) = self.entries.get_mut(command).and_then(|m| m.get_mut(node)) else {
            return;
        };
        if entry.id != id {
            return;
        }
        let answered = matches!(entry.status, ResultStatus::Ok | ResultStatus::Error);
        let answering = matches!(status, ResultStatus::Ok | ResultStatus::Error);
        if answered && !answering {
            return;
        }
        entry.status = status;
        entry.body = body.to_owned();
        entry.at = now;
    }

    /// `retrieve COMMAND`: one row per target of the latest cluster or subcluster broadcast
    /// of exactly this command text. None if it was never broadcast (or was flushed).
    pub fn retrieve(&self, command: &str) -> Option<Vec<RetrieveRow>> {
        let (_, sent) = self
            .ops
            .get(command)?
            .iter()
            .rev()
            .find(|(_, s)| !matches!(s.target, Target::Node(_)))?;
        Some(self.rows(command, sent.nodes.iter()))
    }

    /// `subcluster retrieve SC COMMAND`: the latest cluster broadcast or broadcast to `SC`
    /// of this command, restricted to nodes of `SC`.
    pub fn retrieve_subcluster(&self, subcluster: &str, command: &str) -> Option<Vec<RetrieveRow>> {
        let (_, sent) = self.ops.get(command)?.iter().rev().find(|(_, s)| match &s.target {
            Target::Cluster => true,
            Target::Subcluster(sc) => sc == subcluster,
            Target::Node(_) => false,
        })?;
        let rows = self.rows(command, sent.nodes.iter());
        Some(rows.into_iter().filter(|r| r.result.subcluster == subcluster).collect())
    }

    /// `retrieve_node NODE COMMAND`: that node's latest result for the command.
    pub fn retrieve_node(&self, node: &str, command: &str) -> Option<RetrieveRow> {
        self.entries
            .get(command)
            .and_then(|m| m.get(node))
            .map(|r| RetrieveRow { node: node.to_owned(), result: r.clone() })
    }

    fn rows<'a>(&self, command: &str, nodes: impl Iterator<Item = &'a String>) -> Vec<RetrieveRow> {
        let Some(per_node) = self.entries.get(command) else { return Vec::new() };
        nodes
            .filter_map(|n| per_node.get(n).map(|r| RetrieveRow { node: n.clone(), result: r.clone() }))
            .collect()
    }

    /// `flush control cache`: forget everything. Returns how many entries were dropped.
    pub fn flush(&mut self) -> usize {
        let n = self.len();
        self.entries.clear();
        self.ops.clear();
        n
    }

    /// Number of (command, node) entries held.
    pub fn len(&self) -> usize {
        self.entries.values().map(BTreeMap::len).sum()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
