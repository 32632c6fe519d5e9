//! Who holds each DuraVIP address, as the manager learns it from the nodes. No I/O here.
//!
//! Ownership claims travel only between an address's candidate nodes; the manager runs no
//! DuraVIP core. So every node with bindings tells the live managers where it stands with each
//! of its addresses (held, acquiring or idle, and the term it claims under): the addresses that
//! changed, as soon as they change ([`Reporter::observe`]); all of them when a manager comes up
//! (a restarted manager learns everything at once) and again every `repair` interval (a lost
//! report is mended). The manager's [`HolderBook`] keeps, per address, what each node last said
//! of it, and forgets a node's holdings when the node goes down or leaves.
//!
//! A node speaks for itself only: a report names no sender, the manager files it under the
//! authenticated peer. Each report carries the sender's [`Stamp`] (its incarnation, then a
//! sequence number that grows with every report), kept per node and address, so a late report
//! never undoes a later one. Addresses the manager has no binding for are ignored.
//!
//! Reports travel on streams in the [`Kind::Holders`] envelope, at most [`MAX_ENTRIES`]
//! addresses and [`MAX_BYTES`] each; a node with more addresses sends several reports, each
//! complete on its own.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::duravip::{HoldingState, Stamp, Term, NO_TERM};
use crate::error::DecodeError;
use crate::wire::{self, Kind};

/// The most addresses one report carries.
pub const MAX_ENTRIES: usize = 256;
/// The largest report, envelope included (room for [`MAX_ENTRIES`] IPv6 addresses with the
/// longest terms), checked before decoding.
pub const MAX_BYTES: usize = 16 * 1024;

/// Node → manager: where the sender stands with these addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldingsReport {
    /// Orders the sender's reports: newer than every report it sent before.
    pub stamp: Stamp,
    /// (address, term claimed under, state) per address.
    pub entries: Vec<(IpAddr, Term, HoldingState)>,
}

impl HoldingsReport {
    /// The report in its envelope; refused above [`MAX_ENTRIES`] or [`MAX_BYTES`].
    pub fn encode(&self) -> Result<Bytes, DecodeError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(DecodeError::Body(format!("{} addresses, at most {MAX_ENTRIES}", self.entries.len())));
        }
        wire::encode_body(Kind::Holders, self, MAX_BYTES)
    }

    /// A report read from a stream: the envelope, then one report within the bounds.
    pub fn decode(message: &[u8]) -> Result<HoldingsReport, DecodeError> {
        if message.len() > MAX_BYTES {
            return Err(DecodeError::Oversize { len: message.len(), limit: MAX_BYTES });
        }
        let (kind, body) = wire::decode_message(message)?;
        let report: HoldingsReport = wire::decode_body(Kind::Holders, kind, body)?;
        if report.entries.len() > MAX_ENTRIES {
            return Err(DecodeError::Body(format!("{} addresses, at most {MAX_ENTRIES}", report.entries.len())));
        }
        Ok(report)
    }

    /// The reports of `entries`, [`MAX_ENTRIES`] at a time, each with the next stamp.
    fn split(entries: Vec<(IpAddr, Term, HoldingState)>, mut stamp: impl FnMut() -> Stamp) -> Vec<Bytes> {
        entries
            .chunks(MAX_ENTRIES)
            .filter_map(|chunk| match (HoldingsReport { stamp: stamp(), entries: chunk.to_vec() }).encode() {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    warn!(%error, "dropping a DuraVIP holdings report that does not fit");
                    None
                }
            })
            .collect()
    }
}

/// What the reporter asks of the node core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReporterOutput {
    /// Send this (encoded [`HoldingsReport`]) to manager `to`, on a stream.
    Send {
        /// The manager.
        to: String,
        /// The report.
        payload: Bytes,
    },
    /// Hand back [`Reporter::handle_timer`] after this long.
    SetTimer(Duration),
}

/// A node's side: what it last reported, and the live managers.
#[derive(Debug)]
pub struct Reporter {
    incarnation: u64,
    seq: u64,
    reported: BTreeMap<IpAddr, (Term, HoldingState)>,
    managers: BTreeSet<String>,
    repair: Duration,
    timer_set: bool,
    outputs: VecDeque<ReporterOutput>,
}

impl Reporter {
    /// The reporter of a node run of `incarnation`, reporting everything again every `repair`.
    pub fn new(incarnation: u64, repair: Duration) -> Reporter {
        Reporter {
            incarnation,
            seq: 0,
            reported: BTreeMap::new(),
            managers: BTreeSet::new(),
            repair,
            timer_set: false,
            outputs: VecDeque::new(),
        }
    }

    /// The run renewed its incarnation (it rejoined): later reports carry the new one.
    pub fn set_incarnation(&mut self, incarnation: u64) {
        if incarnation > self.incarnation {
            self.incarnation = incarnation;
            self.seq = 0;
        }
    }

    /// Where this node stands now with each of its addresses. Addresses whose state or term
    /// changed since the last report, and addresses no longer bound (reported idle), go to
    /// every live manager.
    pub fn observe(&mut self, now: impl Iterator<Item = (IpAddr, Term, HoldingState)>) {
        let mut changed = Vec::new();
        let mut current = BTreeMap::new();
        for (addr, term, state) in now {
            if self.reported.get(&addr) != Some(&(term, state)) {
                changed.push((addr, term, state));
            }
            current.insert(addr, (term, state));
        }
        for addr in self.reported.keys().filter(|a| !current.contains_key(*a)) {
            if self.reported.get(addr).is_some_and(|(_, s)| *s != HoldingState::Idle) {
                changed.push((*addr, NO_TERM, HoldingState::Idle));
            }
        }
        if changed.is_empty() {
            return;
        }
        self.reported = current;
        changed.sort();
        for manager in self.managers.clone() {
            self.send(&manager, changed.clone());
        }
    }

    /// Manager `name` is up (again): it is told everything, and told again every `repair`.
    pub fn handle_manager_up(&mut self, name: &str) {
        self.managers.insert(name.to_owned());
        self.send(name, self.everything());
        if !self.timer_set {
            self.timer_set = true;
            self.outputs.push_back(ReporterOutput::SetTimer(self.repair));
        }
    }

    /// Manager `name` is down or gone.
    pub fn handle_manager_down(&mut self, name: &str) {
        self.managers.remove(name);
    }

    /// The repair interval passed: every live manager is told everything again.
    pub fn handle_timer(&mut self) {
        self.timer_set = false;
        if self.managers.is_empty() {
            return;
        }
        for manager in self.managers.clone() {
            self.send(&manager, self.everything());
        }
        self.timer_set = true;
        self.outputs.push_back(ReporterOutput::SetTimer(self.repair));
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<ReporterOutput> {
        self.outputs.pop_front()
    }

    fn everything(&self) -> Vec<(IpAddr, Term, HoldingState)> {
        self.reported.iter().map(|(addr, (term, state))| (*addr, *term, *state)).collect()
    }

    fn send(&mut self, to: &str, entries: Vec<(IpAddr, Term, HoldingState)>) {
        if entries.is_empty() {
            return;
        }
        let incarnation = self.incarnation;
        let seq = &mut self.seq;
        let reports = HoldingsReport::split(entries, || {
            *seq += 1;
            Stamp { incarnation, seq: *seq }
        });
        for payload in reports {
            self.outputs.push_back(ReporterOutput::Send { to: to.to_owned(), payload });
        }
    }
}

/// What one node last said of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The node.
    pub node: String,
    /// Held or acquiring.
    pub state: HoldingState,
    /// The term it claims under ([`NO_TERM`] unless a `duravip move` named it).
    pub term: Term,
    /// When the manager heard it take this state.
    pub since: Instant,
}

/// The most reports kept from a node down in the manager's view.
const MAX_PENDING: usize = 16;

/// What one node said of one address, with the stamp of the report.
#[derive(Debug, Clone)]
struct Said {
    stamp: Stamp,
    term: Term,
    state: HoldingState,
    since: Instant,
}

/// The manager's side: per address, what each node last said of it.
#[derive(Debug, Default)]
pub struct HolderBook {
    said: BTreeMap<IpAddr, BTreeMap<String, Said>>,
    /// The newest incarnation each node reported under: reports of older runs are stale.
    runs: BTreeMap<String, u64>,
    /// Nodes down in the manager's view, with the reports they sent since (the newest
    /// [`MAX_PENDING`]): a report can overtake the news that its node is up again; it counts
    /// once the node is up.
    down: BTreeMap<String, VecDeque<HoldingsReport>>,
    refused: u64,
    ignored: u64,
}

impl HolderBook {
    /// A book that knows no holder.
    pub fn new() -> HolderBook {
        HolderBook::default()
    }

    /// The nodes holding or acquiring `addr`, by name.
    pub fn holders(&self, addr: IpAddr) -> Vec<Holder> {
        self.said.get(&addr).map_or_else(Vec::new, |nodes| {
            nodes
                .iter()
                .filter(|(_, s)| s.state != HoldingState::Idle)
                .map(|(node, s)| Holder { node: node.clone(), state: s.state, term: s.term, since: s.since })
                .collect()
        })
    }

    /// Every address some node holds or acquires, with its holders.
    pub fn all(&self) -> BTreeMap<IpAddr, Vec<Holder>> {
        self.said.keys().map(|addr| (*addr, self.holders(*addr))).filter(|(_, h)| !h.is_empty()).collect()
    }

    /// Reports refused as malformed or oversized since the start.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Entries ignored since the start because the manager has no binding for the address.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// A report from `from` could not be decoded; it is counted.
    pub fn handle_refused(&mut self) {
        self.refused += 1;
    }

    /// Node `from` (the authenticated peer) reports where it stands. Entries for addresses
    /// `known` does not accept are ignored (and counted); entries older than what the node
    /// said of an address before change nothing; a report of an earlier run of the node is
    /// ignored. A report of a node down in the manager's view waits until the node is up.
    pub fn handle_report(&mut self, now: Instant, from: &str, report: HoldingsReport, known: impl Fn(IpAddr) -> bool) {
        if let Some(pending) = self.down.get_mut(from) {
            if pending.len() == MAX_PENDING {
                pending.pop_front();
            }
            pending.push_back(report);
            return;
        }
        let run = self.runs.entry(from.to_owned()).or_insert(report.stamp.incarnation);
        if report.stamp.incarnation < *run {
            return;
        }
        if report.stamp.incarnation > *run {
            *run = report.stamp.incarnation;
            for nodes in self.said.values_mut() {
                nodes.remove(from);
            }
        }
        for (addr, term, state) in report.entries {
            if !known(addr) {
                self.ignored += 1;
                continue;
            }
            let nodes = self.said.entry(addr).or_default();
            match nodes.get_mut(from) {
                Some(said) if said.stamp >= report.stamp => {}
                Some(said) => {
                    if said.state != state || said.term != term {
                        said.since = now;
                    }
                    said.stamp = report.stamp;
                    said.term = term;
                    said.state = state;
                }
                None => {
                    nodes.insert(from.to_owned(), Said { stamp: report.stamp, term, state, since: now });
                }
            }
        }
        self.said.retain(|_, nodes| !nodes.is_empty());
    }

    /// Node `name` is up (again): its reports count, those that came while it was down too.
    pub fn handle_node_up(&mut self, now: Instant, name: &str, known: impl Fn(IpAddr) -> bool) {
        for report in self.down.remove(name).unwrap_or_default() {
            self.handle_report(now, name, report, &known);
        }
    }

    /// Node `name` is down or gone: it holds nothing any more, and its reports wait until it
    /// comes up.
    pub fn handle_node_down(&mut self, name: &str) {
        self.down.insert(name.to_owned(), VecDeque::new());
        for nodes in self.said.values_mut() {
            nodes.remove(name);
        }
        self.said.retain(|_, nodes| !nodes.is_empty());
    }

    /// Forgets the addresses `known` no longer accepts (the bindings were reloaded).
    pub fn retain_known(&mut self, known: impl Fn(IpAddr) -> bool) {
        self.said.retain(|addr, _| known(*addr));
    }
}
