//! The soak's schedule: rounds of random faults and DuraVIP moves, each drawn from the run's
//! seed and the round's number alone (so a seed replays the same schedule whatever the run's
//! length), each round followed by a quiet checkpoint. Pure data: nothing here touches a
//! process or the network.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The manager's name.
pub const MANAGER: &str = "mgr";
/// The nodes: two subclusters of three.
pub const NODES: [&str; 6] = ["east1", "east2", "east3", "west1", "west2", "west3"];
/// Every member, manager first.
pub const MEMBERS: [&str; 7] = [MANAGER, "east1", "east2", "east3", "west1", "west2", "west3"];
/// DuraVIP bindings `vip-1` ..= `vip-VIPS`.
pub const VIPS: u8 = 6;

/// A kind of random event, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// kill -9 of a node, restarted later.
    Kill,
    /// kill -9 of the manager, restarted later.
    ManagerKill,
    /// SIGSTOP of any member, SIGCONT later.
    Stop,
    /// A member's cable out (its bridge port down), back in later.
    Cut,
    /// Everything one member sends to another dropped, let through later.
    OneWay,
    /// `broadcast cluster duravip move` of an address to a node.
    Move,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::Kill, Kind::ManagerKill, Kind::Stop, Kind::Cut, Kind::OneWay, Kind::Move];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::ManagerKill => "manager-kill",
            Kind::Stop => "stop",
            Kind::Cut => "cut",
            Kind::OneWay => "oneway",
            Kind::Move => "move",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == text)
    }
}

/// One thing the soak does to the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Kill(String),
    Restart(String),
    Stop(String),
    Cont(String),
    Cut(String),
    Heal(String),
    Block { from: String, to: String },
    Unblock { from: String, to: String },
    Move { vip: u8, to: String },
}

impl Action {
    /// The kind of event this action starts; `None` for the recoveries.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Action::Kill(m) if m == MANAGER => Some(Kind::ManagerKill),
            Action::Kill(_) => Some(Kind::Kill),
            Action::Stop(_) => Some(Kind::Stop),
            Action::Cut(_) => Some(Kind::Cut),
            Action::Block { .. } => Some(Kind::OneWay),
            Action::Move { .. } => Some(Kind::Move),
            Action::Restart(_) | Action::Cont(_) | Action::Heal(_) | Action::Unblock { .. } => None,
        }
    }

    /// The members this action touches.
    pub fn members(&self) -> Vec<String> {
        match self {
            Action::Kill(m) | Action::Restart(m) | Action::Stop(m) | Action::Cont(m) | Action::Cut(m) | Action::Heal(m) => {
                vec![m.clone()]
            }
            Action::Block { from, to } | Action::Unblock { from, to } => vec![from.clone(), to.clone()],
            Action::Move { to, .. } => vec![to.clone()],
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Kill(m) => write!(f, "kill -9 {m}"),
            Action::Restart(m) => write!(f, "restart {m}"),
            Action::Stop(m) => write!(f, "SIGSTOP {m}"),
            Action::Cont(m) => write!(f, "SIGCONT {m}"),
            Action::Cut(m) => write!(f, "cut {m}'s link"),
            Action::Heal(m) => write!(f, "heal {m}'s link"),
            Action::Block { from, to } => write!(f, "drop {from} -> {to}"),
            Action::Unblock { from, to } => write!(f, "pass {from} -> {to}"),
            Action::Move { vip, to } => write!(f, "move vip-{vip} to {to}"),
        }
    }
}

/// An action at an offset from the start of its round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub at: Duration,
    pub action: Action,
}

/// One round: its steps in time order. Every fault it starts ends within the round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    pub index: usize,
    pub steps: Vec<Step>,
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "  r{:<3} +{:>5.1}s  {}", self.index, s.at.as_secs_f64(), s.action)?;
        }
        write!(f, "  r{:<3} end       heal everything, checkpoint", self.index)
    }
}

/// What the schedule is drawn from.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// Length of a round's chaos before its checkpoint.
    pub window: Duration,
    /// The most faults in force at once (a one-way drop counts once).
    pub max_faults: usize,
    pub mix: BTreeSet<Kind>,
}

impl Plan {
    /// Round `index` (from 1), the same for the same seed, window, limit and mix.
    pub fn round(&self, index: usize) -> Round {
        let mut rng = StdRng::seed_from_u64(self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let kinds: Vec<Kind> = self.mix.iter().copied().collect();
        let window = self.window.as_millis() as u64;
        // Faults in force: (end, members).
        let mut faults: Vec<(u64, Vec<&str>)> = Vec::new();
        let mut steps = Vec::new();
        let mut t = 0u64;
        let ms = Duration::from_millis;
        loop {
            t += rng.random_range(500..=3000);
            if kinds.is_empty() || t + 500 >= window {
                break;
            }
            faults.retain(|(end, _)| *end > t);
            let busy: BTreeSet<&str> = faults.iter().flat_map(|(_, m)| m.iter().copied()).collect();
            let free = |among: &[&'static str]| -> Vec<&'static str> { among.iter().copied().filter(|m| !busy.contains(m)).collect() };
            let kind = kinds[rng.random_range(0..kinds.len())];
            if kind != Kind::Move && faults.len() >= self.max_faults {
                continue;
            }
            let end = (t + rng.random_range(1000..=10_000)).min(window);
            let pick = |rng: &mut StdRng, among: &[&'static str]| among[rng.random_range(0..among.len())];
            let (start, stop, touched): (Action, Option<Action>, Vec<&str>) = match kind {
                Kind::Kill | Kind::ManagerKill | Kind::Stop | Kind::Cut => {
                    let among = match kind {
                        Kind::Kill => free(&NODES),
                        Kind::ManagerKill => free(&[MANAGER]),
                        _ => free(&MEMBERS),
                    };
                    if among.is_empty() {
                        continue;
                    }
                    let m = pick(&mut rng, &among);
                    let (a, b) = match kind {
                        Kind::Stop => (Action::Stop(m.into()), Action::Cont(m.into())),
                        Kind::Cut => (Action::Cut(m.into()), Action::Heal(m.into())),
                        _ => (Action::Kill(m.into()), Action::Restart(m.into())),
                    };
                    (a, Some(b), vec![m])
                }
                Kind::OneWay => {
                    let among = free(&MEMBERS);
                    if among.len() < 2 {
                        continue;
                    }
                    let from = pick(&mut rng, &among);
                    let rest: Vec<&str> = among.into_iter().filter(|m| *m != from).collect();
                    let to = rest[rng.random_range(0..rest.len())];
                    let (f, o) = (from.to_owned(), to.to_owned());
                    (Action::Block { from: f.clone(), to: o.clone() }, Some(Action::Unblock { from: f, to: o }), vec![from, to])
                }
                Kind::Move => {
                    let among = free(&NODES);
                    if among.is_empty() {
                        continue;
                    }
                    let vip = rng.random_range(1..=VIPS);
                    (Action::Move { vip, to: pick(&mut rng, &among).into() }, None, Vec::new())
                }
            };
            steps.push(Step { at: ms(t), action: start });
            if let Some(stop) = stop {
                steps.push(Step { at: ms(end), action: stop });
                faults.push((end, touched));
            }
        }
        // Stable: a recovery and a new fault at the same instant keep that order.
        steps.sort_by_key(|s| s.at);
        Round { index, steps }
    }
}

/// Checks what every round must be: in time order within its window, no member faulted twice
/// at once, never more than the limit of faults in force, every fault undone by the end, and
/// nothing of a kind left out of the mix. The soak checks each round before it runs it.
pub fn validate(plan: &Plan, round: &Round) -> Result<(), String> {
    let mut open: Vec<Action> = Vec::new();
    let mut last = Duration::ZERO;
    for s in &round.steps {
        if s.at < last || s.at > plan.window {
            return Err(format!("round {}: step '{}' at {:?} out of order or past the window", round.index, s.action, s.at));
        }
        last = s.at;
        if let Some(kind) = s.action.kind() {
            if !plan.mix.contains(&kind) {
                return Err(format!("round {}: '{}' is of kind {}, left out of the mix", round.index, s.action, kind.name()));
            }
        }
        let undoes = |a: &Action| match &s.action {
            Action::Restart(m) => *a == Action::Kill(m.clone()),
            Action::Cont(m) => *a == Action::Stop(m.clone()),
            Action::Heal(m) => *a == Action::Cut(m.clone()),
            Action::Unblock { from, to } => *a == Action::Block { from: from.clone(), to: to.clone() },
            _ => false,
        };
        match &s.action {
            Action::Move { .. } => {}
            Action::Restart(_) | Action::Cont(_) | Action::Heal(_) | Action::Unblock { .. } => {
                let before = open.len();
                open.retain(|a| !undoes(a));
                if open.len() == before {
                    return Err(format!("round {}: '{}' undoes nothing in force", round.index, s.action));
                }
            }
            a => {
                let touched = a.members();
                if open.iter().any(|o| o.members().iter().any(|m| touched.contains(m))) {
                    return Err(format!("round {}: '{a}' on a member already faulted", round.index));
                }
                open.push(a.clone());
                if open.len() > plan.max_faults {
                    return Err(format!("round {}: {} faults in force, limit {}", round.index, open.len(), plan.max_faults));
                }
            }
        }
    }
    match open.first() {
        Some(a) => Err(format!("round {}: '{a}' still in force at the end", round.index)),
        None => Ok(()),
    }
}
