//! The manager's results buffer: per (command text, node) the latest answer, its time and
//! status, plus which nodes each operation targeted, so `retrieve` can mark missing answers.
//! Emptied by `flush control cache`; bounded in entries and bytes, the commands whose latest
//! operation is oldest and complete (no answer pending) evicted first. No I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use super::journal::{JournalRecord, SentRecord, StoredResult, StoredStatus};
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

/// One command of [`Results::latest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestCommand<'a> {
    /// Its latest operation.
    pub id: OpId,
    /// The command text.
    pub command: &'a str,
    /// Each node's latest result for it, by node name.
    pub nodes: Vec<(&'a str, &'a NodeResult)>,
}

/// How much the results buffer may hold. When it holds more, whole commands are evicted,
/// the one whose latest operation is oldest first, skipping those still waiting for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultsLimits {
    /// At most this many (command, node) entries.
    pub max_entries: usize,
    /// At most about this many bytes of command texts, answers and bookkeeping.
    pub max_bytes: usize,
}

impl Default for ResultsLimits {
    fn default() -> Self {
        ResultsLimits { max_entries: 100_000, max_bytes: 16 << 20 }
    }
}

/// Bookkeeping bytes counted per node result and per sent record, besides the strings.
const OVERHEAD: usize = 96;

#[derive(Debug, Clone)]
struct Sent {
    target: Target,
    nodes: Vec<String>,
}

/// Everything held for one command text.
#[derive(Debug, Clone)]
struct Entry {
    nodes: BTreeMap<String, NodeResult>,
    sent: BTreeMap<OpId, Sent>,
    /// The ids referenced above (in `by_id`).
    ids: BTreeSet<OpId>,
    bytes: usize,
    /// `nodes.len()` as last counted in [`Results::len`].
    counted: usize,
    latest: OpId,
}

impl Entry {
    fn footprint(&self, command: &str) -> usize {
        let nodes: usize =
            self.nodes.iter().map(|(n, r)| n.len() + r.subcluster.len() + r.body.len() + OVERHEAD).sum();
        let sent: usize = self.sent.values().map(|s| OVERHEAD + s.nodes.iter().map(|n| n.len() + 24).sum::<usize>()).sum();
        command.len() + OVERHEAD + nodes + sent
    }

    fn pending(&self) -> bool {
        self.nodes.values().any(|r| r.status == ResultStatus::Pending)
    }
}

/// The results buffer.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// command text → what is held for it.
    entries: BTreeMap<Arc<str>, Entry>,
    /// Every operation id an entry references → its command (answers name only the id).
    by_id: BTreeMap<OpId, Arc<str>>,
    /// The latest operation of each command → the command: the eviction order.
    age: BTreeMap<OpId, Arc<str>>,
    len: usize,
    bytes: usize,
    limits: ResultsLimits,
    evicted: u64,
}

impl Results {
    /// An empty buffer with the default limits.
    pub fn new() -> Self {
        Results::default()
    }

    /// An empty buffer with these limits.
    pub fn with_limits(limits: ResultsLimits) -> Self {
        Results { limits, ..Results::default() }
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
        let key = match self.entries.get_key_value(command) {
            Some((k, _)) => k.clone(),
            None => Arc::from(command),
        };
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            nodes: BTreeMap::new(),
            sent: BTreeMap::new(),
            ids: BTreeSet::new(),
            bytes: 0,
            counted: 0,
            latest: id,
        });
        for (node, sc) in nodes {
            let fresh = NodeResult { id, subcluster: sc.clone(), status: ResultStatus::Pending, body: String::new(), at: now };
            match entry.nodes.get_mut(node) {
                Some(r) => *r = fresh,
                None => {
                    entry.nodes.insert(node.clone(), fresh);
                }
            }
        }
        // Only the latest operation per (command, target) is ever retrieved: drop older ones
        // so the buffer stays bounded by distinct commands, not by operations sent.
        entry.sent.retain(|_, s| s.target != *target);
        entry.sent.insert(id, Sent { target: target.clone(), nodes: nodes.iter().map(|(n, _)| n.clone()).collect() });
        self.age.remove(&entry.latest);
        entry.latest = entry.latest.max(id);
        self.age.insert(entry.latest, key.clone());
        self.reindex(&key);
        self.enforce();
    }

    /// Updates one node's result for operation `id`, unless a newer operation of the same
    /// command has replaced it, or it already holds a final answer and `status` is not one.
    /// An answer replaces "no answer" and "node left": it arrived late, but it is what ran.
    /// Returns whether anything changed.
    pub fn update(&mut self, now: Instant, node: &str, id: OpId, status: ResultStatus, body: &str) -> bool {
        let Some(key) = self.by_id.get(&id).cloned() else { return false };
        let Some(result) = self.entries.get_mut(&key).and_then(|e| e.nodes.get_mut(node)) else {
            return false;
        };
        if result.id != id {
            return false;
        }
        let answered = matches!(result.status, ResultStatus::Ok | ResultStatus::Error);
        let answering = matches!(status, ResultStatus::Ok | ResultStatus::Error);
        if answered && !answering {
            return false;
        }
        result.status = status;
        result.body = body.to_owned();
        result.at = now;
        self.reindex(&key);
        self.enforce();
        true
    }

    /// The command of operation `id`, while the buffer references it.
    pub fn command_of(&self, id: OpId) -> Option<&str> {
        self.by_id.get(&id).map(|c| &**c)
    }

    /// Recomputes the bytes and the id index of one command after a change.
    fn reindex(&mut self, key: &Arc<str>) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        let ids: BTreeSet<OpId> = entry.nodes.values().map(|r| r.id).chain(entry.sent.keys().copied()).collect();
        for gone in entry.ids.difference(&ids) {
            self.by_id.remove(gone);
        }
        for new in ids.difference(&entry.ids) {
            self.by_id.insert(*new, key.clone());
        }
        entry.ids = ids;
        let bytes = entry.footprint(key);
        self.bytes = self.bytes - entry.bytes + bytes;
        entry.bytes = bytes;
        self.len = self.len - entry.counted + entry.nodes.len();
        entry.counted = entry.nodes.len();
    }

    /// Evicts whole commands, oldest complete first, until the limits hold (or only commands
    /// waiting for answers are left).
    fn enforce(&mut self) {
        while self.len > self.limits.max_entries || self.bytes > self.limits.max_bytes {
            let victim = self.age.iter().find(|(_, k)| !self.entries[*k].pending()).map(|(id, k)| (*id, k.clone()));
            let Some((latest, key)) = victim else { return };
            self.age.remove(&latest);
            if let Some(entry) = self.entries.remove(&key) {
                for id in &entry.ids {
                    self.by_id.remove(id);
                }
                self.len -= entry.nodes.len();
                self.bytes -= entry.bytes;
                self.evicted += 1;
            }
        }
    }

    /// `retrieve COMMAND`: one row per target of the latest cluster or subcluster broadcast
    /// of exactly this command text. None if it was never broadcast (or was flushed).
    pub fn retrieve(&self, command: &str) -> Option<Vec<RetrieveRow>> {
        let entry = self.entries.get(command)?;
        let (_, sent) = entry.sent.iter().rev().find(|(_, s)| !matches!(s.target, Target::Node(_)))?;
        Some(Self::rows(entry, sent.nodes.iter()))
    }

    /// `subcluster retrieve SC COMMAND`: the latest cluster broadcast or broadcast to `SC`
    /// of this command, restricted to nodes of `SC`.
    pub fn retrieve_subcluster(&self, subcluster: &str, command: &str) -> Option<Vec<RetrieveRow>> {
        let entry = self.entries.get(command)?;
        let (_, sent) = entry.sent.iter().rev().find(|(_, s)| match &s.target {
            Target::Cluster => true,
            Target::Subcluster(sc) => sc == subcluster,
            Target::Node(_) => false,
        })?;
        let rows = Self::rows(entry, sent.nodes.iter());
        Some(rows.into_iter().filter(|r| r.result.subcluster == subcluster).collect())
    }

    /// `retrieve_node NODE COMMAND`: that node's latest result for the command.
    pub fn retrieve_node(&self, node: &str, command: &str) -> Option<RetrieveRow> {
        self.entries
            .get(command)
            .and_then(|e| e.nodes.get(node))
            .map(|r| RetrieveRow { node: node.to_owned(), result: r.clone() })
    }

    fn rows<'a>(entry: &Entry, nodes: impl Iterator<Item = &'a String>) -> Vec<RetrieveRow> {
        nodes
            .filter_map(|n| entry.nodes.get(n).map(|r| RetrieveRow { node: n.clone(), result: r.clone() }))
            .collect()
    }

    /// `flush control cache`: forget everything. Returns how many entries were dropped.
    pub fn flush(&mut self) -> usize {
        let n = self.len();
        // Replaced, not cleared: the maps' memory goes back to the allocator now.
        *self = Results::with_limits(self.limits);
        n
    }

    /// The `n` commands sent last, newest first: each with its latest operation and every
    /// node's latest result for it (what `retrieve` would show per node, whatever the target).
    pub fn latest(&self, n: usize) -> Vec<LatestCommand<'_>> {
        self.age
            .iter()
            .rev()
            .take(n)
            .filter_map(|(id, key)| {
                let entry = self.entries.get(key)?;
                let nodes = entry.nodes.iter().map(|(name, r)| (name.as_str(), r)).collect();
                Some(LatestCommand { id: *id, command: key, nodes })
            })
            .collect()
    }

    /// Number of (command, node) entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// About how many bytes the buffer holds (what [`ResultsLimits::max_bytes`] bounds).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many commands were evicted to keep the limits, since start.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The limits in force.
    pub fn limits(&self) -> ResultsLimits {
        self.limits
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The buffer as journal records (one [`JournalRecord::Command`] per command text),
    /// oldest command first, handed to `out` one at a time (a snapshot is framed as it is
    /// made, without a second copy of the whole buffer).
    pub fn snapshot(&self, mut out: impl FnMut(&JournalRecord)) {
        for key in self.age.values() {
            let Some(entry) = self.entries.get(key) else { continue };
            let sent = entry
                .sent
                .iter()
                .map(|(id, s)| SentRecord { id: *id, target: s.target.clone(), nodes: s.nodes.clone() })
                .collect();
            let results = entry
                .nodes
                .iter()
                .map(|(node, r)| StoredResult {
                    node: node.clone(),
                    id: r.id,
                    subcluster: r.subcluster.clone(),
                    status: StoredStatus::from(r.status),
                    body: r.body.clone(),
                })
                .collect();
            out(&JournalRecord::Command { command: key.to_string(), sent, results });
        }
    }

    /// Puts back a snapshot's [`JournalRecord::Command`]; other records are ignored. Results
    /// restored carry the time of the restore.
    pub fn restore(&mut self, now: Instant, record: &JournalRecord) {
        let JournalRecord::Command { command, sent, results } = record else { return };
        let ids = sent.iter().map(|s| s.id).chain(results.iter().map(|r| r.id));
        let Some(latest) = ids.max() else { return };
        let key: Arc<str> = Arc::from(command.as_str());
        let mut entry = Entry {
            nodes: BTreeMap::new(),
            sent: BTreeMap::new(),
            ids: BTreeSet::new(),
            bytes: 0,
            counted: 0,
            latest,
        };
        for s in sent {
            entry.sent.insert(s.id, Sent { target: s.target.clone(), nodes: s.nodes.clone() });
        }
        for r in results {
            let result = NodeResult {
                id: r.id,
                subcluster: r.subcluster.clone(),
                status: ResultStatus::from(r.status),
                body: r.body.clone(),
                at: now,
            };
            entry.nodes.insert(r.node.clone(), result);
        }
        if let Some(old) = self.entries.remove(command.as_str()) {
            // A snapshot holds each command once; a second one replaces the first.
            for id in &old.ids {
                self.by_id.remove(id);
            }
            self.age.remove(&old.latest);
            self.len -= old.counted;
            self.bytes -= old.bytes;
        }
        self.entries.insert(key.clone(), entry);
        self.age.insert(latest, key.clone());
        self.reindex(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    fn nodes(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.to_string(), "east".to_owned())).collect()
    }

    #[test]
    fn the_buffer_keeps_its_bounds_by_evicting_the_oldest_complete_commands() {
        let now = at();
        let limits = ResultsLimits { max_entries: 10_000, max_bytes: 200_000 };
        let mut r = Results::with_limits(limits);
        let big = "x".repeat(20_000);
        for seq in 1..=40u64 {
            let id = OpId { epoch: 1, seq };
            let command = format!("echo {seq} {big}");
            r.record_sent(now, id, &command, &Target::Cluster, &nodes(&["a", "b"]));
            assert!(r.update(now, "a", id, ResultStatus::Ok, &big));
            assert!(r.update(now, "b", id, ResultStatus::Ok, &big));
            assert!(r.bytes() <= limits.max_bytes, "{} bytes after {seq}", r.bytes());
        }
        assert!(r.evicted() > 30, "evicted {}", r.evicted());
        assert!(r.retrieve(&format!("echo 40 {big}")).is_some(), "the newest stays");
        assert!(r.retrieve(&format!("echo 1 {big}")).is_none(), "the oldest went first");
        // A command still waiting for an answer is never evicted, even when it is oldest.
        let mut r = Results::with_limits(ResultsLimits { max_entries: 4, max_bytes: usize::MAX });
        let first = OpId { epoch: 1, seq: 1 };
        r.record_sent(now, first, "slow", &Target::Cluster, &nodes(&["a", "b"]));
        for seq in 2..=5u64 {
            let id = OpId { epoch: 1, seq };
            r.record_sent(now, id, &format!("c{seq}"), &Target::Cluster, &nodes(&["a", "b"]));
            r.update(now, "a", id, ResultStatus::Ok, "");
            r.update(now, "b", id, ResultStatus::Ok, "");
        }
        assert!(r.retrieve("slow").is_some());
        assert_eq!(r.len(), 4);
        assert_eq!(r.flush(), 4);
        assert_eq!((r.len(), r.bytes(), r.command_of(first)), (0, 0, None));
    }

    #[test]
    fn latest_lists_the_commands_sent_last_newest_first_with_each_nodes_answer() {
        let now = at();
        let mut r = Results::new();
        for seq in 1..=3u64 {
            let id = OpId { epoch: 1, seq };
            r.record_sent(now, id, &format!("c{seq}"), &Target::Cluster, &nodes(&["a", "b"]));
            r.update(now, "a", id, ResultStatus::Ok, "done");
        }
        // Sending c1 again makes it the newest.
        let again = OpId { epoch: 1, seq: 4 };
        r.record_sent(now, again, "c1", &Target::Cluster, &nodes(&["a"]));
        let latest = r.latest(2);
        let commands: Vec<(&str, u64)> = latest.iter().map(|l| (l.command, l.id.seq)).collect();
        assert_eq!(commands, vec![("c1", 4), ("c3", 3)]);
        let c3: Vec<(&str, ResultStatus)> = latest[1].nodes.iter().map(|(n, r)| (*n, r.status)).collect();
        assert_eq!(c3, vec![("a", ResultStatus::Ok), ("b", ResultStatus::Pending)]);
        assert_eq!(r.latest(10).len(), 3);
    }

    #[test]
    fn a_late_answer_replaces_node_left_but_nothing_replaces_an_answer() {
        let now = at();
        let mut r = Results::new();
        let id = OpId { epoch: 1, seq: 1 };
        r.record_sent(now, id, "run", &Target::Cluster, &nodes(&["a"]));
        assert!(r.update(now, "a", id, ResultStatus::NodeLeft, ""));
        assert!(r.update(now, "a", id, ResultStatus::Ok, "ran"));
        assert!(!r.update(now, "a", id, ResultStatus::NodeLeft, ""));
        assert_eq!(r.retrieve_node("a", "run").expect("row").result.body, "ran");
        // A snapshot restores the same rows.
        let mut records = Vec::new();
        r.snapshot(|rec| records.push(rec.clone()));
        let mut back = Results::new();
        for rec in &records {
            back.restore(now, rec);
        }
        assert_eq!(back.retrieve("run"), r.retrieve("run"));
        assert_eq!((back.len(), back.bytes()), (r.len(), r.bytes()));
    }
}
