//! What the soak has seen — members and their processes, operations the consoles saw
//! acknowledged, each node process's applied-operation log, what was done to whom and when —
//! and the invariants checked against it. Violations are printed as they are found and kept
//! for the summary. No I/O here besides that printing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use crate::schedule::{MANAGER, MEMBERS};

/// An operation id as the manager prints it: `EPOCH.SEQ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id {
    pub epoch: u64,
    pub seq: u64,
}

impl Id {
    pub fn parse(text: &str) -> Option<Id> {
        let (e, s) = text.split_once('.')?;
        Some(Id { epoch: e.parse().ok()?, seq: s.parse().ok()? })
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    Stopped,
    Down,
}

/// A member and its current process. `gen` counts its processes (1 for the first).
#[derive(Debug)]
pub struct Member {
    pub gen: u32,
    pub pid: Option<u32>,
    pub status: Status,
    /// Distinct incarnations the current process reported, in the order seen.
    pub incarnations: Vec<u64>,
    pub max_rss_kib: u64,
    /// When a process of this member last died or renewed its incarnation.
    pub ended: Option<f64>,
}

/// A member as it was when an operation was sent.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub gen: u32,
    pub incarnation: Option<u64>,
    /// An earlier process or incarnation ended so recently that the manager may still have
    /// addressed the operation to it.
    pub recent: bool,
}

/// How long after a process dies (or renews its incarnation) the manager may still address
/// operations to it: membership's failure detection, generously.
const DETECTION: f64 = 20.0;

/// Every member as it was at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: f64,
    pub members: BTreeMap<String, Seen>,
}

/// An operation a console saw acknowledged.
#[derive(Debug)]
pub struct Acked {
    /// The console line, without the `json ` prefix.
    pub line: String,
    /// The command the nodes run (what `retrieve_node` looks up).
    pub command: String,
    pub kind: &'static str,
    pub console: String,
    pub at: f64,
    pub targets: Vec<String>,
    sent: Snapshot,
    /// Targets neither seen applying it nor excused yet.
    open: BTreeSet<String>,
}

/// How each (operation, target) pair ended.
#[derive(Debug, Default)]
pub struct Tally {
    pub applied: u64,
    /// Not applied: the target's process was killed and restarted after it was sent.
    pub restarted: u64,
    /// Not applied: the target rejoined with a new incarnation after it was sent.
    pub rejoined: u64,
    /// Not applied: sent to a process or incarnation of the target that had just ended (the
    /// manager reports "node left" for it).
    pub left: u64,
    pub lost: u64,
    /// Applied by two processes of one node (a restarted node given it again).
    pub reapplied: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    Lost,
    Order,
    Misdelivered,
    Duravip,
    Membership,
    Memory,
}

impl Invariant {
    pub const ALL: [Invariant; 6] =
        [Invariant::Lost, Invariant::Order, Invariant::Misdelivered, Invariant::Duravip, Invariant::Membership, Invariant::Memory];

    pub fn name(self) -> &'static str {
        match self {
            Invariant::Lost => "acknowledged operation lost",
            Invariant::Order => "operation applied twice or out of order",
            Invariant::Misdelivered => "operation applied by a node it was not sent to",
            Invariant::Duravip => "more than one holder of a DuraVIP address once settled",
            Invariant::Membership => "member left down after heal",
            Invariant::Memory => "daemon memory over the limit",
        }
    }
}

#[derive(Debug)]
pub struct Violation {
    pub invariant: Invariant,
    pub at: f64,
    pub detail: String,
}

/// What the consoles' traffic came to.
#[derive(Debug, Default)]
pub struct Traffic {
    pub sent: u64,
    pub acked: BTreeMap<&'static str, u64>,
    /// Refusals by reason (the daemon's first line, node names kept).
    pub refused: BTreeMap<String, u64>,
    /// No answer within the console's timeout (the manager stopped or partitioned).
    pub unanswered: u64,
}

/// An operation with targets still open when the wait for them ran out.
pub struct Overdue {
    pub id: Id,
    pub nodes: Vec<String>,
    pub command: String,
    pub same_manager: bool,
}

/// How many violations of one invariant are printed as they are found.
const PRINTED: usize = 10;

pub struct Ledger {
    start: Instant,
    pub members: BTreeMap<String, Member>,
    pub ops: BTreeMap<Id, Acked>,
    /// The latest read of each node process's oplog: (node, gen) → ids in applied order.
    oplogs: BTreeMap<(String, u32), Vec<Id>>,
    order_reported: BTreeSet<(String, u32)>,
    misdelivery_reported: BTreeSet<(Id, String)>,
    reapplied_counted: BTreeSet<(Id, String)>,
    /// What was done: (time, description, members touched).
    pub events: Vec<(f64, String, Vec<String>)>,
    pub counts: BTreeMap<&'static str, u64>,
    pub tally: Tally,
    pub traffic: Traffic,
    pub violations: Vec<Violation>,
    rss_limit_kib: u64,
}

impl Ledger {
    pub fn new(start: Instant, rss_limit_kib: u64) -> Ledger {
        let members = MEMBERS
            .iter()
            .map(|m| {
                let member = Member { gen: 1, pid: None, status: Status::Running, incarnations: Vec::new(), max_rss_kib: 0, ended: None };
                (m.to_string(), member)
            })
            .collect();
        Ledger {
            start,
            members,
            ops: BTreeMap::new(),
            oplogs: BTreeMap::new(),
            order_reported: BTreeSet::new(),
            misdelivery_reported: BTreeSet::new(),
            reapplied_counted: BTreeSet::new(),
            events: Vec::new(),
            counts: BTreeMap::new(),
            tally: Tally::default(),
            traffic: Traffic::default(),
            violations: Vec::new(),
            rss_limit_kib,
        }
    }

    /// Seconds since the soak started.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Records a violation; the first few of each invariant are printed as they are found.
    pub fn violate(&mut self, invariant: Invariant, detail: String) {
        let at = self.now();
        let before = self.violations.iter().filter(|v| v.invariant == invariant).count();
        if before < PRINTED {
            println!("[{at:7.1}s] VIOLATION ({}): {detail}", invariant.name());
        } else if before == PRINTED {
            println!("[{at:7.1}s] VIOLATION ({}): more; counted in the summary", invariant.name());
        }
        self.violations.push(Violation { invariant, at, detail });
    }

    pub fn member(&mut self, name: &str) -> &mut Member {
        self.members.get_mut(name).expect("a member of the soak")
    }

    /// A new process of `name` is about to start: later answers belong to it.
    pub fn new_process(&mut self, name: &str) {
        let m = self.member(name);
        m.gen += 1;
        m.pid = None;
        m.status = Status::Running;
        m.incarnations.clear();
    }

    pub fn log_event(&mut self, what: String, members: Vec<String>) {
        let at = self.now();
        self.events.push((at, what, members));
    }

    /// A process of `name` is being killed.
    pub fn process_ends(&mut self, name: &str) {
        let now = self.now();
        let m = self.member(name);
        m.status = Status::Down;
        m.ended = Some(now);
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = self.now();
        let members = self
            .members
            .iter()
            .map(|(n, m)| {
                let recent = m.ended.is_some_and(|t| now - t < DETECTION);
                (n.clone(), Seen { gen: m.gen, incarnation: m.incarnations.last().copied(), recent })
            })
            .collect();
        Snapshot { at: now, members }
    }

    /// A console saw operation `id` acknowledged for `targets`; `sent` is how the members were
    /// just before the console sent it.
    pub fn record_ack(&mut self, id: Id, line: &str, kind: &'static str, console: &str, targets: Vec<String>, sent: Snapshot) {
        *self.traffic.acked.entry(kind).or_default() += 1;
        let command = command_of(line);
        if let Some(earlier) = self.ops.get(&id) {
            let detail = format!("the manager acknowledged two operations as {id}: '{}' ({}) and '{line}' ({console})", earlier.line, earlier.console);
            self.violate(Invariant::Order, detail);
            return;
        }
        let open = targets.iter().cloned().collect();
        let at = self.now();
        self.ops.insert(id, Acked { line: line.to_owned(), command, kind, console: console.to_owned(), at, targets, sent, open });
    }

    /// The current process of `node` (generation `gen`) reports incarnation `incarnation`.
    pub fn record_incarnation(&mut self, node: &str, gen: u32, incarnation: u64) {
        let now = self.now();
        let m = self.member(node);
        if m.gen == gen && m.incarnations.last() != Some(&incarnation) {
            if !m.incarnations.is_empty() {
                m.ended = Some(now);
            }
            m.incarnations.push(incarnation);
        }
    }

    pub fn record_rss(&mut self, name: &str, gen: u32, kib: u64) {
        let limit = self.rss_limit_kib;
        let m = self.member(name);
        if m.gen != gen {
            return;
        }
        let first_over = kib > limit && m.max_rss_kib <= limit;
        m.max_rss_kib = m.max_rss_kib.max(kib);
        if first_over {
            self.violate(Invariant::Memory, format!("{name} (process {gen}) resident {} MiB, limit {} MiB", kib / 1024, limit / 1024));
        }
    }

    /// One read of the applied log of `node`'s process `gen`: strictly increasing ids, and
    /// every earlier read a prefix of it.
    pub fn record_oplog(&mut self, node: &str, gen: u32, ids: Vec<Id>) {
        let key = (node.to_owned(), gen);
        if !self.order_reported.contains(&key) {
            let problem = ids.windows(2).find(|w| w[1] <= w[0]).map(|w| {
                if w[0] == w[1] {
                    format!("{node} (process {gen}) applied {} twice in a row", w[0])
                } else {
                    format!("{node} (process {gen}) applied {} after {}", w[1], w[0])
                }
            });
            let problem = problem.or_else(|| {
                let prev = self.oplogs.get(&key)?;
                (!ids.starts_with(prev)).then(|| {
                    let at = prev.iter().zip(&ids).position(|(a, b)| a != b).unwrap_or(ids.len().min(prev.len()));
                    format!(
                        "{node} (process {gen}) rewrote its applied log: entry {at} was {} and now reads {} ({} entries before, {} now)",
                        prev.get(at).map_or("nothing".to_owned(), Id::to_string),
                        ids.get(at).map_or("nothing".to_owned(), Id::to_string),
                        prev.len(),
                        ids.len()
                    )
                })
            });
            if let Some(p) = problem {
                self.order_reported.insert(key.clone());
                let incs = self.members.get(node).map(|m| format!("{:?}", m.incarnations)).unwrap_or_default();
                self.violate(Invariant::Order, format!("{p} (incarnations seen {incs})"));
            }
        }
        self.oplogs.insert(key, ids);
    }

    /// Resolves what can be resolved of the acknowledged operations: applied by the target
    /// process they were sent to, or excused because that target restarted or rejoined with a
    /// new incarnation since. Returns how many (operation, target) pairs remain open.
    pub fn resolve(&mut self) -> usize {
        let applied: BTreeMap<(String, u32), BTreeSet<Id>> =
            self.oplogs.iter().map(|(k, v)| (k.clone(), v.iter().copied().collect())).collect();
        let mut open = 0;
        for (id, op) in self.ops.iter_mut() {
            let targets: Vec<String> = op.open.iter().cloned().collect();
            for t in targets {
                let Some(seen) = op.sent.members.get(&t).copied() else { continue };
                let Some(m) = self.members.get(&t) else { continue };
                let done = if applied.get(&(t.clone(), seen.gen)).is_some_and(|s| s.contains(id)) {
                    self.tally.applied += 1;
                    true
                } else if m.gen != seen.gen || m.status == Status::Down {
                    self.tally.restarted += 1;
                    true
                } else {
                    let changed = match seen.incarnation {
                        Some(i) => m.incarnations.last().is_some_and(|now| *now != i),
                        None => m.incarnations.len() > 1,
                    };
                    if changed {
                        self.tally.rejoined += 1;
                    }
                    changed
                };
                if done {
                    op.open.remove(&t);
                } else {
                    open += 1;
                }
            }
        }
        open
    }

    /// Open pairs whose target had a process or incarnation end just before the operation was
    /// sent: the manager may have addressed it to that one (a manager cut off from the
    /// cluster goes on addressing it until it declares it down). (id, node, command). The
    /// manager's results outlive its restarts (its journal), so whichever run of it is up now
    /// can say.
    pub fn ambiguous(&self) -> Vec<(Id, String, String)> {
        self.ops
            .iter()
            .flat_map(|(id, op)| {
                op.open
                    .iter()
                    .filter(|t| op.sent.members.get(*t).is_some_and(|s| s.recent))
                    .map(move |t| (*id, t.clone(), op.command.clone()))
            })
            .collect()
    }

    /// The manager reports "node left" for ambiguous pair (`id`, `node`): it went to the
    /// process or incarnation that had just ended.
    pub fn left(&mut self, id: Id, node: &str) {
        if self.ops.get_mut(&id).is_some_and(|op| op.open.remove(node)) {
            self.tally.left += 1;
        }
    }

    /// The operations with targets still open, for the final report on them.
    pub fn overdue(&self) -> Vec<Overdue> {
        let mgr_gen = self.members.get(MANAGER).map(|m| m.gen);
        self.ops
            .iter()
            .filter(|(_, op)| !op.open.is_empty())
            .map(|(id, op)| Overdue {
                id: *id,
                nodes: op.open.iter().cloned().collect(),
                command: op.command.clone(),
                same_manager: op.sent.members.get(MANAGER).map(|s| s.gen) == mgr_gen,
            })
            .collect()
    }

    /// Declares the open targets `nodes` of operation `id` lost, saying what happened around
    /// it; with each node, the manager's current result for it.
    pub fn lost(&mut self, id: Id, nodes: &[(String, String)], same_manager: bool) {
        let Some(op) = self.ops.get_mut(&id) else { return };
        let mut missing = Vec::new();
        let mut touched = vec![MANAGER.to_owned()];
        for (node, manager_says) in nodes {
            if !op.open.remove(node) {
                continue;
            }
            self.tally.lost += 1;
            touched.push(node.clone());
            let seen = op.sent.members.get(node).copied();
            let log = seen.and_then(|s| self.oplogs.get(&(node.to_owned(), s.gen)));
            let applied = match log {
                Some(l) => format!("log {} entries{}", l.len(), l.last().map(|x| format!(", last {x}")).unwrap_or_default()),
                None => "log never read".to_owned(),
            };
            let process = seen.map_or("?".to_owned(), |s| {
                format!("same process {}, incarnation {}", s.gen, s.incarnation.map_or("?".into(), |i| i.to_string()))
            });
            missing.push(format!("{node} ({process}; {applied}, manager says '{manager_says}')"));
        }
        if missing.is_empty() {
            return;
        }
        let manager = match same_manager {
            true => "",
            false => "; the manager that acknowledged it was restarted since",
        };
        let around: Vec<String> = self
            .events
            .iter()
            .filter(|(at, _, who)| *at >= op.sent.at - 15.0 && who.iter().any(|w| touched.contains(w)))
            .map(|(at, what, _)| format!("{at:.1}s {what}"))
            .collect();
        let detail = format!(
            "op {id} ({}) '{}' (console {}, acknowledged at {:.1}s for {}) never applied by {}{manager}; around it: [{}]",
            op.kind,
            op.line,
            op.console,
            op.at,
            op.targets.join(" "),
            missing.join(", "),
            around.join("; ")
        );
        self.violate(Invariant::Lost, detail);
    }

    /// Every applied operation went to a node it was sent to; counts operations a node's
    /// later process applied again.
    pub fn scan_oplogs(&mut self) {
        let mut found = Vec::new();
        let mut by_node: BTreeMap<(Id, String), u32> = BTreeMap::new();
        for ((node, gen), ids) in &self.oplogs {
            for id in ids {
                *by_node.entry((*id, node.clone())).or_default() += 1;
                let Some(op) = self.ops.get(id) else { continue };
                if !op.targets.contains(node) && !self.misdelivery_reported.contains(&(*id, node.clone())) {
                    found.push((*id, node.clone(), *gen, op.line.clone(), op.targets.join(" ")));
                }
            }
        }
        for ((id, node), n) in by_node {
            if n > 1 && self.reapplied_counted.insert((id, node)) {
                self.tally.reapplied += 1;
            }
        }
        for (id, node, gen, line, targets) in found {
            self.misdelivery_reported.insert((id, node.clone()));
            self.violate(Invariant::Misdelivered, format!("{node} (process {gen}) applied {id} '{line}', sent only to {targets}"));
        }
    }

    /// (operation, target) pairs checked so far.
    pub fn checked(&self) -> u64 {
        self.tally.applied + self.tally.restarted + self.tally.rejoined + self.tally.left + self.tally.lost
    }
}

/// The command a console line makes the nodes run: what follows `broadcast`, `unicast NODE`
/// or `subcluster broadcast SC`.
pub fn command_of(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let skip = match words.as_slice() {
        ["broadcast", ..] => 1,
        ["unicast", ..] => 2,
        ["subcluster", "broadcast", ..] => 3,
        _ => 0,
    };
    words[skip.min(words.len())..].join(" ")
}
